//! Business status codes (QĐ 28/2018) and the rules for which may follow which.
//!
//! A recipient's copy has a processing track (01 -> 02 | 03 -> 04 -> 05 -> 06) and a recall track
//! (13 -> 15 | 16). A hub may see 03 before 01, and forward skips inside 03..06 are accepted
//! (a clerk who assigns and completes at once sends 03 then 06).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::ShapeError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum StatusCode {
    /// 01 đã đến: in the recipient's system, not yet handled.
    Arrived,
    /// 02 từ chối tiếp nhận: refused, invalid or wrongly addressed.
    Refused,
    /// 03 đã tiếp nhận: accepted and registered.
    Accepted,
    /// 04 phân công: assigned.
    Assigned,
    /// 05 đang xử lý: in progress.
    InProgress,
    /// 06 hoàn thành: completed.
    Completed,
    /// 13 lấy lại: the sender asks for the document back.
    RecallRequested,
    /// 15: the recipient agrees to the recall or update.
    RecallAgreed,
    /// 16: the recipient refuses the recall or update.
    RecallRefused,
}

impl StatusCode {
    pub const ALL: [StatusCode; 9] = [
        Self::Arrived,
        Self::Refused,
        Self::Accepted,
        Self::Assigned,
        Self::InProgress,
        Self::Completed,
        Self::RecallRequested,
        Self::RecallAgreed,
        Self::RecallRefused,
    ];

    pub fn parse(s: &str) -> Result<Self, ShapeError> {
        Self::ALL
            .into_iter()
            .find(|c| c.code() == s)
            .ok_or_else(|| {
                ShapeError(format!(
                    "`{s}` is not a status code (01, 02, 03, 04, 05, 06, 13, 15 or 16)"
                ))
            })
    }

    /// The two-digit code as written in packages.
    pub fn code(self) -> &'static str {
        match self {
            Self::Arrived => "01",
            Self::Refused => "02",
            Self::Accepted => "03",
            Self::Assigned => "04",
            Self::InProgress => "05",
            Self::Completed => "06",
            Self::RecallRequested => "13",
            Self::RecallAgreed => "15",
            Self::RecallRefused => "16",
        }
    }

    /// English description.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Arrived => "arrived",
            Self::Refused => "refused",
            Self::Accepted => "accepted",
            Self::Assigned => "assigned",
            Self::InProgress => "in progress",
            Self::Completed => "completed",
            Self::RecallRequested => "recall requested",
            Self::RecallAgreed => "recall agreed",
            Self::RecallRefused => "recall refused",
        }
    }

    /// Recall statuses travel from the original sender (13) and back (15, 16); the rest are sent by
    /// the recipient about its copy.
    pub fn is_recall(self) -> bool {
        matches!(
            self,
            Self::RecallRequested | Self::RecallAgreed | Self::RecallRefused
        )
    }

    /// Sent by the original sender to the recipients (only 13); every other status is sent by a
    /// recipient back to the original sender.
    pub fn is_sent_by_original_sender(self) -> bool {
        self == Self::RecallRequested
    }
}

impl fmt::Display for StatusCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.code(), self.describe())
    }
}

impl TryFrom<String> for StatusCode {
    type Error = ShapeError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<StatusCode> for String {
    fn from(c: StatusCode) -> Self {
        c.code().to_owned()
    }
}

/// Where one recipient's copy stands on both tracks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CopyStatus {
    pub business: Option<StatusCode>,
    pub recall: Option<StatusCode>,
}

/// A status that may not follow the copy's current one, with the reason in words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("status {next} cannot follow {current}: {why}")]
pub struct IllegalTransition {
    pub current: String,
    pub next: StatusCode,
    pub why: String,
}

impl CopyStatus {
    /// Takes a status the recipient's own bus already checked, arriving at a bus on the way back
    /// possibly out of order (statuses cross between buses on several links): the status further
    /// along the flow wins. `None` when it changes nothing.
    pub fn merge(self, next: StatusCode) -> Option<CopyStatus> {
        use StatusCode::*;
        if let Ok(taken) = self.apply(next) {
            return Some(taken);
        }
        let rank = |c: Option<StatusCode>| match c {
            None => 0,
            Some(Arrived | RecallRequested) => 1,
            Some(Refused | Accepted | RecallAgreed | RecallRefused) => 2,
            Some(Assigned) => 3,
            Some(InProgress) => 4,
            Some(Completed) => 5,
        };
        if next.is_recall() {
            (rank(Some(next)) > rank(self.recall)).then_some(CopyStatus {
                recall: Some(next),
                ..self
            })
        } else {
            (rank(Some(next)) > rank(self.business)).then_some(CopyStatus {
                business: Some(next),
                ..self
            })
        }
    }

    /// Applies `next` if the rules allow it, returning the new state.
    pub fn apply(self, next: StatusCode) -> Result<CopyStatus, IllegalTransition> {
        use StatusCode::*;
        let refuse = |why: &str| IllegalTransition {
            current: self.describe(),
            next,
            why: why.to_owned(),
        };
        if next.is_recall() {
            let allowed = match next {
                RecallRequested => matches!(self.recall, None | Some(RecallRefused)),
                _ => self.recall == Some(RecallRequested),
            };
            if !allowed {
                return Err(refuse(match next {
                    RecallRequested => "a recall is already pending or was agreed",
                    _ => "15 and 16 answer a pending recall request (13)",
                }));
            }
            return Ok(CopyStatus {
                recall: Some(next),
                ..self
            });
        }
        if self.recall == Some(RecallAgreed) {
            return Err(refuse("the document was recalled (15)"));
        }
        if self.business == Some(next) {
            // Most often a status sent again after its answer was lost, but rebuilt (a new
            // Timestamp): only the same bytes are recognised as the same status.
            return Err(refuse(
                "the copy already has it; a status sent again is recognised only as the same package, byte for byte",
            ));
        }
        let allowed: &[Option<StatusCode>] = match next {
            Arrived => &[None],
            Refused | Accepted => &[None, Some(Arrived)],
            Assigned => &[Some(Accepted)],
            InProgress => &[Some(Accepted), Some(Assigned)],
            Completed => &[Some(Accepted), Some(Assigned), Some(InProgress)],
            RecallRequested | RecallAgreed | RecallRefused => &[],
        };
        if allowed.contains(&self.business) {
            Ok(CopyStatus {
                business: Some(next),
                ..self
            })
        } else {
            let expected: Vec<String> = allowed
                .iter()
                .map(|s| s.map_or_else(|| "no status yet".to_owned(), |c| c.code().to_owned()))
                .collect();
            Err(refuse(&format!(
                "it may only follow {}",
                expected.join(" or ")
            )))
        }
    }

    fn describe(&self) -> String {
        match (self.business, self.recall) {
            (None, None) => "no status yet".to_owned(),
            (Some(b), None) => b.to_string(),
            (None, Some(r)) => r.to_string(),
            (Some(b), Some(r)) => format!("{b} with {r}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::StatusCode::*;
    use super::*;

    fn run(codes: &[StatusCode]) -> Result<CopyStatus, IllegalTransition> {
        codes
            .iter()
            .try_fold(CopyStatus::default(), |s, &c| s.apply(c))
    }

    #[test]
    fn statuses_arriving_out_of_order_keep_the_one_furthest_along() {
        // 06 overtook 03 and 01 on the way back: they change nothing once 06 is there.
        let s = CopyStatus::default().merge(Completed).expect("06 taken");
        assert_eq!(s.business, Some(Completed));
        assert_eq!(s.merge(Accepted), None);
        assert_eq!(s.merge(Arrived), None);
        // In order, the rules apply as usual; a second recall round after a refusal is taken.
        let s = CopyStatus::default().merge(Arrived).expect("01");
        let s = s.merge(RecallRequested).expect("13");
        let s = s.merge(RecallRefused).expect("16");
        assert_eq!(
            s.merge(RecallRequested).map(|x| x.recall),
            Some(Some(RecallRequested))
        );
        assert_eq!(
            s.merge(RecallAgreed),
            None,
            "15 does not follow 16 and is not further along"
        );
    }

    #[test]
    fn accepts_the_legal_flows() {
        assert!(run(&[Arrived, Accepted, Assigned, InProgress, Completed]).is_ok());
        assert!(run(&[Arrived, Refused]).is_ok());
        assert!(
            run(&[Accepted, Completed]).is_ok(),
            "03 before 01, forward skip"
        );
        assert!(run(&[Arrived, RecallRequested, RecallAgreed]).is_ok());
        assert!(
            run(&[
                RecallRequested,
                RecallRefused,
                RecallRequested,
                RecallAgreed
            ])
            .is_ok()
        );
    }

    #[test]
    fn refuses_illegal_transitions_with_a_reason() {
        let err = run(&[Arrived, Assigned]).expect_err("must be refused");
        assert_eq!(err.next, Assigned);
        assert!(err.to_string().contains("may only follow 03"), "{err}");
        let err = run(&[Arrived, Accepted, Accepted]).expect_err("must be refused");
        assert!(err.to_string().contains("already has it"), "{err}");
        assert!(run(&[Arrived, Arrived]).is_err());
        assert!(run(&[Refused, Accepted]).is_err());
        assert!(run(&[Completed]).is_err());
        assert!(run(&[RecallAgreed]).is_err());
        let err = run(&[RecallRequested, RecallAgreed, Accepted]).expect_err("must be refused");
        assert!(err.to_string().contains("recalled"), "{err}");
    }

    #[test]
    fn parses_every_code_and_nothing_else() {
        for c in StatusCode::ALL {
            assert_eq!(StatusCode::parse(c.code()), Ok(c));
        }
        assert!(StatusCode::parse("07").is_err());
        assert!(StatusCode::parse("1").is_err());
    }
}

//! Signature verdicts, kept for security officers (one per document, written once).

use crate::columns::Columns;
use crate::groups::{StageWrite, StageWritten};
use serde::Serialize;

use crate::{Store, StoreError, get_opt_string, sql};

/// A stored verdict: the searchable fields, and the whole verdict as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerdictRow {
    pub doc_id: String,
    pub sender: String,
    pub sender_system: String,
    /// `valid`, `invalid` or `unsigned`.
    pub outcome: String,
    pub reason_code: Option<String>,
    pub reason: Option<String>,
    pub signer: Option<String>,
    pub issuer: Option<String>,
    pub serial: Option<String>,
    pub signature_method: Option<String>,
    pub verified_ms: i64,
    /// The full verdict (chain, revocation, warnings), JSON.
    pub verdict: String,
}

/// Which verdicts to list.
#[derive(Debug, Clone, Default)]
pub struct VerdictFilter {
    pub outcome: Option<String>,
    /// Substring of the signer's subject.
    pub signer: Option<String>,
    /// Substring of the issuer's name.
    pub issuer: Option<String>,
    pub sender: Option<String>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub limit: Option<i64>,
}

pub(crate) const VERDICT_COLUMNS: &str = "doc_id, sender, sender_system, outcome, reason_code, reason, signer, issuer, serial, signature_method, verified_ms, verdict";

pub(crate) fn verdict_from_row(r: &(impl Columns + ?Sized)) -> Result<VerdictRow, StoreError> {
    Ok(VerdictRow {
        doc_id: r.text("doc_id")?,
        sender: r.text("sender")?,
        sender_system: r.text("sender_system")?,
        outcome: r.text("outcome")?,
        reason_code: get_opt_string(r, "reason_code")?,
        reason: get_opt_string(r, "reason")?,
        signer: get_opt_string(r, "signer")?,
        issuer: get_opt_string(r, "issuer")?,
        serial: get_opt_string(r, "serial")?,
        signature_method: get_opt_string(r, "signature_method")?,
        verified_ms: r.int("verified_ms")?,
        verdict: r.text("verdict")?,
    })
}

impl Store {
    /// Records a verdict; false if the document already has one (a redelivered message).
    pub async fn record_verdict(&self, v: &VerdictRow) -> Result<bool, StoreError> {
        match self
            .groups
            .writes
            .call(StageWrite::Verdict(v.clone()))
            .await?
        {
            StageWritten::Recorded(recorded) => Ok(recorded),
            _ => Err(StoreError::Corrupt(
                "a verdict's write answered another kind".into(),
            )),
        }
    }

    pub async fn verdict(&self, doc_id: &str) -> Result<Option<VerdictRow>, StoreError> {
        self.groups.verdicts.call(doc_id.to_owned()).await
    }

    /// Verdicts matching the filter, newest first.
    pub async fn verdicts(&self, f: &VerdictFilter) -> Result<Vec<VerdictRow>, StoreError> {
        let mut text = format!("SELECT {VERDICT_COLUMNS} FROM verdicts WHERE 1 = 1");
        let mut binds: Vec<String> = Vec::new();
        let mut n = 1;
        let mut clause = |text: &mut String, cond: &str| {
            text.push_str(&format!(" AND {cond} ${n}"));
            n += 1;
        };
        if let Some(o) = &f.outcome {
            clause(&mut text, "outcome =");
            binds.push(o.clone());
        }
        if let Some(s) = &f.signer {
            clause(&mut text, "LOWER(COALESCE(signer, '')) LIKE");
            binds.push(format!("%{}%", s.to_lowercase()));
        }
        if let Some(i) = &f.issuer {
            clause(&mut text, "LOWER(COALESCE(issuer, '')) LIKE");
            binds.push(format!("%{}%", i.to_lowercase()));
        }
        if let Some(s) = &f.sender {
            clause(&mut text, "sender =");
            binds.push(s.clone());
        }
        let from_at = f.from_ms.map(|_| {
            let at = n;
            n += 1;
            at
        });
        let to_at = f.to_ms.map(|_| {
            let at = n;
            n += 1;
            at
        });
        if let Some(at) = from_at {
            text.push_str(&format!(" AND verified_ms >= ${at}"));
        }
        if let Some(at) = to_at {
            text.push_str(&format!(" AND verified_ms < ${at}"));
        }
        text.push_str(&format!(" ORDER BY verified_ms DESC, doc_id LIMIT ${n}"));
        let mut q = sqlx::query(sql(text));
        for b in &binds {
            q = q.bind(b);
        }
        if let Some(from) = f.from_ms {
            q = q.bind(from);
        }
        if let Some(to) = f.to_ms {
            q = q.bind(to);
        }
        q.bind(f.limit.unwrap_or(1000))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(verdict_from_row)
            .collect()
    }
}

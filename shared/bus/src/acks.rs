//! A consumer's acks, gathered: one `basic.ack` with `multiple` for a run of deliveries settled
//! together, instead of one frame for each.
//!
//! On a quorum queue every ack frame is a command in the queue's replicated log, and the broker
//! spends about a quarter less CPU on a message acked 64 at a time than on one acked alone
//! (`docs/performance.md`). The stages settle their messages in groups (a group's writes are one
//! commit, and every handler waiting on it finishes at once), so the acks come in runs.
//!
//! What must never happen, and how it does not:
//! - **An ack for a delivery not settled.** `multiple` acks every delivery up to its tag, so one
//!   is sent only for a run that starts at the oldest delivery still open on the channel and is
//!   settled to its end. Deliveries are noted as taken, in the order the broker sent them, before
//!   their handlers start.
//! - **A rejected message acked instead of dead-lettered.** Its reject is sent before an ack that
//!   covers its tag; the broker no longer holds it as unacked then, so the ack leaves it alone.
//! - **A message kept for redelivery acked.** A delivery left unacked on purpose (a retry at
//!   shutdown, a closed channel) stays open: no `multiple` ack is sent past it on this channel.
//! - **A delivery acked twice**, which closes the channel: each leaves the window when its ack,
//!   its reject or the `multiple` ack that covers it is sent.
//! - **Acks held back behind a slow message**, which would fill the prefetch window: a delivery
//!   settled after one still in hand is acked alone, at once.

use std::collections::BTreeMap;

use lapin::options::{BasicAckOptions, BasicRejectOptions};
use tokio::sync::mpsc;

/// How a handler left a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Settled {
    /// Handled: ack it.
    Acked,
    /// Poison: reject it, not requeued (the dead-letter queue takes it).
    Rejected,
    /// Left unacked on purpose, for the broker to hand out again once the channel closes.
    Kept,
}

/// What to send the broker for the window's deliveries, in the order given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Send {
    /// `basic.ack` of `tag`, and with `multiple` of every delivery before it still unacked.
    Ack { tag: u64, multiple: bool },
    /// `basic.reject` of `tag`, not requeued.
    Reject { tag: u64 },
}

/// The deliveries of one channel not yet acked or rejected, by delivery tag. `A` is what sends
/// for one delivery (lapin's `Acker`; anything in the tests).
#[derive(Debug)]
pub(crate) struct AckWindow<A> {
    open: BTreeMap<u64, (Option<Settled>, A)>,
}

impl<A> Default for AckWindow<A> {
    fn default() -> Self {
        Self {
            open: BTreeMap::new(),
        }
    }
}

impl<A> AckWindow<A> {
    /// A delivery the consumer took, before its handler starts.
    pub(crate) fn taken(&mut self, tag: u64, acker: A) {
        self.open.insert(tag, (None, acker));
    }

    /// How the delivery `tag` was left.
    pub(crate) fn settled(&mut self, tag: u64, how: Settled) {
        if let Some(entry) = self.open.get_mut(&tag) {
            entry.0 = Some(how);
        }
    }

    /// What can be sent now, each with the sender of its delivery; those deliveries leave the
    /// window. Rejects and lone acks come first, the `multiple` ack of the leading run last.
    pub(crate) fn due(&mut self) -> Vec<(Send, A)> {
        let mut sends = Vec::new();
        // The run of settled deliveries from the oldest open one: its last acked delivery, and
        // how many acks it holds.
        let mut run: Option<(u64, A, usize)> = None;
        let mut leading = true;
        for (tag, (state, acker)) in std::mem::take(&mut self.open) {
            match state {
                None | Some(Settled::Kept) => {
                    leading = false;
                    self.open.insert(tag, (state, acker));
                }
                Some(Settled::Rejected) => sends.push((Send::Reject { tag }, acker)),
                Some(Settled::Acked) if leading => {
                    let acks = run.take().map_or(0, |(_, _, n)| n) + 1;
                    run = Some((tag, acker, acks));
                }
                Some(Settled::Acked) => sends.push((
                    Send::Ack {
                        tag,
                        multiple: false,
                    },
                    acker,
                )),
            }
        }
        if let Some((tag, acker, acks)) = run {
            sends.push((
                Send::Ack {
                    tag,
                    multiple: acks > 1,
                },
                acker,
            ));
        }
        sends
    }

    /// Deliveries still open (in hand, or kept for redelivery).
    #[cfg(test)]
    pub(crate) fn open(&self) -> usize {
        self.open.len()
    }
}

/// What the consumer and the handlers tell the acks' task.
#[derive(Debug)]
pub(crate) enum Note {
    Taken(u64, lapin::Acker),
    Settled(u64, Settled),
}

/// The acks of one channel, sent by a task of their own in the order the window gives.
#[derive(Debug, Clone)]
pub(crate) struct Acks {
    notes: mpsc::UnboundedSender<Note>,
}

impl Acks {
    /// Starts the task for the consumer of `queue`; it ends once every [`Acks`] is dropped and
    /// what they said is sent.
    pub(crate) fn start(queue: String) -> (Self, tokio::task::JoinHandle<()>) {
        let (notes, rx) = mpsc::unbounded_channel();
        (Self { notes }, tokio::spawn(send_acks(rx, queue)))
    }

    /// A delivery taken, before its handler starts.
    pub(crate) fn taken(&self, tag: u64, acker: lapin::Acker) {
        let _ = self.notes.send(Note::Taken(tag, acker));
    }

    /// How the delivery `tag` was left.
    pub(crate) fn settled(&self, tag: u64, how: Settled) {
        let _ = self.notes.send(Note::Settled(tag, how));
    }
}

async fn send_acks(mut notes: mpsc::UnboundedReceiver<Note>, queue: String) {
    let mut window = AckWindow::default();
    let note = |window: &mut AckWindow<lapin::Acker>, note| match note {
        Note::Taken(tag, acker) => window.taken(tag, acker),
        Note::Settled(tag, how) => window.settled(tag, how),
    };
    while let Some(first) = notes.recv().await {
        note(&mut window, first);
        // The handlers woken by the same commit finish first, so their acks go as one.
        tokio::task::yield_now().await;
        while let Ok(more) = notes.try_recv() {
            note(&mut window, more);
        }
        for (send, acker) in window.due() {
            let (sent, kind) = match send {
                Send::Ack { multiple, .. } => (
                    acker.ack(BasicAckOptions { multiple }).await,
                    if multiple { "multiple" } else { "one" },
                ),
                Send::Reject { .. } => (
                    acker.reject(BasicRejectOptions { requeue: false }).await,
                    "reject",
                ),
            };
            metrics::counter!("lienthong_acks_sent_total", "queue" => queue.clone(), "kind" => kind)
                .increment(1);
            if let Err(e) = sent {
                tracing::warn!(%queue, ?send, error = %e, "ack failed; the broker will redeliver");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(tags: std::ops::RangeInclusive<u64>) -> AckWindow<u64> {
        let mut w = AckWindow::default();
        for tag in tags {
            w.taken(tag, tag);
        }
        w
    }

    fn sends(w: &mut AckWindow<u64>) -> Vec<Send> {
        w.due()
            .into_iter()
            .map(|(send, acker)| {
                let tag = match send {
                    Send::Ack { tag, .. } | Send::Reject { tag } => tag,
                };
                assert_eq!(tag, acker, "each send goes with its own delivery's sender");
                send
            })
            .collect()
    }

    #[test]
    fn a_run_settled_together_is_one_multiple_ack_of_its_last_tag() {
        let mut w = window(1..=5);
        for tag in [3, 1, 2] {
            w.settled(tag, Settled::Acked);
        }
        assert_eq!(
            sends(&mut w),
            [Send::Ack {
                tag: 3,
                multiple: true
            }]
        );
        assert_eq!(w.open(), 2);
        w.settled(4, Settled::Acked);
        assert_eq!(
            sends(&mut w),
            [Send::Ack {
                tag: 4,
                multiple: false
            }],
            "one delivery alone is acked alone"
        );
        assert_eq!(sends(&mut w), [], "nothing is sent twice");
    }

    #[test]
    fn deliveries_settled_after_one_still_in_hand_are_acked_alone_at_once() {
        let mut w = window(1..=4);
        for tag in [2, 4] {
            w.settled(tag, Settled::Acked);
        }
        assert_eq!(
            sends(&mut w),
            [
                Send::Ack {
                    tag: 2,
                    multiple: false
                },
                Send::Ack {
                    tag: 4,
                    multiple: false
                }
            ]
        );
        w.settled(1, Settled::Acked);
        w.settled(3, Settled::Acked);
        assert_eq!(
            sends(&mut w),
            [Send::Ack {
                tag: 3,
                multiple: true
            }],
            "2 and 4 are no longer open: the run is 1 and 3"
        );
        assert_eq!(w.open(), 0);
    }

    #[test]
    fn a_reject_goes_before_the_ack_that_covers_its_tag() {
        let mut w = window(1..=3);
        w.settled(1, Settled::Acked);
        w.settled(2, Settled::Rejected);
        w.settled(3, Settled::Acked);
        assert_eq!(
            sends(&mut w),
            [
                Send::Reject { tag: 2 },
                Send::Ack {
                    tag: 3,
                    multiple: true
                }
            ]
        );
    }

    #[test]
    fn a_run_of_rejects_alone_sends_no_ack() {
        let mut w = window(1..=2);
        w.settled(1, Settled::Rejected);
        w.settled(2, Settled::Rejected);
        assert_eq!(
            sends(&mut w),
            [Send::Reject { tag: 1 }, Send::Reject { tag: 2 }]
        );
        assert_eq!(w.open(), 0);
    }

    #[test]
    fn no_multiple_ack_passes_a_delivery_kept_for_redelivery() {
        let mut w = window(1..=4);
        w.settled(1, Settled::Acked);
        w.settled(2, Settled::Kept);
        w.settled(3, Settled::Acked);
        w.settled(4, Settled::Acked);
        assert_eq!(
            sends(&mut w),
            [
                Send::Ack {
                    tag: 3,
                    multiple: false
                },
                Send::Ack {
                    tag: 4,
                    multiple: false
                },
                Send::Ack {
                    tag: 1,
                    multiple: false
                },
            ]
        );
        w.taken(5, 5);
        w.taken(6, 6);
        w.settled(5, Settled::Acked);
        w.settled(6, Settled::Acked);
        assert_eq!(
            sends(&mut w),
            [
                Send::Ack {
                    tag: 5,
                    multiple: false
                },
                Send::Ack {
                    tag: 6,
                    multiple: false
                }
            ],
            "the kept delivery stays open, and every later ack is its own"
        );
        assert_eq!(w.open(), 1);
    }

    #[test]
    fn a_settlement_of_a_delivery_not_taken_changes_nothing() {
        let mut w = window(1..=1);
        w.settled(7, Settled::Acked);
        assert_eq!(sends(&mut w), []);
        assert_eq!(w.open(), 1);
    }
}

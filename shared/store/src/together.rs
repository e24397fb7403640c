//! Store calls that many tasks make at about the same time, answered by one statement.
//!
//! A process running the stages has up to `bus.prefetch` documents in flight, and each stage
//! asks the store the same things of each of them: its legs, its verdict, its rendition, the
//! recipients' agencies; then moves a leg on. Asked one at a time, every call is a round trip
//! to the database (on SQLite, a hand-off to the connection's thread and back), about twenty per
//! document, and those hand-offs, not the statements, were most of the stages' CPU
//! (`docs/performance.md`).
//!
//! Here each kind of call has one task. When it wakes it takes every call of its kind that is
//! waiting (up to [`MAX_GROUP`]), makes them in one statement (or one transaction), and answers
//! each. There is no timer: a call made when no other waits goes alone, as soon as the tasks
//! that were ready to run beside it have run ([`gather`]); under load, the calls made while a
//! statement runs go together in the next ("smart batching"), so the groups grow with the load
//! that needs them. The stages' writes (a leg moved on, a verdict,
//! a small rendition) are one kind whatever they write, made in one transaction: a process holds
//! documents at every stage at once, so the writes waiting together are of every kind, and a
//! transaction per kind was a commit per kind. One group of a kind runs at a time, on PostgreSQL
//! too: four side by side there made the groups smaller and the bus slower, the database's
//! server sharing the CPU with the bus (`docs/performance.md`).
//!
//! A kind whose statement is a call on the asking thread, with no hand-off to save (SQLite's
//! reads, made in place: `in_place.rs`), is made by its caller at once, alone: gathering it
//! would add the hand-offs to and from the task that grouping is there to share.
//!
//! Each call is answered as if it had been made alone at some instant between its being made
//! and answered: reads read committed rows, and a conditional write reports whether it took
//! effect. Two calls of one group that write the same row are made one after the other, in the
//! order they came. When a grouped statement fails, each call of the group is made again alone,
//! so each gets its own answer or its own error.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures_util::FutureExt;
use tokio::sync::{mpsc, oneshot};

use crate::{BoxFuture, StoreError};

/// The most calls made in one statement.
pub(crate) const MAX_GROUP: usize = 64;

/// A kind of call that can be made for many callers at once.
pub(crate) trait Group: Send + Sync + 'static {
    type Call: Send + Sync + 'static;
    type Answer: Send + 'static;
    /// Its name, for metrics and logs.
    const KIND: &'static str;
    /// Makes `calls` (at least one) and answers each, in order.
    fn run<'a>(
        &'a self,
        calls: &'a [Self::Call],
    ) -> BoxFuture<'a, Result<Vec<Self::Answer>, StoreError>>;
    /// Whether a call is made on the caller's own thread, with no hand-off to another: then
    /// each caller makes its call alone, at once.
    fn in_place(&self) -> bool {
        false
    }
}

type Waiting<G> = (
    <G as Group>::Call,
    oneshot::Sender<Result<<G as Group>::Answer, StoreError>>,
);

/// Where calls of one kind wait for the task that makes them.
pub(crate) struct Together<G: Group> {
    calls: mpsc::UnboundedSender<Waiting<G>>,
    group: Arc<G>,
}

impl<G: Group> Together<G> {
    /// Starts the task that makes `group`'s calls. It ends when the last handle is dropped.
    pub(crate) fn spawn(group: G) -> Self {
        let group = Arc::new(group);
        let (calls, mut waiting) = mpsc::unbounded_channel::<Waiting<G>>();
        let task_group = Arc::clone(&group);
        tokio::spawn(async move {
            let group = task_group;
            let mut next = Vec::with_capacity(MAX_GROUP);
            while gather(&mut waiting, &mut next, MAX_GROUP).await > 0 {
                let (calls, answers): (Vec<_>, Vec<_>) = std::mem::take(&mut next)
                    .into_iter()
                    .filter(|(_, answer)| !answer.is_closed())
                    .unzip();
                if calls.is_empty() {
                    continue;
                }
                metrics::histogram!("lienthong_store_group_calls", "kind" => G::KIND)
                    .record(calls.len() as f64);
                answer(&*group, &calls, answers).await;
            }
        });
        Self { calls, group }
    }

    /// Makes `call`, with whatever calls of its kind wait beside it; or alone, at once, when
    /// calls of its kind are made in place.
    pub(crate) async fn call(&self, call: G::Call) -> Result<G::Answer, StoreError> {
        if self.group.in_place() {
            return alone(&*self.group, &call).await;
        }
        let (answer, answered) = oneshot::channel();
        self.calls
            .send((call, answer))
            .map_err(|_| StoreError::Database(sqlx::Error::PoolClosed))?;
        answered
            .await
            .map_err(|_| StoreError::Database(sqlx::Error::PoolClosed))?
    }
}

/// Adds to `into` what waits on `waiting`, up to `max`: at least one (waiting for it), then,
/// once the tasks that were ready when it came have run, whatever they added. The number
/// added: `0` when the channel is closed and empty.
///
/// The runtime runs a task woken by the one it is running next, before the tasks that were
/// ready already (tokio's "LIFO slot"): without the yield, the task that makes a group would
/// take the first call the moment its caller paused, and the calls the other ready tasks were
/// about to make would wait for the next group. Yielding costs no timer: the group goes as soon
/// as nothing else is ready to run.
pub async fn gather<T>(
    waiting: &mut mpsc::UnboundedReceiver<T>,
    into: &mut Vec<T>,
    max: usize,
) -> usize {
    gather_after(waiting, into, max, tokio::task::yield_now).await
}

/// [`gather`], pausing with `pause()` instead of a yield between the first and the rest (a
/// timer, for writes nothing waits on: the outbox's marks).
pub async fn gather_after<T, F: std::future::Future<Output = ()>>(
    waiting: &mut mpsc::UnboundedReceiver<T>,
    into: &mut Vec<T>,
    max: usize,
    pause: impl FnOnce() -> F,
) -> usize {
    let mut added = waiting.recv_many(into, max).await;
    if added == 0 {
        return 0;
    }
    if added < max {
        pause().await;
        while added < max {
            match waiting.try_recv() {
                Ok(call) => into.push(call),
                Err(_) => break,
            }
            added += 1;
        }
    }
    added
}

/// Makes `calls` together, or each alone when together fails, and answers them.
async fn answer<G: Group>(
    group: &G,
    calls: &[G::Call],
    answers: Vec<oneshot::Sender<Result<G::Answer, StoreError>>>,
) {
    let together = contained(group.run(calls)).await.and_then(|answered| {
        if answered.len() == calls.len() {
            Ok(answered)
        } else {
            Err(StoreError::Corrupt(format!(
                "{} answered {} calls of {}",
                G::KIND,
                answered.len(),
                calls.len()
            )))
        }
    });
    match together {
        Ok(answered) => {
            for (answer, answered) in answers.into_iter().zip(answered) {
                let _ = answer.send(Ok(answered));
            }
        }
        Err(e) if calls.len() == 1 => {
            let _ = answers.into_iter().next().map(|a| a.send(Err(e)));
        }
        Err(e) => {
            tracing::debug!(kind = G::KIND, calls = calls.len(), error = %e, "a group of store calls failed; making each alone");
            for (call, answer) in calls.iter().zip(answers) {
                let _ = answer.send(alone(group, call).await);
            }
        }
    }
}

/// Makes one call alone.
async fn alone<G: Group>(group: &G, call: &G::Call) -> Result<G::Answer, StoreError> {
    contained(group.run(std::slice::from_ref(call)))
        .await
        .and_then(|mut a| {
            a.pop()
                .ok_or_else(|| StoreError::Corrupt(format!("{} answered no call", G::KIND)))
        })
}

/// A group's statement, with a panic in it turned into an error for its callers (the task lives
/// on for the next calls).
async fn contained<T>(run: impl Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
    AssertUnwindSafe(run)
        .catch_unwind()
        .await
        .unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Err(StoreError::Corrupt(format!(
                "a store call panicked: {what}"
            )))
        })
}

/// The index of each call's first call with the same key, for calls that must not be made
/// twice in one statement: `firsts` are made together, the others after, one at a time.
pub(crate) fn first_of_each<K: PartialEq>(keys: &[K]) -> (Vec<usize>, Vec<usize>) {
    let mut firsts = Vec::new();
    let mut again = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        if keys[..i].contains(key) {
            again.push(i);
        } else {
            firsts.push(i);
        }
    }
    (firsts, again)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Doubles numbers; fails any group holding 13, panics on 666; counts its statements.
    struct Doubling {
        statements: Arc<AtomicUsize>,
        gate: Arc<tokio::sync::Semaphore>,
    }

    impl Group for Doubling {
        type Call = u32;
        type Answer = u32;
        const KIND: &'static str = "test";
        fn run<'a>(&'a self, calls: &'a [u32]) -> BoxFuture<'a, Result<Vec<u32>, StoreError>> {
            Box::pin(async move {
                let _open = self.gate.acquire().await;
                self.statements.fetch_add(1, Ordering::SeqCst);
                if calls.contains(&666) {
                    panic!("the number of the beast");
                }
                if calls.contains(&13) {
                    return Err(StoreError::Corrupt("unlucky".into()));
                }
                Ok(calls.iter().map(|c| c * 2).collect())
            })
        }
    }

    fn doubling() -> (
        Arc<Together<Doubling>>,
        Arc<AtomicUsize>,
        Arc<tokio::sync::Semaphore>,
    ) {
        let statements = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let together = Together::spawn(Doubling {
            statements: Arc::clone(&statements),
            gate: Arc::clone(&gate),
        });
        (Arc::new(together), statements, gate)
    }

    /// Makes each of `calls` in a task of its own, lets the first statement wait until all are
    /// queued, and returns the answers in order.
    async fn make_all(
        together: &Arc<Together<Doubling>>,
        gate: &tokio::sync::Semaphore,
        calls: &[u32],
    ) -> Vec<Result<u32, String>> {
        let tasks: Vec<_> = calls
            .iter()
            .map(|&c| {
                let t = Arc::clone(together);
                tokio::spawn(async move { t.call(c).await.map_err(|e| e.to_string()) })
            })
            .collect();
        tokio::task::yield_now().await;
        gate.add_permits(1000);
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.expect("task"));
        }
        out
    }

    #[tokio::test]
    async fn calls_waiting_together_are_made_in_one_statement_and_each_answered() {
        let (together, statements, gate) = doubling();
        let answers = make_all(&together, &gate, &[1, 2, 3, 4, 5]).await;
        assert_eq!(answers, vec![Ok(2), Ok(4), Ok(6), Ok(8), Ok(10)]);
        // The first call may have been taken alone before the others came: at most two.
        let made = statements.load(Ordering::SeqCst);
        assert!((1..=2).contains(&made), "{made} statements for 5 calls");
        // A call with none beside it is answered at once, alone.
        assert_eq!(together.call(21).await.expect("alone"), 42);
    }

    #[tokio::test]
    async fn a_failed_group_makes_each_call_alone_so_only_the_failing_one_fails() {
        let (together, _, gate) = doubling();
        let answers = make_all(&together, &gate, &[1, 13, 3]).await;
        assert_eq!(answers[0], Ok(2));
        assert_eq!(
            answers[1],
            Err("stored data is inconsistent: unlucky".into())
        );
        assert_eq!(answers[2], Ok(6));
    }

    #[tokio::test]
    async fn a_panic_fails_only_its_call_and_the_task_lives_on() {
        let (together, _, gate) = doubling();
        let answers = make_all(&together, &gate, &[1, 666]).await;
        assert_eq!(answers[0], Ok(2));
        assert!(
            answers[1]
                .as_ref()
                .is_err_and(|e| e.contains("the number of the beast")),
            "{answers:?}"
        );
        assert_eq!(together.call(4).await.expect("after the panic"), 8);
    }

    /// The calls that tasks ready at the same moment make go in one group, though the task that
    /// gathers them is woken by the first (and a runtime of one thread runs a task woken by the
    /// running one next), and none is left behind.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_group_takes_the_calls_of_every_task_that_was_ready() {
        let (calls, mut waiting) = mpsc::unbounded_channel::<usize>();
        let gathered = tokio::spawn(async move {
            let mut groups = Vec::new();
            let mut next = Vec::new();
            while gather(&mut waiting, &mut next, 64).await > 0 {
                groups.push(std::mem::take(&mut next));
            }
            groups
        });
        // The gathering task waits on the empty channel before any caller runs.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        tokio::spawn(async move {
            for i in 0..10 {
                let calls = calls.clone();
                tokio::spawn(async move { calls.send(i).expect("gathering") });
            }
        })
        .await
        .expect("callers spawned");
        let groups = gathered.await.expect("gathered");
        let mut all: Vec<usize> = groups.concat();
        all.sort_unstable();
        assert_eq!(all, (0..10).collect::<Vec<_>>(), "every call, once");
        assert_eq!(groups.len(), 1, "one group: {groups:?}");
    }

    #[test]
    fn repeated_keys_are_made_after_the_first_of_each() {
        let (firsts, again) = first_of_each(&["a", "b", "a", "c", "b", "a"]);
        assert_eq!(firsts, vec![0, 1, 3]);
        assert_eq!(again, vec![2, 4, 5]);
    }
}

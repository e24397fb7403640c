//! Acceptances stored together. The requests that reach the point of storing their document
//! while a group is being stored wait for its commit and then go in together: one transaction
//! for all of them, each statement carrying every document (`Store::accept_many`), instead of a
//! transaction and four statements each. Nothing waits for a group to fill: a request that
//! finds no other is stored alone as soon as the tasks ready beside it have run
//! (`lienthong_store::gather`), so a quiet bus answers as fast as before, and a busy one stores
//! as many at a time as arrived during the last group's commit.
//!
//! Each request still gets its own answer, after the commit that stored its document, and
//! publishes its own messages with confirms before answering. A group that fails is retried a
//! document at a time, so one document that cannot be stored fails alone.

use std::sync::Arc;

use lienthong_store::{Acceptance, Backend, NewDocument, OutboxMessage, Store, StoreError};
use tokio::sync::{Mutex, mpsc, oneshot};

/// At most this many documents in one group (17 bound values each in its `INSERT`).
const MAX_GROUP: usize = 64;

/// One request's document, waiting for its group.
struct Waiting {
    doc: NewDocument,
    outbox: Vec<OutboxMessage>,
    answer: oneshot::Sender<Result<Acceptance, StoreError>>,
}

/// The queue of documents to store, and the tasks that store them in groups.
#[derive(Debug, Clone)]
pub struct Acceptances {
    queue: mpsc::UnboundedSender<Waiting>,
}

/// The acceptance tasks stopped (the runtime is shutting down): nothing was stored.
#[derive(Debug, thiserror::Error)]
#[error("the gateway is stopping: the document was not stored")]
pub struct Stopping;

impl Acceptances {
    /// Starts the storing tasks on the current runtime; they end when every `Acceptances` is
    /// gone. SQLite takes one writer at a time, so one task; PostgreSQL takes several, so while
    /// one group commits the next can be gathered and stored by another task.
    pub fn start(store: Store) -> Self {
        let (queue, waiting) = mpsc::unbounded_channel::<Waiting>();
        let waiting = Arc::new(Mutex::new(waiting));
        let tasks = match store.backend() {
            Backend::Sqlite => 1,
            Backend::Postgres => 4,
        };
        for _ in 0..tasks {
            let (store, waiting) = (store.clone(), waiting.clone());
            tokio::spawn(async move {
                let mut group = Vec::with_capacity(MAX_GROUP);
                loop {
                    // Whatever is waiting, one at least, and what the tasks ready beside it
                    // add: no timer, no group left to fill.
                    if lienthong_store::gather(&mut *waiting.lock().await, &mut group, MAX_GROUP)
                        .await
                        == 0
                    {
                        return;
                    }
                    store_group(&store, &mut group).await;
                }
            });
        }
        Self { queue }
    }

    /// Stores `doc` with its outbox messages, with whatever other documents are being accepted
    /// at the same moment; the answer is what `Store::accept` would have given it alone.
    pub async fn accept(
        &self,
        doc: NewDocument,
        outbox: Vec<OutboxMessage>,
    ) -> Result<Result<Acceptance, StoreError>, Stopping> {
        let (answer, answered) = oneshot::channel();
        self.queue
            .send(Waiting {
                doc,
                outbox,
                answer,
            })
            .map_err(|_| Stopping)?;
        answered.await.map_err(|_| Stopping)
    }
}

async fn store_group(store: &Store, group: &mut Vec<Waiting>) {
    let accepted = {
        let batch: Vec<_> = group
            .iter()
            .map(|w| (&w.doc, w.outbox.as_slice()))
            .collect();
        store.accept_many(&batch).await
    };
    metrics::histogram!("lienthong_acceptance_group_documents").record(group.len() as f64);
    for (waiting, result) in group.drain(..).zip(accepted.results) {
        // A request that gave up meanwhile: its document is stored, and the outbox relay
        // publishes its messages.
        let _ = waiting.answer.send(result);
    }
}

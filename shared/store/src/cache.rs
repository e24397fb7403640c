//! Documents as they were read, kept in the process: a document's row never changes once its
//! acceptance commits (`documents` has no UPDATE), so the stages of a chain, which each start from
//! the document, read it from the database once. Bounded; the oldest entries go first.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use crate::DocumentRow;

/// How many documents a process keeps by default (`store.cached_documents`): the ones in flight,
/// with room to spare. A row is a few hundred bytes, so about 2 MB.
pub const CACHED_DOCUMENTS: usize = 4096;

#[derive(Debug)]
pub(crate) struct DocumentCache {
    capacity: usize,
    inner: Mutex<Entries>,
}

#[derive(Debug, Default)]
struct Entries {
    rows: HashMap<String, DocumentRow>,
    order: VecDeque<String>,
}

impl DocumentCache {
    /// Keeps up to `capacity` documents; 0 keeps none.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            inner: Mutex::default(),
        }
    }

    pub(crate) fn get(&self, doc_id: &str) -> Option<DocumentRow> {
        if self.capacity == 0 {
            return None;
        }
        let entries = self.inner.lock().ok()?;
        let row = entries.rows.get(doc_id).cloned();
        metrics::counter!("lienthong_document_cache_total", "outcome" => if row.is_some() { "hit" } else { "miss" })
            .increment(1);
        row
    }

    pub(crate) fn put(&self, row: &DocumentRow) {
        if self.capacity == 0 {
            return;
        }
        let Ok(mut entries) = self.inner.lock() else {
            return;
        };
        if entries.rows.contains_key(&row.doc_id) {
            return;
        }
        while entries.order.len() >= self.capacity {
            if let Some(oldest) = entries.order.pop_front() {
                entries.rows.remove(&oldest);
            }
        }
        entries.order.push_back(row.doc_id.clone());
        entries.rows.insert(row.doc_id.clone(), row.clone());
    }
}

/// How many bytes of small blobs a process keeps by default (`store.cached_blob_bytes`).
pub const CACHED_BLOB_BYTES: usize = 16 * 1024 * 1024;

/// Small blobs from the database, checked against their SHA-256 when read: a blob is named by
/// its digest, so it never changes. The verifier and the translator of a chain read the package
/// once. Bounded by bytes; the oldest go first, and a blob over a sixteenth of the bound is
/// not kept.
#[derive(Debug)]
pub(crate) struct BlobCache {
    capacity: usize,
    inner: Mutex<Blobs>,
}

#[derive(Debug, Default)]
struct Blobs {
    bytes: HashMap<String, Arc<Vec<u8>>>,
    order: VecDeque<String>,
    held: usize,
}

impl BlobCache {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            inner: Mutex::default(),
        }
    }

    pub(crate) fn get(&self, key: &str) -> Option<Arc<Vec<u8>>> {
        if self.capacity == 0 {
            return None;
        }
        self.inner.lock().ok()?.bytes.get(key).cloned()
    }

    pub(crate) fn put(&self, key: &str, bytes: &Arc<Vec<u8>>) {
        if bytes.len() > self.capacity / 16 {
            return;
        }
        let Ok(mut blobs) = self.inner.lock() else {
            return;
        };
        if blobs.bytes.contains_key(key) {
            return;
        }
        while blobs.held + bytes.len() > self.capacity {
            let Some(oldest) = blobs.order.pop_front() else {
                break;
            };
            if let Some(gone) = blobs.bytes.remove(&oldest) {
                blobs.held -= gone.len();
            }
        }
        blobs.held += bytes.len();
        blobs.order.push_back(key.to_owned());
        blobs.bytes.insert(key.to_owned(), Arc::clone(bytes));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lienthong_edxml::{Format, MessageType};

    fn row(doc_id: &str) -> DocumentRow {
        DocumentRow {
            doc_id: doc_id.into(),
            message_type: MessageType::Edoc,
            sender: "000.00.00.H49".into(),
            sender_system: "s".into(),
            document_id: "1/QD".into(),
            subject: None,
            status_code: None,
            response_for: None,
            size: 1,
            sha256: String::new(),
            created_ms: 0,
            format: Format::Edxml,
            arrival: None,
        }
    }

    #[test]
    fn keeps_what_it_was_given_and_drops_the_oldest_past_its_capacity() {
        const CAPACITY: usize = 100;
        let cache = DocumentCache::new(CAPACITY);
        assert_eq!(cache.get("d0"), None);
        for i in 0..=CAPACITY {
            cache.put(&row(&format!("d{i}")));
        }
        assert_eq!(cache.get("d0"), None, "the oldest went");
        assert_eq!(cache.get("d1"), Some(row("d1")));
        assert_eq!(
            cache.get(&format!("d{CAPACITY}")),
            Some(row(&format!("d{CAPACITY}")))
        );
        // The same document again takes no second place.
        cache.put(&row("d1"));
        let entries = cache.inner.lock().expect("lock");
        assert_eq!(entries.rows.len(), CAPACITY);
        assert_eq!(entries.order.len(), CAPACITY);
    }

    #[test]
    fn blobs_are_kept_within_their_bytes_and_large_ones_not_at_all() {
        let cache = BlobCache::new(1600);
        let blob = |n: usize| Arc::new(vec![0u8; n]);
        cache.put("big", &blob(101));
        assert!(cache.get("big").is_none(), "over a sixteenth of the bound");
        for i in 0..16 {
            cache.put(&format!("b{i}"), &blob(100));
        }
        assert!(cache.get("b0").is_some());
        cache.put("b16", &blob(100));
        assert!(cache.get("b0").is_none(), "the oldest made room");
        assert_eq!(cache.get("b16").map(|b| b.len()), Some(100));
        assert_eq!(cache.inner.lock().expect("lock").held, 1600);
        let off = BlobCache::new(0);
        off.put("b", &blob(0));
        assert!(off.get("b").is_none());
    }

    #[test]
    fn a_capacity_of_zero_keeps_nothing() {
        let cache = DocumentCache::new(0);
        cache.put(&row("d1"));
        assert_eq!(cache.get("d1"), None);
    }
}

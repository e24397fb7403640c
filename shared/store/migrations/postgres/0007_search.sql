-- Searches at national scale (docs/performance.md, "Searching 10 million documents"): an
-- agency's documents, sent or received, newest first, a page at a time. Document ids are UUIDv7,
-- so their order is the order of acceptance and a date range is a range of ids.
CREATE INDEX documents_sender_id ON documents (sender, doc_id);
CREATE INDEX legs_recipient_id ON legs (recipient, doc_id);
-- Failed copies, newest first: few of them, so a partial index.
CREATE INDEX legs_failed ON legs (updated_ms) WHERE delivery = 'failed';

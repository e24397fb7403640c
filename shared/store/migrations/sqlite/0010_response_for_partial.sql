-- Only a status package answers a document: an edoc's `response_for` is NULL, and indexing those
-- NULLs wrote a leaf of this index for every edoc accepted, read by nothing. The index keeps the
-- statuses only; `d.response_for = $1` (the trace) implies NOT NULL, so it is still used.
DROP INDEX documents_response_for;
CREATE INDEX documents_response_for ON documents (response_for) WHERE response_for IS NOT NULL;

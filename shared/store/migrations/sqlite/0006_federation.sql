-- Routing between buses.
-- The bus that serves an agency (NULL: this bus). A province bus that imports the national
-- registry knows every agency, each with the bus that serves it.
ALTER TABLE agencies ADD COLUMN bus TEXT;
-- A document that arrived from another bus: that bus, its docId there (the receipts for its
-- legs go back there), the buses it passed (origin first) and their TraceHeaders (JSON).
ALTER TABLE documents ADD COLUMN peer TEXT;
ALTER TABLE documents ADD COLUMN peer_doc TEXT;
ALTER TABLE documents ADD COLUMN via TEXT;
ALTER TABLE documents ADD COLUMN trace TEXT;
-- The bus a leg was forwarded to (NULL: delivered here).
ALTER TABLE legs ADD COLUMN bus TEXT;

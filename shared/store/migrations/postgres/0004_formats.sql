-- Schema translation: the format each agency receives and its e-doc.vn code, the format each document came in, and
-- the renditions the translator produced (stored like packages, content-addressed).
ALTER TABLE agencies ADD COLUMN receive_format TEXT NOT NULL DEFAULT 'edxml';
-- The 9-character code (CC.BB.Lnn) an e-doc.vn system knows the agency by.
ALTER TABLE agencies ADD COLUMN legacy_code TEXT;
CREATE UNIQUE INDEX agencies_legacy_code ON agencies (legacy_code);
ALTER TABLE documents ADD COLUMN format TEXT NOT NULL DEFAULT 'edxml';

CREATE TABLE renditions (
    doc_id      TEXT NOT NULL REFERENCES documents (doc_id),
    format      TEXT NOT NULL,
    size        BIGINT NOT NULL,
    sha256      TEXT NOT NULL,
    created_ms  BIGINT NOT NULL,
    PRIMARY KEY (doc_id, format)
);

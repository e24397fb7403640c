CREATE TABLE verdicts (
    doc_id           TEXT PRIMARY KEY,
    sender           TEXT NOT NULL,
    sender_system    TEXT NOT NULL,
    outcome          TEXT NOT NULL,
    reason_code      TEXT,
    reason           TEXT,
    signer           TEXT,
    issuer           TEXT,
    serial           TEXT,
    signature_method TEXT,
    verified_ms      BIGINT NOT NULL,
    verdict          TEXT NOT NULL
);
CREATE INDEX verdicts_time ON verdicts (verified_ms);
CREATE INDEX verdicts_outcome ON verdicts (outcome, verified_ms);

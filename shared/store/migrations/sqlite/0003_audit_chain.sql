-- The ledger as a hash chain: each event's hash covers the previous event's hash.
ALTER TABLE events ADD COLUMN chain_seq INTEGER;
ALTER TABLE events ADD COLUMN prev_hash TEXT;
ALTER TABLE events ADD COLUMN hash TEXT;
CREATE UNIQUE INDEX events_chain ON events (chain_seq);

CREATE TABLE audit_head (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    seq   INTEGER NOT NULL,
    hash  TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE TABLE audit_anchors (
    seq   INTEGER PRIMARY KEY,
    hash  TEXT NOT NULL,
    at_ms INTEGER NOT NULL
);

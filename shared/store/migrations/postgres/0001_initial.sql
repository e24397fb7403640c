CREATE TABLE agencies (
    code        TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    pcode       TEXT,
    level       TEXT NOT NULL,
    state       TEXT NOT NULL DEFAULT 'active',
    email       TEXT,
    phone       TEXT,
    address     TEXT,
    updated_ms  BIGINT NOT NULL
);

CREATE TABLE systems (
    system_id   TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    locked      BIGINT NOT NULL DEFAULT 0,
    created_ms  BIGINT NOT NULL
);

CREATE TABLE system_organs (
    system_id   TEXT NOT NULL REFERENCES systems (system_id) ON DELETE CASCADE,
    organ_id    TEXT NOT NULL,
    PRIMARY KEY (system_id, organ_id)
);

CREATE TABLE documents (
    doc_id        TEXT PRIMARY KEY,
    idem_key      TEXT NOT NULL UNIQUE,
    message_type  TEXT NOT NULL,
    sender        TEXT NOT NULL,
    sender_system TEXT NOT NULL,
    document_id   TEXT NOT NULL,
    subject       TEXT,
    status_code   TEXT,
    response_for  TEXT,
    size          BIGINT NOT NULL,
    sha256        TEXT NOT NULL,
    created_ms    BIGINT NOT NULL
);
CREATE INDEX documents_response_for ON documents (response_for);
CREATE INDEX documents_sender ON documents (sender, created_ms);
CREATE INDEX documents_document_id ON documents (document_id);

CREATE TABLE legs (
    doc_id        TEXT NOT NULL REFERENCES documents (doc_id),
    recipient     TEXT NOT NULL,
    delivery      TEXT NOT NULL,
    transport     TEXT NOT NULL,
    business      TEXT,
    recall        TEXT,
    business_desc TEXT,
    reason        TEXT,
    created_ms    BIGINT NOT NULL,
    updated_ms    BIGINT NOT NULL,
    PRIMARY KEY (doc_id, recipient)
);
CREATE INDEX legs_inbox ON legs (recipient, delivery, transport, created_ms);

CREATE TABLE events (
    seq        BIGSERIAL PRIMARY KEY,
    event_id   TEXT NOT NULL UNIQUE,
    doc_id     TEXT NOT NULL,
    kind       TEXT NOT NULL,
    organ      TEXT,
    detail     TEXT,
    at_ms      BIGINT NOT NULL
);
CREATE INDEX events_doc ON events (doc_id, at_ms);

CREATE TABLE outbox (
    id           BIGSERIAL PRIMARY KEY,
    doc_id       TEXT,
    exchange     TEXT NOT NULL,
    routing_key  TEXT NOT NULL,
    message_id   TEXT NOT NULL,
    payload      TEXT NOT NULL,
    created_ms   BIGINT NOT NULL,
    published_ms BIGINT
);
CREATE INDEX outbox_pending ON outbox (published_ms, created_ms);
CREATE INDEX outbox_doc ON outbox (doc_id);

CREATE TABLE blobs (
    blob_key TEXT PRIMARY KEY,
    data     BYTEA NOT NULL
);

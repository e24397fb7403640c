-- Client certificates bound to connected systems (docs/security.md, "Client certificates bound
-- to systems"). A system with any bound certificate is admitted only over a TLS connection that
-- presents one of them; a certificate belongs to at most one system. Identified by the SHA-256
-- of the certificate's DER, so a renewal is bound next to the old certificate before that one is
-- removed.
CREATE TABLE system_certificates (
    sha256 TEXT PRIMARY KEY,
    system_id TEXT NOT NULL,
    added_ms BIGINT NOT NULL
);
CREATE INDEX system_certificates_system ON system_certificates (system_id, sha256);

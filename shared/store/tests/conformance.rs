//! One conformance suite, run against every backend: SQLite (embedded default) and PostgreSQL.
//! PostgreSQL comes from `LIENTHONG_TEST_POSTGRES` (default: the local trust-auth server); each
//! test gets a database of its own, dropped afterwards.

use lienthong_edxml::{Format, MessageType, StatusCode};
use lienthong_store::*;

struct Env {
    store: Store,
    url: String,
    _dir: tempfile::TempDir,
    pg: Option<testing::ScratchPostgres>,
}

/// A SQLite store in `dir` (`t.db`, blobs as files beside it).
fn sqlite_config(dir: &std::path::Path, checkpoint_ms: u64) -> StoreConfig {
    StoreConfig {
        url: format!("sqlite://{}", dir.join("t.db").display()),
        max_connections: None,
        large_attachment_bytes: 1024 * 1024,
        inline_blob_bytes: 64 * 1024,
        cached_documents: CACHED_DOCUMENTS,
        cached_blob_bytes: CACHED_BLOB_BYTES,
        checkpoint_ms,
        sqlite_synchronous: Default::default(),
        sqlite_page_size: lienthong_store::SQLITE_PAGE_SIZE,
        blobs: BlobConfig::Files {
            dir: dir.join("blobs"),
        },
    }
}

async fn sqlite() -> Env {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = sqlite_config(dir.path(), CHECKPOINT_MS);
    let store = Store::connect(&config).await.expect("sqlite store");
    Env {
        store,
        url: config.url,
        _dir: dir,
        pg: None,
    }
}

/// SQLite for the rows, an S3-compatible store for the bytes (a bucket of its own per test):
/// `LIENTHONG_TEST_S3` (default: the local test server `deploy/local/ensure-services --s3` starts).
async fn s3() -> Env {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let endpoint =
        std::env::var("LIENTHONG_TEST_S3").unwrap_or_else(|_| "http://127.0.0.1:9000".into());
    let store = Store::connect(&StoreConfig {
        url: url.clone(),
        max_connections: None,
        large_attachment_bytes: 1024 * 1024,
        inline_blob_bytes: 64 * 1024,
        cached_documents: CACHED_DOCUMENTS,
        cached_blob_bytes: CACHED_BLOB_BYTES,
        checkpoint_ms: CHECKPOINT_MS,
        sqlite_synchronous: Default::default(),
        sqlite_page_size: lienthong_store::SQLITE_PAGE_SIZE,
        blobs: BlobConfig::S3 {
            endpoint,
            bucket: format!("lt-test-{}", uuid::Uuid::new_v4().simple()),
            region: "us-east-1".into(),
            access_key: "lienthong-test".into(),
            secret_key: "lienthong-test-secret".into(),
            create_bucket: true,
        },
    })
    .await
    .expect("S3-compatible store reachable (LIENTHONG_TEST_S3)");
    Env {
        store,
        url,
        _dir: dir,
        pg: None,
    }
}

async fn postgres() -> Env {
    let pg = testing::ScratchPostgres::create("lt_test")
        .await
        .expect("PostgreSQL reachable (LIENTHONG_TEST_POSTGRES)");
    let store = Store::connect(&StoreConfig {
        url: pg.url.clone(),
        max_connections: None,
        large_attachment_bytes: 1024 * 1024,
        inline_blob_bytes: 64 * 1024,
        cached_documents: CACHED_DOCUMENTS,
        cached_blob_bytes: CACHED_BLOB_BYTES,
        checkpoint_ms: CHECKPOINT_MS,
        sqlite_synchronous: Default::default(),
        sqlite_page_size: lienthong_store::SQLITE_PAGE_SIZE,
        blobs: BlobConfig::Db,
    })
    .await
    .expect("postgres store");
    let dir = tempfile::tempdir().expect("tempdir");
    Env {
        store,
        url: pg.url.clone(),
        _dir: dir,
        pg: Some(pg),
    }
}

impl Env {
    async fn done(self) {
        self.store.close().await;
        if let Some(pg) = self.pg {
            pg.drop_database().await;
        }
    }
}

fn agency(code: &str, level: Level) -> Agency {
    Agency::new(code, &format!("Agency {code}"), level)
}

fn edoc(doc_id: &str, key: &str, recipients: &[&str]) -> NewDocument {
    NewDocument {
        doc_id: doc_id.into(),
        idem_key: key.into(),
        message_type: MessageType::Edoc,
        sender: "000.00.00.H49".into(),
        sender_system: "sys-a".into(),
        document_id: "000.00.00.H49,2024/01/02,1/UBND".into(),
        subject: Some("Subject".into()),
        status_code: None,
        response_for: None,
        recipients: recipients.iter().map(|s| s.to_string()).collect(),
        format: Default::default(),
        body: Body::Bytes(format!("<edXML>{doc_id}</edXML>").into_bytes().into()),
        status_update: None,
        arrival: None,
    }
}

/// A status package from the edoc's recipient back to its sender, answering `answers`.
fn status_answering(doc_id: &str, key: &str, answers: &str) -> NewDocument {
    let mut st = edoc(doc_id, key, &["000.00.00.H49"]);
    st.message_type = MessageType::Status;
    st.response_for = Some(answers.into());
    st
}

fn event_msg(doc: &str) -> OutboxMessage {
    OutboxMessage {
        doc_id: Some(doc.into()),
        exchange: "events".into(),
        routing_key: "accepted".into(),
        message_id: format!("{doc}:accepted"),
        payload: "{}".into(),
    }
}

async fn registry_and_systems(env: &Env) {
    let s = &env.store;
    s.upsert_agencies(&[
        agency("000.00.00.G22", Level::Central),
        agency("000.00.00.H49", Level::Province),
    ])
    .await
    .expect("import");
    let mut updated = agency("000.00.00.G22", Level::Central);
    updated.name = "Văn phòng Chính phủ".into();
    s.upsert_agencies(&[updated.clone()])
        .await
        .expect("re-import replaces");
    assert_eq!(
        s.agency("000.00.00.G22").await.expect("read"),
        Some(updated)
    );
    assert_eq!(s.agencies().await.expect("list").len(), 2);
    assert!(
        s.set_agency_state("000.00.00.G22", AgencyState::Locked)
            .await
            .expect("lock")
    );
    assert!(
        !s.set_agency_state("999.99.99.Z99", AgencyState::Locked)
            .await
            .expect("unknown")
    );
    let found = s
        .agencies_in(&["000.00.00.G22", "999.99.99.Z99"])
        .await
        .expect("in");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].state, AgencyState::Locked);

    s.put_system("sys-a", "System A", "s3cret", &["000.00.00.H49".into()])
        .await
        .expect("add");
    let sys = s
        .authenticate("sys-a", "s3cret", None)
        .await
        .expect("db")
        .expect("valid");
    assert!(sys.acts_for("000.00.00.H49") && !sys.acts_for("000.00.00.G22"));
    assert_eq!(
        s.authenticate("sys-a", "wrong", None).await.expect("db"),
        Err(AuthError::BadCredentials)
    );
    assert_eq!(
        s.authenticate("nobody", "s3cret", None).await.expect("db"),
        Err(AuthError::BadCredentials)
    );
    assert!(s.set_system_locked("sys-a", true).await.expect("lock"));
    assert_eq!(
        s.authenticate("sys-a", "s3cret", None).await.expect("db"),
        Err(AuthError::Locked)
    );
    assert!(s.remove_system("sys-a").await.expect("remove"));
    assert!(s.system("sys-a").await.expect("read").is_none());
}

async fn client_certificates_bind_systems(env: &Env) {
    let s = &env.store;
    let organs = ["000.00.00.H49".to_owned()];
    s.put_system("sys-a", "System A", "secret-a", &organs)
        .await
        .expect("add a");
    s.put_system("sys-b", "System B", "secret-b", &organs)
        .await
        .expect("add b");
    let (cert_a, renewed_a, cert_b) = ("aa".repeat(32), "a2".repeat(32), "bb".repeat(32));
    let other = "cc".repeat(32);
    // Nothing bound: any certificate (or none) with the right secret.
    assert!(auth(s, "sys-a", "secret-a", None).await.is_ok());
    assert!(auth(s, "sys-a", "secret-a", Some(&other)).await.is_ok());

    // Bound (upper case is the same fingerprint); binding again changes nothing.
    assert_eq!(
        s.bind_certificate("sys-a", &cert_a.to_uppercase())
            .await
            .expect("db"),
        Ok(())
    );
    assert_eq!(
        s.bind_certificate("sys-a", &cert_a).await.expect("db"),
        Ok(())
    );
    assert_eq!(
        s.system("sys-a")
            .await
            .expect("read")
            .expect("a")
            .certificates,
        vec![cert_a.clone()]
    );
    let a = cert_a.as_str();
    assert!(auth(s, "sys-a", "secret-a", Some(a)).await.is_ok());
    assert_eq!(
        auth(s, "sys-a", "secret-a", None).await,
        Err(AuthError::CertificateRequired)
    );
    assert_eq!(
        auth(s, "sys-a", "secret-a", Some(&other)).await,
        Err(AuthError::CertificateNotBound)
    );
    // The secret still counts, and is checked first.
    assert_eq!(
        auth(s, "sys-a", "wrong", Some(a)).await,
        Err(AuthError::BadCredentials)
    );
    // A's certificate admits nobody else, even with B's secret, while B has none bound.
    assert_eq!(
        auth(s, "sys-b", "secret-b", Some(a)).await,
        Err(AuthError::CertificateOfAnotherSystem {
            owner: "sys-a".into()
        })
    );
    assert!(auth(s, "sys-b", "secret-b", None).await.is_ok());
    // A certificate belongs to one system; unknown systems are named.
    assert_eq!(
        s.bind_certificate("sys-b", &cert_a).await.expect("db"),
        Err(BindError::BoundToAnother("sys-a".into()))
    );
    assert_eq!(
        s.bind_certificate("nobody", &cert_b).await.expect("db"),
        Err(BindError::UnknownSystem("nobody".into()))
    );
    assert_eq!(s.certificate_owner(&cert_b).await.expect("db"), None);

    // A renewal is bound next to the old certificate, then the old one is unbound.
    assert_eq!(
        s.bind_certificate("sys-a", &renewed_a).await.expect("db"),
        Ok(())
    );
    let renewed = renewed_a.as_str();
    assert!(auth(s, "sys-a", "secret-a", Some(a)).await.is_ok());
    assert!(auth(s, "sys-a", "secret-a", Some(renewed)).await.is_ok());
    assert!(s.unbind_certificate("sys-a", &cert_a).await.expect("db"));
    assert!(!s.unbind_certificate("sys-a", &cert_a).await.expect("db"));
    assert!(!s.unbind_certificate("sys-b", &renewed_a).await.expect("db"));
    assert_eq!(
        auth(s, "sys-a", "secret-a", Some(a)).await,
        Err(AuthError::CertificateNotBound)
    );
    assert!(auth(s, "sys-a", "secret-a", Some(renewed)).await.is_ok());
    // Re-keying a system keeps its certificates; a lock is reported after the certificate check.
    s.put_system("sys-a", "System A", "rekeyed", &organs)
        .await
        .expect("rekey");
    assert!(auth(s, "sys-a", "rekeyed", Some(renewed)).await.is_ok());
    assert!(s.set_system_locked("sys-a", true).await.expect("lock"));
    assert_eq!(
        auth(s, "sys-a", "rekeyed", Some(renewed)).await,
        Err(AuthError::Locked)
    );
    // Removing a system frees its certificates.
    assert!(s.remove_system("sys-a").await.expect("remove"));
    assert_eq!(s.certificate_owner(&renewed_a).await.expect("db"), None);
    assert_eq!(
        s.bind_certificate("sys-b", &renewed_a).await.expect("db"),
        Ok(())
    );
}

async fn auth(
    s: &Store,
    id: &str,
    secret: &str,
    certificate: Option<&str>,
) -> Result<System, AuthError> {
    s.authenticate(id, secret, certificate).await.expect("db")
}

async fn acceptance_is_idempotent_and_atomic(env: &Env) {
    let s = &env.store;
    let doc = edoc("d1", "k1", &["000.00.00.G22", "000.12.05.H49"]);
    let first = s.accept(&doc, &[event_msg("d1")]).await.expect("accept");
    let Acceptance::New { doc_id, outbox } = first else {
        panic!("new")
    };
    assert_eq!(doc_id, "d1");
    assert_eq!(outbox.len(), 1);

    // Same key, different doc id: the first is returned, with what is still unpublished.
    let again = s
        .accept(&edoc("d2", "k1", &["000.00.00.G22"]), &[event_msg("d2")])
        .await
        .expect("again");
    assert_eq!(
        again,
        Acceptance::Existing {
            doc_id: "d1".into(),
            outbox: outbox.clone()
        }
    );
    s.mark_published(&[outbox[0].id]).await.expect("publish");
    let again = s.accept(&doc, &[]).await.expect("again");
    assert_eq!(
        again,
        Acceptance::Existing {
            doc_id: "d1".into(),
            outbox: vec![]
        }
    );
    assert!(s.document("d2").await.expect("read").is_none());

    let stored = s.document("d1").await.expect("read").expect("exists");
    let bytes = doc.body.read().await.expect("bytes");
    assert_eq!(s.package(&stored).await.expect("bytes"), bytes);
    assert_eq!(stored.sha256, sha256_hex(&bytes));
    let legs = s.legs("d1").await.expect("legs");
    assert_eq!(legs.len(), 2);
    assert!(
        legs.iter()
            .all(|l| l.delivery == DeliveryState::Accepted
                && l.transport == TransportStatus::Initial)
    );
    assert_eq!(
        s.find_edoc("000.00.00.H49", &doc.document_id)
            .await
            .expect("find")
            .map(|d| d.doc_id),
        Some("d1".into())
    );
}

/// `accept_many` gives each document what `accept` would have given it alone: new ones stored
/// whole with their legs and messages, a key seen before (or earlier in the same group) the
/// first document's id, a package too large for the database accepted on its own; and a
/// document that cannot be stored fails alone, the others of its group accepted.
async fn documents_accepted_together_are_each_as_if_accepted_alone(env: &Env) {
    let s = &env.store;
    let Acceptance::New {
        outbox: earlier_outbox,
        ..
    } = s
        .accept(&edoc("d0", "k0", &["000.00.00.G22"]), &[event_msg("d0")])
        .await
        .expect("accept d0")
    else {
        panic!("d0 is new")
    };
    let stage_msg = |doc: &str| OutboxMessage {
        doc_id: Some(doc.into()),
        exchange: "pipeline".into(),
        routing_key: "verifier".into(),
        message_id: format!("{doc}:verifier"),
        payload: format!("{{\"docId\":\"{doc}\"}}"),
    };
    let d1 = edoc("d1", "k1", &["000.00.00.G22", "000.12.05.H49"]);
    let d2 = edoc("d2", "k2", &["000.00.00.G22"]);
    let d3 = edoc("d3", "k0", &["000.00.00.G22"]);
    let d4 = edoc("d4", "k1", &["000.00.00.G22", "000.12.05.H49"]);
    let mut d5 = edoc("d5", "k5", &["000.00.00.G22"]);
    // Larger than any store's `inline_blob_bytes` here.
    d5.body = Body::Bytes(vec![b'x'; 300 * 1024].into());
    let m1 = [stage_msg("d1"), event_msg("d1")];
    let m2 = [stage_msg("d2")];
    let m3 = [stage_msg("d3")];
    let m4 = [stage_msg("d4")];
    let m5 = [stage_msg("d5")];
    let results = s
        .accept_many(&[
            (&d1, &m1[..]),
            (&d2, &m2[..]),
            (&d3, &m3[..]),
            (&d4, &m4[..]),
            (&d5, &m5[..]),
        ])
        .await;
    // d1 and d2 stored by the group's transaction; d5 too where every blob is in the database
    // (`blobs = db`, the PostgreSQL environment), else on its own, kept outside it. d3 and d4,
    // their keys taken, are answered as `accept` answers them.
    assert_eq!(results.in_group, if env.pg.is_some() { 3 } else { 2 });
    let results: Vec<Acceptance> = results
        .results
        .into_iter()
        .map(|r| r.expect("accepted"))
        .collect();

    let Acceptance::New { doc_id, outbox } = &results[0] else {
        panic!("d1 is new: {:?}", results[0])
    };
    assert_eq!(doc_id, "d1");
    // Its messages in the order given, as `accept` returns them.
    let messages: Vec<_> = outbox.iter().map(|r| r.message.clone()).collect();
    assert_eq!(messages, m1.to_vec());
    let d1_outbox = outbox.clone();
    assert!(
        matches!(&results[1], Acceptance::New { doc_id, outbox } if doc_id == "d2" && outbox.len() == 1 && outbox[0].message == m2[0])
    );
    assert_eq!(
        results[2],
        Acceptance::Existing {
            doc_id: "d0".into(),
            outbox: earlier_outbox
        }
    );
    assert_eq!(
        results[3],
        Acceptance::Existing {
            doc_id: "d1".into(),
            outbox: d1_outbox.clone()
        }
    );
    assert!(
        matches!(&results[4], Acceptance::New { doc_id, outbox } if doc_id == "d5" && outbox.len() == 1)
    );

    // Every row id is its own, and the relay sees each message once.
    let pending = s.pending_outbox(i64::MAX, 100).await.expect("pending");
    for r in d1_outbox
        .iter()
        .chain(results[1].outbox())
        .chain(results[4].outbox())
    {
        assert_eq!(
            pending.iter().filter(|p| p.id == r.id).collect::<Vec<_>>(),
            vec![r],
            "outbox row {}",
            r.id
        );
    }
    for (doc, recipients) in [(&d1, 2), (&d2, 1), (&d5, 1)] {
        let stored = s
            .document(&doc.doc_id)
            .await
            .expect("read")
            .expect("stored");
        let bytes = doc.body.read().await.expect("bytes");
        assert_eq!(s.package(&stored).await.expect("package"), bytes);
        assert_eq!(stored.sha256, sha256_hex(&bytes));
        assert_eq!(stored.document_id, doc.document_id);
        let legs = s.legs(&doc.doc_id).await.expect("legs");
        assert_eq!(legs.len(), recipients, "{}", doc.doc_id);
        assert!(
            legs.iter().all(|l| l.delivery == DeliveryState::Accepted
                && l.transport == TransportStatus::Initial)
        );
    }
    for never in ["d3", "d4"] {
        assert!(s.document(never).await.expect("read").is_none(), "{never}");
    }

    // A document whose legs cannot be stored (the same recipient twice) fails the group; each is
    // then accepted alone, and only that one fails.
    let d6 = edoc("d6", "k6", &["000.00.00.G22"]);
    let d7 = edoc("d7", "k7", &["000.00.00.G22", "000.00.00.G22"]);
    let d8 = edoc("d8", "k8", &["000.00.00.G22"]);
    let results = s
        .accept_many(&[
            (&d6, &[stage_msg("d6")][..]),
            (&d7, &[stage_msg("d7")][..]),
            (&d8, &[stage_msg("d8")][..]),
        ])
        .await;
    assert_eq!(results.in_group, 0);
    let results = results.results;
    assert!(matches!(&results[0], Ok(Acceptance::New { doc_id, .. }) if doc_id == "d6"));
    assert!(results[1].is_err(), "{:?}", results[1]);
    assert!(matches!(&results[2], Ok(Acceptance::New { doc_id, .. }) if doc_id == "d8"));
    assert!(s.document("d7").await.expect("read").is_none());
    assert_eq!(s.legs("d6").await.expect("legs").len(), 1);
}

async fn legs_advance_once(env: &Env) {
    let s = &env.store;
    s.accept(&edoc("d1", "k1", &["000.00.00.G22", "000.12.05.H49"]), &[])
        .await
        .expect("accept");
    assert!(
        s.advance_leg(
            "d1",
            "000.00.00.G22",
            DeliveryState::Accepted,
            DeliveryState::Routed
        )
        .await
        .expect("route")
    );
    assert!(
        !s.advance_leg(
            "d1",
            "000.00.00.G22",
            DeliveryState::Accepted,
            DeliveryState::Routed
        )
        .await
        .expect("again")
    );
    assert!(
        s.advance_leg(
            "d1",
            "000.00.00.G22",
            DeliveryState::Routed,
            DeliveryState::Delivered
        )
        .await
        .expect("deliver")
    );
    assert!(
        s.fail_leg("d1", "000.12.05.H49", "recipient retired")
            .await
            .expect("fail")
    );
    assert!(
        !s.fail_leg("d1", "000.00.00.G22", "too late")
            .await
            .expect("delivered stays")
    );

    let organs = vec!["000.00.00.G22".to_owned()];
    let inbox = s
        .inbox(&organs, MessageType::Edoc, &InboxFilter::default())
        .await
        .expect("inbox");
    assert_eq!(inbox.len(), 1);
    assert!(
        s.inbox(&organs, MessageType::Status, &InboxFilter::default())
            .await
            .expect("inbox")
            .is_empty()
    );
    let failed = s
        .legs("d1")
        .await
        .expect("legs")
        .into_iter()
        .find(|l| l.recipient == "000.12.05.H49")
        .expect("leg");
    assert_eq!(
        (failed.delivery, failed.reason.as_deref()),
        (DeliveryState::Failed, Some("recipient retired"))
    );

    // Transport status: done is final and hides the copy from the default inbox listing.
    s.set_transport(
        "d1",
        "000.00.00.G22",
        TransportStatus::Processing,
        &[event_msg("d1")],
    )
    .await
    .expect("processing");
    s.set_transport("d1", "000.00.00.G22", TransportStatus::Done, &[])
        .await
        .expect("done");
    let err = s
        .set_transport("d1", "000.00.00.G22", TransportStatus::Processing, &[])
        .await
        .expect_err("must be refused");
    assert!(
        matches!(err, StoreError::Rule(RuleError::IllegalTransition(_))),
        "{err}"
    );
    assert!(
        s.inbox(&organs, MessageType::Edoc, &InboxFilter::default())
            .await
            .expect("inbox")
            .is_empty()
    );
    let all = InboxFilter {
        transport: vec![TransportStatus::Done],
        ..InboxFilter::default()
    };
    assert_eq!(
        s.inbox(&organs, MessageType::Edoc, &all)
            .await
            .expect("inbox")
            .len(),
        1
    );
    let err = s
        .set_transport("d1", "000.12.05.H49", TransportStatus::Done, &[])
        .await
        .expect_err("must be refused");
    assert!(
        matches!(err, StoreError::Rule(RuleError::NoSuchLeg(..))),
        "undelivered copy: {err}"
    );
}

async fn business_status_follows_the_rules(env: &Env) {
    let s = &env.store;
    s.accept(&edoc("d1", "k1", &["000.00.00.G22"]), &[])
        .await
        .expect("accept");
    let status = |key: &str, code: StatusCode| {
        let mut d = edoc(&format!("st-{key}"), key, &["000.00.00.H49"]);
        d.message_type = MessageType::Status;
        d.sender = "000.00.00.G22".into();
        d.status_code = Some(code);
        d.response_for = Some("d1".into());
        d.status_update = Some(StatusUpdate {
            doc_id: "d1".into(),
            legs: vec!["000.00.00.G22".into()],
            code,
            description: Some(code.describe().into()),
            merge: false,
        });
        d
    };
    s.accept(&status("s1", StatusCode::Arrived), &[])
        .await
        .expect("01");
    let err = s
        .accept(&status("s2", StatusCode::Assigned), &[event_msg("st-s2")])
        .await
        .expect_err("must be refused");
    assert!(
        matches!(&err, StoreError::Rule(RuleError::IllegalTransition(m)) if m.contains("may only follow 03")),
        "{err}"
    );
    // The refused status left nothing behind: no document, no outbox message.
    assert!(s.document("st-s2").await.expect("read").is_none());
    assert!(
        s.pending_outbox(i64::MAX, 10)
            .await
            .expect("outbox")
            .is_empty()
    );
    s.accept(&status("s3", StatusCode::Accepted), &[])
        .await
        .expect("03");
    let leg = &s.legs("d1").await.expect("legs")[0];
    assert_eq!(
        (leg.business, leg.business_desc.as_deref()),
        (Some(StatusCode::Accepted), Some("accepted"))
    );
}

/// The kinds of a document's trace, in order.
async fn trace_kinds(s: &Store, doc_id: &str) -> Vec<String> {
    s.trace(doc_id)
        .await
        .expect("trace")
        .into_iter()
        .map(|e| e.kind)
        .collect()
}

async fn ledger_and_outbox(env: &Env) {
    let s = &env.store;
    s.accept(&edoc("d1", "k1", &["000.00.00.G22"]), &[])
        .await
        .expect("accept");
    s.accept(&status_answering("st1", "k2", "d1"), &[])
        .await
        .expect("status doc");
    let ev = |id: &str, doc: &str, kind: &str, at: i64| LedgerEvent {
        event_id: id.into(),
        doc_id: doc.into(),
        kind: kind.into(),
        organ: Some("000.00.00.G22".into()),
        detail: None,
        at_ms: at,
    };
    assert!(
        s.record_event(&ev("d1:accepted", "d1", "accepted", 10))
            .await
            .expect("record")
    );
    assert!(
        !s.record_event(&ev("d1:accepted", "d1", "accepted", 10))
            .await
            .expect("dedup")
    );
    assert!(
        s.record_event(&ev("st1:delivered", "st1", "delivered", 30))
            .await
            .expect("record")
    );
    assert!(
        s.record_event(&ev("d1:routed", "d1", "routed", 20))
            .await
            .expect("record")
    );
    assert_eq!(
        trace_kinds(s, "d1").await,
        ["accepted", "routed", "delivered"]
    );

    let rows = s
        .enqueue(&[event_msg("d1"), event_msg("d1")])
        .await
        .expect("enqueue");
    let pending = s.pending_outbox(now_ms() + 1, 10).await.expect("pending");
    assert_eq!(pending, rows);
    assert!(
        s.pending_outbox(0, 10)
            .await
            .expect("none old enough")
            .is_empty()
    );
    s.mark_published(&[rows[0].id]).await.expect("mark");
    assert_eq!(
        s.unpublished_for("d1").await.expect("unpublished"),
        vec![rows[1].clone()]
    );
    assert_eq!(s.prune_outbox(now_ms() + 1).await.expect("prune"), 1);
}

async fn verdicts_are_kept_once_and_searchable(env: &Env) {
    let s = &env.store;
    let v = |doc: &str, outcome: &str, signer: &str, at: i64| VerdictRow {
        doc_id: doc.into(),
        sender: "000.00.00.H49".into(),
        sender_system: "sys-a".into(),
        outcome: outcome.into(),
        reason_code: (outcome != "valid").then(|| "digest-mismatch".into()),
        reason: None,
        signer: Some(signer.into()),
        issuer: Some("CN=Test Root CA".into()),
        serial: Some("01".into()),
        signature_method: Some("rsa-sha256".into()),
        verified_ms: at,
        verdict: "{}".into(),
    };
    assert!(
        s.record_verdict(&v("d1", "valid", "CN=Văn thư UBND", 10))
            .await
            .expect("record")
    );
    assert!(
        !s.record_verdict(&v("d1", "invalid", "CN=other", 11))
            .await
            .expect("once")
    );
    assert!(
        s.record_verdict(&v("d2", "invalid", "CN=Someone", 20))
            .await
            .expect("record")
    );
    assert_eq!(
        s.verdict("d1").await.expect("read").map(|r| r.outcome),
        Some("valid".into())
    );
    let all = s.verdicts(&VerdictFilter::default()).await.expect("list");
    assert_eq!(
        all.iter().map(|r| r.doc_id.as_str()).collect::<Vec<_>>(),
        ["d2", "d1"]
    );
    let invalid = VerdictFilter {
        outcome: Some("invalid".into()),
        ..VerdictFilter::default()
    };
    assert_eq!(s.verdicts(&invalid).await.expect("list").len(), 1);
    let by_signer = VerdictFilter {
        signer: Some("văn THƯ".into()),
        ..VerdictFilter::default()
    };
    let found = s.verdicts(&by_signer).await.expect("list");
    assert_eq!(
        found.iter().map(|r| r.doc_id.as_str()).collect::<Vec<_>>(),
        ["d1"],
        "case-insensitive"
    );
    let by_time = VerdictFilter {
        from_ms: Some(15),
        to_ms: Some(25),
        issuer: Some("root".into()),
        ..VerdictFilter::default()
    };
    assert_eq!(
        s.verdicts(&by_time)
            .await
            .expect("list")
            .iter()
            .map(|r| r.doc_id.as_str())
            .collect::<Vec<_>>(),
        ["d2"]
    );
}

/// Changes the database behind the store's back, as an intruder with database access would.
async fn tamper(env: &Env, statement: &str) {
    let pool = sqlx::AnyPool::connect(&env.url)
        .await
        .expect("direct connection");
    sqlx::query(sqlx::AssertSqlSafe(statement.to_owned()))
        .execute(&pool)
        .await
        .expect("tampering statement");
    pool.close().await;
}

async fn the_ledger_is_a_verifiable_hash_chain(env: &Env) {
    let s = &env.store;
    let ev = |i: i64| LedgerEvent {
        event_id: format!("d{i}:accepted"),
        doc_id: format!("d{i}"),
        kind: "accepted".into(),
        organ: Some("000.00.00.H49".into()),
        detail: Some(format!("sha256 {i}")),
        at_ms: i,
    };
    for i in 1..=5 {
        assert!(s.record_event(&ev(i)).await.expect("record"));
    }
    assert!(
        !s.record_event(&ev(3)).await.expect("duplicate"),
        "a duplicate is not chained twice"
    );
    let (seq, head) = s.anchor_chain().await.expect("anchor");
    assert_eq!(seq, 5);
    for i in 6..=7 {
        s.record_event(&ev(i)).await.expect("record");
    }
    // A group in one transaction, as the ledger records what arrives together: one already
    // recorded, and one repeated inside the group, are chained once (three new events: a
    // statement padded to four rows with the last).
    assert_eq!(
        s.record_events(&[ev(8), ev(2), ev(9), ev(10), ev(8)])
            .await
            .expect("group"),
        [true, false, true, true, false]
    );
    assert_eq!(s.record_events(&[ev(9)]).await.expect("all known"), [false]);
    match s.verify_chain().await.expect("verify") {
        ChainCheck::Intact {
            events, anchors, ..
        } => assert_eq!((events, anchors), (10, 1)),
        broken => panic!("{broken:?}"),
    }
    assert_ne!(s.chain_head().await.expect("head").1, head);

    tamper(
        env,
        "UPDATE events SET detail = 'sha256 forged' WHERE event_id = 'd3:accepted'",
    )
    .await;
    match s.verify_chain().await.expect("verify") {
        ChainCheck::Broken {
            seq,
            event_id,
            reason,
        } => {
            assert_eq!((seq, event_id.as_str()), (3, "d3:accepted"));
            assert!(reason.contains("altered"), "{reason}");
        }
        intact => panic!("tampering not detected: {intact:?}"),
    }
    tamper(
        env,
        "UPDATE events SET detail = 'sha256 3' WHERE event_id = 'd3:accepted'",
    )
    .await;
    tamper(env, "DELETE FROM events WHERE event_id = 'd7:accepted'").await;
    assert!(
        matches!(
            s.verify_chain().await.expect("verify"),
            ChainCheck::Broken { .. }
        ),
        "a removed last event is detected"
    );
    tamper(env, "DELETE FROM events WHERE event_id = 'd4:accepted'").await;
    match s.verify_chain().await.expect("verify") {
        ChainCheck::Broken { seq, reason, .. } => {
            assert!(seq == 5 && reason.contains("missing"), "{seq} {reason}")
        }
        intact => panic!("a removed event was not detected: {intact:?}"),
    }
}

async fn formats_and_renditions(env: &Env) {
    let s = &env.store;
    // The registry records each agency's format; the import shape carries it.
    let mut a = agency("000.00.00.G22", Level::Central);
    a.receive_format = Format::Govn;
    s.upsert_agencies(&[a, agency("000.00.00.H49", Level::Province)])
        .await
        .expect("upsert");
    assert_eq!(
        s.agency("000.00.00.G22")
            .await
            .expect("agency")
            .map(|a| a.receive_format),
        Some(Format::Govn)
    );
    assert!(
        s.set_agency_format("000.00.00.H49", Format::Json)
            .await
            .expect("set")
    );
    assert!(
        !s.set_agency_format("000.99.00.H49", Format::Json)
            .await
            .expect("set")
    );
    let json = serde_json::to_value(s.agency("000.00.00.H49").await.expect("a")).expect("json");
    assert_eq!(json["receiveFormat"], "json");

    // A document keeps the format it came in.
    let mut doc = edoc("d-json", "k-json", &["000.00.00.G22"]);
    doc.format = Format::Json;
    s.accept(&doc, &[]).await.expect("accept");
    let row = s.document("d-json").await.expect("doc").expect("row");
    assert_eq!(row.format, Format::Json);

    // Renditions: stored once per format, read back checked against their digest.
    assert_eq!(
        s.rendition("d-json", Format::Govn).await.expect("none"),
        None
    );
    let first = s
        .put_rendition(
            "d-json",
            Format::Govn,
            &Body::Bytes(b"<eDoc>first</eDoc>".to_vec().into()),
        )
        .await
        .expect("put");
    assert_eq!(first.size, 18);
    let again = s
        .put_rendition(
            "d-json",
            Format::Govn,
            &Body::Bytes(b"<eDoc>second</eDoc>".to_vec().into()),
        )
        .await
        .expect("put again");
    assert_eq!(again, first, "the first rendition stays");
    let (row, bytes) = s
        .rendition("d-json", Format::Govn)
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(bytes, b"<eDoc>first</eDoc>");
    assert_eq!(row.sha256, sha256_hex(&bytes));
    assert_eq!(
        s.rendition("d-json", Format::Edxml).await.expect("none"),
        None
    );
}

/// The bytes `edits` make of `base`.
fn apply(base: &[u8], edits: &[lienthong_edxml::splice::Edit]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut from = 0;
    for e in edits {
        let at = e.at as usize;
        out.extend_from_slice(&base[from..at]);
        out.extend_from_slice(e.put.as_bytes());
        from = at + e.cut as usize;
    }
    out.extend_from_slice(&base[from..]);
    out
}

async fn spliced_renditions_read_as_their_package_through_their_edits(env: &Env) {
    use lienthong_edxml::splice::Edit;
    let s = &env.store;
    let edit = |at, cut, put: &str| Edit {
        at,
        cut,
        put: put.into(),
    };
    // A package kept in the database, and one past the inline limit, in the blob store.
    let small = b"<edXML><h><m/><sig>x</sig></h><b/></edXML>".to_vec();
    let large = [
        b"<edXML><h><m/></h>".as_slice(),
        &[b'b'; 100 * 1024],
        b"</edXML>",
    ]
    .concat();
    for (doc_id, package, edits) in [
        (
            "d-splice-small",
            &small,
            vec![edit(14, 0, "<t>trace</t>"), edit(14, 12, "")],
        ),
        ("d-splice-large", &large, vec![edit(14, 0, "<t>trace</t>")]),
    ] {
        let mut doc = edoc(doc_id, &format!("k-{doc_id}"), &["000.00.00.G22"]);
        doc.body = if package.len() > 64 * 1024 {
            let mut spool = s.spool(10 * 1024 * 1024).await.expect("spool");
            spool.write(package).await.expect("write");
            spool.finish().await.expect("finish")
        } else {
            Body::Bytes(package.clone().into())
        };
        s.accept(&doc, &[]).await.expect("accept");
        let row = s.document(doc_id).await.expect("doc").expect("row");
        let made = apply(package, &edits);
        let stored = s
            .put_spliced_rendition(
                &row,
                Format::Edxml,
                edits.clone(),
                sha256_hex(&made),
                made.len() as u64,
            )
            .await
            .expect("put");
        assert_eq!(stored.size, made.len() as i64);
        // Stored once: a second put keeps the first.
        let again = s
            .put_spliced_rendition(&row, Format::Edxml, vec![], sha256_hex(package), 0)
            .await
            .expect("put again");
        assert_eq!(again, stored, "the first rendition stays");
        let (read, bytes) = s
            .rendition(doc_id, Format::Edxml)
            .await
            .expect("read")
            .expect("stored");
        assert_eq!(bytes, made, "{doc_id}");
        let spliced = read.spliced.expect("kept as edits");
        assert_eq!(
            (spliced.base_sha256.as_str(), spliced.edits),
            (row.sha256.as_str(), edits)
        );
        let (_, source) = s
            .rendition_source(doc_id, Format::Edxml)
            .await
            .expect("read")
            .expect("stored");
        assert_eq!(source.len(), made.len() as u64);
        let mut back = vec![0u8; made.len()];
        assert_eq!(source.read_at(0, &mut back).expect("read"), made.len());
        assert_eq!(back, made, "{doc_id} as a source");
    }
    // Edits that do not make the bytes their digest names, or do not fit the package, are
    // found when read.
    let row = s
        .document("d-splice-small")
        .await
        .expect("doc")
        .expect("row");
    s.put_spliced_rendition(
        &row,
        Format::Json,
        vec![edit(0, 0, "x")],
        sha256_hex(b"something else"),
        1,
    )
    .await
    .expect("put");
    s.put_spliced_rendition(
        &row,
        Format::Govn,
        vec![edit(small.len() as u64, 1, "")],
        sha256_hex(b""),
        0,
    )
    .await
    .expect("put");
    for (format, why) in [
        (Format::Json, "does not match its SHA-256"),
        (Format::Govn, "its edits do not fit"),
    ] {
        let whole = s
            .rendition("d-splice-small", format)
            .await
            .expect_err("bad");
        assert!(whole.to_string().contains(why), "{format}: {whole}");
        let source = s
            .rendition_source("d-splice-small", format)
            .await
            .expect_err("bad");
        assert!(source.to_string().contains(why), "{format}: {source}");
    }
}

async fn spooled_packages_are_stored_without_being_held_and_read_back_as_sources(env: &Env) {
    let s = &env.store;
    // Spooled a chunk at a time, with its digest and size counted on the way.
    let chunk = vec![b'x'; 64 * 1024];
    let mut spool = s.spool(10 * 1024 * 1024).await.expect("spool");
    for _ in 0..20 {
        spool.write(&chunk).await.expect("write");
    }
    let body = spool.finish().await.expect("finish");
    let whole = chunk.repeat(20);
    let Body::Spooled(spooled) = &body else {
        panic!("1.3 MB is past the 64 KiB inline limit, so it is in a file");
    };
    assert_eq!(spooled.size, whole.len() as u64);
    assert_eq!(spooled.sha256, sha256_hex(&whole));
    let spool_file = spooled.path().to_owned();
    assert!(spool_file.exists());
    let mut doc = edoc("d-spooled", "k-spooled", &["000.00.00.G22"]);
    doc.body = body;
    s.accept(&doc, &[]).await.expect("accept");
    drop(doc);
    assert!(!spool_file.exists(), "the spool file is gone once stored");
    let row = s.document("d-spooled").await.expect("doc").expect("row");
    assert_eq!(
        (row.size, row.sha256.as_str()),
        (whole.len() as i64, sha256_hex(&whole).as_str())
    );
    assert_eq!(s.package(&row).await.expect("bytes"), whole);
    let source = s.package_source(&row).await.expect("source");
    assert_eq!(source.len(), whole.len() as u64);
    let mut back = vec![0u8; whole.len()];
    assert_eq!(source.read_at(0, &mut back).expect("read"), whole.len());
    assert_eq!(back, whole);
    // The spool directory is made when a file first needs it, even if it went away.
    let dir = spool_file.parent().expect("a directory").to_owned();
    if dir != std::env::temp_dir() {
        std::fs::remove_dir_all(&dir).expect("remove the spool directory");
        let mut spool = s.spool(10 * 1024 * 1024).await.expect("spool");
        for _ in 0..2 {
            spool.write(&chunk).await.expect("write");
        }
        let Body::Spooled(again) = spool.finish().await.expect("finish") else {
            panic!("128 KiB is past the inline limit")
        };
        assert!(again.path().exists() && again.path().starts_with(&dir));
        let mut sync = s.spool_sync().expect("spool");
        std::io::Write::write_all(&mut sync, &chunk.repeat(2)).expect("write");
        let Body::Spooled(synced) = sync.finish().expect("finish") else {
            panic!("128 KiB is past the inline limit")
        };
        assert!(synced.path().exists() && synced.path().starts_with(&dir));
    }
    // A package over the limit is refused while it arrives, and leaves nothing behind.
    let mut spool = s.spool(100).await.expect("spool");
    let refused = spool.write(&chunk).await.expect_err("too large");
    assert!(
        refused.to_string().contains("larger than the 100 bytes"),
        "{refused}"
    );
}

async fn small_packages_stay_in_memory_and_in_the_database(env: &Env) {
    let s = &env.store;
    // Within the inline limit (64 KiB here), the spool holds the bytes: no file.
    let mut spool = s.spool(10 * 1024 * 1024).await.expect("spool");
    let small = vec![b's'; 40 * 1024];
    spool.write(&small[..1000]).await.expect("write");
    spool.write(&small[1000..]).await.expect("write");
    let body = spool.finish().await.expect("finish");
    assert!(
        matches!(&body, Body::Bytes(b) if *b == small),
        "a 40 KiB package is held, not spooled"
    );
    // Its digest, counted on the way in, is the digest of the bytes.
    assert_eq!(body.sha256(), lienthong_store::sha256_hex(&small));
    // Exactly at the limit it is still held; one byte more and it goes to a file.
    let mut spool = s.spool(10 * 1024 * 1024).await.expect("spool");
    spool.write(&vec![b'a'; 64 * 1024]).await.expect("write");
    assert!(matches!(
        spool.finish().await.expect("finish"),
        Body::Bytes(_)
    ));
    let mut spool = s.spool(10 * 1024 * 1024).await.expect("spool");
    spool.write(&vec![b'b'; 64 * 1024]).await.expect("write");
    spool.write(b"!").await.expect("write");
    assert!(matches!(
        spool.finish().await.expect("finish"),
        Body::Spooled(_)
    ));
    // The synchronous spool (translations) does the same.
    let mut sync = s.spool_sync().expect("spool");
    std::io::Write::write_all(&mut sync, b"<rendition/>").expect("write");
    let held = sync.finish().expect("finish");
    assert!(matches!(held, Body::Bytes(_)));
    assert_eq!(held.sha256(), lienthong_store::sha256_hex(b"<rendition/>"));

    // Stored in the acceptance transaction and read back, whole and as a source.
    let mut doc = edoc("d-inline", "k-inline", &["000.00.00.G22"]);
    doc.body = body;
    s.accept(&doc, &[]).await.expect("accept");
    let row = s.document("d-inline").await.expect("doc").expect("row");
    assert_eq!(row.sha256, sha256_hex(&small));
    assert_eq!(s.package(&row).await.expect("bytes"), small);
    let source = s.package_source(&row).await.expect("source");
    let mut back = vec![0u8; small.len()];
    assert_eq!(source.read_at(0, &mut back).expect("read"), small.len());
    assert_eq!(back, small);
    // So are renditions; one held past the limit goes to the blob store and reads back too.
    let json = b"{\"rendition\":true}".to_vec();
    s.put_rendition("d-inline", Format::Json, &Body::Bytes(json.clone().into()))
        .await
        .expect("rendition");
    let big = vec![b'r'; 100 * 1024];
    s.put_rendition("d-inline", Format::Edocvn, &Body::Bytes(big.clone().into()))
        .await
        .expect("rendition");
    assert_eq!(
        s.rendition("d-inline", Format::Json)
            .await
            .expect("read")
            .expect("stored")
            .1,
        json
    );
    let (_, source) = s
        .rendition_source("d-inline", Format::Edocvn)
        .await
        .expect("read")
        .expect("stored");
    let mut back = vec![0u8; big.len()];
    assert_eq!(source.read_at(0, &mut back).expect("read"), big.len());
    assert_eq!(back, big);
}

async fn mergers_hand_documents_to_successors(env: &Env) {
    let s = &env.store;
    let mut districts = Vec::new();
    for code in [
        "000.00.01.H49",
        "000.00.02.H49",
        "000.00.03.H49",
        "000.00.00.H49",
    ] {
        districts.push(agency(code, Level::District));
    }
    s.upsert_agencies(&districts).await.expect("upsert");
    // 01 and 02 merge into 03 on 2025/06/30; later 03 merges into the province.
    assert_eq!(
        s.merge_agencies(
            &["000.00.01.H49", "000.00.02.H49"],
            "000.00.03.H49",
            "2025/06/30"
        )
        .await
        .expect("merge"),
        Ok(())
    );
    let a = s.agency("000.00.01.H49").await.expect("a").expect("row");
    assert_eq!(a.state, AgencyState::Retired);
    assert_eq!(a.successor.as_deref(), Some("000.00.03.H49"));
    assert_eq!(a.valid_to.as_deref(), Some("2025/06/30"));
    let day = "2026/12/02";
    assert_eq!(
        s.resolve_recipient("000.00.01.H49", day)
            .await
            .expect("resolve"),
        Resolution::Found {
            chain: vec!["000.00.01.H49".into(), "000.00.03.H49".into()],
            state: AgencyState::Active
        }
    );
    s.merge_agencies(&["000.00.03.H49"], "000.00.00.H49", "2026/01/01")
        .await
        .expect("merge")
        .expect("known");
    let Resolution::Found { chain, state } = s
        .resolve_recipient("000.00.02.H49", day)
        .await
        .expect("resolve")
    else {
        panic!("found")
    };
    assert_eq!(
        chain.last().map(String::as_str),
        Some("000.00.00.H49"),
        "followed through"
    );
    assert_eq!(state, AgencyState::Active);
    // Unknown codes, and merges naming them, change nothing.
    assert!(matches!(
        s.resolve_recipient("000.77.00.H49", day)
            .await
            .expect("resolve"),
        Resolution::Unknown { .. }
    ));
    assert!(
        s.merge_agencies(&["000.77.00.H49"], "000.00.00.H49", day)
            .await
            .expect("merge")
            .is_err()
    );
    assert!(
        s.merge_agencies(&["000.00.00.H49"], "000.00.00.H49", day)
            .await
            .expect("merge")
            .is_err()
    );
    // Registry dates count: after validTo an agency is retired, before validFrom locked.
    let mut later = agency("000.00.09.H49", Level::District);
    later.valid_from = Some("2027/01/01".into());
    let mut ended = agency("000.00.08.H49", Level::District);
    ended.valid_to = Some("2026/01/01".into());
    assert_eq!(later.state_on(day), AgencyState::Locked);
    assert_eq!(ended.state_on(day), AgencyState::Retired);
    assert_eq!(ended.state_on("2025/12/31"), AgencyState::Active);
    s.upsert_agencies(&[later, ended]).await.expect("upsert");
    let back = s.agency("000.00.08.H49").await.expect("a").expect("row");
    assert_eq!(back.valid_to.as_deref(), Some("2026/01/01"));
}

/// Routing between buses: the bus serving an agency, a document's way from another bus, a leg
/// forwarded to another bus, and statuses that overtook each other on the way back.
async fn documents_from_other_buses(env: &Env) {
    let s = &env.store;
    let mut served = agency("000.31.07.H50", Level::Commune);
    served.bus = Some("tinh-b".into());
    s.upsert_agencies(&[served, agency("000.00.00.G22", Level::Central)])
        .await
        .expect("upsert");
    let back = s.agency("000.31.07.H50").await.expect("a").expect("row");
    assert_eq!(back.bus.as_deref(), Some("tinh-b"));
    assert_eq!(
        s.agency("000.00.00.G22")
            .await
            .expect("a")
            .expect("row")
            .bus,
        None
    );

    let arrival = Arrival {
        peer: "quoc-gia".into(),
        peer_doc: "their-1".into(),
        via: vec!["tinh-a".into(), "quoc-gia".into()],
        trace: vec![Hop {
            organ_id: "000.00.05.H49".into(),
            timestamp: "2026/12/03 08:00:00".into(),
        }],
    };
    let mut d = edoc(
        "f1",
        "peer|quoc-gia|their-1",
        &["000.31.07.H50", "000.00.00.G22"],
    );
    d.arrival = Some(arrival.clone());
    s.accept(&d, &[]).await.expect("accept");
    let row = s.document("f1").await.expect("doc").expect("row");
    assert_eq!(row.arrival, Some(arrival));
    let local = edoc("f0", "local-f0", &["000.00.00.G22"]);
    s.accept(&local, &[]).await.expect("accept");
    assert_eq!(
        s.document("f0").await.expect("doc").expect("row").arrival,
        None
    );

    // A leg routed to another bus remembers it; only an accepted leg moves.
    assert!(
        s.forward_leg("f1", "000.31.07.H50", "tinh-b")
            .await
            .expect("fwd")
    );
    assert!(
        !s.forward_leg("f1", "000.31.07.H50", "tinh-c")
            .await
            .expect("again")
    );
    let legs = s.legs("f1").await.expect("legs");
    let leg = legs
        .iter()
        .find(|l| l.recipient == "000.31.07.H50")
        .expect("leg");
    assert_eq!(
        (leg.delivery, leg.bus.as_deref()),
        (DeliveryState::Routed, Some("tinh-b"))
    );
    assert!(
        s.advance_leg(
            "f1",
            "000.31.07.H50",
            DeliveryState::Routed,
            DeliveryState::Delivered
        )
        .await
        .expect("receipt")
    );

    // 06 overtook 01 on the way back: 01 then changes nothing, and is no error.
    let status = |key: &str, code: StatusCode| {
        let mut st = edoc(&format!("st-{key}"), key, &["000.00.00.H49"]);
        st.message_type = MessageType::Status;
        st.sender = "000.31.07.H50".into();
        st.status_code = Some(code);
        st.response_for = Some("f1".into());
        st.status_update = Some(StatusUpdate {
            doc_id: "f1".into(),
            legs: vec!["000.31.07.H50".into()],
            code,
            description: None,
            merge: true,
        });
        st
    };
    s.accept(&status("m6", StatusCode::Completed), &[])
        .await
        .expect("06");
    s.accept(&status("m1", StatusCode::Arrived), &[])
        .await
        .expect("01 late");
    let legs = s.legs("f1").await.expect("legs");
    let leg = legs
        .iter()
        .find(|l| l.recipient == "000.31.07.H50")
        .expect("leg");
    assert_eq!(leg.business, Some(StatusCode::Completed));
}

/// The operator's search: by docId, DocumentId, agency (sent or received), time, a page at a
/// time, newest first; and failed copies.
async fn documents_are_found_by_id_agency_and_time(env: &Env) {
    let s = &env.store;
    // Ten documents a minute apart, ids shaped as the gateway makes them (UUIDv7: time first).
    let t0: i64 = 1_790_000_000_000;
    let id = |i: i64| {
        let t = t0 + i * 60_000;
        format!("{:08x}-{:04x}-7000-8000-{:012x}", t >> 16, t & 0xffff, i)
    };
    for i in 0..10 {
        let (from, to) = if i % 2 == 0 {
            ("000.00.00.H49", "000.00.00.G22")
        } else {
            ("000.00.00.G22", "000.00.00.H50")
        };
        let mut d = edoc(&id(i), &format!("search-{i}"), &[to]);
        d.sender = from.into();
        d.document_id = format!("{from},2026/12/03,{i}/UBND");
        s.accept(&d, &[]).await.expect("accept");
        // created_ms is the acceptance time; set the synthetic one.
        s.set_created_for_tests(&id(i), t0 + i * 60_000).await;
    }
    let ids = |rows: Vec<DocumentRow>| rows.into_iter().map(|d| d.doc_id).collect::<Vec<_>>();
    let search = |f: &dyn Fn(&mut DocumentSearch)| {
        let mut q = DocumentSearch {
            limit: 3,
            ..DocumentSearch::default()
        };
        f(&mut q);
        q
    };
    // The agency G22 received the even ones and sent the odd ones: all ten, newest first.
    let page1 = ids(s
        .search_documents(&search(&|q| q.agency = Some("000.00.00.G22".into())))
        .await
        .expect("p1"));
    assert_eq!(page1, [id(9), id(8), id(7)]);
    let page2 = ids(s
        .search_documents(&search(&|q| {
            q.agency = Some("000.00.00.G22".into());
            q.before = Some(id(7));
        }))
        .await
        .expect("p2"));
    assert_eq!(page2, [id(6), id(5), id(4)]);
    // H50 only received (the odd ones); H49 only sent (the even ones).
    let h50 = ids(s
        .search_documents(&search(&|q| q.agency = Some("000.00.00.H50".into())))
        .await
        .expect("h50"));
    assert_eq!(h50, [id(9), id(7), id(5)]);
    // A time range: minutes 2 to 4 inclusive.
    let range = ids(s
        .search_documents(&search(&|q| {
            q.from_ms = Some(t0 + 2 * 60_000);
            q.to_ms = Some(t0 + 4 * 60_000);
            q.limit = 10;
        }))
        .await
        .expect("range"));
    assert_eq!(range, [id(4), id(3), id(2)]);
    let exact = ids(s
        .search_documents(&search(&|q| q.doc_id = Some(id(3))))
        .await
        .expect("id"));
    assert_eq!(exact, [id(3)]);
    let by_document = ids(s
        .search_documents(&search(&|q| {
            q.document_id = Some("000.00.00.H49,2026/12/03,4/UBND".into())
        }))
        .await
        .expect("documentId"));
    assert_eq!(by_document, [id(4)]);
    assert!(
        s.search_documents(&search(&|q| q.agency = Some("000.99.99.X00".into())))
            .await
            .expect("none")
            .is_empty()
    );

    // Failed copies, newest first; a retry puts one back to accepted.
    assert!(
        s.fail_leg(&id(1), "000.00.00.H50", "locked")
            .await
            .expect("fail")
    );
    assert!(
        s.fail_leg(&id(2), "000.00.00.G22", "locked")
            .await
            .expect("fail")
    );
    let failed = s.failed_legs(10).await.expect("failed");
    assert_eq!(failed.len(), 2);
    assert!(s.retry_leg(&id(1), "000.00.00.H50").await.expect("retry"));
    assert!(!s.retry_leg(&id(1), "000.00.00.H50").await.expect("again"));
    let failed = s.failed_legs(10).await.expect("failed");
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].leg.reason.as_deref(), Some("locked"));
}

/// The audit log: administrative actions of both areas, newest first, and nothing else.
async fn the_audit_log_lists_administrative_actions_newest_first(env: &Env) {
    let s = &env.store;
    let ev = |id: &str, doc: &str, at: i64| LedgerEvent {
        event_id: id.into(),
        doc_id: doc.into(),
        kind: doc.split(':').next().unwrap_or(doc).into(),
        organ: Some("000.00.00.G22".into()),
        detail: Some(format!("{id} (an via the console, operator token abc…)")),
        at_ms: at,
    };
    for e in [
        ev("registry:1", "registry", 10),
        ev("operations:2", "operations", 20),
        ev("registry:3", "registry", 30),
        ev("d1:accepted", "d1", 40),
    ] {
        assert!(s.record_event(&e).await.expect("record"));
    }
    let log = s.audit_log(10).await.expect("audit log");
    let ids: Vec<&str> = log.iter().map(|e| e.event_id.as_str()).collect();
    assert_eq!(ids, ["registry:3", "operations:2", "registry:1"]);
    let two = s.audit_log(2).await.expect("audit log");
    assert_eq!(two.len(), 2);
    assert_eq!(two[1].event_id, "operations:2");
}

/// The calls the stages make for each document, made by many tasks at once, are answered as
/// each would be alone (the store makes them together: `together.rs`).
async fn stage_calls_made_at_once_are_each_answered_as_if_made_alone(env: &Env) {
    use futures_util::future::join_all;
    let s = &env.store;
    let (g22, h49) = ("000.00.00.G22", "000.12.05.H49");
    s.upsert_agencies(&[agency(g22, Level::Central), agency(h49, Level::District)])
        .await
        .expect("upsert");
    for (doc, recipients) in [("d1", &[g22, h49][..]), ("d2", &[g22][..])] {
        s.accept(&edoc(doc, &format!("k-{doc}"), recipients), &[])
            .await
            .expect("accept");
    }

    let docs = join_all(["d1", "d2", "none", "d1"].map(|d| s.document(d))).await;
    let ids: Vec<Option<String>> = docs
        .into_iter()
        .map(|d| d.expect("document").map(|d| d.doc_id))
        .collect();
    assert_eq!(
        ids,
        [
            Some("d1".into()),
            Some("d2".into()),
            None,
            Some("d1".into())
        ]
    );

    let keys: Vec<Option<String>> =
        join_all(["k-d2", "k-none", "k-d1"].map(|k| s.doc_id_for_key(k)))
            .await
            .into_iter()
            .map(|k| k.expect("key"))
            .collect();
    assert_eq!(keys, [Some("d2".into()), None, Some("d1".into())]);
    let found: Vec<Option<String>> = join_all([h49, "000.99.99.H99", g22].map(|c| s.agency(c)))
        .await
        .into_iter()
        .map(|a| a.expect("agency").map(|a| a.code))
        .collect();
    assert_eq!(found, [Some(h49.into()), None, Some(g22.into())]);

    let legs = join_all(["d1", "d2", "none"].map(|d| s.legs(d))).await;
    let recipients: Vec<Vec<String>> = legs
        .into_iter()
        .map(|l| l.expect("legs").into_iter().map(|l| l.recipient).collect())
        .collect();
    assert_eq!(
        recipients,
        [
            vec![g22.to_owned(), h49.to_owned()],
            vec![g22.to_owned()],
            vec![]
        ]
    );

    let agencies = join_all(
        [&[g22][..], &[h49, "000.99.99.H99"][..], &[][..]].map(|codes| s.agencies_in(codes)),
    )
    .await;
    let codes: Vec<Vec<String>> = agencies
        .into_iter()
        .map(|a| a.expect("agencies").into_iter().map(|a| a.code).collect())
        .collect();
    assert_eq!(codes, [vec![g22.to_owned()], vec![h49.to_owned()], vec![]]);

    // The same leg twice: the first moves it, the second finds it moved. A leg asked to move
    // from a state it is not in, then from the one it is in: in that order.
    use DeliveryState::{Accepted, Delivered, Routed};
    let moves = [
        ("d1", g22, Accepted, Routed),
        ("d1", g22, Accepted, Routed),
        ("d1", h49, Accepted, Routed),
        ("d2", g22, Routed, Delivered),
        ("d2", g22, Accepted, Routed),
        ("none", g22, Accepted, Routed),
    ];
    let moved: Vec<bool> = join_all(moves.map(|(d, r, from, to)| s.advance_leg(d, r, from, to)))
        .await
        .into_iter()
        .map(|m| m.expect("advance"))
        .collect();
    assert_eq!(moved, [true, false, true, false, true, false]);
    for doc in ["d1", "d2"] {
        assert!(
            s.legs(doc)
                .await
                .expect("legs")
                .iter()
                .all(|l| l.delivery == Routed),
            "{doc}"
        );
    }

    let verdict = |doc: &str, outcome: &str| VerdictRow {
        doc_id: doc.into(),
        sender: "000.00.00.H49".into(),
        sender_system: "sys-a".into(),
        outcome: outcome.into(),
        reason_code: None,
        reason: None,
        signer: None,
        issuer: None,
        serial: None,
        signature_method: None,
        verified_ms: 1,
        verdict: "{}".into(),
    };
    let verdicts = [
        verdict("d1", "valid"),
        verdict("d1", "invalid"),
        verdict("d2", "invalid"),
    ];
    let recorded: Vec<bool> = join_all(verdicts.iter().map(|v| s.record_verdict(v)))
        .await
        .into_iter()
        .map(|r| r.expect("record"))
        .collect();
    assert_eq!(recorded, [true, false, true]);
    let read: Vec<Option<String>> = join_all(["d1", "d2", "d3"].map(|d| s.verdict(d)))
        .await
        .into_iter()
        .map(|v| v.expect("verdict").map(|v| v.outcome))
        .collect();
    assert_eq!(read, [Some("valid".into()), Some("invalid".into()), None]);

    // A rendition stored twice keeps the first; one blob serves two renditions.
    let (a, b, c) = (
        Body::Bytes(b"<rendition>a</rendition>".to_vec().into()),
        Body::Bytes(b"<rendition>b</rendition>".to_vec().into()),
        Body::Bytes(b"{\"rendition\":\"c\"}".to_vec().into()),
    );
    let puts = [
        ("d1", Format::Govn, &a),
        ("d1", Format::Govn, &b),
        ("d2", Format::Json, &c),
        ("d2", Format::Govn, &a),
    ];
    let stored: Vec<RenditionRow> = join_all(puts.map(|(d, f, body)| s.put_rendition(d, f, body)))
        .await
        .into_iter()
        .map(|r| r.expect("put"))
        .collect();
    assert_eq!(stored[0].sha256, a.sha256());
    assert_eq!(stored[1], stored[0]);
    assert_eq!(stored[2].sha256, c.sha256());
    assert_eq!(stored[3].sha256, a.sha256());
    for (doc, format, body) in [
        ("d1", Format::Govn, &a),
        ("d2", Format::Govn, &a),
        ("d2", Format::Json, &c),
    ] {
        let (row, bytes) = s
            .rendition(doc, format)
            .await
            .expect("rendition")
            .expect("stored");
        assert_eq!((row.doc_id.as_str(), row.format), (doc, format));
        assert_eq!(Body::Bytes(bytes.into()).sha256(), body.sha256());
    }
    let rows: Vec<Option<(String, Format)>> = join_all(
        [
            ("d1", Format::Govn),
            ("d1", Format::Json),
            ("d2", Format::Json),
        ]
        .map(|(d, f)| s.rendition_row(d, f)),
    )
    .await
    .into_iter()
    .map(|r| r.expect("row").map(|r| (r.doc_id, r.format)))
    .collect();
    assert_eq!(
        rows,
        [
            Some(("d1".into(), Format::Govn)),
            None,
            Some(("d2".into(), Format::Json))
        ]
    );

    // Writes of every kind made at once go in one transaction, each answered as alone; one
    // that fails (a rendition of no document) fails alone, and the others stand.
    s.accept(&edoc("d3", "k-d3", &[g22]), &[])
        .await
        .expect("accept");
    let (d, e) = (
        Body::Bytes(b"{\"rendition\":\"d\"}".to_vec().into()),
        Body::Bytes(b"{\"rendition\":\"e\"}".to_vec().into()),
    );
    enum Answer {
        Moved(bool),
        Recorded(bool),
        Stored(String),
        Chained(Vec<bool>),
        Failed(String),
    }
    let (first, second) = (verdict("d3", "valid"), verdict("d3", "invalid"));
    let event = |kind: &str| LedgerEvent {
        event_id: format!("d3:{kind}"),
        doc_id: "d3".into(),
        kind: kind.into(),
        organ: Some(g22.into()),
        detail: None,
        at_ms: 1,
    };
    let (routed, delivered, fetched) = (event("routed"), event("delivered"), event("fetched"));
    // On SQLite the ledger's events go in the stages' transaction: each call is answered for
    // its own events, in its order, an event of an earlier call counting as recorded before.
    let (before, after) = (
        [routed.clone(), delivered.clone()],
        [delivered, fetched.clone(), fetched],
    );
    let writes: Vec<futures_util::future::BoxFuture<'_, Answer>> = vec![
        Box::pin(async { Answer::Chained(s.record_events(&before).await.expect("events")) }),
        Box::pin(async {
            Answer::Moved(
                s.advance_leg("d3", g22, Accepted, Routed)
                    .await
                    .expect("move"),
            )
        }),
        Box::pin(async { Answer::Recorded(s.record_verdict(&first).await.expect("verdict")) }),
        Box::pin(async {
            Answer::Stored(
                s.put_rendition("d3", Format::Json, &d)
                    .await
                    .expect("put")
                    .sha256,
            )
        }),
        Box::pin(async {
            Answer::Moved(
                s.advance_leg("d3", g22, Accepted, Routed)
                    .await
                    .expect("again"),
            )
        }),
        Box::pin(async { Answer::Recorded(s.record_verdict(&second).await.expect("second")) }),
        Box::pin(async {
            Answer::Stored(
                s.put_rendition("d3", Format::Json, &e)
                    .await
                    .expect("put")
                    .sha256,
            )
        }),
        Box::pin(async {
            Answer::Moved(
                s.advance_leg("d3", g22, Routed, Delivered)
                    .await
                    .expect("on"),
            )
        }),
        Box::pin(async { Answer::Chained(s.record_events(&after).await.expect("events")) }),
    ];
    let mut answers = join_all(writes).await;
    let (Answer::Chained(first_events), Some(Answer::Chained(events_after))) =
        (answers.remove(0), answers.pop())
    else {
        panic!("the events' calls are answered with what each recorded");
    };
    if s.backend() == lienthong_store::Backend::Sqlite {
        assert_eq!(first_events, [true, true], "the first events");
        assert_eq!(
            events_after,
            [false, true, false],
            "events after: one recorded before, one new, one repeated"
        );
    } else {
        // On PostgreSQL each call is a transaction of its own, and the two race for the chain's
        // head: `delivered`, in both, is recorded by whichever commits first, and only once.
        assert!(first_events[0], "routed, in the first call alone, is new");
        assert!(
            first_events[1] != events_after[0],
            "delivered is recorded by exactly one call: {first_events:?} {events_after:?}"
        );
        assert_eq!(
            events_after[1..],
            [true, false],
            "fetched is recorded once, its repeat in the same call refused"
        );
    }
    assert!(matches!(answers[0], Answer::Moved(true)), "the first move");
    assert!(
        matches!(answers[1], Answer::Recorded(true)),
        "the first verdict"
    );
    assert!(
        matches!(&answers[2], Answer::Stored(sha) if *sha == d.sha256()),
        "the first rendition"
    );
    assert!(
        matches!(answers[3], Answer::Moved(false)),
        "the same move again"
    );
    assert!(
        matches!(answers[4], Answer::Recorded(false)),
        "a second verdict"
    );
    assert!(
        matches!(&answers[5], Answer::Stored(sha) if *sha == d.sha256()),
        "a second rendition keeps the first"
    );
    assert!(
        matches!(answers[6], Answer::Moved(true)),
        "the next move, after"
    );
    let third = verdict("d2", "valid");
    let writes: Vec<futures_util::future::BoxFuture<'_, Answer>> = vec![
        Box::pin(async { Answer::Recorded(s.record_verdict(&third).await.expect("verdict")) }),
        Box::pin(async {
            match s.put_rendition("none", Format::Json, &e).await {
                Ok(row) => Answer::Stored(row.sha256),
                Err(e) => Answer::Failed(e.to_string()),
            }
        }),
        Box::pin(async {
            Answer::Stored(
                s.put_rendition("d3", Format::Govn, &e)
                    .await
                    .expect("put")
                    .sha256,
            )
        }),
    ];
    let answers = join_all(writes).await;
    assert!(matches!(answers[0], Answer::Recorded(false)), "d2 has one");
    assert!(
        matches!(&answers[1], Answer::Failed(why) if why.to_lowercase().contains("foreign key")),
        "a rendition of no document is refused"
    );
    assert!(
        matches!(&answers[2], Answer::Stored(sha) if *sha == e.sha256()),
        "beside a refused one, a rendition is stored"
    );
    assert_eq!(
        s.legs("d3").await.expect("legs")[0].delivery,
        Delivered,
        "both moves, in the order asked"
    );
    assert_eq!(
        s.verdict("d3").await.expect("verdict").map(|v| v.outcome),
        Some("valid".into())
    );
    assert!(
        s.rendition_row("none", Format::Json)
            .await
            .expect("row")
            .is_none()
    );
    // The trace lists events of the same moment in the order they were chained: the calls'
    // order on SQLite, the order their transactions committed on PostgreSQL.
    let mut kinds = trace_kinds(s, "d3").await;
    if s.backend() != lienthong_store::Backend::Sqlite {
        kinds.sort_by_key(|k| {
            ["routed", "delivered", "fetched"]
                .iter()
                .position(|o| *o == k.as_str())
        });
    }
    assert_eq!(kinds, ["routed", "delivered", "fetched"]);
    match s.verify_chain().await.expect("verify") {
        ChainCheck::Intact { events, .. } => assert_eq!(events, 3),
        broken => panic!("{broken:?}"),
    }
}

/// The trace of a document finds the statuses answering it through `documents_response_for`,
/// an index that holds statuses only (an edoc answers nothing): its query must still be one
/// the index serves, or every trace would read every document.
async fn statuses_answering_a_document_are_found_through_the_index(env: &Env) {
    let s = &env.store;
    s.accept(&edoc("d1", "k1", &["000.00.00.G22"]), &[])
        .await
        .expect("accept");
    s.accept(&edoc("d2", "k2", &["000.00.00.G22"]), &[])
        .await
        .expect("accept");
    s.accept(&status_answering("st1", "k3", "d1"), &[])
        .await
        .expect("status doc");
    let at = |id: &str, doc: &str, kind: &str, at_ms: i64| LedgerEvent {
        event_id: id.into(),
        doc_id: doc.into(),
        kind: kind.into(),
        organ: None,
        detail: None,
        at_ms,
    };
    s.record_events(&[
        at("e1", "d1", "accepted", 1),
        at("e2", "st1", "accepted", 2),
        at("e3", "d2", "accepted", 3),
    ])
    .await
    .expect("events");
    assert_eq!(trace_kinds(s, "d1").await, ["accepted", "accepted"]);
    assert_eq!(trace_kinds(s, "d2").await, ["accepted"]);
    let plan = s
        .query_plan_for_tests(
            "SELECT e.event_id FROM events e JOIN documents d ON d.doc_id = e.doc_id \
             WHERE d.response_for = $1",
            "d1",
        )
        .await;
    assert!(plan.contains("documents_response_for"), "{plan}");
}

macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod sqlite_backend {
            use super::*;
            $(#[tokio::test] async fn $case() { let env = sqlite().await; super::$case(&env).await; env.done().await; })*
        }
        mod postgres_backend {
            use super::*;
            $(#[tokio::test] async fn $case() { let env = postgres().await; super::$case(&env).await; env.done().await; })*
        }
        mod sqlite_with_s3_blobs {
            use super::*;
            $(#[tokio::test] async fn $case() { let env = s3().await; super::$case(&env).await; env.done().await; })*
        }
    };
}

conformance!(
    registry_and_systems,
    client_certificates_bind_systems,
    acceptance_is_idempotent_and_atomic,
    documents_accepted_together_are_each_as_if_accepted_alone,
    legs_advance_once,
    stage_calls_made_at_once_are_each_answered_as_if_made_alone,
    business_status_follows_the_rules,
    ledger_and_outbox,
    statuses_answering_a_document_are_found_through_the_index,
    verdicts_are_kept_once_and_searchable,
    the_ledger_is_a_verifiable_hash_chain,
    formats_and_renditions,
    spliced_renditions_read_as_their_package_through_their_edits,
    spooled_packages_are_stored_without_being_held_and_read_back_as_sources,
    small_packages_stay_in_memory_and_in_the_database,
    mergers_hand_documents_to_successors,
    documents_from_other_buses,
    documents_are_found_by_id_agency_and_time,
    the_audit_log_lists_administrative_actions_newest_first,
);

/// `store.sqlite_synchronous`: NORMAL unless FULL is asked for, on every connection of the store;
/// a value that is neither is refused, naming it.
#[tokio::test]
async fn sqlite_commits_are_synced_to_the_disk_when_asked() {
    for (setting, pragma) in [
        (lienthong_store::SqliteSynchronous::Normal, 1),
        (lienthong_store::SqliteSynchronous::Full, 2),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::connect(&StoreConfig {
            sqlite_synchronous: setting,
            ..sqlite_config(dir.path(), CHECKPOINT_MS)
        })
        .await
        .expect("store");
        assert_eq!(
            store.sqlite_synchronous_for_tests().await,
            pragma,
            "{setting:?}"
        );
        store.close().await;
    }
    let parsed: StoreConfig =
        toml::from_str("url = \"sqlite://x.db\"\nsqlite_synchronous = \"full\"").expect("full");
    assert_eq!(
        parsed.sqlite_synchronous,
        lienthong_store::SqliteSynchronous::Full
    );
    let refused =
        toml::from_str::<StoreConfig>("url = \"sqlite://x.db\"\nsqlite_synchronous = \"off\"")
            .expect_err("off");
    assert!(
        refused.to_string().contains("sqlite_synchronous"),
        "{refused}"
    );
    assert!(refused.to_string().contains("off"), "{refused}");
}

/// `store.sqlite_page_size`: a new database file is made with it; a file that exists keeps its
/// own, with everything in it; a size SQLite does not take is refused, naming the setting and the
/// rule, before any file is made.
#[tokio::test]
async fn sqlite_files_are_made_with_the_page_size_asked_for() {
    /// The page size in the file's header (offset 16, big-endian; 1 stands for 65,536).
    fn page_size_of(db: &std::path::Path) -> u32 {
        let header = std::fs::read(db).expect("database file");
        match u16::from_be_bytes([header[16], header[17]]) {
            1 => 65536,
            n => u32::from(n),
        }
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("t.db");
    let store = Store::connect(&StoreConfig {
        sqlite_page_size: 1024,
        ..sqlite_config(dir.path(), CHECKPOINT_MS)
    })
    .await
    .expect("store");
    let doc = edoc("page-1", "page-1", &["000.00.00.G22"]);
    store.accept(&doc, &[]).await.expect("accept");
    store.close().await;
    assert_eq!(page_size_of(&db), 1024);

    // Opened again asking for another size: the file keeps its own, and its documents.
    let store = Store::connect(&StoreConfig {
        sqlite_page_size: 8192,
        ..sqlite_config(dir.path(), CHECKPOINT_MS)
    })
    .await
    .expect("store again");
    assert_eq!(
        store
            .document("page-1")
            .await
            .expect("read")
            .map(|d| d.doc_id),
        Some("page-1".into())
    );
    store.close().await;
    assert_eq!(page_size_of(&db), 1024);

    let fresh = tempfile::tempdir().expect("tempdir");
    let store = Store::connect(&sqlite_config(fresh.path(), CHECKPOINT_MS))
        .await
        .expect("store with the default");
    store.close().await;
    assert_eq!(
        page_size_of(&fresh.path().join("t.db")),
        lienthong_store::SQLITE_PAGE_SIZE
    );

    for wrong in [0, 256, 3000, 131072] {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = sqlite_config(dir.path(), CHECKPOINT_MS);
        config.url = format!("sqlite://{}", dir.path().join("data/t.db").display());
        config.sqlite_page_size = wrong;
        let refused = Store::connect(&config)
            .await
            .map(|_| ())
            .expect_err("refused");
        let said = refused.to_string();
        assert!(said.contains("store.sqlite_page_size"), "{said}");
        assert!(said.contains(&format!("= {wrong}:")), "{said}");
        assert!(said.contains("power of two from 512 to 65536"), "{said}");
        assert!(
            !dir.path().join("data").exists(),
            "neither the database's directory nor its file is made for a size refused"
        );
        // And when the configuration is read, as `lienthong check-config` reads it.
        let refused = toml::from_str::<StoreConfig>(&format!(
            "url = \"sqlite://x.db\"\nsqlite_page_size = {wrong}"
        ))
        .expect_err("refused when read");
        let said = refused.to_string();
        assert!(said.contains("store.sqlite_page_size"), "{said}");
        assert!(said.contains("power of two from 512 to 65536"), "{said}");
    }
    let read: StoreConfig =
        toml::from_str("url = \"sqlite://x.db\"\nsqlite_page_size = 8192").expect("8192");
    assert_eq!(read.sqlite_page_size, 8192);
    let read: StoreConfig = toml::from_str("url = \"sqlite://x.db\"").expect("default");
    assert_eq!(read.sqlite_page_size, lienthong_store::SQLITE_PAGE_SIZE);
}

/// SQLite's checkpoints (`store.checkpoint_ms`): a task of the store's copies the write-ahead log
/// back into the database file, not the commits.
mod sqlite_checkpoints {
    use super::*;
    use sqlx::Connection;
    use std::path::{Path, PathBuf};
    use std::time::{Duration, Instant};

    const MIB: u64 = 1024 * 1024;

    /// The store, its database file and its write-ahead log.
    async fn store_at(dir: &Path, checkpoint_ms: u64) -> (Store, PathBuf, PathBuf) {
        let store = Store::connect(&sqlite_config(dir, checkpoint_ms))
            .await
            .expect("sqlite store");
        (store, dir.join("t.db"), dir.join("t.db-wal"))
    }

    fn len(path: &Path) -> u64 {
        std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
    }

    /// 200 documents of 48 KiB each, kept in the database: about 2,400 pages of log, more than
    /// twice what makes SQLite checkpoint by itself (1,000 pages).
    async fn write_documents(s: &Store) {
        for i in 0..200 {
            let id = format!("ckpt-{i}");
            let mut doc = edoc(&id, &id, &["000.00.00.G22"]);
            let mut body = vec![b'x'; 48 * 1024];
            body[..id.len()].copy_from_slice(id.as_bytes());
            doc.body = Body::Bytes(body.into());
            s.accept(&doc, &[]).await.expect("accept");
        }
    }

    /// Waits up to 10 s for `done`, then fails saying `what`.
    async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
        let started = Instant::now();
        while !done() {
            assert!(started.elapsed() < Duration::from_secs(10), "{what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn commits_leave_the_log_to_the_checkpointer() {
        let dir = tempfile::tempdir().expect("tempdir");
        // The task's first checkpoint is at start; the next would be in an hour.
        let (store, db, wal) = store_at(dir.path(), 3_600_000).await;
        let before = len(&db);
        write_documents(&store).await;
        assert!(
            len(&wal) > 8 * MIB,
            "the documents are in the log ({} bytes)",
            len(&wal)
        );
        assert!(
            len(&db) < before + MIB,
            "no commit copied the log back: the database file went from {before} to {} bytes",
            len(&db)
        );
        assert_eq!(
            store
                .document("ckpt-199")
                .await
                .expect("read")
                .map(|d| d.doc_id),
            Some("ckpt-199".into())
        );
        store.close().await;
    }

    #[tokio::test]
    async fn the_checkpointer_copies_the_log_back_and_stops_with_the_store() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, db, wal) = store_at(dir.path(), 50).await;
        write_documents(&store).await;
        eventually(
            "the checkpointer copies the documents into the database file",
            || len(&db) > 8 * MIB,
        )
        .await;
        // Its task holds a handle on the pool; with the store's last clone gone it stops and the
        // connections close. SQLite leaves WAL mode only for a connection that has the database
        // to itself, so a connection of the test's own tells when they have.
        let clone = store.clone();
        drop(store);
        assert!(clone.ping().await.is_ok(), "a clone keeps the store open");
        drop(clone);
        let mut probe = sqlx::AnyConnection::connect(&format!("sqlite://{}", db.display()))
            .await
            .expect("a connection of the test's own");
        sqlx::query("PRAGMA busy_timeout = 0")
            .execute(&mut probe)
            .await
            .expect("busy timeout");
        let started = Instant::now();
        loop {
            let mode: Result<String, _> = sqlx::query_scalar("PRAGMA journal_mode = DELETE")
                .fetch_one(&mut probe)
                .await;
            if matches!(mode.as_deref(), Ok("delete")) {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the store's connections close once it is dropped (journal mode: {mode:?})"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(!wal.exists(), "out of WAL mode, SQLite has removed the log");
    }

    #[tokio::test]
    async fn zero_leaves_checkpoints_to_sqlite() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, db, _wal) = store_at(dir.path(), 0).await;
        write_documents(&store).await;
        assert!(
            len(&db) > 4 * MIB,
            "SQLite copied the log back after a commit ({} bytes in the database file)",
            len(&db)
        );
        store.close().await;
    }
}

//! The registry as the bus lives with it: agencies merged into others (the 2025 reorganisation)
//! hand their documents to their successors, and the trace says so.

use lienthong_edxml::write_edoc;
use lienthong_tests::*;

#[tokio::test]
async fn a_document_addressed_to_a_merged_agency_goes_to_its_successor() {
    let env = Env::new(Backend::Sqlite).await;
    // RETIRED is already retired (no successor); LOCKED merges into COMMUNE today.
    env.store
        .merge_agencies(&[LOCKED], COMMUNE, &lienthong_store::today())
        .await
        .expect("merge")
        .expect("known codes");
    let bus = InProcessBus::start(&env).await;
    let province = bus.client("province");
    let doc = edoc(PROVINCE, &[LOCKED, MINISTRY], unique_number());
    let doc_id = province.send(write_edoc(&doc), "edoc").await.expect("send");
    env.all_delivered(&doc_id).await;

    // The successor has the copy; the package itself is unchanged (its To still names LOCKED).
    let legs: Vec<String> = env
        .store
        .legs(&doc_id)
        .await
        .expect("legs")
        .into_iter()
        .map(|l| l.recipient)
        .collect();
    assert_eq!(legs, [MINISTRY, COMMUNE], "legs in code order");
    let commune = bus.client("commune");
    let fetched = commune
        .fetch(&doc_id)
        .await
        .expect("the successor reads it");
    assert_eq!(fetched.bytes, write_edoc(&doc));
    let trace = eventually(
        "the redirection in the trace",
        std::time::Duration::from_secs(20),
        || async {
            let trace = province.trace(&doc_id).await.expect("trace");
            trace.iter().find(|e| e["event"] == "redirected").cloned()
        },
    )
    .await;
    assert_eq!(trace["organId"], LOCKED);
    assert!(
        trace["detail"]
            .as_str()
            .is_some_and(|d| d.contains(COMMUNE)),
        "{trace}"
    );
    // The successor answers; the sender sees its status on the successor's copy.
    let me = lienthong_edxml::Organization::new(
        lienthong_edxml::OrganId::parse(COMMUNE).expect("organ"),
        "UBND xã",
    );
    let status = lienthong_edxml::write::status_reply(
        &doc.header,
        &me,
        lienthong_edxml::StatusCode::Arrived,
        None,
    );
    commune
        .send(lienthong_edxml::write_status(&status), "status")
        .await
        .expect("status from the successor");
    // Sending the same package again is a resubmission, not a DocumentId reused (26).
    assert_eq!(
        province
            .send(write_edoc(&doc), "edoc")
            .await
            .expect("again"),
        doc_id
    );
    // A retired agency without a successor is still refused (18), naming the rule.
    let lost = edoc(PROVINCE, &[RETIRED], unique_number());
    match province.send(write_edoc(&lost), "edoc").await {
        Err(lienthong_client::ClientError::Api { code: 18, desc, .. }) => {
            assert!(desc.contains("with no successor"), "{desc}")
        }
        other => panic!("expected 18, got {other:?}"),
    }
    bus.stop().await;
    env.teardown().await;
}

#[tokio::test]
async fn a_broadcast_reaches_every_agency_at_a_level_under_one() {
    let env = Env::new(Backend::Sqlite).await;
    // The communes under the department, under the province.
    let mut agencies = env.store.agencies().await.expect("registry");
    for a in &mut agencies {
        if a.level == lienthong_store::Level::Commune {
            a.pcode = Some(DEPARTMENT.into());
        } else if a.code == DEPARTMENT {
            a.pcode = Some(PROVINCE.into());
        }
    }
    let mut another = agencies
        .iter()
        .find(|a| a.code == COMMUNE)
        .cloned()
        .expect("commune");
    another.code = "000.16.05.H49".into();
    another.legacy_code = None;
    agencies.push(another);
    env.store
        .upsert_agencies(&agencies)
        .await
        .expect("registry");
    let bus = InProcessBus::start(&env).await;

    let doc = edoc(PROVINCE, &[MINISTRY], unique_number());
    let send = |broadcast: &'static str| {
        let form = reqwest::multipart::Form::new()
            .text("messageType", "edoc")
            .text("broadcast", broadcast)
            .part(
                "edocFile",
                reqwest::multipart::Part::bytes(write_edoc(&doc)).file_name("p.edxml"),
            );
        reqwest::Client::new()
            .post(format!("{}/v1/sendEdoc", bus.url))
            .header("X-SystemId", "province")
            .header("X-SecretKey", "secret-province")
            .multipart(form)
    };
    let sent = answer(send("000.00.00.H49:commune")).await;
    let doc_id = sent["docId"].as_str().expect("docId").to_owned();
    env.all_delivered(&doc_id).await;
    let legs: Vec<String> = env
        .store
        .legs(&doc_id)
        .await
        .expect("legs")
        .into_iter()
        .map(|l| l.recipient)
        .collect();
    // The addressee, and the communes in service under the province (not the locked or the
    // retired one).
    assert_eq!(legs, [MINISTRY, COMMUNE, "000.16.05.H49"]);
    let province = bus.client("province");
    let event = eventually(
        "the broadcast in the trace",
        std::time::Duration::from_secs(20),
        || async {
            province
                .trace(&doc_id)
                .await
                .expect("trace")
                .into_iter()
                .find(|e| e["event"] == "broadcast")
        },
    )
    .await;
    assert!(
        event["detail"]
            .as_str()
            .is_some_and(|d| d.contains("2 agencies at level commune")),
        "{event}"
    );
    // A broadcast that reaches nobody, or is not CODE:level, is refused by name.
    let nobody = answer(send("000.00.00.G22:commune")).await;
    assert_eq!(nobody["data"]["errorCode"], 18, "{nobody}");
    let malformed = answer(send("province")).await;
    assert_eq!(malformed["data"]["errorCode"], 10, "{malformed}");
    assert!(
        malformed["data"]["errorDesc"]
            .as_str()
            .is_some_and(|d| d.starts_with("broadcast:")),
        "{malformed}"
    );
    bus.stop().await;
    env.teardown().await;
}

#[tokio::test]
async fn operators_change_the_registry_over_http_and_every_change_is_audited() {
    let env = Env::new(Backend::Sqlite).await;
    let bus = InProcessBus::start(&env).await;
    let http = reqwest::Client::new();
    let url = |path: &str| format!("{}/admin/registry{path}", bus.url);
    let auth = format!("Bearer {OPERATOR_TOKEN}");

    // Without the operator's token: refused. (The security officer's token is another role.)
    let status = http
        .get(url(""))
        .header("Authorization", format!("Bearer {OFFICER_TOKEN}"))
        .send()
        .await
        .expect("request")
        .status();
    assert_eq!(status, 401);

    // Import CSV; a bad record changes nothing and is named.
    let csv = "code,name,pcode,level\n000.17.05.H49,UBND xã Mới,000.00.05.H49,commune\n";
    let imported = answer(
        http.post(url(""))
            .header("Authorization", &auth)
            .header("Content-Type", "text/csv")
            .body(csv),
    )
    .await;
    assert_eq!(imported["imported"], 1, "{imported}");
    let refused = answer(
        http.post(url(""))
            .header("Authorization", &auth)
            .header("Content-Type", "text/csv")
            .body("code,name\n000.18.05.H49,Đúng\nH49,Sai\n"),
    )
    .await;
    assert_eq!(refused["data"]["errorCode"], 22, "{refused}");
    assert!(
        refused["data"]["errorDesc"]
            .as_str()
            .is_some_and(|d| d.contains("record 2: code")),
        "{refused}"
    );
    assert!(
        env.store
            .agency("000.18.05.H49")
            .await
            .expect("agency")
            .is_none()
    );

    // Lock, then merge; the running gateway refuses the locked one at once.
    let locked = answer(
        http.post(url("/000.17.05.H49/state"))
            .header("Authorization", &auth)
            .json(&serde_json::json!({"state": "locked"})),
    )
    .await;
    assert_eq!(locked["state"], "locked", "{locked}");
    let province = bus.client("province");
    let to_locked = edoc(PROVINCE, &["000.17.05.H49"], unique_number());
    assert_eq!(
        province
            .send(write_edoc(&to_locked), "edoc")
            .await
            .err()
            .and_then(|e| e.code()),
        Some(23)
    );
    let merged = answer(
        http.post(url("/merge"))
            .header("Authorization", &auth)
            .json(&serde_json::json!({"codes": ["000.17.05.H49"], "into": COMMUNE})),
    )
    .await;
    assert_eq!(merged["into"], COMMUNE, "{merged}");
    let csv_out = http
        .get(url("?format=csv"))
        .header("Authorization", &auth)
        .send()
        .await
        .expect("export")
        .text()
        .await
        .expect("text");
    assert!(
        csv_out.lines().any(|l| l.starts_with("000.17.05.H49,")
            && l.contains(",retired,")
            && l.contains(COMMUNE)),
        "{csv_out}"
    );

    // Every change is in the ledger (the audit log), naming the operator's token by its digest.
    let audit = env.registry_audit(3).await;
    let digest = lienthong_store::sha256_hex(OPERATOR_TOKEN.as_bytes());
    for e in &audit {
        assert_eq!(e.kind, "registry");
        assert!(
            e.detail
                .as_deref()
                .is_some_and(|d| d.contains(&digest[..12])),
            "{e:?}"
        );
    }
    bus.stop().await;
    env.teardown().await;
}

/// The JSON answer to a request.
async fn answer(request: reqwest::RequestBuilder) -> serde_json::Value {
    request
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("a JSON answer")
}

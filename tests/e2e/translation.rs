//! Schema translation in the running bus: each recipient receives the format its registry entry
//! declares, beside the sender's signed original and the verdict; statuses go back in the
//! sender's format; every package carries the bus's TraceHeader; malformed input in every format
//! is refused naming the field.

use std::time::Duration;

use lienthong_client::{Client, ClientError};
use lienthong_edxml::{Format, NewEdoc, OrganId, Organization, StatusCode, write, write_edoc};
use lienthong_tests::*;
use lienthong_translate::Message;
use lienthong_xmldsig::{Outcome, Policy, TrustStore, check_package};
use serde_json::Value;

fn decode(format: Format, bytes: &[u8]) -> Result<Message, lienthong_translate::DecodeError> {
    lienthong_translate::decode(format, bytes, &legacy_codes())
}

fn encode(format: Format, message: &Message) -> Vec<u8> {
    lienthong_translate::encode(format, message, &legacy_codes())
        .expect("every test agency has a code")
}

/// The last hop of a package's trace.
fn last_hop(message: &Message) -> Option<String> {
    let trace = match message {
        Message::Edoc(e) => &e.trace,
        Message::Status(s) => &s.trace,
    };
    trace.last().map(|t| t.organ_id.to_string())
}

fn edoc_of(message: Message) -> Box<NewEdoc> {
    match message {
        Message::Edoc(e) => e,
        Message::Status(_) => panic!("a status where an edoc was expected"),
    }
}

/// A status package answering `doc`, from `organ`, in `format`.
fn status_in(format: Format, doc: &NewEdoc, organ: &str, code: StatusCode) -> Vec<u8> {
    let me = Organization::new(OrganId::parse(organ).expect("organ"), "Cơ quan nhận");
    let st = write::status_reply(&doc.header, &me, code, Some(format!("{code} in {format}")));
    encode(format, &Message::Status(Box::new(st)))
}

/// The status packages in a sender's inbox that answer `document_id`, newest last.
async fn statuses_for(client: &Client, document_id: &str) -> Vec<Value> {
    client
        .inbox("status", &[("status", "all")])
        .await
        .expect("status inbox")
        .into_iter()
        .filter(|r| r["documentId"] == document_id)
        .collect()
}

#[tokio::test]
async fn each_recipient_gets_its_format_with_the_signed_original_and_statuses_come_back_in_the_senders()
 {
    let env = Env::new(Backend::Sqlite).await;
    env.receives(&[(COMMUNE, Format::Json), (MINISTRY, Format::Govn)])
        .await;
    let bus = InProcessBus::start(&env).await;
    let trust = TrustStore::load(&env.verifier.trust_dir, &[]).expect("trust");
    let verifies = |bytes: &[u8]| {
        check_package(
            bytes,
            &trust,
            &Policy::default(),
            lienthong_store::now_ms() / 1000,
        )
        .outcome
    };

    // The province's edXML system sends a signed package to a JSON system and a go.vn system.
    let doc = edoc(PROVINCE, &[MINISTRY, COMMUNE], unique_number());
    let signed_bytes = signed(&write_edoc(&doc), "signer");
    let province = bus.client("province");
    let doc_id = province
        .send(signed_bytes.clone(), "edoc")
        .await
        .expect("send");
    env.all_delivered(&doc_id).await;

    // The commune's JSON adapter: its package as JSON, with the bus's hop, the original as signed
    // (still verifying) and the verdict.
    let commune = bus.client("commune");
    let got = commune.fetch_json(&doc_id).await.expect("fetch json");
    assert_eq!(got["format"], "json");
    let json_bytes = serde_json::to_vec(&got["package"]).expect("json");
    let as_json = edoc_of(decode(Format::Json, &json_bytes).expect("JSON package reads"));
    assert_eq!(as_json.header, doc.header, "every header field survives");
    let contents = |e: &NewEdoc| -> Vec<(String, Vec<u8>)> {
        e.attachments
            .iter()
            .map(|a| (a.attachment_name.clone(), a.data.clone()))
            .collect()
    };
    assert_eq!(contents(&as_json), contents(&doc), "attachments survive");
    assert_eq!(
        last_hop(&Message::Edoc(as_json.clone())).as_deref(),
        Some(DEPARTMENT)
    );
    assert_eq!(got["original"]["format"], "edxml");
    let original = b64(&got["original"]["content"]);
    assert_eq!(original, signed_bytes, "the original travels untouched");
    assert_eq!(verifies(&original), Outcome::Valid);
    assert_eq!(got["signature"]["outcome"], "valid");

    // The ministry's go.vn system over /v1: the rendition in go.vn, the original beside it.
    let ministry = bus.client("ministry");
    let fetched = ministry.fetch(&doc_id).await.expect("fetch");
    assert_eq!(fetched.bytes, signed_bytes);
    assert_eq!(verifies(&fetched.bytes), Outcome::Valid);
    let rendition = &fetched.summary["rendition"];
    assert_eq!(rendition["format"], "govn");
    let govn = b64(&rendition["content"]);
    assert!(
        String::from_utf8_lossy(&govn).contains("http://www.go.vn/eDoc"),
        "a go.vn package"
    );
    let as_govn = decode(Format::Govn, &govn).expect("go.vn package reads");
    assert_eq!(last_hop(&as_govn).as_deref(), Some(DEPARTMENT));
    assert_eq!(edoc_of(as_govn).header.subject, doc.header.subject);

    // Statuses come back from the JSON and go.vn systems and reach the edXML sender as edXML.
    let (_, dup) = commune
        .send_json(status_in(Format::Json, &doc, COMMUNE, StatusCode::Arrived))
        .await
        .expect("json status");
    assert!(!dup);
    ministry
        .send_as(
            status_in(Format::Govn, &doc, MINISTRY, StatusCode::Accepted),
            "status",
            "govn",
        )
        .await
        .expect("go.vn status");
    let document_id = doc.header.document_id.to_string();
    let rows = eventually(
        "both statuses in the sender's inbox",
        Duration::from_secs(20),
        || {
            let province = province.clone();
            let document_id = document_id.clone();
            async move {
                let rows = statuses_for(&province, &document_id).await;
                (rows.len() == 2).then_some(rows)
            }
        },
    )
    .await;
    for row in rows {
        let status_id = row["docId"].as_str().expect("docId");
        let fetched = province.fetch(status_id).await.expect("fetch status");
        let rendition = &fetched.summary["rendition"];
        assert_eq!(rendition["format"], "edxml", "the sender receives edXML");
        let Message::Status(st) =
            decode(Format::Edxml, &b64(&rendition["content"])).expect("edXML status")
        else {
            panic!("not a status")
        };
        let expected = if st.from.organ_id.as_str() == COMMUNE {
            (StatusCode::Arrived, "json")
        } else {
            (StatusCode::Accepted, "govn")
        };
        assert_eq!(st.status_code, expected.0);
        assert_eq!(
            fetched.summary["format"], expected.1,
            "the original's format"
        );
        assert_eq!(st.response_for.document_id, doc.header.document_id);
    }
    // ... and the business status of each copy moved.
    let sent = province.sent(Some(&doc_id)).await.expect("sent");
    let business = |organ: &str| {
        sent.iter()
            .find(|r| r["to"] == organ)
            .map(|r| r["businessStatus"].clone())
            .unwrap_or_default()
    };
    assert_eq!(business(COMMUNE), "01");
    assert_eq!(business(MINISTRY), "03");

    // A JSON system sends to an edXML recipient: edXML rendition, JSON original, unsigned.
    let from_json = edoc(COMMUNE, &[PROVINCE], unique_number());
    let (json_doc, _) = commune
        .send_json(encode(
            Format::Json,
            &Message::Edoc(Box::new(from_json.clone())),
        ))
        .await
        .expect("json edoc");
    env.all_delivered(&json_doc).await;
    let fetched = province.fetch(&json_doc).await.expect("fetch");
    assert_eq!(fetched.summary["format"], "json");
    assert_eq!(fetched.summary["signature"]["outcome"], "unsigned");
    let rendition = edoc_of(
        decode(
            Format::Edxml,
            &b64(&fetched.summary["rendition"]["content"]),
        )
        .expect("edXML"),
    );
    assert_eq!(rendition.header, from_json.header);
    assert_eq!(
        last_hop(&Message::Edoc(rendition)).as_deref(),
        Some(DEPARTMENT)
    );
    // The trace says what the translator made (the statuses' translations are in it too).
    let translated: Vec<String> = eventually(
        "the translations in the trace",
        Duration::from_secs(20),
        || async {
            let trace = province.trace(&doc_id).await.expect("trace");
            let details: Vec<String> = trace
                .iter()
                .filter(|e| e["event"] == "translated" && e["docId"] == doc_id.as_str())
                .filter_map(|e| e["detail"].as_str().map(str::to_owned))
                .collect();
            (details.len() == 2).then_some(details)
        },
    )
    .await;
    assert!(
        translated
            .iter()
            .any(|d| d.starts_with("edxml -> json for 000.12.05.H49"))
    );
    assert!(
        translated
            .iter()
            .any(|d| d.starts_with("edxml -> govn for 000.00.00.G22"))
    );

    bus.stop().await;
    assert_eq!(env.dead_letters().await, 0);
    env.teardown().await;
}

fn api_error(r: Result<(String, bool), ClientError>) -> (i64, String) {
    match r {
        Err(ClientError::Api { code, desc, .. }) => (code, desc),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn malformed_packages_in_every_format_are_refused_naming_the_field() {
    let env = Env::new(Backend::Sqlite).await;
    let bus = InProcessBus::start_roles(&env, &env.bus, &["gateway"]).await;
    let province = bus.client("province");
    let good = Message::Edoc(Box::new(edoc(PROVINCE, &[MINISTRY], unique_number())));
    let json = |edit: &dyn Fn(&mut Value)| {
        let mut v: Value = serde_json::from_slice(&encode(Format::Json, &good)).expect("json");
        edit(&mut v);
        serde_json::to_vec(&v).expect("json")
    };

    // JSON: not JSON at all (10), an unknown field (10 at $), a bad agency code and an empty
    // subject (22, each at its JSON path).
    let (code, desc) = api_error(province.send_json(b"{\"messageType\":".to_vec()).await);
    assert_eq!(code, 10, "{desc}");
    let (code, desc) = api_error(
        province
            .send_json(json(&|v| v["header"]["colour"] = "blue".into()))
            .await,
    );
    assert_eq!(code, 10, "{desc}");
    assert!(desc.contains("colour"), "{desc}");
    let (code, desc) = api_error(
        province
            .send_json(json(&|v| v["header"]["to"][0]["organId"] = "G22".into()))
            .await,
    );
    assert_eq!(code, 22, "{desc}");
    assert!(desc.contains("header.to[0].organId"), "{desc}");
    let (code, desc) = api_error(
        province
            .send_json(json(&|v| v["header"]["subject"] = "".into()))
            .await,
    );
    assert_eq!(code, 22, "{desc}");
    assert!(desc.contains("header.subject"), "{desc}");

    // A body over the size limit: 413 with error 10, in the interface's own error shape.
    match province.send_json(vec![b' '; 3 * 1024 * 1024]).await {
        Err(ClientError::Api {
            code: 10,
            desc,
            http: 413,
        }) => assert!(desc.contains("larger than"), "{desc}"),
        other => panic!("expected 413, got {other:?}"),
    }

    // go.vn: a broken rule is reported at its go.vn path.
    let govn = String::from_utf8(encode(Format::Govn, &good)).expect("utf-8");
    let subject = match &good {
        Message::Edoc(e) => e.header.subject.clone(),
        Message::Status(_) => unreachable!(),
    };
    let broken = govn.replace(&format!(">{subject}<"), "><");
    assert_ne!(broken, govn, "the subject was in the package");
    let desc = match province.send_as(broken.into_bytes(), "edoc", "govn").await {
        Err(ClientError::Api { code: 22, desc, .. }) => desc,
        other => panic!("expected 22, got {other:?}"),
    };
    assert!(desc.contains("Subject"), "{desc}");
    // ... and a format the bus does not know is refused by name.
    match province.send_as(b"<a/>".to_vec(), "edoc", "docx").await {
        Err(ClientError::Api { code: 10, desc, .. }) => {
            assert!(desc.starts_with("format:"), "{desc}")
        }
        other => panic!("expected 10, got {other:?}"),
    }
    // Nothing was accepted on the way.
    assert!(province.sent(None).await.expect("sent").is_empty());

    bus.stop().await;
    env.teardown().await;
}

#[tokio::test]
async fn the_openapi_document_describes_routes_the_gateway_serves() {
    let env = Env::new(Backend::Sqlite).await;
    let bus = InProcessBus::start_roles(&env, &env.bus, &["gateway"]).await;
    let http = reqwest::Client::new();
    let doc: Value = http
        .get(format!("{}/json/v1/openapi.json", bus.url))
        .send()
        .await
        .expect("openapi")
        .json()
        .await
        .expect("json");
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().expect("paths");
    assert!(paths.len() >= 9, "{paths:?}");
    for (path, item) in paths {
        for method in item.as_object().expect("operations").keys() {
            let url = format!("{}{}", bus.url, path.replace("{docId}", "nope"));
            let req = match method.as_str() {
                "get" => http.get(&url),
                "post" => http.post(&url).body("{}"),
                other => panic!("{path}: unexpected method {other}"),
            };
            let status = req
                .header("X-SystemId", "province")
                .header("X-SecretKey", "secret-province")
                .send()
                .await
                .expect("request")
                .status();
            // Served: answered by its handler (404 only as error 24 for the unknown docId).
            assert_ne!(
                status,
                reqwest::StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}"
            );
            if status == reqwest::StatusCode::NOT_FOUND {
                assert!(path.contains("{docId}"), "{method} {path} is not served");
            }
        }
    }
    // The schema it refers to is served beside it and is the one in the repository.
    let schema = http
        .get(format!("{}/json/v1/package.schema.json", bus.url))
        .send()
        .await
        .expect("schema")
        .text()
        .await
        .expect("text");
    assert_eq!(schema, lienthong_translate::json::SCHEMA);
    bus.stop().await;
    env.teardown().await;
}

#[tokio::test]
async fn a_large_attachment_crosses_every_interface_streamed_and_intact() {
    // The test bus leaves attachments over 256 bytes in the stored package: this one is read a
    // piece at a time by the gateway, the verifier, the translator and every fetch.
    let env = Env::new(Backend::Sqlite).await;
    env.receives(&[(COMMUNE, Format::Json), (MINISTRY, Format::Edocvn)])
        .await;
    let bus = InProcessBus::start(&env).await;
    let mut doc = edoc(PROVINCE, &[MINISTRY, COMMUNE, DEPARTMENT], unique_number());
    doc.attachments[0].data = large_attachment(7);
    let signed_bytes = signed(&write_edoc(&doc), "signer");
    let path = env.dir.path().join("large.edxml");
    std::fs::write(&path, &signed_bytes).expect("write");
    let province = bus.client("province");
    let doc_id = province
        .send_file(&path, "edoc", "edxml")
        .await
        .expect("streamed send");
    env.all_delivered(&doc_id).await;
    assert_eq!(
        env.store
            .verdict(&doc_id)
            .await
            .expect("verdict")
            .map(|v| v.outcome),
        Some("valid".to_owned()),
        "verified with the attachment read from the stored package"
    );

    // The original, streamed back byte for byte; the e-doc.vn rendition with the same content.
    let ministry = bus.client("ministry");
    let out = env.dir.path().join("original.edxml");
    let (format, sha256, size) = ministry
        .fetch_file(&doc_id, false, &out)
        .await
        .expect("original");
    assert_eq!(std::fs::read(&out).expect("read"), signed_bytes);
    assert_eq!(
        (format.as_str(), size),
        ("edxml", signed_bytes.len() as u64)
    );
    assert_eq!(sha256, lienthong_store::sha256_hex(&signed_bytes));
    let (format, _, _) = ministry
        .fetch_file(&doc_id, true, &out)
        .await
        .expect("rendition");
    assert_eq!(format, "edocvn");
    let Message::Edoc(as_edocvn) =
        decode(Format::Edocvn, &std::fs::read(&out).expect("read")).expect("an e-doc.vn package")
    else {
        panic!("not an edoc")
    };
    assert_eq!(as_edocvn.attachments[0].data, doc.attachments[0].data);
    // getEdoc's JSON, streamed: the original in base64, the rendition beside it.
    let fetched = ministry.fetch(&doc_id).await.expect("getEdoc");
    assert_eq!(fetched.bytes, signed_bytes);

    // The edXML recipient's rendition: the signed original with the bus's TraceHeader put in
    // and the signature, which no longer holds for it, taken out; kept as edits to the stored
    // original, not a second copy, and streamed through them.
    let (format, sha256, size) = province
        .fetch_file(&doc_id, true, &out)
        .await
        .expect("edXML rendition");
    let rendition = std::fs::read(&out).expect("read");
    assert_eq!(format, "edxml");
    assert_eq!(
        (sha256, size),
        (
            lienthong_store::sha256_hex(&rendition),
            rendition.len() as u64
        )
    );
    let text = String::from_utf8_lossy(&rendition);
    assert!(!text.contains("Signature"), "the signature is taken out");
    assert!(
        String::from_utf8_lossy(&signed_bytes).contains("Signature"),
        "the original is signed"
    );
    let as_edxml = edoc_of(decode(Format::Edxml, &rendition).expect("edXML"));
    assert_eq!(
        last_hop(&Message::Edoc(as_edxml.clone())).as_deref(),
        Some(DEPARTMENT)
    );
    assert_eq!(as_edxml.attachments[0].data, doc.attachments[0].data);
    let row = env
        .store
        .rendition_row(&doc_id, Format::Edxml)
        .await
        .expect("read")
        .expect("stored");
    let spliced = row.spliced.expect("kept as edits to the original");
    assert_eq!(
        spliced.base_sha256,
        lienthong_store::sha256_hex(&signed_bytes)
    );

    // The JSON system: the attachment inside its JSON package, the original beside it.
    let got = bus
        .client("commune")
        .fetch_json(&doc_id)
        .await
        .expect("json");
    let Message::Edoc(as_json) = decode(
        Format::Json,
        &serde_json::to_vec(&got["package"]).expect("json"),
    )
    .expect("JSON") else {
        panic!("not an edoc")
    };
    assert_eq!(as_json.attachments[0].data, doc.attachments[0].data);
    assert_eq!(b64(&got["original"]["content"]), signed_bytes);

    // A JSON adapter sends one too: its JSON body is spooled and the attachment left in it.
    let from_json = {
        let mut d = edoc(COMMUNE, &[PROVINCE], unique_number());
        d.attachments[0].data = doc.attachments[0].data.clone();
        d
    };
    let json_path = env.dir.path().join("large.json");
    std::fs::write(
        &json_path,
        encode(Format::Json, &Message::Edoc(Box::new(from_json.clone()))),
    )
    .expect("write");
    let json_doc = bus
        .client("commune")
        .send_file(&json_path, "edoc", "json")
        .await
        .expect("JSON sent");
    env.all_delivered(&json_doc).await;
    let (format, _, _) = province
        .fetch_file(&json_doc, true, &out)
        .await
        .expect("rendition");
    assert_eq!(format, "edxml");
    let Message::Edoc(as_edxml) =
        decode(Format::Edxml, &std::fs::read(&out).expect("read")).expect("edXML")
    else {
        panic!("not an edoc")
    };
    assert_eq!(as_edxml.attachments[0].data, from_json.attachments[0].data);

    bus.stop().await;
    assert_eq!(env.dead_letters().await, 0);
    env.teardown().await;
}

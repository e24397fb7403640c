//! The legacy SOAP interface: an e-doc.vn system (SOAP with attachments, 9-character codes)
//! sends a signed package to a QCVN 102 system and to a JSON system; each receives its own format
//! with the original beside it, the original's signature still verifies, and the statuses they
//! send come back to the legacy system as e-doc.vn packages. Malformed messages get SOAP faults
//! with the legacy `N./R./M./T.` codes.

use std::time::Duration;

use lienthong_edxml::legacy::EDOCVN_NS;
use lienthong_edxml::{Format, NewEdoc, OrganId, Organization, StatusCode, write, write_status};
use lienthong_store::DeliveryState;
use lienthong_tests::*;
use lienthong_translate::Message;
use lienthong_translate::edocvn::{self, Part};
use lienthong_xmldsig::{Outcome, Policy, TrustStore, check_package};

/// A SOAP client of the legacy interface, as the commune's old system is.
struct Soap {
    http: reqwest::Client,
    url: String,
    token: String,
}

/// What the bus answered: HTTP status, Content-Type, body.
struct Answer {
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

impl Answer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The texts of every element with this local name.
    fn all(&self, name: &str) -> Vec<String> {
        let root = lienthong_edxml::dom::read(&self.body).expect("XML answer");
        let mut out = Vec::new();
        collect(&root, name, &mut out);
        out
    }
}

fn collect(e: &lienthong_edxml::dom::Element, name: &str, out: &mut Vec<String>) {
    if e.name == name {
        out.push(e.text());
    }
    for c in e.elements() {
        collect(c, name, out);
    }
}

impl Soap {
    fn new(bus: &InProcessBus, system: &str) -> Self {
        Self {
            http: reqwest::Client::new(),
            url: format!("{}/soap/v1", bus.url),
            token: format!("{system}:secret-{system}"),
        }
    }

    async fn post(&self, content_type: &str, body: Vec<u8>) -> Answer {
        let resp = self
            .http
            .post(&self.url)
            .header("Token", &self.token)
            .header("Content-Type", content_type)
            .body(body)
            .send()
            .await
            .expect("request");
        Answer {
            status: resp.status().as_u16(),
            content_type: resp
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned(),
            body: resp.bytes().await.expect("body").to_vec(),
        }
    }

    /// An operation: `<Name><Arg>value</Arg>...</Name>` in the SOAP body.
    async fn call(&self, operation: &str, args: &[(&str, &str)]) -> Answer {
        let inner: String = args
            .iter()
            .map(|(k, v)| format!("<{k}>{v}</{k}>"))
            .collect();
        let envelope = format!(
            "<?xml version=\"1.0\"?><s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body><{operation} xmlns=\"{EDOCVN_NS}\">{inner}</{operation}></s:Body></s:Envelope>"
        );
        self.post("text/xml; charset=utf-8", envelope.into_bytes())
            .await
    }

    /// SendDocument with a whole MIME entity.
    async fn send(&self, entity: &[u8]) -> Answer {
        let (content_type, body) = edocvn::split_entity(entity);
        self.post(&content_type, body.to_vec()).await
    }
}

/// An e-doc.vn package whose SOAP envelope is signed with the test PKI's signer.
fn signed_edocvn(doc: &NewEdoc) -> Vec<u8> {
    let entity =
        lienthong_translate::to_edocvn(&Message::Edoc(Box::new(doc.clone())), &legacy_codes())
            .expect("codes");
    let (envelope, attachments) = edocvn::unpack(&entity).expect("entity");
    let mut parts = vec![Part {
        content_id: edocvn::ENVELOPE_ID.into(),
        content_type: "text/xml; charset=utf-8".into(),
        data: signed(&envelope, "signer"),
    }];
    parts.extend(attachments);
    edocvn::pack(&parts)
}

#[tokio::test]
async fn a_legacy_soap_system_exchanges_with_qcvn_and_json_systems() {
    let env = Env::new(Backend::Sqlite).await;
    env.receives(&[(COMMUNE, Format::Edocvn), (PROVINCE, Format::Json)])
        .await;
    let bus = InProcessBus::start(&env).await;
    let trust = TrustStore::load(&env.verifier.trust_dir, &[]).expect("trust");
    let now = lienthong_store::now_ms() / 1000;
    let commune = Soap::new(&bus, "commune");

    // The commune's old system sends a signed package with its 9-character codes.
    let doc = edoc(COMMUNE, &[MINISTRY, PROVINCE], unique_number());
    let entity = signed_edocvn(&doc);
    assert!(String::from_utf8_lossy(&entity).contains("<OrganId>12.05.H49</OrganId>"));
    let sent = commune.send(&entity).await;
    assert_eq!(sent.status, 200, "{}", sent.text());
    let doc_id = sent.all("DocId").remove(0);
    assert_eq!(sent.all("Duplicate"), ["false"]);
    env.all_delivered(&doc_id).await;
    // The same package again: the same DocId, nothing delivered twice.
    let again = commune.send(&entity).await;
    assert_eq!(again.all("DocId"), std::slice::from_ref(&doc_id));
    assert_eq!(again.all("Duplicate"), ["true"]);

    // The QCVN 102 system: edXML with the bus's hop; the original as sent, still verifying.
    let ministry = bus.client("ministry");
    let fetched = ministry.fetch(&doc_id).await.expect("fetch");
    assert_eq!(
        fetched.bytes, entity,
        "the original MIME entity, byte for byte"
    );
    assert_eq!(fetched.summary["format"], "edocvn");
    assert_eq!(fetched.summary["signature"]["outcome"], "valid");
    let (envelope, _) = edocvn::unpack(&fetched.bytes).expect("entity");
    assert_eq!(
        check_package(&envelope, &trust, &Policy::default(), now).outcome,
        Outcome::Valid
    );
    let rendition = &fetched.summary["rendition"];
    assert_eq!(rendition["format"], "edxml");
    let Message::Edoc(as_edxml) =
        lienthong_translate::from_edxml(&b64(&rendition["content"])).expect("edXML")
    else {
        panic!("not an edoc")
    };
    assert_eq!(
        as_edxml.header.from.organ_id.as_str(),
        COMMUNE,
        "13-character codes"
    );
    assert_eq!(as_edxml.header.document_id, doc.header.document_id);
    assert_eq!(as_edxml.attachments[0].data, doc.attachments[0].data);
    assert_eq!(
        as_edxml.trace.last().map(|t| t.organ_id.as_str()),
        Some(DEPARTMENT)
    );

    // The JSON system: JSON, with the same original.
    let province = bus.client("province");
    let got = province.fetch_json(&doc_id).await.expect("json");
    assert_eq!(got["format"], "json");
    assert_eq!(got["package"]["header"]["from"]["organId"], COMMUNE);
    assert_eq!(b64(&got["original"]["content"]), entity);

    // Statuses: 03 from the QCVN system in edXML, 01 from the JSON system in JSON.
    let status = |organ: &str, code: StatusCode| {
        let me = Organization::new(OrganId::parse(organ).expect("organ"), "Cơ quan nhận");
        write::status_reply(&doc.header, &me, code, Some(format!("{code}")))
    };
    ministry
        .send(
            write_status(&status(MINISTRY, StatusCode::Accepted)),
            "status",
        )
        .await
        .expect("edXML status");
    province
        .send_json(lienthong_translate::to_json(&Message::Status(Box::new(
            status(PROVINCE, StatusCode::Arrived),
        ))))
        .await
        .expect("JSON status");

    // The legacy system sees them pending and reads them as e-doc.vn status packages.
    let pending = eventually("two statuses pending", Duration::from_secs(20), || async {
        let ids = commune
            .call("GetPendingDocumentIds", &[])
            .await
            .all("DocId");
        let statuses: Vec<String> = ids.into_iter().filter(|id| *id != doc_id).collect();
        (statuses.len() == 2).then_some(statuses)
    })
    .await;
    let mut codes_seen = Vec::new();
    for id in &pending {
        let answer = commune.call("GetDocument", &[("DocId", id)]).await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        assert!(
            answer.content_type.starts_with("multipart/related"),
            "{}",
            answer.content_type
        );
        let entity = edocvn::join_entity(&answer.content_type, &answer.body);
        let (envelope, parts) = edocvn::unpack(&entity).expect("multipart answer");
        let text = String::from_utf8_lossy(&envelope).into_owned();
        assert!(text.contains(EDOCVN_NS), "{text}");
        assert!(
            text.contains("<OrganId>12.05.H49</OrganId>"),
            "9-character codes: {text}"
        );
        let Message::Status(st) =
            lienthong_translate::from_edocvn(&entity, &legacy_codes()).expect("e-doc.vn status")
        else {
            panic!("not a status")
        };
        codes_seen.push(st.status_code);
        // The original and the verdict travel beside it.
        assert!(parts.iter().any(|p| p.content_id == "original"));
        let verification = parts
            .iter()
            .find(|p| p.content_id == "verification")
            .expect("verification part");
        assert!(
            String::from_utf8_lossy(&verification.data).contains("<Outcome>unsigned</Outcome>")
        );
        let updated = commune
            .call("UpdateTraces", &[("DocId", id), ("Status", "processing")])
            .await;
        assert_eq!(updated.all("Status"), ["processing"], "{}", updated.text());
        let confirmed = commune.call("ConfirmReceived", &[("DocId", id)]).await;
        assert_eq!(confirmed.all("Status"), ["done"], "{}", confirmed.text());
    }
    codes_seen.sort_by_key(|c| c.code().to_owned());
    assert_eq!(codes_seen, [StatusCode::Arrived, StatusCode::Accepted]);
    assert!(
        commune
            .call("GetPendingDocumentIds", &[])
            .await
            .all("DocId")
            .iter()
            .all(|id| *id == doc_id),
        "confirmed statuses are no longer pending"
    );

    // The legacy system reads its own document as e-doc.vn too, traces included.
    let traces = commune.call("GetTraces", &[("DocId", &doc_id)]).await;
    let events = traces.all("Event");
    for kind in [
        "accepted",
        "verified",
        "translated",
        "routed",
        "delivered",
        "status",
    ] {
        assert!(events.iter().any(|e| e == kind), "{kind} in {events:?}");
    }
    assert!(traces.all("OrganId").contains(&"00.00.G22".to_owned()));
    // done is final: a later fail is refused (25).
    let refused = commune
        .call(
            "UpdateTraces",
            &[("DocId", &pending[0]), ("Status", "fail")],
        )
        .await;
    assert_eq!(refused.status, 500);
    assert_eq!(refused.all("ErrorCode"), ["25"], "{}", refused.text());
    let organizations = commune.call("GetOrganizations", &[]).await;
    assert!(
        organizations
            .all("OrganId")
            .contains(&"12.05.H49".to_owned())
    );
    assert!(
        organizations
            .all("OrganIdNew")
            .contains(&COMMUNE.to_owned())
    );

    bus.stop().await;
    assert_eq!(env.dead_letters().await, 0);
    env.teardown().await;
}

#[tokio::test]
async fn malformed_soap_messages_get_faults_with_legacy_codes() {
    let env = Env::new(Backend::Sqlite).await;
    let bus = InProcessBus::start_roles(&env, &env.bus, &["gateway"]).await;
    let commune = Soap::new(&bus, "commune");
    let doc = edoc(COMMUNE, &[MINISTRY], unique_number());
    let entity =
        lienthong_translate::to_edocvn(&Message::Edoc(Box::new(doc.clone())), &legacy_codes())
            .expect("codes");
    let text = String::from_utf8(entity).expect("utf-8");
    let fault_codes = |a: &Answer| -> Vec<String> {
        assert_eq!(a.status, 500, "{}", a.text());
        assert_eq!(a.all("faultcode"), ["SOAP-ENV:Client"], "{}", a.text());
        a.all("Code")
    };

    // No subject: N.; an unknown 9-character code: M.; an over-long subject: R.; a priority that
    // is not a number: T.
    let subject = format!("<Subject>{}</Subject>", doc.header.subject);
    let answer = commune.send(text.replace(&subject, "").as_bytes()).await;
    assert_eq!(fault_codes(&answer), ["N.Header/MessageHeader/Subject"]);
    assert_eq!(answer.all("ErrorCode"), ["22"]);
    let answer = commune
        .send(
            text.replace(
                "<OrganId>00.00.G22</OrganId>",
                "<OrganId>99.99.G99</OrganId>",
            )
            .as_bytes(),
        )
        .await;
    assert_eq!(
        fault_codes(&answer),
        ["M.Header/MessageHeader/To[1]/OrganId"]
    );
    let answer = commune
        .send(
            text.replace(&subject, &format!("<Subject>{}</Subject>", "x".repeat(501)))
                .as_bytes(),
        )
        .await;
    assert_eq!(fault_codes(&answer), ["R.Header/MessageHeader/Subject"]);
    let answer = commune
        .send(
            text.replace("<Priority>0</Priority>", "<Priority>high</Priority>")
                .as_bytes(),
        )
        .await;
    assert_eq!(
        fault_codes(&answer),
        ["T.Header/MessageHeader/OtherInfo/Priority"]
    );
    // A MIME part the manifest names but the message lacks.
    let answer = commune
        .send(
            text.replace("xlink:href=\"cid:1\"", "xlink:href=\"cid:7\"")
                .as_bytes(),
        )
        .await;
    assert_eq!(
        fault_codes(&answer),
        ["M.Body/Manifest/Reference[1]/@xlink:href"]
    );
    // A message over the size limit gets a fault too.
    let answer = commune.post("text/xml", vec![b' '; 3 * 1024 * 1024]).await;
    assert_eq!(fault_codes(&answer), Vec::<String>::new());
    assert_eq!(answer.all("ErrorCode"), ["10"]);
    // An operation without its argument, an unknown operation, no token.
    let answer = commune.call("GetDocument", &[]).await;
    assert_eq!(fault_codes(&answer), ["N.Body/GetDocument/DocId"]);
    let answer = commune.call("DeleteEverything", &[]).await;
    assert_eq!(fault_codes(&answer), ["M.Body/DeleteEverything"]);
    let anonymous = Soap {
        token: "commune:wrong".into(),
        ..Soap::new(&bus, "commune")
    };
    let answer = anonymous.call("GetPendingDocumentIds", &[]).await;
    assert_eq!(answer.status, 500);
    assert_eq!(answer.all("ErrorCode"), ["15"]);
    // Nothing was accepted on the way.
    assert!(
        bus.client("commune")
            .sent(None)
            .await
            .expect("sent")
            .is_empty()
    );

    bus.stop().await;
    env.teardown().await;
}

#[tokio::test]
async fn a_legacy_sender_whose_signature_fails_gets_its_refusal_as_an_edocvn_status() {
    let env = Env::new(Backend::Sqlite).await;
    env.receives(&[(COMMUNE, Format::Edocvn)]).await;
    let bus = InProcessBus::start(&env).await;
    let commune = Soap::new(&bus, "commune");
    let doc = edoc(COMMUNE, &[MINISTRY], unique_number());
    // Signed, then altered: the subject is no longer what was signed.
    let entity = String::from_utf8(signed_edocvn(&doc)).expect("utf-8");
    let altered = entity.replace(&doc.header.subject, "Một trích yếu khác");
    assert_ne!(altered, entity);
    let sent = commune.send(altered.as_bytes()).await;
    assert_eq!(sent.status, 200, "{}", sent.text());
    let doc_id = sent.all("DocId").remove(0);

    // The bus's status 02 reaches the legacy system as an e-doc.vn package, naming the reason.
    let refusal = eventually("the refusal", Duration::from_secs(20), || async {
        let ids = commune
            .call("GetPendingDocumentIds", &[])
            .await
            .all("DocId");
        ids.into_iter().find(|id| *id != doc_id)
    })
    .await;
    let answer = commune.call("GetDocument", &[("DocId", &refusal)]).await;
    let entity = edocvn::join_entity(&answer.content_type, &answer.body);
    let Message::Status(st) =
        lienthong_translate::from_edocvn(&entity, &legacy_codes()).expect("e-doc.vn status")
    else {
        panic!("not a status")
    };
    assert_eq!(st.status_code, StatusCode::Refused);
    assert!(
        st.description
            .as_deref()
            .is_some_and(|d| d.contains("digest")),
        "{:?}",
        st.description
    );
    assert_eq!(st.response_for.document_id, doc.header.document_id);
    assert_eq!(
        env.store.legs(&doc_id).await.expect("legs")[0].delivery,
        DeliveryState::Failed
    );
    bus.stop().await;
    env.teardown().await;
}

#[tokio::test]
async fn a_large_attachment_from_a_legacy_system_stays_in_its_package_end_to_end() {
    // The test bus leaves attachments over 256 bytes in the stored package: this MIME part is
    // spooled, checked, verified around and translated without being read whole.
    let env = Env::new(Backend::Sqlite).await;
    env.receives(&[(COMMUNE, Format::Edocvn), (PROVINCE, Format::Json)])
        .await;
    let bus = InProcessBus::start(&env).await;
    let mut doc = edoc(COMMUNE, &[MINISTRY, PROVINCE], unique_number());
    doc.attachments[0].data = large_attachment(13);
    let entity = signed_edocvn(&doc);
    let sent = Soap::new(&bus, "commune").send(&entity).await;
    assert_eq!(sent.status, 200, "{}", sent.text());
    let doc_id = sent.all("DocId").remove(0);
    env.all_delivered(&doc_id).await;
    assert_eq!(
        env.store
            .verdict(&doc_id)
            .await
            .expect("verdict")
            .map(|v| v.outcome),
        Some("valid".to_owned())
    );
    let ministry = bus.client("ministry");
    let out = env.dir.path().join("rendition.edxml");
    let (format, _, _) = ministry
        .fetch_file(&doc_id, true, &out)
        .await
        .expect("rendition");
    assert_eq!(format, "edxml");
    let Message::Edoc(as_edxml) =
        lienthong_translate::from_edxml(&std::fs::read(&out).expect("read")).expect("edXML")
    else {
        panic!("not an edoc")
    };
    assert_eq!(as_edxml.attachments[0].data, doc.attachments[0].data);
    ministry
        .fetch_file(&doc_id, false, &out)
        .await
        .expect("original");
    assert_eq!(
        std::fs::read(&out).expect("read"),
        entity,
        "the original as sent"
    );
    let got = bus
        .client("province")
        .fetch_json(&doc_id)
        .await
        .expect("json");
    assert_eq!(
        b64(&got["package"]["attachments"][0]["data"]),
        doc.attachments[0].data
    );
    bus.stop().await;
    assert_eq!(env.dead_letters().await, 0);
    env.teardown().await;
}

//! Signature verification in the bus: a valid signature travels with its verdict, a bad one is
//! never delivered and its sender learns why, and the policy decides about unsigned packages.

use std::time::Duration;

use lienthong_edxml::write_edoc;
use lienthong_store::DeliveryState;
use lienthong_tests::*;
use lienthong_verifier::SignaturePolicy;

async fn settled(env: &Env, doc_id: &str) -> Vec<lienthong_store::Leg> {
    eventually(
        "every leg delivered or failed",
        Duration::from_secs(20),
        || async {
            let legs = env.store.legs(doc_id).await.expect("legs");
            legs.iter()
                .all(|l| matches!(l.delivery, DeliveryState::Delivered | DeliveryState::Failed))
                .then_some(legs)
        },
    )
    .await
}

#[tokio::test]
async fn a_signed_package_is_delivered_byte_for_byte_with_its_verdict() {
    let env = Env::new(Backend::Sqlite).await;
    let bus = InProcessBus::start(&env).await;
    let package = signed(
        &write_edoc(&edoc(PROVINCE, &[MINISTRY], unique_number())),
        "signer",
    );
    let doc_id = bus
        .client("province")
        .send(package.clone(), "edoc")
        .await
        .expect("accepted");
    let legs = settled(&env, &doc_id).await;
    assert_eq!(legs[0].delivery, DeliveryState::Delivered);
    let fetched = bus.client("ministry").fetch(&doc_id).await.expect("fetch");
    assert_eq!(
        fetched.bytes, package,
        "the signature inside still verifies for the recipient"
    );
    let sig = &fetched.summary["signature"];
    assert_eq!(sig["outcome"], "valid", "{sig}");
    assert!(
        sig["signer"]
            .as_str()
            .is_some_and(|s| s.contains("Van thu UBND tinh")),
        "{sig}"
    );
    assert!(
        sig["issuer"]
            .as_str()
            .is_some_and(|s| s.contains("Test Root CA")),
        "{sig}"
    );
    assert_eq!(sig["signatureMethod"], "rsa-sha256");
    assert!(sig["serial"].as_str().is_some_and(|s| !s.is_empty()));
    // The trace records the verdict.
    eventually("verified event", Duration::from_secs(20), || async {
        let t = bus.client("province").trace(&doc_id).await.expect("trace");
        t.iter()
            .any(|e| {
                e["event"] == "verified"
                    && e["detail"]
                        .as_str()
                        .is_some_and(|d| d.starts_with("signature valid"))
            })
            .then_some(())
    })
    .await;
    bus.stop().await;
    env.teardown().await;
}

#[tokio::test]
async fn a_tampered_package_is_never_delivered_and_its_sender_gets_a_status_02_with_the_reason() {
    let env = Env::new(Backend::Sqlite).await;
    let bus = InProcessBus::start(&env).await;
    let package = signed(
        &write_edoc(&edoc(PROVINCE, &[MINISTRY, COMMUNE], unique_number())),
        "signer",
    );
    // Altered after signing, on the way: the subject no longer says what was signed.
    let tampered = String::from_utf8(package)
        .expect("utf8")
        .replacen("triển khai", "hủy bỏ", 1);
    let province = bus.client("province");
    let doc_id = province
        .send(tampered.into_bytes(), "edoc")
        .await
        .expect("accepted for verification");
    let legs = settled(&env, &doc_id).await;
    for leg in &legs {
        assert_eq!(leg.delivery, DeliveryState::Failed, "{leg:?}");
        let reason = leg.reason.as_deref().unwrap_or_default();
        assert!(
            reason.contains("signature invalid") && reason.contains("altered"),
            "{reason}"
        );
    }
    let rows = province.sent(Some(&doc_id)).await.expect("sent");
    assert!(
        rows.iter()
            .all(|r| r["delivery"] == "failed" && r["status"] == "fail")
    );
    assert!(
        bus.client("ministry")
            .inbox("edoc", &[("status", "all")])
            .await
            .expect("inbox")
            .is_empty()
    );
    // The bus tells the sender, in the name of the agency operating it.
    let refusal = eventually(
        "status 02 from the bus",
        Duration::from_secs(20),
        || async {
            let rows = province.inbox("status", &[]).await.expect("inbox");
            rows.into_iter().find(|r| r["statusCode"] == "02")
        },
    )
    .await;
    assert_eq!(refusal["from"], DEPARTMENT);
    let package = province
        .fetch(refusal["docId"].as_str().expect("docId"))
        .await
        .expect("fetch 02");
    let lienthong_edxml::Package::Status(st) =
        lienthong_edxml::parse(&package.bytes).expect("a valid status package")
    else {
        panic!("a status package")
    };
    assert_eq!(st.status_code, lienthong_edxml::StatusCode::Refused);
    assert!(
        st.description
            .as_deref()
            .is_some_and(|d| d.contains("altered")),
        "{:?}",
        st.description
    );
    // Security officers find the verdict.
    let v = env
        .store
        .verdict(&doc_id)
        .await
        .expect("verdict")
        .expect("recorded");
    assert_eq!(
        (v.outcome.as_str(), v.reason_code.as_deref()),
        ("invalid", Some("digest-mismatch"))
    );
    bus.stop().await;
    env.teardown().await;
}

#[tokio::test]
async fn the_policy_decides_about_unsigned_packages_per_sender() {
    let mut env = Env::new(Backend::Sqlite).await;
    env.verifier
        .senders
        .insert(DEPARTMENT.into(), SignaturePolicy::Required);
    let bus = InProcessBus::start(&env).await;
    let province = bus.client("province");
    // The province may send unsigned: recorded as unsigned and delivered.
    let open = province
        .send(
            write_edoc(&edoc(PROVINCE, &[MINISTRY], unique_number())),
            "edoc",
        )
        .await
        .expect("send");
    // Its department must sign.
    let strict = province
        .send(
            write_edoc(&edoc(DEPARTMENT, &[MINISTRY], unique_number())),
            "edoc",
        )
        .await
        .expect("send");
    assert_eq!(
        settled(&env, &open).await[0].delivery,
        DeliveryState::Delivered
    );
    let legs = settled(&env, &strict).await;
    assert_eq!(legs[0].delivery, DeliveryState::Failed);
    assert_eq!(
        legs[0].reason.as_deref(),
        Some("signature required but the package is unsigned")
    );
    assert_eq!(
        env.store
            .verdict(&open)
            .await
            .expect("v")
            .map(|v| v.outcome),
        Some("unsigned".into())
    );
    // Signed, the department's package goes through.
    let good = province
        .send(
            signed(
                &write_edoc(&edoc(DEPARTMENT, &[MINISTRY], unique_number())),
                "ec-signer",
            ),
            "edoc",
        )
        .await
        .expect("send");
    assert_eq!(
        settled(&env, &good).await[0].delivery,
        DeliveryState::Delivered
    );
    bus.stop().await;
    env.teardown().await;
}

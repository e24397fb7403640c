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

//! Every error code of the REST interface, each with the field and rule it names, and proof that a
//! refused package leaves nothing behind.

use lienthong_client::{Client, ClientError};
use lienthong_edxml::{OrganId, Organization, StatusCode, write, write_edoc, write_status};
use lienthong_tests::*;

fn expect_error<T: std::fmt::Debug>(
    result: Result<T, ClientError>,
    code: i64,
    needle: &str,
) -> (String, u16) {
    match result {
        Err(ClientError::Api {
            code: c,
            desc,
            http,
        }) => {
            assert_eq!(c, code, "error code for `{desc}`");
            assert!(desc.contains(needle), "`{desc}` should mention `{needle}`");
            (desc, http)
        }
        other => panic!("expected error {code}, got {other:?}"),
    }
}

#[tokio::test]
async fn every_error_code_names_what_is_wrong() {
    let env = Env::new(Backend::Sqlite).await;
    let bus = InProcessBus::start(&env).await;
    let province = bus.client("province");
    let n = unique_number();

    // 10: not XML, no file, unknown messageType.
    let (_, http) = expect_error(
        province
            .send(b"%PDF-1.7 not a package".to_vec(), "edoc")
            .await,
        10,
        "not a readable XML package",
    );
    assert_eq!(http, 400);
    expect_error(province.send(Vec::new(), "edoc").await, 10, "edocFile");
    expect_error(
        province
            .send(write_edoc(&edoc(PROVINCE, &[MINISTRY], n)), "letter")
            .await,
        10,
        "messageType",
    );

    // 15: wrong secret, unknown system, missing headers, locked system.
    let (_, http) = expect_error(
        Client::new(&bus.url, "province", "wrong").agencies().await,
        15,
        "X-SecretKey",
    );
    assert_eq!(http, 401);
    expect_error(
        Client::new(&bus.url, "nobody", "x").agencies().await,
        15,
        "X-SecretKey",
    );
    expect_error(
        Client::new(&bus.url, "", "").agencies().await,
        15,
        "required",
    );
    env.store
        .set_system_locked("commune", true)
        .await
        .expect("lock");
    expect_error(bus.client("commune").agencies().await, 15, "locked");
    env.store
        .set_system_locked("commune", false)
        .await
        .expect("unlock");

    // 18: a recipient the registry does not know, or has retired.
    let (_, http) = expect_error(
        province
            .send(write_edoc(&edoc(PROVINCE, &[MINISTRY, UNKNOWN], n)), "edoc")
            .await,
        18,
        "To[2]/OrganId",
    );
    assert_eq!(http, 422);
    expect_error(
        province
            .send(write_edoc(&edoc(PROVINCE, &[RETIRED], n)), "edoc")
            .await,
        18,
        "retired",
    );

    // 19: sending as an agency the system does not act for.
    let (_, http) = expect_error(
        bus.client("commune")
            .send(write_edoc(&edoc(PROVINCE, &[MINISTRY], n)), "edoc")
            .await,
        19,
        "not registered to send as 000.00.00.H49",
    );
    assert_eq!(http, 403);

    // 22: not conformant, with the element path and rule.
    let mut long = edoc(PROVINCE, &[MINISTRY], n);
    long.header.subject = "x".repeat(501);
    expect_error(
        province.send(write_edoc(&long), "edoc").await,
        22,
        "MessageHeader/Subject: is 501 characters long",
    );
    let mut dup = edoc(PROVINCE, &[MINISTRY], n);
    dup.header.to.push(dup.header.to[0].clone());
    expect_error(
        province.send(write_edoc(&dup), "edoc").await,
        22,
        "To[2]/OrganId: recipient 000.00.00.G22 is named more than once",
    );
    expect_error(
        province
            .send(write_edoc(&edoc(PROVINCE, &[MINISTRY], n)), "status")
            .await,
        22,
        "messageType is `status`",
    );

    // 23: a locked recipient.
    let (_, http) = expect_error(
        province
            .send(write_edoc(&edoc(PROVINCE, &[MINISTRY, LOCKED], n)), "edoc")
            .await,
        23,
        "locked",
    );
    assert_eq!(http, 422);

    // None of the refused packages was stored.
    let sent = province.sent(None).await.expect("sent list");
    assert!(
        sent.is_empty(),
        "refused packages must leave nothing: {sent:?}"
    );

    // 26: a DocumentId already accepted, sent again for other recipients. The same package again
    // is a resubmission and gets its docId back.
    let m = unique_number();
    let first = province
        .send(write_edoc(&edoc(PROVINCE, &[MINISTRY], m)), "edoc")
        .await
        .expect("accepted");
    let again = province
        .send(write_edoc(&edoc(PROVINCE, &[MINISTRY], m)), "edoc")
        .await
        .expect("a resubmission");
    assert_eq!(again, first);
    let (desc, http) = expect_error(
        province
            .send(write_edoc(&edoc(PROVINCE, &[MINISTRY, COMMUNE], m)), "edoc")
            .await,
        26,
        "MessageHeader/DocumentId",
    );
    assert_eq!(http, 409);
    assert!(desc.contains(&first) && desc.contains(COMMUNE), "{desc}");

    // 24: a status about a document the bus never carried; reading a document that is not yours.
    let ghost = edoc(PROVINCE, &[MINISTRY], n);
    let me = Organization::new(OrganId::parse(MINISTRY).expect("organ"), "VPCP");
    let st = write::status_reply(&ghost.header, &me, StatusCode::Arrived, None);
    let (_, http) = expect_error(
        bus.client("ministry")
            .send(write_status(&st), "status")
            .await,
        24,
        "carried no document",
    );
    assert_eq!(http, 404);
    let doc_id = province
        .send(write_edoc(&edoc(PROVINCE, &[MINISTRY], n)), "edoc")
        .await
        .expect("valid");
    let commune = bus.client("commune");
    expect_error(commune.fetch(&doc_id).await, 24, "no such document");
    expect_error(commune.trace(&doc_id).await, 24, "no such document");
    expect_error(
        commune.update_status(&doc_id, "done").await,
        24,
        "no such document",
    );
    expect_error(commune.sent(Some(&doc_id)).await, 24, "no such document");
    expect_error(commune.fetch("no-such-id").await, 24, "no such document");

    bus.stop().await;
    env.teardown().await;
}

#[tokio::test]
async fn oversized_packages_are_refused_with_413() {
    let env = Env::new(Backend::Sqlite).await;
    let bus = InProcessBus::start(&env).await;
    // The test gateway accepts 2 MiB.
    let big = lienthong_edxml::write_edoc(&lienthong_edxml::sample::edoc(
        &OrganId::parse(PROVINCE).expect("organ"),
        &[OrganId::parse(MINISTRY).expect("organ")],
        unique_number(),
        3 * 1024 * 1024,
    ));
    let (_, http) = expect_error(
        bus.client("province").send(big, "edoc").await,
        10,
        "larger than",
    );
    assert_eq!(http, 413);
    bus.stop().await;
    env.teardown().await;
}

#[tokio::test]
async fn a_system_sees_only_its_own_agencies_inbox() {
    let env = Env::new(Backend::Sqlite).await;
    let bus = InProcessBus::start(&env).await;
    let doc_id = bus.send_edoc("province", PROVINCE, &[MINISTRY]).await;
    let ministry = bus.client("ministry");
    eventually("delivery", std::time::Duration::from_secs(20), || async {
        (!ministry.inbox("edoc", &[]).await.expect("inbox").is_empty()).then_some(())
    })
    .await;
    assert!(
        bus.client("commune")
            .inbox("edoc", &[("status", "all")])
            .await
            .expect("inbox")
            .is_empty()
    );
    // The sender may read what it sent, but it is not in its inbox.
    assert!(bus.client("province").fetch(&doc_id).await.is_ok());
    assert!(
        bus.client("province")
            .inbox("edoc", &[])
            .await
            .expect("inbox")
            .is_empty()
    );
    bus.stop().await;
    env.teardown().await;
}

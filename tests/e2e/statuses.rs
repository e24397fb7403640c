//! Business and transport status rules as agency systems meet them.

use std::time::Duration;

use lienthong_client::ClientError;
use lienthong_edxml::{NewEdoc, StatusCode, write_edoc};
use lienthong_tests::*;

async fn delivered(env: &Env, bus: &InProcessBus, to: &[&str]) -> (NewEdoc, String) {
    let doc = edoc(PROVINCE, to, unique_number());
    let doc_id = bus
        .client("province")
        .send(write_edoc(&doc), "edoc")
        .await
        .expect("send");
    eventually("delivery", Duration::from_secs(20), || async {
        let legs = env.store.legs(&doc_id).await.expect("legs");
        legs.iter()
            .all(|l| l.delivery == lienthong_store::DeliveryState::Delivered)
            .then_some(())
    })
    .await;
    (doc, doc_id)
}

fn code_of(err: Result<String, ClientError>) -> Option<i64> {
    err.err().and_then(|e| e.code())
}

#[tokio::test]
async fn business_status_rules_are_enforced_per_copy() {
    let env = Env::new(Backend::Sqlite).await;
    let bus = InProcessBus::start(&env).await;
    let (doc, doc_id) = delivered(&env, &bus, &[MINISTRY, COMMUNE]).await;
    let ministry = bus.client("ministry");
    let commune = bus.client("commune");

    // 03 before 01 is accepted (a hub may see them in that order), then forward skips to 06.
    send_status(&ministry, &doc, MINISTRY, StatusCode::Accepted)
        .await
        .expect("03 first");
    send_status(&ministry, &doc, MINISTRY, StatusCode::Completed)
        .await
        .expect("03 -> 06");
    // 04 after 06 is refused with error 25, naming the rule.
    match send_status(&ministry, &doc, MINISTRY, StatusCode::Assigned).await {
        Err(ClientError::Api {
            code: 25,
            desc,
            http: 409,
        }) => assert!(desc.contains("may only follow 03"), "{desc}"),
        other => panic!("expected 25, got {other:?}"),
    }
    // The commune's copy has its own track: 04 straight away is refused.
    assert_eq!(
        code_of(send_status(&commune, &doc, COMMUNE, StatusCode::Assigned).await),
        Some(25)
    );
    send_status(&commune, &doc, COMMUNE, StatusCode::Arrived)
        .await
        .expect("01");
    send_status(&commune, &doc, COMMUNE, StatusCode::Refused)
        .await
        .expect("01 -> 02");
    // A status about another agency's copy is refused (the caller does not act for it).
    assert_eq!(
        code_of(send_status(&commune, &doc, MINISTRY, StatusCode::Arrived).await),
        Some(19)
    );
    // Only the sender may request a recall.
    assert_eq!(
        code_of(send_status(&ministry, &doc, MINISTRY, StatusCode::RecallRequested).await),
        Some(25)
    );

    let rows = bus
        .client("province")
        .sent(Some(&doc_id))
        .await
        .expect("sent");
    let business = |organ: &str| {
        rows.iter()
            .find(|r| r["to"] == organ)
            .map(|r| r["businessStatus"].clone())
    };
    assert_eq!(business(MINISTRY), Some("06".into()));
    assert_eq!(business(COMMUNE), Some("02".into()));
    bus.stop().await;
    env.teardown().await;
}

/// What a system does when an answer is lost (the store may have committed before it failed):
/// it sends the same bytes again, and that is the same status; a status rebuilt with a new time
/// is a second one, which the rules refuse.
#[tokio::test]
async fn a_status_sent_again_byte_for_byte_is_the_same_status() {
    let env = Env::new(Backend::Sqlite).await;
    let bus = InProcessBus::start(&env).await;
    let (doc, _) = delivered(&env, &bus, &[MINISTRY]).await;
    let ministry = bus.client("ministry");
    let province = bus.client("province");

    let status = status_package(&doc, MINISTRY, StatusCode::Accepted);
    let first = ministry.send(status.clone(), "status").await.expect("03");
    let again = ministry
        .send(status.clone(), "status")
        .await
        .expect("the same 03 again");
    assert_eq!(first, again, "the same package is the same status");

    // Rebuilt a second later: another Timestamp, another status, and 03 may not follow 03.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    match send_status(&ministry, &doc, MINISTRY, StatusCode::Accepted).await {
        Err(ClientError::Api {
            code: 25,
            desc,
            http: 409,
        }) => assert!(
            desc.contains("cannot follow 03") && desc.contains("the same package, byte for byte"),
            "{desc}"
        ),
        other => panic!("expected 25 for a rebuilt 03, got {other:?}"),
    }

    // The sender hears of it once.
    let notes = eventually(
        "the status at the sender",
        Duration::from_secs(20),
        || async {
            let rows = province.inbox("status", &[]).await.ok()?;
            (!rows.is_empty()).then_some(rows)
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let notes_after = province.inbox("status", &[]).await.expect("inbox");
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(notes_after.len(), 1, "{notes_after:?}");
    assert_eq!(notes_after[0]["docId"], first.as_str());
    bus.stop().await;
    env.teardown().await;
}

#[tokio::test]
async fn recall_travels_to_recipients_and_answers_come_back() {
    let env = Env::new(Backend::Sqlite).await;
    let bus = InProcessBus::start(&env).await;
    let (doc, doc_id) = delivered(&env, &bus, &[MINISTRY, COMMUNE]).await;
    let province = bus.client("province");
    send_status(&province, &doc, PROVINCE, StatusCode::RecallRequested)
        .await
        .expect("13");
    // Each recipient finds the recall request in its status inbox.
    for client in [bus.client("ministry"), bus.client("commune")] {
        eventually(
            "recall request delivered",
            Duration::from_secs(20),
            || async {
                let rows = client.inbox("status", &[]).await.expect("inbox");
                rows.iter().any(|r| r["statusCode"] == "13").then_some(())
            },
        )
        .await;
    }
    send_status(
        &bus.client("ministry"),
        &doc,
        MINISTRY,
        StatusCode::RecallAgreed,
    )
    .await
    .expect("15");
    send_status(
        &bus.client("commune"),
        &doc,
        COMMUNE,
        StatusCode::RecallRefused,
    )
    .await
    .expect("16");
    // A recalled copy takes no further business status; the refused one does.
    assert_eq!(
        code_of(
            send_status(
                &bus.client("ministry"),
                &doc,
                MINISTRY,
                StatusCode::Accepted
            )
            .await
        ),
        Some(25)
    );
    send_status(&bus.client("commune"), &doc, COMMUNE, StatusCode::Accepted)
        .await
        .expect("03 after 16");
    let rows = province.sent(Some(&doc_id)).await.expect("sent");
    let recall = |organ: &str| {
        rows.iter()
            .find(|r| r["to"] == organ)
            .map(|r| r["recallStatus"].clone())
    };
    assert_eq!(recall(MINISTRY), Some("15".into()));
    assert_eq!(recall(COMMUNE), Some("16".into()));
    eventually(
        "answers in the sender's inbox",
        Duration::from_secs(20),
        || async {
            let rows = province.inbox("status", &[]).await.expect("inbox");
            let codes: Vec<_> = rows
                .iter()
                .filter_map(|r| r["statusCode"].as_str())
                .collect();
            (codes.contains(&"15") && codes.contains(&"16")).then_some(())
        },
    )
    .await;
    bus.stop().await;
    env.teardown().await;
}

#[tokio::test]
async fn transport_status_moves_forward_and_done_is_final() {
    let env = Env::new(Backend::Sqlite).await;
    let bus = InProcessBus::start(&env).await;
    let (_, doc_id) = delivered(&env, &bus, &[MINISTRY]).await;
    let ministry = bus.client("ministry");
    ministry
        .update_status(&doc_id, "processing")
        .await
        .expect("processing");
    ministry.update_status(&doc_id, "fail").await.expect("fail");
    ministry
        .update_status(&doc_id, "processing")
        .await
        .expect("a failed copy may be fetched again");
    ministry.update_status(&doc_id, "done").await.expect("done");
    match ministry.update_status(&doc_id, "processing").await {
        Err(ClientError::Api { code: 25, desc, .. }) => {
            assert!(desc.contains("`done` is final"), "{desc}")
        }
        other => panic!("expected 25, got {other:?}"),
    }
    match ministry.update_status(&doc_id, "finished").await {
        Err(ClientError::Api { code: 10, desc, .. }) => {
            assert!(desc.starts_with("status:"), "{desc}")
        }
        other => panic!("expected 10, got {other:?}"),
    }
    let rows = ministry
        .inbox("edoc", &[("status", "done")])
        .await
        .expect("inbox");
    assert_eq!(rows.len(), 1);
    bus.stop().await;
    env.teardown().await;
}

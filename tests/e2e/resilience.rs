//! Poison messages, registry changes in flight, and a broker that is away at acceptance time.

use std::time::Duration;

use lienthong_bus::{Outgoing, Publisher, Route};
use lienthong_client::ClientError;
use lienthong_edxml::write_edoc;
use lienthong_store::{AgencyState, DeliveryState};
use lienthong_tests::*;

#[tokio::test]
async fn poison_messages_are_dead_lettered_without_stalling_the_stage() {
    let env = Env::new(Backend::Sqlite).await;
    let bus = InProcessBus::start(&env).await;
    let publisher = Publisher::new(&env.bus, "test-poison");
    let t = env.topology();
    for (id, key, payload) in [
        ("poison-json", "router", "not json"),
        ("poison-delivery", "delivery", "{\"doc_id\":1}"),
        (
            "poison-ghost",
            "router",
            "{\"doc_id\":\"ghost\",\"slip\":[\"router\"]}",
        ),
    ] {
        publisher
            .publish(Outgoing {
                route: Route {
                    exchange: t.pipeline(),
                    routing_key: key.into(),
                    mandatory: true,
                },
                payload: payload.as_bytes().to_vec(),
                message_id: id.into(),
                doc_id: None,
            })
            .await
            .expect("published");
    }
    let doc_id = bus.send_edoc("province", PROVINCE, &[MINISTRY]).await;
    eventually(
        "the good document delivered",
        Duration::from_secs(20),
        || async {
            let legs = env.store.legs(&doc_id).await.expect("legs");
            (legs[0].delivery == DeliveryState::Delivered).then_some(())
        },
    )
    .await;
    eventually("three dead letters", Duration::from_secs(20), || async {
        (env.dead_letters().await == 3).then_some(())
    })
    .await;

    // The operator looks: each says where it died and why, and looking removes nothing.
    let admin = |path: &str| format!("{}/admin/{path}", bus.url);
    let http = reqwest::Client::new();
    let list = || async {
        let v: serde_json::Value = http
            .get(admin("dead"))
            .bearer_auth(OPERATOR_TOKEN)
            .send()
            .await
            .expect("dead")
            .json()
            .await
            .expect("json");
        v["data"].as_array().cloned().unwrap_or_default()
    };
    let letters = list().await;
    let ghost = letters
        .iter()
        .find(|l| l["messageId"] == "poison-ghost")
        .cloned()
        .unwrap_or_else(|| panic!("{letters:?}"));
    assert_eq!(ghost["queue"], t.stage_queue("router"));
    assert_eq!(ghost["routingKey"], "router");
    assert_eq!(ghost["reason"], "rejected");
    assert_eq!(ghost["count"], 1);
    assert_eq!(env.dead_letters().await, 3);
    // A security officer's token is not an operator's.
    let refused = http
        .get(admin("dead"))
        .bearer_auth(OFFICER_TOKEN)
        .send()
        .await
        .expect("dead");
    assert_eq!(refused.status(), 401);

    // Replay: it goes back to the router, which finds it poison again (the document still
    // does not exist), and it is back, having died twice.
    let post = |path: &'static str, body: serde_json::Value| {
        let (http, url) = (http.clone(), admin(path));
        async move {
            http.post(url)
                .bearer_auth(OPERATOR_TOKEN)
                .json(&body)
                .send()
                .await
                .expect("post")
        }
    };
    let replayed: serde_json::Value =
        post("dead/replay", serde_json::json!({"ids": ["poison-ghost"]}))
            .await
            .json()
            .await
            .expect("json");
    assert_eq!(replayed["count"], 1, "{replayed}");
    let again = eventually("the ghost dead again", Duration::from_secs(20), || async {
        list()
            .await
            .into_iter()
            .find(|l| l["messageId"] == "poison-ghost" && l["count"] == 2)
    })
    .await;
    assert_eq!(again["queue"], t.stage_queue("router"));
    // Acting on nothing named is refused; then everything is discarded.
    let unnamed = post("dead/discard", serde_json::json!({})).await;
    assert_eq!(unnamed.status(), 400);
    let discarded: serde_json::Value = post("dead/discard", serde_json::json!({"all": true}))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(discarded["count"], 3, "{discarded}");
    assert_eq!(env.dead_letters().await, 0);
    // Each action is in the ledger.
    eventually(
        "the operations in the ledger",
        Duration::from_secs(20),
        || async {
            let records = env.store.trace("operations").await.expect("trace");
            (records.len() == 4).then_some(())
        },
    )
    .await;
    bus.stop().await;
    env.teardown().await;
}

#[tokio::test]
async fn a_recipient_locked_after_acceptance_gets_a_failed_leg_with_the_reason() {
    let env = Env::new(Backend::Sqlite).await;
    let (gateway, workers, doc_id) = copy_to_a_recipient_locked_after_acceptance(&env).await;
    let province = gateway.client("province");
    let rows = eventually("routing", Duration::from_secs(20), || async {
        let rows = province.sent(Some(&doc_id)).await.expect("sent");
        rows.iter()
            .all(|r| r["delivery"] != "accepted" && r["delivery"] != "routed")
            .then_some(rows)
    })
    .await;
    let row = |organ: &str| {
        rows.iter()
            .find(|r| r["to"] == organ)
            .cloned()
            .expect("row")
    };
    assert_eq!(row(MINISTRY)["delivery"], "delivered");
    assert_eq!(row(COMMUNE)["delivery"], "failed");
    assert_eq!(row(COMMUNE)["status"], "fail");
    assert_eq!(
        row(COMMUNE)["reason"],
        "recipient is locked in the registry"
    );
    eventually(
        "the failure in the trace",
        Duration::from_secs(20),
        || async {
            let trace = province.trace(&doc_id).await.expect("trace");
            trace
                .iter()
                .any(|e| e["event"] == "failed" && e["organId"] == COMMUNE)
                .then_some(())
        },
    )
    .await;

    // The operator unlocks the commune, finds the failed copy and sends it again.
    env.store
        .set_agency_state(COMMUNE, AgencyState::Active)
        .await
        .expect("unlock");
    let http = reqwest::Client::new();
    let failed: serde_json::Value = http
        .get(format!("{}/admin/failed", gateway.url))
        .bearer_auth(OPERATOR_TOKEN)
        .send()
        .await
        .expect("failed")
        .json()
        .await
        .expect("json");
    let copy = failed["data"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["docId"] == doc_id.as_str())
        .cloned()
        .unwrap_or_else(|| panic!("{failed}"));
    assert_eq!(copy["to"], COMMUNE);
    assert_eq!(copy["reason"], "recipient is locked in the registry");
    let retry = || {
        http.post(format!("{}/admin/failed/retry", gateway.url))
            .bearer_auth(OPERATOR_TOKEN)
            .json(&serde_json::json!({"docId": doc_id, "to": COMMUNE}))
            .send()
    };
    let retried = retry().await.expect("retry");
    assert!(retried.status().is_success(), "{}", retried.status());
    eventually(
        "the copy delivered after the retry",
        Duration::from_secs(20),
        || async {
            let rows = province.sent(Some(&doc_id)).await.expect("sent");
            rows.iter()
                .all(|r| r["delivery"] == "delivered")
                .then_some(())
        },
    )
    .await;
    // A copy that is not failed is not retried.
    assert_eq!(retry().await.expect("retry").status(), 404);
    // The operator finds the document by the agency and reads its whole trace.
    let found: serde_json::Value = http
        .get(format!("{}/admin/documents", gateway.url))
        .query(&[("agency", COMMUNE), ("limit", "10")])
        .bearer_auth(OPERATOR_TOKEN)
        .send()
        .await
        .expect("search")
        .json()
        .await
        .expect("json");
    let row = found["data"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["docId"] == doc_id.as_str())
        .cloned()
        .unwrap_or_else(|| panic!("{found}"));
    assert_eq!(row["copies"].as_array().map(Vec::len), Some(2), "{row}");
    // The leg's state moves before the ledger records the `delivered` event,
    // so the trace is read until the ledger has caught up.
    eventually(
        "the trace shows the failure and the delivery",
        Duration::from_secs(20),
        || async {
            let trace: serde_json::Value = http
                .get(format!("{}/admin/documents/{doc_id}/trace", gateway.url))
                .bearer_auth(OPERATOR_TOKEN)
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            let kinds = event_kinds(&trace["data"]);
            (kinds.iter().any(|k| k == "failed")
                && kinds.iter().filter(|k| *k == "delivered").count() == 2)
                .then_some(())
        },
    )
    .await;
    workers.stop().await;
    gateway.stop().await;
    env.teardown().await;
}

#[tokio::test]
async fn a_package_accepted_while_the_broker_is_away_is_relayed_once_it_returns() {
    let env = Env::new(Backend::Sqlite).await;
    let mut away = env.bus.clone();
    away.url = "amqp://guest:guest@127.0.0.1:1/%2f".into();
    away.connect_timeout_ms = 500;
    let gateway = InProcessBus::start_roles(&env, &away, &["gateway"]).await;
    let package = write_edoc(&edoc(PROVINCE, &[MINISTRY], unique_number()));
    // The raw answer: 503 with Retry-After, so clients back off instead of hammering.
    let form = reqwest::multipart::Form::new()
        .text("messageType", "edoc")
        .part(
            "edocFile",
            reqwest::multipart::Part::bytes(package.clone()).file_name("p.edxml"),
        );
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/sendEdoc", gateway.url))
        .header("X-SystemId", "province")
        .header("X-SecretKey", "secret-province")
        .multipart(form)
        .send()
        .await
        .expect("answer");
    assert_eq!(resp.status(), 503);
    assert_eq!(
        resp.headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("5")
    );
    // Sending again gives the same stored document.
    let err = gateway
        .client("province")
        .send(package.clone(), "edoc")
        .await
        .expect_err("no broker");
    let ClientError::Api {
        code: 20,
        desc,
        http: 503,
    } = err
    else {
        panic!("expected 20/503, got {err:?}")
    };
    assert!(desc.contains("send the same package again"), "{desc}");
    let doc_id = desc
        .split("docId ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .expect("docId in message")
        .to_owned();
    let resp = reqwest::Client::new()
        .get(format!("{}/readyz", gateway.url))
        .send()
        .await
        .expect("readyz answers");
    assert_eq!(resp.status(), 503);
    gateway.stop().await;

    // The broker is back: a gateway's relay publishes what was stored, and it is delivered once.
    let bus = InProcessBus::start(&env).await;
    eventually("relayed and delivered", Duration::from_secs(20), || async {
        let legs = env.store.legs(&doc_id).await.expect("legs");
        (legs[0].delivery == DeliveryState::Delivered).then_some(())
    })
    .await;
    assert_eq!(
        bus.client("province")
            .send(package, "edoc")
            .await
            .expect("resubmission"),
        doc_id
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        bus.client("ministry")
            .inbox("edoc", &[])
            .await
            .expect("inbox")
            .len(),
        1
    );
    bus.stop().await;
    env.teardown().await;
}

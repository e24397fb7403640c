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
    for (key, payload) in [
        ("router", "not json"),
        ("delivery", "{\"doc_id\":1}"),
        ("router", "{\"doc_id\":\"ghost\",\"slip\":[\"router\"]}"),
    ] {
        publisher
            .publish(Outgoing {
                route: Route {
                    exchange: t.pipeline(),
                    routing_key: key.into(),
                    mandatory: true,
                },
                payload: payload.as_bytes().to_vec(),
                message_id: format!("poison-{key}"),
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
    bus.stop().await;
    env.teardown().await;
}

#[tokio::test]
async fn a_recipient_locked_after_acceptance_gets_a_failed_leg_with_the_reason() {
    let env = Env::new(Backend::Sqlite).await;
    let gateway = InProcessBus::start_roles(&env, &env.bus, &["gateway"]).await;
    let province = gateway.client("province");
    let doc_id = province
        .send(
            write_edoc(&edoc(PROVINCE, &[MINISTRY, COMMUNE], unique_number())),
            "edoc",
        )
        .await
        .expect("send");
    env.store
        .set_agency_state(COMMUNE, AgencyState::Locked)
        .await
        .expect("lock");
    let workers = InProcessBus::start_roles(
        &env,
        &env.bus,
        &["verifier", "translator", "router", "delivery", "ledger"],
    )
    .await;
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

//! The broker goes away and comes back (`rabbitmqctl stop_app` / `start_app`): the gateway answers
//! error 20 with Retry-After instead of hanging, everything accepted before and during the outage is
//! delivered exactly once afterwards, and every service reconnects by itself.

use std::process::Command;
use std::time::{Duration, Instant};

use lienthong_client::ClientError;
use lienthong_edxml::write_edoc;
use lienthong_store::DeliveryState;
use lienthong_tests::*;

fn rabbitmqctl(args: &[&str]) {
    let status = Command::new("rabbitmqctl")
        .args(args)
        .status()
        .expect("rabbitmqctl is installed (deploy/local/ensure-services)");
    assert!(status.success(), "rabbitmqctl {args:?} failed");
}

/// Restarts the broker's application even if the test fails half way.
struct Outage;

impl Drop for Outage {
    fn drop(&mut self) {
        let _ = Command::new("rabbitmqctl").arg("start_app").status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bus_survives_a_broker_restart() {
    let mut env = Env::new(Backend::Sqlite).await;
    env.bus.connect_timeout_ms = 1_000;
    env.bus.confirm_timeout_ms = 2_000;
    let bus = InProcessBus::start(&env).await;
    let province = bus.client("province");
    let before = province
        .send(
            write_edoc(&edoc(PROVINCE, &[MINISTRY], unique_number())),
            "edoc",
        )
        .await
        .expect("before");

    let outage = Outage;
    rabbitmqctl(&["stop_app"]);
    let during = write_edoc(&edoc(PROVINCE, &[MINISTRY], unique_number()));
    let started = Instant::now();
    let err = province
        .send(during.clone(), "edoc")
        .await
        .expect_err("the broker is down");
    assert!(
        matches!(
            err,
            ClientError::Api {
                code: 20,
                http: 503,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the gateway must answer, not hang: {:?}",
        started.elapsed()
    );
    rabbitmqctl(&["start_app"]);
    drop(outage);

    // Clients retry the same package until the broker confirms it again.
    let during_id = eventually(
        "the gateway to accept again",
        Duration::from_secs(60),
        || async { province.send(during.clone(), "edoc").await.ok() },
    )
    .await;
    let after = province
        .send(
            write_edoc(&edoc(PROVINCE, &[MINISTRY], unique_number())),
            "edoc",
        )
        .await
        .expect("after");

    for doc_id in [&before, &during_id, &after] {
        eventually(
            "delivery after the restart",
            Duration::from_secs(60),
            || async {
                let legs = env.store.legs(doc_id).await.expect("legs");
                (legs[0].delivery == DeliveryState::Delivered).then_some(())
            },
        )
        .await;
    }
    let ministry = bus.client("ministry");
    let inbox = ministry.inbox("edoc", &[]).await.expect("inbox");
    assert_eq!(inbox.len(), 3, "each document once: {inbox:?}");
    // The ledger reconnected too.
    eventually("the ledger catches up", Duration::from_secs(60), || async {
        let t = env.store.trace(&after).await.expect("trace");
        t.iter().any(|e| e.kind == "delivered").then_some(())
    })
    .await;
    bus.stop().await;
    env.teardown().await;
}

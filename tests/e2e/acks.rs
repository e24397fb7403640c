//! The consumer's acks, gathered into `multiple` acks where deliveries settle together, against
//! the real broker: every message settled once, a slow one holding back no other's ack, poison
//! dead-lettered, and a message kept for redelivery at shutdown never acked by another's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lienthong_bus::{Handler, Incoming, Outcome, Outgoing, Publisher, Route};
use lienthong_tests::*;
use tokio::sync::watch;

/// Handles by the message's text: `hold` waits until released, `poison-*` is poison, `flaky`
/// never succeeds, anything else is done. Counts every delivery of each text.
struct Scripted {
    seen: Mutex<HashMap<String, u32>>,
    redelivered: Mutex<Vec<String>>,
    release: watch::Receiver<bool>,
}

impl Scripted {
    fn count(&self, prefix: &str) -> usize {
        let seen = self.seen.lock().expect("seen");
        seen.keys().filter(|k| k.starts_with(prefix)).count()
    }

    fn times_seen(&self) -> HashMap<String, u32> {
        self.seen.lock().expect("seen").clone()
    }
}

impl Handler for Scripted {
    async fn handle(&self, message: Incoming) -> Outcome {
        let text = String::from_utf8_lossy(&message.payload).into_owned();
        *self
            .seen
            .lock()
            .expect("seen")
            .entry(text.clone())
            .or_default() += 1;
        if message.redelivered {
            self.redelivered
                .lock()
                .expect("redelivered")
                .push(text.clone());
        }
        match text.as_str() {
            "hold" => {
                let mut release = self.release.clone();
                let _ = release.wait_for(|r| *r).await;
                Outcome::Done
            }
            "flaky" => Outcome::Retry("never now".into()),
            t if t.starts_with("poison-") => Outcome::Poison("scripted".into()),
            _ => Outcome::Done,
        }
    }
}

async fn publish_all(env: &Env, texts: impl IntoIterator<Item = String>) {
    let publisher = Publisher::new(&env.bus, "test-acks");
    let t = env.topology();
    for text in texts {
        publisher
            .publish(Outgoing {
                route: Route {
                    exchange: t.pipeline(),
                    routing_key: "router".into(),
                    mandatory: true,
                },
                payload: text.clone().into_bytes(),
                message_id: text,
                doc_id: None,
            })
            .await
            .expect("published");
    }
}

#[tokio::test]
async fn gathered_acks_settle_every_message_once_and_wait_for_no_slow_one() {
    let mut env = Env::new(Backend::Sqlite).await;
    // A small window: if the acks after a message still in hand waited for it, the consumer
    // would stop being sent messages after 7 more.
    env.bus.prefetch = 8;
    let queue = env.topology().stage_queue("router");
    {
        let conn = lapin::Connection::connect(&env.bus.url, lapin::ConnectionProperties::default())
            .await
            .expect("broker");
        let channel = conn.create_channel().await.expect("channel");
        lienthong_bus::declare(&channel, &env.bus)
            .await
            .expect("topology");
        let _ = conn.close(200, "bye".into()).await;
    }
    let (release, released) = watch::channel(false);
    let handler = Arc::new(Scripted {
        seen: Mutex::new(HashMap::new()),
        redelivered: Mutex::new(Vec::new()),
        release: released,
    });
    let (stop, stopping) = watch::channel(false);
    let consuming = tokio::spawn(lienthong_bus::consume(
        env.bus.clone(),
        queue.clone(),
        "test-acks".into(),
        Arc::clone(&handler),
        stopping,
    ));

    // One held, then 40 done and 3 poison behind it.
    let mut texts = vec!["hold".to_owned()];
    for i in 0..40 {
        texts.push(format!("ok-{i:02}"));
        if i % 15 == 7 {
            texts.push(format!("poison-{i:02}"));
        }
    }
    publish_all(&env, texts.clone()).await;
    eventually(
        "every message behind the held one handled",
        Duration::from_secs(30),
        || async { (handler.count("ok-") == 40 && handler.count("poison-") == 3).then_some(()) },
    )
    .await;
    eventually(
        "the poison dead-lettered",
        Duration::from_secs(30),
        || async { (env.dead_letters().await == 3).then_some(()) },
    )
    .await;
    release.send(true).expect("release");

    // A message that keeps failing, then more behind it; at shutdown it is left for redelivery.
    let more: Vec<String> = std::iter::once("flaky".to_owned())
        .chain((0..10).map(|i| format!("late-{i}")))
        .collect();
    publish_all(&env, more.clone()).await;
    eventually("the late ones handled", Duration::from_secs(30), || async {
        (handler.count("late-") == 10).then_some(())
    })
    .await;
    // Settle what is in flight, then stop: the consumer closes its connection.
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.send(true).expect("stop");
    tokio::time::timeout(Duration::from_secs(30), consuming)
        .await
        .expect("the consumer stops")
        .expect("no panic");

    // Nothing is handed out twice, and only the kept message is left: the others were acked
    // (once the connection closed, an unacked one would be back in the queue).
    let seen = handler.times_seen();
    for text in texts.iter().chain(more.iter().skip(1)) {
        assert_eq!(seen.get(text), Some(&1), "{text}: {seen:?}");
    }
    assert!(
        handler.redelivered.lock().expect("redelivered").is_empty(),
        "{:?}",
        handler.redelivered.lock().expect("redelivered")
    );
    eventually(
        "the flaky one back in the queue, kept",
        Duration::from_secs(10),
        || async { (queue_depth(&env.bus, &queue).await == 1).then_some(()) },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(queue_depth(&env.bus, &queue).await, 1, "only the flaky one");
    assert_eq!(env.dead_letters().await, 3);
    env.teardown().await;
}

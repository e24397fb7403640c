//! The stages of one process run back to back on a message (`bus.chain_stages`): what goes
//! through the broker, what the ledger records, and what happens when a stage in the chain
//! cannot handle its message or fails for now.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use lapin::options::{BasicGetOptions, QueueBindOptions, QueueDeclareOptions};
use lienthong_bus::messages::EventMessage;
use lienthong_bus::{
    DeadAction, Handoffs, Onward, Outcome, Outgoing, Pipeline, Publisher, Route, Stage, StageFuture,
};
use lienthong_tests::*;
use tokio::sync::watch;

/// Copies of what is published on the bus's exchanges, in queues of the test's own.
struct Taps {
    conn: lapin::Connection,
    channel: lapin::Channel,
    pipeline: String,
    events: String,
}

impl Taps {
    async fn new(env: &Env) -> Taps {
        let conn = lapin::Connection::connect(&env.bus.url, lapin::ConnectionProperties::default())
            .await
            .expect("amqp");
        let channel = conn.create_channel().await.expect("channel");
        lienthong_bus::declare(&channel, &env.bus)
            .await
            .expect("topology");
        let t = env.topology();
        let mut names = Vec::new();
        for (exchange, keys) in [
            (
                t.pipeline(),
                &["verifier", "translator", "router", "delivery"][..],
            ),
            (t.events(), &["#"][..]),
        ] {
            let q = channel
                .queue_declare(
                    "".into(),
                    QueueDeclareOptions {
                        exclusive: true,
                        ..Default::default()
                    },
                    Default::default(),
                )
                .await
                .expect("queue");
            for key in keys {
                channel
                    .queue_bind(
                        q.name().clone(),
                        exchange.as_str().into(),
                        (*key).into(),
                        QueueBindOptions::default(),
                        Default::default(),
                    )
                    .await
                    .expect("bind");
            }
            names.push(q.name().to_string());
        }
        let events = names.pop().expect("events");
        let pipeline = names.pop().expect("pipeline");
        Taps {
            conn,
            channel,
            pipeline,
            events,
        }
    }

    /// Every message in `queue` now: routing key and payload.
    async fn drain(&self, queue: &str) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        while let Some(m) = self
            .channel
            .basic_get(queue.into(), BasicGetOptions { no_ack: true })
            .await
            .expect("get")
        {
            out.push((m.delivery.routing_key.to_string(), m.delivery.data.clone()));
        }
        out
    }

    /// The events published from now on, once there are some (`what`: what is waited for).
    async fn some_events(&self, what: &str) -> Vec<EventMessage> {
        eventually(what, Duration::from_secs(20), || async {
            let got: Vec<EventMessage> = self
                .drain(&self.events)
                .await
                .into_iter()
                .flat_map(|(_, p)| EventMessage::read_all(&p).expect("events"))
                .collect();
            (!got.is_empty()).then_some(got)
        })
        .await
    }

    async fn close(self) {
        let _ = self.conn.close(200, "bye".into()).await;
    }
}

/// One document to two agencies, with the stages chained or not, and the chain's events
/// recorded in place by the process's ledger or not: what the broker carried, what the ledger
/// recorded (the same every way), and what the stages left one another.
async fn one_document(
    chain: bool,
    ledger: bool,
) -> (Vec<String>, Vec<(String, usize)>, Vec<String>, Handoffs) {
    let mut env = Env::new(Backend::Sqlite).await;
    env.bus.chain_stages = chain;
    env.bus.chain_ledger = ledger;
    let taps = Taps::new(&env).await;
    let bus = InProcessBus::start(&env).await;
    let doc_id = bus
        .send_edoc("province", PROVINCE, &[MINISTRY, COMMUNE])
        .await;
    env.all_delivered(&doc_id).await;
    let recorded = eventually(
        "both deliveries in the ledger",
        Duration::from_secs(20),
        || async {
            let trace = env.store.trace(&doc_id).await.expect("trace");
            let kinds: Vec<String> = trace.iter().map(|e| e.kind.clone()).collect();
            (kinds.iter().filter(|k| *k == "delivered").count() == 2).then_some(kinds)
        },
    )
    .await;
    // Whatever was still to come has come once the ledger has everything.
    let mut pipeline: Vec<String> = taps
        .drain(&taps.pipeline)
        .await
        .into_iter()
        .map(|(key, _)| key)
        .collect();
    pipeline.sort();
    let events: Vec<(String, usize)> = taps
        .drain(&taps.events)
        .await
        .into_iter()
        .map(|(key, payload)| {
            let n = EventMessage::read_all(&payload).expect("events").len();
            (key, n)
        })
        .collect();
    taps.close().await;
    let handoffs = bus.pipeline.handoffs();
    bus.stop().await;
    env.teardown().await;
    let mut recorded = recorded;
    recorded.sort();
    (pipeline, events, recorded, handoffs)
}

#[tokio::test]
async fn a_process_runs_its_stages_back_to_back_and_tells_the_ledger_once() {
    // The whole bus in one process: one hop through the broker, the gateway's to the
    // verifier. The translator, the router and both deliveries ran in place, and the ledger of
    // the process recorded every event in place, the gateway's `accepted` (carried by the
    // verifier's message) included: nothing on the events exchange. The verifier left the
    // translator its parse of the package, the translator left the router the legs and
    // agencies it read, the router left delivery each of the two copies it routed; each was
    // taken.
    let (pipeline, events, recorded, handoffs) = one_document(true, true).await;
    assert_eq!(pipeline, ["verifier"]);
    assert_eq!(events, [], "{recorded:?}");
    for kind in ["accepted", "verified", "translated", "routed", "delivered"] {
        assert!(recorded.iter().any(|k| k == kind), "{kind}: {recorded:?}");
    }
    let four = Handoffs {
        left: 4,
        taken: 4,
        let_go: 0,
    };
    assert_eq!(handoffs, four);

    // With `chain_ledger = false` the chain publishes every event in one message whose routing
    // key names each kind, the gateway's first.
    let (pipeline_tap, events_tap, recorded_tap, handoffs_tap) = one_document(true, false).await;
    assert_eq!(handoffs_tap, four);
    assert_eq!(pipeline_tap, ["verifier"]);
    assert_eq!(events_tap.len(), 1, "{events_tap:?}");
    let (key, n) = &events_tap[0];
    assert!(key.starts_with("accepted."), "{key}");
    for kind in ["verified", "translated", "routed", "delivered"] {
        assert!(key.split('.').any(|k| k == kind), "{key}");
    }
    assert_eq!(*n, recorded_tap.len(), "{recorded_tap:?}");
    assert_eq!(recorded_tap, recorded);

    // Without the chain every stage hands on through the broker, each event a message; the
    // ledger records the same events. The translator reads the package itself.
    let (pipeline_off, events_off, recorded_off, handoffs_off) = one_document(false, true).await;
    assert_eq!(
        handoffs_off,
        Handoffs {
            left: 0,
            taken: 0,
            let_go: 0
        }
    );
    assert_eq!(
        pipeline_off,
        ["delivery", "delivery", "router", "translator", "verifier"]
    );
    assert_eq!(events_off.len(), recorded_off.len(), "{events_off:?}");
    assert!(events_off.iter().all(|(_, n)| *n == 1));
    assert_eq!(recorded, recorded_off);
}

#[tokio::test]
async fn a_chain_run_again_after_delivery_tells_the_ledger_again_and_delivers_nothing_twice() {
    let mut env = Env::new(Backend::Sqlite).await;
    // The events on the exchange, where the test sees them.
    env.bus.chain_ledger = false;
    let bus = InProcessBus::start(&env).await;
    let doc_id = bus
        .send_edoc("province", PROVINCE, &[MINISTRY, COMMUNE])
        .await;
    env.all_delivered(&doc_id).await;
    // As if the attempt that delivered both copies had died before its publish was confirmed:
    // the broker hands the verifier's message out again.
    let taps = Taps::new(&env).await;
    let t = env.topology();
    Publisher::new(&env.bus, "test-redelivery")
        .publish(
            lienthong_bus::messages::StageMessage::new(
                &doc_id,
                vec!["verifier".into(), "translator".into(), "router".into()],
            )
            .to_outgoing(&t),
        )
        .await
        .expect("published");
    let events = taps.some_events("the chain's events again").await;
    // Delivery ran again on the delivered copies, so its events went out again: had the first
    // attempt's publish been lost, the ledger would still get them.
    let delivered: Vec<&str> = events
        .iter()
        .filter(|e| e.kind == "delivered")
        .filter_map(|e| e.organ.as_deref())
        .collect();
    assert!(
        delivered.contains(&MINISTRY) && delivered.contains(&COMMUNE),
        "{events:?}"
    );
    // Still one copy each, and each event recorded once.
    for (system, organ) in [("ministry", MINISTRY), ("commune", COMMUNE)] {
        assert_eq!(
            inbox_doc_ids(&bus.client(system), "edoc").await,
            std::slice::from_ref(&doc_id),
            "{organ}"
        );
    }
    let trace = env.store.trace(&doc_id).await.expect("trace");
    for kind in ["accepted", "verified"] {
        assert_eq!(trace.iter().filter(|e| e.kind == kind).count(), 1, "{kind}");
    }
    assert_eq!(trace.iter().filter(|e| e.kind == "delivered").count(), 2);
    taps.close().await;
    bus.stop().await;
    env.teardown().await;
}

#[tokio::test]
async fn a_copy_left_to_delivery_as_routed_but_delivered_meanwhile_is_delivered_once() {
    let mut env = Env::new(Backend::Sqlite).await;
    // The events on the exchange, where the test sees them.
    env.bus.chain_ledger = false;
    let bus = InProcessBus::start(&env).await;
    let doc_id = bus.send_edoc("province", PROVINCE, &[MINISTRY]).await;
    env.all_delivered(&doc_id).await;
    let before = bus.pipeline.handoffs();
    // As if the router had just routed the copy in this process while another delivery,
    // elsewhere, delivered it: what the router left says `routed`, the store says `delivered`.
    let copy = lienthong_bus::messages::DeliverLeg {
        doc_id: doc_id.clone(),
        recipient: MINISTRY.into(),
    };
    let leg = env
        .store
        .legs(&doc_id)
        .await
        .expect("legs")
        .into_iter()
        .next()
        .expect("a leg");
    assert_eq!(leg.delivery, lienthong_store::DeliveryState::Delivered);
    let routed = lienthong_store::Leg {
        delivery: lienthong_store::DeliveryState::Routed,
        ..leg
    };
    assert!(
        bus.pipeline
            .leave_for("delivery", &copy.key(), 0, Box::new(routed)),
        "delivery runs here, chained: kept"
    );
    let taps = Taps::new(&env).await;
    Publisher::new(&env.bus, "test-redelivery")
        .publish(copy.to_outgoing(&env.topology()))
        .await
        .expect("published");
    // Delivery took what was left, found the copy delivered, and published its event again.
    let events = taps.some_events("the delivered event again").await;
    assert!(
        events
            .iter()
            .any(|e| e.kind == "delivered" && e.organ.as_deref() == Some(MINISTRY)),
        "{events:?}"
    );
    let after = bus.pipeline.handoffs();
    assert_eq!(
        (after.left, after.taken, after.let_go),
        (before.left + 1, before.taken + 1, before.let_go)
    );
    // Still one copy, delivered, and one `delivered` in the ledger.
    assert_eq!(
        inbox_doc_ids(&bus.client("ministry"), "edoc").await,
        std::slice::from_ref(&doc_id)
    );
    let legs = env.store.legs(&doc_id).await.expect("legs");
    assert_eq!(legs[0].delivery, lienthong_store::DeliveryState::Delivered);
    let trace = env.store.trace(&doc_id).await.expect("trace");
    assert_eq!(trace.iter().filter(|e| e.kind == "delivered").count(), 1);
    taps.close().await;
    bus.stop().await;
    env.teardown().await;
}

/// A stage of the test's own: counts its runs by payload, and does what the payload says.
struct Scripted {
    name: &'static str,
    next: Option<&'static str>,
    runs: Arc<std::sync::Mutex<BTreeMap<String, usize>>>,
    /// How many `flaky` messages it still fails, for now.
    flaky: AtomicUsize,
    prefix: String,
}

impl Stage for Scripted {
    fn name(&self) -> &'static str {
        self.name
    }
    fn run<'a>(&'a self, payload: &'a [u8]) -> StageFuture<'a> {
        Box::pin(async move {
            let text = String::from_utf8_lossy(payload).into_owned();
            *self
                .runs
                .lock()
                .expect("runs")
                .entry(format!("{}:{text}", self.name))
                .or_default() += 1;
            if text == "panic" && self.next.is_none() {
                panic!("the test's last stage trips over it");
            }
            if text == "poison" && self.next.is_none() {
                return Err(Outcome::Poison(
                    "the test's last stage cannot read it".into(),
                ));
            }
            if text == "flaky"
                && self.next.is_none()
                && self
                    .flaky
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok()
            {
                return Err(Outcome::Retry("the test's database is away".into()));
            }
            let mut onward = Onward::default();
            onward.events.push(EventMessage::about(
                &text,
                self.name,
                "000.00.00.H49",
                None,
                1,
            ));
            if let Some(next) = self.next {
                onward.messages.push(Outgoing {
                    route: Route {
                        exchange: format!("{}.pipeline", self.prefix),
                        routing_key: next.into(),
                        mandatory: true,
                    },
                    payload: payload.to_vec(),
                    message_id: format!("{text}:{next}"),
                    doc_id: Some(text.clone()),
                });
            }
            Ok(onward)
        })
    }
}

#[tokio::test]
async fn a_chained_stage_that_cannot_handle_its_message_or_panics_dead_letters_it_on_its_own_queue()
{
    let env = Env::new(Backend::Sqlite).await;
    let taps = Taps::new(&env).await;
    let runs = Arc::new(std::sync::Mutex::new(BTreeMap::new()));
    let stage = |name, next| Scripted {
        name,
        next,
        runs: Arc::clone(&runs),
        flaky: AtomicUsize::new(2),
        prefix: env.bus.prefix.clone(),
    };
    let pipeline = Pipeline::new(&env.bus);
    let (stop, shutdown) = watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    for s in [
        stage("verifier", Some("translator")),
        stage("translator", None),
    ] {
        let (p, shutdown) = (pipeline.clone(), shutdown.clone());
        tasks.spawn(async move { p.serve(Arc::new(s), shutdown).await });
    }
    // Both stages consume before anything is sent, so the chain is in place.
    let publisher = Publisher::new(&env.bus, "test-chain");
    let t = env.topology();
    eventually("both stages consuming", Duration::from_secs(20), || async {
        let depths = publisher
            .queue_depths(&[t.stage_queue("verifier"), t.stage_queue("translator")])
            .await
            .ok()?;
        (depths.len() == 2 && depths.iter().all(|(_, (_, consumers))| *consumers == 1))
            .then_some(())
    })
    .await;
    for text in ["poison", "panic", "flaky", "good"] {
        publisher
            .publish(Outgoing {
                route: Route {
                    exchange: t.pipeline(),
                    routing_key: "verifier".into(),
                    mandatory: true,
                },
                payload: text.as_bytes().to_vec(),
                message_id: format!("{text}:verifier"),
                doc_id: Some(text.into()),
            })
            .await
            .expect("published");
    }
    eventually("two dead letters", Duration::from_secs(30), || async {
        (env.dead_letters().await == 2).then_some(())
    })
    .await;
    // Every chain's events, gathered as they come.
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let gather = || {
        let (seen, taps) = (Arc::clone(&seen), &taps);
        async move {
            let got: Vec<String> = taps
                .drain(&taps.events)
                .await
                .into_iter()
                .flat_map(|(_, p)| EventMessage::read_all(&p).expect("events"))
                .map(|e| e.event_id)
                .collect();
            let mut seen = seen.lock().expect("seen");
            seen.extend(got);
            (seen.len() >= 6).then_some(())
        }
    };
    eventually("every chain's events", Duration::from_secs(30), &gather).await;
    // Anything more (a duplicate) would come now.
    tokio::time::sleep(Duration::from_millis(500)).await;
    gather().await;
    let mut events = seen.lock().expect("seen").clone();
    events.sort();

    // The poison message, and the one its stage panicked on, died on the translator's queue,
    // where that stage is, with their own ids; the verifier's messages were handled (they are
    // not among the dead).
    let mut dead = publisher
        .dead_letters(DeadAction::Keep, None, 10)
        .await
        .expect("dead letters");
    dead.sort_by(|a, b| a.payload.cmp(&b.payload));
    assert_eq!(dead.len(), 2, "{dead:?}");
    for (d, text) in dead.iter().zip(["panic", "poison"]) {
        assert_eq!(d.queue, t.stage_queue("translator"), "{d:?}");
        assert_eq!(d.message_id, Some(format!("{text}:translator")), "{d:?}");
        assert_eq!(d.payload, text);
        assert_eq!(d.reason, "rejected", "{d:?}");
    }
    // Their verifier events went out with them; then the translator's own consumer ran each
    // once more before dead-lettering it. The panic was contained to the stage: the process
    // goes on (the good and flaky documents below).
    let runs = runs.lock().expect("runs").clone();
    for text in ["poison", "panic"] {
        assert_eq!(runs[&format!("verifier:{text}")], 1, "{runs:?}");
        assert_eq!(runs[&format!("translator:{text}")], 2, "{runs:?}");
    }
    // A stage that fails for now runs the whole chain again: each stage is idempotent, and
    // what the chain leaves is published once, after its last stage.
    assert_eq!(runs["verifier:flaky"], 3, "{runs:?}");
    assert_eq!(runs["translator:flaky"], 3, "{runs:?}");
    assert_eq!(runs["verifier:good"], 1);
    assert_eq!(runs["translator:good"], 1);
    let expected = [
        "flaky:translator:000.00.00.H49",
        "flaky:verifier:000.00.00.H49",
        "good:translator:000.00.00.H49",
        "good:verifier:000.00.00.H49",
        "panic:verifier:000.00.00.H49",
        "poison:verifier:000.00.00.H49",
    ];
    assert_eq!(events, expected);
    // Nothing passed through the broker between the stages but the poison message.
    let hops: Vec<String> = taps
        .drain(&taps.pipeline)
        .await
        .into_iter()
        .map(|(key, p)| format!("{key}:{}", String::from_utf8_lossy(&p)))
        .collect();
    let mut hops = hops;
    hops.sort();
    assert_eq!(
        hops,
        [
            "translator:panic",
            "translator:poison",
            "verifier:flaky",
            "verifier:good",
            "verifier:panic",
            "verifier:poison"
        ]
    );
    let _ = stop.send(true);
    while tasks.join_next().await.is_some() {}
    taps.close().await;
    env.teardown().await;
}

#[tokio::test]
async fn what_the_gateway_recorded_reaches_the_ledger_even_when_its_message_is_dead_lettered() {
    let env = Env::new(Backend::Sqlite).await;
    let bus = InProcessBus::start(&env).await;
    // A message for the verifier about a document the store does not have (poison), carrying
    // the gateway's `accepted` as every first message does.
    let doc_id = uuid::Uuid::now_v7().to_string();
    let mut message = lienthong_bus::messages::StageMessage::new(
        &doc_id,
        vec!["verifier".into(), "translator".into(), "router".into()],
    );
    message.events.push(EventMessage {
        event_id: format!("{doc_id}:accepted"),
        doc_id: doc_id.clone(),
        kind: "accepted".into(),
        organ: Some(PROVINCE.into()),
        detail: Some("the test's".into()),
        at_ms: 1,
    });
    Publisher::new(&env.bus, "test-poison")
        .publish(message.to_outgoing(&env.topology()))
        .await
        .expect("published");
    eventually("the dead letter", Duration::from_secs(30), || async {
        (env.dead_letters().await == 1).then_some(())
    })
    .await;
    // The ledger of the process recorded the event before the message was dead-lettered.
    let trace = env.store.trace(&doc_id).await.expect("trace");
    assert_eq!(trace.len(), 1, "{trace:?}");
    assert_eq!(trace[0].kind, "accepted");
    assert_eq!(trace[0].detail.as_deref(), Some("the test's"));
    // The dead letter is the message as it came, events and all, for an operator to replay.
    let dead = Publisher::new(&env.bus, "test-dead")
        .dead_letters(DeadAction::Keep, None, 10)
        .await
        .expect("dead letters");
    assert_eq!(dead.len(), 1);
    assert_eq!(
        lienthong_bus::messages::StageMessage::carried_events(dead[0].payload.as_bytes()),
        message.events
    );
    assert!(dead[0].reason.contains("rejected"), "{:?}", dead[0]);
    bus.stop().await;
    env.teardown().await;
}

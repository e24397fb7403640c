//! The journey of the first issue: send to a ministry and a commune, each fetches byte for byte
//! and answers 01 then 03, the sender sees it all, and the trace tells the story.

use std::time::Duration;

use lienthong_edxml::{OrganId, Organization, StatusCode, write, write_edoc, write_status};
use lienthong_tests::*;
use serde_json::Value;

async fn journey(backend: Backend) {
    let env = Env::new(backend).await;
    let bus = InProcessBus::start(&env).await;
    let (province, ministry, commune) = (
        bus.client("province"),
        bus.client("ministry"),
        bus.client("commune"),
    );

    let doc = edoc(PROVINCE, &[MINISTRY, COMMUNE], unique_number());
    let package = write_edoc(&doc);
    let doc_id = province
        .send(package.clone(), "edoc")
        .await
        .expect("accepted");

    for (recipient, organ) in [(&ministry, MINISTRY), (&commune, COMMUNE)] {
        let rows = eventually("delivery to the inbox", Duration::from_secs(20), || async {
            let rows = recipient.inbox("edoc", &[]).await.expect("inbox");
            (!rows.is_empty()).then_some(rows)
        })
        .await;
        assert_eq!(rows.len(), 1, "{organ}: exactly one copy");
        assert_eq!(rows[0]["docId"], doc_id.as_str());
        assert_eq!(rows[0]["from"], PROVINCE);
        assert_eq!(rows[0]["to"], organ);
        assert_eq!(rows[0]["status"], "initial");

        let fetched = recipient.fetch(&doc_id).await.expect("fetch");
        assert_eq!(
            fetched.bytes, package,
            "{organ}: the package arrives byte for byte"
        );
        assert_eq!(fetched.summary["attachments"][0]["size"], 512);

        let me = Organization::new(OrganId::parse(organ).expect("organ"), "recipient");
        for code in [StatusCode::Arrived, StatusCode::Accepted] {
            let st = write::status_reply(
                &doc.header,
                &me,
                code,
                Some(format!("{organ} {}", code.describe())),
            );
            recipient
                .send(write_status(&st), "status")
                .await
                .expect("status accepted");
        }
        recipient
            .update_status(&doc_id, "done")
            .await
            .expect("transport done");
        assert!(
            recipient
                .inbox("edoc", &[])
                .await
                .expect("inbox")
                .is_empty(),
            "done copies leave the default listing"
        );
    }

    // The sender sees per-recipient delivery and business status...
    let sent = province.sent(Some(&doc_id)).await.expect("sent");
    assert_eq!(sent.len(), 2);
    for row in &sent {
        assert_eq!(row["delivery"], "delivered");
        assert_eq!(row["status"], "done");
        assert_eq!(row["businessStatus"], "03");
    }
    // ...and finds the four status packages in its own inbox, with their original bytes.
    let statuses = eventually(
        "status packages in the sender's inbox",
        Duration::from_secs(20),
        || async {
            let rows = province.inbox("status", &[]).await.expect("inbox");
            (rows.len() == 4).then_some(rows)
        },
    )
    .await;
    let mut codes: Vec<(String, String)> = statuses
        .iter()
        .map(|r| {
            (
                r["from"].as_str().unwrap_or_default().to_owned(),
                r["statusCode"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    codes.sort();
    let mut expected: Vec<(String, String)> = [
        (MINISTRY, "01"),
        (MINISTRY, "03"),
        (COMMUNE, "01"),
        (COMMUNE, "03"),
    ]
    .iter()
    .map(|(o, c)| ((*o).to_owned(), (*c).to_owned()))
    .collect();
    expected.sort();
    assert_eq!(codes, expected);
    let status_doc = statuses[0]["docId"].as_str().expect("docId").to_owned();
    let fetched = province.fetch(&status_doc).await.expect("fetch status");
    assert!(lienthong_edxml::parse(&fetched.bytes).is_ok());

    // The trace: accepted, routed and delivered per recipient, fetched, each status, with times.
    let trace = eventually("a complete trace", Duration::from_secs(20), || async {
        let t = province.trace(&doc_id).await.expect("trace");
        let statuses = t.iter().filter(|e| e["event"] == "status").count();
        let fetched = t
            .iter()
            .filter(|e| e["event"] == "fetched" && e["docId"] == doc_id.as_str())
            .count();
        (statuses == 4 && fetched == 2).then_some(t)
    })
    .await;
    let count = |kind: &str, organ: &str| {
        trace
            .iter()
            .filter(|e| {
                e["event"] == kind && e["docId"] == doc_id.as_str() && e["organId"] == organ
            })
            .count()
    };
    assert_eq!(count("accepted", PROVINCE), 1);
    for organ in [MINISTRY, COMMUNE] {
        assert_eq!(count("routed", organ), 1, "{organ} routed once");
        assert_eq!(count("delivered", organ), 1, "{organ} delivered once");
        assert_eq!(count("fetched", organ), 1, "{organ} fetched once");
        assert_eq!(count("status", organ), 2, "{organ}: 01 and 03");
        assert_eq!(count("transport", organ), 1, "{organ}: done");
    }
    assert!(
        trace
            .iter()
            .all(|e| e["time"].as_str().is_some_and(|t| t.len() == 19))
    );
    // Delivery evidence: every receipt about the document names the digest of the exact bytes.
    let digest = lienthong_store::sha256_hex(&package);
    let receipts = ["accepted", "delivered", "fetched", "status", "transport"];
    for e in trace.iter().filter(|e| e["docId"] == doc_id.as_str()) {
        if receipts.contains(&e["event"].as_str().unwrap_or_default()) {
            assert!(
                e["detail"].as_str().is_some_and(|d| d.contains(&digest)),
                "{e}"
            );
        }
    }
    let times: Vec<i64> = trace.iter().filter_map(|e| e["timeMs"].as_i64()).collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "trace is in time order"
    );
    // Both recipients may read the trace too; a stranger may not.
    assert!(ministry.trace(&doc_id).await.is_ok());

    assert_eq!(env.dead_letters().await, 0);
    bus.stop().await;
    env.teardown().await;
}

#[tokio::test]
async fn journey_on_sqlite() {
    journey(Backend::Sqlite).await;
}

#[tokio::test]
async fn journey_on_postgres() {
    journey(Backend::Postgres).await;
}

#[tokio::test]
async fn resubmitting_the_same_package_returns_the_same_doc_id_and_delivers_once() {
    let env = Env::new(Backend::Sqlite).await;
    let bus = InProcessBus::start(&env).await;
    let package = write_edoc(&edoc(PROVINCE, &[MINISTRY], unique_number()));
    let province = bus.client("province");
    let first = province.send(package.clone(), "edoc").await.expect("first");
    let second = province
        .send(package.clone(), "edoc")
        .await
        .expect("second");
    assert_eq!(first, second);
    let ministry = bus.client("ministry");
    eventually("delivery", Duration::from_secs(20), || async {
        (ministry.inbox("edoc", &[]).await.expect("inbox").len() == 1).then_some(())
    })
    .await;
    // A third send after delivery still creates nothing new, even once the registry has changed:
    // a client retrying after a lost answer must get its docId, not a new refusal.
    env.store
        .set_agency_state(MINISTRY, lienthong_store::AgencyState::Locked)
        .await
        .expect("lock");
    assert_eq!(province.send(package, "edoc").await.expect("third"), first);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rows: Vec<Value> = ministry
        .inbox("edoc", &[("status", "all")])
        .await
        .expect("inbox");
    assert_eq!(rows.len(), 1);
    bus.stop().await;
    env.teardown().await;
}

/// Many packages at once, each sent twice at the same moment: the gateway stores the
/// acceptances that meet in groups (`Store::accept_many`), and each answer must still be the
/// one the package would get alone: both sends of a package the same docId, every document in
/// each recipient's inbox once.
async fn packages_sent_together_and_twice_at_once_are_each_accepted_once(backend: Backend) {
    let env = Env::new(backend).await;
    let bus = InProcessBus::start(&env).await;
    let province = bus.client("province");
    let packages: Vec<Vec<u8>> = (0..24)
        .map(|_| write_edoc(&edoc(PROVINCE, &[MINISTRY, COMMUNE], unique_number())))
        .collect();
    let mut sends = tokio::task::JoinSet::new();
    for (i, package) in packages.iter().enumerate() {
        for _ in 0..2 {
            let (client, package) = (province.clone(), package.clone());
            sends.spawn(async move { (i, client.send(package, "edoc").await) });
        }
    }
    let mut doc_ids: Vec<Vec<String>> = vec![Vec::new(); packages.len()];
    for (i, sent) in sends.join_all().await {
        doc_ids[i].push(sent.expect("accepted"));
    }
    for (i, ids) in doc_ids.iter().enumerate() {
        assert_eq!(ids.len(), 2);
        assert_eq!(ids[0], ids[1], "package {i} got two docIds");
    }
    let mut expected: Vec<String> = doc_ids.iter().map(|ids| ids[0].clone()).collect();
    expected.sort();
    expected.dedup();
    assert_eq!(expected.len(), packages.len(), "two packages got one docId");
    for recipient in ["ministry", "commune"] {
        let client = bus.client(recipient);
        let got = eventually(
            "every document in the inbox",
            Duration::from_secs(60),
            || async {
                let mut got = inbox_doc_ids(&client, "edoc").await;
                got.sort();
                (got.len() >= expected.len()).then_some(got)
            },
        )
        .await;
        assert_eq!(got, expected, "{recipient}'s inbox");
    }
    bus.stop().await;
    env.teardown().await;
}

#[tokio::test]
async fn packages_sent_together_and_twice_at_once_are_each_accepted_once_on_sqlite() {
    packages_sent_together_and_twice_at_once_are_each_accepted_once(Backend::Sqlite).await;
}

#[tokio::test]
async fn packages_sent_together_and_twice_at_once_are_each_accepted_once_on_postgres() {
    packages_sent_together_and_twice_at_once_are_each_accepted_once(Backend::Postgres).await;
}

#[tokio::test]
async fn amqp_adapters_are_told_of_new_inbox_items() {
    use futures_util::StreamExt;
    let env = Env::new(Backend::Sqlite).await;
    let bus = InProcessBus::start(&env).await;
    // An adapter binds its own queue to the inbox exchange for its agency.
    let conn = lapin::Connection::connect(&env.bus.url, lapin::ConnectionProperties::default())
        .await
        .expect("amqp");
    let ch = conn.create_channel().await.expect("channel");
    let q = ch
        .queue_declare(
            "".into(),
            lapin::options::QueueDeclareOptions {
                exclusive: true,
                ..Default::default()
            },
            Default::default(),
        )
        .await
        .expect("queue");
    lienthong_bus::declare(&ch, &env.bus)
        .await
        .expect("topology");
    ch.queue_bind(
        q.name().clone(),
        env.topology().inbox().as_str().into(),
        MINISTRY.into(),
        Default::default(),
        Default::default(),
    )
    .await
    .expect("bind");
    let mut consumer = ch
        .basic_consume(
            q.name().clone(),
            "adapter".into(),
            lapin::options::BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            Default::default(),
        )
        .await
        .expect("consume");
    let doc_id = bus
        .client("province")
        .send(
            write_edoc(&edoc(PROVINCE, &[MINISTRY, COMMUNE], unique_number())),
            "edoc",
        )
        .await
        .expect("send");
    let delivery = tokio::time::timeout(Duration::from_secs(20), consumer.next())
        .await
        .expect("notified")
        .expect("stream open")
        .expect("delivery");
    let notice: Value = serde_json::from_slice(&delivery.data).expect("json");
    assert_eq!(notice["docId"], doc_id.as_str());
    assert_eq!(notice["recipient"], MINISTRY);
    assert_eq!(notice["messageType"], "edoc");
    let _ = conn.close(200, "bye".into()).await;
    bus.stop().await;
    env.teardown().await;
}

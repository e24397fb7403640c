//! A three-node RabbitMQ cluster on this machine (nodes of their own: their own names, ports,
//! data and cookie, listening on loopback only), with the bus on quorum queues replicated across
//! the three. While documents are being sent, the node every service is connected to is killed
//! (SIGKILL of its Erlang VM, as when a host is lost). The quorum queues elect leaders on the
//! two nodes left, the services reconnect to them (`bus.failover_urls`), and every document
//! accepted before, during and after is in its recipient's inbox exactly once, with its whole
//! ledger trace. Three Erlang VMs are heavy for 2 cores, so this runs in a binary of its own
//! (test binaries run one at a time).

use std::time::Duration;

use lienthong_edxml::write_edoc;
use lienthong_tests::servers::Cluster;
use lienthong_tests::*;

/// Sends a package until the bus accepts it: a client answered error 20 (the broker is being
/// failed over) sends the same package again, and gets the same docId.
async fn send_until_accepted(client: &lienthong_client::Client, package: Vec<u8>) -> String {
    eventually(
        "the bus to accept the package",
        Duration::from_secs(120),
        || async { client.send(package.clone(), "edoc").await.ok() },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_a_cluster_node_mid_load_loses_and_repeats_nothing() {
    logs();
    let cluster = tokio::task::spawn_blocking(|| Cluster::start(3))
        .await
        .expect("cluster");
    let mut env = Env::new(Backend::Sqlite).await;
    env.bus.url = cluster.url(0);
    env.bus.failover_urls = vec![cluster.url(1), cluster.url(2)];
    env.bus.queue_type = lienthong_bus::QueueType::Quorum;
    env.bus.connect_timeout_ms = 2_000;
    env.bus.confirm_timeout_ms = 5_000;
    let bus = InProcessBus::start(&env).await;
    // Every service took the first node.
    eventually(
        "the services' connections on the first node",
        Duration::from_secs(30),
        || async { (cluster.connections(0).len() >= 5).then_some(()) },
    )
    .await;
    // The bus's queues are quorum queues with a member on every node.
    let queues = cluster.ctl(
        &cluster.nodes[1],
        &[
            "list_queues",
            "name",
            "type",
            "members",
            "--formatter",
            "json",
        ],
    );
    let queues: serde_json::Value = serde_json::from_slice(&queues.stdout).expect("json");
    let ours: Vec<&serde_json::Value> = queues
        .as_array()
        .into_iter()
        .flatten()
        .filter(|q| {
            q["name"]
                .as_str()
                .is_some_and(|n| n.starts_with(&env.bus.prefix))
        })
        .collect();
    assert!(ours.len() >= 5, "the bus's queues: {queues}");
    for q in &ours {
        assert_eq!(q["type"], "quorum", "{q}");
        assert_eq!(q["members"].as_array().map(Vec::len), Some(3), "{q}");
    }

    let province = bus.client("province");
    let mut sent = Vec::new();
    let total = 90;
    for n in 0..total {
        if n == total / 3 {
            // A third of the way in, the node everything is connected to is lost.
            cluster.kill(0);
        }
        let package = write_edoc(&edoc(PROVINCE, &[MINISTRY], unique_number()));
        sent.push(send_until_accepted(&province, package).await);
    }
    for doc_id in &sent {
        env.all_delivered(doc_id).await;
    }
    let received = inbox_doc_ids(&bus.client("ministry"), "edoc").await;
    let mut expected = sent.clone();
    expected.sort();
    assert_eq!(
        received, expected,
        "every document accepted is in the inbox, each once"
    );
    // Every document's trace is whole: each lifecycle event recorded once.
    for doc_id in &sent {
        let trace = env.store.trace(doc_id).await.expect("trace");
        for kind in ["accepted", "verified", "routed", "delivered"] {
            assert_eq!(
                trace.iter().filter(|e| e.kind == kind).count(),
                1,
                "{doc_id}: one `{kind}` event in {trace:?}"
            );
        }
    }
    // The services now live on the nodes left.
    assert!(
        cluster.connections(1).len() + cluster.connections(2).len() >= 5,
        "the services reconnected to the other nodes"
    );
    assert_eq!(env.dead_letters().await, 0, "nothing was dead-lettered");
    bus.stop().await;
    env.bus.url = cluster.url(1);
    env.teardown().await;
    tokio::task::spawn_blocking(move || drop(cluster))
        .await
        .expect("cluster stopped");
}

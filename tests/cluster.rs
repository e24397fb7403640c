//! A three-node RabbitMQ cluster on this machine (nodes of their own: their own names, ports,
//! data and cookie, listening on loopback only), with the bus on quorum queues replicated across
//! the three. While documents are being sent, the node every service is connected to is killed
//! (SIGKILL of its Erlang VM, as when a host is lost). The quorum queues elect leaders on the
//! two nodes left, the services reconnect to them (`bus.failover_urls`), and every document
//! accepted before, during and after is in its recipient's inbox exactly once, with its whole
//! ledger trace. Three Erlang VMs are heavy for 2 cores, so this runs in a binary of its own
//! (test binaries run one at a time).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use lienthong_edxml::write_edoc;
use lienthong_tests::*;

/// RabbitMQ's own scripts, run as this user (Debian's wrappers in /usr/sbin switch to the
/// `rabbitmq` user, whose cookie and data directory are the shared node's).
fn script(name: &str) -> PathBuf {
    let own = Path::new("/usr/lib/rabbitmq/bin").join(name);
    if own.exists() {
        own
    } else {
        PathBuf::from(name)
    }
}

struct Node {
    name: String,
    port: u16,
    dir: PathBuf,
}

/// The cluster's nodes, stopped (and their data removed) when it is dropped, even when the
/// test fails half way.
struct Cluster {
    /// `HOME` of the nodes and of `rabbitmqctl`: where their shared Erlang cookie is.
    home: tempfile::TempDir,
    nodes: Vec<Node>,
}

impl Cluster {
    /// Starts `n` nodes side by side, then joins the others to the first.
    fn start(n: usize) -> Cluster {
        let home = tempfile::tempdir().expect("tempdir");
        let nodes: Vec<Node> = (0..n)
            .map(|i| {
                let dir = home.path().join(format!("node{i}"));
                std::fs::create_dir_all(&dir).expect("node dir");
                Node {
                    name: format!("lt{}c{i}@localhost", std::process::id()),
                    port: free_port(),
                    dir,
                }
            })
            .collect();
        let cluster = Cluster { home, nodes };
        for node in &cluster.nodes {
            cluster.launch(node);
        }
        for node in &cluster.nodes {
            cluster.wait_running(node);
        }
        let first = cluster.nodes[0].name.clone();
        for node in &cluster.nodes[1..] {
            cluster.ctl(node, &["stop_app"]);
            cluster.ctl(node, &["join_cluster", &first]);
            cluster.ctl(node, &["start_app"]);
        }
        let status = cluster.ctl(
            &cluster.nodes[0],
            &["cluster_status", "--formatter", "json"],
        );
        let status: serde_json::Value =
            serde_json::from_slice(&status.stdout).expect("cluster_status is JSON");
        assert_eq!(
            status["running_nodes"].as_array().map(Vec::len),
            Some(n),
            "every node joined: {status}"
        );
        cluster
    }

    fn launch(&self, node: &Node) {
        let file = |name: &str, text: &str| {
            let path = node.dir.join(name);
            std::fs::write(&path, text).expect("node file");
            path
        };
        // No plugins (the management plugin would want the shared node's port), a listener on
        // loopback only, and none of the shared node's settings.
        let plugins = file("enabled_plugins", "[].\n");
        let config = file(
            "rabbitmq.conf",
            &format!("listeners.tcp.default = 127.0.0.1:{}\n", node.port),
        );
        let env_file = file("rabbitmq-env.conf", "");
        let status = Command::new(script("rabbitmq-server"))
            .arg("-detached")
            // Anything the node writes where it runs (a crash dump) stays in its directory.
            .current_dir(&node.dir)
            .env("HOME", self.home.path())
            .env("RABBITMQ_NODENAME", &node.name)
            .env("RABBITMQ_NODE_PORT", node.port.to_string())
            .env("RABBITMQ_DIST_PORT", free_port().to_string())
            .env("RABBITMQ_CONFIG_FILE", &config)
            .env("RABBITMQ_CONF_ENV_FILE", &env_file)
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", &plugins)
            .env("RABBITMQ_MNESIA_BASE", node.dir.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", node.dir.join("log"))
            .env("RABBITMQ_PID_FILE", node.dir.join("pid"))
            .env("ERL_EPMD_ADDRESS", "127.0.0.1")
            .env(
                "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS",
                "-kernel inet_dist_use_interface {127,0,0,1}",
            )
            .status()
            .expect("rabbitmq-server is installed (deploy/local/ensure-services)");
        assert!(
            status.success(),
            "rabbitmq-server -detached for {}",
            node.name
        );
    }

    /// Waits until the node answers (it registers with epmd a few seconds after `-detached`
    /// returns) and has booted.
    fn wait_running(&self, node: &Node) {
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        while !self.ctl_quietly(node, &["ping"]).status.success() {
            if std::time::Instant::now() > deadline {
                let logs = std::fs::read_dir(node.dir.join("log"))
                    .into_iter()
                    .flatten()
                    .flatten()
                    .map(|f| std::fs::read_to_string(f.path()).unwrap_or_default())
                    .collect::<Vec<_>>()
                    .join("\n");
                panic!("{} did not start within 120 s; its log:\n{logs}", node.name);
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        self.ctl(node, &["await_startup", "--timeout", "120"]);
    }

    fn ctl(&self, node: &Node, args: &[&str]) -> Output {
        let out = self.ctl_quietly(node, args);
        assert!(
            out.status.success(),
            "rabbitmqctl -n {} {args:?}: {}{}",
            node.name,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn ctl_quietly(&self, node: &Node, args: &[&str]) -> Output {
        Command::new(script("rabbitmqctl"))
            .env("HOME", self.home.path())
            .arg("-n")
            .arg(&node.name)
            .args(args)
            .output()
            .expect("rabbitmqctl is installed")
    }

    fn url(&self, i: usize) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.nodes[i].port)
    }

    fn pid(&self, i: usize) -> Option<i32> {
        std::fs::read_to_string(self.nodes[i].dir.join("pid"))
            .ok()
            .and_then(|p| p.trim().parse().ok())
    }

    /// Kills node `i`'s Erlang VM outright: no goodbye to the other nodes or the clients.
    fn kill(&self, i: usize) {
        let pid = self.pid(i).expect("the node wrote its pid");
        let status = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -KILL {pid}");
    }

    /// The connections a node holds (its clients' names).
    fn connections(&self, i: usize) -> Vec<String> {
        let out = self.ctl(
            &self.nodes[i],
            &[
                "list_connections",
                "client_properties",
                "--formatter",
                "json",
            ],
        );
        let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        list.as_array()
            .into_iter()
            .flatten()
            .map(|c| c.to_string())
            .collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for (i, node) in self.nodes.iter().enumerate() {
            if self.ctl_quietly(node, &["stop"]).status.success() {
                continue;
            }
            // Killed already (the lost node), or not answering: still starting when the test
            // failed early, so its pid file may come a moment later.
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            let pid = loop {
                match self.pid(i) {
                    Some(pid) => break Some(pid),
                    None if std::time::Instant::now() > deadline => break None,
                    None => std::thread::sleep(Duration::from_millis(200)),
                }
            };
            if let Some(pid) = pid {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .stderr(std::process::Stdio::null())
                    .status();
            }
        }
    }
}

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

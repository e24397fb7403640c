//! Servers and processes of a test's own, started beside the shared ones so a test can kill and
//! restart them without disturbing any other: RabbitMQ nodes (a cluster of one or more), a
//! PostgreSQL server, and `lienthong` processes. Each listens on loopback only, on ports of its own, with its data in a temporary
//! directory, and is stopped when dropped, even when the test fails half way.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use crate::free_port;

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

pub struct Node {
    pub name: String,
    pub port: u16,
    /// The management API's port and the AMQPS port, used when the node's settings enable them.
    pub management_port: u16,
    pub tls_port: u16,
    pub dir: PathBuf,
}

/// What a node runs beyond plain AMQP on loopback.
#[derive(Debug, Clone, Default)]
pub struct NodeSettings {
    /// Plugins to enable (none by default: the management plugin would want the shared node's
    /// port unless `extra_config` gives it another).
    pub plugins: Vec<String>,
    /// More lines of `rabbitmq.conf`; `{management_port}`, `{tls_port}` and `{dir}` (the
    /// node's directory) are replaced.
    pub extra_config: String,
}

/// The cluster's nodes, stopped (and their data removed) when it is dropped, even when the
/// test fails half way.
pub struct Cluster {
    /// `HOME` of the nodes and of `rabbitmqctl`: where their shared Erlang cookie is.
    home: tempfile::TempDir,
    pub nodes: Vec<Node>,
    settings: NodeSettings,
}

impl Cluster {
    /// Starts `n` nodes side by side, then joins the others to the first.
    pub fn start(n: usize) -> Cluster {
        Self::start_with(n, NodeSettings::default())
    }

    /// Starts `n` nodes with more than plain AMQP (plugins, TLS, ...), joined as by `start`.
    pub fn start_with(n: usize, settings: NodeSettings) -> Cluster {
        let home = tempfile::tempdir().expect("tempdir");
        let nodes: Vec<Node> = (0..n)
            .map(|i| {
                let dir = home.path().join(format!("node{i}"));
                std::fs::create_dir_all(&dir).expect("node dir");
                Node {
                    name: format!("lt{}c{i}@localhost", std::process::id()),
                    port: free_port(),
                    management_port: free_port(),
                    tls_port: free_port(),
                    dir,
                }
            })
            .collect();
        let cluster = Cluster {
            home,
            nodes,
            settings,
        };
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

    pub fn launch(&self, node: &Node) {
        let file = |name: &str, text: &str| {
            let path = node.dir.join(name);
            std::fs::write(&path, text).expect("node file");
            path
        };
        // No plugins (the management plugin would want the shared node's port), a listener on
        // loopback only, and none of the shared node's settings.
        let plugins = file(
            "enabled_plugins",
            &format!("[{}].\n", self.settings.plugins.join(",")),
        );
        let extra = self
            .settings
            .extra_config
            .replace("{management_port}", &node.management_port.to_string())
            .replace("{tls_port}", &node.tls_port.to_string())
            .replace("{dir}", &node.dir.display().to_string());
        let config = file(
            "rabbitmq.conf",
            &format!("listeners.tcp.default = 127.0.0.1:{}\n{extra}\n", node.port),
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
    pub fn wait_running(&self, node: &Node) {
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

    pub fn ctl(&self, node: &Node, args: &[&str]) -> Output {
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

    pub fn ctl_quietly(&self, node: &Node, args: &[&str]) -> Output {
        Command::new(script("rabbitmqctl"))
            .env("HOME", self.home.path())
            .arg("-n")
            .arg(&node.name)
            .args(args)
            .output()
            .expect("rabbitmqctl is installed")
    }

    pub fn url(&self, i: usize) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.nodes[i].port)
    }

    pub fn pid(&self, i: usize) -> Option<i32> {
        std::fs::read_to_string(self.nodes[i].dir.join("pid"))
            .ok()
            .and_then(|p| p.trim().parse().ok())
    }

    /// Kills node `i`'s Erlang VM outright: no goodbye to the other nodes or the clients.
    pub fn kill(&self, i: usize) {
        let pid = self.pid(i).expect("the node wrote its pid");
        let status = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -KILL {pid}");
    }

    /// Kills node `i` outright and starts it again on the same data (its durable queues and
    /// persistent messages come back); returns once it is running.
    pub fn restart(&self, i: usize) {
        self.kill(i);
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while self.ctl_quietly(&self.nodes[i], &["ping"]).status.success() {
            assert!(
                std::time::Instant::now() < deadline,
                "{} still answers after SIGKILL",
                self.nodes[i].name
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        let _ = std::fs::remove_file(self.nodes[i].dir.join("pid"));
        self.launch(&self.nodes[i]);
        self.wait_running(&self.nodes[i]);
    }

    /// The connections a node holds (its clients' names).
    pub fn connections(&self, i: usize) -> Vec<String> {
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

/// The newest PostgreSQL server binaries Debian installed.
pub fn pg_bin() -> PathBuf {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed (deploy/local/ensure-services --postgres)")
        .flatten()
        .filter_map(|d| {
            let version = d.file_name().to_str()?.parse().ok()?;
            let bin = d.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().expect("a PostgreSQL server with initdb").1
}

/// A PostgreSQL server of the test's own, stopped when dropped.
pub struct Postgres {
    _dir: tempfile::TempDir,
    home: PathBuf,
    pub port: u16,
    bin: PathBuf,
}

impl Postgres {
    pub fn start() -> Postgres {
        let dir = tempfile::tempdir().expect("tempdir");
        // PostgreSQL refuses to run as root: as root, the server runs as `postgres`.
        let home = dir.path().join("pg");
        std::fs::create_dir_all(&home).expect("pg dir");
        if is_root() {
            run(Command::new("chmod").args(["755"]).arg(dir.path()));
            run(Command::new("chown").args(["postgres:postgres"]).arg(&home));
        }
        let pg = Postgres {
            _dir: dir,
            home,
            port: free_port(),
            bin: pg_bin(),
        };
        run(pg
            .as_server("initdb")
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "-D"])
            .arg(pg.data()));
        pg.start_server();
        pg
    }

    fn data(&self) -> PathBuf {
        self.home.join("data")
    }

    fn as_server(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server without a checkpoint, as a crash would, leaves it down for two
    /// seconds (requests meet it away), and starts it again: crash recovery replays the WAL.
    pub fn crash_and_restart(&self) {
        run(self.as_server("pg_ctl").arg("-D").arg(self.data()).args([
            "-m",
            "immediate",
            "-w",
            "stop",
        ]));
        std::thread::sleep(Duration::from_secs(2));
        self.start_server();
    }

    fn start_server(&self) {
        // The log file takes the server's output: otherwise it would hold this command's
        // output pipes open.
        run(self
            .as_server("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .arg("-o")
            .arg(format!(
                "-p {} -c listen_addresses=127.0.0.1 -k {}",
                self.port,
                self.home.display()
            ))
            .arg("-l")
            .arg(self.home.join("log"))
            .args(["-w", "start"]));
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self
            .as_server("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

fn run(command: &mut Command) {
    let out = command.output().expect("the command runs");
    assert!(
        out.status.success(),
        "{command:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `lienthong` processes of a test, each logging to `{logs}/{name}.log`, killed with SIGKILL
/// when dropped.
pub struct Processes {
    pub logs: PathBuf,
    children: std::collections::BTreeMap<String, std::process::Child>,
}

impl Processes {
    pub fn new(logs: &Path) -> Processes {
        Processes {
            logs: logs.to_owned(),
            children: Default::default(),
        }
    }

    /// Starts `lienthong ARGS... --config CONFIG` as `name`.
    pub fn start(&mut self, name: &str, config: &Path, args: &[&str]) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.logs.join(format!("{name}.log")))
            .expect("log file");
        let child = Command::new(crate::lienthong_bin())
            .args(args)
            .arg("--config")
            .arg(config)
            .env("RUST_LOG", "info,sqlx=warn")
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn lienthong");
        self.children.insert(name.to_owned(), child);
    }

    /// SIGKILL, as when a host or a process dies.
    pub fn kill(&mut self, name: &str) {
        if let Some(mut child) = self.children.remove(name) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The last lines of every process's log, for a failing test's message.
    pub fn tail_logs(&self) -> String {
        let mut out = String::new();
        let mut logs: Vec<PathBuf> = std::fs::read_dir(&self.logs)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "log"))
            .collect();
        logs.sort();
        for path in logs {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(15).collect();
            out.push_str(&format!(
                "--- {}\n{}\n",
                path.display(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            ));
        }
        out
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        for (_, mut c) in std::mem::take(&mut self.children) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

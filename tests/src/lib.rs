//! Helpers for the end-to-end suite: a whole bus on a real RabbitMQ and a real store, isolated
//! per test (its own exchange/queue prefix, its own database), torn down afterwards.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use lienthong_bus::{BusConfig, QueueType, Topology};
use lienthong_client::Client;
use lienthong_edxml::{NewEdoc, OrganId};
use lienthong_gateway::GatewayConfig;
use lienthong_store::testing::ScratchPostgres;
use lienthong_store::{Agency, AgencyState, BlobConfig, Level, Store, StoreConfig};
use lienthong_verifier::{SignaturePolicy, VerifierConfig};
use tokio::sync::watch;
use tokio::task::JoinSet;

pub mod browser;
pub mod links;
pub mod servers;

pub const PROVINCE: &str = "000.00.00.H49";
pub const DEPARTMENT: &str = "000.00.05.H49";
pub const MINISTRY: &str = "000.00.00.G22";
pub const COMMUNE: &str = "000.12.05.H49";
pub const LOCKED: &str = "000.13.05.H49";
pub const RETIRED: &str = "000.14.05.H49";
pub const UNKNOWN: &str = "000.99.05.H49";
/// The security officer's bearer token the test gateway accepts.
pub const OFFICER_TOKEN: &str = "officer-token-for-tests";
/// The operator's bearer token the test gateway accepts.
pub const OPERATOR_TOKEN: &str = "operator-token-for-tests";

/// Logs of the in-process services on stderr when `LIENTHONG_TEST_LOG` is set (a filter such
/// as `info,sqlx=warn`), for looking into a failing test.
pub fn logs() {
    if let Ok(filter) = std::env::var("LIENTHONG_TEST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_test_writer()
            .try_init();
    }
}

pub fn amqp_url() -> String {
    std::env::var("LIENTHONG_TEST_AMQP")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// One isolated environment: a store and a bus prefix of its own.
pub struct Env {
    /// Signature verification as the in-process bus runs it (tests may change it before start).
    pub verifier: VerifierConfig,
    pub dir: tempfile::TempDir,
    pub store_config: StoreConfig,
    pub bus: BusConfig,
    pub store: Store,
    /// Links to other buses, for a test with several buses (set before `InProcessBus::start`).
    pub federation: Option<lienthong_federation::FederationConfig>,
    /// HTTPS on the in-process gateway (set before `InProcessBus::start`).
    pub gateway_tls: Option<lienthong_gateway::GatewayTls>,
    pg: Option<ScratchPostgres>,
}

impl Env {
    /// An environment whose store is the PostgreSQL database at `url` (a server the test runs
    /// itself), blobs in the database.
    pub async fn on_postgres(url: &str) -> Env {
        let store_config = StoreConfig {
            url: url.to_owned(),
            max_connections: None,
            large_attachment_bytes: 256,
            inline_blob_bytes: 256 * 1024,
            cached_documents: lienthong_store::CACHED_DOCUMENTS,
            cached_blob_bytes: lienthong_store::CACHED_BLOB_BYTES,
            checkpoint_ms: lienthong_store::CHECKPOINT_MS,
            sqlite_synchronous: Default::default(),
            sqlite_page_size: lienthong_store::SQLITE_PAGE_SIZE,
            blobs: BlobConfig::Db,
        };
        Self::with_store(tempfile::tempdir().expect("tempdir"), store_config, None).await
    }

    pub async fn new(backend: Backend) -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        let (store_config, pg) = match backend {
            Backend::Sqlite => (
                StoreConfig {
                    url: format!("sqlite://{}", dir.path().join("lienthong.db").display()),
                    max_connections: None,
                    large_attachment_bytes: 256,
                    inline_blob_bytes: 256 * 1024,
                    cached_documents: lienthong_store::CACHED_DOCUMENTS,
                    cached_blob_bytes: lienthong_store::CACHED_BLOB_BYTES,
                    checkpoint_ms: lienthong_store::CHECKPOINT_MS,
                    sqlite_synchronous: Default::default(),
                    sqlite_page_size: lienthong_store::SQLITE_PAGE_SIZE,
                    blobs: BlobConfig::Files {
                        dir: dir.path().join("blobs"),
                    },
                },
                None,
            ),
            Backend::Postgres => {
                let pg = ScratchPostgres::create("lt_e2e")
                    .await
                    .expect("PostgreSQL reachable");
                (
                    StoreConfig {
                        url: pg.url.clone(),
                        max_connections: None,
                        large_attachment_bytes: 256,
                        inline_blob_bytes: 256 * 1024,
                        cached_documents: lienthong_store::CACHED_DOCUMENTS,
                        cached_blob_bytes: lienthong_store::CACHED_BLOB_BYTES,
                        checkpoint_ms: lienthong_store::CHECKPOINT_MS,
                        sqlite_synchronous: Default::default(),
                        sqlite_page_size: lienthong_store::SQLITE_PAGE_SIZE,
                        blobs: BlobConfig::Db,
                    },
                    Some(pg),
                )
            }
        };
        Self::with_store(dir, store_config, pg).await
    }

    async fn with_store(
        dir: tempfile::TempDir,
        store_config: StoreConfig,
        pg: Option<ScratchPostgres>,
    ) -> Env {
        let store = Store::connect(&store_config).await.expect("store");
        seed(&store).await;
        let mut bus = BusConfig::new(&amqp_url());
        bus.prefix = format!("lt-test-{}", uuid::Uuid::new_v4().simple());
        bus.queue_type = QueueType::Classic;
        // Trust only the test root (not the signers beside it).
        let trust_dir = dir.path().join("trust");
        std::fs::create_dir_all(&trust_dir).expect("trust dir");
        std::fs::copy(
            vectors_dir().join("keys/root.pem"),
            trust_dir.join("root.pem"),
        )
        .expect("root");
        let verifier = VerifierConfig {
            trust_dir,
            intermediates_dir: None,
            crl_files: Vec::new(),
            signature: SignaturePolicy::Optional,
            systems: Default::default(),
            senders: Default::default(),
            allow_sha1: true,
            require_revocation_data: false,
            crl_grace_secs: 86_400,
            bus_organ_id: DEPARTMENT.into(),
            reload_secs: 60,
            revocation: None,
        };
        Env {
            verifier,
            dir,
            store_config,
            bus,
            store,
            federation: None,
            gateway_tls: None,
            pg,
        }
    }

    /// This bus's configuration as every service sees it: with its link queues when it has
    /// links to other buses.
    pub fn bus_config(&self) -> BusConfig {
        let mut bus = self.bus.clone();
        if let Some(f) = &self.federation {
            bus.links = f.link_names();
        }
        bus
    }

    /// Deletes the test's queues and exchanges and its database.
    pub async fn teardown(self) {
        delete_topology(&self.bus).await;
        self.store.close().await;
        if let Some(pg) = self.pg {
            pg.drop_database().await;
        }
    }

    pub fn topology(&self) -> Topology {
        Topology::new(&self.bus.prefix)
    }

    /// The blob directory of a SQLite environment (whose blobs are files), for configuration
    /// files of `lienthong` processes.
    pub fn blob_dir(&self) -> String {
        match &self.store_config.blobs {
            BlobConfig::Files { dir } => dir.display().to_string(),
            other => panic!("a SQLite test environment keeps its blobs in files, not {other:?}"),
        }
    }

    /// The registry's audit records, once there are at least `n` (20 s at most).
    pub async fn registry_audit(&self, n: usize) -> Vec<lienthong_store::LedgerEvent> {
        eventually(
            "the audit records",
            std::time::Duration::from_secs(20),
            || async {
                let events = self.store.trace("registry").await.expect("events");
                (events.len() >= n).then_some(events)
            },
        )
        .await
    }

    /// Writes a configuration file for `lienthong admin` commands on this environment's store
    /// and bus.
    pub fn write_admin_config(&self, path: &std::path::Path) {
        std::fs::write(
            path,
            format!(
                "[store]\nurl = \"{}\"\nblobs = {{ kind = \"files\", dir = \"{}\" }}\n\n[bus]\nurl = \"{}\"\nprefix = \"{}\"\nqueue_type = \"classic\"\n",
                self.store_config.url,
                self.blob_dir(),
                self.bus.url,
                self.bus.prefix
            ),
        )
        .expect("config");
    }

    /// Sets the format each agency receives.
    pub async fn receives(&self, formats: &[(&str, lienthong_edxml::Format)]) {
        for (code, format) in formats {
            assert!(
                self.store
                    .set_agency_format(code, *format)
                    .await
                    .expect("format"),
                "{code} is in the registry"
            );
        }
    }

    /// Waits until every copy of a document is in its recipient's inbox.
    pub async fn all_delivered(&self, doc_id: &str) {
        eventually("delivery", Duration::from_secs(30), || async {
            let legs = self.store.legs(doc_id).await.expect("legs");
            if !legs
                .iter()
                .all(|l| l.delivery == lienthong_store::DeliveryState::Delivered)
            {
                return None;
            }
            // The ledger records the `delivered` events after the legs move.
            let trace = self.store.trace(doc_id).await.expect("trace");
            let recorded = |to: &str| {
                trace
                    .iter()
                    .any(|e| e.kind == "delivered" && e.organ.as_deref() == Some(to))
            };
            legs.iter().all(|l| recorded(&l.recipient)).then_some(())
        })
        .await;
    }

    /// Messages sitting in the dead-letter queue.
    pub async fn dead_letters(&self) -> u32 {
        queue_depth(&self.bus, &self.topology().dead_queue()).await
    }
}

/// The demo-like registry and three connected systems.
async fn seed(store: &Store) {
    let a = |code: &str, level: Level, state: AgencyState| Agency {
        state,
        // The e-doc.vn generation's 9-character code: the code without its first group.
        legacy_code: Some(code[4..].to_owned()),
        ..Agency::new(code, &format!("Cơ quan {code}"), level)
    };
    store
        .upsert_agencies(&[
            a(PROVINCE, Level::Province, AgencyState::Active),
            a(DEPARTMENT, Level::Province, AgencyState::Active),
            a(MINISTRY, Level::Central, AgencyState::Active),
            a(COMMUNE, Level::Commune, AgencyState::Active),
            a(LOCKED, Level::Commune, AgencyState::Locked),
            a(RETIRED, Level::Commune, AgencyState::Retired),
        ])
        .await
        .expect("registry");
    store
        .put_system(
            "province",
            "UBND tỉnh",
            "secret-province",
            &[PROVINCE.into(), DEPARTMENT.into()],
        )
        .await
        .expect("system");
    store
        .put_system("ministry", "VPCP", "secret-ministry", &[MINISTRY.into()])
        .await
        .expect("system");
    store
        .put_system("commune", "UBND xã", "secret-commune", &[COMMUNE.into()])
        .await
        .expect("system");
}

/// The bus's services running as tasks in this process.
pub struct InProcessBus {
    pub url: String,
    /// The pipeline the bus's stages run in.
    pub pipeline: lienthong_bus::Pipeline,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl InProcessBus {
    /// Every service.
    pub async fn start(env: &Env) -> InProcessBus {
        let mut roles = vec![
            "gateway",
            "verifier",
            "translator",
            "router",
            "delivery",
            "ledger",
        ];
        if env.federation.is_some() {
            roles.push("forwarder");
        }
        Self::start_roles(env, &env.bus_config(), &roles).await
    }

    /// Only the named services, on the given broker configuration.
    pub async fn start_roles(env: &Env, bus: &BusConfig, roles: &[&str]) -> InProcessBus {
        let (stop, rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let mut url = String::new();
        let pipeline = lienthong_bus::Pipeline::new(bus);
        for role in roles {
            let stages = pipeline.clone();
            let (s, b, r) = (env.store.clone(), bus.clone(), rx.clone());
            match *role {
                "gateway" => {
                    let gw = GatewayConfig {
                        listen: "127.0.0.1:0".parse().expect("addr"),
                        max_package_bytes: 2 * 1024 * 1024,
                        relay_after_ms: 500,
                        document_stages: vec![
                            "verifier".into(),
                            "translator".into(),
                            "router".into(),
                        ],
                        security_tokens_sha256: vec![lienthong_store::sha256_hex(
                            OFFICER_TOKEN.as_bytes(),
                        )],
                        operator_tokens_sha256: vec![lienthong_store::sha256_hex(
                            OPERATOR_TOKEN.as_bytes(),
                        )],
                        parent_bus: env
                            .federation
                            .as_ref()
                            .and_then(|f| f.parent().map(|p| p.bus.clone())),
                        tls: env.gateway_tls.clone(),
                        adapters: None,
                    };
                    let (listener, addr) = lienthong_gateway::bind(&gw).await.expect("bind");
                    let scheme = if gw.tls.is_some() { "https" } else { "http" };
                    url = format!("{scheme}://{addr}");
                    tasks.spawn(async move {
                        lienthong_gateway::serve(listener, s, b, gw, r)
                            .await
                            .expect("gateway");
                    });
                }
                "verifier" => {
                    let config = env.verifier.clone();
                    tasks.spawn(async move {
                        lienthong_verifier::run(s, stages, config, r)
                            .await
                            .expect("verifier");
                    });
                }
                "translator" => {
                    let config = lienthong_translator::TranslatorConfig {
                        bus_organ_id: env
                            .federation
                            .as_ref()
                            .and_then(|f| f.organ_id.clone())
                            .unwrap_or_else(|| DEPARTMENT.into()),
                        bus: env.federation.as_ref().map(|f| f.bus.clone()),
                    };
                    tasks.spawn(async move {
                        lienthong_translator::run(s, stages, config, r)
                            .await
                            .expect("translator");
                    });
                }
                "router" => {
                    let f = env.federation.clone().map(std::sync::Arc::new);
                    tasks.spawn(lienthong_router::run(s, stages, f, r));
                }
                "forwarder" => {
                    let f = std::sync::Arc::new(env.federation.clone().expect("[federation]"));
                    let gw = GatewayConfig {
                        document_stages: vec![
                            "verifier".into(),
                            "translator".into(),
                            "router".into(),
                        ],
                        ..GatewayConfig::default()
                    };
                    tasks.spawn(async move {
                        lienthong_forwarder::run(s, b, gw, f, r)
                            .await
                            .expect("forwarder");
                    });
                }
                "delivery" => {
                    tasks.spawn(lienthong_delivery::run(s, stages, r));
                }
                "ledger" => {
                    tasks.spawn(lienthong_ledger::run(s, stages, r));
                }
                other => panic!("no role {other}"),
            }
        }
        InProcessBus {
            url,
            pipeline,
            stop,
            tasks,
        }
    }

    /// `system` sends a fresh edoc from `from` to `to`; its docId.
    pub async fn send_edoc(&self, system: &str, from: &str, to: &[&str]) -> String {
        self.client(system)
            .send(
                lienthong_edxml::write_edoc(&edoc(from, to, unique_number())),
                "edoc",
            )
            .await
            .expect("send")
    }

    pub fn client(&self, system: &str) -> Client {
        Client::new(&self.url, system, &format!("secret-{system}"))
    }

    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
    }
}

/// Sends a status about `doc` as `as_organ` (distinct packages of one code differ by their
/// timestamp).
pub async fn send_status(
    client: &Client,
    doc: &NewEdoc,
    as_organ: &str,
    code: lienthong_edxml::StatusCode,
) -> Result<String, lienthong_client::ClientError> {
    client
        .send(status_package(doc, as_organ, code), "status")
        .await
}

/// A status package answering `doc` as `as_organ`, stamped now: each call is a new status (a
/// new idempotency key); sending the same bytes again is the same one.
pub fn status_package(doc: &NewEdoc, as_organ: &str, code: lienthong_edxml::StatusCode) -> Vec<u8> {
    let me = lienthong_edxml::Organization::new(OrganId::parse(as_organ).expect("organ"), "x");
    let mut st = lienthong_edxml::write::status_reply(&doc.header, &me, code, None);
    st.timestamp = lienthong_edxml::Timestamp::from_unix_ms(
        lienthong_store::now_ms() + i64::from(code.code().parse::<u8>().unwrap_or(0)) * 1000,
    );
    lienthong_edxml::write_status(&st)
}

/// A fresh edoc from `from` to `to`, unique by `number`.
pub fn edoc(from: &str, to: &[&str], number: u64) -> NewEdoc {
    let from = OrganId::parse(from).expect("organ");
    let to: Vec<OrganId> = to
        .iter()
        .map(|t| OrganId::parse(t).expect("organ"))
        .collect();
    lienthong_edxml::sample::edoc(&from, &to, number, 512)
}

/// Asserts that a process serving the operations endpoints at `base` is alive and ready.
pub async fn assert_ready(base: &str) {
    let health = reqwest::get(format!("{base}/healthz"))
        .await
        .expect("healthz");
    assert!(health.status().is_success(), "{}", health.status());
    let ready: serde_json::Value = reqwest::get(format!("{base}/readyz"))
        .await
        .expect("readyz")
        .json()
        .await
        .expect("json");
    assert_eq!(ready["status"], "ready", "{ready}");
}

/// A `lienthong` process a test started: killed when dropped, so a failing test leaves none
/// behind.
#[derive(Debug)]
pub struct Running(pub std::process::Child);

impl Running {
    /// SIGKILL, and wait for it to be gone.
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The `kind` of every event in a JSON list of ledger events.
pub fn event_kinds(events: &serde_json::Value) -> Vec<String> {
    events
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["kind"].as_str().map(str::to_owned))
        .collect()
}

/// A loopback port nobody listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// The value of the first sample of `metric` in a Prometheus text page whose labels include
/// every one of `labels` (`queue="x"`).
pub fn metric_sample(text: &str, metric: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(metric)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .find(|l| labels.iter().all(|label| l.contains(label)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

pub fn unique_number() -> u64 {
    u64::from(uuid::Uuid::new_v4().as_u128() as u32)
}

/// Polls until `check` returns Some, or fails the test after `limit`.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The docIds in a system's inbox (`getReceivedEdocList`), sorted.
pub async fn inbox_doc_ids(client: &Client, message_type: &str) -> Vec<String> {
    let rows = client.inbox(message_type, &[]).await.expect("inbox");
    let mut ids: Vec<String> = rows
        .iter()
        .filter_map(|r| r["docId"].as_str().map(str::to_owned))
        .collect();
    ids.sort();
    ids
}

pub async fn queue_depth(bus: &BusConfig, queue: &str) -> u32 {
    lienthong_bus::Publisher::observer(bus, "lienthong-tests")
        .queue_depth(queue)
        .await
        .expect("queue exists")
        .0
}

async fn delete_topology(bus: &BusConfig) {
    let Ok(conn) =
        lapin::Connection::connect(&bus.url, lapin::ConnectionProperties::default()).await
    else {
        return;
    };
    let t = Topology::new(&bus.prefix);
    let mut queues = vec![t.dead_queue(), t.ledger_queue()];
    queues.extend(lienthong_bus_stages().iter().map(|s| t.stage_queue(s)));
    for q in queues {
        if let Ok(ch) = conn.create_channel().await {
            let _ = ch
                .queue_delete(
                    q.as_str().into(),
                    lapin::options::QueueDeleteOptions::default(),
                )
                .await;
        }
    }
    for x in [t.pipeline(), t.events(), t.inbox(), t.dlx()] {
        if let Ok(ch) = conn.create_channel().await {
            let _ = ch
                .exchange_delete(
                    x.as_str().into(),
                    lapin::options::ExchangeDeleteOptions::default(),
                )
                .await;
        }
    }
    let _ = conn.close(200, "bye".into()).await;
}

fn lienthong_bus_stages() -> &'static [&'static str] {
    lienthong_bus::STAGES
}

/// The cross-implementation XML-DSig vectors and the test PKI.
pub fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("vectors/xmldsig")
}

/// A package signed with the test PKI's signer (`signer` or `ec-signer`).
pub fn signed(package: &[u8], signer: &str) -> Vec<u8> {
    let pem = |file: String, label: &str| {
        lienthong_xmldsig::trust::pem_blocks(
            &std::fs::read(vectors_dir().join("keys").join(file)).expect("key file"),
            label,
        )
        .expect("pem")
        .remove(0)
    };
    lienthong_xmldsig::sign(
        package,
        &pem(format!("{signer}.key"), "PRIVATE KEY"),
        &pem(format!("{signer}.pem"), "CERTIFICATE"),
    )
    .expect("signed")
}

/// The `lienthong` binary built beside the test executable.
pub fn lienthong_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test exe");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let bin = dir.join("lienthong");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build --bins` first",
        bin.display()
    );
    bin
}

/// The 9-character codes the test registry gives its agencies (the code without its first
/// group), as e-doc.vn systems know them.
pub fn legacy_codes() -> lienthong_edxml::CodeMap {
    let organs: Vec<OrganId> = [PROVINCE, DEPARTMENT, MINISTRY, COMMUNE]
        .iter()
        .map(|o| OrganId::parse(o).expect("organ"))
        .collect();
    let legacy: Vec<String> = organs.iter().map(|o| o.as_str()[4..].to_owned()).collect();
    lienthong_edxml::CodeMap::new(legacy.iter().map(String::as_str).zip(&organs)).expect("codes")
}

/// Base64 text in a JSON answer, decoded.
pub fn b64(v: &serde_json::Value) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(v.as_str().expect("base64 text"))
        .expect("base64")
}

/// 1.2 MB of attachment content, varied by `step` (over the test bus's 256-byte threshold, so it
/// stays in the stored package).
pub fn large_attachment(step: u32) -> Vec<u8> {
    (0..1_200_000u32).map(|i| (i * step % 251) as u8).collect()
}

/// A copy that fails at routing: `PROVINCE` sends to `MINISTRY` and `COMMUNE` through a gateway
/// alone, `COMMUNE` is locked after acceptance, then the other stages start. The gateway, the
/// other stages, and the docId.
pub async fn copy_to_a_recipient_locked_after_acceptance(
    env: &Env,
) -> (InProcessBus, InProcessBus, String) {
    let gateway = InProcessBus::start_roles(env, &env.bus, &["gateway"]).await;
    let doc_id = gateway
        .client("province")
        .send(
            lienthong_edxml::write_edoc(&edoc(PROVINCE, &[MINISTRY, COMMUNE], unique_number())),
            "edoc",
        )
        .await
        .expect("send");
    env.store
        .set_agency_state(COMMUNE, lienthong_store::AgencyState::Locked)
        .await
        .expect("lock");
    let workers = InProcessBus::start_roles(
        env,
        &env.bus,
        &["verifier", "translator", "router", "delivery", "ledger"],
    )
    .await;
    (gateway, workers, doc_id)
}

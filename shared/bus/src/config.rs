use serde::Deserialize;

/// Queue type for every queue the bus declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum QueueType {
    /// Replicated Raft queues: the production choice on a RabbitMQ cluster.
    #[default]
    Quorum,
    /// Single-node durable queues.
    Classic,
}

/// How to reach the broker and how to lay out the bus on it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusConfig {
    /// `amqp://user:pass@host:5672/vhost` (vhost URL-encoded; `%2f` is `/`).
    pub url: String,
    /// The other nodes of the same RabbitMQ cluster (same credentials and vhost). A connection
    /// that cannot be opened to `url` tries these in turn, and the node that answered last is
    /// tried first next time: losing the node a service was connected to costs a reconnect.
    /// Leave empty behind a load balancer (or a Kubernetes Service) that does the same.
    #[serde(default)]
    pub failover_urls: Vec<String>,
    /// Prefix of every exchange and queue name, so several buses can share a vhost.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    #[serde(default)]
    pub queue_type: QueueType,
    /// Quorum queues dead-letter a message redelivered this many times (a crash loop).
    #[serde(default = "default_delivery_limit")]
    pub delivery_limit: u32,
    /// Unacknowledged messages each consumer may hold (and so handle concurrently).
    #[serde(default = "default_prefetch")]
    pub prefetch: u16,
    /// Runs the stages of one process back to back on a message (verifier, translator, router,
    /// delivery), with one publish of what they leave, instead of a broker hop between each; the
    /// chain's ledger events go as one message. Off: every stage hands on through the broker.
    #[serde(default = "yes")]
    pub chain_stages: bool,
    /// With `chain_stages`, in a process that also runs the ledger: the chain's events are
    /// recorded by that ledger in place (in its group commit) instead of travelling as a message
    /// on `{p}.events`. Ignored on a bus with federation links, whose receipts relay reads the
    /// exchange. Off: every event goes through the exchange (to tap it, say).
    #[serde(default = "yes")]
    pub chain_ledger: bool,
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_ms: u64,
    /// How long a publish may wait for the broker's confirm before it counts as failed.
    #[serde(default = "default_confirm_timeout")]
    pub confirm_timeout_ms: u64,
    /// TLS for an `amqps://` URL: the CA to trust instead of the system's, and a client
    /// certificate when the broker asks for one.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// The buses this bus forwards to (`[federation]` peers): each gets its link queue. Filled
    /// from the federation configuration, not written in `[bus]`.
    #[serde(skip)]
    pub links: Vec<String>,
}

/// TLS to a broker (rustls). Files are PEM.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// CA certificate(s) that sign the broker's certificate.
    #[serde(default)]
    pub ca_file: Option<std::path::PathBuf>,
    /// This bus's client certificate (with its chain), for brokers that require one.
    #[serde(default)]
    pub cert_file: Option<std::path::PathBuf>,
    /// The client certificate's private key (PKCS#8, PKCS#1 or SEC1).
    #[serde(default)]
    pub key_file: Option<std::path::PathBuf>,
}

impl TlsConfig {
    /// Reads the files into lapin's TLS settings.
    pub fn load(&self) -> Result<lapin::tcp::OwnedTLSConfig, String> {
        let read = |what: &str, p: &std::path::Path| {
            std::fs::read(p).map_err(|e| format!("tls.{what} {}: {e}", p.display()))
        };
        let cert_chain = match &self.ca_file {
            Some(p) => Some(
                String::from_utf8(read("ca_file", p)?)
                    .map_err(|_| format!("tls.ca_file {} is not PEM text", p.display()))?,
            ),
            None => None,
        };
        let identity = match (&self.cert_file, &self.key_file) {
            (Some(c), Some(k)) => Some(lapin::tcp::OwnedIdentity::PKCS8 {
                pem: read("cert_file", c)?,
                key: read("key_file", k)?,
            }),
            (None, None) => None,
            _ => return Err("tls: cert_file and key_file go together".into()),
        };
        Ok(lapin::tcp::OwnedTLSConfig {
            identity,
            cert_chain,
        })
    }
}

fn default_prefix() -> String {
    "lienthong".into()
}
fn default_delivery_limit() -> u32 {
    10
}
/// `bus.prefetch` by default: enough messages in hand that a process with one thread keeps its
/// CPU busy while some wait for the store and for confirms, and that the writes of many go in
/// one transaction (`docs/performance.md`: 32 left a worker idle a fifth of the time).
fn default_prefetch() -> u16 {
    128
}
fn yes() -> bool {
    true
}
fn default_connect_timeout() -> u64 {
    5_000
}
fn default_confirm_timeout() -> u64 {
    10_000
}

impl BusConfig {
    /// `url` first, then `failover_urls`.
    pub fn urls(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.url.as_str()).chain(self.failover_urls.iter().map(String::as_str))
    }

    /// Defaults for a broker URL.
    pub fn new(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            failover_urls: Vec::new(),
            prefix: default_prefix(),
            queue_type: QueueType::default(),
            delivery_limit: default_delivery_limit(),
            prefetch: default_prefetch(),
            chain_stages: true,
            chain_ledger: true,
            connect_timeout_ms: default_connect_timeout(),
            confirm_timeout_ms: default_confirm_timeout(),
            tls: None,
            links: Vec::new(),
        }
    }
}

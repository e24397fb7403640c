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
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_ms: u64,
    /// How long a publish may wait for the broker's confirm before it counts as failed.
    #[serde(default = "default_confirm_timeout")]
    pub confirm_timeout_ms: u64,
}

fn default_prefix() -> String {
    "lienthong".into()
}
fn default_delivery_limit() -> u32 {
    10
}
fn default_prefetch() -> u16 {
    32
}
fn default_connect_timeout() -> u64 {
    5_000
}
fn default_confirm_timeout() -> u64 {
    10_000
}

impl BusConfig {
    /// Defaults for a broker URL.
    pub fn new(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            prefix: default_prefix(),
            queue_type: QueueType::default(),
            delivery_limit: default_delivery_limit(),
            prefetch: default_prefetch(),
            connect_timeout_ms: default_connect_timeout(),
            confirm_timeout_ms: default_confirm_timeout(),
        }
    }
}

//! Broker accounts for AMQP adapters: an agency system that listens for inbox notifications on
//! `{prefix}.inbox` gets a RabbitMQ user of its own (named as the system), which may only
//!
//! - declare, bind and consume one queue, named `{prefix}.adapter.{systemId}`,
//! - bind them to `{prefix}.inbox` with the OrganIds the system acts for, and nothing else
//!   (RabbitMQ's topic authorisation checks a binding's key against the account's read pattern),
//! - publish nowhere and read no other queue of the bus.
//!
//! A system whose certificate stands for it logs in with EXTERNAL (the broker takes the
//! certificate's common name as the user name), others with a password.
//!
//! [`plan`] is the pure part: from the registry and what the broker holds, the changes that bring
//! the accounts in line (a system locked loses its access and its connections, a system removed
//! loses its account and its queues, an agency taken from a system loses its bindings).
//! [`Management`] speaks RabbitMQ's management HTTP API to read and apply them.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde_json::json;

/// The tag every adapter account carries, so the bus only ever touches its own accounts.
pub const ADAPTER_TAG: &str = "lienthong-adapter";

/// Where the bus manages adapter accounts (`[amqp_adapters]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdaptersConfig {
    /// RabbitMQ's management API: `http://127.0.0.1:15672` (or https).
    pub management_url: String,
    /// A management user with the `administrator` tag (it creates users).
    pub management_user: String,
    pub management_password: String,
    /// For an https management URL: the CA of its certificate (besides the system's roots).
    #[serde(default)]
    pub management_ca_file: Option<std::path::PathBuf>,
    /// The URL adapters connect to, printed with new accounts (`amqps://bus.example:5671/vhost`).
    #[serde(default)]
    pub adapter_url: Option<String>,
    /// How often the gateway brings the accounts in line with the registry (0: never; run
    /// `lienthong admin adapter-accounts-sync` instead).
    #[serde(default = "default_sync_secs")]
    pub sync_secs: u64,
}

fn default_sync_secs() -> u64 {
    30
}

/// How an adapter logs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Login {
    Password(String),
    /// EXTERNAL: a client certificate whose common name is the system's id.
    Certificate,
}

/// The permissions of a system's account on the bus's vhost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permissions {
    pub configure: String,
    pub write: String,
    pub read: String,
    /// The read pattern on `{prefix}.inbox`: the routing keys (OrganIds) it may bind.
    pub topic_read: String,
}

/// A regular expression matching exactly `s` (Erlang's `re`, PCRE syntax).
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if "\\.^$|?*+()[]{}/-".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The queue of a system's adapter: `{prefix}.adapter.{systemId}` (one, bound to each of its
/// agencies; an exact name, so no system's name can reach another's queue).
pub fn queue_name(prefix: &str, system_id: &str) -> String {
    format!("{prefix}.adapter.{system_id}")
}

/// What a system's account may do: its own queue, binding them to the inbox exchange with its
/// agencies' codes, consuming them. `organs` empty: nothing at all (a locked system keeps the
/// account, without access).
pub fn permissions(prefix: &str, system_id: &str, organs: &[String]) -> Permissions {
    if organs.is_empty() {
        return Permissions {
            configure: "^$".into(),
            write: "^$".into(),
            read: "^$".into(),
            topic_read: "^$".into(),
        };
    }
    let queue = escape(&queue_name(prefix, system_id));
    let mut codes: Vec<String> = organs.iter().map(|o| escape(o)).collect();
    codes.sort();
    codes.dedup();
    Permissions {
        configure: format!("^{queue}$"),
        write: format!("^{queue}$"),
        read: format!("^({}|{queue})$", escape(&format!("{prefix}.inbox"))),
        topic_read: format!("^({})$", codes.join("|")),
    }
}

/// A connected system as the registry has it.
#[derive(Debug, Clone)]
pub struct RegisteredSystem {
    pub id: String,
    pub organs: Vec<String>,
    pub active: bool,
}

/// What the broker holds for the bus's adapters.
#[derive(Debug, Clone, Default)]
pub struct BrokerState {
    /// Accounts tagged [`ADAPTER_TAG`] with a topic permission on `{prefix}.inbox` in the
    /// vhost, and that permission's read pattern.
    pub accounts: BTreeMap<String, String>,
    /// Whether each of those has permissions on the vhost, and which.
    pub vhost_permissions: BTreeMap<String, (String, String, String)>,
    /// Bindings from `{prefix}.inbox` to queues: (queue, routing key, properties key).
    pub bindings: Vec<(String, String, String)>,
    /// Every queue of the vhost whose name starts `{prefix}.adapter.`.
    pub queues: Vec<String>,
}

/// A change to the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Set the account's permissions (it is active, and what it may do changed).
    Permit {
        user: String,
        permissions: Permissions,
    },
    /// The system is locked: no access to the vhost, its connections closed.
    Suspend { user: String },
    /// The system is gone: its account, connections and queues removed.
    Remove { user: String, queues: Vec<String> },
    /// A binding for an agency the system no longer acts for.
    Unbind {
        queue: String,
        routing_key: String,
        properties_key: String,
    },
}

impl Change {
    /// Its name, for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Change::Permit { .. } => "permit",
            Change::Suspend { .. } => "suspend",
            Change::Remove { .. } => "remove",
            Change::Unbind { .. } => "unbind",
        }
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::Permit { user, permissions } => write!(
                f,
                "{user}: permissions set; may bind {}",
                permissions.topic_read
            ),
            Change::Suspend { user } => write!(f, "{user}: suspended (system locked)"),
            Change::Remove { user, queues } => write!(
                f,
                "{user}: removed (system gone), with {} queue(s)",
                queues.len()
            ),
            Change::Unbind {
                queue, routing_key, ..
            } => write!(f, "{queue}: unbound from {routing_key}"),
        }
    }
}

/// The changes that bring the broker's adapter accounts in line with the registry.
pub fn plan(prefix: &str, systems: &[RegisteredSystem], broker: &BrokerState) -> Vec<Change> {
    let by_id: BTreeMap<&str, &RegisteredSystem> =
        systems.iter().map(|s| (s.id.as_str(), s)).collect();
    let mut changes = Vec::new();
    for (user, topic_read) in &broker.accounts {
        let own_queues = |queues: &[String]| -> Vec<String> {
            let own = queue_name(prefix, user);
            queues.iter().filter(|q| **q == own).cloned().collect()
        };
        match by_id.get(user.as_str()) {
            None => changes.push(Change::Remove {
                user: user.clone(),
                queues: own_queues(&broker.queues),
            }),
            Some(s) if !s.active => {
                if broker.vhost_permissions.contains_key(user) {
                    changes.push(Change::Suspend { user: user.clone() });
                }
            }
            Some(s) => {
                let want = permissions(prefix, user, &s.organs);
                let has = broker.vhost_permissions.get(user);
                let same = has.is_some_and(|(c, w, r)| {
                    *c == want.configure && *w == want.write && *r == want.read
                }) && *topic_read == want.topic_read;
                if !same {
                    changes.push(Change::Permit {
                        user: user.clone(),
                        permissions: want,
                    });
                }
                let own = queue_name(prefix, user);
                for (queue, key, props) in &broker.bindings {
                    if *queue == own && !s.organs.iter().any(|o| o == key) {
                        changes.push(Change::Unbind {
                            queue: queue.clone(),
                            routing_key: key.clone(),
                            properties_key: props.clone(),
                        });
                    }
                }
            }
        }
    }
    changes
}

/// A failure of the management API.
#[derive(Debug, thiserror::Error)]
pub enum ManagementError {
    #[error("the management API at {url} did not answer: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("{what}: the management API answered {status}: {body}")]
    Refused {
        what: String,
        status: u16,
        body: String,
    },
    #[error("amqp_adapters: {0}")]
    Config(String),
    #[error(
        "the broker has a user {0} that lienthong did not make (no tag lienthong-adapter): it is left alone"
    )]
    ForeignUser(String),
}

/// How many times the connections of a user are closed before the management API's failure is
/// given up on (about 4 s of pauses in all).
const CLOSE_ATTEMPTS: usize = 7;

/// A system's adapter account as the broker holds it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountInfo {
    /// `password` or `certificate`.
    pub login: &'static str,
    /// No access to the vhost (the system is locked).
    pub suspended: bool,
    pub queue: String,
    /// The OrganIds its queue is bound with.
    pub bindings: Vec<String>,
}

/// `user`'s account as `state` holds it: `None` unless it is one of this bus's adapter accounts.
fn account_info(prefix: &str, user: &UserInfo, state: &BrokerState) -> Option<AccountInfo> {
    if !user.is_adapter() || !state.accounts.contains_key(&user.name) {
        return None;
    }
    let queue = queue_name(prefix, &user.name);
    let mut bindings: Vec<String> = state
        .bindings
        .iter()
        .filter(|(q, _, _)| *q == queue)
        .map(|(_, key, _)| key.clone())
        .collect();
    bindings.sort();
    Some(AccountInfo {
        login: if user.password_hash.is_empty() {
            "certificate"
        } else {
            "password"
        },
        suspended: !state.vhost_permissions.contains_key(&user.name),
        queue,
        bindings,
    })
}

/// RabbitMQ's management HTTP API, for the bus's vhost.
#[derive(Debug, Clone)]
pub struct Management {
    http: reqwest::Client,
    base: String,
    user: String,
    password: String,
    vhost: String,
    prefix: String,
    adapter_url: Option<String>,
}

/// A path segment, percent-encoded (vhost `/` is `%2F`).
fn seg(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[derive(Debug, Deserialize, Default)]
struct UserInfo {
    name: String,
    #[serde(default)]
    tags: serde_json::Value,
    #[serde(default)]
    password_hash: String,
}

impl UserInfo {
    fn is_adapter(&self) -> bool {
        match &self.tags {
            serde_json::Value::String(s) => s.split(',').any(|t| t.trim() == ADAPTER_TAG),
            serde_json::Value::Array(a) => a.iter().any(|t| t == ADAPTER_TAG),
            _ => false,
        }
    }
}

#[derive(Debug, Deserialize)]
struct PermissionInfo {
    user: String,
    configure: String,
    write: String,
    read: String,
}

#[derive(Debug, Deserialize)]
struct TopicPermissionInfo {
    user: String,
    exchange: String,
    read: String,
}

#[derive(Debug, Deserialize)]
struct BindingInfo {
    destination: String,
    destination_type: String,
    routing_key: String,
    properties_key: String,
}

#[derive(Debug, Deserialize)]
struct QueueInfo {
    name: String,
}

impl Management {
    /// For the bus whose broker URL is `bus_url` (its vhost) and whose names start `prefix`.
    pub fn new(
        config: &AdaptersConfig,
        bus_url: &str,
        prefix: &str,
    ) -> Result<Management, ManagementError> {
        let uri: lapin::uri::AMQPUri = bus_url
            .parse()
            .map_err(|e| ManagementError::Config(format!("bus.url: {e}")))?;
        // A management API that does not answer is told apart quickly from one that is slow.
        let mut http = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(3))
            .timeout(std::time::Duration::from_secs(15));
        if let Some(ca) = &config.management_ca_file {
            let pem = std::fs::read(ca).map_err(|e| {
                ManagementError::Config(format!("management_ca_file {}: {e}", ca.display()))
            })?;
            let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| {
                ManagementError::Config(format!("management_ca_file {}: {e}", ca.display()))
            })?;
            http = http.add_root_certificate(cert);
        }
        Ok(Management {
            http: http
                .build()
                .map_err(|e| ManagementError::Config(e.to_string()))?,
            base: config.management_url.trim_end_matches('/').to_owned(),
            user: config.management_user.clone(),
            password: config.management_password.clone(),
            vhost: uri.vhost,
            prefix: prefix.to_owned(),
            adapter_url: config.adapter_url.clone(),
        })
    }

    pub fn vhost(&self) -> &str {
        &self.vhost
    }

    /// The URL adapters connect to (`adapter_url`), else a template naming the vhost.
    pub fn adapter_url(&self) -> String {
        self.adapter_url
            .clone()
            .unwrap_or_else(|| format!("amqp://HOST:5672/{}", seg(&self.vhost)))
    }

    /// The queue of a system's adapter on this bus.
    pub fn queue(&self, system_id: &str) -> String {
        queue_name(&self.prefix, system_id)
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
        what: &str,
    ) -> Result<Option<reqwest::Response>, ManagementError> {
        let url = format!("{}/api/{path}", self.base);
        let mut req = self
            .http
            .request(method, &url)
            .basic_auth(&self.user, Some(&self.password));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.map_err(|e| ManagementError::Unreachable {
            url: self.base.clone(),
            reason: e.to_string(),
        })?;
        let status = resp.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            let body = resp.text().await.unwrap_or_default();
            return Err(ManagementError::Refused {
                what: what.to_owned(),
                status: status.as_u16(),
                body,
            });
        }
        Ok(Some(resp))
    }

    async fn get<T: serde::de::DeserializeOwned + Default>(
        &self,
        path: &str,
        what: &str,
    ) -> Result<T, ManagementError> {
        match self.call(reqwest::Method::GET, path, None, what).await? {
            None => Ok(T::default()),
            Some(resp) => resp.json().await.map_err(|e| ManagementError::Refused {
                what: what.to_owned(),
                status: 200,
                body: format!("not the expected JSON: {e}"),
            }),
        }
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
        what: &str,
    ) -> Result<(), ManagementError> {
        self.call(method, path, body, what).await.map(|_| ())
    }

    fn inbox(&self) -> String {
        format!("{}.inbox", self.prefix)
    }

    /// The broker user named `system_id`, if there is one (404 is `None`).
    async fn user(&self, system_id: &str) -> Result<Option<UserInfo>, ManagementError> {
        self.get(&format!("users/{}", seg(system_id)), "reading a user")
            .await
    }

    /// A system's adapter account, if it has one.
    pub async fn account(&self, system_id: &str) -> Result<Option<AccountInfo>, ManagementError> {
        Ok(self.accounts().await?.remove(system_id))
    }

    /// Every adapter account of this bus, by system id.
    pub async fn accounts(&self) -> Result<BTreeMap<String, AccountInfo>, ManagementError> {
        let users: Vec<UserInfo> = self.get("users", "listing users").await?;
        let state = self.state_of(&users).await?;
        Ok(users
            .iter()
            .filter_map(|u| Some((u.name.clone(), account_info(&self.prefix, u, &state)?)))
            .collect())
    }

    /// Creates (or re-keys) the account of a system and gives it its permissions. A broker user
    /// of that name that lienthong did not make is left alone.
    pub async fn grant(
        &self,
        system_id: &str,
        organs: &[String],
        login: &Login,
    ) -> Result<(), ManagementError> {
        if self.user(system_id).await?.is_some_and(|u| !u.is_adapter()) {
            return Err(ManagementError::ForeignUser(system_id.to_owned()));
        }
        let user = match login {
            Login::Password(p) => json!({ "password": p, "tags": ADAPTER_TAG }),
            // No password: it can only log in with EXTERNAL.
            Login::Certificate => json!({ "password_hash": "", "tags": ADAPTER_TAG }),
        };
        self.send(
            reqwest::Method::PUT,
            &format!("users/{}", seg(system_id)),
            Some(user),
            &format!("creating the account {system_id}"),
        )
        .await?;
        self.permit(system_id, &permissions(&self.prefix, system_id, organs))
            .await
    }

    async fn permit(&self, user: &str, p: &Permissions) -> Result<(), ManagementError> {
        self.send(
            reqwest::Method::PUT,
            &format!("permissions/{}/{}", seg(&self.vhost), seg(user)),
            Some(json!({ "configure": p.configure, "write": p.write, "read": p.read })),
            &format!("permissions of {user}"),
        )
        .await?;
        self.send(
            reqwest::Method::PUT,
            &format!("topic-permissions/{}/{}", seg(&self.vhost), seg(user)),
            Some(json!({ "exchange": self.inbox(), "write": "^$", "read": p.topic_read })),
            &format!("topic permissions of {user}"),
        )
        .await
    }

    /// Removes a system's account, its connections and its queues; `false` if it had none.
    pub async fn revoke(&self, system_id: &str) -> Result<bool, ManagementError> {
        let state = self.state().await?;
        if !state.accounts.contains_key(system_id) {
            return Ok(false);
        }
        let queues: Vec<String> = state
            .queues
            .into_iter()
            .filter(|q| *q == queue_name(&self.prefix, system_id))
            .collect();
        self.apply(&Change::Remove {
            user: system_id.to_owned(),
            queues,
        })
        .await?;
        Ok(true)
    }

    /// What the broker holds for this bus's adapters.
    pub async fn state(&self) -> Result<BrokerState, ManagementError> {
        let users: Vec<UserInfo> = self.get("users", "listing users").await?;
        self.state_of(&users).await
    }

    /// [`Management::state`], the broker's users being `users`.
    async fn state_of(&self, users: &[UserInfo]) -> Result<BrokerState, ManagementError> {
        let v = seg(&self.vhost);
        let tagged: Vec<&str> = users
            .iter()
            .filter(|u| u.is_adapter())
            .map(|u| u.name.as_str())
            .collect();
        let topic: Vec<TopicPermissionInfo> = self
            .get(
                &format!("vhosts/{v}/topic-permissions"),
                "listing topic permissions",
            )
            .await?;
        let inbox = self.inbox();
        let accounts: BTreeMap<String, String> = topic
            .into_iter()
            .filter(|t| t.exchange == inbox && tagged.contains(&t.user.as_str()))
            .map(|t| (t.user, t.read))
            .collect();
        let perms: Vec<PermissionInfo> = self
            .get(&format!("vhosts/{v}/permissions"), "listing permissions")
            .await?;
        let vhost_permissions = perms
            .into_iter()
            .filter(|p| accounts.contains_key(&p.user))
            .map(|p| (p.user, (p.configure, p.write, p.read)))
            .collect();
        let bindings: Vec<BindingInfo> = self
            .get(
                &format!("exchanges/{v}/{}/bindings/source", seg(&inbox)),
                "listing the inbox exchange's bindings",
            )
            .await?;
        let queue_start = format!("{}.adapter.", self.prefix);
        let bindings = bindings
            .into_iter()
            .filter(|b| b.destination_type == "queue" && b.destination.starts_with(&queue_start))
            .map(|b| (b.destination, b.routing_key, b.properties_key))
            .collect();
        let queues: Vec<QueueInfo> = self
            .get(
                &format!("queues/{v}?columns=name"),
                "listing the vhost's queues",
            )
            .await?;
        let queues = queues
            .into_iter()
            .map(|q| q.name)
            .filter(|n| n.starts_with(&queue_start))
            .collect();
        Ok(BrokerState {
            accounts,
            vhost_permissions,
            bindings,
            queues,
        })
    }

    /// Applies one change.
    pub async fn apply(&self, change: &Change) -> Result<(), ManagementError> {
        let v = seg(&self.vhost);
        match change {
            Change::Permit { user, permissions } => self.permit(user, permissions).await,
            Change::Suspend { user } => {
                // The topic permission stays: it marks the account as this bus's, for the day
                // the system is unlocked.
                self.send(
                    reqwest::Method::PUT,
                    &format!("topic-permissions/{v}/{}", seg(user)),
                    Some(json!({ "exchange": self.inbox(), "write": "^$", "read": "^$" })),
                    &format!("suspending {user}"),
                )
                .await?;
                self.send(
                    reqwest::Method::DELETE,
                    &format!("permissions/{v}/{}", seg(user)),
                    None,
                    &format!("suspending {user}"),
                )
                .await?;
                self.close_connections(user).await
            }
            Change::Remove { user, queues } => {
                self.send(
                    reqwest::Method::DELETE,
                    &format!("users/{}", seg(user)),
                    None,
                    &format!("removing the account {user}"),
                )
                .await?;
                // The queue goes even if closing fails: the account is gone already, and
                // nothing would find the queue again.
                let closed = self.close_connections(user).await;
                for q in queues {
                    self.send(
                        reqwest::Method::DELETE,
                        &format!("queues/{v}/{}", seg(q)),
                        None,
                        &format!("removing the queue {q}"),
                    )
                    .await?;
                }
                closed
            }
            Change::Unbind {
                queue,
                properties_key,
                ..
            } => {
                self.send(
                    reqwest::Method::DELETE,
                    &format!(
                        "bindings/{v}/e/{}/q/{}/{}",
                        seg(&self.inbox()),
                        seg(queue),
                        seg(properties_key)
                    ),
                    None,
                    &format!("unbinding {queue}"),
                )
                .await
            }
        }
    }

    /// Closes every connection of `user`. The broker lists connections from a table that lags
    /// behind them: a connection that closed a moment ago (its adapter went, or the broker
    /// closed it because its user was just deleted) is still listed, and closing it fails with
    /// 500. The call is made again until nothing is left to close, for a few seconds at most.
    async fn close_connections(&self, user: &str) -> Result<(), ManagementError> {
        let path = format!("connections/username/{}", seg(user));
        let what = format!("closing the connections of {user}");
        let mut pause = std::time::Duration::from_millis(100);
        let mut attempts = 1;
        loop {
            match self.send(reqwest::Method::DELETE, &path, None, &what).await {
                Err(ManagementError::Refused { status, body, .. })
                    if status >= 500 && attempts < CLOSE_ATTEMPTS =>
                {
                    tracing::debug!(user, status, %body, "a connection of the user closed meanwhile; closing the rest again");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(std::time::Duration::from_secs(1));
                    attempts += 1;
                }
                done => return done,
            }
        }
    }

    /// Brings the accounts in line with the registry; the changes made.
    pub async fn sync(&self, systems: &[RegisteredSystem]) -> Result<Vec<Change>, ManagementError> {
        let state = self.state().await?;
        let changes = plan(&self.prefix, systems, &state);
        for c in &changes {
            self.apply(c).await?;
            tracing::info!(change = %c, "adapter account");
            metrics::counter!("lienthong_adapter_account_changes_total", "change" => c.kind())
                .increment(1);
        }
        Ok(changes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// An HTTP server on loopback that answers `DELETE` with `failures` × 500, then 204;
    /// returns its URL and the count of requests it took.
    async fn closing_server(
        failures: usize,
    ) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let taken = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = std::sync::Arc::clone(&taken);
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                assert!(
                    request.starts_with(b"DELETE /api/connections/username/ministry "),
                    "{}",
                    String::from_utf8_lossy(&request)
                );
                let n = count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let answer: &[u8] = if n < failures {
                    b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}"
                } else {
                    b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n"
                };
                let _ = socket.write_all(answer).await;
            }
        });
        (url, taken)
    }

    fn management_at(url: &str) -> Management {
        let config = AdaptersConfig {
            management_url: url.to_owned(),
            management_user: "guest".into(),
            management_password: "guest".into(),
            management_ca_file: None,
            adapter_url: None,
            sync_secs: 0,
        };
        Management::new(&config, "amqp://127.0.0.1:5672/%2f", "lt").expect("management")
    }

    #[tokio::test]
    async fn closing_a_users_connections_is_tried_again_while_the_broker_lists_closed_ones() {
        // The broker closed a connection itself (its user was deleted) and still lists it for
        // a moment: closing it answers 500 until the list catches up.
        let (url, taken) = closing_server(2).await;
        management_at(&url)
            .close_connections("ministry")
            .await
            .expect("closed once the list caught up");
        assert_eq!(taken.load(std::sync::atomic::Ordering::SeqCst), 3);

        // A management API that keeps failing is reported, after a bounded number of tries.
        let (url, taken) = closing_server(usize::MAX).await;
        let err = management_at(&url)
            .close_connections("ministry")
            .await
            .expect_err("a failure that does not pass");
        assert!(
            matches!(err, ManagementError::Refused { status: 500, .. }),
            "{err}"
        );
        assert!(
            err.to_string()
                .contains("closing the connections of ministry"),
            "{err}"
        );
        assert_eq!(
            taken.load(std::sync::atomic::Ordering::SeqCst),
            CLOSE_ATTEMPTS
        );
    }

    fn sys(id: &str, organs: &[&str], active: bool) -> RegisteredSystem {
        RegisteredSystem {
            id: id.into(),
            organs: organs.iter().map(|s| s.to_string()).collect(),
            active,
        }
    }

    #[test]
    fn permissions_reach_only_the_systems_queues_and_agencies() {
        let p = permissions(
            "lt",
            "ubnd-xa",
            &["000.01.02.H01".into(), "000.00.00.G22".into()],
        );
        assert_eq!(p.configure, r"^lt\.adapter\.ubnd\-xa$");
        assert_eq!(p.write, p.configure);
        assert_eq!(p.read, r"^(lt\.inbox|lt\.adapter\.ubnd\-xa)$");
        assert_eq!(p.topic_read, r"^(000\.00\.00\.G22|000\.01\.02\.H01)$");
        let none = permissions("lt", "ubnd-xa", &[]);
        assert_eq!(none.topic_read, "^$");
        assert_eq!(none.read, "^$");
    }

    #[test]
    fn the_plan_suspends_removes_and_unbinds() {
        let prefix = "lt";
        let mut broker = BrokerState::default();
        for (user, organ) in [("a", "X"), ("b", "Y")] {
            let p = permissions(prefix, user, &[organ.into()]);
            broker.accounts.insert(user.into(), p.topic_read);
            broker
                .vhost_permissions
                .insert(user.into(), (p.configure, p.write, p.read));
        }
        broker.accounts.insert("gone".into(), "^(Z)$".into());
        broker.queues = vec!["lt.adapter.gone".into(), "lt.adapter.a".into()];
        broker.bindings = vec![
            ("lt.adapter.a".into(), "X".into(), "X".into()),
            ("lt.adapter.a".into(), "W".into(), "W".into()),
        ];
        // a is in line but for a binding to W; b is locked; "gone" left the registry.
        let systems = [sys("a", &["X"], true), sys("b", &["Y"], false)];
        let changes = plan(prefix, &systems, &broker);
        assert_eq!(
            changes,
            vec![
                Change::Unbind {
                    queue: "lt.adapter.a".into(),
                    routing_key: "W".into(),
                    properties_key: "W".into()
                },
                Change::Suspend { user: "b".into() },
                Change::Remove {
                    user: "gone".into(),
                    queues: vec!["lt.adapter.gone".into()]
                },
            ]
        );
        // b unlocked, with another agency: permitted anew; a given W: permitted, nothing unbound.
        broker.vhost_permissions.remove("b");
        let systems = [sys("a", &["X", "W"], true), sys("b", &["Y"], true)];
        let changes = plan(prefix, &systems, &broker);
        let users: Vec<&str> = changes
            .iter()
            .map(|c| match c {
                Change::Permit { user, .. } => user.as_str(),
                _ => "not a permit",
            })
            .collect();
        assert_eq!(users, ["a", "b", "not a permit"], "{changes:?}");
        assert!(matches!(&changes[2], Change::Remove { user, .. } if user == "gone"));
    }
}

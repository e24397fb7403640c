use lienthong_bus::{BusConfig, TlsConfig};
use serde::Deserialize;

/// `[federation]`: this bus's name and its links to other buses.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FederationConfig {
    /// This bus's name. Agencies whose registry `bus` is this name, or empty, are served here.
    pub bus: String,
    /// The OrganId this bus writes in the TraceHeader it adds to what it forwards. Defaults to
    /// `translator.bus_organ_id`.
    #[serde(default)]
    pub organ_id: Option<String>,
    /// A package that has passed this many buses is not forwarded again.
    #[serde(default = "default_hop_limit")]
    pub hop_limit: usize,
    /// Largest package sent over a link, in bytes (an AMQP message: RabbitMQ's
    /// `max_message_size`, 128 MiB by default, must allow it).
    #[serde(default = "default_max_transfer")]
    pub max_transfer_bytes: u64,
    /// Messages each link consumer holds at once (packages are held whole while sent).
    #[serde(default = "default_link_prefetch")]
    pub link_prefetch: u16,
    #[serde(default)]
    pub peers: Vec<PeerConfig>,
}

/// One link to another bus.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    /// The peer's name (its `federation.bus`).
    pub bus: String,
    /// The peer's broker, with credentials that may publish to its `{prefix}.federation`
    /// exchange: `amqps://province-a:...@national.example:5671/lienthong`.
    pub url: String,
    /// The peer's queue and exchange prefix.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// The parent bus: whatever no other link reaches goes there (a province's national bus).
    #[serde(default)]
    pub parent: bool,
    /// Other buses reached through this peer.
    #[serde(default)]
    pub reaches: Vec<String>,
    /// TLS (and a client certificate) for an `amqps://` URL.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
}

fn default_hop_limit() -> usize {
    8
}
fn default_max_transfer() -> u64 {
    64 * 1024 * 1024
}
fn default_link_prefetch() -> u16 {
    4
}
fn default_prefix() -> String {
    "lienthong".into()
}

impl FederationConfig {
    /// A bus with no links yet.
    pub fn new(bus: &str) -> Self {
        Self {
            bus: bus.to_owned(),
            organ_id: None,
            hop_limit: default_hop_limit(),
            max_transfer_bytes: default_max_transfer(),
            link_prefetch: default_link_prefetch(),
            peers: Vec::new(),
        }
    }

    /// Consistency a TOML schema cannot express: names, one parent, no duplicate peer.
    pub fn check(&self) -> Result<(), String> {
        lienthong_store::check_bus_name(&self.bus).map_err(|e| format!("federation.bus: {e}"))?;
        if self.hop_limit == 0 {
            return Err("federation.hop_limit must be at least 1".into());
        }
        let mut parents = 0;
        for (i, p) in self.peers.iter().enumerate() {
            let at = format!("federation.peers[{i}]");
            lienthong_store::check_bus_name(&p.bus).map_err(|e| format!("{at}.bus: {e}"))?;
            if p.bus == self.bus {
                return Err(format!("{at}.bus: `{}` is this bus", p.bus));
            }
            if self.peers[..i].iter().any(|q| q.bus == p.bus) {
                return Err(format!("{at}.bus: `{}` is listed twice", p.bus));
            }
            for r in &p.reaches {
                lienthong_store::check_bus_name(r).map_err(|e| format!("{at}.reaches: {e}"))?;
            }
            parents += usize::from(p.parent);
        }
        if parents > 1 {
            return Err("federation.peers: only one peer may be the parent".into());
        }
        Ok(())
    }

    pub fn peer(&self, bus: &str) -> Option<&PeerConfig> {
        self.peers.iter().find(|p| p.bus == bus)
    }

    pub fn parent(&self) -> Option<&PeerConfig> {
        self.peers.iter().find(|p| p.parent)
    }

    /// The names of the link queues this bus keeps, one per peer.
    pub fn link_names(&self) -> Vec<String> {
        self.peers.iter().map(|p| p.bus.clone()).collect()
    }

    /// How to reach a peer's broker: this bus's timeouts, the peer's URL, prefix and TLS.
    pub fn peer_bus_config(&self, peer: &PeerConfig, base: &BusConfig) -> BusConfig {
        let mut c = base.clone();
        c.url = peer.url.clone();
        c.prefix = peer.prefix.clone();
        c.tls = peer.tls.clone();
        c.links = Vec::new();
        c.prefetch = self.link_prefetch;
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_province_configuration_reads_and_mistakes_are_named() {
        let text = r#"
            bus = "tinh-a"
            [[peers]]
            bus = "quoc-gia"
            url = "amqps://tinh-a:secret@national.example:5671/lienthong"
            parent = true
            tls = { ca_file = "/etc/lienthong/national-ca.pem", cert_file = "/etc/lienthong/tinh-a.pem", key_file = "/etc/lienthong/tinh-a.key" }
        "#;
        let c: FederationConfig = toml::from_str(text).expect("config");
        c.check().expect("valid");
        assert_eq!(c.parent().map(|p| p.bus.as_str()), Some("quoc-gia"));
        assert_eq!(c.hop_limit, 8);
        assert_eq!(c.link_names(), ["quoc-gia"]);

        let mut twice = c.clone();
        twice.peers.push(c.peers[0].clone());
        let e = twice.check().expect_err("twice");
        assert!(e.contains("peers[1].bus") && e.contains("twice"), "{e}");

        let mut itself = c.clone();
        itself.peers[0].bus = "tinh-a".into();
        assert!(itself.check().expect_err("self").contains("is this bus"));

        let mut bad = c;
        bad.bus = "Tỉnh A".into();
        assert!(bad.check().expect_err("name").starts_with("federation.bus"));
    }
}

//! Configuration: a TOML file, then environment overrides (`LIENTHONG_*`).

use std::path::{Path, PathBuf};

use anyhow::Context;
use lienthong_bus::BusConfig;
use lienthong_gateway::GatewayConfig;
use lienthong_store::StoreConfig;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub store: StoreConfig,
    pub bus: BusConfig,
    #[serde(default)]
    pub gateway: GatewayConfig,
    #[serde(default)]
    pub registry: RegistryConfig,
    /// Signature verification; required when `gateway.document_stages` names `verifier`.
    #[serde(default)]
    pub verifier: Option<lienthong_verifier::VerifierConfig>,
    /// Schema translation; required when `gateway.document_stages` names `translator`.
    #[serde(default)]
    pub translator: Option<lienthong_translator::TranslatorConfig>,
    /// Links to other buses; absent: this bus serves every agency in its registry.
    #[serde(default)]
    pub federation: Option<lienthong_federation::FederationConfig>,
    #[serde(default)]
    pub telemetry: TelemetryConfig,
    /// The web console; absent: not served.
    #[serde(default)]
    pub console: Option<lienthong_console::ConsoleConfig>,
    /// Broker accounts for AMQP adapters (through RabbitMQ's management API); absent: the bus
    /// manages none.
    #[serde(default)]
    pub amqp_adapters: Option<lienthong_bus::adapters::AdaptersConfig>,
    #[serde(default)]
    pub runtime: RuntimeConfig,
}

/// `[runtime]`: the threads that run the process's tasks.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RuntimeConfig {
    /// How many threads run the process's tasks (tokio's workers); absent: one per CPU the
    /// process may use. Where several of the bus's processes and the broker share a few cores,
    /// 1 is cheaper: each process then hands its tasks to no other thread of its own, and the
    /// bus grows by processes (`docs/operations.md`, capacity). The CPU work of verifying and
    /// translating a large package runs on a pool of its own, not counted here.
    pub worker_threads: Option<usize>,
}

/// `[telemetry]`: where this process serves `/metrics`, `/healthz` and `/readyz` besides the
/// gateway's port (a process without a gateway has only this).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// e.g. `127.0.0.1:9464`; absent: only the gateway serves them.
    pub listen: Option<std::net::SocketAddr>,
    /// Where to export traces (OTLP over HTTP, JSON), e.g.
    /// `http://otel-collector:4318/v1/traces`; absent: the standard `OTEL_EXPORTER_OTLP_*`
    /// variables, else no export (trace context still travels with every message).
    pub otlp_endpoint: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    /// A registry file imported at start when the registry is empty.
    pub seed: Option<PathBuf>,
}

impl Config {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading configuration {}", path.display()))?;
        let mut config: Config = toml::from_str(&text)
            .with_context(|| format!("parsing configuration {}", path.display()))?;
        config.apply_env(|k| std::env::var(k).ok())?;
        config.check()?;
        config.link();
        Ok(config)
    }

    /// Tells every part what `[federation]` means for it: the link queues to declare, the
    /// parent that takes unknown recipients, the agencies the translator renders for, and the
    /// OrganId of this bus's TraceHeader.
    fn link(&mut self) {
        if let (Some(c), Some(v)) = (&mut self.console, &self.verifier) {
            c.trust = Some(lienthong_console::TrustFiles {
                trust_dir: v.trust_dir.clone(),
                intermediates_dir: v.intermediates_dir.clone(),
                crl_files: v.crl_files.clone(),
                crl_cache_dir: v.revocation.as_ref().and_then(|r| r.cache_dir.clone()),
            });
        }
        let Some(f) = &mut self.federation else {
            return;
        };
        if f.organ_id.is_none() {
            f.organ_id = self.translator.as_ref().map(|t| t.bus_organ_id.clone());
        }
        self.bus.links = f.link_names();
        self.gateway.parent_bus = f.parent().map(|p| p.bus.clone());
        if let Some(t) = &mut self.translator {
            t.bus = Some(f.bus.clone());
        }
    }

    /// Consistency a TOML schema cannot express.
    fn check(&self) -> anyhow::Result<()> {
        let stages = &self.gateway.document_stages;
        if stages.last().map(String::as_str) != Some("router") {
            anyhow::bail!("gateway.document_stages must end with \"router\" (it is {stages:?})");
        }
        for s in stages {
            if !lienthong_bus::STAGES.contains(&s.as_str()) || s == "delivery" {
                anyhow::bail!(
                    "gateway.document_stages: unknown stage `{s}` (known: verifier, translator, router)"
                );
            }
        }
        if stages.iter().any(|s| s == "translator") && self.translator.is_none() {
            anyhow::bail!(
                "gateway.document_stages names `translator` but there is no [translator] section"
            );
        }
        if let Some(f) = &self.federation {
            f.check().map_err(|e| anyhow::anyhow!(e))?;
            if f.organ_id.is_none() && self.translator.is_none() {
                anyhow::bail!(
                    "federation.organ_id: set it (the OrganId of this bus's TraceHeader), or a [translator] section with bus_organ_id"
                );
            }
        }
        if let Some(c) = &self.console {
            c.check().map_err(|e| anyhow::anyhow!(e))?;
        }
        if self.runtime.worker_threads == Some(0) {
            anyhow::bail!("runtime.worker_threads must be at least 1 (absent: one per CPU)");
        }
        if stages.iter().any(|s| s == "verifier") && self.verifier.is_none() {
            anyhow::bail!(
                "gateway.document_stages names `verifier` but there is no [verifier] section"
            );
        }
        Ok(())
    }

    fn apply_env(&mut self, var: impl Fn(&str) -> Option<String>) -> anyhow::Result<()> {
        if let Some(v) = var("LIENTHONG_STORE_URL") {
            self.store.url = v;
        }
        if let Some(v) = var("LIENTHONG_BUS_URL") {
            self.bus.url = v;
        }
        if let Some(v) = var("LIENTHONG_BUS_FAILOVER_URLS") {
            // Comma-separated: the other nodes of the broker's cluster.
            self.bus.failover_urls = v
                .split(',')
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .map(str::to_owned)
                .collect();
        }
        if let Some(v) = var("LIENTHONG_BUS_PREFIX") {
            self.bus.prefix = v;
        }
        if let Some(v) = var("LIENTHONG_METRICS_LISTEN") {
            self.telemetry.listen = Some(
                v.parse()
                    .with_context(|| format!("LIENTHONG_METRICS_LISTEN `{v}` is not HOST:PORT"))?,
            );
        }
        if let Some(c) = &mut self.console {
            if let Some(v) = var("LIENTHONG_CONSOLE_LISTEN") {
                c.listen = v
                    .parse()
                    .with_context(|| format!("LIENTHONG_CONSOLE_LISTEN `{v}` is not HOST:PORT"))?;
            }
            if let Some(v) = var("LIENTHONG_CONSOLE_OPERATOR_TOKEN") {
                c.operator_token = Some(v);
            }
            if let Some(v) = var("LIENTHONG_CONSOLE_SECURITY_TOKEN") {
                c.security_token = Some(v);
            }
        }
        if let (Some(a), Some(v)) = (
            &mut self.amqp_adapters,
            var("LIENTHONG_AMQP_ADAPTERS_PASSWORD"),
        ) {
            a.management_password = v;
        }
        if let Some(v) = var("LIENTHONG_RUNTIME_WORKER_THREADS") {
            self.runtime.worker_threads = Some(v.parse().with_context(|| {
                format!("LIENTHONG_RUNTIME_WORKER_THREADS `{v}` is not a number of threads")
            })?);
        }
        if let Some(v) = var("LIENTHONG_LISTEN") {
            self.gateway.listen = v
                .parse()
                .with_context(|| format!("LIENTHONG_LISTEN `{v}` is not HOST:PORT"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_configurations_parse_and_the_environment_overrides() {
        for file in ["lienthong.toml", "production.example.toml"] {
            let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../config")
                .join(file);
            let text = std::fs::read_to_string(&path).expect("config file");
            let mut c: Config = toml::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
            c.check().unwrap_or_else(|e| panic!("{file}: {e}"));
            c.apply_env(|k| match k {
                "LIENTHONG_LISTEN" => Some("127.0.0.1:0".into()),
                "LIENTHONG_BUS_PREFIX" => Some("t1".into()),
                "LIENTHONG_RUNTIME_WORKER_THREADS" => Some("1".into()),
                _ => None,
            })
            .expect("env");
            assert_eq!(c.gateway.listen.port(), 0);
            assert_eq!(c.bus.prefix, "t1");
            assert_eq!(c.runtime.worker_threads, Some(1));
        }
    }

    #[test]
    fn the_runtime_threads_are_a_positive_number() {
        let base = "[bus]\nurl = \"amqp://127.0.0.1\"\n[store]\nurl = \"sqlite://x.db\"\n";
        let c: Config = toml::from_str(base).expect("parse");
        assert_eq!(c.runtime.worker_threads, None, "absent: tokio's default");
        let c: Config =
            toml::from_str(&format!("{base}[runtime]\nworker_threads = 2\n")).expect("parse");
        assert_eq!(c.runtime.worker_threads, Some(2));
        let c: Config =
            toml::from_str(&format!("{base}[runtime]\nworker_threads = 0\n")).expect("parse");
        let e = c.check().expect_err("zero threads").to_string();
        assert!(
            e.starts_with("runtime.worker_threads must be at least 1"),
            "{e}"
        );
        let mut c: Config = toml::from_str(base).expect("parse");
        let e = c
            .apply_env(|k| (k == "LIENTHONG_RUNTIME_WORKER_THREADS").then(|| "one".into()))
            .expect_err("not a number")
            .to_string();
        assert!(e.contains("LIENTHONG_RUNTIME_WORKER_THREADS `one`"), "{e}");
        let typo = format!("{base}[runtime]\nworker_thread = 1\n");
        let e = toml::from_str::<Config>(&typo)
            .expect_err("typo")
            .to_string();
        assert!(e.contains("worker_thread"), "{e}");
    }

    #[test]
    fn a_province_bus_wires_its_links_into_every_part() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/production.example.toml");
        let text = std::fs::read_to_string(&path).expect("config file");
        let mut c: Config = toml::from_str(&text).expect("parse");
        c.check().expect("valid");
        c.link();
        let f = c.federation.as_ref().expect("[federation]");
        assert_eq!(
            f.organ_id.as_deref(),
            Some("000.00.05.H49"),
            "from the translator"
        );
        assert_eq!(c.bus.links, ["quoc-gia"]);
        assert_eq!(c.gateway.parent_bus.as_deref(), Some("quoc-gia"));
        assert_eq!(
            c.translator.as_ref().and_then(|t| t.bus.as_deref()),
            Some("tinh-a")
        );
        assert!(crate::run::all_roles(&c).contains(&crate::run::Role::Forwarder));

        // Mistakes are named.
        let two_parents = text.replace(
            "[[federation.peers]]",
            "[[federation.peers]]\nbus = \"tinh-b\"\nurl = \"amqp://x\"\nparent = true\n\n[[federation.peers]]",
        );
        let c: Config = toml::from_str(&two_parents).expect("parse");
        let e = c.check().expect_err("two parents").to_string();
        assert!(e.contains("only one peer may be the parent"), "{e}");
        let mut no_organ: Config = toml::from_str(&text).expect("parse");
        no_organ.translator = None;
        no_organ.gateway.document_stages = vec!["verifier".into(), "router".into()];
        let e = no_organ.check().expect_err("no organ id").to_string();
        assert!(e.starts_with("federation.organ_id"), "{e}");
    }

    #[test]
    fn an_s3_blob_store_is_configured_in_one_line_and_a_typo_is_refused() {
        let base = "[bus]\nurl = \"amqp://127.0.0.1\"\n[store]\nurl = \"sqlite://x.db\"\n";
        let s3 = format!(
            "{base}blobs = {{ kind = \"s3\", endpoint = \"http://127.0.0.1:9000\", bucket = \"lt\", access_key = \"k\", secret_key = \"s\" }}\n"
        );
        let c: Config = toml::from_str(&s3).expect("s3 config");
        match &c.store.blobs {
            lienthong_store::BlobConfig::S3 { bucket, region, .. } => {
                assert_eq!((bucket.as_str(), region.as_str()), ("lt", "us-east-1"));
            }
            other => panic!("{other:?}"),
        }
        assert!(
            !format!("{:?}", c.store.blobs).contains("\"s\""),
            "the secret is not logged"
        );
        let typo = s3.replace("bucket", "buket");
        let err = toml::from_str::<Config>(&typo)
            .expect_err("typo")
            .to_string();
        assert!(err.contains("buket"), "{err}");
    }
}

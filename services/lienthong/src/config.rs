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
        Ok(config)
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
        if let Some(v) = var("LIENTHONG_BUS_PREFIX") {
            self.bus.prefix = v;
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
                _ => None,
            })
            .expect("env");
            assert_eq!(c.gateway.listen.port(), 0);
            assert_eq!(c.bus.prefix, "t1");
        }
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

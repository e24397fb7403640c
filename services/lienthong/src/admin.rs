//! The admin tool: the agency registry and connected systems, straight on the store.

use std::path::Path;

use anyhow::{Context, bail};
use lienthong_store::{Agency, AgencyState, Level, Store};
use serde::Deserialize;

/// One registry record as files carry it: the `getAgenciesList` shape, with `level` optional
/// (derived from the code's shape when absent).
#[derive(Debug, Deserialize)]
struct AgencyRecord {
    code: String,
    name: String,
    #[serde(default)]
    pcode: Option<String>,
    #[serde(default)]
    level: Option<Level>,
    #[serde(default)]
    state: AgencyState,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    phone: Option<String>,
    #[serde(default)]
    address: Option<String>,
    #[serde(default, rename = "receiveFormat")]
    receive_format: lienthong_edxml::Format,
    #[serde(default, rename = "legacyCode")]
    legacy_code: Option<String>,
    #[serde(default, rename = "validFrom")]
    valid_from: Option<String>,
    #[serde(default, rename = "validTo")]
    valid_to: Option<String>,
    #[serde(default)]
    successor: Option<String>,
}

/// Reads a registry file (a JSON array, or a `getAgenciesList` answer with `data`) and checks
/// every record, naming the first bad one.
pub fn read_registry(path: &Path) -> anyhow::Result<Vec<Agency>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    let list = value.get("data").cloned().unwrap_or(value);
    let records: Vec<AgencyRecord> = serde_json::from_value(list)
        .with_context(|| format!("{}: expected an array of agencies", path.display()))?;
    let mut out = Vec::with_capacity(records.len());
    for (i, r) in records.into_iter().enumerate() {
        lienthong_edxml::OrganId::parse(&r.code)
            .map_err(|e| anyhow::anyhow!("{}: record {}: code: {e}", path.display(), i + 1))?;
        if let Some(p) = &r.pcode {
            lienthong_edxml::OrganId::parse(p)
                .map_err(|e| anyhow::anyhow!("{}: record {}: pcode: {e}", path.display(), i + 1))?;
        }
        if let Some(l) = &r.legacy_code {
            if !lienthong_edxml::legacy::is_legacy_code(l) {
                bail!(
                    "{}: record {} ({}): legacyCode `{l}` is not a 9-character code CC.BB.Lnn",
                    path.display(),
                    i + 1,
                    r.code
                );
            }
        }
        if let Some(s) = &r.successor {
            lienthong_edxml::OrganId::parse(s).map_err(|e| {
                anyhow::anyhow!("{}: record {}: successor: {e}", path.display(), i + 1)
            })?;
        }
        for (field, day) in [("validFrom", &r.valid_from), ("validTo", &r.valid_to)] {
            if let Some(d) = day {
                lienthong_edxml::EdxmlDate::parse(d).map_err(|e| {
                    anyhow::anyhow!("{}: record {}: {field}: {e}", path.display(), i + 1)
                })?;
            }
        }
        if r.name.trim().is_empty() {
            bail!(
                "{}: record {} ({}): name is empty",
                path.display(),
                i + 1,
                r.code
            );
        }
        let level = match r.level {
            Some(l) => l,
            None => Level::from_code_shape(&r.code).context("level cannot be derived")?,
        };
        out.push(Agency {
            code: r.code,
            name: r.name,
            pcode: r.pcode,
            level,
            state: r.state,
            email: r.email,
            phone: r.phone,
            address: r.address,
            receive_format: r.receive_format,
            legacy_code: r.legacy_code,
            valid_from: r.valid_from,
            valid_to: r.valid_to,
            successor: r.successor,
        });
    }
    Ok(out)
}

pub async fn import_registry(store: &Store, path: &Path) -> anyhow::Result<usize> {
    let agencies = read_registry(path)?;
    store.upsert_agencies(&agencies).await?;
    Ok(agencies.len())
}

/// A new random secret: 32 bytes from the OS, hex.
pub fn new_secret() -> anyhow::Result<String> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| anyhow::anyhow!("no randomness from the OS"))?;
    Ok(hex::encode(bytes))
}

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

/// The columns of a registry CSV file, in order (the `getAgenciesList` field names).
pub const CSV_COLUMNS: [&str; 13] = [
    "code",
    "name",
    "pcode",
    "level",
    "state",
    "validFrom",
    "validTo",
    "successor",
    "receiveFormat",
    "legacyCode",
    "email",
    "phone",
    "address",
];

/// Reads a registry file and checks every record, naming the first bad one: JSON (an array, or
/// a `getAgenciesList` answer with `data`), or CSV (`.csv`, a header row of [`CSV_COLUMNS`];
/// columns may be left out, empty cells are absent values).
pub fn read_registry(path: &Path) -> anyhow::Result<Vec<Agency>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let records: Vec<AgencyRecord> = if path.extension().is_some_and(|e| e == "csv") {
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes());
        reader
            .deserialize()
            .enumerate()
            .map(|(i, r)| r.with_context(|| format!("{}: row {}", path.display(), i + 2)))
            .collect::<anyhow::Result<_>>()?
    } else {
        let value: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", path.display()))?;
        let list = value.get("data").cloned().unwrap_or(value);
        serde_json::from_value(list)
            .with_context(|| format!("{}: expected an array of agencies", path.display()))?
    };
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

/// The registry as CSV, the columns of [`CSV_COLUMNS`].
pub fn registry_csv(agencies: &[Agency]) -> anyhow::Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(CSV_COLUMNS)?;
    for a in agencies {
        let o = |v: &Option<String>| v.clone().unwrap_or_default();
        w.write_record([
            a.code.clone(),
            a.name.clone(),
            o(&a.pcode),
            a.level.as_str().to_owned(),
            a.state.as_str().to_owned(),
            o(&a.valid_from),
            o(&a.valid_to),
            o(&a.successor),
            a.receive_format.as_str().to_owned(),
            o(&a.legacy_code),
            o(&a.email),
            o(&a.phone),
            o(&a.address),
        ])?;
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registry_goes_through_csv_and_back_and_a_bad_row_is_named() {
        let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/demo/agencies.json");
        let mut agencies = read_registry(&demo).expect("demo registry");
        agencies[0].valid_to = Some("2025/06/30".into());
        agencies[0].successor = Some(agencies[1].code.clone());
        agencies[0].address = Some("Số 1, đường \"Lê Lợi\", Huế".into());
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("agencies.csv");
        std::fs::write(&path, registry_csv(&agencies).expect("csv")).expect("write");
        assert_eq!(read_registry(&path).expect("csv registry"), agencies);

        // Columns may be left out; a bad code is reported with its row.
        std::fs::write(&path, "code,name\n000.00.00.H49,UBND tỉnh\nH49,Sai mã\n").expect("write");
        let err = format!("{:#}", read_registry(&path).expect_err("bad code"));
        assert!(err.contains("record 2") && err.contains("code"), "{err}");
        std::fs::write(&path, "code,name,level\n000.00.00.H49,UBND tỉnh,galaxy\n").expect("write");
        let err = format!("{:#}", read_registry(&path).expect_err("bad level"));
        assert!(err.contains("row 2"), "{err}");
    }
}

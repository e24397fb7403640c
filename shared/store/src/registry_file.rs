//! The registry file: the `getAgenciesList` shape as JSON, or CSV with the same field names;
//! every record checked, the first bad one named.

use crate::{Agency, AgencyState, Level};
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
    #[serde(default)]
    bus: Option<String>,
}

/// The columns of a registry CSV file, in order (the `getAgenciesList` field names).
pub const CSV_COLUMNS: [&str; 14] = [
    "code",
    "name",
    "pcode",
    "level",
    "state",
    "validFrom",
    "validTo",
    "successor",
    "bus",
    "receiveFormat",
    "legacyCode",
    "email",
    "phone",
    "address",
];

/// Why a registry file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RegistryFileError(pub String);

fn bad(message: String) -> RegistryFileError {
    RegistryFileError(message)
}

/// Reads a registry as JSON (an array, or a `getAgenciesList` answer with `data`).
pub fn registry_from_json(text: &str) -> Result<Vec<Agency>, RegistryFileError> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| bad(format!("not JSON: {e}")))?;
    let list = value.get("data").cloned().unwrap_or(value);
    let records: Vec<AgencyRecord> = serde_json::from_value(list)
        .map_err(|e| bad(format!("expected an array of agencies: {e}")))?;
    checked(records)
}

/// Reads a registry as CSV: a header row of [`CSV_COLUMNS`] (columns may be left out; empty
/// cells are absent values).
pub fn registry_from_csv(text: &str) -> Result<Vec<Agency>, RegistryFileError> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let records = reader
        .deserialize()
        .enumerate()
        .map(|(i, r)| r.map_err(|e| bad(format!("row {}: {e}", i + 2))))
        .collect::<Result<Vec<AgencyRecord>, _>>()?;
    checked(records)
}

fn checked(records: Vec<AgencyRecord>) -> Result<Vec<Agency>, RegistryFileError> {
    let mut out = Vec::with_capacity(records.len());
    for (i, r) in records.into_iter().enumerate() {
        let at = |field: &str, e: String| bad(format!("record {}: {field}: {e}", i + 1));
        lienthong_edxml::OrganId::parse(&r.code).map_err(|e| at("code", e.0))?;
        for (field, code) in [("pcode", &r.pcode), ("successor", &r.successor)] {
            if let Some(c) = code {
                lienthong_edxml::OrganId::parse(c).map_err(|e| at(field, e.0))?;
            }
        }
        if let Some(l) = &r.legacy_code
            && !lienthong_edxml::legacy::is_legacy_code(l)
        {
            return Err(at(
                "legacyCode",
                format!("`{l}` is not a 9-character code CC.BB.Lnn"),
            ));
        }
        for (field, day) in [("validFrom", &r.valid_from), ("validTo", &r.valid_to)] {
            if let Some(d) = day {
                lienthong_edxml::EdxmlDate::parse(d).map_err(|e| at(field, e.0))?;
            }
        }
        if let Some(b) = &r.bus
            && let Err(e) = check_bus_name(b)
        {
            return Err(at("bus", e));
        }
        if r.name.trim().is_empty() {
            return Err(at("name", "is empty".into()));
        }
        let level = match r.level {
            Some(l) => l,
            None => Level::from_code_shape(&r.code).ok_or_else(|| {
                at(
                    "level",
                    "is absent and cannot be derived from the code".into(),
                )
            })?,
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
            bus: r.bus,
        });
    }
    Ok(out)
}

/// The registry as CSV, the columns of [`CSV_COLUMNS`].
pub fn registry_csv(agencies: &[Agency]) -> String {
    // Writing to memory cannot fail.
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record(CSV_COLUMNS);
    for a in agencies {
        let o = |v: &Option<String>| v.clone().unwrap_or_default();
        let _ = w.write_record([
            a.code.clone(),
            a.name.clone(),
            o(&a.pcode),
            a.level.as_str().to_owned(),
            a.state.as_str().to_owned(),
            o(&a.valid_from),
            o(&a.valid_to),
            o(&a.successor),
            o(&a.bus),
            a.receive_format.as_str().to_owned(),
            o(&a.legacy_code),
            o(&a.email),
            o(&a.phone),
            o(&a.address),
        ]);
    }
    let bytes = w.into_inner().unwrap_or_default();
    String::from_utf8(bytes).unwrap_or_default()
}

/// A bus name names queues (`{prefix}.link.{bus}`) and appears in traces: 1 to 64 characters
/// from `a-z`, `0-9`, `-` and `_`.
pub fn check_bus_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a bus name (1 to 64 characters from a-z, 0-9, - and _)"
        ))
    }
}

//! The admin tool: the agency registry and connected systems, straight on the store.

use std::path::Path;

use anyhow::Context;
use lienthong_store::{Agency, Store};

use crate::config::Config;

/// Reads a registry file and checks every record, naming the first bad one: JSON (an array, or
/// a `getAgenciesList` answer with `data`), or CSV (`.csv`, a header row of the same field names;
/// columns may be left out, empty cells are absent values).
pub fn read_registry(path: &Path) -> anyhow::Result<Vec<Agency>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let read = if path.extension().is_some_and(|e| e == "csv") {
        lienthong_store::registry_from_csv(&text)
    } else {
        lienthong_store::registry_from_json(&text)
    };
    read.with_context(|| format!("{}", path.display()))
}

pub async fn import_registry(store: &Store, path: &Path) -> anyhow::Result<usize> {
    let agencies = read_registry(path)?;
    store.upsert_agencies(&agencies).await?;
    Ok(agencies.len())
}

/// A new random secret: 32 bytes from the OS, hex.
pub fn new_secret() -> anyhow::Result<String> {
    lienthong_store::new_secret().map_err(|_| anyhow::anyhow!("no randomness from the OS"))
}

/// Records what the admin tool changed in the ledger's audit log, as the gateway records what
/// operators change through the API: under the pseudo document `area` (`registry` or
/// `operations`), naming the person who ran it (`$SUDO_USER`, else `$USER`).
pub async fn record_audit(
    store: &Store,
    area: &str,
    organ: &str,
    detail: &str,
) -> anyhow::Result<()> {
    let who = std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "unknown".to_owned());
    let at_ms = lienthong_store::now_ms();
    let event = lienthong_store::LedgerEvent {
        event_id: format!("{area}:{area}:{}:{organ}", new_secret()?),
        doc_id: area.to_owned(),
        kind: area.to_owned(),
        organ: Some(organ.to_owned()),
        detail: Some(format!("{detail} ({who} with the admin tool)")),
        at_ms,
    };
    store
        .record_event(&event)
        .await
        .context("recording the change in the audit log")?;
    Ok(())
}

/// The management API client of `[amqp_adapters]`.
pub fn management(cfg: &Config) -> anyhow::Result<lienthong_bus::adapters::Management> {
    let a = cfg.amqp_adapters.as_ref().context(
        "no [amqp_adapters] in the configuration: say where RabbitMQ's management API is",
    )?;
    Ok(lienthong_bus::adapters::Management::new(
        a,
        &cfg.bus.url,
        &cfg.bus.prefix,
    )?)
}

/// The registry's systems, as adapter accounts see them.
pub async fn registered_systems(
    store: &Store,
) -> anyhow::Result<Vec<lienthong_bus::adapters::RegisteredSystem>> {
    Ok(store
        .systems()
        .await?
        .into_iter()
        .map(|s| lienthong_bus::adapters::RegisteredSystem {
            id: s.system_id,
            organs: s.organs,
            active: !s.locked,
        })
        .collect())
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
        std::fs::write(&path, lienthong_store::registry_csv(&agencies)).expect("write");
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

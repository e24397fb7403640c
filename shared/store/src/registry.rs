//! The agency registry (danh mục cơ quan) and the connected systems that act for agencies.

use crate::columns::Columns;
use std::fmt;
use std::str::FromStr;

use lienthong_edxml::Format;
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::{Store, StoreError, get_opt_string, now_ms, parse_format, sha256_hex, sql};

/// The four levels of government (cấp).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Central,
    Province,
    District,
    Commune,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Central => "central",
            Self::Province => "province",
            Self::District => "district",
            Self::Commune => "commune",
        }
    }

    /// The level the code's shape suggests when the registry file gives none: `G`nn owners are
    /// central agencies, other owners provincial; a non-zero `BB` group is a level-2 unit and a
    /// non-zero `CC` or `DDD` group a level-3/4 unit.
    pub fn from_code_shape(code: &str) -> Option<Self> {
        let parts: Vec<&str> = code.split('.').collect();
        let [ddd, cc, bb, owner] = parts.as_slice() else {
            return None;
        };
        let zero = |s: &str| s.bytes().all(|b| b == b'0');
        Some(if !zero(ddd) || !zero(cc) {
            Self::Commune
        } else if !zero(bb) {
            if owner.starts_with('G') {
                Self::Central
            } else {
                Self::District
            }
        } else if owner.starts_with('G') {
            Self::Central
        } else {
            Self::Province
        })
    }
}

impl FromStr for Level {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "central" => Ok(Self::Central),
            "province" => Ok(Self::Province),
            "district" => Ok(Self::District),
            "commune" => Ok(Self::Commune),
            other => Err(format!(
                "level `{other}` is not central, province, district or commune"
            )),
        }
    }
}

/// Whether an agency may receive documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AgencyState {
    #[default]
    Active,
    Locked,
    Retired,
}

impl AgencyState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Locked => "locked",
            Self::Retired => "retired",
        }
    }
}

impl FromStr for AgencyState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "active" => Ok(Self::Active),
            "locked" => Ok(Self::Locked),
            "retired" => Ok(Self::Retired),
            other => Err(format!("state `{other}` is not active, locked or retired")),
        }
    }
}

impl fmt::Display for AgencyState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One agency, in the shape of the `getAgenciesList` response (which is also the import format).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agency {
    pub code: String,
    pub name: String,
    /// Parent agency code; authoritative over what the code's shape suggests.
    #[serde(default)]
    pub pcode: Option<String>,
    pub level: Level,
    #[serde(default)]
    pub state: AgencyState,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub address: Option<String>,
    /// The format the agency's system receives packages in; the translator produces it.
    #[serde(default, rename = "receiveFormat")]
    pub receive_format: Format,
    /// The 9-character code (`CC.BB.Lnn`) e-doc.vn systems know the agency by.
    #[serde(
        default,
        rename = "legacyCode",
        skip_serializing_if = "Option::is_none"
    )]
    pub legacy_code: Option<String>,
    /// First day in service (`yyyy/MM/dd`); before it the agency receives nothing.
    #[serde(default, rename = "validFrom", skip_serializing_if = "Option::is_none")]
    pub valid_from: Option<String>,
    /// Last day in service (`yyyy/MM/dd`); after it the agency is retired.
    #[serde(default, rename = "validTo", skip_serializing_if = "Option::is_none")]
    pub valid_to: Option<String>,
    /// The agency that receives what is addressed to this one once it is retired (a merger:
    /// the 2025 reorganisation merged provinces and removed districts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub successor: Option<String>,
    /// The bus that serves the agency (its `federation.bus` name); absent: this bus.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bus: Option<String>,
}

impl Agency {
    /// An agency in service, served by this bus, receiving edXML, with nothing else known.
    pub fn new(code: &str, name: &str, level: Level) -> Agency {
        Agency {
            code: code.to_owned(),
            name: name.to_owned(),
            pcode: None,
            level,
            state: AgencyState::Active,
            email: None,
            phone: None,
            address: None,
            receive_format: Format::Edxml,
            legacy_code: None,
            valid_from: None,
            valid_to: None,
            successor: None,
            bus: None,
        }
    }

    /// The state on `day` (`yyyy/MM/dd`): retired after `validTo`, locked before `validFrom`.
    pub fn state_on(&self, day: &str) -> AgencyState {
        if self.valid_to.as_deref().is_some_and(|to| day > to) {
            AgencyState::Retired
        } else if self.valid_from.as_deref().is_some_and(|from| day < from) {
            AgencyState::Locked
        } else {
            self.state
        }
    }
}

/// The agencies at `level` under `ancestor` (through the registry's parent codes, `pcode`) that
/// are in service on `day`, in code order: whom a broadcast reaches.
pub fn descendants(agencies: &[Agency], ancestor: &str, level: Level, day: &str) -> Vec<String> {
    let parent = |code: &str| -> Option<&str> {
        agencies
            .iter()
            .find(|a| a.code == code)
            .and_then(|a| a.pcode.as_deref())
    };
    let mut out: Vec<String> = agencies
        .iter()
        .filter(|a| a.level == level && a.state_on(day) == AgencyState::Active)
        .filter(|a| {
            // Up the parents, a bounded number of steps (a registry cannot loop us forever).
            let mut at = a.pcode.as_deref();
            for _ in 0..8 {
                match at {
                    Some(p) if p == ancestor => return true,
                    Some(p) => at = parent(p),
                    None => return false,
                }
            }
            false
        })
        .map(|a| a.code.clone())
        .collect();
    out.sort();
    out
}

/// Today in Vietnam, `yyyy/MM/dd` (registry dates are written so).
pub fn today() -> String {
    let ts = lienthong_edxml::Timestamp::from_unix_ms(now_ms()).to_string();
    ts.split(' ').next().unwrap_or_default().to_owned()
}

/// Where a document addressed to an agency goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// The last agency of `chain` (the first is the one addressed; the others are successors)
    /// is in the registry, in `state`.
    Found {
        chain: Vec<String>,
        state: AgencyState,
    },
    /// The last agency of `chain` is not in the registry.
    Unknown { chain: Vec<String> },
}

/// A connected system: an agency's document-management system, authenticated by
/// `X-SystemId`/`X-SecretKey`, acting for a set of agencies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct System {
    pub system_id: String,
    pub name: String,
    pub organs: Vec<String>,
    pub locked: bool,
    /// SHA-256 (lowercase hex) of the DER of each client certificate bound to the system. When
    /// there is any, the system is admitted only over a TLS connection presenting one of them.
    #[serde(default)]
    pub certificates: Vec<String>,
}

impl System {
    pub fn acts_for(&self, organ: &str) -> bool {
        self.organs.iter().any(|o| o == organ)
    }

    /// Whether a connection that presented `certificate` (its SHA-256, `None` for none) may act
    /// as this system, `owner` being the system that certificate is bound to, if any.
    pub fn admits(&self, certificate: Option<&str>, owner: Option<&str>) -> Result<(), AuthError> {
        if let Some(owner) = owner.filter(|o| *o != self.system_id) {
            return Err(AuthError::CertificateOfAnotherSystem {
                owner: owner.to_owned(),
            });
        }
        if self.certificates.is_empty() {
            return Ok(());
        }
        match certificate {
            Some(c) if self.certificates.iter().any(|b| b == c) => Ok(()),
            Some(_) => Err(AuthError::CertificateNotBound),
            None => Err(AuthError::CertificateRequired),
        }
    }
}

/// Why a caller was not authenticated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("unknown system id or wrong secret key")]
    BadCredentials,
    #[error("this system is locked")]
    Locked,
    /// The system has client certificates bound and the connection presented none.
    #[error("this system is bound to client certificates and the connection presented none")]
    CertificateRequired,
    /// The system has client certificates bound and the connection presented another one.
    #[error("the connection's client certificate is not one bound to this system")]
    CertificateNotBound,
    /// The connection's certificate is bound to another system.
    #[error("the connection's client certificate is bound to system {owner}")]
    CertificateOfAnotherSystem { owner: String },
}

/// Why a certificate could not be bound to a system.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BindError {
    #[error("no system {0}")]
    UnknownSystem(String),
    #[error("this certificate is already bound to system {0}")]
    BoundToAnother(String),
}

/// Secrets are stored as SHA-256 of `system_id:secret`; secrets are long random tokens
/// generated by `lienthong admin system add`, so a fast hash does not weaken them.
fn secret_hash(system_id: &str, secret: &str) -> String {
    sha256_hex(format!("{system_id}:{secret}").as_bytes())
}

pub(crate) fn agency_from_row(row: &(impl Columns + ?Sized)) -> Result<Agency, StoreError> {
    Ok(Agency {
        code: row.text("code")?,
        name: row.text("name")?,
        pcode: get_opt_string(row, "pcode")?,
        level: row.text("level")?.parse().map_err(StoreError::Corrupt)?,
        state: row.text("state")?.parse().map_err(StoreError::Corrupt)?,
        email: get_opt_string(row, "email")?,
        phone: get_opt_string(row, "phone")?,
        address: get_opt_string(row, "address")?,
        receive_format: parse_format(row, "receive_format")?,
        legacy_code: get_opt_string(row, "legacy_code")?,
        valid_from: get_opt_string(row, "valid_from")?,
        valid_to: get_opt_string(row, "valid_to")?,
        successor: get_opt_string(row, "successor")?,
        bus: get_opt_string(row, "bus")?,
    })
}

pub(crate) const AGENCY_COLUMNS: &str = "code, name, pcode, level, state, email, phone, address, receive_format, legacy_code, valid_from, valid_to, successor, bus";

impl Store {
    /// Adds or replaces agencies (the registry import).
    pub async fn upsert_agencies(&self, agencies: &[Agency]) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        for a in agencies {
            sqlx::query(
                "INSERT INTO agencies (code, name, pcode, level, state, email, phone, address, updated_ms, receive_format, legacy_code,
                                       valid_from, valid_to, successor, bus)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
                 ON CONFLICT (code) DO UPDATE SET name = excluded.name, pcode = excluded.pcode,
                   level = excluded.level, state = excluded.state, email = excluded.email,
                   phone = excluded.phone, address = excluded.address, updated_ms = excluded.updated_ms,
                   receive_format = excluded.receive_format, legacy_code = excluded.legacy_code,
                   valid_from = excluded.valid_from, valid_to = excluded.valid_to, successor = excluded.successor,
                   bus = excluded.bus",
            )
            .bind(&a.code)
            .bind(&a.name)
            .bind(&a.pcode)
            .bind(a.level.as_str())
            .bind(a.state.as_str())
            .bind(&a.email)
            .bind(&a.phone)
            .bind(&a.address)
            .bind(now_ms())
            .bind(a.receive_format.as_str())
            .bind(&a.legacy_code)
            .bind(&a.valid_from)
            .bind(&a.valid_to)
            .bind(&a.successor)
            .bind(&a.bus)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Sets the format an agency receives; false when the code is unknown.
    pub async fn set_agency_format(&self, code: &str, format: Format) -> Result<bool, StoreError> {
        let done =
            sqlx::query("UPDATE agencies SET receive_format = $1, updated_ms = $2 WHERE code = $3")
                .bind(format.as_str())
                .bind(now_ms())
                .bind(code)
                .execute(&self.writer)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Merges agencies into `into`: each is retired with `into` as its successor, its last day
    /// `day`. Nothing changes unless every code (and `into`) is in the registry.
    pub async fn merge_agencies(
        &self,
        codes: &[&str],
        into: &str,
        day: &str,
    ) -> Result<Result<(), String>, StoreError> {
        let mut tx = self.begin().await?;
        for code in codes.iter().chain([&into]) {
            let found = sqlx::query("SELECT code FROM agencies WHERE code = $1")
                .bind(*code)
                .fetch_optional(&mut *tx)
                .await?;
            if found.is_none() {
                return Ok(Err(format!("no agency {code} in the registry")));
            }
        }
        if codes.contains(&into) {
            return Ok(Err(format!("{into} cannot be merged into itself")));
        }
        for code in codes {
            sqlx::query(
                "UPDATE agencies SET state = 'retired', successor = $1, valid_to = $2, updated_ms = $3 WHERE code = $4",
            )
            .bind(into)
            .bind(day)
            .bind(now_ms())
            .bind(*code)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(Ok(()))
    }

    /// Where a document addressed to `code` goes on `day`: the agency itself, or the successor
    /// a retired agency hands over to (followed through later mergers), with the chain taken.
    pub async fn resolve_recipient(&self, code: &str, day: &str) -> Result<Resolution, StoreError> {
        let mut chain = vec![code.to_owned()];
        let mut current = code.to_owned();
        loop {
            let Some(agency) = self.agency(&current).await? else {
                return Ok(Resolution::Unknown { chain });
            };
            let state = agency.state_on(day);
            match (state, agency.successor) {
                (AgencyState::Retired, Some(next)) if chain.len() < 8 && !chain.contains(&next) => {
                    chain.push(next.clone());
                    current = next;
                }
                (state, _) => return Ok(Resolution::Found { chain, state }),
            }
        }
    }

    /// Sets (or clears) an agency's 9-character e-doc.vn code; false when the code is unknown.
    pub async fn set_legacy_code(
        &self,
        code: &str,
        legacy: Option<&str>,
    ) -> Result<bool, StoreError> {
        let done =
            sqlx::query("UPDATE agencies SET legacy_code = $1, updated_ms = $2 WHERE code = $3")
                .bind(legacy)
                .bind(now_ms())
                .bind(code)
                .execute(&self.writer)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The registry's 9-character codes, both ways (for e-doc.vn packages).
    pub async fn code_map(&self) -> Result<lienthong_edxml::CodeMap, StoreError> {
        let rows = sqlx::query(
            "SELECT code, legacy_code FROM agencies WHERE legacy_code IS NOT NULL ORDER BY code",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut pairs = Vec::with_capacity(rows.len());
        for r in &rows {
            let code: String = r.try_get("code")?;
            let legacy: String = r.try_get("legacy_code")?;
            let organ = lienthong_edxml::OrganId::parse(&code)
                .map_err(|e| StoreError::Corrupt(format!("agency code {code}: {e}")))?;
            pairs.push((legacy, organ));
        }
        lienthong_edxml::CodeMap::new(pairs.iter().map(|(l, o)| (l.as_str(), o)))
            .map_err(|e| StoreError::Corrupt(e.0))
    }

    pub async fn agency(&self, code: &str) -> Result<Option<Agency>, StoreError> {
        Ok(self
            .groups
            .agencies
            .call(vec![code.to_owned()])
            .await?
            .into_iter()
            .next())
    }

    /// The agencies among `codes` that the registry knows.
    pub async fn agencies_in(&self, codes: &[&str]) -> Result<Vec<Agency>, StoreError> {
        if codes.is_empty() {
            return Ok(Vec::new());
        }
        self.groups
            .agencies
            .call(codes.iter().map(|c| (*c).to_owned()).collect())
            .await
    }

    pub async fn agencies(&self) -> Result<Vec<Agency>, StoreError> {
        sqlx::query(sql(format!(
            "SELECT {AGENCY_COLUMNS} FROM agencies ORDER BY code"
        )))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(agency_from_row)
        .collect()
    }

    /// Sets an agency's state; false when the code is unknown.
    pub async fn set_agency_state(
        &self,
        code: &str,
        state: AgencyState,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE agencies SET state = $1, updated_ms = $2 WHERE code = $3")
            .bind(state.as_str())
            .bind(now_ms())
            .bind(code)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Registers a connected system, or replaces its name, secret and agencies.
    pub async fn put_system(
        &self,
        system_id: &str,
        name: &str,
        secret: &str,
        organs: &[String],
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO systems (system_id, name, secret_hash, locked, created_ms) VALUES ($1, $2, $3, 0, $4)
             ON CONFLICT (system_id) DO UPDATE SET name = excluded.name, secret_hash = excluded.secret_hash",
        )
        .bind(system_id)
        .bind(name)
        .bind(secret_hash(system_id, secret))
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM system_organs WHERE system_id = $1")
            .bind(system_id)
            .execute(&mut *tx)
            .await?;
        for organ in organs {
            sqlx::query("INSERT INTO system_organs (system_id, organ_id) VALUES ($1, $2)")
                .bind(system_id)
                .bind(organ)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn set_system_locked(
        &self,
        system_id: &str,
        locked: bool,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE systems SET locked = $1 WHERE system_id = $2")
            .bind(i64::from(locked))
            .bind(system_id)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn remove_system(&self, system_id: &str) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM system_organs WHERE system_id = $1")
            .bind(system_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM system_certificates WHERE system_id = $1")
            .bind(system_id)
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query("DELETE FROM systems WHERE system_id = $1")
            .bind(system_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn system(&self, system_id: &str) -> Result<Option<System>, StoreError> {
        Ok(self.system_with_secret(system_id).await?.map(|(s, _)| s))
    }

    /// The system and its secret's hash, in one statement: every request a system makes is
    /// authenticated with it.
    async fn system_with_secret(
        &self,
        system_id: &str,
    ) -> Result<Option<(System, String)>, StoreError> {
        // One row per agency (one with none when it has none), then one per certificate. Every
        // request asks this, so on a SQLite file it is read in place.
        let text = "SELECT s.system_id, s.name, s.locked, s.secret_hash, 'organ' AS kind, \
                    o.organ_id AS value \
               FROM systems s LEFT JOIN system_organs o ON o.system_id = s.system_id \
              WHERE s.system_id = $1 \
             UNION ALL \
             SELECT s.system_id, s.name, s.locked, s.secret_hash, 'certificate', c.sha256 \
               FROM systems s JOIN system_certificates c ON c.system_id = s.system_id \
              WHERE s.system_id = $1";
        let rows = crate::read_rows(
            self.in_place.as_deref(),
            &self.pool,
            text.to_owned(),
            &[system_id],
            |row| {
                let system = System {
                    system_id: row.text("system_id")?,
                    name: row.text("name")?,
                    organs: Vec::new(),
                    locked: row.int("locked")? != 0,
                    certificates: Vec::new(),
                };
                let found = (row.text("kind")?, row.opt_text("value")?);
                Ok((system, row.text("secret_hash")?, found))
            },
        )
        .await?;
        let Some((first, secret_hash, _)) = rows.first().cloned() else {
            return Ok(None);
        };
        let mut system = first;
        for (_, _, (kind, value)) in rows {
            if let Some(value) = value {
                match kind.as_str() {
                    "organ" => system.organs.push(value),
                    _ => system.certificates.push(value),
                }
            }
        }
        system.organs.sort();
        system.certificates.sort();
        Ok(Some((system, secret_hash)))
    }

    /// Binds a client certificate (the SHA-256 of its DER, hex) to a system. Binding it again to
    /// the same system changes nothing.
    pub async fn bind_certificate(
        &self,
        system_id: &str,
        sha256: &str,
    ) -> Result<Result<(), BindError>, StoreError> {
        let sha256 = sha256.to_ascii_lowercase();
        let mut tx = self.begin().await?;
        let known = sqlx::query("SELECT system_id FROM systems WHERE system_id = $1")
            .bind(system_id)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if !known {
            return Ok(Err(BindError::UnknownSystem(system_id.to_owned())));
        }
        sqlx::query(
            "INSERT INTO system_certificates (sha256, system_id, added_ms) VALUES ($1, $2, $3)
             ON CONFLICT (sha256) DO NOTHING",
        )
        .bind(&sha256)
        .bind(system_id)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        let owner: String =
            sqlx::query("SELECT system_id FROM system_certificates WHERE sha256 = $1")
                .bind(&sha256)
                .fetch_one(&mut *tx)
                .await?
                .try_get("system_id")?;
        if owner != system_id {
            return Ok(Err(BindError::BoundToAnother(owner)));
        }
        tx.commit().await?;
        Ok(Ok(()))
    }

    /// Unbinds a client certificate from a system; false when it was not bound to it.
    pub async fn unbind_certificate(
        &self,
        system_id: &str,
        sha256: &str,
    ) -> Result<bool, StoreError> {
        let done =
            sqlx::query("DELETE FROM system_certificates WHERE system_id = $1 AND sha256 = $2")
                .bind(system_id)
                .bind(sha256.to_ascii_lowercase())
                .execute(&self.writer)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The system a client certificate is bound to.
    pub async fn certificate_owner(&self, sha256: &str) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query("SELECT system_id FROM system_certificates WHERE sha256 = $1")
                .bind(sha256)
                .fetch_optional(&self.pool)
                .await?
                .map(|r| r.try_get("system_id"))
                .transpose()?,
        )
    }

    pub async fn systems(&self) -> Result<Vec<System>, StoreError> {
        let ids: Vec<String> = sqlx::query("SELECT system_id FROM systems ORDER BY system_id")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| r.try_get("system_id"))
            .collect::<Result<_, _>>()?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(s) = self.system(&id).await? {
                out.push(s);
            }
        }
        Ok(out)
    }

    /// Checks `X-SystemId`/`X-SecretKey`, and the connection's client certificate (the SHA-256
    /// of its DER; `None` when it presented none or is not TLS) against the certificates bound to
    /// systems.
    pub async fn authenticate(
        &self,
        system_id: &str,
        secret: &str,
        certificate: Option<&str>,
    ) -> Result<Result<System, AuthError>, StoreError> {
        let Some((system, stored)) = self.system_with_secret(system_id).await? else {
            return Ok(Err(AuthError::BadCredentials));
        };
        let given = secret_hash(system_id, secret);
        // Comparing digests, not secrets: an attacker cannot steer the digest's bytes, so an
        // early-exit comparison reveals nothing useful about the secret.
        if stored != given {
            return Ok(Err(AuthError::BadCredentials));
        }
        // Whose the certificate is, unless it is one of this system's own.
        let owner = match certificate {
            Some(c) if !system.certificates.iter().any(|b| b == c) => {
                self.certificate_owner(c).await?
            }
            _ => None,
        };
        if let Err(e) = system.admits(certificate, owner.as_deref()) {
            return Ok(Err(e));
        }
        if system.locked {
            return Ok(Err(AuthError::Locked));
        }
        Ok(Ok(system))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_system_admits_its_own_certificates_and_no_other_systems() {
        let mut sys = System {
            system_id: "a".into(),
            name: "A".into(),
            organs: Vec::new(),
            locked: false,
            certificates: Vec::new(),
        };
        // Nothing bound: any certificate, or none; but never another system's.
        assert_eq!(sys.admits(None, None), Ok(()));
        assert_eq!(sys.admits(Some("x"), None), Ok(()));
        assert_eq!(
            sys.admits(Some("x"), Some("b")),
            Err(AuthError::CertificateOfAnotherSystem { owner: "b".into() })
        );
        sys.certificates = vec!["c1".into(), "c2".into()];
        assert_eq!(sys.admits(Some("c2"), Some("a")), Ok(()));
        assert_eq!(sys.admits(Some("c1"), None), Ok(()));
        assert_eq!(sys.admits(None, None), Err(AuthError::CertificateRequired));
        assert_eq!(
            sys.admits(Some("x"), None),
            Err(AuthError::CertificateNotBound)
        );
        assert_eq!(
            sys.admits(Some("x"), Some("b")),
            Err(AuthError::CertificateOfAnotherSystem { owner: "b".into() })
        );
    }

    #[test]
    fn a_broadcast_reaches_the_agencies_at_a_level_under_an_ancestor() {
        let a = |code: &str, level: Level, parent: Option<&str>| Agency {
            pcode: parent.map(str::to_owned),
            ..Agency::new(code, code, level)
        };
        let mut registry = vec![
            a("000.00.00.H49", Level::Province, None),
            a("000.00.05.H49", Level::District, Some("000.00.00.H49")),
            a("000.12.05.H49", Level::Commune, Some("000.00.05.H49")),
            a("000.13.05.H49", Level::Commune, Some("000.00.05.H49")),
            a("000.14.05.H49", Level::Commune, Some("000.00.05.H49")),
            a("000.00.00.H50", Level::Province, None),
            a("000.12.01.H50", Level::Commune, Some("000.00.00.H50")),
        ];
        registry[3].state = AgencyState::Locked;
        registry[4].valid_to = Some("2025/06/30".into());
        let day = "2026/12/02";
        assert_eq!(
            descendants(&registry, "000.00.00.H49", Level::Commune, day),
            ["000.12.05.H49"],
            "through the district; not the locked, the retired, or another province's"
        );
        assert_eq!(
            descendants(&registry, "000.00.00.H49", Level::District, day),
            ["000.00.05.H49"]
        );
        // A parent loop ends.
        registry[1].pcode = Some("000.12.05.H49".into());
        assert!(descendants(&registry, "000.00.00.H49", Level::Commune, day).is_empty());
    }

    #[test]
    fn level_follows_the_code_shape() {
        assert_eq!(
            Level::from_code_shape("000.00.00.G22"),
            Some(Level::Central)
        );
        assert_eq!(
            Level::from_code_shape("000.00.00.H49"),
            Some(Level::Province)
        );
        assert_eq!(
            Level::from_code_shape("000.00.05.H49"),
            Some(Level::District)
        );
        assert_eq!(
            Level::from_code_shape("000.12.05.H49"),
            Some(Level::Commune)
        );
        assert_eq!(
            Level::from_code_shape("000.00.05.G22"),
            Some(Level::Central)
        );
        assert_eq!(Level::from_code_shape("nonsense"), None);
    }
}

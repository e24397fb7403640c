//! Package bytes, stored content-addressed (by SHA-256) either as local files or in the database.
//! Local files are the embedded default; `db` suits several hosts sharing one PostgreSQL.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::StoreError;

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum BlobConfig {
    /// Files under `dir`, written to a temporary name, synced, then renamed.
    Files { dir: PathBuf },
    /// Rows of the `blobs` table, written in the acceptance transaction.
    Db,
}

impl Default for BlobConfig {
    fn default() -> Self {
        Self::Files {
            dir: PathBuf::from("data/blobs"),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Blobs {
    Files(PathBuf),
    Db,
}

impl Blobs {
    pub(crate) fn new(config: &BlobConfig) -> Result<Self, StoreError> {
        Ok(match config {
            BlobConfig::Files { dir } => {
                std::fs::create_dir_all(dir)?;
                Self::Files(dir.clone())
            }
            BlobConfig::Db => Self::Db,
        })
    }

    fn path(dir: &Path, key: &str) -> PathBuf {
        dir.join(&key[..2]).join(key)
    }

    /// Writes the bytes durably to a file; a no-op for `Db`, which writes inside the transaction.
    pub(crate) async fn put_file(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let Self::Files(dir) = self else {
            return Ok(());
        };
        let path = Self::path(dir, key);
        if tokio::fs::try_exists(&path).await? {
            return Ok(());
        }
        let bytes = bytes.to_vec();
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            let parent = path.parent().unwrap_or_else(|| Path::new("."));
            std::fs::create_dir_all(parent)?;
            let tmp = parent.join(format!(".{}.{}", uuid::Uuid::new_v4(), "tmp"));
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            // The rename is durable once the directory is synced.
            std::fs::File::open(parent)?.sync_all()?;
            Ok(())
        })
        .await
        .map_err(|e| StoreError::Blob(std::io::Error::other(e)))??;
        Ok(())
    }

    pub(crate) fn is_db(&self) -> bool {
        matches!(self, Self::Db)
    }

    pub(crate) async fn read_file(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let Self::Files(dir) = self else {
            return Ok(None);
        };
        match tokio::fs::read(Self::path(dir, key)).await {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

//! Package bytes on their way in, written to a file as they arrive (with their SHA-256 and size
//! counted on the way), so a large package is never held in memory; and package bytes on their
//! way out, read from the blob store as a [`Source`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use lienthong_edxml::source::{FileSource, Source};
use tokio::io::AsyncWriteExt;

use crate::{Store, StoreError};

/// The bytes of a document being accepted.
#[derive(Debug)]
pub enum Body {
    Bytes(Vec<u8>),
    /// Written to a file by [`SpoolWriter`]; moved into the blob store at acceptance.
    Spooled(Spooled),
}

impl Body {
    pub fn len(&self) -> u64 {
        match self {
            Self::Bytes(b) => b.len() as u64,
            Self::Spooled(s) => s.size,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn sha256(&self) -> String {
        match self {
            Self::Bytes(b) => crate::sha256_hex(b),
            Self::Spooled(s) => s.sha256.clone(),
        }
    }

    /// The bytes, read whole (for formats read in memory, and the `db` blob store).
    pub async fn read(&self) -> std::io::Result<Vec<u8>> {
        match self {
            Self::Bytes(b) => Ok(b.clone()),
            Self::Spooled(s) => tokio::fs::read(&s.path).await,
        }
    }

    /// The bytes as a source, without reading them.
    pub fn source(&self) -> std::io::Result<Arc<dyn Source>> {
        Ok(match self {
            Self::Bytes(b) => Arc::new(b.clone()),
            Self::Spooled(s) => Arc::new(FileSource::open(&s.path)?),
        })
    }
}

/// A spooled file: removed when dropped unless the blob store took it.
#[derive(Debug)]
pub struct Spooled {
    pub(crate) path: PathBuf,
    pub sha256: String,
    pub size: u64,
}

impl Spooled {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Spooled {
    fn drop(&mut self) {
        // Gone already when the blob store renamed it into place.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Writes a package to a spool file as it arrives.
pub struct SpoolWriter {
    file: tokio::fs::File,
    spooled: Option<Spooled>,
    digest: ring::digest::Context,
    limit: u64,
}

/// The package grew past the limit while it was being written.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("the package is larger than the {0} bytes this bus accepts")]
    TooLarge(u64),
    #[error("spooling the package: {0}")]
    Io(#[from] std::io::Error),
}

impl SpoolWriter {
    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), SpoolError> {
        let spooled = self
            .spooled
            .as_mut()
            .ok_or_else(|| std::io::Error::other("spool already finished"))?;
        spooled.size += chunk.len() as u64;
        if spooled.size > self.limit {
            return Err(SpoolError::TooLarge(self.limit));
        }
        self.digest.update(chunk);
        self.file.write_all(chunk).await?;
        Ok(())
    }

    /// Flushes and syncs the file: its bytes are durable before any row names them.
    pub async fn finish(mut self) -> Result<Spooled, SpoolError> {
        self.file.flush().await?;
        self.file.sync_all().await?;
        Ok(sealed(&mut self.spooled, &self.digest)?)
    }
}

/// The spooled file, its digest set: once.
fn sealed(
    spooled: &mut Option<Spooled>,
    digest: &ring::digest::Context,
) -> std::io::Result<Spooled> {
    let mut spooled = spooled
        .take()
        .ok_or_else(|| std::io::Error::other("spool already finished"))?;
    spooled.sha256 = hex::encode(digest.clone().finish());
    Ok(spooled)
}

/// A fresh spool file's name, and its record (removed when dropped unless stored).
fn fresh(dir: &std::path::Path) -> Spooled {
    Spooled {
        path: dir.join(format!("lienthong-spool-{}", uuid::Uuid::new_v4())),
        sha256: String::new(),
        size: 0,
    }
}

/// [`SpoolWriter`] for synchronous writers (a translation written on a blocking thread).
pub struct SyncSpoolWriter {
    file: std::io::BufWriter<std::fs::File>,
    spooled: Option<Spooled>,
    digest: ring::digest::Context,
}

impl std::io::Write for SyncSpoolWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.digest.update(&buf[..n]);
        if let Some(s) = self.spooled.as_mut() {
            s.size += n as u64;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

impl SyncSpoolWriter {
    /// Flushes and syncs the file.
    pub fn finish(mut self) -> std::io::Result<Spooled> {
        use std::io::Write as _;
        self.file.flush()?;
        self.file.get_ref().sync_all()?;
        sealed(&mut self.spooled, &self.digest)
    }
}

impl Store {
    /// A spool file written synchronously (see [`Store::spool`]).
    pub fn spool_sync(&self) -> Result<SyncSpoolWriter, StoreError> {
        let dir = self.blobs.spool_dir();
        std::fs::create_dir_all(&dir)?;
        let spooled = fresh(&dir);
        let file = std::fs::File::create(&spooled.path)?;
        Ok(SyncSpoolWriter {
            file: std::io::BufWriter::with_capacity(256 * 1024, file),
            spooled: Some(spooled),
            digest: ring::digest::Context::new(&ring::digest::SHA256),
        })
    }

    /// A spool file for an incoming package of at most `limit` bytes, next to the blob files when
    /// they are files (so accepting it is a rename), in the system's temporary directory
    /// otherwise.
    pub async fn spool(&self, limit: u64) -> Result<SpoolWriter, StoreError> {
        let dir = self.blobs.spool_dir();
        tokio::fs::create_dir_all(&dir).await?;
        let spooled = fresh(&dir);
        let file = tokio::fs::File::create(&spooled.path).await?;
        Ok(SpoolWriter {
            file,
            spooled: Some(spooled),
            digest: ring::digest::Context::new(&ring::digest::SHA256),
            limit,
        })
    }
}

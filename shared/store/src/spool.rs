//! Package bytes on their way in: held in memory while they are small, written to a file as
//! they arrive once they pass `store.inline_blob_bytes` (with their SHA-256 and size counted on
//! the way), so a large package is never held in memory and a small one costs no file; and
//! package bytes on their way out, read from the blob store as a [`Source`].

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use lienthong_edxml::source::{FileSource, Source};
use tokio::io::AsyncWriteExt;

use crate::{Store, StoreError};

/// The bytes of a document being accepted.
#[derive(Debug)]
pub enum Body {
    /// Small enough to hold: stored in the database with the row that names them.
    Bytes(Held),
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
            Self::Bytes(b) => b.sha256().to_owned(),
            Self::Spooled(s) => s.sha256.clone(),
        }
    }

    /// The bytes, read whole (for formats read in memory, and the `db` blob store).
    pub async fn read(&self) -> std::io::Result<Vec<u8>> {
        match self {
            Self::Bytes(b) => Ok(b.to_vec()),
            Self::Spooled(s) => tokio::fs::read(&s.path).await,
        }
    }

    /// The bytes as a source, without reading them.
    pub fn source(&self) -> std::io::Result<Arc<dyn Source>> {
        Ok(match self {
            Self::Bytes(b) => Arc::new(b.to_vec()),
            Self::Spooled(s) => Arc::new(FileSource::open(&s.path)?),
        })
    }

    /// The bytes as a source, without copying them. A spool file stays readable through the
    /// source after the body (and with it the file's name) is gone.
    pub fn into_source(self) -> std::io::Result<Arc<dyn Source>> {
        Ok(match self {
            Self::Bytes(b) => Arc::new(b.into_vec()),
            Self::Spooled(s) => Arc::new(FileSource::open(&s.path)?),
        })
    }
}

/// Bytes held in memory, with their SHA-256 once known: counted on the way in by the spool
/// writers, otherwise on the first ask, and never again. A package's digest names its blob,
/// is in its `accepted` event and checks it later; the gateway hashed each package three times
/// before (6 to 9% of its CPU under load).
#[derive(Debug, Clone)]
pub struct Held {
    bytes: Vec<u8>,
    sha256: OnceLock<String>,
}

impl Held {
    /// `bytes` whose digest was counted as they were written.
    fn counted(bytes: Vec<u8>, digest: &ring::digest::Context) -> Self {
        Self {
            bytes,
            sha256: OnceLock::from(hex_of(digest)),
        }
    }

    /// The SHA-256 of the bytes, in lowercase hex.
    pub fn sha256(&self) -> &str {
        self.sha256.get_or_init(|| crate::sha256_hex(&self.bytes))
    }

    pub fn into_vec(self) -> Vec<u8> {
        self.bytes
    }
}

impl From<Vec<u8>> for Held {
    fn from(bytes: Vec<u8>) -> Self {
        Self {
            bytes,
            sha256: OnceLock::new(),
        }
    }
}

impl std::ops::Deref for Held {
    type Target = Vec<u8>;

    fn deref(&self) -> &Vec<u8> {
        &self.bytes
    }
}

impl PartialEq for Held {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}

impl Eq for Held {}

impl PartialEq<Vec<u8>> for Held {
    fn eq(&self, other: &Vec<u8>) -> bool {
        &self.bytes == other
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
        // Gone already when the blob store renamed it into place, or never written when the
        // bytes stayed in memory.
        if !self.path.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Takes a package as it arrives: in memory up to the store's inline limit, then in a spool file.
pub struct SpoolWriter {
    held: Vec<u8>,
    file: Option<tokio::fs::File>,
    /// Where the file goes, made only once one is needed.
    dir: PathBuf,
    spooled: Spooled,
    digest: ring::digest::Context,
    limit: u64,
    inline: u64,
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
        self.spooled.size += chunk.len() as u64;
        if self.spooled.size > self.limit {
            return Err(SpoolError::TooLarge(self.limit));
        }
        self.digest.update(chunk);
        if self.file.is_none() && self.spooled.size <= self.inline {
            self.held.extend_from_slice(chunk);
            return Ok(());
        }
        if self.file.is_none() {
            // Past the inline limit: what was held goes to a file, and the rest after it.
            tokio::fs::create_dir_all(&self.dir).await?;
            let path = spool_file(&self.dir);
            let mut file = tokio::fs::File::create(&path).await?;
            self.spooled.path = path;
            file.write_all(&std::mem::take(&mut self.held)).await?;
            self.file = Some(file);
        }
        if let Some(file) = self.file.as_mut() {
            file.write_all(chunk).await?;
        }
        Ok(())
    }

    /// The package: the bytes themselves when they stayed small, otherwise the spool file,
    /// flushed and synced so its bytes are durable before any row names them.
    pub async fn finish(mut self) -> Result<Body, SpoolError> {
        let Some(mut file) = self.file.take() else {
            return Ok(Body::Bytes(Held::counted(
                std::mem::take(&mut self.held),
                &self.digest,
            )));
        };
        file.flush().await?;
        file.sync_all().await?;
        Ok(Body::Spooled(sealed(&mut self.spooled, &self.digest)))
    }
}

/// The spooled file with its digest set, taken from the writer (which then owns no file).
fn sealed(spooled: &mut Spooled, digest: &ring::digest::Context) -> Spooled {
    Spooled {
        // The writer's record keeps an empty name, so dropping it removes nothing.
        path: std::mem::take(&mut spooled.path),
        sha256: hex_of(digest),
        size: spooled.size,
    }
}

/// The digest of what a spool writer has been given so far, in lowercase hex.
fn hex_of(digest: &ring::digest::Context) -> String {
    hex::encode(digest.clone().finish())
}

/// A fresh spool file's name in `dir`.
fn spool_file(dir: &Path) -> PathBuf {
    dir.join(format!("lienthong-spool-{}", uuid::Uuid::new_v4()))
}

/// A writer's record before any file: bytes held in memory name no file, so that a small
/// package, the common case, costs no directory look-up, no file and no removal.
fn unwritten() -> Spooled {
    Spooled {
        path: PathBuf::new(),
        sha256: String::new(),
        size: 0,
    }
}

/// [`SpoolWriter`] for synchronous writers (a translation written on a blocking thread).
pub struct SyncSpoolWriter {
    held: Vec<u8>,
    file: Option<std::io::BufWriter<std::fs::File>>,
    /// Where the file goes, made only once one is needed.
    dir: PathBuf,
    spooled: Spooled,
    digest: ring::digest::Context,
    inline: u64,
}

impl std::io::Write for SyncSpoolWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.digest.update(buf);
        self.spooled.size += buf.len() as u64;
        if self.file.is_none() && self.spooled.size <= self.inline {
            self.held.extend_from_slice(buf);
            return Ok(buf.len());
        }
        if self.file.is_none() {
            std::fs::create_dir_all(&self.dir)?;
            let path = spool_file(&self.dir);
            let file = std::fs::File::create(&path)?;
            self.spooled.path = path;
            let mut file = std::io::BufWriter::with_capacity(256 * 1024, file);
            file.write_all(&std::mem::take(&mut self.held))?;
            self.file = Some(file);
        }
        if let Some(file) = self.file.as_mut() {
            file.write_all(buf)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self.file.as_mut() {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

impl SyncSpoolWriter {
    /// The bytes when they stayed small, otherwise the spool file, flushed and synced.
    pub fn finish(mut self) -> std::io::Result<Body> {
        use std::io::Write as _;
        let Some(mut file) = self.file.take() else {
            return Ok(Body::Bytes(Held::counted(
                std::mem::take(&mut self.held),
                &self.digest,
            )));
        };
        file.flush()?;
        file.get_ref().sync_all()?;
        Ok(Body::Spooled(sealed(&mut self.spooled, &self.digest)))
    }
}

impl Store {
    /// A spool written synchronously (see [`Store::spool`]).
    pub fn spool_sync(&self) -> Result<SyncSpoolWriter, StoreError> {
        Ok(SyncSpoolWriter {
            held: Vec::new(),
            file: None,
            dir: self.blobs.spool_dir(),
            spooled: unwritten(),
            digest: ring::digest::Context::new(&ring::digest::SHA256),
            inline: self.inline_blob_bytes,
        })
    }

    /// A spool for an incoming package of at most `limit` bytes: held in memory up to
    /// `store.inline_blob_bytes`, then in a file next to the blob files when they are files (so
    /// accepting it is a rename), in the system's temporary directory otherwise.
    pub async fn spool(&self, limit: u64) -> Result<SpoolWriter, StoreError> {
        Ok(SpoolWriter {
            held: Vec::new(),
            file: None,
            dir: self.blobs.spool_dir(),
            spooled: unwritten(),
            digest: ring::digest::Context::new(&ring::digest::SHA256),
            limit,
            inline: self.inline_blob_bytes,
        })
    }
}

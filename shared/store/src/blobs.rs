//! Package and rendition bytes, stored content-addressed (by SHA-256): as local files (the
//! embedded default), in an S3-compatible object store (MinIO, Ceph, AWS S3...), or in the
//! database itself. Files and S3 are [`ObjectStore`]s, written before the row that points at the
//! bytes commits; `db` writes the bytes inside the same transaction.

use std::fmt;
use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::StoreError;

#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum BlobConfig {
    /// Files under `dir`, written to a temporary name, synced, then renamed.
    Files { dir: PathBuf },
    /// Rows of the `blobs` table, written in the acceptance transaction.
    Db,
    /// Objects in a bucket of an S3-compatible store (path-style URLs, AWS Signature V4).
    S3 {
        /// `http://127.0.0.1:9000`, `https://s3.ap-southeast-1.amazonaws.com`...
        endpoint: String,
        bucket: String,
        #[serde(default = "default_region")]
        region: String,
        access_key: String,
        /// Overridden by the environment variable `LIENTHONG_S3_SECRET_KEY` when set.
        secret_key: String,
        /// Create the bucket at start when it does not exist (in the default region; create
        /// production buckets with the store's own tools).
        #[serde(default)]
        create_bucket: bool,
    },
}

fn default_region() -> String {
    "us-east-1".into()
}

impl fmt::Debug for BlobConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Files { dir } => f.debug_struct("Files").field("dir", dir).finish(),
            Self::Db => f.write_str("Db"),
            Self::S3 {
                endpoint, bucket, ..
            } => f
                .debug_struct("S3")
                .field("endpoint", endpoint)
                .field("bucket", bucket)
                .finish_non_exhaustive(),
        }
    }
}

impl Default for BlobConfig {
    fn default() -> Self {
        Self::Files {
            dir: PathBuf::from("data/blobs"),
        }
    }
}

/// What a blob store outside the database does. Keys are SHA-256 hex digests of the bytes, so a
/// `put` of a key already there changes nothing and may be skipped.
pub trait ObjectStore: Send + Sync + fmt::Debug {
    fn put<'a>(&'a self, key: &'a str, bytes: &'a [u8]) -> BoxFuture<'a, std::io::Result<()>>;
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, std::io::Result<Option<Vec<u8>>>>;

    /// Stores the content of a local file (a spooled package), which the store may move. The
    /// default reads it whole; stores that can stream or rename do better.
    fn put_path<'a>(&'a self, key: &'a str, path: &'a Path) -> BoxFuture<'a, std::io::Result<()>> {
        Box::pin(async move {
            let bytes = tokio::fs::read(path).await?;
            self.put(key, &bytes).await
        })
    }

    /// Where the object is as a local file, if the store keeps local files.
    fn local_path(&self, _key: &str) -> Option<PathBuf> {
        None
    }

    /// Writes the object to a local file; false when there is no such object. The default
    /// reads it whole; stores that can stream do better.
    fn get_to_file<'a>(
        &'a self,
        key: &'a str,
        path: &'a Path,
    ) -> BoxFuture<'a, std::io::Result<bool>> {
        Box::pin(async move {
            match self.get(key).await? {
                Some(bytes) => {
                    tokio::fs::write(path, bytes).await?;
                    Ok(true)
                }
                None => Ok(false),
            }
        })
    }
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

#[derive(Debug, Clone)]
pub(crate) enum Blobs {
    Objects(Arc<dyn ObjectStore>),
    Db,
}

impl Blobs {
    pub(crate) async fn new(config: &BlobConfig) -> Result<Self, StoreError> {
        Ok(match config {
            BlobConfig::Files { dir } => {
                std::fs::create_dir_all(dir)?;
                Self::Objects(Arc::new(Files(dir.clone())))
            }
            BlobConfig::Db => Self::Db,
            BlobConfig::S3 {
                endpoint,
                bucket,
                region,
                access_key,
                secret_key,
                create_bucket,
            } => {
                let secret =
                    std::env::var("LIENTHONG_S3_SECRET_KEY").unwrap_or_else(|_| secret_key.clone());
                let s3 = S3::new(endpoint, bucket, region, access_key, &secret)?;
                s3.check_bucket(*create_bucket).await?;
                Self::Objects(Arc::new(s3))
            }
        })
    }

    /// Writes the bytes durably before the row that names them; a no-op for `Db`, which writes
    /// inside the transaction.
    pub(crate) async fn put_file(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        match self {
            Self::Objects(store) => Ok(store.put(key, bytes).await?),
            Self::Db => Ok(()),
        }
    }

    pub(crate) fn is_db(&self) -> bool {
        matches!(self, Self::Db)
    }

    pub(crate) async fn read_file(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match self {
            Self::Objects(store) => Ok(store.get(key).await?),
            Self::Db => Ok(None),
        }
    }

    /// Where incoming packages are spooled: beside the blob files when they are files (so
    /// storing one is a rename).
    pub(crate) fn spool_dir(&self) -> PathBuf {
        match self {
            Self::Objects(store) => store
                .local_path("00")
                .and_then(|p| p.parent().and_then(Path::parent).map(|d| d.join(".spool")))
                .unwrap_or_else(std::env::temp_dir),
            Self::Db => std::env::temp_dir(),
        }
    }

    /// Stores a spooled file under `key` (a no-op for `Db`, which writes in the transaction).
    pub(crate) async fn adopt(&self, key: &str, path: &Path) -> Result<(), StoreError> {
        match self {
            Self::Objects(store) => Ok(store.put_path(key, path).await?),
            Self::Db => Ok(()),
        }
    }

    /// The object as a readable source: the file itself for local files; otherwise a local copy
    /// made without holding it (unlinked at once, so it goes with the last handle).
    pub(crate) async fn source(
        &self,
        key: &str,
    ) -> Result<Option<Arc<dyn lienthong_edxml::source::Source>>, StoreError> {
        use lienthong_edxml::source::FileSource;
        let Self::Objects(store) = self else {
            return Ok(None);
        };
        if let Some(path) = store.local_path(key) {
            return match FileSource::open(&path) {
                Ok(f) => Ok(Some(Arc::new(f))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e.into()),
            };
        }
        let copy = std::env::temp_dir().join(format!("lienthong-copy-{}", uuid::Uuid::new_v4()));
        let found = store.get_to_file(key, &copy).await;
        let opened = match found {
            Ok(true) => FileSource::open(&copy).map(Some),
            Ok(false) => Ok(None),
            Err(e) => Err(e),
        };
        let _ = std::fs::remove_file(&copy);
        Ok(opened?.map(|f| Arc::new(f) as Arc<dyn lienthong_edxml::source::Source>))
    }
}

/// Local files: `dir/ab/abcdef...`.
#[derive(Debug)]
struct Files(PathBuf);

impl Files {
    fn path(&self, key: &str) -> PathBuf {
        self.0.join(&key[..2.min(key.len())]).join(key)
    }
}

/// Syncs a directory, so that a rename into it is durable.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

impl ObjectStore for Files {
    fn put<'a>(&'a self, key: &'a str, bytes: &'a [u8]) -> BoxFuture<'a, std::io::Result<()>> {
        Box::pin(async move {
            let path = self.path(key);
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
                sync_dir(parent)
            })
            .await
            .map_err(std::io::Error::other)?
        })
    }

    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, std::io::Result<Option<Vec<u8>>>> {
        Box::pin(async move {
            match tokio::fs::read(self.path(key)).await {
                Ok(b) => Ok(Some(b)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e),
            }
        })
    }

    fn put_path<'a>(&'a self, key: &'a str, from: &'a Path) -> BoxFuture<'a, std::io::Result<()>> {
        Box::pin(async move {
            let path = self.path(key);
            if tokio::fs::try_exists(&path).await? {
                return Ok(());
            }
            let parent = path.parent().unwrap_or_else(|| Path::new(".")).to_owned();
            tokio::fs::create_dir_all(&parent).await?;
            // The spool file was synced; a rename on the same file system makes it the blob.
            tokio::fs::rename(from, &path).await?;
            tokio::task::spawn_blocking(move || sync_dir(&parent))
                .await
                .map_err(std::io::Error::other)?
        })
    }

    fn local_path(&self, key: &str) -> Option<PathBuf> {
        Some(self.path(key))
    }
}

/// An S3-compatible bucket, spoken to with presigned requests (AWS Signature V4).
struct S3 {
    http: reqwest::Client,
    bucket: rusty_s3::Bucket,
    credentials: rusty_s3::Credentials,
}

impl fmt::Debug for S3 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3")
            .field("bucket", &self.bucket.name())
            .field("endpoint", &self.bucket.base_url().as_str())
            .finish_non_exhaustive()
    }
}

/// How long a presigned request stays valid: it is sent at once.
const SIGNED_FOR: Duration = Duration::from_secs(300);

fn s3_error(what: &str, e: impl fmt::Display) -> std::io::Error {
    std::io::Error::other(format!("S3 {what}: {e}"))
}

impl S3 {
    fn new(
        endpoint: &str,
        bucket: &str,
        region: &str,
        access_key: &str,
        secret_key: &str,
    ) -> Result<Self, StoreError> {
        let url = endpoint
            .parse()
            .map_err(|e| StoreError::Corrupt(format!("store.blobs.endpoint `{endpoint}`: {e}")))?;
        let bucket = rusty_s3::Bucket::new(
            url,
            rusty_s3::UrlStyle::Path,
            bucket.to_owned(),
            region.to_owned(),
        )
        .map_err(|e| StoreError::Corrupt(format!("store.blobs.bucket `{bucket}`: {e}")))?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(600))
            .build()
            .map_err(|e| StoreError::Blob(s3_error("client", e)))?;
        Ok(Self {
            http,
            bucket,
            credentials: rusty_s3::Credentials::new(access_key, secret_key),
        })
    }

    /// Checks the bucket answers (and creates it when asked to and it is missing), so a wrong
    /// endpoint, bucket or key is reported at start, not at the first package.
    async fn check_bucket(&self, create: bool) -> Result<(), StoreError> {
        use rusty_s3::S3Action as _;
        let url = self
            .bucket
            .head_bucket(Some(&self.credentials))
            .sign(SIGNED_FOR);
        let status = self
            .http
            .head(url)
            .send()
            .await
            .map_err(|e| StoreError::Blob(s3_error("HEAD bucket", e)))?
            .status();
        if status.is_success() {
            return Ok(());
        }
        if status == reqwest::StatusCode::NOT_FOUND && create {
            let url = self
                .bucket
                .create_bucket(&self.credentials)
                .sign(SIGNED_FOR);
            let resp = self
                .http
                .put(url)
                .header(reqwest::header::CONTENT_LENGTH, 0)
                .send()
                .await
                .map_err(|e| StoreError::Blob(s3_error("create bucket", e)))?;
            if resp.status().is_success() {
                return Ok(());
            }
            return Err(StoreError::Blob(s3_error(
                "create bucket",
                format!("HTTP {}", resp.status()),
            )));
        }
        Err(StoreError::Blob(s3_error(
            &format!("bucket {}", self.bucket.name()),
            format!("HTTP {status} (missing, or the keys may not use it)"),
        )))
    }
}

/// The object requests the store makes.
#[derive(Clone, Copy)]
enum Op {
    Head,
    Get,
    Put,
}

impl S3 {
    /// Sends a presigned request about object `key`.
    async fn request(
        &self,
        op: Op,
        key: &str,
        body: Option<(reqwest::Body, u64)>,
    ) -> std::io::Result<reqwest::Response> {
        use rusty_s3::S3Action as _;
        let c = Some(&self.credentials);
        let (what, request) = match op {
            Op::Head => (
                "HEAD",
                self.http
                    .head(self.bucket.head_object(c, key).sign(SIGNED_FOR)),
            ),
            Op::Get => (
                "GET",
                self.http
                    .get(self.bucket.get_object(c, key).sign(SIGNED_FOR)),
            ),
            Op::Put => (
                "PUT",
                self.http
                    .put(self.bucket.put_object(c, key).sign(SIGNED_FOR)),
            ),
        };
        let request = match body {
            Some((body, len)) => request
                .header(reqwest::header::CONTENT_LENGTH, len)
                .body(body),
            None => request,
        };
        let resp = request.send().await.map_err(|e| s3_error(what, e))?;
        let status = resp.status();
        if status.is_success()
            || (status == reqwest::StatusCode::NOT_FOUND && !matches!(op, Op::Put))
        {
            Ok(resp)
        } else {
            Err(s3_error(what, format!("{key}: HTTP {status}")))
        }
    }

    /// Content-addressed: an object already there holds these very bytes.
    async fn exists(&self, key: &str) -> std::io::Result<bool> {
        Ok(self
            .request(Op::Head, key, None)
            .await?
            .status()
            .is_success())
    }
}

impl ObjectStore for S3 {
    fn put<'a>(&'a self, key: &'a str, bytes: &'a [u8]) -> BoxFuture<'a, std::io::Result<()>> {
        Box::pin(async move {
            if !self.exists(key).await? {
                let body = reqwest::Body::from(bytes.to_vec());
                self.request(Op::Put, key, Some((body, bytes.len() as u64)))
                    .await?;
            }
            Ok(())
        })
    }

    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, std::io::Result<Option<Vec<u8>>>> {
        Box::pin(async move {
            let resp = self.request(Op::Get, key, None).await?;
            if resp.status() == reqwest::StatusCode::NOT_FOUND {
                return Ok(None);
            }
            let bytes = resp.bytes().await.map_err(|e| s3_error("GET body", e))?;
            Ok(Some(bytes.to_vec()))
        })
    }

    fn put_path<'a>(&'a self, key: &'a str, path: &'a Path) -> BoxFuture<'a, std::io::Result<()>> {
        Box::pin(async move {
            if !self.exists(key).await? {
                // Streamed from the file: the package is never held.
                let file = tokio::fs::File::open(path).await?;
                let len = file.metadata().await?.len();
                self.request(Op::Put, key, Some((reqwest::Body::from(file), len)))
                    .await?;
            }
            Ok(())
        })
    }

    fn get_to_file<'a>(
        &'a self,
        key: &'a str,
        path: &'a Path,
    ) -> BoxFuture<'a, std::io::Result<bool>> {
        Box::pin(async move {
            use tokio::io::AsyncWriteExt as _;
            let mut resp = self.request(Op::Get, key, None).await?;
            if resp.status() == reqwest::StatusCode::NOT_FOUND {
                return Ok(false);
            }
            let mut file = tokio::fs::File::create(path).await?;
            while let Some(chunk) = resp.chunk().await.map_err(|e| s3_error("GET body", e))? {
                file.write_all(&chunk).await?;
            }
            file.flush().await?;
            Ok(true)
        })
    }
}

//! A client for the bus's REST interface, as an agency adapter uses it. The CLI and the
//! end-to-end tests speak to the gateway only through this.

use base64::Engine;
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The bus answered `success:false`.
    #[error("error {code}: {desc} (HTTP {http})")]
    Api { code: i64, desc: String, http: u16 },
    #[error("could not reach the bus: {0}")]
    Transport(#[from] reqwest::Error),
    #[error("unexpected answer from the bus: {0}")]
    Unexpected(String),
}

impl ClientError {
    /// The bus's error code, if the bus answered.
    pub fn code(&self) -> Option<i64> {
        match self {
            Self::Api { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// A fetched package: the exact bytes and the summary the bus gave with them.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub bytes: Vec<u8>,
    pub summary: Value,
}

#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    system_id: String,
    secret: String,
}

/// HTTPS settings for a gateway that serves TLS itself: the CA that issued its certificate
/// (added to the system's roots) and this system's client certificate, for gateways that ask
/// for one. Files are PEM.
#[derive(Debug, Clone, Default)]
pub struct Tls {
    pub ca_file: Option<std::path::PathBuf>,
    /// Certificate (with its chain) and private key.
    pub identity: Option<(std::path::PathBuf, std::path::PathBuf)>,
}

impl Tls {
    /// An HTTP client with these settings; an unreadable file is named.
    pub fn http_client(&self) -> Result<reqwest::Client, ClientError> {
        let read = |what: &str, p: &std::path::Path| {
            std::fs::read(p)
                .map_err(|e| ClientError::Unexpected(format!("{what} {}: {e}", p.display())))
        };
        let mut builder = reqwest::Client::builder().use_rustls_tls();
        if let Some(ca) = &self.ca_file {
            for cert in reqwest::Certificate::from_pem_bundle(&read("CA file", ca)?)? {
                builder = builder.add_root_certificate(cert);
            }
        }
        if let Some((cert, key)) = &self.identity {
            let mut pem = read("certificate file", cert)?;
            pem.push(b'\n');
            pem.extend(read("key file", key)?);
            builder = builder.identity(reqwest::Identity::from_pem(&pem)?);
        }
        Ok(builder.build()?)
    }
}

impl Client {
    pub fn new(base_url: &str, system_id: &str, secret: &str) -> Self {
        Self::with_http(base_url, system_id, secret, reqwest::Client::new())
    }

    /// A client over `http` (see [`Tls::http_client`]).
    pub fn with_http(base_url: &str, system_id: &str, secret: &str, http: reqwest::Client) -> Self {
        Self {
            http,
            base: base_url.trim_end_matches('/').to_owned(),
            system_id: system_id.to_owned(),
            secret: secret.to_owned(),
        }
    }

    fn auth(&self, rb: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        rb.header("X-SystemId", &self.system_id)
            .header("X-SecretKey", &self.secret)
    }

    async fn answer(resp: reqwest::Response) -> Result<Value, ClientError> {
        let http = resp.status().as_u16();
        let body: Value = resp
            .json()
            .await
            .map_err(|e| ClientError::Unexpected(format!("HTTP {http}, body is not JSON: {e}")))?;
        if body.get("success").and_then(Value::as_bool) == Some(true) {
            Ok(body)
        } else {
            let data = body.get("data").cloned().unwrap_or_default();
            Err(ClientError::Api {
                code: data.get("errorCode").and_then(Value::as_i64).unwrap_or(-1),
                desc: data
                    .get("errorDesc")
                    .and_then(Value::as_str)
                    .unwrap_or("no description")
                    .to_owned(),
                http,
            })
        }
    }

    async fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, ClientError> {
        let resp = self
            .auth(self.http.get(format!("{}{path}", self.base)))
            .query(query)
            .send()
            .await?;
        Self::answer(resp).await
    }

    /// `sendEdoc`; returns the `docId`.
    pub async fn send(&self, package: Vec<u8>, message_type: &str) -> Result<String, ClientError> {
        self.send_as(package, message_type, "edxml").await
    }

    /// `sendEdoc` with a package in another XML format (`govn`); returns the `docId`.
    pub async fn send_as(
        &self,
        package: Vec<u8>,
        message_type: &str,
        format: &str,
    ) -> Result<String, ClientError> {
        let form = reqwest::multipart::Form::new()
            .text("messageType", message_type.to_owned())
            .text("format", format.to_owned())
            .part(
                "edocFile",
                reqwest::multipart::Part::bytes(package)
                    .file_name("package.edxml")
                    .mime_str("application/xml")?,
            );
        let resp = self
            .auth(self.http.post(format!("{}/v1/sendEdoc", self.base)))
            .multipart(form)
            .send()
            .await?;
        let body = Self::answer(resp).await?;
        body.get("docId")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| ClientError::Unexpected("no docId in the answer".into()))
    }

    /// `getReceivedEdocList`; `extra` adds `fromDate`, `toDate`, `status`.
    pub async fn inbox(
        &self,
        message_type: &str,
        extra: &[(&str, &str)],
    ) -> Result<Vec<Value>, ClientError> {
        let mut query = vec![("messageType", message_type)];
        query.extend_from_slice(extra);
        let body = self.get("/v1/getReceivedEdocList", &query).await?;
        Ok(data_rows(&body))
    }

    /// `getEdoc`: the package bytes exactly as sent.
    pub async fn fetch(&self, doc_id: &str) -> Result<Fetched, ClientError> {
        let body = self.get("/v1/getEdoc", &[("docId", doc_id)]).await?;
        let summary = body.get("data").cloned().unwrap_or_default();
        let b64 = summary
            .get("edxml")
            .and_then(Value::as_str)
            .ok_or_else(|| ClientError::Unexpected("no edxml in the answer".into()))?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| ClientError::Unexpected(format!("edxml is not base64: {e}")))?;
        Ok(Fetched { bytes, summary })
    }

    /// `sendEdoc` of a file, streamed from disk (a large package is never held); returns the
    /// `docId`. A JSON package goes through the JSON interface.
    pub async fn send_file(
        &self,
        path: &std::path::Path,
        message_type: &str,
        format: &str,
    ) -> Result<String, ClientError> {
        let file = tokio::fs::File::open(path)
            .await
            .map_err(|e| ClientError::Unexpected(format!("reading {}: {e}", path.display())))?;
        let len = file
            .metadata()
            .await
            .map_err(|e| ClientError::Unexpected(format!("reading {}: {e}", path.display())))?
            .len();
        let resp = if format == "json" {
            self.auth(self.http.post(format!("{}/json/v1/packages", self.base)))
                .header("Content-Type", "application/json")
                .header("Content-Length", len)
                .body(reqwest::Body::from(file))
                .send()
                .await?
        } else {
            let form = reqwest::multipart::Form::new()
                .text("messageType", message_type.to_owned())
                .text("format", format.to_owned())
                .part(
                    "edocFile",
                    reqwest::multipart::Part::stream_with_length(reqwest::Body::from(file), len)
                        .file_name("package.edxml")
                        .mime_str("application/xml")?,
                );
            self.auth(self.http.post(format!("{}/v1/sendEdoc", self.base)))
                .multipart(form)
                .send()
                .await?
        };
        let body = Self::answer(resp).await?;
        body.get("docId")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| ClientError::Unexpected("no docId in the answer".into()))
    }

    /// `getEdocFile`: the package (or the caller's rendition) written to `path` as it arrives;
    /// returns its format and SHA-256 as the bus gives them, and its size.
    pub async fn fetch_file(
        &self,
        doc_id: &str,
        rendition: bool,
        path: &std::path::Path,
    ) -> Result<(String, String, u64), ClientError> {
        use tokio::io::AsyncWriteExt as _;
        let mut resp = self
            .auth(self.http.get(format!("{}/v1/getEdocFile", self.base)))
            .query(&[
                ("docId", doc_id),
                ("rendition", if rendition { "true" } else { "false" }),
            ])
            .send()
            .await?;
        if !resp.status().is_success() {
            return Self::answer(resp).await.and_then(|_| {
                Err(ClientError::Unexpected(
                    "the bus answered without the package".into(),
                ))
            });
        }
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        let (format, sha256) = (header("x-format"), header("x-sha256"));
        let io =
            |e: std::io::Error| ClientError::Unexpected(format!("writing {}: {e}", path.display()));
        let mut file = tokio::fs::File::create(path).await.map_err(io)?;
        let mut size = 0u64;
        while let Some(chunk) = resp.chunk().await? {
            size += chunk.len() as u64;
            file.write_all(&chunk).await.map_err(io)?;
        }
        file.flush().await.map_err(io)?;
        Ok((format, sha256, size))
    }

    /// `POST /json/v1/packages`: a JSON package; returns the `docId` and whether it was accepted
    /// before.
    pub async fn send_json(&self, package: Vec<u8>) -> Result<(String, bool), ClientError> {
        let resp = self
            .auth(self.http.post(format!("{}/json/v1/packages", self.base)))
            .header("Content-Type", "application/json")
            .body(package)
            .send()
            .await?;
        let body = Self::answer(resp).await?;
        let doc_id = body
            .get("docId")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| ClientError::Unexpected("no docId in the answer".into()))?;
        let duplicate = body.get("duplicate").and_then(Value::as_bool) == Some(true);
        Ok((doc_id, duplicate))
    }

    /// `GET /json/v1/packages/{docId}`: the package in the caller's format with the original.
    pub async fn fetch_json(&self, doc_id: &str) -> Result<Value, ClientError> {
        let body = self
            .get(&format!("/json/v1/packages/{doc_id}"), &[])
            .await?;
        Ok(body.get("data").cloned().unwrap_or_default())
    }

    /// `updateStatus`: transport status of the caller's copy.
    pub async fn update_status(&self, doc_id: &str, status: &str) -> Result<(), ClientError> {
        let resp = self
            .auth(self.http.post(format!("{}/v1/updateStatus", self.base)))
            .json(&serde_json::json!({ "docId": doc_id, "status": status }))
            .send()
            .await?;
        Self::answer(resp).await.map(|_| ())
    }

    /// `getSentEdocList`: one row per recipient.
    pub async fn sent(&self, doc_id: Option<&str>) -> Result<Vec<Value>, ClientError> {
        let query: Vec<(&str, &str)> = doc_id.map(|d| vec![("docId", d)]).unwrap_or_default();
        let body = self.get("/v1/getSentEdocList", &query).await?;
        Ok(data_rows(&body))
    }

    pub async fn agencies(&self) -> Result<Vec<Value>, ClientError> {
        Ok(data_rows(&self.get("/v1/getAgenciesList", &[]).await?))
    }

    /// `getTrace`: the document's lifecycle events.
    pub async fn trace(&self, doc_id: &str) -> Result<Vec<Value>, ClientError> {
        Ok(data_rows(
            &self.get("/v1/getTrace", &[("docId", doc_id)]).await?,
        ))
    }
}

fn data_rows(body: &Value) -> Vec<Value> {
    body.get("data")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

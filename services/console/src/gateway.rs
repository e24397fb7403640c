//! The gateway's `/admin` API, as the console uses it: with the operator or the security
//! officer token, naming the signed-in person in `X-Lienthong-Actor` so the audit log records
//! who acted. The console keeps no document data of its own.

use std::time::Duration;

use serde_json::Value;

/// Which of the console's tokens a call presents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum As {
    Operator,
    Security,
}

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("the gateway at {url} did not answer: {why}")]
    Unreachable { url: String, why: String },
    /// The gateway's own error, with its HTTP status and its `errorDesc`.
    #[error("{message}")]
    Refused { status: u16, message: String },
    #[error("the console has no {0} token (console.{0}_token)")]
    NoToken(&'static str),
}

impl GatewayError {
    pub fn status(&self) -> u16 {
        match self {
            GatewayError::Refused { status, .. } => *status,
            GatewayError::NoToken(_) => 403,
            GatewayError::Unreachable { .. } => 502,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Gateway {
    http: reqwest::Client,
    base: String,
    operator_token: Option<String>,
    security_token: Option<String>,
}

impl Gateway {
    /// The gateway at `base`, over `http` (with the CA and client certificate for a gateway
    /// serving HTTPS itself).
    pub fn new(
        base: &str,
        http: reqwest::Client,
        operator_token: Option<String>,
        security_token: Option<String>,
    ) -> Self {
        Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            operator_token,
            security_token,
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    fn request(
        &self,
        method: reqwest::Method,
        who: As,
        actor: &str,
        path: &str,
    ) -> Result<reqwest::RequestBuilder, GatewayError> {
        let token = match who {
            As::Operator => self
                .operator_token
                .as_deref()
                .ok_or(GatewayError::NoToken("operator"))?,
            As::Security => self
                .security_token
                .as_deref()
                .ok_or(GatewayError::NoToken("security"))?,
        };
        let headers = lienthong_telemetry::current_context_headers();
        let mut r = self
            .http
            .request(method, format!("{}{path}", self.base))
            .timeout(Duration::from_secs(30))
            .header(reqwest::header::USER_AGENT, "lienthong-console")
            .bearer_auth(token)
            .header("x-lienthong-actor", actor);
        for (k, v) in headers {
            r = r.header(k, v);
        }
        Ok(r)
    }

    async fn send(&self, r: reqwest::RequestBuilder) -> Result<reqwest::Response, GatewayError> {
        let response = r.send().await.map_err(|e| GatewayError::Unreachable {
            url: self.base.clone(),
            why: e.without_url().to_string(),
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let text = response.text().await.unwrap_or_default();
        let message = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v["data"]["errorDesc"].as_str().map(str::to_owned))
            .unwrap_or_else(|| {
                format!(
                    "HTTP {status}: {}",
                    text.chars().take(200).collect::<String>()
                )
            });
        Err(GatewayError::Refused {
            status: status.as_u16(),
            message,
        })
    }

    /// `GET path?query` as JSON.
    pub async fn get(
        &self,
        who: As,
        actor: &str,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Value, GatewayError> {
        let r = self
            .request(reqwest::Method::GET, who, actor, path)?
            .query(query);
        self.json(r).await
    }

    /// Sends, and reads the answer as JSON.
    async fn json(&self, r: reqwest::RequestBuilder) -> Result<Value, GatewayError> {
        self.send(r)
            .await?
            .json()
            .await
            .map_err(|e| GatewayError::Unreachable {
                url: self.base.clone(),
                why: format!("not JSON: {e}"),
            })
    }

    /// `GET path?query` as bytes (a CSV export).
    pub async fn get_bytes(
        &self,
        who: As,
        actor: &str,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Vec<u8>, GatewayError> {
        let r = self
            .request(reqwest::Method::GET, who, actor, path)?
            .query(query);
        let body = self
            .send(r)
            .await?
            .bytes()
            .await
            .map_err(|e| GatewayError::Unreachable {
                url: self.base.clone(),
                why: e.to_string(),
            })?;
        Ok(body.to_vec())
    }

    /// `POST path` with a JSON body, or with `raw` bytes of the given content type.
    pub async fn post(
        &self,
        who: As,
        actor: &str,
        path: &str,
        body: Body,
    ) -> Result<Value, GatewayError> {
        let r = self.request(reqwest::Method::POST, who, actor, path)?;
        let r = match body {
            Body::Json(v) => r.json(&v),
            Body::Raw {
                content_type,
                bytes,
            } => r.header("content-type", content_type).body(bytes),
        };
        self.json(r).await
    }

    /// `PUT path` with a JSON body, its answer as JSON.
    pub async fn put(
        &self,
        who: As,
        actor: &str,
        path: &str,
        body: Value,
    ) -> Result<Value, GatewayError> {
        let r = self.request(reqwest::Method::PUT, who, actor, path)?;
        self.json(r.json(&body)).await
    }

    /// `DELETE path`, its answer as JSON.
    pub async fn delete(&self, who: As, actor: &str, path: &str) -> Result<Value, GatewayError> {
        let r = self.request(reqwest::Method::DELETE, who, actor, path)?;
        self.json(r).await
    }

    /// A service's `/metrics` text (no token: it is served to the monitoring stack).
    pub async fn metrics(&self, url: &str) -> Result<String, String> {
        let r = self
            .http
            .get(url)
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .map_err(|e| e.without_url().to_string())?;
        if !r.status().is_success() {
            return Err(format!("HTTP {}", r.status()));
        }
        r.text().await.map_err(|e| e.to_string())
    }
}

pub enum Body {
    Json(Value),
    Raw {
        content_type: &'static str,
        bytes: Vec<u8>,
    },
}

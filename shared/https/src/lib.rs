//! HTTPS on a service's own port (rustls), for the gateway and the web console, in data centres
//! that end TLS at the bus rather than in a reverse proxy. Client certificates for the clients
//! that use them: with `client_ca_file`, only a client holding a certificate from those CAs
//! completes the handshake (`required`), or one without any certificate too (`optional`). Callers
//! still sign in as before (a system's `X-SystemId` and `X-SecretKey`, a console user's
//! password); the certificate proves the connection comes from a machine the data centre issued
//! one to. Every request carries the certificate its connection presented
//! ([`PeerCertificate`], in the request's extensions), so a service can bind certificates to the
//! callers that hold them (the gateway binds them to connected systems).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

/// `[gateway.tls]`, `[console.tls]`. Files are PEM.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct HttpsConfig {
    /// The service's certificate, then its chain.
    pub cert_file: PathBuf,
    /// Its private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// CA certificates that issue the clients' certificates (the agency systems', the
    /// operators' machines').
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
    /// With `client_ca_file`: whether a client must present a certificate.
    #[serde(default)]
    pub client_certificates: ClientCertificates,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ClientCertificates {
    /// A connection without a certificate from `client_ca_file` is refused in the handshake.
    #[default]
    Required,
    /// A certificate, when presented, must be from `client_ca_file`; none is accepted too.
    Optional,
}

/// The client certificate a request's TLS connection presented (its leaf), in the request's
/// extensions. Absent on a connection without one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCertificate {
    /// SHA-256 of the certificate's DER, lowercase hex (what `openssl x509 -noout -fingerprint
    /// -sha256` prints, without the colons).
    pub sha256: String,
}

impl PeerCertificate {
    pub fn of(der: &[u8]) -> Self {
        Self {
            sha256: hex::encode(ring::digest::digest(&ring::digest::SHA256, der)),
        }
    }

    /// The first certificate of a PEM text (a system's certificate file, its chain after it).
    pub fn from_pem(pem: &[u8]) -> Result<Self, String> {
        match CertificateDer::pem_slice_iter(pem).next() {
            Some(Ok(der)) => Ok(Self::of(&der)),
            Some(Err(e)) => Err(format!("not a PEM certificate: {e}")),
            None => Err("no PEM certificate (-----BEGIN CERTIFICATE-----) in it".into()),
        }
    }

    /// A SHA-256 given by hand: 64 hex digits, with or without the colons `openssl` puts
    /// between bytes.
    pub fn from_sha256(text: &str) -> Result<Self, String> {
        let hex: String = text
            .trim()
            .chars()
            .filter(|c| *c != ':')
            .collect::<String>()
            .to_ascii_lowercase();
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!(
                "`{}` is not a SHA-256 fingerprint (64 hexadecimal digits)",
                text.trim()
            ));
        }
        Ok(Self { sha256: hex })
    }
}

/// How long a client may take over its handshake.
const HANDSHAKE: Duration = Duration::from_secs(10);

impl HttpsConfig {
    /// Reads the files; an error names the key (under `section`, such as `gateway.tls`) and the
    /// file.
    pub fn acceptor(&self, section: &str) -> Result<TlsAcceptor, String> {
        let certs = |key: &str, path: &Path| -> Result<Vec<CertificateDer<'static>>, String> {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(Iterator::collect::<Result<Vec<_>, _>>)
                .map_err(|e| format!("{section}.{key} {}: {e}", path.display()))?;
            if certs.is_empty() {
                return Err(format!(
                    "{section}.{key} {}: no certificate in it",
                    path.display()
                ));
            }
            Ok(certs)
        };
        let chain = certs("cert_file", &self.cert_file)?;
        let key = PrivateKeyDer::from_pem_file(&self.key_file)
            .map_err(|e| format!("{section}.key_file {}: {e}", self.key_file.display()))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("{section}: {e}"))?;
        let builder = match &self.client_ca_file {
            None => builder.with_no_client_auth(),
            Some(path) => {
                let mut roots = rustls::RootCertStore::empty();
                for c in certs("client_ca_file", path)? {
                    roots
                        .add(c)
                        .map_err(|e| format!("{section}.client_ca_file {}: {e}", path.display()))?;
                }
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider,
                );
                let verifier = match self.client_certificates {
                    ClientCertificates::Required => verifier,
                    ClientCertificates::Optional => verifier.allow_unauthenticated(),
                }
                .build()
                .map_err(|e| format!("{section}.client_ca_file {}: {e}", path.display()))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder.with_single_cert(chain, key).map_err(|e| {
            format!(
                "{section}: the key in {} does not go with the certificate in {}: {e}",
                self.key_file.display(),
                self.cert_file.display()
            )
        })?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsAcceptor::from(Arc::new(config)))
    }
}

/// Serves `app` over TLS until `shutdown`, then lets the requests in flight finish (for as long
/// as a stop may take).
pub async fn serve(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    app: Router,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let builder =
        hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors, say: wait rather than spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = async {
                let _ = shutdown.wait_for(|s| *s).await;
            } => break,
        };
        let (acceptor, app, builder, watcher) = (
            acceptor.clone(),
            app.clone(),
            builder.clone(),
            graceful.watcher(),
        );
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    tracing::info!(%peer, error = %e, "TLS handshake refused");
                    metrics::counter!("lienthong_tls_handshakes_refused_total").increment(1);
                    return;
                }
                Err(_) => {
                    metrics::counter!("lienthong_tls_handshakes_refused_total").increment(1);
                    return;
                }
            };
            let peer_certificate = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(<[_]>::first)
                .map(|c| PeerCertificate::of(c));
            let app = tower::ServiceExt::map_request(
                app,
                move |mut request: axum::http::Request<hyper::body::Incoming>| {
                    if let Some(c) = &peer_certificate {
                        request.extensions_mut().insert(c.clone());
                    }
                    request
                },
            );
            let service = hyper_util::service::TowerToHyperService::new(app);
            let conn = builder
                .serve_connection_with_upgrades(hyper_util::rt::TokioIo::new(tls), service)
                .into_owned();
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!(%peer, error = %e, "connection ended");
            }
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(Duration::from_secs(30), graceful.shutdown()).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fingerprint_is_read_with_or_without_colons_and_checked() {
        let plain = "AB".repeat(32);
        let colons = vec!["ab"; 32].join(":");
        assert_eq!(
            PeerCertificate::from_sha256(&plain).expect("plain").sha256,
            "ab".repeat(32)
        );
        assert_eq!(
            PeerCertificate::from_sha256(&colons)
                .expect("colons")
                .sha256,
            "ab".repeat(32)
        );
        let short = PeerCertificate::from_sha256("abcd").expect_err("short");
        assert!(short.contains("64 hexadecimal digits"), "{short}");
        let not_hex = PeerCertificate::from_sha256(&"zz".repeat(32)).expect_err("not hex");
        assert!(not_hex.contains("is not a SHA-256"), "{not_hex}");
        let none = PeerCertificate::from_pem(b"hello").expect_err("no pem");
        assert!(none.contains("no PEM certificate"), "{none}");
    }
}

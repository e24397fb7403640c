//! What a test with several buses needs: a RabbitMQ virtual host per bus, and a TLS terminator
//! that asks for a client certificate, standing in for a peer broker's `amqps://` listener (so the
//! link's rustls configuration is exercised for real, and the link can be cut and restored).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A virtual host of its own on the test broker, deleted on [`Vhost::delete`].
#[derive(Debug)]
pub struct Vhost {
    pub name: String,
}

/// Runs a tool (in `dir` when given) and fails the test, with its error output, if it fails.
fn run(program: &str, args: &[&str], dir: Option<&Path>) {
    let mut command = Command::new(program);
    command.args(args);
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    let out = command.output().unwrap_or_else(|e| {
        panic!("{program} runs (deploy/local/ensure-services installs it): {e}")
    });
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn rabbitmqctl(args: &[&str]) {
    run("rabbitmqctl", args, None);
}

impl Vhost {
    /// Creates `lt-test-{what}-{unique}` with every permission for the broker's user.
    pub fn create(what: &str) -> Vhost {
        let name = format!("lt-test-{what}-{}", uuid::Uuid::new_v4().simple());
        rabbitmqctl(&["add_vhost", &name]);
        rabbitmqctl(&["set_permissions", "-p", &name, &user(), ".*", ".*", ".*"]);
        Vhost { name }
    }

    /// The test broker's URL with this virtual host.
    pub fn url(&self) -> String {
        let base = crate::amqp_url();
        let root = base.rsplit_once('/').map_or(base.as_str(), |(r, _)| r);
        format!("{root}/{}", self.name)
    }

    pub fn delete(self) {
        rabbitmqctl(&["delete_vhost", &self.name]);
    }
}

/// The user in the test broker URL.
fn user() -> String {
    let url = crate::amqp_url();
    let after = url.split_once("://").map_or(url.as_str(), |(_, r)| r);
    after
        .split_once('@')
        .and_then(|(cred, _)| cred.split(':').next())
        .unwrap_or("guest")
        .to_owned()
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl.
#[derive(Debug)]
pub struct Pki {
    pub dir: PathBuf,
}

impl Pki {
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }
    pub fn client_cert(&self) -> PathBuf {
        self.dir.join("client.pem")
    }
    pub fn client_key(&self) -> PathBuf {
        self.dir.join("client.key")
    }
    /// A second client certificate from the same CA (another machine).
    pub fn second_client_cert(&self) -> PathBuf {
        self.dir.join("client2.pem")
    }
    pub fn second_client_key(&self) -> PathBuf {
        self.dir.join("client2.key")
    }
    /// A client certificate from another CA, which the terminator must refuse.
    pub fn stranger_cert(&self) -> PathBuf {
        self.dir.join("stranger.pem")
    }
    pub fn stranger_key(&self) -> PathBuf {
        self.dir.join("stranger.key")
    }

    pub fn make(dir: &Path) -> Pki {
        std::fs::write(
            dir.join("server.ext"),
            "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        )
        .expect("ext");
        std::fs::write(
            dir.join("client.ext"),
            "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
        )
        .expect("ext");
        for ca in ["ca", "other-ca"] {
            new_key(
                dir,
                ca,
                &format!("/CN=lienthong test {ca}"),
                &["-x509", "-days", "2", "-out", &format!("{ca}.pem")],
            );
        }
        for (name, ca, ext) in [
            ("server", "ca", "server.ext"),
            ("client", "ca", "client.ext"),
            ("client2", "ca", "client.ext"),
            ("stranger", "other-ca", "client.ext"),
        ] {
            issue(dir, name, &format!("/CN=lienthong test {name}"), ca, ext);
        }
        Pki {
            dir: dir.to_owned(),
        }
    }

    /// A client certificate from the CA whose common name is `cn` (a broker taking the user name
    /// from it, for EXTERNAL logins): its certificate and key files.
    pub fn issue_client(&self, cn: &str) -> (PathBuf, PathBuf) {
        let name = format!("cn-{cn}");
        issue(&self.dir, &name, &format!("/CN={cn}"), "ca", "client.ext");
        (
            self.dir.join(format!("{name}.pem")),
            self.dir.join(format!("{name}.key")),
        )
    }
}

/// A P-256 key `{name}.key` and, with `extra`, a request for it or a self-signed certificate.
fn new_key(dir: &Path, name: &str, subject: &str, extra: &[&str]) {
    let key = format!("{name}.key");
    let mut args = vec![
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        &key,
        "-subj",
        subject,
    ];
    args.extend_from_slice(extra);
    run("openssl", &args, Some(dir));
}

/// `{name}.pem` (and its key), issued by the CA `{ca}.pem` with the extensions of `ext`.
fn issue(dir: &Path, name: &str, subject: &str, ca: &str, ext: &str) {
    let (csr, cert) = (format!("{name}.csr"), format!("{name}.pem"));
    let (ca_cert, ca_key) = (format!("{ca}.pem"), format!("{ca}.key"));
    new_key(dir, name, subject, &["-out", &csr]);
    run(
        "openssl",
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca_cert,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-out",
            &cert,
            "-days",
            "2",
            "-extfile",
            ext,
        ],
        Some(dir),
    );
}

/// Terminates TLS on a loopback port, requires a client certificate from the test CA, and
/// passes the bytes to the plain AMQP port. Stopping it cuts every connection through it.
pub struct TlsTerminator {
    pub port: u16,
    task: JoinHandle<()>,
}

impl TlsTerminator {
    /// Listens on `port` (0: any free port).
    pub async fn start(pki: &Pki, port: u16) -> TlsTerminator {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(pki.ca()).expect("ca") {
            roots.add(c.expect("ca cert")).expect("root");
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .build()
        .expect("client verifier");
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(pki.dir.join("server.pem"))
                .expect("server cert")
                .map(|c| c.expect("cert"))
                .collect();
        let key = PrivateKeyDer::from_pem_file(pki.dir.join("server.key")).expect("server key");
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_client_cert_verifier(verifier)
            .with_single_cert(certs, key)
            .expect("server config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind(("127.0.0.1", port)).await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let upstream = broker_addr();
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((tcp, _)) = accepted else { continue };
                        let acceptor = acceptor.clone();
                        let upstream = upstream.clone();
                        conns.spawn(async move {
                            let mut tls = match acceptor.accept(tcp).await {
                                Ok(tls) => tls,
                                Err(e) => {
                                    tracing::warn!(error = %e, "TLS terminator: handshake refused");
                                    return;
                                }
                            };
                            let Ok(mut plain) = TcpStream::connect(&upstream).await else { return };
                            let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                        });
                    }
                    Some(_) = conns.join_next(), if !conns.is_empty() => {}
                }
            }
        });
        TlsTerminator { port, task }
    }

    /// Cuts the link: closes the port and every connection through it.
    pub fn stop(self) {
        self.task.abort();
    }
}

/// `host:port` of the test broker.
fn broker_addr() -> String {
    let url = crate::amqp_url();
    let after = url.split_once('@').map_or(url.as_str(), |(_, r)| r);
    let hostport = after.split('/').next().unwrap_or("127.0.0.1:5672");
    if hostport.contains(':') {
        hostport.to_owned()
    } else {
        format!("{hostport}:5672")
    }
}

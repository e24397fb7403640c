//! Revocation data fetched ahead of time, for real: a CA made here with openssl publishes a CRL over
//! HTTP and answers OCSP (openssl's responder) behind a loopback server. The verifier learns the
//! distribution points and responders from the certificates it sees, fetches once, and decides
//! from what it fetched; with `require_revocation_data`, a first package waits for the data
//! instead of being refused for lack of it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use lienthong_edxml::write_edoc;
use lienthong_store::DeliveryState;
use lienthong_tests::*;
use lienthong_verifier::RevocationConfig;
use lienthong_xmldsig::Verdict;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn openssl(dir: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl runs (deploy/local/ensure-services --xmlsec1 installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A CA in a scratch directory, reusing the test root's key.
struct Ca {
    dir: PathBuf,
    crl_gets: Arc<AtomicUsize>,
    ocsp_posts: Arc<AtomicUsize>,
    base: String,
}

impl Ca {
    async fn start(dir: PathBuf) -> Self {
        for f in ["root.pem", "root.key"] {
            std::fs::copy(vectors_dir().join("keys").join(f), dir.join(f)).expect("copy");
        }
        std::fs::write(dir.join("index.txt"), "").expect("index");
        std::fs::write(dir.join("crlnumber"), "01\n").expect("crlnumber");
        std::fs::write(
            dir.join("ca.cnf"),
            "[ca]\ndefault_ca = t\n[t]\ndatabase = index.txt\ncrlnumber = crlnumber\n\
             default_md = sha256\ndefault_crl_days = 7\n",
        )
        .expect("cnf");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let ca = Self {
            dir,
            crl_gets: Arc::default(),
            ocsp_posts: Arc::default(),
            base,
        };
        let (dir, gets, posts) = (
            ca.dir.clone(),
            Arc::clone(&ca.crl_gets),
            Arc::clone(&ca.ocsp_posts),
        );
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(serve(
                    socket,
                    dir.clone(),
                    Arc::clone(&gets),
                    Arc::clone(&posts),
                ));
            }
        });
        ca
    }

    /// Issues a signer certificate naming a CRL distribution point, an OCSP responder, or both.
    fn issue(&self, name: &str, crl: bool, ocsp: bool) {
        let mut ext = String::from(
            "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,nonRepudiation\n",
        );
        if crl {
            ext += &format!("crlDistributionPoints=URI:{}/root.crl\n", self.base);
        }
        if ocsp {
            ext += &format!("authorityInfoAccess=OCSP;URI:{}/ocsp\n", self.base);
        }
        std::fs::write(self.dir.join(format!("{name}.ext")), ext).expect("ext");
        let (key, csr, pem) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
        );
        openssl(
            &self.dir,
            &[
                "req",
                "-new",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                &key,
                "-out",
                &csr,
                "-subj",
                &format!("/O=Test/CN={name}"),
            ],
        );
        openssl(
            &self.dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "root.pem",
                "-CAkey",
                "root.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-out",
                &pem,
                "-extfile",
                &format!("{name}.ext"),
            ],
        );
        self.ca(&["-valid", &pem]);
    }

    fn ca(&self, args: &[&str]) {
        let base = [
            "ca", "-config", "ca.cnf", "-keyfile", "root.key", "-cert", "root.pem",
        ];
        openssl(&self.dir, &[&base[..], args].concat());
    }

    fn revoke(&self, name: &str) {
        self.ca(&["-revoke", &format!("{name}.pem")]);
    }

    fn publish_crl(&self) {
        self.ca(&["-gencrl", "-out", "root.crl.pem"]);
        openssl(
            &self.dir,
            &[
                "crl",
                "-in",
                "root.crl.pem",
                "-outform",
                "DER",
                "-out",
                "root.crl",
            ],
        );
    }

    fn sign(&self, package: &[u8], name: &str) -> Vec<u8> {
        let pem = |file: String, label: &str| {
            lienthong_xmldsig::trust::pem_blocks(
                &std::fs::read(self.dir.join(file)).expect("file"),
                label,
            )
            .expect("pem")
            .remove(0)
        };
        lienthong_xmldsig::sign(
            package,
            &pem(format!("{name}.key"), "PRIVATE KEY"),
            &pem(format!("{name}.pem"), "CERTIFICATE"),
        )
        .expect("signed")
    }
}

/// `GET /root.crl` serves the CRL file; `POST /ocsp` has `openssl ocsp` answer the request from
/// the CA's database.
async fn serve(
    mut socket: tokio::net::TcpStream,
    dir: PathBuf,
    gets: Arc<AtomicUsize>,
    posts: Arc<AtomicUsize>,
) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let (head_end, length) = loop {
        let Ok(n) = socket.read(&mut chunk).await else {
            return;
        };
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            break (end + 4, length);
        }
    };
    while buf.len() < head_end + length {
        let Ok(n) = socket.read(&mut chunk).await else {
            return;
        };
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let body = buf[head_end..head_end + length].to_vec();
    let answer = if head.starts_with("GET /root.crl ") {
        gets.fetch_add(1, Ordering::SeqCst);
        std::fs::read(dir.join("root.crl")).ok()
    } else if head.starts_with("POST /ocsp ") {
        posts.fetch_add(1, Ordering::SeqCst);
        tokio::task::spawn_blocking(move || {
            let request = dir.join(format!("req-{}.der", uuid::Uuid::new_v4().simple()));
            let response = request.with_extension("resp");
            std::fs::write(&request, body).ok()?;
            let r = request.to_string_lossy().to_string();
            let o = response.to_string_lossy().to_string();
            openssl(
                &dir,
                &[
                    "ocsp",
                    "-index",
                    "index.txt",
                    "-CA",
                    "root.pem",
                    "-rsigner",
                    "root.pem",
                    "-rkey",
                    "root.key",
                    "-reqin",
                    &r,
                    "-respout",
                    &o,
                    "-nmin",
                    "60",
                ],
            );
            std::fs::read(&response).ok()
        })
        .await
        .ok()
        .flatten()
    } else {
        None
    };
    let reply = match answer {
        Some(bytes) => [
            format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                bytes.len()
            )
            .into_bytes(),
            bytes,
        ]
        .concat(),
        None => {
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec()
        }
    };
    let _ = socket.write_all(&reply).await;
}

async fn settled(env: &Env, doc_id: &str) -> lienthong_store::Leg {
    eventually(
        "the leg delivered or failed",
        Duration::from_secs(30),
        || async {
            let legs = env.store.legs(doc_id).await.expect("legs");
            legs.into_iter()
                .find(|l| matches!(l.delivery, DeliveryState::Delivered | DeliveryState::Failed))
        },
    )
    .await
}

async fn verdict(env: &Env, doc_id: &str) -> Verdict {
    let row = env
        .store
        .verdict(doc_id)
        .await
        .expect("verdict")
        .expect("recorded");
    serde_json::from_str(&row.verdict).expect("verdict json")
}

#[tokio::test]
async fn crls_and_ocsp_answers_are_fetched_ahead_and_decide_revocation() {
    let mut env = Env::new(Backend::Sqlite).await;
    let ca_dir = env.dir.path().join("ca");
    std::fs::create_dir_all(&ca_dir).expect("ca dir");
    let ca = Ca::start(ca_dir).await;
    ca.issue("by-crl", true, false);
    ca.issue("revoked-by-crl", true, false);
    ca.issue("by-ocsp", false, true);
    ca.issue("revoked-by-ocsp", false, true);
    ca.revoke("revoked-by-crl");
    ca.revoke("revoked-by-ocsp");
    ca.publish_crl();

    // A CRL site that accepts connections and never answers: fetched beside the others, it costs
    // one timeout, not a stalled verifier.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let silent_url = format!("http://{}/root.crl", silent.local_addr().expect("addr"));
    let _silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });

    env.verifier.require_revocation_data = true;
    env.verifier.revocation = Some(RevocationConfig {
        crl_distribution_points: true,
        ocsp: true,
        crl_urls: vec![silent_url],
        refresh_secs: 3600,
        timeout_secs: 3,
        max_bytes: 1 << 20,
        cache_dir: Some(env.dir.path().join("revocation-cache")),
    });
    let bus = InProcessBus::start(&env).await;
    let client = bus.client("province");
    let send = |signer: &'static str| {
        let package = ca.sign(
            &write_edoc(&edoc(PROVINCE, &[MINISTRY], unique_number())),
            signer,
        );
        let client = client.clone();
        async move { client.send(package, "edoc").await.expect("accepted") }
    };

    // OCSP first: once the issuer's CRL is in, a fresh CRL covers every certificate it issued.
    for (signer, source) in [("by-ocsp", "ocsp"), ("by-crl", "crl")] {
        let doc_id = send(signer).await;
        let leg = settled(&env, &doc_id).await;
        assert_eq!(
            leg.delivery,
            DeliveryState::Delivered,
            "{signer}: a first package waits for its revocation data, then goes: {leg:?}"
        );
        let v = verdict(&env, &doc_id).await;
        assert_eq!(v.revocation[0].source, source, "{signer}: {v:?}");
    }
    for signer in ["revoked-by-crl", "revoked-by-ocsp"] {
        let doc_id = send(signer).await;
        let leg = settled(&env, &doc_id).await;
        assert_eq!(leg.delivery, DeliveryState::Failed, "{signer}: {leg:?}");
        let v = verdict(&env, &doc_id).await;
        assert_eq!(v.reason_code.as_deref(), Some("revoked"), "{signer}: {v:?}");
    }

    // Fetched ahead, not per message: once every certificate seen has its data (a revoked one
    // may have been refused on the CRL before its OCSP answer came), more packages from the same
    // signers cost no fetch.
    let (gets, posts) = eventually(
        "one CRL and two OCSP answers fetched",
        Duration::from_secs(30),
        || async {
            let counts = (
                ca.crl_gets.load(Ordering::SeqCst),
                ca.ocsp_posts.load(Ordering::SeqCst),
            );
            (counts == (1, 2)).then_some(counts)
        },
    )
    .await;
    for signer in ["by-crl", "by-ocsp", "by-crl", "by-ocsp"] {
        let doc_id = send(signer).await;
        assert_eq!(
            settled(&env, &doc_id).await.delivery,
            DeliveryState::Delivered
        );
    }
    assert_eq!(
        ca.crl_gets.load(Ordering::SeqCst),
        gets,
        "no CRL fetch per message"
    );
    assert_eq!(
        ca.ocsp_posts.load(Ordering::SeqCst),
        posts,
        "no OCSP request per message"
    );
    assert_eq!(gets, 1, "one CRL URL, fetched once");
    assert_eq!(posts, 2, "one OCSP answer per certificate with a responder");
    // The CRL was kept for the next start.
    let cached = std::fs::read_dir(env.dir.path().join("revocation-cache"))
        .expect("cache dir")
        .count();
    assert_eq!(cached, 1);

    bus.stop().await;
    env.teardown().await;
}

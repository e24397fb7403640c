//! HTTPS on the gateway with client certificates (rustls), made with openssl: a system holding a
//! certificate from the configured CA sends and fetches over TLS, with the Rust client and with
//! the CLI; a certificate from another CA, no certificate, and plain HTTP are refused before any
//! request is read. With `client_certificates = "optional"`, a system without a certificate gets
//! in (it still signs in with its secret), and a stranger's certificate is still refused. The web
//! console serves HTTPS the same way, and reaches an HTTPS gateway with its own certificate.

use std::path::Path;

use lienthong_client::{Client, Tls};
use lienthong_edxml::write_edoc;
use lienthong_gateway::{ClientCertificates, GatewayTls};
use lienthong_tests::browser::{Console, PASSWORD};
use lienthong_tests::links::Pki;
use lienthong_tests::*;

fn tls(pki: &Pki, client_certificates: ClientCertificates) -> GatewayTls {
    GatewayTls {
        cert_file: pki.dir.join("server.pem"),
        key_file: pki.dir.join("server.key"),
        client_ca_file: Some(pki.ca()),
        client_certificates,
    }
}

fn client(url: &str, system: &str, ca: &Path, identity: Option<(&Path, &Path)>) -> Client {
    let http = Tls {
        ca_file: Some(ca.to_owned()),
        identity: identity.map(|(c, k)| (c.to_owned(), k.to_owned())),
    }
    .http_client()
    .expect("https client");
    Client::with_http(url, system, &format!("secret-{system}"), http)
}

#[tokio::test]
async fn systems_with_a_certificate_from_the_ca_get_in_and_others_are_refused_in_the_handshake() {
    let dir = tempfile::tempdir().expect("temp");
    let pki = Pki::make(dir.path());
    let mut env = Env::new(Backend::Sqlite).await;
    env.gateway_tls = Some(tls(&pki, ClientCertificates::Required));
    let bus = InProcessBus::start(&env).await;
    assert!(bus.url.starts_with("https://"), "{}", bus.url);

    let with_cert = Some((pki.client_cert(), pki.client_key()));
    let identity = with_cert.as_ref().map(|(c, k)| (c.as_path(), k.as_path()));
    let province = client(&bus.url, "province", &pki.ca(), identity);
    let doc_id = province
        .send(
            write_edoc(&edoc(PROVINCE, &[MINISTRY], unique_number())),
            "edoc",
        )
        .await
        .expect("sent over TLS with a client certificate");
    env.all_delivered(&doc_id).await;
    let ministry = client(&bus.url, "ministry", &pki.ca(), identity);
    let fetched = ministry.fetch(&doc_id).await.expect("fetched over TLS");
    assert!(!fetched.bytes.is_empty());

    // The CLI speaks HTTPS with the same files (a child process: the gateway serves it from
    // this test's runtime meanwhile).
    let out = cli(tokio::process::Command::new(lienthong_bin())
        .args(["inbox", "--url", &bus.url])
        .args(["--system-id", "ministry", "--secret", "secret-ministry"])
        .arg("--ca-file")
        .arg(pki.ca())
        .arg("--cert-file")
        .arg(pki.client_cert())
        .arg("--key-file")
        .arg(pki.client_key()))
    .await;
    assert!(out.contains(&doc_id), "{out}");

    // Refused: another CA's certificate, no certificate, plain HTTP.
    let stranger = client(
        &bus.url,
        "province",
        &pki.ca(),
        Some((&pki.stranger_cert(), &pki.stranger_key())),
    );
    let no_cert = client(&bus.url, "province", &pki.ca(), None);
    for (who, c) in [("another CA", &stranger), ("no certificate", &no_cert)] {
        let err = c.agencies().await.expect_err(who);
        assert!(
            matches!(err, lienthong_client::ClientError::Transport(_)),
            "{who}: refused in the handshake, not by the API: {err:?}"
        );
    }
    let plain = Client::new(&bus.url.replace("https://", "http://"), "province", "x");
    assert!(
        plain.agencies().await.is_err(),
        "plain HTTP on the TLS port"
    );
    // The gateway still answers those with a certificate.
    province.agencies().await.expect("still serving");

    bus.stop().await;
    env.teardown().await;
}

#[tokio::test]
async fn with_optional_client_certificates_a_system_without_one_gets_in_but_a_stranger_does_not() {
    let dir = tempfile::tempdir().expect("temp");
    let pki = Pki::make(dir.path());
    let mut env = Env::new(Backend::Sqlite).await;
    env.gateway_tls = Some(tls(&pki, ClientCertificates::Optional));
    let bus = InProcessBus::start_roles(&env, &env.bus, &["gateway"]).await;
    let no_cert = client(&bus.url, "province", &pki.ca(), None);
    assert!(!no_cert.agencies().await.expect("no certificate").is_empty());
    // Its secret still decides who it is.
    let wrong = Client::with_http(
        &bus.url,
        "province",
        "not-the-secret",
        Tls {
            ca_file: Some(pki.ca()),
            identity: None,
        }
        .http_client()
        .expect("client"),
    );
    assert_eq!(
        wrong
            .inbox("edoc", &[])
            .await
            .expect_err("wrong secret")
            .code(),
        Some(15)
    );
    let stranger = client(
        &bus.url,
        "province",
        &pki.ca(),
        Some((&pki.stranger_cert(), &pki.stranger_key())),
    );
    assert!(matches!(
        stranger.agencies().await,
        Err(lienthong_client::ClientError::Transport(_))
    ));
    bus.stop().await;
    env.teardown().await;
}

#[test]
fn unreadable_certificates_are_named_at_start() {
    let dir = tempfile::tempdir().expect("temp");
    let pki = Pki::make(dir.path());
    let missing = GatewayTls {
        cert_file: dir.path().join("nope.pem"),
        ..tls(&pki, ClientCertificates::Required)
    };
    let Err(err) = missing.acceptor("gateway.tls") else {
        panic!("a missing file is an error");
    };
    assert!(
        err.contains("gateway.tls.cert_file") && err.contains("nope.pem"),
        "{err}"
    );
    let mismatched = GatewayTls {
        key_file: pki.client_key(),
        ..tls(&pki, ClientCertificates::Required)
    };
    let Err(err) = mismatched.acceptor("gateway.tls") else {
        panic!("the key of another certificate is an error");
    };
    assert!(err.contains("does not go with"), "{err}");
}

#[tokio::test]
async fn the_console_serves_https_to_machines_with_a_certificate_and_reaches_an_https_gateway() {
    let dir = tempfile::tempdir().expect("temp");
    let pki = Pki::make(dir.path());
    let mut env = Env::new(Backend::Sqlite).await;
    env.gateway_tls = Some(tls(&pki, ClientCertificates::Required));
    let bus = InProcessBus::start(&env).await;
    let mut config = Console::config(&env, &[MINISTRY]);
    config.tls = Some(tls(&pki, ClientCertificates::Required));
    // The gateway asks for a client certificate too: the console presents its own.
    config.gateway_ca_file = Some(pki.ca());
    config.gateway_cert_file = Some(pki.client_cert());
    config.gateway_key_file = Some(pki.client_key());
    let console = Console::serve(config, &bus.url).await;
    assert!(console.url.starts_with("https://"), "{}", console.url);

    let browser = |identity: Option<(std::path::PathBuf, std::path::PathBuf)>| {
        Tls {
            ca_file: Some(pki.ca()),
            identity,
        }
        .http_client()
        .expect("https client")
    };
    // A machine holding a certificate from the CA signs in; the session cookie is sent over
    // HTTPS only.
    let read = |p: std::path::PathBuf| std::fs::read(p).expect("pem");
    let identity = [
        read(pki.client_cert()),
        b"\n".to_vec(),
        read(pki.client_key()),
    ]
    .concat();
    let machine = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(reqwest::Certificate::from_pem(&read(pki.ca())).expect("ca"))
        .identity(reqwest::Identity::from_pem(&identity).expect("identity"))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let session = machine
        .post(format!("{}/login", console.url))
        .form(&[("name", "op"), ("password", PASSWORD), ("next", "/")])
        .send()
        .await
        .expect("sign-in over HTTPS");
    assert_eq!(session.status(), 303);
    let set_cookie = session.headers()["set-cookie"].to_str().expect("cookie");
    assert!(set_cookie.contains("; Secure"), "{set_cookie}");
    let cookie = set_cookie.split(';').next().expect("pair").to_owned();
    // The failed deliveries page, which the console reads from the gateway's /admin API over
    // HTTPS, presenting its own certificate (a 502 if it could not).
    let page = machine
        .get(format!("{}/failed", console.url))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("a page over HTTPS");
    assert_eq!(page.status(), 200);

    // A machine without a certificate from the CA gets no page: the handshake is refused.
    let stranger = browser(Some((pki.stranger_cert(), pki.stranger_key())));
    for (who, client) in [("no certificate", browser(None)), ("a stranger", stranger)] {
        let refused = client.get(format!("{}/login", console.url)).send().await;
        assert!(refused.is_err(), "{who}: {refused:?}");
    }
    // Nor does plain HTTP.
    let plain = reqwest::get(console.url.replace("https://", "http://")).await;
    assert!(
        plain.is_err() || !plain.as_ref().is_ok_and(|r| r.status().is_success()),
        "{plain:?}"
    );
    console.stop().await;
    bus.stop().await;
    env.teardown().await;
}

/// Runs the CLI (a child process: the gateway serves it from this test's runtime meanwhile) and
/// returns what it printed, failing the test if it failed.
async fn cli(command: &mut tokio::process::Command) -> String {
    let out = command.output().await.expect("cli");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The SHA-256 fingerprint of a PEM certificate as openssl prints it (colons removed, lower
/// case): an implementation independent of the gateway's.
fn openssl_fingerprint(cert: &Path) -> String {
    let out = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(cert)
        .output()
        .expect("openssl");
    let text = String::from_utf8_lossy(&out.stdout);
    let (_, colons) = text.trim().split_once('=').expect("fingerprint line");
    colons.replace(':', "").to_ascii_lowercase()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_system_bound_to_client_certificates_is_admitted_only_with_one_of_them() {
    let dir = tempfile::tempdir().expect("temp");
    let pki = Pki::make(dir.path());
    let mut env = Env::new(Backend::Sqlite).await;
    // Optional: connections without a certificate reach the API, which is where binding bites.
    env.gateway_tls = Some(tls(&pki, ClientCertificates::Optional));
    let bus = InProcessBus::start_roles(&env, &env.bus, &["gateway", "ledger"]).await;
    let (first, second) = (
        (pki.client_cert(), pki.client_key()),
        (pki.second_client_cert(), pki.second_client_key()),
    );
    let as_system = |system: &str, identity: Option<&(std::path::PathBuf, std::path::PathBuf)>| {
        client(
            &bus.url,
            system,
            &pki.ca(),
            identity.map(|(c, k)| (c.as_path(), k.as_path())),
        )
    };
    let refusal =
        |result: Result<Vec<serde_json::Value>, lienthong_client::ClientError>| match result
            .expect_err("refused")
        {
            lienthong_client::ClientError::Api { code, desc, http } => {
                assert_eq!((code, http), (15, 401), "{desc}");
                desc
            }
            other => panic!("refused by the API, not in the handshake: {other:?}"),
        };

    // The operator binds the province's system to its machine's certificate with the admin
    // tool; the fingerprint is the one openssl computes.
    let fingerprint = openssl_fingerprint(&first.0);
    let config = env.dir.path().join("lienthong.toml");
    env.write_admin_config(&config);
    let out = cli(tokio::process::Command::new(lienthong_bin())
        .args(["admin", "--config"])
        .arg(&config)
        .args(["system-bind-certificate", "province", "--cert-file"])
        .arg(&first.0))
    .await;
    assert!(out.contains(&fingerprint), "{out}");

    // With it: in. Without a certificate, or with another machine's from the same CA: refused,
    // saying why. The bound certificate does not make its holder another system.
    as_system("province", Some(&first))
        .inbox("edoc", &[])
        .await
        .expect("the bound certificate");
    let none = refusal(as_system("province", None).inbox("edoc", &[]).await);
    assert!(none.contains("bound to client certificates"), "{none}");
    let other = refusal(
        as_system("province", Some(&second))
            .inbox("edoc", &[])
            .await,
    );
    assert!(
        other.contains("not one bound to system province"),
        "{other}"
    );
    let stolen = refusal(as_system("ministry", Some(&first)).inbox("edoc", &[]).await);
    assert!(stolen.contains("bound to another system"), "{stolen}");
    as_system("ministry", Some(&second))
        .inbox("edoc", &[])
        .await
        .expect("a system with nothing bound, with any certificate from the CA");
    as_system("ministry", None)
        .inbox("edoc", &[])
        .await
        .expect("a system with nothing bound, with none");

    // The legacy SOAP interface applies the same binding.
    let soap = |identity: Option<&(std::path::PathBuf, std::path::PathBuf)>| {
        let http = Tls {
            ca_file: Some(pki.ca()),
            identity: identity.cloned(),
        }
        .http_client()
        .expect("client");
        let url = format!("{}/soap/v1", bus.url);
        async move {
            http.post(url)
                .header("Token", "province:secret-province")
                .header("Content-Type", "text/xml")
                .body(
                    "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body>\
                     <GetPendingDocumentIds xmlns=\"http://www.e-doc.vn/Schema/\"/></s:Body></s:Envelope>",
                )
                .send()
                .await
                .expect("answer")
                .text()
                .await
                .expect("body")
        }
    };
    let fault = soap(None).await;
    assert!(fault.contains("bound to client certificates"), "{fault}");
    let pending = soap(Some(&first)).await;
    assert!(
        pending.contains("GetPendingDocumentIdsResponse"),
        "{pending}"
    );

    // Over the admin API: the binding is listed; a renewal is bound next to the old certificate
    // (by fingerprint, colons as openssl prints them), then the old one unbound.
    let http = Tls {
        ca_file: Some(pki.ca()),
        identity: None,
    }
    .http_client()
    .expect("client");
    let systems: serde_json::Value = http
        .get(format!("{}/admin/systems", bus.url))
        .bearer_auth(OPERATOR_TOKEN)
        .send()
        .await
        .expect("systems")
        .json()
        .await
        .expect("json");
    let province = systems["data"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["system_id"] == "province"))
        .expect("province listed");
    assert_eq!(province["certificates"], serde_json::json!([fingerprint]));
    let renewed = openssl_fingerprint(&second.0);
    let with_colons = renewed
        .as_bytes()
        .chunks(2)
        .map(|p| String::from_utf8_lossy(p).to_uppercase())
        .collect::<Vec<_>>()
        .join(":");
    let bind = |body: serde_json::Value, token: &'static str| {
        let rb = http
            .post(format!("{}/admin/systems/province/certificates", bus.url))
            .bearer_auth(token)
            .json(&body);
        async move {
            let r = rb.send().await.expect("answer");
            (
                r.status().as_u16(),
                r.json::<serde_json::Value>().await.expect("json"),
            )
        }
    };
    let (status, _) = bind(serde_json::json!({ "sha256": with_colons }), OFFICER_TOKEN).await;
    assert_eq!(status, 401, "a security officer does not manage systems");
    let (status, answer) = bind(serde_json::json!({ "sha256": "abc" }), OPERATOR_TOKEN).await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["data"]["errorDesc"]
            .as_str()
            .is_some_and(|d| d.starts_with("sha256:") && d.contains("64 hexadecimal digits")),
        "{answer}"
    );
    let (status, answer) = bind(serde_json::json!({ "sha256": with_colons }), OPERATOR_TOKEN).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["sha256"], renewed.as_str());
    as_system("province", Some(&second))
        .inbox("edoc", &[])
        .await
        .expect("the renewed certificate");
    let unbound = http
        .delete(format!(
            "{}/admin/systems/province/certificates/{fingerprint}",
            bus.url
        ))
        .bearer_auth(OPERATOR_TOKEN)
        .send()
        .await
        .expect("unbind");
    assert_eq!(unbound.status(), 200);
    let old = refusal(as_system("province", Some(&first)).inbox("edoc", &[]).await);
    assert!(old.contains("not one bound to system province"), "{old}");
    // The certificate is free again: the ministry's system may use it.
    as_system("ministry", Some(&first))
        .inbox("edoc", &[])
        .await
        .expect("an unbound certificate");
    // Every change is in the audit log: the admin tool's, and the API's two.
    let audit = env.registry_audit(3).await;
    for (verb, sha) in [
        ("bound to", &fingerprint),
        ("bound to", &renewed),
        ("unbound from", &fingerprint),
    ] {
        assert!(
            audit.iter().any(|e| e
                .detail
                .as_deref()
                .is_some_and(|d| d.contains(verb) && d.contains(sha.as_str()))),
            "{verb} {sha}: {audit:?}"
        );
    }

    bus.stop().await;
    env.teardown().await;
}

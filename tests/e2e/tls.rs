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
    let out = tokio::process::Command::new(lienthong_bin())
        .args(["inbox", "--url", &bus.url])
        .args(["--system-id", "ministry", "--secret", "secret-ministry"])
        .arg("--ca-file")
        .arg(pki.ca())
        .arg("--cert-file")
        .arg(pki.client_cert())
        .arg("--key-file")
        .arg(pki.client_key())
        .output()
        .await
        .expect("cli");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(&doc_id));

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

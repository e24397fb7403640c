//! AMQP adapters with broker accounts of their own, on a RabbitMQ node of the test's own with the
//! management API, an AMQPS listener and EXTERNAL logins (the user name is the client
//! certificate's common name):
//!
//! - `lienthong admin adapter-account` makes a password account and a certificate account;
//! - `lienthong watch` (the adapter side) receives the notification of each document for its own
//!   agency, over AMQP with a password and over AMQPS with a certificate, and saves the package;
//! - an account cannot bind another agency's key or `#`, read the bus's queues, declare another
//!   system's queue or publish to the inbox exchange; a certificate account without its
//!   certificate does not get in;
//! - `adapter-accounts-sync` suspends a locked system (its open connection is closed), removes a
//!   removed system's account and queue, and unbinds an agency taken from a system; a gateway
//!   process does it by itself, and counts it;
//! - the operators' API makes, shows and removes accounts, refuses a locked system and a broker
//!   user the bus did not make, and records what it did in the audit log;
//! - in the console (headless Chromium), an operator makes a system's account, reads its
//!   password once on the answer, and removes it; a locked system's account shows suspended.

use std::path::Path;

use lapin::options::{
    BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lienthong_tests::links::Pki;
use lienthong_tests::servers::{Cluster, NodeSettings};
use lienthong_tests::*;
use tokio::io::AsyncBufReadExt;

fn node_settings() -> NodeSettings {
    NodeSettings {
        plugins: vec![
            "rabbitmq_management".into(),
            "rabbitmq_auth_mechanism_ssl".into(),
        ],
        extra_config: "listeners.ssl.default = 127.0.0.1:{tls_port}
ssl_options.cacertfile = {dir}/pki/ca.pem
ssl_options.certfile = {dir}/pki/server.pem
ssl_options.keyfile = {dir}/pki/server.key
ssl_options.verify = verify_peer
ssl_options.fail_if_no_peer_cert = false
auth_mechanisms.1 = PLAIN
auth_mechanisms.2 = AMQPLAIN
auth_mechanisms.3 = EXTERNAL
ssl_cert_login_from = common_name
management.tcp.ip = 127.0.0.1
management.tcp.port = {management_port}"
            .into(),
    }
}

async fn run_cli(args: &[&str], stdin: Option<&str>) -> std::process::Output {
    let mut cmd = tokio::process::Command::new(lienthong_bin());
    cmd.args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("lienthong");
    {
        use tokio::io::AsyncWriteExt;
        let mut input = child.stdin.take().expect("stdin");
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).await.expect("stdin");
        }
    }
    tokio::time::timeout(std::time::Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("the command ends within 60 s")
        .expect("output")
}

async fn ok(args: &[&str], stdin: Option<&str>) -> String {
    let out = run_cli(args, stdin).await;
    assert!(
        out.status.success(),
        "lienthong {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn connect(
    url: &str,
    pki: &Pki,
    cert: Option<&(std::path::PathBuf, std::path::PathBuf)>,
) -> Result<lapin::Connection, lapin::Error> {
    let tls = url.starts_with("amqps").then(|| lienthong_bus::TlsConfig {
        ca_file: Some(pki.ca()),
        cert_file: cert.map(|c| c.0.clone()),
        key_file: cert.map(|c| c.1.clone()),
    });
    lienthong_bus::open_connection(url, "adapter test", tls.as_ref()).await
}

/// What the broker answers a channel operation: `Ok`, or the refusal's text.
async fn refused<T>(op: impl std::future::Future<Output = Result<T, lapin::Error>>) -> String {
    match tokio::time::timeout(std::time::Duration::from_secs(10), op).await {
        Ok(Ok(_)) => "allowed".into(),
        Ok(Err(e)) => e.to_string(),
        Err(_) => "no answer within 10 s".into(),
    }
}

#[tokio::test]
async fn amqp_adapters_get_accounts_that_reach_only_their_own_agencies() {
    let dir = tempfile::tempdir().expect("temp");
    let pki = Pki::make(dir.path());
    let province_cert = pki.issue_client("province");
    let cluster = Cluster::start_with(1, node_settings_with_pki(&pki));
    let node = &cluster.nodes[0];
    let management = format!("http://127.0.0.1:{}", node.management_port);
    wait_for_management(&management).await;

    let mut env = Env::new(Backend::Sqlite).await;
    let vhost = format!("lt-adapters-{}", unique_number());
    cluster.ctl(node, &["add_vhost", &vhost]);
    cluster.ctl(
        node,
        &["set_permissions", "-p", &vhost, "guest", ".*", ".*", ".*"],
    );
    env.bus.url = format!("amqp://guest:guest@127.0.0.1:{}/{vhost}", node.port);
    let prefix = env.bus.prefix.clone();
    let bus = InProcessBus::start(&env).await;

    let config = dir.path().join("admin.toml");
    env.write_admin_config(&config);
    let mut text = std::fs::read_to_string(&config).expect("config");
    text.push_str(&format!(
        "\n[amqp_adapters]\nmanagement_url = \"{management}\"\nmanagement_user = \"guest\"\nmanagement_password = \"guest\"\nadapter_url = \"amqps://127.0.0.1:{}/{vhost}\"\n",
        node.tls_port
    ));
    std::fs::write(&config, text).expect("config");
    let config = config.display().to_string();
    let admin = |args: &[&str]| {
        let mut all = vec!["admin", "--config", config.as_str()];
        all.extend_from_slice(args);
        all.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    let admin_ok = |args: &[&str], stdin: Option<&'static str>| {
        let all = admin(args);
        async move {
            let all: Vec<&str> = all.iter().map(String::as_str).collect();
            ok(&all, stdin).await
        }
    };

    // The accounts: the commune's adapter logs in with a password, the province's with its
    // certificate.
    let out = admin_ok(
        &["adapter-account", "commune", "--password-stdin"],
        Some("pw-commune\n"),
    )
    .await;
    assert!(
        out.contains(&format!("queue: {prefix}.adapter.commune")),
        "{out}"
    );
    let out = admin_ok(&["adapter-account", "province", "--certificate"], None).await;
    assert!(out.contains("EXTERNAL"), "{out}");
    assert!(!out.contains("password:"), "{out}");
    let out = run_cli(
        &admin(&["adapter-account", "nobody"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        None,
    )
    .await;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no system nobody"),
        "{out:?}"
    );

    let commune_url = format!("amqp://commune:pw-commune@127.0.0.1:{}/{vhost}", node.port);
    let province_url = format!(
        "amqps://127.0.0.1:{}/{vhost}?auth_mechanism=external",
        node.tls_port
    );
    let watch = |system: &str, url: &str, organ: &str, count: &str, fetch: Option<&Path>| {
        let mut args: Vec<String> = [
            "watch",
            "--url",
            &bus.url,
            "--system-id",
            system,
            "--secret",
            &format!("secret-{system}"),
            "--amqp-url",
            url,
            "--prefix",
            &prefix,
            "--organ",
            organ,
            "--count",
            count,
            "--amqp-ca-file",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.push(pki.ca().display().to_string());
        if system == "province" {
            args.push("--cert-file".into());
            args.push(province_cert.0.display().to_string());
            args.push("--key-file".into());
            args.push(province_cert.1.display().to_string());
        }
        if let Some(d) = fetch {
            args.push("--fetch".into());
            args.push(d.display().to_string());
        }
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            ok(&args, None).await
        }
    };
    // Declared and bound (nothing to read yet), then a document each way.
    watch("commune", &commune_url, COMMUNE, "0", None).await;
    watch("province", &province_url, PROVINCE, "0", None).await;
    let to_commune = bus.send_edoc("province", PROVINCE, &[COMMUNE]).await;
    let to_province = bus.send_edoc("commune", COMMUNE, &[PROVINCE]).await;
    let saved = dir.path().join("saved");
    std::fs::create_dir_all(&saved).expect("dir");
    let out = watch("commune", &commune_url, COMMUNE, "1", Some(&saved)).await;
    let notice: serde_json::Value = serde_json::from_str(out.trim()).expect("a JSON line");
    assert_eq!(notice["docId"], to_commune.as_str(), "{out}");
    assert_eq!(notice["recipient"], COMMUNE);
    let package = std::fs::read(saved.join(format!("{to_commune}.pkg"))).expect("saved package");
    assert!(!package.is_empty());
    let out = watch("province", &province_url, PROVINCE, "1", None).await;
    assert!(out.contains(&to_province), "{out}");

    // A watch that runs on: its connection closed under it (as by a broker restart), it
    // connects again by itself and goes on.
    let mut running = tokio::process::Command::new(lienthong_bin())
        .args([
            "watch",
            "--url",
            &bus.url,
            "--system-id",
            "commune",
            "--secret",
            "secret-commune",
            "--amqp-url",
            &commune_url,
            "--prefix",
            &prefix,
            "--organ",
            COMMUNE,
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("watch");
    let mut stdout = tokio::io::BufReader::new(running.stdout.take().expect("stdout")).lines();
    let mut stderr = tokio::io::BufReader::new(running.stderr.take().expect("stderr")).lines();
    listening(&mut stderr).await;
    let closed_by_broker = reqwest::Client::new()
        .delete(format!("{management}/api/connections/username/commune"))
        .basic_auth("guest", Some("guest"))
        .send()
        .await
        .expect("management");
    assert!(closed_by_broker.status().is_success());
    listening(&mut stderr).await;
    let again = bus.send_edoc("province", PROVINCE, &[COMMUNE]).await;
    let line = tokio::time::timeout(std::time::Duration::from_secs(30), stdout.next_line())
        .await
        .expect("a notification within 30 s")
        .expect("stdout")
        .expect("a line");
    assert!(line.contains(&again), "{line}");
    running.kill().await.expect("kill watch");

    // What the commune's account may not do.
    let commune = connect(&commune_url, &pki, None)
        .await
        .expect("commune logs in");
    let own = format!("{prefix}.adapter.commune");
    let inbox = format!("{prefix}.inbox");
    let bind = |key: &str| {
        let (own, inbox, key) = (own.clone(), inbox.clone(), key.to_owned());
        let commune = &commune;
        async move {
            let ch = commune.create_channel().await?;
            ch.queue_bind(
                own.as_str().into(),
                inbox.as_str().into(),
                key.as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
        }
    };
    assert_eq!(refused(bind(COMMUNE)).await, "allowed");
    for key in [PROVINCE, "#", "000.12.*.H49"] {
        let answer = refused(bind(key)).await;
        assert!(answer.contains("ACCESS_REFUSED"), "binding {key}: {answer}");
    }
    let answer = refused(async {
        let ch = commune.create_channel().await?;
        ch.basic_get(
            format!("{prefix}.stage.verifier").as_str().into(),
            BasicGetOptions::default(),
        )
        .await
    })
    .await;
    assert!(
        answer.contains("ACCESS_REFUSED"),
        "reading a stage queue: {answer}"
    );
    let answer = refused(async {
        let ch = commune.create_channel().await?;
        ch.queue_declare(
            format!("{prefix}.adapter.province").as_str().into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
    })
    .await;
    assert!(
        answer.contains("ACCESS_REFUSED"),
        "declaring another's queue: {answer}"
    );
    let answer = refused(async {
        let ch = commune.create_channel().await?;
        ch.confirm_select(ConfirmSelectOptions::default()).await?;
        ch.basic_publish(
            inbox.as_str().into(),
            COMMUNE.into(),
            BasicPublishOptions::default(),
            b"{}",
            Default::default(),
        )
        .await?
        .await
    })
    .await;
    assert!(
        answer.contains("ACCESS_REFUSED"),
        "publishing to the inbox: {answer}"
    );

    // The certificate account: not without the certificate, and not with a password.
    let answer = connect(&province_url, &pki, None)
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        !answer.is_empty(),
        "EXTERNAL without a certificate is refused"
    );
    let answer = connect(
        &format!("amqp://province:@127.0.0.1:{}/{vhost}", node.port),
        &pki,
        None,
    )
    .await;
    assert!(answer.is_err(), "the certificate account has no password");

    // Sync: the commune locked (its open connection closed, no new one); the province removed
    // (account and queue gone). The province leaves the registry behind the admin tool's back;
    // locking the commune with the admin tool brings every account in line at once.
    env.store.remove_system("province").await.expect("remove");
    let out = admin_ok(&["system-lock", "commune"], None).await;
    assert!(out.contains("adapter account commune: suspended"), "{out}");
    assert!(out.contains("adapter account province: removed"), "{out}");
    closed(&commune, "the commune's connection closed").await;
    assert!(
        connect(&commune_url, &pki, None).await.is_err(),
        "a locked system's adapter cannot connect"
    );
    let queues = cluster.ctl(
        node,
        &["list_queues", "-p", &vhost, "name", "--formatter", "json"],
    );
    let queues = String::from_utf8_lossy(&queues.stdout).into_owned();
    assert!(
        !queues.contains(&format!("{prefix}.adapter.province")),
        "{queues}"
    );
    assert!(
        queues.contains(&own),
        "a suspended system keeps its queue: {queues}"
    );
    // In line now: nothing more to do.
    let out = admin_ok(&["adapter-accounts-sync"], None).await;
    assert!(out.contains("in line"), "{out}");

    // Unlocked, with another agency instead of its own: its permissions follow, and its binding
    // for the agency it no longer acts for goes.
    env.store
        .set_system_locked("commune", false)
        .await
        .expect("unlock");
    env.store
        .put_system("commune", "UBND xã", "secret-commune", &[DEPARTMENT.into()])
        .await
        .expect("system");
    let out = admin_ok(&["adapter-accounts-sync"], None).await;
    assert!(out.contains("commune: permissions set"), "{out}");
    assert!(out.contains(&format!("unbound from {COMMUNE}")), "{out}");
    let commune = connect(&commune_url, &pki, None)
        .await
        .expect("the commune logs in again");
    let ch = commune.create_channel().await.expect("channel");
    ch.queue_bind(
        own.as_str().into(),
        inbox.as_str().into(),
        DEPARTMENT.into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .expect("binding its new agency");

    // A gateway process does the same by itself, every sync_secs: the commune locked again is
    // cut off without anyone running the sync.
    let gateway_config = dir.path().join("gateway.toml");
    let text = std::fs::read_to_string(&config).expect("config");
    let port = free_port();
    std::fs::write(
        &gateway_config,
        format!(
            "{text}sync_secs = 1\n\n[gateway]\nlisten = \"127.0.0.1:{port}\"\noperator_tokens_sha256 = [\"{}\"]\n",
            lienthong_store::sha256_hex(OPERATOR_TOKEN.as_bytes())
        ),
    )
    .expect("config");
    let mut processes = lienthong_tests::servers::Processes::new(dir.path());
    processes.start("gateway", &gateway_config, &["serve", "gateway"]);
    env.store
        .set_system_locked("commune", true)
        .await
        .expect("lock");
    closed(
        &commune,
        "the gateway closing the locked system's connection",
    )
    .await;
    // And counts what it did, for the alert on syncs that keep failing. A change is counted
    // once it is made, and a sync once all its changes are: the connection may close before.
    let metrics = eventually(
        "the gateway's count of the suspension",
        std::time::Duration::from_secs(20),
        || async {
            let text = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            let suspended = metric_sample(
                &text,
                "lienthong_adapter_account_changes_total",
                &["change=\"suspend\""],
            );
            let synced = metric_sample(
                &text,
                "lienthong_adapter_account_syncs_total",
                &["outcome=\"ok\""],
            );
            (suspended.is_some() && synced.is_some()).then_some(text)
        },
    )
    .await;
    let count =
        |metric: &str, label: &str| metric_sample(&metrics, metric, &[label]).unwrap_or(0.0);
    assert!(
        count("lienthong_adapter_account_syncs_total", "outcome=\"ok\"") >= 1.0,
        "{metrics}"
    );
    assert_eq!(
        count(
            "lienthong_adapter_account_changes_total",
            "change=\"suspend\""
        ),
        1.0,
        "{metrics}"
    );

    // The same through the operators' API of that gateway.
    let api = |method: reqwest::Method, system: &str, body: Option<serde_json::Value>| {
        let mut req = reqwest::Client::new()
            .request(
                method,
                format!("http://127.0.0.1:{port}/admin/systems/{system}/adapter-account"),
            )
            .bearer_auth(OPERATOR_TOKEN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        async move {
            let resp = req.send().await.expect("gateway");
            let status = resp.status().as_u16();
            (
                status,
                resp.json::<serde_json::Value>().await.expect("JSON"),
            )
        }
    };
    let (status, body) = api(reqwest::Method::GET, "commune", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["account"]["login"], "password");
    assert_eq!(body["account"]["suspended"], true);
    assert_eq!(body["account"]["bindings"], serde_json::json!([DEPARTMENT]));
    let (status, body) = api(reqwest::Method::PUT, "commune", Some(serde_json::json!({}))).await;
    assert_eq!(status, 409, "a locked system gets no account: {body}");
    let (status, body) = api(
        reqwest::Method::PUT,
        "ministry",
        Some(serde_json::json!({ "login": "smoke" })),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["data"]["errorDesc"]
            .as_str()
            .unwrap_or_default()
            .starts_with("login:"),
        "{body}"
    );
    // A broker user of that name that the bus did not make is left alone.
    cluster.ctl(node, &["add_user", "ministry", "someone-elses"]);
    let (status, body) = api(
        reqwest::Method::PUT,
        "ministry",
        Some(serde_json::json!({ "login": "certificate" })),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["data"]["errorDesc"]
            .as_str()
            .unwrap_or_default()
            .contains("did not make"),
        "{body}"
    );
    cluster.ctl(node, &["delete_user", "ministry"]);
    let (status, body) = api(
        reqwest::Method::PUT,
        "ministry",
        Some(serde_json::json!({})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["queue"], format!("{prefix}.adapter.ministry"));
    let password = body["password"]
        .as_str()
        .expect("a generated password, once")
        .to_owned();
    let ministry = connect(
        &format!("amqp://ministry:{password}@127.0.0.1:{}/{vhost}", node.port),
        &pki,
        None,
    )
    .await
    .expect("the ministry's adapter logs in with it");
    // An adapter with many connections: removing its user makes the broker close them while
    // the bus closes them too, and the broker lists a connection for a moment after it closed.
    let mut more = Vec::new();
    for _ in 0..12 {
        more.push(
            connect(
                &format!("amqp://ministry:{password}@127.0.0.1:{}/{vhost}", node.port),
                &pki,
                None,
            )
            .await
            .expect("the ministry's adapter opens another connection"),
        );
    }
    let (status, body) = api(reqwest::Method::GET, "ministry", None).await;
    assert_eq!(
        (status, body["account"]["suspended"].clone()),
        (200, false.into()),
        "{body}"
    );
    let all: serde_json::Value = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/admin/adapter-accounts"))
        .bearer_auth(OPERATOR_TOKEN)
        .send()
        .await
        .expect("gateway")
        .json()
        .await
        .expect("JSON");
    let listed: Vec<(String, bool)> = all["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|a| {
            (
                a["systemId"].as_str().unwrap_or_default().to_owned(),
                a["account"]["suspended"] == true,
            )
        })
        .collect();
    assert_eq!(
        listed,
        [("commune".to_owned(), true), ("ministry".to_owned(), false)],
        "{all}"
    );
    let (status, body) = api(reqwest::Method::DELETE, "ministry", None).await;
    assert_eq!(status, 200, "{body}");
    closed(&ministry, "the removed account's connection closed").await;
    for c in &more {
        closed(c, "each of the removed account's connections closed").await;
    }
    let (status, _) = api(reqwest::Method::GET, "ministry", None).await;
    assert_eq!(status, 404);
    let (status, _) = api(reqwest::Method::DELETE, "ministry", None).await;
    assert_eq!(status, 404);
    let anonymous = reqwest::Client::new()
        .get(format!(
            "http://127.0.0.1:{port}/admin/systems/ministry/adapter-account"
        ))
        .send()
        .await
        .expect("gateway");
    assert_eq!(anonymous.status().as_u16(), 401);
    let audit = env.store.trace("registry").await.expect("audit");
    for line in [
        "broker account of system ministry set (password)",
        "broker account of system ministry removed",
    ] {
        assert!(
            audit
                .iter()
                .any(|e| e.detail.as_deref().is_some_and(|d| d.contains(line))),
            "{line} is in the audit log"
        );
    }

    // The same in the console, as an operator clicks it.
    let console = lienthong_tests::browser::Console::start(
        &env,
        &format!("http://127.0.0.1:{port}"),
        &[COMMUNE],
    )
    .await;
    let b = lienthong_tests::browser::Browser::start().await;
    b.sign_in(&console.url, "op").await;
    b.goto(&format!("{}/lang/en?next=/registry", console.url))
        .await;
    assert_eq!(
        b.text("#adapter-url code").await,
        format!("amqps://127.0.0.1:{}/{vhost}", node.tls_port)
    );
    let commune_row = b.text("tr[id='system-commune'] td.adapter").await;
    assert!(
        commune_row.contains("Password")
            && commune_row.contains("Suspended")
            && commune_row.contains(&own),
        "{commune_row}"
    );
    assert!(
        b.client
            .find_all(fantoccini::Locator::Css(
                "tr[id='system-commune'] form.adapter-grant"
            ))
            .await
            .expect("find")
            .is_empty(),
        "a locked system is offered no account"
    );
    b.click("tr[id='system-ministry'] button.grant-adapter")
        .await;
    let made = b
        .notice()
        .await
        .expect("the console makes the ministry's adapter account");
    assert!(made.contains("ministry"), "{made}");
    let password = b.text("#adapter-password").await;
    assert_eq!(b.text("#adapter-user").await, "ministry");
    assert_eq!(
        b.text("#adapter-queue").await,
        format!("{prefix}.adapter.ministry")
    );
    assert!(b.text("#password-once").await.contains("this once"));
    b.screenshot("adapter-account-password").await;
    let ministry = connect(
        &format!("amqp://ministry:{password}@127.0.0.1:{}/{vhost}", node.port),
        &pki,
        None,
    )
    .await
    .expect("the ministry's adapter logs in with the password the console showed");
    // The password is in no URL: going back to the registry shows only the account.
    b.click("#back").await;
    assert!(
        !b.client
            .current_url()
            .await
            .expect("url")
            .as_str()
            .contains(&password)
    );
    let ministry_row = b.text("tr[id='system-ministry'] td.adapter").await;
    assert!(
        ministry_row.contains("Password") && !ministry_row.contains(&password),
        "{ministry_row}"
    );
    b.screenshot("adapter-accounts-registry").await;
    b.click("tr[id='system-ministry'] button.remove-adapter")
        .await;
    let done = b
        .notice()
        .await
        .expect("the console removes the ministry's adapter account");
    assert!(done.contains("ministry: adapter account removed"), "{done}");
    closed(
        &ministry,
        "the account removed in the console: its connection closed",
    )
    .await;
    let (status, _) = api(reqwest::Method::GET, "ministry", None).await;
    assert_eq!(status, 404);
    let audit = env.store.trace("registry").await.expect("audit");
    assert!(
        audit.iter().any(|e| e.detail.as_deref().is_some_and(|d| {
            d.contains("broker account of system ministry removed")
                && d.contains("op via the console")
        })),
        "the console's removal is in the audit log, with who did it: {audit:?}"
    );
    // A management API that does not answer: the registry still shows, and says why the
    // accounts are missing.
    let unreachable_config = dir.path().join("gateway-unreachable.toml");
    let unreachable_port = free_port();
    std::fs::write(
        &unreachable_config,
        std::fs::read_to_string(&gateway_config)
            .expect("config")
            .replace(&management, &format!("http://127.0.0.1:{}", free_port()))
            .replace(
                &format!("listen = \"127.0.0.1:{port}\""),
                &format!("listen = \"127.0.0.1:{unreachable_port}\""),
            ),
    )
    .expect("config");
    processes.start(
        "gateway-unreachable",
        &unreachable_config,
        &["serve", "gateway"],
    );
    let unreachable_url = format!("http://127.0.0.1:{unreachable_port}");
    eventually(
        "the second gateway",
        std::time::Duration::from_secs(30),
        || async {
            reqwest::get(format!("{unreachable_url}/readyz"))
                .await
                .ok()
                .filter(|r| r.status().is_success())
                .map(|_| ())
        },
    )
    .await;
    let console_unreachable =
        lienthong_tests::browser::Console::start(&env, &unreachable_url, &[COMMUNE]).await;
    b.sign_in(&console_unreachable.url, "op").await;
    b.goto(&format!(
        "{}/lang/en?next=/registry",
        console_unreachable.url
    ))
    .await;
    let error = b.text("#adapter-error").await;
    assert!(
        error.contains("could not be read") && error.contains("management API"),
        "{error}"
    );
    assert!(b.text("tr[id='system-ministry']").await.contains("VPCP"));
    console_unreachable.stop().await;
    b.close().await;
    console.stop().await;
    drop(processes);

    bus.stop().await;
    env.teardown().await;
    drop(cluster);
}

/// The node's settings, with the test CA's files copied where its configuration names them.
fn node_settings_with_pki(pki: &Pki) -> NodeSettings {
    let mut settings = node_settings();
    // `{dir}` is the node's own directory, which does not exist yet: name the PKI's instead.
    settings.extra_config = settings
        .extra_config
        .replace("{dir}/pki", &pki.dir.display().to_string());
    settings
}

/// The management plugin starts a moment after the node answers.
async fn wait_for_management(base: &str) {
    let http = reqwest::Client::new();
    eventually(
        "the management API",
        std::time::Duration::from_secs(60),
        || {
            let req = http
                .get(format!("{base}/api/overview"))
                .basic_auth("guest", Some("guest"));
            async move {
                req.send()
                    .await
                    .ok()
                    .filter(|r| r.status().is_success())
                    .map(|_| ())
            }
        },
    )
    .await;
}

/// Waits until the broker closed `conn` (20 s at most).
async fn closed(conn: &lapin::Connection, what: &str) {
    eventually(what, std::time::Duration::from_secs(20), || {
        let connected = conn.status().connected();
        async move { (!connected).then_some(()) }
    })
    .await;
}

/// Waits (30 s at most) for a `watch` to say it listens.
async fn listening(
    stderr: &mut tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStderr>>,
) {
    let said = async {
        while let Some(line) = stderr.next_line().await.expect("stderr") {
            if line.starts_with("listening on") {
                return;
            }
        }
        panic!("watch ended");
    };
    tokio::time::timeout(std::time::Duration::from_secs(30), said)
        .await
        .expect("watch listening within 30 s");
}

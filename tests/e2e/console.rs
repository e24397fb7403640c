//! The web console: signing in, what each role may see and do, forms that only the console's
//! own pages can send, every action in the audit log under the person's name; then headless
//! Chromium clicking through every page as an operator, a security officer and an agency clerk,
//! keeping a screenshot of each (`target/console-screenshots/`).

use std::time::Duration;

use lienthong_bus::{Outgoing, Publisher, Route};
use lienthong_store::{AgencyState, DeliveryState};
use lienthong_tests::browser::{Browser, Console, PASSWORD};
use lienthong_tests::*;

/// A client that keeps no cookies and follows no redirects: each answer is seen as sent.
fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// Signs in; the session cookie (`name=value`).
async fn sign_in(console: &str, user: &str, password: &str) -> Result<String, String> {
    let r = http()
        .post(format!("{console}/login"))
        .form(&[("name", user), ("password", password), ("next", "/")])
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), 303);
    let location = r.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    match r.headers().get("set-cookie") {
        Some(c) => {
            let c = c.to_str().expect("cookie");
            assert!(
                c.contains("HttpOnly") && c.contains("SameSite=Strict"),
                "{c}"
            );
            Ok(c.split(';').next().expect("pair").to_owned())
        }
        None => Err(location),
    }
}

async fn get(console: &str, cookie: &str, path: &str) -> (u16, String) {
    let r = http()
        .get(format!("{console}{path}"))
        .header("cookie", cookie)
        .send()
        .await
        .expect("get");
    (r.status().as_u16(), r.text().await.expect("body"))
}

async fn state_of(env: &Env, code: &str) -> AgencyState {
    env.store
        .agency(code)
        .await
        .expect("agency")
        .expect("known")
        .state
}

/// The form token on a page.
fn form_token(page: &str) -> String {
    let at = page
        .find("name=\"form\" value=\"")
        .expect("a form token on the page");
    page[at + 19..].split('"').next().expect("token").to_owned()
}

async fn post(console: &str, cookie: &str, path: &str, form: &[(&str, &str)]) -> (u16, String) {
    let r = http()
        .post(format!("{console}{path}"))
        .header("cookie", cookie)
        .form(form)
        .send()
        .await
        .expect("post");
    let location = r
        .headers()
        .get("location")
        .map(|l| l.to_str().expect("location").to_owned())
        .unwrap_or_default();
    (r.status().as_u16(), location)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_forms_and_the_audit_log() {
    let env = Env::new(Backend::Sqlite).await;
    let bus = InProcessBus::start(&env).await;
    let console = Console::start(&env, &bus.url, &[COMMUNE]).await;
    let c = console.url.as_str();
    let to_ministry = bus.send_edoc("province", PROVINCE, &[MINISTRY]).await;
    let to_commune = bus.send_edoc("province", PROVINCE, &[COMMUNE]).await;
    env.all_delivered(&to_ministry).await;
    env.all_delivered(&to_commune).await;

    // Signing in: a wrong password, an unknown user and a page without a session all go back
    // to the sign-in page; the next page is kept.
    let refused = sign_in(c, "op", "wrong").await.expect_err("wrong password");
    assert!(
        refused.starts_with("/login?") && refused.contains("failed=1"),
        "{refused}"
    );
    sign_in(c, "nobody", PASSWORD)
        .await
        .expect_err("unknown user");
    let r = http().get(format!("{c}/failed")).send().await.expect("get");
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/login?next=%2Ffailed");
    let forged = "lt_console=b3A|OTk5OTk5OTk5OTk5OQ.AAAA";
    assert_eq!(
        get(c, forged, "/overview").await.0,
        303,
        "a forged cookie is no session"
    );

    let op = sign_in(c, "op", PASSWORD).await.expect("operator");
    let sec = sign_in(c, "sec", PASSWORD).await.expect("security officer");
    let clerk = sign_in(c, "clerk", PASSWORD).await.expect("viewer");

    // Each role sees its pages and no others.
    for (cookie, allowed, refused) in [
        (
            &op,
            &[
                "/overview",
                "/documents",
                "/failed",
                "/dead",
                "/registry",
                "/certificates",
                "/audit",
            ][..],
            &["/verdicts", "/verdicts.csv"][..],
        ),
        (
            &sec,
            &["/verdicts", "/certificates", "/audit"][..],
            &["/overview", "/documents", "/registry", "/dead", "/failed"][..],
        ),
        (
            &clerk,
            &["/documents"][..],
            &[
                "/overview",
                "/registry",
                "/dead",
                "/failed",
                "/verdicts",
                "/certificates",
                "/audit",
                "/api/overview",
            ][..],
        ),
    ] {
        for path in allowed {
            let (status, body) = get(c, cookie, path).await;
            assert_eq!(status, 200, "{path}: {body}");
        }
        for path in refused {
            assert_eq!(get(c, cookie, path).await.0, 403, "{path}");
        }
    }

    // A viewer sees its agencies' documents only, and cannot open another's trace.
    let (_, page) = get(c, &clerk, "/documents").await;
    assert!(page.contains(&to_commune), "its own document is listed");
    assert!(!page.contains(&to_ministry), "another agency's is not");
    let (_, page) = get(c, &clerk, &format!("/documents?agency={MINISTRY}")).await;
    assert!(
        !page.contains(&to_ministry),
        "naming another agency does not widen the search"
    );
    assert_eq!(
        get(c, &clerk, &format!("/documents/{to_ministry}")).await.0,
        404
    );
    let (status, trace) = get(c, &clerk, &format!("/documents/{to_commune}")).await;
    assert_eq!(status, 200);
    assert!(trace.contains("delivered"), "{trace}");
    // The operator sees both, and each trace.
    let (_, page) = get(c, &op, &format!("/documents?docId={to_ministry}")).await;
    assert!(page.contains(&to_ministry));
    // A search the gateway refuses says which field and why, on the page.
    let (status, page) = get(c, &op, "/documents?fromDate=2026-13-01").await;
    assert_eq!(status, 200);
    assert!(page.contains("fromDate"), "{page}");

    // Forms: without the page's token, or with another session's, nothing is done.
    let (_, registry) = get(c, &op, "/registry").await;
    let token = form_token(&registry);
    // This gateway manages no AMQP adapter accounts: the registry shows no column for them, and
    // no error.
    assert!(
        !registry.contains("adapter-grant") && !registry.contains("adapter-error"),
        "{registry}"
    );
    let lock = [("code", COMMUNE), ("state", "locked")];
    assert_eq!(post(c, &op, "/registry/agency-state", &lock).await.0, 403);
    let (_, clerk_page) = get(c, &clerk, "/documents").await;
    let clerk_token = form_token(&clerk_page);
    let with = |t: &str| {
        [("code", COMMUNE), ("state", "locked"), ("form", t)].map(|(k, v)| (k, v.to_owned()))
    };
    let other_session = with(&clerk_token);
    let other: Vec<(&str, &str)> = other_session
        .iter()
        .map(|(k, v)| (*k, v.as_str()))
        .collect();
    assert_eq!(post(c, &op, "/registry/agency-state", &other).await.0, 403);
    assert_eq!(state_of(&env, COMMUNE).await, AgencyState::Active);
    // A viewer's own token does not make it an operator.
    assert_eq!(
        post(c, &clerk, "/registry/agency-state", &other).await.0,
        403
    );

    // With the token the operator locks the agency; the audit log names the operator.
    let (status, location) = post(
        c,
        &op,
        "/registry/agency-state",
        &[("code", COMMUNE), ("state", "locked"), ("form", &token)],
    )
    .await;
    assert_eq!(status, 303);
    assert!(location.starts_with("/registry?done="), "{location}");
    assert_eq!(state_of(&env, COMMUNE).await, AgencyState::Locked);
    let (status, location) = post(
        c,
        &op,
        "/registry/system-lock",
        &[
            ("systemId", "commune"),
            ("locked", "true"),
            ("form", &token),
        ],
    )
    .await;
    assert!(status == 303 && location.contains("done="), "{location}");
    assert!(
        env.store
            .system("commune")
            .await
            .expect("system")
            .expect("known")
            .locked
    );
    // The operator binds a client certificate to the system (by fingerprint, as openssl prints
    // it), then unbinds it; a malformed one comes back named.
    let certificates = || async {
        env.store
            .system("commune")
            .await
            .expect("system")
            .expect("known")
            .certificates
    };
    let fingerprint = "ab".repeat(32);
    let with_colons = vec!["AB"; 32].join(":");
    for (action, value) in [("bind", with_colons.as_str()), ("unbind", "not hex/..")] {
        let (status, location) = post(
            c,
            &op,
            "/registry/system-certificate",
            &[
                ("systemId", "commune"),
                ("action", action),
                ("certificate", value),
                ("form", &token),
            ],
        )
        .await;
        assert_eq!(status, 303, "{location}");
        if action == "bind" {
            assert!(location.contains("done="), "{location}");
        } else {
            assert!(
                location.contains("error=") && location.contains("certificate"),
                "{location}"
            );
        }
    }
    assert_eq!(certificates().await, std::slice::from_ref(&fingerprint));
    let (_, location) = post(
        c,
        &op,
        "/registry/system-certificate",
        &[
            ("systemId", "commune"),
            ("action", "unbind"),
            ("certificate", &fingerprint),
            ("form", &token),
        ],
    )
    .await;
    assert!(location.contains("done="), "{location}");
    assert!(certificates().await.is_empty());
    // A refusal by the gateway comes back named, nothing changed.
    let (_, location) = post(
        c,
        &op,
        "/registry/agency-state",
        &[
            ("code", "000.77.77.H77"),
            ("state", "locked"),
            ("form", &token),
        ],
    )
    .await;
    assert!(
        location.contains("error=") && location.contains("no+such+agency"),
        "{location}"
    );

    let audit = eventually(
        "the actions in the audit log",
        Duration::from_secs(15),
        || async {
            let (_, page) = get(c, &sec, "/audit").await;
            (page.matches("op via the console").count() >= 2).then_some(page)
        },
    )
    .await;
    assert!(audit.contains(&format!("{COMMUNE} set locked")), "{audit}");
    assert!(audit.contains("system commune locked"), "{audit}");

    // The security officer filters verdicts and exports them; a bad filter is named.
    let (_, page) = get(c, &sec, "/verdicts?outcome=unsigned").await;
    assert!(
        page.contains(&to_ministry),
        "unsigned packages have unsigned verdicts"
    );
    let (_, page) = get(c, &sec, "/verdicts?fromDate=yesterday").await;
    assert!(page.contains("fromDate"), "{page}");
    let r = http()
        .get(format!("{c}/verdicts.csv?outcome=unsigned"))
        .header("cookie", &sec)
        .send()
        .await
        .expect("csv");
    assert_eq!(r.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = r.text().await.expect("csv");
    assert!(
        csv.lines().count() >= 3 && csv.contains(&to_commune),
        "{csv}"
    );

    // Signing out ends the session's pages.
    let (_, page) = get(c, &op, "/overview").await;
    let (status, location) = post(c, &op, "/logout", &[("form", &form_token(&page))]).await;
    assert_eq!((status, location.as_str()), (303, "/login"));

    console.stop().await;
    bus.stop().await;
    env.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_clicks_through_every_page_of_each_role() {
    let env = Env::new(Backend::Sqlite).await;
    // A copy that fails (its recipient locked after acceptance) and a poison message, for the
    // operator to mend from the console.
    let (gateway, workers, doc_id) = copy_to_a_recipient_locked_after_acceptance(&env).await;
    eventually(
        "the copy to the locked agency failed",
        Duration::from_secs(20),
        || async {
            let legs = env.store.legs(&doc_id).await.expect("legs");
            legs.iter()
                .any(|l| l.recipient == COMMUNE && l.delivery == DeliveryState::Failed)
                .then_some(())
        },
    )
    .await;
    let t = env.topology();
    Publisher::new(&env.bus, "test-poison")
        .publish(Outgoing {
            route: Route {
                exchange: t.pipeline(),
                routing_key: "router".into(),
                mandatory: true,
            },
            payload: b"not json".to_vec(),
            message_id: "poison-for-the-console".into(),
            doc_id: None,
        })
        .await
        .expect("published");

    let console = Console::start(&env, &gateway.url, &[COMMUNE]).await;
    let c = console.url.as_str();
    let b = Browser::start().await;
    let mut shots = Vec::new();

    // The operator, in Vietnamese (the default).
    b.sign_in(c, "op").await;
    assert_eq!(b.path().await, "/overview");
    assert_eq!(b.text("nav a.active").await, "Tổng quan");
    // The overview fills itself in: the router's queue with its consumer, and the delivery
    // time of documents sent while it watches.
    eventually(
        "the overview's figures",
        Duration::from_secs(30),
        || async {
            gateway.send_edoc("province", PROVINCE, &[MINISTRY]).await;
            tokio::time::sleep(Duration::from_millis(500)).await;
            let q = b.text("#queues tbody").await;
            let moving = |t: String| !t.starts_with('–') && t != "0.00";
            (q.contains("stage.router")
                && moving(b.text("#latency").await)
                && moving(b.text("#in-per-s").await)
                && moving(b.text("#out-per-s").await))
            .then_some(())
        },
    )
    .await;
    shots.push(b.screenshot("01-overview-vi").await);

    // Documents: search by docId, open the trace.
    b.click("nav a[href='/documents']").await;
    b.fill("#search input[name=docId]", &doc_id).await;
    b.click("#search-button").await;
    eventually("the search's answer", Duration::from_secs(10), || async {
        let url = b.client.current_url().await.expect("url");
        url.query()
            .is_some_and(|q| q.contains(&doc_id))
            .then_some(())
    })
    .await;
    b.click(&format!("a.doc[href='/documents/{doc_id}']")).await;
    assert_eq!(b.text("#doc-id").await, doc_id);
    let trace = b.text("#trace").await;
    assert!(
        trace.contains("accepted") && trace.contains("failed"),
        "{trace}"
    );
    shots.push(b.screenshot("02-trace").await);

    // Registry: unlock the agency (the cause of the failure).
    b.click("nav a[href='/registry']").await;
    b.fill("#filter", COMMUNE).await;
    b.click("form.search button").await;
    shots.push(b.screenshot("03-registry").await);
    b.click(&format!("tr[id='agency-{COMMUNE}'] button.lock"))
        .await;
    let done = b.notice().await.expect("the agency unlocked");
    assert!(done.contains(COMMUNE), "{done}");
    assert_eq!(state_of(&env, COMMUNE).await, AgencyState::Active);

    // Failed deliveries: retry the copy, which is now delivered.
    b.click("nav a[href='/failed']").await;
    assert!(
        b.text("#failed")
            .await
            .contains("recipient is locked in the registry")
    );
    shots.push(b.screenshot("04-failed").await);
    b.click("#failed button.retry").await;
    let done = b.notice().await.expect("the copy retried");
    assert!(done.contains(&doc_id), "{done}");
    env.all_delivered(&doc_id).await;

    // Dead letters: the poison message, discarded.
    b.click("nav a[href='/dead']").await;
    eventually(
        "the poison message listed",
        Duration::from_secs(15),
        || async {
            b.goto(&format!("{c}/dead")).await;
            b.text("#dead").await.contains("stage.router").then_some(())
        },
    )
    .await;
    shots.push(b.screenshot("05-dead-letters").await);
    b.click("input[value='poison-for-the-console']").await;
    b.click("#discard").await;
    let done = b.notice().await.expect("the dead letter discarded");
    assert!(done.contains("discard"), "{done}");
    assert!(!b.text("#dead").await.contains("stage.router"));

    // Certificates, then the audit log naming the operator.
    b.click("nav a[href='/certificates']").await;
    let expiries = b.text("#expiries").await;
    assert!(expiries.contains("Test Root CA"), "{expiries}");
    // The test CRL falls due within the warning period, or has already.
    assert!(
        expiries.contains("Danh sách thu hồi (CRL)")
            && (expiries.contains("Sắp hết hạn") || expiries.contains("ĐÃ HẾT HẠN")),
        "{expiries}"
    );
    shots.push(b.screenshot("06-certificates").await);
    b.click("nav a[href='/audit']").await;
    eventually(
        "every action in the audit log",
        Duration::from_secs(15),
        || async {
            b.goto(&format!("{c}/audit")).await;
            let audit = b.text("#audit").await;
            (audit.contains(&format!("{COMMUNE} set active (op via the console"))
                && audit.contains("discarded (died in")
                && audit.contains("sent to the router again (op via the console"))
            .then_some(())
        },
    )
    .await;
    shots.push(b.screenshot("07-audit").await);

    // English labels, kept across pages.
    b.click("#lang").await;
    assert_eq!(b.text("nav a.active").await, "Audit log");
    b.click("nav a[href='/overview']").await;
    assert_eq!(b.text("nav a.active").await, "Overview");
    shots.push(b.screenshot("08-overview-en").await);
    b.click("#logout").await;
    assert_eq!(b.path_when("/login").await, "/login");

    // The security officer: verdicts, filtered, with the export link of the same filter.
    b.sign_in(c, "sec").await;
    assert_eq!(b.path().await, "/verdicts");
    b.client
        .find(fantoccini::Locator::Css("#filter select[name=outcome]"))
        .await
        .expect("outcome")
        .select_by_value("unsigned")
        .await
        .expect("select");
    b.click("#filter-button").await;
    assert!(b.text("#verdicts").await.contains(&doc_id));
    let export = b
        .client
        .find(fantoccini::Locator::Css("#export"))
        .await
        .expect("export")
        .attr("href")
        .await
        .expect("href")
        .unwrap_or_default();
    assert_eq!(export, "/verdicts.csv?outcome=unsigned");
    shots.push(b.screenshot("09-verdicts").await);
    b.click("#logout").await;
    assert_eq!(b.path_when("/login").await, "/login");

    // The agency clerk: its documents only; the operator's pages are refused.
    b.sign_in(c, "clerk").await;
    assert_eq!(b.path().await, "/documents");
    let listed = b.text("#documents").await;
    assert!(
        listed.contains(&doc_id),
        "the document to its agency: {listed}"
    );
    assert_eq!(
        b.client
            .find_all(fantoccini::Locator::Css("#documents a.doc"))
            .await
            .expect("rows")
            .len(),
        1
    );
    shots.push(b.screenshot("10-viewer-documents").await);
    b.goto(&format!("{c}/registry")).await;
    assert!(
        b.text("#error")
            .await
            .contains("Your role may not see this page")
    );

    for s in &shots {
        assert!(
            std::fs::metadata(s).expect("kept").len() > 10_000,
            "{}",
            s.display()
        );
    }
    b.close().await;
    console.stop().await;
    workers.stop().await;
    gateway.stop().await;
    env.teardown().await;
}

#[test]
fn the_cli_makes_console_users_whose_password_signs_in() {
    use std::io::Write;
    let mut child = std::process::Command::new(lienthong_bin())
        .args(["admin", "console-user", "clerk.hue", "--role", "viewer"])
        .args([
            "--agency",
            COMMUNE,
            "--password-stdin",
            "--iterations",
            "1000",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"mat-khau-du-dai-1\n")
        .expect("write");
    let out = child.wait_with_output().expect("run");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).expect("utf8");
    #[derive(serde::Deserialize)]
    struct Entry {
        console: Users,
    }
    #[derive(serde::Deserialize)]
    struct Users {
        users: Vec<lienthong_console::User>,
    }
    let entry: Entry = toml::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    let user = &entry.console.users[0];
    assert_eq!(user.name, "clerk.hue");
    assert_eq!(user.role, lienthong_console::Role::Viewer);
    assert_eq!(user.agencies, [COMMUNE]);
    assert!(lienthong_console::users::password_matches(
        &user.password,
        "mat-khau-du-dai-1"
    ));
    assert!(
        !user.password.contains("mat-khau"),
        "only a hash is printed"
    );

    // A viewer without agencies, or a short password, is refused with the reason.
    let refused = std::process::Command::new(lienthong_bin())
        .args(["admin", "console-user", "x", "--role", "viewer"])
        .output()
        .expect("run");
    assert!(!refused.status.success());
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(
        why.contains("agencies: a viewer sees only its agencies"),
        "{why}"
    );
}

//! Who may do what, over every way in: a system reaches only the documents of the agencies it acts
//! for (another's document answers exactly as one that does not exist, so ids cannot be probed),
//! cannot send or answer as another agency, and the operators' and security officers' APIs take
//! only their own role's token. The console's roles are tested in `console.rs`.

use lienthong_client::ClientError;
use lienthong_edxml::{StatusCode, write_edoc};
use lienthong_tests::*;

/// The error code a refused call gave.
fn code<T: std::fmt::Debug>(result: Result<T, ClientError>, what: &str) -> i64 {
    match result {
        Err(e) => e.code().unwrap_or_else(|| panic!("{what}: {e}")),
        Ok(v) => panic!("{what}: allowed: {v:?}"),
    }
}

#[tokio::test]
async fn a_system_reaches_only_its_own_agencies_documents_and_speaks_only_for_them() {
    let env = Env::new(Backend::Sqlite).await;
    let bus = InProcessBus::start(&env).await;
    let letter = edoc(PROVINCE, &[MINISTRY], unique_number());
    let doc_id = bus
        .client("province")
        .send(write_edoc(&letter), "edoc")
        .await
        .expect("sent");
    env.all_delivered(&doc_id).await;
    let (province, ministry, commune) = (
        bus.client("province"),
        bus.client("ministry"),
        bus.client("commune"),
    );

    // The commune is neither sender nor recipient: every way to the document is closed, with the
    // answer a missing document gets.
    let missing = "no-such-doc-id";
    for id in [doc_id.as_str(), missing] {
        assert_eq!(code(commune.fetch(id).await, "getEdoc"), 24);
        assert_eq!(code(commune.fetch_json(id).await, "JSON getEdoc"), 24);
        assert_eq!(
            code(commune.update_status(id, "done").await, "updateStatus"),
            24
        );
        assert_eq!(code(commune.sent(Some(id)).await, "getSentEdocList"), 24);
        assert_eq!(code(commune.trace(id).await, "trace"), 24);
    }
    let desc = |r: Result<lienthong_client::Fetched, ClientError>| match r {
        Err(ClientError::Api { desc, .. }) => desc,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        desc(commune.fetch(&doc_id).await).replace(&doc_id, "ID"),
        desc(commune.fetch(missing).await).replace(missing, "ID"),
        "another's document and a missing one read the same"
    );
    assert!(
        !commune
            .inbox("edoc", &[("status", "all")])
            .await
            .expect("inbox")
            .iter()
            .any(|r| r["docId"] == doc_id.as_str())
    );

    // The recipient reads it and reports on its copy, but the sender's view is the sender's.
    ministry
        .fetch(&doc_id)
        .await
        .expect("the recipient reads it");
    ministry
        .update_status(&doc_id, "processing")
        .await
        .expect("its own copy");
    assert_eq!(
        code(ministry.sent(Some(&doc_id)).await, "sent by another"),
        24
    );
    // The sender sees its copies, but does not report on the recipient's copy.
    assert_eq!(province.sent(Some(&doc_id)).await.expect("sent").len(), 1);
    assert_eq!(
        code(province.update_status(&doc_id, "done").await, "sender"),
        24
    );

    // Speaking for another agency: a letter from the province sent by the commune's system, and a
    // status about the letter in the ministry's name sent by the commune's or the province's.
    let forged = edoc(PROVINCE, &[MINISTRY], unique_number());
    assert_eq!(
        code(
            commune.send(write_edoc(&forged), "edoc").await,
            "letter as another agency"
        ),
        19
    );
    for system in [&commune, &province] {
        assert_eq!(
            code(
                send_status(system, &letter, MINISTRY, StatusCode::Accepted).await,
                "status in the recipient's name"
            ),
            19
        );
    }
    // Nothing of that reached the sender: its copy shows no business status.
    let rows = province.sent(Some(&doc_id)).await.expect("sent");
    assert!(rows[0]["businessStatus"].is_null(), "{rows:?}");
    // The recipient's own status does.
    send_status(&ministry, &letter, MINISTRY, StatusCode::Accepted)
        .await
        .expect("the recipient's status");

    bus.stop().await;
    env.teardown().await;
}

#[tokio::test]
async fn the_admin_api_takes_only_the_token_of_its_role() {
    let env = Env::new(Backend::Sqlite).await;
    let bus = InProcessBus::start_roles(&env, &env.bus, &["gateway"]).await;
    let http = reqwest::Client::new();
    let get = |path: &str, auth: Auth| {
        let mut rb = http.get(format!("{}{path}", bus.url));
        rb = auth.apply(rb);
        async move { rb.send().await.expect("answer").status().as_u16() }
    };
    let operator_only = [
        "/admin/dead",
        "/admin/failed",
        "/admin/documents",
        "/admin/systems",
        "/admin/links",
    ];
    for path in operator_only {
        assert_eq!(get(path, Auth::None).await, 401, "{path}");
        assert_eq!(
            get(path, Auth::System).await,
            401,
            "{path}: a system's secret"
        );
        assert_eq!(get(path, Auth::Officer).await, 401, "{path}: officer");
        assert_eq!(get(path, Auth::Operator).await, 200, "{path}: operator");
    }
    // Adapter accounts: the token is checked before anything else (this gateway has no
    // [amqp_adapters], and says so to an operator only).
    for account in [
        "/admin/systems/province/adapter-account",
        "/admin/adapter-accounts",
    ] {
        for auth in [Auth::None, Auth::System, Auth::Officer] {
            assert_eq!(get(account, auth).await, 401, "{account}");
        }
        assert_eq!(
            get(account, Auth::Operator).await,
            501,
            "{account}: operator"
        );
    }
    assert_eq!(get("/admin/verdicts", Auth::Operator).await, 401);
    assert_eq!(get("/admin/verdicts", Auth::System).await, 401);
    assert_eq!(get("/admin/verdicts", Auth::Officer).await, 200);
    for auth in [Auth::Operator, Auth::Officer] {
        assert_eq!(get("/admin/audit", auth).await, 200);
    }
    assert_eq!(get("/admin/audit", Auth::System).await, 401);

    // A security officer cannot lock an agency: refused, and the agency stays active.
    let lock = |auth: Auth| {
        let rb = http
            .post(format!("{}/admin/registry/{COMMUNE}/state", bus.url))
            .json(&serde_json::json!({"state": "locked"}));
        let rb = auth.apply(rb);
        async move { rb.send().await.expect("answer").status().as_u16() }
    };
    assert_eq!(lock(Auth::Officer).await, 401);
    assert_eq!(lock(Auth::System).await, 401);
    let agency = env
        .store
        .agency(COMMUNE)
        .await
        .expect("agency")
        .expect("known");
    assert_eq!(agency.state, lienthong_store::AgencyState::Active);
    assert_eq!(lock(Auth::Operator).await, 200);

    bus.stop().await;
    env.teardown().await;
}

#[derive(Clone, Copy)]
enum Auth {
    None,
    /// An agency system's credentials, which the admin API does not take.
    System,
    Operator,
    Officer,
}

impl Auth {
    fn apply(self, rb: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            Auth::None => rb,
            Auth::System => rb
                .header("X-SystemId", "province")
                .header("X-SecretKey", "secret-province"),
            Auth::Operator => rb.bearer_auth(OPERATOR_TOKEN),
            Auth::Officer => rb.bearer_auth(OFFICER_TOKEN),
        }
    }
}

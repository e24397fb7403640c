//! The `lienthong` command line as an integrator uses it: admin commands on the store, and the
//! client commands against a running bus.

use std::process::{Command, Output};
use std::time::Duration;

use lienthong_tests::*;

fn run(args: &[&str], envs: &[(&str, &str)]) -> Output {
    Command::new(lienthong_bin())
        .args(args)
        .envs(envs.iter().copied())
        .env("RUST_LOG", "warn")
        .output()
        .expect("run lienthong")
}

fn ok(args: &[&str], envs: &[(&str, &str)]) -> String {
    let out = run(args, envs);
    assert!(
        out.status.success(),
        "lienthong {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_integrator_drives_the_bus_from_the_command_line() {
    let env = Env::new(Backend::Sqlite).await;
    let config = env.dir.path().join("lienthong.toml");
    env.write_admin_config(&config);
    let cfg = config.to_str().expect("utf8 path");
    let bus = InProcessBus::start(&env).await;

    // Admin: a new system for the department, with a generated secret.
    let out = ok(
        &[
            "admin",
            "--config",
            cfg,
            "system-add",
            "so-tttt",
            "--name",
            "Sở TTTT",
            "--organ",
            DEPARTMENT,
        ],
        &[],
    );
    let secret = out
        .lines()
        .find_map(|l| l.strip_prefix("X-SecretKey: "))
        .expect("secret printed")
        .to_owned();
    assert_eq!(secret.len(), 64, "256-bit hex secret");
    let bad = run(
        &[
            "admin",
            "--config",
            cfg,
            "system-add",
            "x",
            "--name",
            "x",
            "--organ",
            "G22",
        ],
        &[],
    );
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("--organ"),
        "names the bad argument"
    );

    // Client: build a sample package, send it as the department, read it as the ministry.
    let package = env.dir.path().join("cv.edxml");
    let package_s = package.to_str().expect("utf8");
    let number = unique_number().to_string();
    ok(
        &[
            "sample", "--from", DEPARTMENT, "--to", MINISTRY, "--number", &number, "-o", package_s,
        ],
        &[],
    );
    let as_dept = [
        ("LIENTHONG_URL", bus.url.as_str()),
        ("LIENTHONG_SYSTEM_ID", "so-tttt"),
        ("LIENTHONG_SECRET", secret.as_str()),
    ];
    let doc_id = ok(&["send", package_s], &as_dept).trim().to_owned();
    assert!(!doc_id.is_empty());

    let as_ministry = [
        ("LIENTHONG_URL", bus.url.as_str()),
        ("LIENTHONG_SYSTEM_ID", "ministry"),
        ("LIENTHONG_SECRET", "secret-ministry"),
    ];
    let ministry = bus.client("ministry");
    eventually("delivery", Duration::from_secs(20), || async {
        (!ministry.inbox("edoc", &[]).await.expect("inbox").is_empty()).then_some(())
    })
    .await;
    let inbox: serde_json::Value =
        serde_json::from_str(&ok(&["inbox"], &as_ministry)).expect("json");
    assert_eq!(inbox[0]["docId"], doc_id.as_str());
    let fetched = env.dir.path().join("fetched.edxml");
    ok(
        &["fetch", &doc_id, "-o", fetched.to_str().expect("utf8")],
        &as_ministry,
    );
    assert_eq!(
        std::fs::read(&fetched).expect("fetched"),
        std::fs::read(&package).expect("sent")
    );

    // Statuses built by the CLI, and an illegal one refused with the rule.
    ok(&["status", &doc_id, "--code", "01"], &as_ministry);
    ok(
        &[
            "status",
            &doc_id,
            "--code",
            "03",
            "--description",
            "Đã vào sổ",
        ],
        &as_ministry,
    );
    // 02 (refused) cannot follow 03 (accepted).
    let refused = run(&["status", &doc_id, "--code", "02"], &as_ministry);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("error 25"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    ok(&["update", &doc_id, "done"], &as_ministry);

    let sent: serde_json::Value =
        serde_json::from_str(&ok(&["sent", &doc_id], &as_dept)).expect("json");
    assert_eq!(sent[0]["businessStatus"], "03");
    assert_eq!(sent[0]["status"], "done");
    let trace = eventually(
        "trace with both statuses",
        Duration::from_secs(20),
        || async {
            let t: serde_json::Value =
                serde_json::from_str(&ok(&["trace", &doc_id], &as_dept)).ok()?;
            (t.as_array()?
                .iter()
                .filter(|e| e["event"] == "status")
                .count()
                == 2)
                .then_some(t)
        },
    )
    .await;
    assert!(
        trace
            .as_array()
            .is_some_and(|t| t.iter().any(|e| e["event"] == "fetched"))
    );

    // Admin: lock the ministry in the registry; the CLI shows error 23 naming the field.
    ok(
        &["admin", "--config", cfg, "registry-set", MINISTRY, "locked"],
        &[("SUDO_USER", "can.bo.tinh")],
    );
    // The change is in the audit log, naming who ran the tool.
    let audit: serde_json::Value = serde_json::from_str(&ok(
        &["admin", "--config", cfg, "audit-log", "--limit", "5"],
        &[],
    ))
    .expect("json");
    assert_eq!(audit[0]["kind"], "registry", "{audit}");
    assert_eq!(
        audit[0]["detail"],
        format!("{MINISTRY} set locked (can.bo.tinh with the admin tool)"),
        "{audit}"
    );
    ok(
        &[
            "sample", "--from", DEPARTMENT, "--to", MINISTRY, "--number", "7", "-o", package_s,
        ],
        &[],
    );
    let locked = run(&["send", package_s], &as_dept);
    let stderr = String::from_utf8_lossy(&locked.stderr);
    assert!(
        stderr.contains("error 23") && stderr.contains("To[1]/OrganId"),
        "{stderr}"
    );
    let agencies: serde_json::Value =
        serde_json::from_str(&ok(&["admin", "--config", cfg, "registry-export"], &[]))
            .expect("json");
    assert!(agencies.as_array().is_some_and(|a| {
        a.iter()
            .any(|x| x["code"] == MINISTRY && x["state"] == "locked")
    }));
    // The format an agency receives, set from the CLI and exported with the registry; a format
    // the bus does not speak is refused by name.
    ok(
        &["admin", "--config", cfg, "registry-format", COMMUNE, "json"],
        &[],
    );
    let agencies: serde_json::Value =
        serde_json::from_str(&ok(&["admin", "--config", cfg, "registry-export"], &[]))
            .expect("json");
    assert!(agencies.as_array().is_some_and(|a| {
        a.iter()
            .any(|x| x["code"] == COMMUNE && x["receiveFormat"] == "json")
    }));
    ok(
        &[
            "admin",
            "--config",
            cfg,
            "registry-format",
            MINISTRY,
            "edocvn",
            "--legacy-code",
            "01.00.G22",
        ],
        &[],
    );
    let taken = run(
        &[
            "admin",
            "--config",
            cfg,
            "registry-format",
            PROVINCE,
            "edocvn",
            "--legacy-code",
            "01.00.G22",
        ],
        &[],
    );
    assert!(
        String::from_utf8_lossy(&taken.stderr).contains("already belongs to 000.00.00.G22"),
        "{}",
        String::from_utf8_lossy(&taken.stderr)
    );
    let refused = run(
        &["admin", "--config", cfg, "registry-format", COMMUNE, "docx"],
        &[],
    );
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("docx"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    // Mergers and new agencies from the CLI.
    ok(
        &[
            "admin",
            "--config",
            cfg,
            "registry-add",
            "000.15.05.H49",
            "--name",
            "Xã mới",
            "--parent",
            DEPARTMENT,
        ],
        &[],
    );
    ok(
        &[
            "admin",
            "--config",
            cfg,
            "registry-merge",
            LOCKED,
            "--into",
            "000.15.05.H49",
            "--on",
            "2025/06/30",
        ],
        &[],
    );
    let agencies: serde_json::Value =
        serde_json::from_str(&ok(&["admin", "--config", cfg, "registry-export"], &[]))
            .expect("json");
    assert!(
        agencies.as_array().is_some_and(|a| a.iter().any(|x| {
            x["code"] == LOCKED
                && x["state"] == "retired"
                && x["successor"] == "000.15.05.H49"
                && x["validTo"] == "2025/06/30"
        })),
        "{agencies}"
    );
    let unknown = run(
        &[
            "admin",
            "--config",
            cfg,
            "registry-merge",
            "000.77.05.H49",
            "--into",
            COMMUNE,
        ],
        &[],
    );
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("no agency 000.77.05.H49"),
        "{}",
        String::from_utf8_lossy(&unknown.stderr)
    );

    // Formats from the CLI: a go.vn package made with `translate` and sent as go.vn; the JSON
    // recipient's rendition fetched with `fetch --rendition`; translated on to e-doc.vn with the
    // registry's 9-character codes; a status answering the go.vn original.
    let dir = env.dir.path();
    let path = |name: &str| dir.join(name).to_str().expect("utf8").to_owned();
    let number = unique_number().to_string();
    ok(
        &[
            "sample",
            "--from",
            DEPARTMENT,
            "--to",
            COMMUNE,
            "--number",
            &number,
            "-o",
            &path("cv2.edxml"),
        ],
        &[],
    );
    ok(
        &[
            "translate",
            &path("cv2.edxml"),
            "--to",
            "govn",
            "-o",
            &path("cv2.govn.xml"),
        ],
        &[],
    );
    let govn_doc = ok(
        &["send", &path("cv2.govn.xml"), "--format", "govn"],
        &as_dept,
    )
    .trim()
    .to_owned();
    let commune = bus.client("commune");
    eventually(
        "delivery to the commune",
        Duration::from_secs(20),
        || async {
            commune
                .inbox("edoc", &[])
                .await
                .expect("inbox")
                .iter()
                .any(|r| r["docId"] == govn_doc.as_str())
                .then_some(())
        },
    )
    .await;
    let as_commune = [
        ("LIENTHONG_URL", bus.url.as_str()),
        ("LIENTHONG_SYSTEM_ID", "commune"),
        ("LIENTHONG_SECRET", "secret-commune"),
    ];
    ok(
        &["fetch", &govn_doc, "-o", &path("r.json"), "--rendition"],
        &as_commune,
    );
    let rendition: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path("r.json")).expect("rendition")).expect("json");
    assert_eq!(rendition["header"]["from"]["organId"], DEPARTMENT);
    std::fs::write(
        path("registry.json"),
        ok(&["admin", "--config", cfg, "registry-export"], &[]),
    )
    .expect("registry file");
    ok(
        &[
            "translate",
            &path("r.json"),
            "--from",
            "json",
            "--to",
            "edocvn",
            "--registry",
            &path("registry.json"),
            "-o",
            &path("r.mime"),
        ],
        &[],
    );
    let mime = String::from_utf8(std::fs::read(path("r.mime")).expect("mime")).expect("utf8");
    assert!(mime.starts_with("MIME-Version: 1.0"), "{mime}");
    assert!(mime.contains("<OrganId>12.05.H49</OrganId>"), "{mime}");
    ok(&["status", &govn_doc, "--code", "01"], &as_commune);
    // A broken package is refused naming the field; an agency without a code cannot go to e-doc.vn.
    std::fs::write(path("bad.json"), br#"{"messageType":"edoc","header":{}}"#).expect("bad");
    let bad = run(
        &[
            "translate",
            &path("bad.json"),
            "--from",
            "json",
            "--to",
            "edxml",
        ],
        &[],
    );
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("from"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    let unmapped = run(&["translate", &path("cv2.edxml"), "--to", "edocvn"], &[]);
    assert!(
        String::from_utf8_lossy(&unmapped.stderr).contains("no 9-character agency code"),
        "{}",
        String::from_utf8_lossy(&unmapped.stderr)
    );

    // Security officers: the verdicts as CSV, and the audit chain intact.
    let csv = ok(
        &["admin", "--config", cfg, "verdicts", "--format", "csv"],
        &[],
    );
    assert!(csv.starts_with("doc_id,verified_at,sender"), "{csv}");
    assert!(csv.contains(&doc_id) && csv.contains(",unsigned,"), "{csv}");
    let audit: serde_json::Value =
        serde_json::from_str(&ok(&["audit", "--config", cfg, "verify"], &[])).expect("json");
    assert_eq!(audit["result"], "intact", "{audit}");
    assert!(audit["events"].as_i64().is_some_and(|n| n > 5), "{audit}");

    // Operators: any document's trace, the dead letters (none), failed copies, a retry refused
    // for a copy that did not fail.
    let trace: serde_json::Value =
        serde_json::from_str(&ok(&["admin", "--config", cfg, "trace", &doc_id], &[]))
            .expect("json");
    let kinds = event_kinds(&trace);
    assert!(
        kinds.iter().any(|k| k == "accepted") && kinds.iter().any(|k| k == "delivered"),
        "{kinds:?}"
    );
    let found = ok(
        &["admin", "--config", cfg, "documents", "--agency", MINISTRY],
        &[],
    );
    assert!(found.lines().any(|l| l.starts_with(&doc_id)), "{found}");
    let dead = ok(&["admin", "--config", cfg, "dead"], &[]);
    assert_eq!(dead.trim(), "[]");
    let bare = run(&["admin", "--config", cfg, "dead", "--discard"], &[]);
    assert!(!bare.status.success());
    assert!(
        String::from_utf8_lossy(&bare.stderr).contains("--id ID (repeatable) or --all"),
        "{}",
        String::from_utf8_lossy(&bare.stderr)
    );
    ok(&["admin", "--config", cfg, "failed"], &[]);
    let not_failed = run(&["admin", "--config", cfg, "retry", &doc_id, MINISTRY], &[]);
    assert!(!not_failed.status.success());
    assert!(
        String::from_utf8_lossy(&not_failed.stderr).contains("has no failed copy"),
        "{}",
        String::from_utf8_lossy(&not_failed.stderr)
    );

    bus.stop().await;
    env.teardown().await;
}

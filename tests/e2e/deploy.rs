//! The files of `deploy/` are what the services run with, not prose: the RabbitMQ definitions
//! hold exactly the topology the services declare, the systemd units pass `systemd-analyze
//! verify`, and every process that docker compose and Kubernetes start serves real roles with a
//! configuration `lienthong check-config` accepts (with the environment those files give it).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use lienthong_bus::{BusConfig, Publisher, Topology};
use lienthong_tests::lienthong_bin;
use lienthong_tests::links::Vhost;
use yaml_rust2::{Yaml, YamlLoader};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repository")
        .to_owned()
}

fn yaml_docs(path: &Path) -> Vec<Yaml> {
    let text = std::fs::read_to_string(path).expect("read");
    YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A compose service's key, from the service or from what it merges in (`<<: *anchor`).
fn key<'a>(service: &'a Yaml, key: &str) -> &'a Yaml {
    match &service[key] {
        Yaml::BadValue => &service["<<"][key],
        found => found,
    }
}

fn strings(y: &Yaml) -> Vec<String> {
    y.as_vec()
        .map(|v| {
            v.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// `lienthong check-config --config <config> <roles>` with `env`; panics with its error output.
fn check_config(config: &Path, roles: &[String], env: &HashMap<String, String>, what: &str) {
    let out = Command::new(lienthong_bin())
        .arg("check-config")
        .arg("--config")
        .arg(config)
        .args(roles)
        .env_remove("RUST_BACKTRACE")
        .envs(env)
        .output()
        .expect("lienthong runs");
    assert!(
        out.status.success(),
        "{what}: check-config {roles:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(": ok"));
}

/// A bus without links to other buses needs every role but the forwarder.
fn every_role_served(served: &[String]) {
    for role in [
        "gateway",
        "verifier",
        "translator",
        "router",
        "delivery",
        "ledger",
        "console",
    ] {
        assert!(served.iter().any(|r| r == role), "nobody serves {role}");
    }
}

/// The roles after `serve --config <path>` in a command line.
fn serve_roles(args: &[String], what: &str) -> Vec<String> {
    assert_eq!(
        args.first().map(String::as_str),
        Some("serve"),
        "{what}: {args:?}"
    );
    assert_eq!(
        args.get(1).map(String::as_str),
        Some("--config"),
        "{what}: {args:?}"
    );
    assert_eq!(
        args.get(2).map(String::as_str),
        Some("/etc/lienthong/lienthong.toml"),
        "{what}: {args:?}"
    );
    let roles = args[3..].to_vec();
    assert!(!roles.is_empty(), "{what}: no roles");
    roles
}

#[tokio::test]
async fn rabbitmq_definitions_hold_the_topology_the_services_declare() {
    let vhost = Vhost::create("definitions");
    // The file as shipped, moved onto this test's virtual host.
    let text = std::fs::read_to_string(repo().join("deploy/rabbitmq/definitions.json"))
        .expect("definitions");
    let mut defs: serde_json::Value = serde_json::from_str(&text).expect("json");
    defs["vhosts"] = serde_json::json!([]);
    for part in ["exchanges", "queues", "bindings"] {
        for item in defs[part].as_array_mut().expect(part) {
            assert_eq!(item["vhost"], "lienthong", "{item}");
            item["vhost"] = vhost.name.clone().into();
        }
    }
    let file = tempfile::NamedTempFile::new().expect("temp");
    std::fs::write(file.path(), defs.to_string()).expect("write");
    // The broker's node reads it, as its own user.
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(file.path(), std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let path = file.path().to_str().expect("utf-8");
    let out = Command::new("rabbitmqctl")
        .args(["import_definitions", path])
        .output()
        .expect("rabbitmqctl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let bus: BusConfig = toml::from_str(&format!(
        "url = \"{}\"\nprefix = \"lienthong\"\nqueue_type = \"quorum\"\ndelivery_limit = 10",
        vhost.url()
    ))
    .expect("bus config");
    // Every queue the services watch is there before any service started...
    let topology = Topology::new("lienthong");
    let observer = Publisher::observer(&bus, "lienthong-tests");
    let queues = topology.queues(&[]);
    let found = observer.queue_depths(&queues).await.expect("depths");
    let names: Vec<&String> = found.iter().map(|(q, _)| q).collect();
    assert_eq!(names, queues.iter().collect::<Vec<_>>(), "missing queues");
    // ...and a service declaring its topology finds every exchange and queue as it would make
    // them: a different type or argument would close the channel (PRECONDITION_FAILED).
    Publisher::new(&bus, "lienthong-tests")
        .ensure_connected()
        .await
        .expect("the services' declarations agree with the definitions");
    let listed = Command::new("rabbitmqctl")
        .args([
            "list_queues",
            "-p",
            &vhost.name,
            "name",
            "type",
            "arguments",
            "--no-table-headers",
            "-q",
        ])
        .output()
        .expect("list");
    let listed = String::from_utf8_lossy(&listed.stdout).to_string();
    assert_eq!(
        listed.lines().count(),
        queues.len(),
        "declaring added no queue: {listed}"
    );
    assert!(
        listed.lines().all(|l| l.contains("quorum")),
        "all quorum: {listed}"
    );
    vhost.delete();
}

#[test]
fn systemd_units_pass_systemd_analyze_verify() {
    let dir = tempfile::tempdir().expect("temp");
    let bin = lienthong_bin();
    for unit in ["lienthong@.service", "lienthong.target"] {
        let text = std::fs::read_to_string(repo().join("deploy/systemd").join(unit)).expect("unit");
        assert!(!unit.ends_with(".service") || text.contains("/usr/local/bin/lienthong serve"));
        // The binary this test built stands in for the installed one.
        let text = text.replace(
            "/usr/local/bin/lienthong",
            bin.to_str().expect("utf-8 path"),
        );
        std::fs::write(dir.path().join(unit), text).expect("write");
    }
    for role in ["gateway", "ledger", "console", "workers"] {
        let instance = dir.path().join(format!("lienthong@{role}.service"));
        std::fs::copy(dir.path().join("lienthong@.service"), &instance).expect("copy");
        let out = Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .arg(&instance)
            .arg(dir.path().join("lienthong.target"))
            .output()
            .expect("systemd-analyze (Debian package systemd)");
        assert!(
            out.status.success(),
            "{role}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn compose_services_serve_real_roles_with_a_configuration_that_loads() {
    let dir = repo().join("deploy/compose");
    let env: HashMap<String, String> = std::fs::read_to_string(dir.join("example.env"))
        .expect("example.env")
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let compose = yaml_docs(&dir.join("compose.yaml")).remove(0);
    let services = compose["services"].as_hash().expect("services");
    let mut served = Vec::new();
    for (name, service) in services {
        let name = name.as_str().expect("name");
        let args = strings(key(service, "command"));
        if args.is_empty() {
            // RabbitMQ and PostgreSQL: their own images.
            assert!(service["image"].as_str().is_some(), "{name}");
            continue;
        }
        // The anchor's volume puts compose/lienthong.toml where the command reads it.
        assert!(
            strings(key(service, "volumes"))
                .iter()
                .any(|v| v == "./lienthong.toml:/etc/lienthong/lienthong.toml:ro"),
            "{name}"
        );
        let roles = serve_roles(&args, name);
        check_config(&dir.join("lienthong.toml"), &roles, &env, name);
        served.extend(roles);
    }
    every_role_served(&served);
    // The definitions RabbitMQ loads are the ones tested above.
    assert!(
        strings(&services[&Yaml::String("rabbitmq".into())]["volumes"])
            .iter()
            .any(|v| v.starts_with("../rabbitmq/definitions.json:"))
    );
}

#[test]
fn kubernetes_workloads_serve_real_roles_with_probes_and_a_configuration_that_loads() {
    let dir = repo().join("deploy/kubernetes");
    let kustomization = yaml_docs(&dir.join("kustomization.yaml")).remove(0);
    let resources = strings(&kustomization["resources"]);
    let config = yaml_docs(&dir.join("config.yaml")).remove(0);
    let toml = config["data"]["lienthong.toml"]
        .as_str()
        .expect("lienthong.toml in the ConfigMap");
    let file = tempfile::NamedTempFile::new().expect("temp");
    std::fs::write(file.path(), toml).expect("write");
    let secret = yaml_docs(&dir.join("secret.example.yaml")).remove(0);
    let env: HashMap<String, String> = secret["stringData"]
        .as_hash()
        .expect("stringData")
        .iter()
        .filter_map(|(k, v)| Some((k.as_str()?.to_owned(), v.as_str()?.to_owned())))
        .collect();
    let mut served = Vec::new();
    for resource in &resources {
        for doc in yaml_docs(&dir.join(resource)) {
            if doc["kind"].as_str() != Some("Deployment") {
                continue;
            }
            let name = doc["metadata"]["name"].as_str().expect("name").to_owned();
            let pod = &doc["spec"]["template"]["spec"];
            assert_eq!(
                pod["securityContext"]["runAsNonRoot"].as_bool(),
                Some(true),
                "{name}"
            );
            let container = &pod["containers"][0];
            let roles = serve_roles(&strings(&container["args"]), &name);
            check_config(file.path(), &roles, &env, &name);
            for (probe, path) in [("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")] {
                assert_eq!(
                    container[probe]["httpGet"]["path"].as_str(),
                    Some(path),
                    "{name}: {probe}"
                );
            }
            // The probes' port is where the configuration serves /healthz and /readyz.
            assert!(toml.contains("listen = \"0.0.0.0:9464\""));
            assert_eq!(
                container["readinessProbe"]["httpGet"]["port"].as_i64(),
                Some(9464)
            );
            assert!(
                container["envFrom"][0]["secretRef"]["name"].as_str() == Some("lienthong"),
                "{name}: secrets from the Secret"
            );
            served.extend(roles);
        }
    }
    every_role_served(&served);
}

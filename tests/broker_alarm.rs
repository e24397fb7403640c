//! The broker raises a memory alarm, then a disk alarm (`rabbitmqctl set_vm_memory_high_watermark`
//! and `set_disk_free_limit` past what the machine has): the gateway answers HTTP 503, error 20,
//! with `Retry-After`, without waiting for a confirm that would come only after the alarm; once
//! the alarm clears it accepts again by itself, and every package a client sent again is
//! delivered exactly once. The alarm is the whole node's, so this runs in a binary of its own
//! (test binaries run one at a time).

use std::process::Command;
use std::time::{Duration, Instant};

use lienthong_edxml::write_edoc;
use lienthong_tests::*;

fn rabbitmqctl(args: &[&str]) -> String {
    let out = Command::new("rabbitmqctl")
        .args(args)
        .output()
        .expect("rabbitmqctl is installed (deploy/local/ensure-services)");
    assert!(
        out.status.success(),
        "rabbitmqctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The node's limits as they were, put back even if the test fails half way.
struct Limits {
    memory: Vec<String>,
    disk: String,
}

impl Limits {
    fn read() -> Self {
        // `0.4`, or `{absolute,1073741824}`.
        let memory = rabbitmqctl(&["eval", "vm_memory_monitor:get_vm_memory_high_watermark()."]);
        let memory = match memory
            .strip_prefix("{absolute,")
            .and_then(|m| m.strip_suffix('}'))
        {
            Some(bytes) => vec!["absolute".to_owned(), bytes.to_owned()],
            None => vec![memory],
        };
        let disk = rabbitmqctl(&["eval", "rabbit_disk_monitor:get_disk_free_limit()."]);
        Self { memory, disk }
    }

    fn restore_memory(&self) {
        let mut args = vec!["set_vm_memory_high_watermark"];
        args.extend(self.memory.iter().map(String::as_str));
        rabbitmqctl(&args);
    }

    fn restore_disk(&self) {
        rabbitmqctl(&["set_disk_free_limit", &self.disk]);
    }
}

impl Drop for Limits {
    fn drop(&mut self) {
        let mut args = vec!["set_vm_memory_high_watermark".to_owned()];
        args.extend(self.memory.iter().cloned());
        let _ = Command::new("rabbitmqctl").args(&args).status();
        let _ = Command::new("rabbitmqctl")
            .args(["set_disk_free_limit", &self.disk])
            .status();
    }
}

/// `POST /v1/sendEdoc` as raw HTTP: the status, `Retry-After` and the JSON answer.
async fn send_raw(url: &str, package: &[u8]) -> (u16, Option<String>, serde_json::Value, Duration) {
    let form = reqwest::multipart::Form::new()
        .text("messageType", "edoc")
        .part(
            "edocFile",
            reqwest::multipart::Part::bytes(package.to_vec()).file_name("p.edxml"),
        );
    let started = Instant::now();
    let resp = reqwest::Client::new()
        .post(format!("{url}/v1/sendEdoc"))
        .header("X-SystemId", "province")
        .header("X-SecretKey", "secret-province")
        .multipart(form)
        .send()
        .await
        .expect("the gateway answers");
    let took = started.elapsed();
    let status = resp.status().as_u16();
    let retry = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (status, retry, resp.json().await.expect("json"), took)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_alarms_get_a_prompt_503_and_the_gateway_recovers_by_itself() {
    let mut env = Env::new(Backend::Sqlite).await;
    env.bus.confirm_timeout_ms = 3_000;
    let bus = InProcessBus::start(&env).await;
    let url = bus.url.clone();
    let province = bus.client("province");
    let mut sent = vec![
        province
            .send(
                write_edoc(&edoc(PROVINCE, &[MINISTRY], unique_number())),
                "edoc",
            )
            .await
            .expect("before any alarm"),
    ];
    let limits = Limits::read();

    for alarm in ["memory", "disk"] {
        match alarm {
            "memory" => rabbitmqctl(&["set_vm_memory_high_watermark", "0.000001"]),
            _ => rabbitmqctl(&["set_disk_free_limit", "1000000GB"]),
        };
        eventually(
            &format!("the broker's {alarm} alarm"),
            Duration::from_secs(30),
            || async {
                rabbitmqctl(&["eval", "rabbit_alarm:get_alarms()."])
                    .contains(alarm)
                    .then_some(())
            },
        )
        .await;
        // Packages tried during the alarm; the client sends each again afterwards.
        let mut waiting = Vec::new();
        // The first publish may wait for its confirm (at most the timeout) before the broker
        // says the connection is blocked; from then on the answer comes at once.
        let refusal = eventually(
            &format!("a prompt refusal during the {alarm} alarm"),
            Duration::from_secs(60),
            || {
                let package = write_edoc(&edoc(PROVINCE, &[MINISTRY], unique_number()));
                waiting.push(package.clone());
                let url = url.clone();
                async move {
                    let (status, retry, body, took) = send_raw(&url, &package).await;
                    assert_eq!(status, 503, "{alarm}: {body}");
                    assert_eq!(body["data"]["errorCode"], 20, "{body}");
                    assert!(retry.is_some(), "{alarm}: 503 without Retry-After");
                    let prompt = body["data"]["errorDesc"]
                        .as_str()
                        .is_some_and(|d| d.contains("memory or disk alarm"));
                    prompt.then_some((body, took))
                }
            },
        )
        .await;
        assert!(
            refusal.1 < Duration::from_millis(env.bus.confirm_timeout_ms),
            "refused without waiting for a confirm: {:?}",
            refusal.1
        );
        assert!(
            refusal.0["data"]["errorDesc"]
                .as_str()
                .is_some_and(|d| d.contains("nothing was accepted")),
            "{}",
            refusal.0
        );
        match alarm {
            "memory" => limits.restore_memory(),
            _ => limits.restore_disk(),
        }
        // The alarm clears: the gateway accepts again without being restarted.
        for package in waiting {
            let id = eventually(
                &format!("the gateway to accept again after the {alarm} alarm"),
                Duration::from_secs(60),
                || async { province.send(package.clone(), "edoc").await.ok() },
            )
            .await;
            sent.push(id);
        }
    }
    sent.sort();
    sent.dedup();
    for doc_id in &sent {
        env.all_delivered(doc_id).await;
    }
    let ids = inbox_doc_ids(&bus.client("ministry"), "edoc").await;
    assert_eq!(ids, sent, "every document in the inbox exactly once");
    drop(limits);
    bus.stop().await;
    env.teardown().await;
}

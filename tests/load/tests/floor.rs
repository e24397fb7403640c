//! `lienthong-floor` against the real broker: it must do what its figures claim (a package is
//! answered once the broker holds it, each recipient gets one notice), and with `--work` really
//! do the documents' work: a package that does not parse is refused, one whose signature does not
//! verify gets no notice.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::StreamExt;
use lapin::options::{BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};
use lienthong_edxml::OrganId;
use serde_json::Value;

const TO: [&str; 2] = ["000.00.21.H49", "000.00.22.H49"];

fn amqp_url() -> String {
    std::env::var("LIENTHONG_TEST_AMQP")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

fn repo(path: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

/// The floor process, stopped when dropped.
struct Floor {
    child: Child,
    url: String,
    prefix: String,
}

impl Drop for Floor {
    /// SIGTERM, so that the floor deletes its queue and exchange from the shared broker.
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        for _ in 0..100 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start(work: bool) -> Floor {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let prefix = format!("floor-test-{}", uuid::Uuid::new_v4().simple());
    let mut command = Command::new(env!("CARGO_BIN_EXE_lienthong-floor"));
    command
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--amqp", &amqp_url(), "--prefix", &prefix])
        .args(["--to", TO[0], "--to", TO[1]])
        .stdout(Stdio::null());
    if work {
        command.arg("--work").arg(repo("config/demo/trust"));
    }
    let floor = Floor {
        child: command.spawn().expect("starting lienthong-floor"),
        url: format!("http://127.0.0.1:{port}"),
        prefix,
    };
    for _ in 0..200 {
        if reqwest::get(format!("{}/readyz", floor.url)).await.is_ok() {
            return floor;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("lienthong-floor did not answer on {}", floor.url);
}

/// A queue bound to the floor's inbox exchange for both recipients: (docId, recipient) notices.
async fn listen(floor: &Floor) -> (Connection, lapin::Consumer) {
    let conn = Connection::connect(&amqp_url(), ConnectionProperties::default())
        .await
        .expect("the test broker");
    let channel = conn.create_channel().await.expect("a channel");
    let queue = channel
        .queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("a queue");
    for to in TO {
        channel
            .queue_bind(
                queue.name().clone(),
                format!("{}.inbox", floor.prefix).as_str().into(),
                to.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("binding to the floor's inbox exchange");
    }
    let consumer = channel
        .basic_consume(
            queue.name().clone(),
            "floor-test".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..BasicConsumeOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("consuming");
    (conn, consumer)
}

/// The notices that arrive, as (docId, recipient): until `expected` have (30 s at most, for a
/// loaded machine), and then any more within a second (a notice too many must be seen too).
async fn notices(consumer: &mut lapin::Consumer, expected: usize) -> Vec<(String, String)> {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let until = if seen.len() < expected {
            deadline
        } else {
            tokio::time::Instant::now() + Duration::from_secs(1)
        };
        let Ok(Some(Ok(d))) = tokio::time::timeout_at(until, consumer.next()).await else {
            break;
        };
        let notice: Value = serde_json::from_slice(&d.data).expect("a JSON notice");
        seen.push((
            notice["docId"].as_str().unwrap_or_default().to_owned(),
            notice["recipient"].as_str().unwrap_or_default().to_owned(),
        ));
    }
    seen.sort();
    seen
}

fn package(signed: bool) -> Vec<u8> {
    let organ = |c: &str| OrganId::parse(c).expect("an OrganId");
    let letter = lienthong_edxml::sample::edoc(
        &organ("000.00.00.H49"),
        &TO.map(organ),
        u64::from(uuid::Uuid::new_v4().as_u128() as u32),
        2_000,
    );
    let bytes = lienthong_edxml::write_edoc(&letter);
    if !signed {
        return bytes;
    }
    let pem = |file: &str, label: &str| {
        let text = std::fs::read(repo(file)).expect("the test PKI");
        lienthong_xmldsig::trust::pem_blocks(&text, label)
            .and_then(|b| b.into_iter().next())
            .expect("a PEM block")
    };
    lienthong_xmldsig::sign(
        &bytes,
        &pem("tests/vectors/xmldsig/keys/signer.key", "PRIVATE KEY"),
        &pem("tests/vectors/xmldsig/keys/signer.pem", "CERTIFICATE"),
    )
    .expect("signing")
}

/// `sendEdoc` as the load generator sends it: (HTTP status, the answer).
async fn send(floor: &Floor, package: Option<Vec<u8>>) -> (u16, Value) {
    let mut form = reqwest::multipart::Form::new().text("messageType", "edoc");
    if let Some(p) = package {
        form = form.part("edocFile", reqwest::multipart::Part::bytes(p));
    }
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/sendEdoc", floor.url))
        .multipart(form)
        .send()
        .await
        .expect("the floor answers");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("a JSON answer"))
}

#[tokio::test]
async fn the_floor_answers_once_the_broker_holds_a_package_and_notifies_each_recipient_once() {
    let floor = start(false).await;
    let (_conn, mut consumer) = listen(&floor).await;
    // The hops alone: the floor reads no XML, so any bytes go through.
    let mut ids = Vec::new();
    for body in [package(true), b"not even XML".to_vec()] {
        let (status, answer) = send(&floor, Some(body)).await;
        assert_eq!(status, 200, "{answer}");
        ids.push(answer["docId"].as_str().expect("a docId").to_owned());
    }
    let mut expected: Vec<(String, String)> = ids
        .iter()
        .flat_map(|id| TO.map(|to| (id.clone(), to.to_owned())))
        .collect();
    expected.sort();
    assert_eq!(notices(&mut consumer, expected.len()).await, expected);

    let (status, answer) = send(&floor, None).await;
    assert_eq!(status, 400);
    assert!(
        answer["message"]
            .as_str()
            .unwrap_or_default()
            .contains("edocFile"),
        "{answer}"
    );
}

#[tokio::test]
async fn with_work_the_floor_refuses_what_does_not_parse_and_notifies_only_verified_packages() {
    let floor = start(true).await;
    let (_conn, mut consumer) = listen(&floor).await;

    let (status, answer) = send(&floor, Some(b"not even XML".to_vec())).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["errorCode"], 22, "{answer}");

    // Parses, so accepted; but unsigned, so the verification drops it: no notice.
    let (status, unsigned) = send(&floor, Some(package(false))).await;
    assert_eq!(status, 200, "{unsigned}");
    let (status, signed) = send(&floor, Some(package(true))).await;
    assert_eq!(status, 200, "{signed}");
    let signed = signed["docId"].as_str().expect("a docId").to_owned();
    let mut expected: Vec<(String, String)> = TO.map(|to| (signed.clone(), to.to_owned())).into();
    expected.sort();
    assert_eq!(notices(&mut consumer, expected.len()).await, expected);
}

//! `lienthong-floor`: the bus's hops with none of its work, to measure what they cost alone.
//!
//! It answers `POST /v1/sendEdoc` as the gateway does (the multipart form read whole), makes
//! the package durable the only way a bus without a database can (a persistent message, published
//! with a confirm, to a queue of the bus's type) and answers with a docId once the broker has
//! confirmed it. A consumer on that queue (manual acks, the bus's prefetch) publishes an inbox
//! notice per recipient to `{prefix}.inbox`, waits for its confirm, then acks: the bus's two
//! broker messages per document, and the same HTTP in front.
//!
//! It checks no credential, parses no XML, verifies no signature, stores nothing and records no
//! event. So no bus that keeps the `/v1` interface and its promise (accepted means durable, a
//! notice per copy) can carry more documents per second than this on the same machine: it is the
//! floor under the pipeline's cost. `deploy/bench/load.sh` (`FLOOR=1`) drives it with the same
//! load generator, packages and broker as the bus, in the same run.
//!
//! With `--work DIR` it also does the documents' own work, with the bus's code, still keeping
//! nothing: the HTTP handler parses and checks the package (`lienthong_edxml::parse`, as the
//! gateway does), and the consumer verifies its signature and certificate path against the trust
//! anchors in DIR (`check_package`, as the verifier does, on tokio's blocking pool) and renders it
//! as JSON (as the translator does). Set beside the hops alone and the bus, that splits what a
//! document costs into the hops, the work, and everything else (the store, the ledger, the
//! stages' orchestration).

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::extract::{DefaultBodyLimit, Multipart, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use clap::Parser;
use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, ExchangeDeleteOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use serde_json::{Value, json};

#[derive(Debug, Parser)]
#[command(
    version,
    about = "The bus's hops (HTTP in, two confirmed broker messages) with no work"
)]
struct Args {
    /// Where to answer `/v1/sendEdoc` (and `/readyz`).
    #[arg(long, default_value = "127.0.0.1:18470")]
    listen: SocketAddr,
    #[arg(long, default_value = "amqp://guest:guest@127.0.0.1:5672/%2f")]
    amqp: String,
    /// The queue prefix: packages go to `{prefix}.floor`, notices to `{prefix}.inbox`. Both
    /// are deleted when the floor stops (SIGTERM or SIGINT), so give it a prefix of its own.
    #[arg(long, default_value = "lienthong-floor")]
    prefix: String,
    #[arg(long, default_value = "quorum", value_parser = ["quorum", "classic"])]
    queue_type: String,
    /// Deliveries handled at once, as the bus's `bus.prefetch`.
    #[arg(long, default_value_t = 32)]
    prefetch: u16,
    /// Each document's recipients (repeat): the floor reads no header, so it is told them.
    #[arg(long = "to", required = true)]
    to: Vec<String>,
    /// Also do the documents' work (parse, verify against the anchors in DIR, translate).
    #[arg(long, value_name = "DIR")]
    work: Option<std::path::PathBuf>,
}

/// The documents' work, when asked for (`--work`).
struct Work {
    trust: lienthong_xmldsig::TrustStore,
    policy: lienthong_xmldsig::Policy,
}

impl Work {
    /// What the verifier and the translator do with a package: its signature, digests and
    /// certificate path, then its JSON rendition.
    fn verify_and_translate(&self, package: &[u8]) -> Result<usize, String> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(0))
            .unwrap_or(0);
        let verdict = lienthong_xmldsig::check_package(package, &self.trust, &self.policy, now);
        if !verdict.is_valid() {
            return Err(format!("the signature does not verify: {verdict:?}"));
        }
        let message = lienthong_translate::from_edxml(package).map_err(|e| e.to_string())?;
        Ok(lienthong_translate::to_json(&message).len())
    }
}

#[derive(Clone)]
struct Floor {
    /// Confirms on; lapin keeps any number of publishes outstanding on one channel.
    publish: Channel,
    queue: Arc<str>,
    work: Option<Arc<Work>>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let conn = Connection::connect(
        &args.amqp,
        ConnectionProperties::default().with_connection_name("lienthong-floor".into()),
    )
    .await
    .with_context(|| format!("--amqp {}", args.amqp))?;
    let queue: Arc<str> = format!("{}.floor", args.prefix).into();
    let inbox = format!("{}.inbox", args.prefix);

    let setup = conn.create_channel().await?;
    let mut queue_args = FieldTable::default();
    queue_args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString(args.queue_type.as_str().into()),
    );
    setup
        .queue_declare(
            queue.as_ref().into(),
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            queue_args,
        )
        .await
        .with_context(|| format!("declaring the {} queue {queue}", args.queue_type))?;
    setup
        .exchange_declare(
            inbox.as_str().into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .with_context(|| format!("declaring the exchange {inbox}"))?;

    let publish = conn.create_channel().await?;
    publish
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let work = match &args.work {
        Some(dir) => Some(Arc::new(Work {
            trust: lienthong_xmldsig::TrustStore::load(dir, &[])
                .with_context(|| format!("--work {}", dir.display()))?,
            policy: lienthong_xmldsig::Policy::default(),
        })),
        None => None,
    };
    let consumer = deliver(
        &conn,
        &queue,
        &inbox,
        args.prefetch,
        args.to.clone(),
        work.clone(),
    )
    .await?;

    let app = Router::new()
        .route("/v1/sendEdoc", post(send_edoc))
        .route("/readyz", get(|| async { "ready" }))
        .layer(DefaultBodyLimit::max(64 * 1024 * 1024))
        .with_state(Floor {
            publish,
            queue: queue.clone(),
            work,
        });
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("--listen {}", args.listen))?;
    eprintln!("lienthong-floor: listening on {}", args.listen);
    axum::serve(listener, app)
        .with_graceful_shutdown(stopped())
        .await?;
    // Its queue and exchange go with it: a floor runs under a prefix of its own.
    consumer.abort();
    let _ = setup
        .queue_delete(queue.as_ref().into(), QueueDeleteOptions::default())
        .await;
    let _ = setup
        .exchange_delete(inbox.as_str().into(), ExchangeDeleteOptions::default())
        .await;
    let _ = conn.close(200, "bye".into()).await;
    Ok(())
}

/// SIGINT or SIGTERM (what `load.sh` sends).
async fn stopped() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}

/// The package is in the broker, confirmed, before the answer: accepted means durable.
async fn send_edoc(
    State(floor): State<Floor>,
    mut form: Multipart,
) -> Result<Json<Value>, (StatusCode, Json<Value>)> {
    let refuse = |code: StatusCode, why: String| {
        (
            code,
            Json(json!({ "success": false, "errorCode": 20, "message": why })),
        )
    };
    let mut package = None;
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| refuse(StatusCode::BAD_REQUEST, format!("multipart: {e}")))?
    {
        if field.name() == Some("edocFile") {
            package = Some(
                field
                    .bytes()
                    .await
                    .map_err(|e| refuse(StatusCode::BAD_REQUEST, format!("edocFile: {e}")))?,
            );
        }
    }
    let package = package.ok_or_else(|| {
        refuse(
            StatusCode::BAD_REQUEST,
            "edocFile: the multipart field is required".to_owned(),
        )
    })?;
    if floor.work.is_some() {
        lienthong_edxml::parse(&package).map_err(|e| {
            (
                StatusCode::BAD_REQUEST,
                Json(json!({ "success": false, "errorCode": 22, "message": e.to_string() })),
            )
        })?;
    }
    let doc_id = uuid::Uuid::new_v4().to_string();
    let unavailable = |e: lapin::Error| refuse(StatusCode::SERVICE_UNAVAILABLE, e.to_string());
    let confirm = floor
        .publish
        .basic_publish(
            "".into(),
            floor.queue.as_ref().into(),
            BasicPublishOptions::default(),
            &package,
            BasicProperties::default()
                .with_delivery_mode(2)
                .with_message_id(doc_id.as_str().into()),
        )
        .await
        .map_err(unavailable)?
        .await
        .map_err(unavailable)?;
    if confirm.is_nack() {
        return Err(refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "the broker refused the package (nack)".to_owned(),
        ));
    }
    Ok(Json(
        json!({ "success": true, "message": "accepted", "docId": doc_id }),
    ))
}

/// Consumes the packages: for each, a notice per recipient, confirmed, then the ack. Deliveries
/// are handled concurrently up to the prefetch, as the bus's stages handle theirs.
async fn deliver(
    conn: &Connection,
    queue: &str,
    inbox: &str,
    prefetch: u16,
    recipients: Vec<String>,
    work: Option<Arc<Work>>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let consume = conn.create_channel().await?;
    consume
        .basic_qos(prefetch, BasicQosOptions::default())
        .await?;
    let notices = conn.create_channel().await?;
    notices
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let mut consumer = consume
        .basic_consume(
            queue.into(),
            "lienthong-floor".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let inbox: Arc<str> = inbox.into();
    let recipients: Arc<[String]> = recipients.into();
    Ok(tokio::spawn(async move {
        while let Some(delivery) = consumer.next().await {
            let Ok(delivery) = delivery else { break };
            let notices = notices.clone();
            let inbox = inbox.clone();
            let recipients = recipients.clone();
            let work = work.clone();
            tokio::spawn(async move {
                let doc_id = delivery
                    .properties
                    .message_id()
                    .as_ref()
                    .map(|m| m.as_str().to_owned())
                    .unwrap_or_default();
                let mut delivered = true;
                if let Some(work) = work {
                    let package = delivery.data.clone();
                    let done =
                        tokio::task::spawn_blocking(move || work.verify_and_translate(&package))
                            .await;
                    if !matches!(done, Ok(Ok(_))) {
                        // A package the work refuses is dropped: the floor keeps no verdict.
                        eprintln!("lienthong-floor: {doc_id}: {done:?}");
                        let _ = delivery.ack(BasicAckOptions::default()).await;
                        return;
                    }
                }
                for to in recipients.iter() {
                    let notice = json!({ "docId": doc_id, "recipient": to }).to_string();
                    let sent = async {
                        notices
                            .basic_publish(
                                inbox.as_ref().into(),
                                to.as_str().into(),
                                BasicPublishOptions::default(),
                                notice.as_bytes(),
                                BasicProperties::default()
                                    .with_delivery_mode(2)
                                    .with_content_type("application/json".into()),
                            )
                            .await?
                            .await
                    }
                    .await;
                    if !matches!(&sent, Ok(c) if c.is_ack()) {
                        eprintln!(
                            "lienthong-floor: a notice for {doc_id} was not confirmed: {sent:?}"
                        );
                        delivered = false;
                        break;
                    }
                }
                let done = if delivered {
                    delivery.ack(BasicAckOptions::default()).await
                } else {
                    delivery
                        .nack(BasicNackOptions {
                            requeue: true,
                            ..BasicNackOptions::default()
                        })
                        .await
                };
                if let Err(e) = done {
                    eprintln!("lienthong-floor: settling {doc_id}: {e}");
                }
            });
        }
    }))
}

//! When each copy reached its inbox: the generator listens as an AMQP adapter does, on a queue of
//! its own bound to the bus's inbox exchange with each recipient's OrganId, and notes the moment
//! each notice arrives (the delivery service publishes it once the copy is stored as delivered).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Context;
use futures_util::StreamExt;
use lapin::options::{BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};

/// Every copy seen, by docId: the recipient and when; and how many notices came twice.
#[derive(Debug, Default)]
pub struct Arrivals {
    pub copies: HashMap<String, Vec<(String, Instant)>>,
    pub repeated_notices: usize,
}

pub type Shared = Arc<Mutex<Arrivals>>;

/// Starts listening; returns once the queue is bound, so nothing sent afterwards is missed.
/// `on_copy` is called with the docId and its number of copies so far.
pub async fn listen(
    url: &str,
    prefix: &str,
    recipients: &[String],
    on_copy: impl Fn(&str, usize) + Send + 'static,
) -> anyhow::Result<(Shared, Connection)> {
    let conn = Connection::connect(
        url,
        ConnectionProperties::default().with_connection_name("lienthong-load-inbox".into()),
    )
    .await
    .with_context(|| format!("--amqp {url}"))?;
    let channel = conn.create_channel().await?;
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
        .await?;
    let exchange = format!("{prefix}.inbox");
    for r in recipients {
        channel
            .queue_bind(
                queue.name().clone(),
                exchange.as_str().into(),
                r.as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .with_context(|| {
                format!("binding to {exchange}: is --prefix the bus's prefix and the bus started?")
            })?;
    }
    let mut consumer = channel
        .basic_consume(
            queue.name().clone(),
            "lienthong-load".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..BasicConsumeOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
    let arrivals: Shared = Arc::default();
    let seen = arrivals.clone();
    tokio::spawn(async move {
        while let Some(Ok(d)) = consumer.next().await {
            let at = Instant::now();
            let Ok(notice) = serde_json::from_slice::<serde_json::Value>(&d.data) else {
                continue;
            };
            let (Some(doc), Some(to)) = (notice["docId"].as_str(), notice["recipient"].as_str())
            else {
                continue;
            };
            let count = {
                let mut guard = seen
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let a = &mut *guard;
                let copies = a.copies.entry(doc.to_owned()).or_default();
                if copies.iter().any(|(r, _)| r == to) {
                    a.repeated_notices += 1;
                    continue;
                }
                copies.push((to.to_owned(), at));
                copies.len()
            };
            on_copy(doc, count);
        }
    });
    Ok((arrivals, conn))
}

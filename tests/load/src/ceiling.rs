//! The raw broker ceiling: persistent messages of the run's size published with confirms to a
//! queue of the bus's type and consumed with manual acks, as fast as the broker takes them. The
//! pipeline's figure is read against this one, measured on the same broker in the same run.

use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Connection, ConnectionProperties};

/// What the broker alone sustained.
#[derive(Debug, Clone, Copy)]
pub struct Ceiling {
    pub messages: usize,
    pub seconds: f64,
}

impl Ceiling {
    pub fn per_second(&self) -> f64 {
        self.messages as f64 / self.seconds
    }
}

/// Publishes `count` messages of `size` bytes with up to `window` confirms outstanding, while a
/// consumer with the same prefetch acks each; the clock runs until the last is acked.
pub async fn measure(
    url: &str,
    queue_type: &str,
    size: usize,
    count: usize,
    window: usize,
) -> anyhow::Result<Ceiling> {
    let conn = Connection::connect(
        url,
        ConnectionProperties::default().with_connection_name("lienthong-load-ceiling".into()),
    )
    .await
    .with_context(|| format!("--amqp {url}"))?;
    let queue = format!("lienthong-load.ceiling.{}", uuid::Uuid::new_v4().simple());
    let mut args = FieldTable::default();
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString(queue_type.into()),
    );
    let setup = conn.create_channel().await?;
    setup
        .queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            args,
        )
        .await
        .with_context(|| format!("declaring a {queue_type} queue"))?;

    let consume = conn.create_channel().await?;
    consume
        .basic_qos(
            u16::try_from(window).unwrap_or(u16::MAX),
            BasicQosOptions::default(),
        )
        .await?;
    let mut consumer = consume
        .basic_consume(
            queue.as_str().into(),
            "ceiling".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let consumed = tokio::spawn(async move {
        let mut n = 0;
        while n < count {
            match tokio::time::timeout(Duration::from_secs(60), consumer.next()).await {
                Ok(Some(Ok(d))) => {
                    d.ack(BasicAckOptions::default()).await?;
                    n += 1;
                }
                Ok(other) => anyhow::bail!("the ceiling's consumer stopped: {other:?}"),
                Err(_) => anyhow::bail!("the ceiling's consumer waited 60 s for a message"),
            }
        }
        Ok(Instant::now())
    });

    let publish = conn.create_channel().await?;
    publish
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let payload = vec![b'x'; size];
    let started = Instant::now();
    let mut pending = std::collections::VecDeque::with_capacity(window);
    for i in 0..count {
        if pending.len() == window
            && let Some(confirm) = pending.pop_front()
        {
            wait_confirm(confirm).await?;
        }
        let props = BasicProperties::default()
            .with_delivery_mode(2)
            .with_message_id(i.to_string().into());
        pending.push_back(
            publish
                .basic_publish(
                    "".into(),
                    queue.as_str().into(),
                    BasicPublishOptions::default(),
                    &payload,
                    props,
                )
                .await?,
        );
    }
    for confirm in pending {
        wait_confirm(confirm).await?;
    }
    let finished = consumed.await??;
    let _ = setup
        .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
        .await;
    let _ = conn.close(200, "bye".into()).await;
    Ok(Ceiling {
        messages: count,
        seconds: (finished - started).as_secs_f64(),
    })
}

async fn wait_confirm(confirm: lapin::PublisherConfirm) -> anyhow::Result<()> {
    let c = confirm.await?;
    anyhow::ensure!(!c.is_nack(), "the broker refused a message (nack)");
    Ok(())
}

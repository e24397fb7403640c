//! The raw broker ceiling: persistent messages of the run's size published with confirms to a
//! queue of the bus's type and consumed with manual acks, as fast as the broker takes them. The
//! pipeline's figure is read against this one, measured on the same broker in the same run.
//! A measurement of a few thousand messages lasts about a second, and on a shared host one such
//! second can differ from the next by a third: the ceiling is the median of several.

use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Connection, ConnectionProperties};

/// What the broker alone sustained: `messages` in each measurement, which took `seconds`.
#[derive(Debug, Clone, PartialEq)]
pub struct Ceiling {
    pub messages: usize,
    pub seconds: Vec<f64>,
    /// The consumer acked this many messages at once (1: each alone).
    pub ack_every: usize,
}

impl Ceiling {
    /// Messages per second of each measurement, in the order they were made.
    pub fn rates(&self) -> Vec<f64> {
        self.seconds
            .iter()
            .map(|s| self.messages as f64 / s.max(1e-9))
            .collect()
    }

    /// The ceiling: the median of the measurements' rates.
    pub fn per_second(&self) -> f64 {
        let mut rates = self.rates();
        rates.sort_by(f64::total_cmp);
        match rates.len() {
            0 => 0.0,
            n if n % 2 == 1 => rates[n / 2],
            n => (rates[n / 2 - 1] + rates[n / 2]) / 2.0,
        }
    }

    /// The line the report prints: the median and each measurement.
    pub fn describe(&self, size: usize) -> String {
        let rates: Vec<String> = self.rates().iter().map(|r| format!("{r:.1}")).collect();
        let acks = match self.ack_every {
            0 | 1 => "acks".to_owned(),
            n => format!("one ack for every {n}"),
        };
        format!(
            "  broker ceiling        {:>9.1} messages/s  (the median of {}: {}; each {} persistent messages of {} bytes, published with confirms, consumed with {acks})",
            self.per_second(),
            rates.len(),
            rates.join(", "),
            self.messages,
            size
        )
    }

    /// Messages over every measurement.
    pub fn total_messages(&self) -> usize {
        self.messages * self.seconds.len()
    }
}

/// `repeats` measurements of `count` messages each, one after the other (see [`measure`]).
pub async fn measure_repeated(
    url: &str,
    queue_type: &str,
    size: usize,
    count: usize,
    window: usize,
    repeats: usize,
    ack_every: usize,
) -> anyhow::Result<Ceiling> {
    anyhow::ensure!(repeats > 0, "--ceiling-repeats must be at least 1");
    let mut seconds = Vec::with_capacity(repeats);
    for _ in 0..repeats {
        seconds.push(measure(url, queue_type, size, count, window, ack_every).await?);
    }
    Ok(Ceiling {
        messages: count,
        seconds,
        ack_every,
    })
}

/// Publishes `count` messages of `size` bytes with up to `window` confirms outstanding, while a
/// consumer with the same prefetch acks each (or every `ack_every`-th with `multiple`, and the
/// last), on a queue of its own; the clock runs until the last is acked. Returns the seconds it
/// took.
async fn measure(
    url: &str,
    queue_type: &str,
    size: usize,
    count: usize,
    window: usize,
    ack_every: usize,
) -> anyhow::Result<f64> {
    let ack_every = ack_every.max(1);
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
                    n += 1;
                    if n % ack_every == 0 || n == count {
                        d.ack(BasicAckOptions {
                            multiple: ack_every > 1,
                        })
                        .await?;
                    }
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
    Ok((finished - started).as_secs_f64())
}

async fn wait_confirm(confirm: lapin::PublisherConfirm) -> anyhow::Result<()> {
    let c = confirm.await?;
    anyhow::ensure!(!c.is_nack(), "the broker refused a message (nack)");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ceiling_is_the_median_measurement() {
        let c = Ceiling {
            messages: 1000,
            seconds: vec![0.25, 0.5, 0.2],
            ack_every: 1,
        };
        assert_eq!(c.rates(), [4000.0, 2000.0, 5000.0]);
        assert_eq!(c.per_second(), 4000.0);
        assert_eq!(c.total_messages(), 3000);
        let even = Ceiling {
            messages: 1000,
            seconds: vec![0.25, 0.5],
            ack_every: 64,
        };
        assert_eq!(even.per_second(), 3000.0);
        // The line printed by a run and by `--ceiling-only`: the median first, then each.
        assert_eq!(
            c.describe(20_000),
            "  broker ceiling           4000.0 messages/s  (the median of 3: 4000.0, 2000.0, 5000.0; each 1000 persistent messages of 20000 bytes, published with confirms, consumed with acks)"
        );
        assert!(
            even.describe(400)
                .ends_with("consumed with one ack for every 64)"),
            "{}",
            even.describe(400)
        );
    }
}

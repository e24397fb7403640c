//! The dead-letter queue for operators: what is in it (where each message died and why), and
//! putting messages back on their way once the cause is mended (replay) or dropping them
//! (discard). Messages are taken with `basic.get`; those not chosen go back unharmed.

use lapin::options::{
    BasicAckOptions, BasicGetOptions, BasicNackOptions, BasicPublishOptions, ConfirmSelectOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use serde::Serialize;

use crate::{BusError, Publisher};

/// A message in `{prefix}.dead`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetter {
    pub message_id: Option<String>,
    /// The document it is about, when it names one.
    pub doc_id: Option<String>,
    /// The queue it died in, and where it had been published (where a replay sends it).
    pub queue: String,
    pub exchange: String,
    pub routing_key: String,
    /// `rejected` (the handler found it poison), `delivery_limit` (it crashed consumers again
    /// and again) or `expired`.
    pub reason: String,
    /// How many times it died in that queue.
    pub count: i64,
    /// When it last died (Unix seconds).
    pub died_at: Option<i64>,
    /// The start of its payload, as text.
    pub payload: String,
}

/// What to do with the chosen dead letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadAction {
    /// Leave them (a listing).
    Keep,
    /// Publish them again where they were published, confirmed, then remove them.
    Replay,
    /// Remove them.
    Discard,
}

/// The longest payload excerpt shown.
const EXCERPT: usize = 2048;

fn text(v: Option<&AMQPValue>) -> Option<String> {
    match v? {
        AMQPValue::LongString(s) => Some(s.to_string()),
        AMQPValue::ShortString(s) => Some(s.to_string()),
        _ => None,
    }
}

fn number(v: Option<&AMQPValue>) -> Option<i64> {
    match v? {
        AMQPValue::LongLongInt(n) => Some(*n),
        AMQPValue::LongInt(n) => Some(i64::from(*n)),
        AMQPValue::Timestamp(t) => i64::try_from(*t).ok(),
        _ => None,
    }
}

/// Reads a dead letter's story from its `x-death` header (the latest death first).
fn describe(delivery: &lapin::message::Delivery) -> DeadLetter {
    let headers = delivery.properties.headers().clone().unwrap_or_default();
    let death = match headers.inner().get("x-death") {
        Some(AMQPValue::FieldArray(a)) => match a.as_slice().first() {
            Some(AMQPValue::FieldTable(t)) => t.clone(),
            _ => FieldTable::default(),
        },
        _ => FieldTable::default(),
    };
    let d = death.inner();
    let routing_key = match d.get("routing-keys") {
        Some(AMQPValue::FieldArray(keys)) => keys.as_slice().first().and_then(|k| text(Some(k))),
        _ => None,
    };
    let payload =
        String::from_utf8_lossy(&delivery.data[..delivery.data.len().min(EXCERPT)]).into_owned();
    DeadLetter {
        message_id: delivery
            .properties
            .message_id()
            .as_ref()
            .map(|m| m.to_string()),
        doc_id: text(headers.inner().get("lienthong-doc-id")),
        queue: text(d.get("queue")).unwrap_or_default(),
        exchange: text(d.get("exchange")).unwrap_or_default(),
        routing_key: routing_key.unwrap_or_default(),
        reason: text(d.get("reason")).unwrap_or_default(),
        count: number(d.get("count")).unwrap_or(1),
        died_at: number(d.get("time")),
        payload,
    }
}

impl Publisher {
    /// Looks at the first `limit` dead letters and does `action` to those whose message id is
    /// in `ids` (every one when `ids` is `None`). Returns the ones looked at (for `Keep`) or acted
    /// on. Nothing is lost on an error: a message is removed only after its replay was confirmed.
    pub async fn dead_letters(
        &self,
        action: DeadAction,
        ids: Option<&[String]>,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, BusError> {
        let conn = crate::connect(self.config(), "lienthong-dead-letters").await?;
        let channel = conn.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        let queue = self.topology().dead_queue();
        // Only what is there now: a replayed message that dies again comes back behind them.
        let present = crate::topology::inspect(&channel, &queue)
            .await?
            .message_count();
        let limit = limit.min(usize::try_from(present).unwrap_or(usize::MAX));
        let mut seen = Vec::new();
        let mut kept = Vec::new();
        let result: Result<(), BusError> = async {
            for _ in 0..limit {
                let Some(got) = channel
                    .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: false })
                    .await?
                else {
                    break;
                };
                let delivery = got.delivery;
                let letter = describe(&delivery);
                let chosen = action != DeadAction::Keep
                    && ids.is_none_or(|ids| {
                        letter.message_id.as_ref().is_some_and(|m| ids.contains(m))
                    });
                if !chosen {
                    if action == DeadAction::Keep {
                        seen.push(letter);
                    }
                    kept.push(delivery.delivery_tag);
                    continue;
                }
                if action == DeadAction::Replay {
                    let confirm = channel
                        .basic_publish(
                            letter.exchange.as_str().into(),
                            letter.routing_key.as_str().into(),
                            BasicPublishOptions {
                                mandatory: true,
                                ..BasicPublishOptions::default()
                            },
                            &delivery.data,
                            delivery.properties.clone(),
                        )
                        .await?
                        .await?;
                    if confirm.is_nack() || confirm.take_message().is_some() {
                        return Err(BusError::Unroutable {
                            exchange: letter.exchange.clone(),
                            routing_key: letter.routing_key.clone(),
                        });
                    }
                }
                channel
                    .basic_ack(delivery.delivery_tag, BasicAckOptions::default())
                    .await?;
                seen.push(letter);
            }
            Ok(())
        }
        .await;
        for tag in kept {
            let _ = channel
                .basic_nack(
                    tag,
                    BasicNackOptions {
                        requeue: true,
                        ..BasicNackOptions::default()
                    },
                )
                .await;
        }
        let _ = conn.close(200, "bye".into()).await;
        result.map(|()| seen)
    }
}

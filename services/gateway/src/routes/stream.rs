//! Answers that carry packages, streamed: a package (or its base64) is read from the store a
//! piece at a time while the answer is sent, so a large package is never held by the gateway.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use base64::Engine;
use lienthong_edxml::source::{Range, Source};
use serde_json::Value;

/// One piece of an answer.
pub(crate) enum Piece {
    Bytes(Vec<u8>),
    /// Bytes of a source, as they are.
    Raw(Arc<dyn Source>),
    /// Bytes of a source, in base64.
    Base64(Arc<dyn Source>),
    /// A range of a source, as it is.
    Range(Range),
}

/// How much is read and sent at a time (a multiple of 3, so base64 pieces join up).
const CHUNK: u64 = 3 * 64 * 1024;

/// The pieces, one after the other, as a streamed body. A source that fails midway ends the
/// answer with an error (the client sees a cut connection, never a wrong package).
pub(crate) fn body(pieces: Vec<Piece>) -> Body {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(4);
    tokio::task::spawn_blocking(move || {
        let send = |chunk: Vec<u8>| tx.blocking_send(Ok(Bytes::from(chunk))).is_ok();
        for piece in pieces {
            let (range, base64) = match piece {
                Piece::Bytes(b) => {
                    if !send(b) {
                        return;
                    }
                    continue;
                }
                Piece::Raw(s) => (whole(s), false),
                Piece::Base64(s) => (whole(s), true),
                Piece::Range(r) => (r, false),
            };
            let end = range.offset + range.len;
            let mut at = range.offset;
            while at < end {
                let len = CHUNK.min(end - at);
                let mut chunk = Vec::new();
                let read = Range {
                    source: Arc::clone(&range.source),
                    offset: at,
                    len,
                }
                .for_each_chunk(|c| chunk.extend_from_slice(c));
                if let Err(e) = read {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
                let out = if base64 {
                    base64::engine::general_purpose::STANDARD
                        .encode(&chunk)
                        .into_bytes()
                } else {
                    chunk
                };
                if !send(out) {
                    return;
                }
                at += len;
            }
        }
    });
    Body::from_stream(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)))
}

fn whole(source: Arc<dyn Source>) -> Range {
    Range {
        len: source.len(),
        source,
        offset: 0,
    }
}

/// A JSON answer whose large values are streamed: `value` holds each placeholder string where
/// its piece goes. A `Base64` piece becomes the string's content; a `Raw` piece (JSON itself)
/// replaces the string, quotes included.
pub(crate) fn json(value: &Value, large: Vec<(&str, Piece)>) -> Body {
    let text = value.to_string();
    let mut found: Vec<(usize, usize, Piece)> = large
        .into_iter()
        .filter_map(|(placeholder, piece)| {
            let quoted = Value::String(placeholder.to_owned()).to_string();
            text.find(&quoted).map(|at| (at, quoted.len(), piece))
        })
        .collect();
    found.sort_by_key(|(at, _, _)| *at);
    let mut pieces = Vec::new();
    let mut from = 0;
    for (at, len, piece) in found {
        match piece {
            Piece::Raw(_) => {
                pieces.push(Piece::Bytes(text.as_bytes()[from..at].to_vec()));
                pieces.push(piece);
                from = at + len;
            }
            other => {
                // Keep the quotes; stream the content between them.
                pieces.push(Piece::Bytes(text.as_bytes()[from..=at].to_vec()));
                pieces.push(other);
                from = at + len - 1;
            }
        }
    }
    pieces.push(Piece::Bytes(text.as_bytes()[from..].to_vec()));
    body(pieces)
}

/// A placeholder for a large JSON value: U+FFFF cannot be in a package's text, so no real value
/// is mistaken for one.
pub(crate) fn placeholder(name: &str) -> String {
    format!("\u{FFFF}{name}\u{FFFF}")
}

//! The translator: a pipeline stage that gives every recipient its package in the format its
//! registry entry declares (`receiveFormat`: edxml, govn, json or edocvn), for edocs and for the status
//! packages that travel back to senders alike.
//!
//! It reads the sender's original in the format it came in, appends this bus's `TraceHeader`
//! (the operator's OrganId and the time), and stores one rendition per format the recipients need.
//! The original is never touched: it stays in the store and travels beside the rendition, with
//! the verifier's verdict, so a recipient can still check what the sender signed.
//!
//! An edXML recipient of an edXML package gets the sender's bytes with the `TraceHeader`s put in
//! and the sender's `Signature` (which no longer holds) taken out: found in the package's header,
//! kept as those edits to the stored package (`lienthong_edxml::splice`), neither decoded nor
//! encoded nor stored a second time.
//!
//! A package that cannot be translated for some format (an e-doc.vn recipient, and an agency
//! named in the package without a 9-character code in the registry) fails those recipients'
//! legs with the reason (the sender sees it in the trace); the other recipients go on. Renditions are stored
//! once per (document, format), so a redelivered message produces nothing twice.
//!
//! On a bus with links to other buses, recipients another bus serves get the original forwarded
//! (their own bus translates), and a package that came from another bus keeps the TraceHeaders
//! of the buses it passed, before this bus's own.

use std::collections::BTreeMap;
use std::sync::Arc;

use lienthong_bus::messages::{EventMessage, StageMessage};
use lienthong_bus::work::{IN_PLACE_BYTES, on_package};
use lienthong_bus::{Document, DocumentStage, Onward, Outcome, Pipeline, Topology};
use lienthong_edxml::source::Source;
use lienthong_edxml::splice::{self, Edit, Unspliced};
use lienthong_edxml::{CodeMap, Format, OrganId, Timestamp, TraceHeader};
use lienthong_store::{AgencyState, Body, DeliveryState, DocumentRow, LegsRead, Store, now_ms};
use serde::Deserialize;
use tokio::sync::watch;

pub const STAGE: &str = "translator";

/// The router's stage (`lienthong_router::STAGE`), which this stage may leave the legs it read.
const ROUTER: &str = "router";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TranslatorConfig {
    /// The agency operating this bus: the `TraceHeader` this bus appends names it.
    pub bus_organ_id: String,
    /// This bus's name when it has links to other buses (`federation.bus`): only the agencies
    /// it serves get renditions here. Filled from `[federation]`.
    #[serde(skip)]
    pub bus: Option<String>,
}

pub struct Translator {
    store: Store,
    /// Where the next stage's message goes (the pipeline publishes it).
    topology: Topology,
    bus_organ: OrganId,
    bus: Option<String>,
    /// The pipeline this stage runs in, where the verifier may have left its parse.
    pipeline: Option<Pipeline>,
}

/// A rendition made.
enum Made {
    /// Bytes of its own.
    Body(Body),
    /// The package and a few edits (an edXML rendition of an edXML package).
    Spliced(SplicedRendition),
}

/// An edXML rendition kept as the package and the edits that make it, with the SHA-256 and size
/// of the bytes they make.
struct SplicedRendition {
    edits: Vec<Edit>,
    sha256: String,
    size: u64,
}

/// What translating one document for one format came to.
#[derive(Debug)]
enum Rendered {
    Stored { sha256: String, size: i64 },
    Failed(String),
}

impl Translator {
    pub fn new(
        store: Store,
        topology: Topology,
        config: &TranslatorConfig,
    ) -> Result<Self, String> {
        let bus_organ = OrganId::parse(&config.bus_organ_id)
            .map_err(|e| format!("translator.bus_organ_id: {e}"))?;
        Ok(Self {
            store,
            topology,
            bus_organ,
            bus: config.bus.clone(),
            pipeline: None,
        })
    }

    /// Takes the package the verifier parsed, when it ran in `pipeline`'s process just before
    /// and left it, instead of reading it again.
    pub fn taking_parses_from(mut self, pipeline: Pipeline) -> Self {
        self.pipeline = Some(pipeline);
        self
    }

    /// The formats the document's open legs need, each with the recipients that need it; and
    /// the legs and agencies read for it.
    async fn formats_needed(
        &self,
        doc_id: &str,
    ) -> Result<(BTreeMap<Format, Vec<String>>, LegsRead), Outcome> {
        let retry = |e: &dyn std::fmt::Display| Outcome::Retry(e.to_string());
        let legs = self.store.legs(doc_id).await.map_err(|e| retry(&e))?;
        let open: Vec<&str> = legs
            .iter()
            .filter(|l| l.delivery != DeliveryState::Failed)
            .map(|l| l.recipient.as_str())
            .collect();
        let agencies = self.store.agencies_in(&open).await.map_err(|e| retry(&e))?;
        let mut needed: BTreeMap<Format, Vec<String>> = BTreeMap::new();
        // Recipients the registry no longer knows, or has retired, are the router's to fail.
        // Those another bus serves get the original, and their bus translates.
        let served_here = |a: &&lienthong_store::Agency| match (&self.bus, a.bus.as_deref()) {
            (Some(here), Some(theirs)) => theirs.is_empty() || theirs == here,
            _ => true,
        };
        for a in agencies
            .iter()
            .filter(|a| a.state != AgencyState::Retired)
            .filter(served_here)
        {
            needed
                .entry(a.receive_format)
                .or_default()
                .push(a.code.clone());
        }
        Ok((needed, LegsRead { legs, agencies }))
    }

    /// Produces and stores the renditions not stored yet.
    async fn render(
        &self,
        doc: &DocumentRow,
        formats: Vec<Format>,
        parsed: Option<Parsed>,
    ) -> Result<BTreeMap<Format, Rendered>, Outcome> {
        let retry = |e: &dyn std::fmt::Display| Outcome::Retry(e.to_string());
        let mut done = BTreeMap::new();
        let mut missing = Vec::new();
        for format in formats {
            match self
                .store
                .rendition_row(&doc.doc_id, format)
                .await
                .map_err(|e| retry(&e))?
            {
                Some(row) => {
                    done.insert(
                        format,
                        Rendered::Stored {
                            sha256: row.sha256,
                            size: row.size,
                        },
                    );
                }
                None => missing.push(format),
            }
        }
        if missing.is_empty() {
            return Ok(done);
        }
        // Read from the stored package: large attachments stay in it and are streamed into each
        // rendition, which is written to a spool file, never held. The verifier's tree of it,
        // when it left one, holds the same (read with the same threshold, its large attachments
        // ranges of the package): then the package is not read here.
        let from = doc.format;
        // An edXML recipient's rendition of an edXML package is the package with the trace put
        // in: kept as edits to the stored package, read for them.
        let splice_base = if from == Format::Edxml && missing.contains(&Format::Edxml) {
            Some(
                self.store
                    .package_source(doc)
                    .await
                    .map_err(|e| retry(&e))?,
            )
        } else {
            None
        };
        let (package, size) = match parsed.filter(|_| matches!(from, Format::Edxml | Format::Govn))
        {
            Some((tree, size)) => (Package::Read(tree), size),
            None => {
                let source = match &splice_base {
                    Some(source) => Arc::clone(source),
                    None => self
                        .store
                        .package_source(doc)
                        .await
                        .map_err(|e| retry(&e))?,
                };
                let size = source.len();
                (Package::Stored(source), size)
            }
        };
        let threshold = self.store.large_attachment_bytes();
        let store = self.store.clone();
        // The buses the package passed before this one, then this bus.
        let mut hops = Vec::new();
        for h in doc.arrival.iter().flat_map(|a| &a.trace) {
            if let (Ok(organ_id), Ok(timestamp)) =
                (OrganId::parse(&h.organ_id), Timestamp::parse(&h.timestamp))
            {
                hops.push(TraceHeader {
                    organ_id,
                    timestamp,
                });
            }
        }
        hops.push(TraceHeader {
            organ_id: self.bus_organ.clone(),
            timestamp: Timestamp::from_unix_ms(now_ms()),
        });
        // e-doc.vn names agencies by the registry's 9-character codes.
        let codes = if from == Format::Edocvn || missing.contains(&Format::Edocvn) {
            self.store.code_map().await.map_err(|e| retry(&e))?
        } else {
            CodeMap::default()
        };
        // Parsing and writing are CPU work: off the async threads unless the package is small
        // and its renditions stay in memory (a rendition written to a spool file is synced,
        // which no task's thread should wait for). A rendition is at most about the package's
        // size and a half.
        let work_bytes = if self.store.inline_blob_bytes() >= 4 * IN_PLACE_BYTES {
            size
        } else {
            u64::MAX
        };
        let list = on_package(work_bytes, move || {
            let mut made = Vec::new();
            let mut rest = missing;
            if let Some(base) = splice_base {
                rest.retain(|f| *f != Format::Edxml);
                match spliced(&base, &hops) {
                    Ok(Some(s)) => made.push((Format::Edxml, Ok(Made::Spliced(s)))),
                    // A shape the edits do not cover: encoded from the message, as the others.
                    Ok(None) => rest.push(Format::Edxml),
                    Err(e) => made.push((Format::Edxml, Err(Render::Io(e)))),
                }
            }
            if rest.is_empty() {
                return made;
            }
            let decoded = match package {
                Package::Read(tree) => lienthong_translate::decode_document(from, &tree),
                Package::Stored(source) => Some(lienthong_translate::decode_source(
                    from, source, threshold, &codes,
                )),
            };
            // Only edXML and go.vn packages are taken as trees (filtered above).
            let message = decoded
                .ok_or_else(|| format!("a {from} package is not read from a tree"))
                .and_then(|d| d.map_err(|e| format!("the {from} package could not be read: {e}")));
            let mut message = match message {
                Ok(m) => m,
                Err(reason) => {
                    made.extend(
                        rest.into_iter()
                            .map(|f| (f, Err(Render::Untranslatable(reason.clone())))),
                    );
                    return made;
                }
            };
            for hop in hops {
                lienthong_translate::append_trace(&mut message, hop);
            }
            made.extend(
                rest.into_iter()
                    .map(|f| (f, render(&store, f, &message, &codes).map(Made::Body))),
            );
            made
        })
        .await
        .map_err(|e| Outcome::Poison(format!("translation panicked: {e}")))?;
        for (format, made) in list {
            let row = match made {
                Ok(Made::Body(body)) => self.store.put_rendition(&doc.doc_id, format, &body).await,
                Ok(Made::Spliced(s)) => {
                    self.store
                        .put_spliced_rendition(doc, format, s.edits, s.sha256, s.size)
                        .await
                }
                Err(Render::Untranslatable(why)) => {
                    done.insert(format, Rendered::Failed(why));
                    continue;
                }
                Err(Render::Io(e)) => return Err(retry(&e)),
            }
            .map_err(|e| retry(&e))?;
            done.insert(
                format,
                Rendered::Stored {
                    sha256: row.sha256,
                    size: row.size,
                },
            );
        }
        Ok(done)
    }

    async fn translate(&self, msg: StageMessage) -> Result<Onward, Outcome> {
        let retry = |e: &dyn std::fmt::Display| Outcome::Retry(e.to_string());
        // Taken first, whatever comes next, so that nothing left for this document stays behind.
        let parsed = self
            .pipeline
            .as_ref()
            .and_then(|p| p.take_left::<Parsed>(STAGE, &msg.doc_id));
        let doc = self
            .store
            .document(&msg.doc_id)
            .await
            .map_err(|e| retry(&e))?
            .ok_or_else(|| Outcome::Poison(format!("no document {}", msg.doc_id)))?;
        let (needed, read) = self.formats_needed(&doc.doc_id).await?;
        let rendered = self
            .render(&doc, needed.keys().copied().collect(), parsed)
            .await?;
        let mut events = Vec::new();
        let mut legs_changed = false;
        for (format, recipients) in &needed {
            let reason = match rendered.get(format) {
                Some(Rendered::Stored { sha256, size }) => {
                    events.push(event(
                        &doc.doc_id,
                        &format!("translated:{format}"),
                        self.bus_organ.as_str(),
                        format!(
                            "{} -> {format} for {}; {size} bytes, sha256 {sha256}",
                            doc.format,
                            recipients.join(", ")
                        ),
                    ));
                    continue;
                }
                Some(Rendered::Failed(r)) => format!("not translatable to {format}: {r}"),
                None => format!("not translatable to {format}"),
            };
            for recipient in recipients {
                self.store
                    .fail_leg(&doc.doc_id, recipient, &reason)
                    .await
                    .map_err(|e| retry(&e))?;
                events.push(event(&doc.doc_id, "failed", recipient, reason.clone()));
                legs_changed = true;
            }
        }
        // The router, next and in this process, reads the legs and agencies this stage read,
        // unless a leg failed here.
        if let (Some(pipeline), false, Some(ROUTER)) = (
            &self.pipeline,
            legs_changed,
            msg.slip.get(1).map(String::as_str),
        ) {
            pipeline.leave_for(ROUTER, &doc.doc_id, 0, Box::new(read));
        }
        Ok(Onward::forward(&msg, events, &self.topology))
    }
}

/// A package read into a tree by the verifier, and its size in bytes (what it leaves this stage:
/// `lienthong_verifier`'s `Parsed`).
pub type Parsed = (lienthong_edxml::dom::Document, u64);

/// The package a rendition is made from.
enum Package {
    /// Read into a tree by the verifier.
    Read(lienthong_edxml::dom::Document),
    Stored(Arc<dyn lienthong_edxml::source::Source>),
}

/// Why a rendition was not made.
enum Render {
    /// The package cannot be written in the format (an agency without a 9-character code for
    /// e-doc.vn): the recipients of that format fail.
    Untranslatable(String),
    /// Writing the spool file failed: worth retrying.
    Io(std::io::Error),
}

/// The edXML rendition of the edXML package `base` as edits that put `hops` in; `None` when
/// the package is shaped so that it must be encoded from the message instead.
fn spliced(
    base: &Arc<dyn Source>,
    hops: &[TraceHeader],
) -> std::io::Result<Option<SplicedRendition>> {
    let len = base.len();
    // The header is at the start: its first 64 KiB hold all of it but for thousands of
    // recipients.
    let mut want = len.min(64 * 1024);
    let edits = loop {
        let mut head = vec![0; usize::try_from(want).map_err(std::io::Error::other)?];
        let n = base.read_at(0, &mut head)?;
        head.truncate(n);
        let whole = n as u64 >= len;
        match splice::trace_edits(&head, whole, hops) {
            Ok(edits) => break edits,
            Err(Unspliced::NeedMore(_)) if !whole => want = want.saturating_mul(4).min(len),
            Err(Unspliced::NeedMore(_) | Unspliced::Shape(_)) => return Ok(None),
        }
    };
    let Some(made) = splice::Spliced::new(Arc::clone(base), &edits) else {
        return Ok(None);
    };
    Ok(Some(SplicedRendition {
        sha256: made.sha256_hex()?,
        size: made.len(),
        edits,
    }))
}

/// Writes one rendition (held while small, then to a spool file), attachment contents streamed
/// from the original.
fn render(
    store: &Store,
    format: Format,
    message: &lienthong_translate::Message,
    codes: &CodeMap,
) -> Result<Body, Render> {
    let written = lienthong_translate::encode(format, message, codes)
        .map_err(|e| Render::Untranslatable(e.to_string()))?;
    let mut out = store
        .spool_sync()
        .map_err(|e| Render::Io(std::io::Error::other(e)))?;
    lienthong_translate::expand::expand(&written, message, format, &mut out).map_err(Render::Io)?;
    out.finish().map_err(Render::Io)
}

fn event(doc_id: &str, key: &str, organ: &str, detail: String) -> EventMessage {
    EventMessage::about(doc_id, key, organ, Some(detail), now_ms())
}

impl DocumentStage for Translator {
    const STAGE: &'static str = STAGE;
    async fn process(&self, msg: StageMessage) -> Result<Onward, Outcome> {
        self.translate(msg).await
    }
}

/// Runs the translator in `pipeline` until `shutdown`.
pub async fn run(
    store: Store,
    pipeline: Pipeline,
    config: TranslatorConfig,
    shutdown: watch::Receiver<bool>,
) -> Result<(), String> {
    let translator = Translator::new(store, pipeline.publisher().topology().clone(), &config)?
        .taking_parses_from(pipeline.clone());
    pipeline
        .serve(Arc::new(Document(Arc::new(translator))), shutdown)
        .await;
    Ok(())
}

//! The verifier: a pipeline stage that checks every package's XML-DSig signature and its signer's
//! certificate path, records the verdict for security officers, and lets the package go on only
//! if the policy accepts it.
//!
//! A refused package is never delivered: each of its legs fails with the reason, and the sender
//! receives a status package 02 (refused) from the bus naming the reason. The policy is per
//! connected system or per sender: a signature `required`, or verified when `optional` and
//! recorded as unsigned when absent. Trust anchors and CRLs are read from files and reloaded
//! without a restart; verification never fetches anything on the message path.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use lienthong_bus::messages::{EventMessage, StageMessage};
use lienthong_bus::work::on_package;
use lienthong_bus::{Document, DocumentStage, Onward, Outcome, Pipeline, Publisher};
use lienthong_edxml::{Format, MessageType, OrganId, Organization, StatusCode, write};
use lienthong_outbox::to_outbox;
use lienthong_store::{DeliveryState, DocumentRow, NewDocument, Store, VerdictRow, now_ms};
use lienthong_translate::Message;
use lienthong_xmldsig::{
    Outcome as SignatureOutcome, Policy, TrustStore, Verdict, check_package,
    check_package_source_keeping_tree,
};
use serde::Deserialize;
use tokio::sync::watch;

pub mod revocation;
pub use revocation::{Revocation, RevocationConfig};

pub const STAGE: &str = "verifier";

/// The stage after this one that reads a package as this one does (`lienthong_translator`'s
/// `STAGE`): when it runs in the same process, it is left the package this stage parsed.
const TRANSLATOR: &str = "translator";

/// A package read into a tree, and its size: what the translator takes (its `Parsed`).
type Parsed = (lienthong_edxml::dom::Document, u64);

/// Whether a signature is required.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SignaturePolicy {
    /// Verified when present; an unsigned package goes on, recorded as unsigned.
    #[default]
    Optional,
    /// An unsigned package is refused like an invalid one.
    Required,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifierConfig {
    /// Directory of trusted root certificates (PEM or DER files).
    pub trust_dir: PathBuf,
    /// Intermediate CA certificates (PEM or DER files), for signers whose `X509Data` carries
    /// only their own certificate.
    #[serde(default)]
    pub intermediates_dir: Option<PathBuf>,
    /// CRL files (PEM or DER), kept fresh by whoever writes them (re-read every `reload_secs`).
    #[serde(default)]
    pub crl_files: Vec<PathBuf>,
    /// The default policy.
    #[serde(default)]
    pub signature: SignaturePolicy,
    /// Per connected system (`X-SystemId`).
    #[serde(default)]
    pub systems: BTreeMap<String, SignaturePolicy>,
    /// Per sending agency (OrganId); wins over the system's.
    #[serde(default)]
    pub senders: BTreeMap<String, SignaturePolicy>,
    #[serde(default = "yes")]
    pub allow_sha1: bool,
    #[serde(default)]
    pub require_revocation_data: bool,
    #[serde(default = "default_grace")]
    pub crl_grace_secs: i64,
    /// The agency operating this bus: the bus sends status 02 in its name.
    pub bus_organ_id: String,
    /// How often trust anchors and CRLs are read again.
    #[serde(default = "default_reload")]
    pub reload_secs: u64,
    /// Revocation data fetched ahead of time (CRL distribution points, OCSP); off when absent.
    #[serde(default)]
    pub revocation: Option<RevocationConfig>,
}

fn yes() -> bool {
    true
}
fn default_grace() -> i64 {
    24 * 3600
}
fn default_reload() -> u64 {
    60
}

impl VerifierConfig {
    fn policy_for(&self, doc: &DocumentRow) -> SignaturePolicy {
        self.senders
            .get(&doc.sender)
            .or_else(|| self.systems.get(&doc.sender_system))
            .copied()
            .unwrap_or(self.signature)
    }

    fn crypto_policy(&self) -> Policy {
        Policy {
            allow_sha1: self.allow_sha1,
            require_revocation_data: self.require_revocation_data,
            crl_grace_secs: self.crl_grace_secs,
            ..Policy::default()
        }
    }

    /// Reads the trust anchors and CRLs.
    pub fn load_trust(&self) -> std::io::Result<TrustStore> {
        let crls: Vec<&std::path::Path> = self.crl_files.iter().map(PathBuf::as_path).collect();
        let mut trust = TrustStore::load(&self.trust_dir, &crls)?;
        if let Some(dir) = &self.intermediates_dir {
            trust.load_intermediates(dir)?;
        }
        Ok(trust)
    }
}

pub struct Verifier {
    store: Store,
    publisher: Publisher,
    config: VerifierConfig,
    bus_organ: OrganId,
    trust: Arc<RwLock<Arc<TrustStore>>>,
    revocation: Option<Revocation>,
    /// The pipeline this stage runs in, when the stage after it may be left its parse.
    pipeline: Option<Pipeline>,
}

impl Verifier {
    pub fn new(
        store: Store,
        publisher: Publisher,
        config: VerifierConfig,
    ) -> std::io::Result<Self> {
        let bus_organ = OrganId::parse(&config.bus_organ_id)
            .map_err(|e| std::io::Error::other(format!("verifier.bus_organ_id: {e}")))?;
        let revocation = config
            .revocation
            .clone()
            .map(|r| Revocation::new(r, config.crl_grace_secs))
            .transpose()?;
        let mut trust = config.load_trust()?;
        if let Some(r) = &revocation {
            r.extend(&mut trust);
        }
        if trust.anchors() == 0 {
            tracing::warn!(dir = %config.trust_dir.display(), "no trust anchors: every signed package will be refused as untrusted");
        }
        Ok(Self {
            store,
            publisher,
            config,
            bus_organ,
            trust: Arc::new(RwLock::new(Arc::new(trust))),
            revocation,
            pipeline: None,
        })
    }

    /// Leaves the translator, when it runs in `pipeline`'s process and takes its messages from
    /// the chain, each package this stage parsed and let go on: it then reads none of them again.
    pub fn leaving_parses_in(mut self, pipeline: Pipeline) -> Self {
        self.pipeline = Some(pipeline);
        self
    }

    /// Trust anchors and CRL files, plus what the fetcher has.
    fn build_trust(&self) -> std::io::Result<TrustStore> {
        let mut trust = self.config.load_trust()?;
        if let Some(r) = &self.revocation {
            r.extend(&mut trust);
        }
        Ok(trust)
    }

    fn swap_trust(&self, trust: TrustStore) {
        if let Ok(mut current) = self.trust.write() {
            // Paths built on the old store are still to be fetched for.
            if let Some(r) = &self.revocation {
                r.learn(current.take_revocation_targets());
            }
            *current = Arc::new(trust);
        }
    }

    /// Fetches revocation data until `shutdown`, swapping in a trust store after each round.
    async fn fetch_revocation(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let Some(revocation) = &self.revocation else {
            return;
        };
        loop {
            let anchors: Vec<Vec<u8>> = self
                .trust
                .read()
                .map(|t| t.certificates().map(<[u8]>::to_vec).collect())
                .unwrap_or_default();
            let covered = tokio::select! {
                n = revocation.round(anchors, now_ms() / 1000) => n,
                _ = shutdown.wait_for(|s| *s) => return,
            };
            match self.build_trust() {
                Ok(t) => self.swap_trust(t),
                Err(e) => {
                    tracing::error!(error = %e, "could not reload trust anchors or CRLs; keeping the previous ones")
                }
            }
            revocation.settle(covered);
            tokio::select! {
                _ = revocation.wait() => {}
                _ = shutdown.wait_for(|s| *s) => return,
            }
        }
    }

    /// Reloads trust anchors and CRLs every `reload_secs` until `shutdown`; a failed reload keeps
    /// the previous ones and says so.
    async fn reload(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let every = Duration::from_secs(self.config.reload_secs.max(1));
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = shutdown.wait_for(|s| *s) => return,
            }
            match self.build_trust() {
                Ok(t) => self.swap_trust(t),
                Err(e) => {
                    tracing::error!(error = %e, "could not reload trust anchors or CRLs; keeping the previous ones")
                }
            }
        }
    }

    /// The document's verdict, made now or recorded before; with the package read into a tree
    /// when it was read for the verdict now and the stage after this may be left it.
    async fn verdict_for(&self, doc: &DocumentRow) -> Result<(Verdict, Option<Parsed>), Outcome> {
        let retry = |e: &dyn std::fmt::Display| Outcome::Retry(e.to_string());
        // A redelivered message reuses the recorded verdict: the decision is made once.
        if let Some(row) = self
            .store
            .verdict(&doc.doc_id)
            .await
            .map_err(|e| retry(&e))?
        {
            let verdict: Verdict = serde_json::from_str(&row.verdict).map_err(|e| {
                Outcome::Poison(format!(
                    "stored verdict of {} is unreadable: {e}",
                    doc.doc_id
                ))
            })?;
            return Ok((verdict, None));
        }
        let trust = self
            .trust
            .read()
            .map(|t| Arc::clone(&t))
            .map_err(|_| Outcome::Retry("trust store lock poisoned".into()))?;
        let policy = self.config.crypto_policy();
        let at = now_ms() / 1000;
        let used = Arc::clone(&trust);
        let mut parsed = None;
        let verdict = match doc.format {
            Format::Json => Verdict::unsignable(
                at,
                "a JSON package carries no XML signature: it is recorded as unsigned",
            ),
            // An e-doc.vn package is signed in its SOAP envelope, the root MIME part (its other
            // parts stay in the stored package).
            Format::Edocvn => {
                let (source, threshold) = self.stored(doc).await?;
                on_package(
                    source.len(),
                    move || match lienthong_translate::edocvn::unpack_source(source, threshold) {
                        Ok((envelope, _)) => check_package(&envelope, &used, &policy, at),
                        Err(e) => Verdict::unsignable(at, format!("unreadable MIME entity: {e}")),
                    },
                )
                .await
                .map_err(|e| Outcome::Poison(format!("verification panicked: {e}")))?
            }
            // Read from the stored package: large attachments are digested a piece at a time.
            // The tree is kept for the translator when it may take it.
            Format::Edxml | Format::Govn => {
                let (source, threshold) = self.stored(doc).await?;
                let size = source.len();
                let keep = self.pipeline.is_some();
                let (verdict, tree) = on_package(size, move || {
                    let (verdict, tree) =
                        check_package_source_keeping_tree(source, threshold, &used, &policy, at);
                    (verdict, tree.filter(|_| keep))
                })
                .await
                .map_err(|e| Outcome::Poison(format!("verification panicked: {e}")))?;
                parsed = tree.map(|t| (t, size));
                verdict
            }
        };
        if let Some(r) = &self.revocation {
            r.learn(trust.take_revocation_targets());
            // A certificate seen for the first time has had no chance to get its CRL or OCSP
            // answer: wait for the fetcher rather than refuse for lack of data.
            if verdict.reason_code.as_deref() == Some("no-revocation-data") && r.pending() {
                return Err(Outcome::Retry(
                    "revocation data for a newly seen certificate is being fetched".into(),
                ));
            }
        }
        let signer = verdict.signer();
        let row = VerdictRow {
            doc_id: doc.doc_id.clone(),
            sender: doc.sender.clone(),
            sender_system: doc.sender_system.clone(),
            outcome: serde_json::to_value(verdict.outcome)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            reason_code: verdict.reason_code.clone(),
            reason: verdict.reason.clone(),
            signer: signer.map(|s| s.subject.clone()),
            issuer: signer.map(|s| s.issuer.clone()),
            serial: signer.map(|s| s.serial.clone()),
            signature_method: verdict.signature_method.clone(),
            verified_ms: verdict.verified_at * 1000,
            verdict: serde_json::to_string(&verdict).map_err(|e| Outcome::Poison(e.to_string()))?,
        };
        let recorded = self
            .store
            .record_verdict(&row)
            .await
            .map_err(|e| retry(&e))?;
        if recorded {
            metrics::counter!("lienthong_verdicts_total", "outcome" => row.outcome.clone())
                .increment(1);
        }
        Ok((verdict, parsed))
    }

    async fn verify(&self, msg: StageMessage) -> Result<Onward, Outcome> {
        let retry = |e: &dyn std::fmt::Display| Outcome::Retry(e.to_string());
        let doc = self
            .store
            .document(&msg.doc_id)
            .await
            .map_err(|e| retry(&e))?
            .ok_or_else(|| Outcome::Poison(format!("no document {}", msg.doc_id)))?;
        let (verdict, parsed) = self.verdict_for(&doc).await?;
        let required = self.config.policy_for(&doc) == SignaturePolicy::Required;
        let passes = match verdict.outcome {
            SignatureOutcome::Valid => true,
            SignatureOutcome::Unsigned => !required,
            SignatureOutcome::Invalid => false,
        };
        let t = self.publisher.topology();
        let mut events = vec![event(
            &doc.doc_id,
            "verified",
            &doc.sender,
            describe(&verdict),
        )];
        if passes {
            let onward = Onward::forward(&msg, events, t);
            // The translator, next and in this process, reads the package as this stage did.
            let next = msg.slip.get(1).map(String::as_str);
            if let (Some(pipeline), Some((tree, size)), Some(TRANSLATOR)) =
                (&self.pipeline, parsed, next)
            {
                pipeline.leave_for(TRANSLATOR, &doc.doc_id, size, Box::new((tree, size)));
            }
            return Ok(onward);
        }

        let reason = match (verdict.outcome, &verdict.reason) {
            (SignatureOutcome::Unsigned, _) => {
                "signature required but the package is unsigned".to_owned()
            }
            (_, Some(r)) => format!("signature invalid: {r}"),
            (_, None) => "signature invalid".to_owned(),
        };
        for leg in self.store.legs(&doc.doc_id).await.map_err(|e| retry(&e))? {
            if leg.delivery == DeliveryState::Accepted || leg.delivery == DeliveryState::Failed {
                if leg.delivery == DeliveryState::Accepted {
                    self.store
                        .fail_leg(&doc.doc_id, &leg.recipient, &reason)
                        .await
                        .map_err(|e| retry(&e))?;
                }
                events.push(event(
                    &doc.doc_id,
                    "failed",
                    &leg.recipient,
                    Some(reason.clone()),
                ));
            }
        }
        if doc.message_type == MessageType::Edoc {
            // The refusal takes the stages after this one (translated into the sender's format,
            // then routed).
            let rest = msg.forward().map(|m| m.slip).unwrap_or_default();
            self.refuse_to_sender(&doc, &reason, rest).await?;
        }
        Ok(Onward {
            messages: Vec::new(),
            events,
        })
    }

    /// A stored package to read a piece at a time, and the size over which its attachments are
    /// left in it.
    async fn stored(
        &self,
        doc: &DocumentRow,
    ) -> Result<(Arc<dyn lienthong_edxml::source::Source>, u64), Outcome> {
        let source = self
            .store
            .package_source(doc)
            .await
            .map_err(|e| Outcome::Retry(e.to_string()))?;
        Ok((source, self.store.large_attachment_bytes()))
    }

    /// The header of a stored edoc, whatever its format (read from the store without holding its
    /// large attachments).
    async fn header_of(
        &self,
        doc: &DocumentRow,
    ) -> Result<lienthong_edxml::MessageHeader, Outcome> {
        let retry = |e: &dyn std::fmt::Display| Outcome::Retry(e.to_string());
        let unreadable = || Outcome::Poison(format!("{} is no longer a readable edoc", doc.doc_id));
        let (source, threshold) = self.stored(doc).await?;
        let codes = if doc.format == Format::Edocvn {
            self.store.code_map().await.map_err(|e| retry(&e))?
        } else {
            lienthong_translate::CodeMap::default()
        };
        let format = doc.format;
        let read = on_package(source.len(), move || {
            lienthong_translate::decode_source(format, source, threshold, &codes)
        })
        .await
        .map_err(|e| Outcome::Poison(format!("reading {} panicked: {e}", doc.doc_id)))?;
        match read {
            Ok(Message::Edoc(original)) => Ok(original.header),
            _ => Err(unreadable()),
        }
    }

    /// Sends the sender a status 02 from the bus, through the outbox (accepted once, whatever
    /// the redeliveries).
    async fn refuse_to_sender(
        &self,
        doc: &DocumentRow,
        reason: &str,
        stages: Vec<String>,
    ) -> Result<(), Outcome> {
        let retry = |e: &dyn std::fmt::Display| Outcome::Retry(e.to_string());
        let header = self.header_of(doc).await?;
        let from = Organization::new(self.bus_organ.clone(), "Trục liên thông văn bản");
        let status = write::status_reply(
            &header,
            &from,
            StatusCode::Refused,
            Some(format!(
                "Từ chối: chữ ký số không hợp lệ. Refused by the bus: {reason}"
            )),
        );
        let status_bytes = lienthong_edxml::write_status(&status);
        let status_doc = NewDocument {
            doc_id: uuid::Uuid::now_v7().to_string(),
            idem_key: format!("bus-refusal|{}", doc.doc_id),
            message_type: MessageType::Status,
            sender: self.bus_organ.to_string(),
            sender_system: "lienthong-verifier".into(),
            document_id: doc.document_id.clone(),
            subject: status.description.clone(),
            status_code: Some(StatusCode::Refused),
            response_for: Some(doc.doc_id.clone()),
            recipients: vec![doc.sender.clone()],
            format: lienthong_edxml::Format::Edxml,
            body: lienthong_store::Body::Bytes(status_bytes.into()),
            status_update: None,
            arrival: None,
        };
        let t = self.publisher.topology();
        let outbox = [
            StageMessage::new(
                &status_doc.doc_id,
                if stages.is_empty() {
                    vec!["router".into()]
                } else {
                    stages
                },
            )
            .to_outgoing(t),
            event(
                &doc.doc_id,
                "status",
                self.bus_organ.as_str(),
                Some(format!("02 (refused) by the bus: {reason}")),
            )
            .to_outgoing(t),
        ]
        .iter()
        .map(to_outbox)
        .collect::<Vec<_>>();
        let rows = match self
            .store
            .accept(&status_doc, &outbox)
            .await
            .map_err(|e| retry(&e))?
        {
            lienthong_store::Acceptance::New { outbox, .. }
            | lienthong_store::Acceptance::Existing { outbox, .. } => outbox,
        };
        lienthong_outbox::publish(&self.store, &self.publisher, &rows)
            .await
            .map_err(|e| retry(&e))
    }
}

fn event(doc_id: &str, kind: &str, organ: &str, detail: Option<String>) -> EventMessage {
    EventMessage::about(doc_id, kind, organ, detail, now_ms())
}

fn describe(v: &Verdict) -> Option<String> {
    Some(match (v.outcome, v.signer()) {
        (SignatureOutcome::Valid, Some(s)) => format!(
            "signature valid: {} (issuer {}, serial {}, {})",
            s.subject,
            s.issuer,
            s.serial,
            v.signature_method.as_deref().unwrap_or("?")
        ),
        (SignatureOutcome::Unsigned, _) => "unsigned".to_owned(),
        _ => format!(
            "signature invalid ({}): {}",
            v.reason_code.as_deref().unwrap_or("?"),
            v.reason.as_deref().unwrap_or("")
        ),
    })
}

impl DocumentStage for Verifier {
    const STAGE: &'static str = STAGE;
    async fn process(&self, msg: StageMessage) -> Result<Onward, Outcome> {
        self.verify(msg).await
    }
}

/// Runs the verifier in `pipeline` until `shutdown`.
pub async fn run(
    store: Store,
    pipeline: Pipeline,
    config: VerifierConfig,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let verifier = Arc::new(
        Verifier::new(store, pipeline.publisher().clone(), config)?
            .leaving_parses_in(pipeline.clone()),
    );
    let reload = tokio::spawn(Arc::clone(&verifier).reload(shutdown.clone()));
    let fetch = tokio::spawn(Arc::clone(&verifier).fetch_revocation(shutdown.clone()));
    pipeline.serve(Arc::new(Document(verifier)), shutdown).await;
    let _ = reload.await;
    let _ = fetch.await;
    Ok(())
}

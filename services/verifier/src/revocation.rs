//! Revocation data fetched ahead of time, off the message path: CRLs from configured URLs and from
//! the distribution points of every certificate the verifier has built a path through, and OCSP
//! answers from the responders those certificates name. Each item is refreshed before its
//! `nextUpdate` (and at least every `refresh_secs`); a failed fetch keeps the previous data, and
//! data that goes past its `nextUpdate` plus the grace period raises an alert in the log
//! (`alert="revocation-stale"`) while verification fails closed on it.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use futures_util::{StreamExt, stream};
use lienthong_xmldsig::TrustStore;
use lienthong_xmldsig::revocation::{
    OcspAnswer, check_ocsp_response, crl_urls, ocsp_request, ocsp_urls,
};
use lienthong_xmldsig::trust::{RevocationTarget, pem_blocks};
use serde::Deserialize;
use x509_parser::prelude::FromDer;
use x509_parser::revocation_list::CertificateRevocationList;

/// Fetches in flight at once in a round.
const PARALLEL_FETCHES: usize = 8;

/// Certificates kept fresh at most: every clerk's certificate is one, and a flood of distinct
/// signers must not grow memory (or rounds) without bound.
const MAX_TARGETS: usize = 20_000;

/// `[verifier.revocation]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevocationConfig {
    /// Fetch CRLs from the distribution points of the certificates seen (and of the anchors).
    #[serde(default = "yes")]
    pub crl_distribution_points: bool,
    /// Ask the OCSP responders named by the certificates seen.
    #[serde(default)]
    pub ocsp: bool,
    /// CRLs fetched whatever the certificates say (HTTP URLs).
    #[serde(default)]
    pub crl_urls: Vec<String>,
    /// Longest time between two fetches of the same item.
    #[serde(default = "default_refresh")]
    pub refresh_secs: u64,
    /// Time limit of one HTTP exchange.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// Largest CRL accepted.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: usize,
    /// Where fetched CRLs are kept across restarts (optional).
    #[serde(default)]
    pub cache_dir: Option<PathBuf>,
}

fn yes() -> bool {
    true
}
fn default_refresh() -> u64 {
    3600
}
fn default_timeout() -> u64 {
    10
}
fn default_max_bytes() -> usize {
    64 << 20
}

#[derive(Debug, Clone)]
struct FetchedCrl {
    der: Vec<u8>,
    next_update: Option<i64>,
    fetched_at: i64,
}

#[derive(Debug, Clone)]
struct FetchedOcsp {
    target: RevocationTarget,
    answer: OcspAnswer,
    fetched_at: i64,
}

/// A source that could not be fetched: tried again after a growing pause, so that a dead site
/// costs one timeout now and then, not one per round.
#[derive(Debug)]
struct Failure {
    error: String,
    attempts: u32,
    next_attempt: i64,
}

impl State {
    fn failed(&mut self, key: String, error: String, now: i64, refresh_secs: i64) {
        let attempts = self.failures.get(&key).map_or(0, |f| f.attempts) + 1;
        let pause = (30_i64 << attempts.min(10)).min(refresh_secs.max(30));
        self.failures.insert(
            key,
            Failure {
                error,
                attempts,
                next_attempt: now + pause,
            },
        );
    }

    fn may_try(&self, key: &str, now: i64) -> bool {
        self.failures.get(key).is_none_or(|f| now >= f.next_attempt)
    }
}

#[derive(Debug, Default)]
struct State {
    /// Every certificate a path went through, by the SHA-256 of its DER.
    targets: BTreeMap<Vec<u8>, RevocationTarget>,
    /// When each target was last learned (paths are rebuilt now and then): the least recent go
    /// first when there are more than [`MAX_TARGETS`].
    learned_at: HashMap<Vec<u8>, u64>,
    /// A counter standing for time in `learned_at`.
    clock: u64,
    /// Targets learned and not yet fetched for.
    pending: usize,
    crls: BTreeMap<String, FetchedCrl>,
    ocsp: HashMap<Vec<u8>, FetchedOcsp>,
    /// Last attempt per URL (CRL) or per target (OCSP) that failed, with its error.
    failures: BTreeMap<String, Failure>,
}

/// The fetcher's cache; the verifier builds its trust store from files plus this.
#[derive(Debug)]
pub struct Revocation {
    config: RevocationConfig,
    http: reqwest::Client,
    state: Mutex<State>,
    wake: tokio::sync::Notify,
    grace_secs: i64,
}

fn sha256(bytes: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .to_vec()
}

fn crl_next_update(der: &[u8]) -> Result<Option<i64>, String> {
    let (_, crl) =
        CertificateRevocationList::from_der(der).map_err(|e| format!("not a CRL: {e}"))?;
    Ok(crl.next_update().map(|t| t.timestamp()))
}

impl Revocation {
    pub fn new(config: RevocationConfig, grace_secs: i64) -> std::io::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(config.timeout_secs.max(1)))
            .user_agent("lienthong-verifier")
            .build()
            .map_err(std::io::Error::other)?;
        let mut state = State::default();
        if let Some(dir) = &config.cache_dir {
            std::fs::create_dir_all(dir)?;
            // CRLs kept by an earlier run: usable at once (their signatures are checked at use),
            // replaced when their URL is fetched again.
            for entry in std::fs::read_dir(dir)? {
                let path = entry?.path();
                let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                    continue;
                };
                if !name.ends_with(".crl") {
                    continue;
                }
                if let Ok(der) = std::fs::read(&path)
                    && let Ok(next_update) = crl_next_update(&der)
                {
                    state.crls.insert(
                        format!("cache:{name}"),
                        FetchedCrl {
                            der,
                            next_update,
                            fetched_at: 0,
                        },
                    );
                }
            }
        }
        Ok(Self {
            config,
            http,
            state: Mutex::new(state),
            wake: tokio::sync::Notify::new(),
            grace_secs,
        })
    }

    /// Paths the verifier built; new certificates are fetched for at once.
    pub fn learn(&self, targets: Vec<RevocationTarget>) {
        if targets.is_empty() {
            return;
        }
        let mut new = false;
        if let Ok(mut state) = self.state.lock() {
            for t in targets {
                let id = sha256(&t.cert);
                state.clock += 1;
                let clock = state.clock;
                state.learned_at.insert(id.clone(), clock);
                if let std::collections::btree_map::Entry::Vacant(slot) = state.targets.entry(id) {
                    slot.insert(t);
                    state.pending += 1;
                    new = true;
                }
            }
            while state.targets.len() > MAX_TARGETS {
                let Some(oldest) = state
                    .learned_at
                    .iter()
                    .min_by_key(|(_, at)| **at)
                    .map(|(id, _)| id.clone())
                else {
                    break;
                };
                state.learned_at.remove(&oldest);
                state.targets.remove(&oldest);
                state.ocsp.remove(&oldest);
            }
        }
        if new {
            self.wake.notify_one();
        }
    }

    /// Whether certificates were learned that nothing was fetched for yet: a verdict of missing
    /// revocation data is then premature.
    pub fn pending(&self) -> bool {
        self.state.lock().is_ok_and(|s| s.pending > 0)
    }

    /// Adds everything fetched to a trust store loaded from files.
    pub fn extend(&self, trust: &mut TrustStore) {
        let Ok(state) = self.state.lock() else {
            return;
        };
        for crl in state.crls.values() {
            trust.add_crl(&crl.der);
        }
        for o in state.ocsp.values() {
            trust.add_ocsp_answer(&o.target.cert, &o.target.issuer, o.answer);
        }
    }

    /// Waits for the next round: the refresh interval, or new certificates learned.
    pub async fn wait(&self) {
        let every = Duration::from_secs(self.config.refresh_secs.clamp(1, 3600)).min(
            // Come back soon enough to refresh before a nextUpdate and to see staleness.
            Duration::from_secs(300),
        );
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = self.wake.notified() => {}
        }
    }

    fn due(&self, fetched_at: i64, next_update: Option<i64>, now: i64) -> bool {
        let refresh = self.config.refresh_secs.max(1) as i64;
        now - fetched_at >= refresh
            || next_update.is_some_and(|next| now >= next - refresh.min(3600) / 4)
    }

    /// Certificates learned before a round are settled once the trust store holds its results.
    pub fn settle(&self, fetched_for: usize) {
        if let Ok(mut state) = self.state.lock() {
            state.pending = state.pending.saturating_sub(fetched_for);
        }
    }

    /// One round: fetches what is due, then reports stale data. `anchors` are the configured
    /// anchors and intermediates (their own distribution points are fetched too). Returns how
    /// many newly learned certificates it covered, for [`Revocation::settle`].
    pub async fn round(&self, anchors: Vec<Vec<u8>>, now: i64) -> usize {
        let (urls, ocsp_targets, pending) = {
            let Ok(state) = self.state.lock() else {
                return 0;
            };
            let pending = state.pending;
            let mut urls: Vec<String> = self.config.crl_urls.clone();
            if self.config.crl_distribution_points {
                for cert in anchors
                    .iter()
                    .chain(state.targets.values().map(|t| &t.cert))
                {
                    urls.extend(crl_urls(cert));
                }
            }
            urls.sort();
            urls.dedup();
            urls.retain(|u| {
                state
                    .crls
                    .get(u)
                    .is_none_or(|c| self.due(c.fetched_at, c.next_update, now))
                    && state.may_try(u, now)
            });
            let ocsp_targets: Vec<(Vec<u8>, RevocationTarget, String)> = if self.config.ocsp {
                state
                    .targets
                    .iter()
                    .filter(|(id, _)| {
                        state
                            .ocsp
                            .get(*id)
                            .is_none_or(|o| self.due(o.fetched_at, o.answer.next_update, now))
                    })
                    .filter_map(|(id, t)| {
                        ocsp_urls(&t.cert)
                            .into_iter()
                            .next()
                            .filter(|u| state.may_try(&ocsp_key(u, id), now))
                            .map(|u| (id.clone(), t.clone(), u))
                    })
                    .collect()
            } else {
                Vec::new()
            };
            (urls, ocsp_targets, pending)
        };
        if pending > 0 {
            tracing::debug!(
                pending,
                "fetching revocation data for newly seen certificates"
            );
        }

        // Several at once: one CA's site timing out must not hold up the others.
        let crls: Vec<_> = stream::iter(urls)
            .map(|url| async move {
                let result = self.fetch_crl(&url).await;
                (url, result)
            })
            .buffer_unordered(PARALLEL_FETCHES)
            .collect()
            .await;
        for (url, result) in crls {
            let Ok(mut state) = self.state.lock() else {
                return pending;
            };
            match result {
                Ok((der, next_update)) => {
                    tracing::info!(%url, bytes = der.len(), ?next_update, "CRL fetched");
                    if let Some(dir) = &self.config.cache_dir
                        && let Err(e) = std::fs::write(dir.join(cache_name(&url)), &der)
                    {
                        tracing::warn!(%url, error = %e, "could not keep the CRL in the cache directory");
                    }
                    state.failures.remove(&url);
                    state.crls.remove(&format!("cache:{}", cache_name(&url)));
                    state.crls.insert(
                        url,
                        FetchedCrl {
                            der,
                            next_update,
                            fetched_at: now,
                        },
                    );
                }
                Err(e) => {
                    tracing::warn!(%url, error = %e, "CRL fetch failed; keeping what was there");
                    state.failed(url, e, now, self.config.refresh_secs as i64);
                }
            }
        }
        let answers: Vec<_> = stream::iter(ocsp_targets)
            .map(|(id, target, url)| async move {
                let result = self.fetch_ocsp(&url, &target, now).await;
                (id, target, url, result)
            })
            .buffer_unordered(PARALLEL_FETCHES)
            .collect()
            .await;
        for (id, target, url, result) in answers {
            let Ok(mut state) = self.state.lock() else {
                return pending;
            };
            let key = ocsp_key(&url, &id);
            match result {
                Ok(answer) => {
                    tracing::info!(%url, status = ?answer.status, next_update = ?answer.next_update, "OCSP answer fetched");
                    state.failures.remove(&key);
                    state.ocsp.insert(
                        id,
                        FetchedOcsp {
                            target,
                            answer,
                            fetched_at: now,
                        },
                    );
                }
                Err(e) => {
                    tracing::warn!(%url, error = %e, "OCSP fetch failed; keeping what was there");
                    state.failed(key, e, now, self.config.refresh_secs as i64);
                }
            }
        }
        self.alert_stale(now);
        pending
    }

    /// Logs an alert for each item past its `nextUpdate` plus the grace period: verification
    /// fails closed on it until a fresh one is fetched.
    fn alert_stale(&self, now: i64) {
        let Ok(state) = self.state.lock() else {
            return;
        };
        for (url, crl) in &state.crls {
            if let Some(next) = crl.next_update.filter(|n| now > n + self.grace_secs) {
                tracing::error!(alert = "revocation-stale", %url, next_update = next, last_error = ?state.failures.get(url).map(|f| &f.error), "CRL is stale past its grace period: certificates it covers are refused until it is fetched again");
            }
        }
        for o in state.ocsp.values() {
            let until = o.answer.next_update.unwrap_or(o.answer.this_update);
            if now > until + self.grace_secs {
                tracing::error!(
                    alert = "revocation-stale",
                    next_update = until,
                    "OCSP answer is stale past its grace period"
                );
            }
        }
    }

    async fn get_limited(&self, request: reqwest::RequestBuilder) -> Result<Vec<u8>, String> {
        let mut response = request.send().await.map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("HTTP {}", response.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
            if body.len() + chunk.len() > self.config.max_bytes {
                return Err(format!("larger than {} bytes", self.config.max_bytes));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    async fn fetch_crl(&self, url: &str) -> Result<(Vec<u8>, Option<i64>), String> {
        let body = self.get_limited(self.http.get(url)).await?;
        // DER as RFC 5280 says; PEM accepted from hand-run servers.
        let der = pem_blocks(&body, "X509 CRL")
            .and_then(|mut b| (!b.is_empty()).then(|| b.remove(0)))
            .unwrap_or(body);
        let next_update = crl_next_update(&der)?;
        Ok((der, next_update))
    }

    async fn fetch_ocsp(
        &self,
        url: &str,
        target: &RevocationTarget,
        now: i64,
    ) -> Result<OcspAnswer, String> {
        let request = ocsp_request(&target.cert, &target.issuer).map_err(|e| e.to_string())?;
        let body = self
            .get_limited(
                self.http
                    .post(url)
                    .header("content-type", "application/ocsp-request")
                    .body(request),
            )
            .await?;
        check_ocsp_response(&body, &target.cert, &target.issuer, now).map_err(|e| e.to_string())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn ocsp_key(url: &str, id: &[u8]) -> String {
    format!("ocsp {url} {}", hex(&id[..8.min(id.len())]))
}

fn cache_name(url: &str) -> String {
    format!("{}.crl", hex(&sha256(url.as_bytes())[..16]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificates_kept_fresh_are_bounded_and_the_least_recently_seen_go_first() {
        let config = RevocationConfig {
            crl_distribution_points: true,
            ocsp: true,
            crl_urls: Vec::new(),
            refresh_secs: 3600,
            timeout_secs: 1,
            max_bytes: 1024,
            cache_dir: None,
        };
        let r = Revocation::new(config, 0).expect("revocation");
        let target = |n: usize| RevocationTarget {
            cert: format!("certificate {n}").into_bytes(),
            issuer: b"issuer".to_vec(),
        };
        r.learn((0..MAX_TARGETS).map(target).collect());
        // Seen again: now the most recent.
        r.learn(vec![target(0)]);
        r.learn((MAX_TARGETS..MAX_TARGETS + 10).map(target).collect());
        let state = r.state.lock().expect("state");
        assert_eq!(state.targets.len(), MAX_TARGETS);
        let kept = |n: usize| state.targets.contains_key(&sha256(&target(n).cert));
        assert!(kept(0), "seen again, so kept");
        assert!(!kept(1) && !kept(10), "the least recently seen went");
        assert!(kept(11) && kept(MAX_TARGETS + 9));
    }

    #[test]
    fn a_failing_source_is_tried_again_after_a_growing_pause_bounded_by_the_refresh() {
        let mut state = State::default();
        let url = "http://crl.example/root.crl";
        assert!(state.may_try(url, 0));
        state.failed(url.into(), "timed out".into(), 0, 3600);
        assert!(!state.may_try(url, 59));
        assert!(state.may_try(url, 60));
        state.failed(url.into(), "timed out".into(), 60, 3600);
        assert!(!state.may_try(url, 60 + 119));
        assert!(state.may_try(url, 60 + 120));
        for _ in 0..20 {
            state.failed(url.into(), "timed out".into(), 1000, 3600);
        }
        assert!(
            state.may_try(url, 1000 + 3600),
            "never longer than the refresh"
        );
        assert!(!state.may_try(url, 1000 + 3599));
    }
}

//! Verifies one signed package N times in-process (signature, digests, certificate path) and
//! prints packages per second and MB/s. `deploy/bench/verify-vs-xmlsec1.sh` runs it beside
//! `xmlsec1 --verify --repeat N` on the same files.
//!
//! `cargo bench -p lienthong-xmldsig --bench verify -- PACKAGE TRUST_DIR N`

use std::path::Path;
use std::time::Instant;

use lienthong_xmldsig::{Policy, TrustStore, check_package};

#[allow(clippy::print_stdout)]
fn main() {
    let args: Vec<String> = std::env::args().filter(|a| a != "--bench").collect();
    let (Some(file), Some(trust), Some(n)) = (args.get(1), args.get(2), args.get(3)) else {
        eprintln!("usage: verify PACKAGE TRUST_DIR N");
        std::process::exit(2);
    };
    let n: u32 = n.parse().unwrap_or(100);
    let bytes = std::fs::read(file).unwrap_or_else(|e| panic!("{file}: {e}"));
    let store = TrustStore::load(Path::new(trust), &[]).unwrap_or_else(|e| panic!("{trust}: {e}"));
    let policy = Policy::default();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(0))
        .unwrap_or(0);
    let first = check_package(&bytes, &store, &policy, now);
    assert!(first.is_valid(), "the package does not verify: {first:?}");
    let start = Instant::now();
    for _ in 0..n {
        let v = check_package(&bytes, &store, &policy, now);
        assert!(v.is_valid());
    }
    let secs = start.elapsed().as_secs_f64();
    let per_sec = f64::from(n) / secs;
    let mb = bytes.len() as f64 / 1e6;
    println!(
        "lienthong: {} bytes x {n} in {secs:.3} s = {per_sec:.1} packages/s, {:.1} MB/s",
        bytes.len(),
        per_sec * mb
    );
}

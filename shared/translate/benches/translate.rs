//! Translation throughput, each direction, on a small (about 20 KB) and a large (about 5 MB)
//! edoc, against a baseline measured in the same run: `lienthong_edxml::parse`, the validation
//! every accepted package already goes through.
//!
//! `cargo bench -p lienthong-translate --bench translate [-- ROUNDS]`

use std::time::Instant;

use lienthong_edxml::{OrganId, sample, write_edoc};
use lienthong_translate::{
    CodeMap, Message, from_edocvn, from_edxml, from_govn, from_json, to_edocvn, to_edxml, to_govn,
    to_json,
};

/// Runs `f` until about half a second has passed; returns MB/s over `bytes` per call.
fn rate(bytes: usize, mut f: impl FnMut()) -> f64 {
    f();
    let start = Instant::now();
    let mut n = 0u32;
    while start.elapsed().as_secs_f64() < 0.5 {
        f();
        n += 1;
    }
    f64::from(n) * bytes as f64 / 1e6 / start.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[allow(clippy::print_stdout)]
fn main() {
    let rounds: usize = std::env::args()
        .filter(|a| a != "--bench")
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5);
    let from = OrganId::parse("000.00.00.H49").unwrap_or_else(|e| panic!("{e}"));
    let to = [OrganId::parse("000.00.00.G22").unwrap_or_else(|e| panic!("{e}"))];
    let organs = [from.clone(), to[0].clone()];
    let codes = CodeMap::new([("00.00.H49", &organs[0]), ("00.00.G22", &organs[1])])
        .unwrap_or_else(|e| panic!("{e}"));
    println!("median of {rounds} rounds, MB/s of the edXML package size");
    for (label, attachment) in [("small", 12_000), ("large", 3_600_000)] {
        let xml = write_edoc(&sample::edoc(&from, &to, 1, attachment));
        let message = from_edxml(&xml).unwrap_or_else(|e| panic!("{e}"));
        let json = to_json(&message);
        let govn = to_govn(&message);
        let edocvn = to_edocvn(&message, &codes).unwrap_or_else(|e| panic!("{e}"));
        let mut results: Vec<(&str, Vec<f64>)> = vec![
            ("baseline: edXML parse (validation)", Vec::new()),
            ("edXML -> model", Vec::new()),
            ("model -> JSON", Vec::new()),
            ("JSON -> model (with the edXML rules)", Vec::new()),
            ("model -> edXML", Vec::new()),
            ("edXML -> JSON", Vec::new()),
            ("JSON -> edXML", Vec::new()),
            ("edXML -> go.vn", Vec::new()),
            ("go.vn -> edXML", Vec::new()),
            ("edXML -> e-doc.vn", Vec::new()),
            ("e-doc.vn -> edXML", Vec::new()),
            ("edXML read into a tree (dom)", Vec::new()),
            ("tree -> model (the verifier's tree taken)", Vec::new()),
            ("edXML source read into a tree (stages)", Vec::new()),
        ];
        // What the gateway and the verifier read a stored package from, with the store's
        // default threshold for large attachments.
        let source: std::sync::Arc<dyn lienthong_edxml::source::Source> =
            std::sync::Arc::new(xml.clone());
        let tree = lienthong_edxml::dom::read_document(&xml).unwrap_or_else(|e| panic!("{e}"));
        for _ in 0..rounds {
            let size = xml.len();
            let runs: [Box<dyn FnMut()>; 14] = [
                Box::new(|| {
                    let _ = lienthong_edxml::parse(&xml);
                }),
                Box::new(|| {
                    let _ = from_edxml(&xml);
                }),
                Box::new(|| {
                    let _ = to_json(&message);
                }),
                Box::new(|| {
                    let _ = from_json(&json);
                }),
                Box::new(|| {
                    let _ = to_edxml(&message);
                }),
                Box::new(|| {
                    if let Ok(m) = from_edxml(&xml) {
                        let _ = to_json(&m);
                    }
                }),
                Box::new(|| {
                    if let Ok(m) = from_json(&json) {
                        let _ = to_edxml(&m);
                    }
                }),
                Box::new(|| {
                    if let Ok(m) = from_edxml(&xml) {
                        let _ = to_govn(&m);
                    }
                }),
                Box::new(|| {
                    if let Ok(m) = from_govn(&govn) {
                        let _ = to_edxml(&m);
                    }
                }),
                Box::new(|| {
                    if let Ok(m) = from_edxml(&xml) {
                        let _ = to_edocvn(&m, &codes);
                    }
                }),
                Box::new(|| {
                    if let Ok(m) = from_edocvn(&edocvn, &codes) {
                        let _ = to_edxml(&m);
                    }
                }),
                // What the translator no longer does when the verifier leaves it its tree: the
                // read, against the mapping of the tree alone.
                Box::new(|| {
                    let _ = lienthong_edxml::dom::read_document(&xml);
                }),
                Box::new(|| {
                    let _ = lienthong_edxml::read_whole_document(&tree);
                }),
                Box::new(|| {
                    let _ = lienthong_edxml::dom::read_document_source(
                        std::sync::Arc::clone(&source),
                        1024 * 1024,
                    );
                }),
            ];
            for (i, mut run) in runs.into_iter().enumerate() {
                results[i].1.push(rate(size, &mut run));
            }
        }
        println!(
            "{label}: edXML {} bytes, JSON {} bytes, e-doc.vn {} bytes",
            xml.len(),
            json.len(),
            edocvn.len()
        );
        let baseline = median(results[0].1.clone());
        for (name, rates) in results {
            let m = median(rates);
            println!(
                "  {name:<40} {m:>8.1} MB/s  ({:.2}x the baseline)",
                m / baseline
            );
        }
        let _: &Message = &message;
    }
}

//! The older e-doc.vn generation: SOAP envelopes, with attachments as MIME parts or inline, read
//! with the demo registry's 9-character codes (as the seed corpus uses).
#![no_main]
use libfuzzer_sys::fuzz_target;
use lienthong_edxml::{CodeMap, OrganId};
use std::sync::OnceLock;

fn codes() -> &'static CodeMap {
    static CODES: OnceLock<CodeMap> = OnceLock::new();
    CODES.get_or_init(|| {
        let pairs: Vec<(&str, OrganId)> = [
            ("00.00.G22", "000.00.00.G22"),
            ("00.00.G10", "000.00.00.G10"),
            ("00.00.H49", "000.00.00.H49"),
            ("00.05.H49", "000.00.05.H49"),
            ("12.05.H49", "000.12.05.H49"),
            ("13.05.H49", "000.13.05.H49"),
        ]
        .into_iter()
        .filter_map(|(l, o)| OrganId::parse(o).ok().map(|o| (l, o)))
        .collect();
        CodeMap::new(pairs.iter().map(|(l, o)| (*l, o))).unwrap_or_default()
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = lienthong_translate::edocvn::from_edocvn(data, codes());
});

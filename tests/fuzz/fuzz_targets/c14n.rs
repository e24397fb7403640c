//! Canonicalization of any document the reader accepts, with every algorithm: no panic, and the
//! same output twice.
#![no_main]
use libfuzzer_sys::fuzz_target;
use lienthong_xmldsig::Algorithm;

fuzz_target!(|data: &[u8]| {
    let Ok(doc) = lienthong_edxml::dom::read_document(data) else {
        return;
    };
    for comments in [false, true] {
        for algorithm in [
            Algorithm::Inclusive { comments },
            Algorithm::Inclusive11 { comments },
            Algorithm::Exclusive {
                comments,
                inclusive_prefixes: vec!["#default".into()],
            },
        ] {
            let once = lienthong_xmldsig::canonicalize(&doc, &doc.root, None, &algorithm);
            let twice = lienthong_xmldsig::canonicalize(&doc, &doc.root, None, &algorithm);
            assert_eq!(once, twice);
            // Canonical XML is well-formed XML: it reads back.
            if !once.is_empty() {
                assert!(
                    lienthong_edxml::dom::read_document(&once).is_ok(),
                    "canonical form does not read back"
                );
            }
        }
    }
});

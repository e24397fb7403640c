//! Arbitrary damage to a signed package never panics the verifier and never yields a valid
//! verdict for content other than what was signed: whenever a mutated package still verifies,
//! its canonical form (what the signature covers) is exactly the original's.

mod common;

use lienthong_edxml::dom::read_document;
use lienthong_xmldsig::{Algorithm, Outcome, Policy, canonicalize, check_package};
use proptest::prelude::*;

fn original() -> Vec<u8> {
    std::fs::read(common::vectors().join("xmlsec1-rsa-sha256-c14n.edxml")).expect("vector")
}

/// The canonical form of the package without its signature: what `URI=""` signs.
fn signed_content(bytes: &[u8]) -> Option<Vec<u8>> {
    let doc = read_document(bytes).ok()?;
    let signature = doc.root.elements().find_map(|e| {
        e.elements()
            .find_map(|h| h.elements().find(|s| s.name == "Signature"))
    })?;
    Some(canonicalize(
        &doc,
        &doc.root,
        Some(signature),
        &Algorithm::Inclusive { comments: false },
    ))
}

#[derive(Debug, Clone)]
enum Damage {
    Flip { at: usize, bit: u8 },
    Delete { at: usize, len: usize },
    Insert { at: usize, bytes: Vec<u8> },
    Duplicate { at: usize, len: usize },
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Damage::Flip { at, bit }),
        (any::<usize>(), 1usize..64).prop_map(|(at, len)| Damage::Delete { at, len }),
        (
            any::<usize>(),
            prop::collection::vec(
                prop_oneof![
                    Just(b'<'),
                    Just(b'>'),
                    Just(b'&'),
                    Just(b'"'),
                    Just(b' '),
                    Just(b'\r'),
                    any::<u8>()
                ],
                1..16
            )
        )
            .prop_map(|(at, bytes)| Damage::Insert { at, bytes }),
        (any::<usize>(), 1usize..400).prop_map(|(at, len)| Damage::Duplicate { at, len }),
    ]
}

fn apply(bytes: &[u8], damage: &[Damage]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    for d in damage {
        let n = out.len().max(1);
        match d {
            Damage::Flip { at, bit } => {
                let i = at % n;
                if let Some(b) = out.get_mut(i) {
                    *b ^= 1 << bit;
                }
            }
            Damage::Delete { at, len } => {
                let i = at % n;
                let end = (i + len).min(out.len());
                out.drain(i..end);
            }
            Damage::Insert { at, bytes } => {
                let i = at % n;
                out.splice(i..i, bytes.iter().copied());
            }
            Damage::Duplicate { at, len } => {
                let i = at % n;
                let end = (i + len).min(out.len());
                let copy = out[i..end].to_vec();
                out.splice(end..end, copy);
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn damage_never_panics_and_never_passes_other_content(damage in prop::collection::vec(damage(), 1..4)) {
        let original = original();
        let mutated = apply(&original, &damage);
        let verdict = check_package(&mutated, &common::store(), &Policy::default(), common::crl_time());
        if verdict.outcome == Outcome::Valid {
            prop_assert_eq!(signed_content(&mutated), signed_content(&original));
        }
        // Read with its attachment left in the package (spilled), the same verdict.
        let source: std::sync::Arc<dyn lienthong_edxml::source::Source> = std::sync::Arc::new(mutated);
        let spilled = lienthong_xmldsig::check_package_source(source, 16, &common::store(), &Policy::default(), common::crl_time());
        prop_assert_eq!((spilled.outcome, spilled.reason_code), (verdict.outcome, verdict.reason_code));
    }
}

#[test]
fn the_undamaged_package_verifies_and_its_signed_content_is_found() {
    let original = original();
    let verdict = check_package(
        &original,
        &common::store(),
        &Policy::default(),
        common::crl_time(),
    );
    assert_eq!(verdict.outcome, Outcome::Valid, "{verdict:?}");
    let content = signed_content(&original).expect("signed content");
    assert!(!content.is_empty());
    // Damage inside the signed content is always caught.
    let altered = apply(
        &original,
        &[Damage::Flip {
            at: original
                .windows(7)
                .position(|w| w == b"Subject")
                .expect("Subject")
                + 10,
            bit: 0,
        }],
    );
    assert_ne!(signed_content(&altered), Some(content));
    let verdict = check_package(
        &altered,
        &common::store(),
        &Policy::default(),
        common::crl_time(),
    );
    assert_eq!(verdict.outcome, Outcome::Invalid, "{verdict:?}");
}

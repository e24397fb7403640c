//! The check and measure of base64 text every attachment goes through (twice a document: the
//! gateway's acceptance and the worker's parse), against a baseline measured in the same run:
//! the same check with one table look-up a byte, as it was made before blocks of 64 bytes were
//! classified at once. On attachments as edXML carries them (one line) and as MIME does (lines
//! of 76), about 15 KB (a 20 KB package's) and 4 MB.
//!
//! `cargo bench -p lienthong-edxml --bench base64_check [-- ROUNDS]`

use std::time::Instant;

use base64::Engine;
use lienthong_edxml::source::Base64Check;

/// Runs `f` until about a quarter of a second has passed; returns MB/s over `bytes` per call.
fn rate(bytes: usize, mut f: impl FnMut() -> u64) -> f64 {
    std::hint::black_box(f());
    let start = Instant::now();
    let mut n = 0u32;
    while start.elapsed().as_secs_f64() < 0.25 {
        std::hint::black_box(f());
        n += 1;
    }
    f64::from(n) * bytes as f64 / 1e6 / start.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The check as it was: symbols and white space counted a table look-up a byte, up to the
/// first `=`, then the rest byte by byte. Answers as [`Base64Check`] does.
fn a_byte_at_a_time(text: &[u8]) -> u64 {
    let mut class = [2u8; 256];
    for b in 0..=255u8 {
        if b.is_ascii_alphanumeric() || b == b'+' || b == b'/' {
            class[usize::from(b)] = 0;
        } else if matches!(b, b' ' | b'\t' | b'\r' | b'\n') {
            class[usize::from(b)] = 1;
        }
    }
    let run = text
        .iter()
        .position(|&b| class[usize::from(b)] > 1)
        .unwrap_or(text.len());
    let mut symbols: u64 = text[..run]
        .iter()
        .map(|&b| u64::from(class[usize::from(b)] == 0))
        .sum();
    let mut padding = 0u64;
    for &b in &text[run..] {
        match class[usize::from(b)] {
            0 if padding == 0 => symbols += 1,
            1 => {}
            _ if b == b'=' => padding += 1,
            _ => return 0,
        }
    }
    (symbols + padding) / 4 * 3 - padding
}

fn checked(text: &[u8]) -> u64 {
    let mut check = Base64Check::new(true);
    check.feed(text);
    check.finish().unwrap_or_else(|e| panic!("{e}"))
}

#[allow(clippy::print_stdout)]
fn main() {
    let rounds: usize = std::env::args()
        .filter(|a| a != "--bench")
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(7);
    println!("base64 check and measure, MB/s (median of {rounds} rounds)");
    println!(
        "{:<28} {:>14} {:>14} {:>8}",
        "text", "byte at a time", "64-byte blocks", "speed-up"
    );
    for (name, decoded, line) in [
        ("15 KB, one line (edXML)", 11_000usize, None),
        ("15 KB, lines of 76 (MIME)", 11_000, Some(76)),
        ("4 MB, one line (edXML)", 3_000_000, None),
        ("4 MB, lines of 76 (MIME)", 3_000_000, Some(76)),
    ] {
        let data: Vec<u8> = (0..decoded).map(|i| (i * 7 % 251) as u8).collect();
        let one_line = base64::engine::general_purpose::STANDARD.encode(&data);
        let text: Vec<u8> = match line {
            None => one_line.into_bytes(),
            Some(n) => one_line
                .as_bytes()
                .chunks(n)
                .flat_map(|l| l.iter().copied().chain(*b"\r\n"))
                .collect(),
        };
        assert_eq!(a_byte_at_a_time(&text), decoded as u64, "{name}");
        assert_eq!(checked(&text), decoded as u64, "{name}");
        let (mut before, mut now) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            before.push(rate(text.len(), || a_byte_at_a_time(&text)));
            now.push(rate(text.len(), || checked(&text)));
        }
        let (before, now) = (median(before), median(now));
        println!(
            "{name:<28} {before:>14.0} {now:>14.0} {:>7.1}x",
            now / before
        );
    }
}

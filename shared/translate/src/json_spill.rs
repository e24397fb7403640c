//! Large attachments in JSON packages: one streaming pass over a JSON package finds the
//! `attachments[n].data` strings longer than a threshold, leaves them in the source as byte
//! ranges (the base64 text between the quotes) and gives a slim copy in which each is a marker
//! (see `lienthong_edxml::spill`). Markers are built around U+FFFF: a package holding that
//! character, raw or as `\uFFFF`, is refused, so no sender can forge one.

use std::sync::Arc;

use lienthong_edxml::Violation;
use lienthong_edxml::source::{Range, Sequential, Source};
use lienthong_edxml::spill::{NONCHAR, marker};

use crate::json::JsonError;

/// The slim copy and the spilled `data` strings, by attachment index.
#[derive(Debug)]
pub struct SlimJson {
    pub json: Vec<u8>,
    pub spills: Vec<(usize, Range)>,
}

fn refused(rule: impl Into<String>) -> JsonError {
    JsonError(vec![Violation {
        path: "$".into(),
        rule: rule.into(),
    }])
}

/// Sequential reading, errors as the JSON reader reports them.
struct Reader(Sequential);

fn unreadable(e: std::io::Error) -> JsonError {
    refused(format!("reading the package: {e}"))
}

impl Reader {
    fn offset(&self) -> u64 {
        self.0.offset()
    }

    fn fill(&mut self) -> Result<bool, JsonError> {
        self.0.fill().map_err(unreadable)
    }

    fn next(&mut self) -> Result<Option<u8>, JsonError> {
        self.0.read_byte().map_err(unreadable)
    }
}

/// Where the scanner is in the document.
enum Frame {
    /// An object, with the key whose value comes next (or is being read), and whether the next
    /// string is a key.
    Object {
        key: Vec<u8>,
        expect_key: bool,
    },
    Array {
        index: usize,
    },
}

/// Deepest nesting accepted (a package is a few levels deep; serde would stop at 128 anyway).
const MAX_DEPTH: usize = 64;

/// Scans a JSON package once (see the module).
pub fn slim_json(source: Arc<dyn Source>, threshold: u64) -> Result<SlimJson, JsonError> {
    let mut r = Reader(Sequential::new(Arc::clone(&source)));
    let mut json = Vec::new();
    let mut spills = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut tail = [0u8; 2];
    while let Some(b) = r.next()? {
        // Raw U+FFFF anywhere.
        if b == 0xBF && tail == [0xEF, 0xBF] {
            return Err(refused("the package holds U+FFFF, which is not allowed"));
        }
        tail = [tail[1], b];
        match b {
            b'{' | b'[' if stack.len() >= MAX_DEPTH => {
                return Err(refused(format!("nested deeper than {MAX_DEPTH} levels")));
            }
            b'{' => {
                stack.push(Frame::Object {
                    key: Vec::new(),
                    expect_key: true,
                });
                json.push(b);
            }
            b'[' => {
                stack.push(Frame::Array { index: 0 });
                json.push(b);
            }
            b'}' | b']' => {
                stack.pop();
                json.push(b);
            }
            b':' => {
                if let Some(Frame::Object { expect_key, .. }) = stack.last_mut() {
                    *expect_key = false;
                }
                json.push(b);
            }
            b',' => {
                match stack.last_mut() {
                    Some(Frame::Object { expect_key, .. }) => *expect_key = true,
                    Some(Frame::Array { index }) => *index += 1,
                    None => {}
                }
                json.push(b);
            }
            b'"' => {
                let is_key = matches!(
                    stack.last(),
                    Some(Frame::Object {
                        expect_key: true,
                        ..
                    })
                );
                // attachments[n].data, at the top level.
                let attachment = match stack.as_slice() {
                    [
                        Frame::Object { key: top, .. },
                        Frame::Array { index },
                        Frame::Object {
                            key,
                            expect_key: false,
                        },
                    ] if !is_key && top == b"attachments" && key == b"data" => Some(*index),
                    _ => None,
                };
                let start = r.offset();
                let (content, len, escaped) = string(&mut r, threshold)?;
                match (attachment, content) {
                    (Some(index), None) if !escaped => {
                        json.push(b'"');
                        json.extend_from_slice(marker(index).as_bytes());
                        json.push(b'"');
                        spills.push((
                            index,
                            Range {
                                source: Arc::clone(&source),
                                offset: start,
                                len,
                            },
                        ));
                    }
                    (_, Some(content)) => {
                        if is_key && let Some(Frame::Object { key, .. }) = stack.last_mut() {
                            *key = content.clone();
                        }
                        json.push(b'"');
                        json.extend_from_slice(&content);
                        json.push(b'"');
                    }
                    (_, None) => {
                        // A long string that is not spilled: read it back.
                        json.push(b'"');
                        Range {
                            source: Arc::clone(&source),
                            offset: start,
                            len,
                        }
                        .for_each_chunk(|c| json.extend_from_slice(c))
                        .map_err(|e| refused(format!("reading the package: {e}")))?;
                        json.push(b'"');
                    }
                }
                tail = [0, 0];
            }
            other => json.push(other),
        }
    }
    Ok(SlimJson { json, spills })
}

/// Reads a string's content after its opening quote, through the closing one: the content when
/// it is at most `threshold` bytes (`None` otherwise), its length, and whether it held an escape.
fn string(r: &mut Reader, threshold: u64) -> Result<(Option<Vec<u8>>, u64, bool), JsonError> {
    let mut content = Vec::new();
    let mut len = 0u64;
    let mut escaped = false;
    let mut tail = [0u8; 2];
    loop {
        if !r.fill()? {
            return Err(refused("the package ends inside a string"));
        }
        let chunk = r.0.buffered();
        let stop = memchr::memchr2(b'"', b'\\', chunk);
        let run = &chunk[..stop.unwrap_or(chunk.len())];
        let mut joined = tail.to_vec();
        joined.extend_from_slice(&run[..run.len().min(2)]);
        if memchr::memmem::find(run, NONCHAR).is_some()
            || memchr::memmem::find(&joined, NONCHAR).is_some()
        {
            return Err(refused("the package holds U+FFFF, which is not allowed"));
        }
        if run.len() >= 2 {
            tail.copy_from_slice(&run[run.len() - 2..]);
        }
        len += run.len() as u64;
        if len <= threshold {
            content.extend_from_slice(run);
        }
        let n = run.len();
        r.0.consume(n);
        if stop.is_none() {
            continue;
        }
        let Some(quote_or_backslash) = r.next()? else {
            return Err(refused("the package ends inside a string"));
        };
        if quote_or_backslash == b'"' {
            let content = (len <= threshold).then_some(content);
            return Ok((content, len, escaped));
        }
        // An escape: `\u` followed by four hex digits, or one character.
        escaped = true;
        let mut esc = vec![b'\\'];
        let Some(e) = r.next()? else {
            return Err(refused("the package ends inside a string"));
        };
        esc.push(e);
        if e == b'u' {
            for _ in 0..4 {
                match r.next()? {
                    Some(h) => esc.push(h),
                    None => return Err(refused("the package ends inside a string")),
                }
            }
            if esc[2..].eq_ignore_ascii_case(b"ffff") {
                return Err(refused("the package holds \\uFFFF, which is not allowed"));
            }
        }
        len += esc.len() as u64;
        if len <= threshold {
            content.extend_from_slice(&esc);
        }
        tail = [0, 0];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slim_of(json: &str, threshold: u64) -> Result<SlimJson, JsonError> {
        slim_json(Arc::new(json.as_bytes().to_vec()), threshold)
    }

    #[test]
    fn only_long_attachment_data_is_left_in_the_package() {
        let long = "QUJD".repeat(8);
        let json = format!(
            r#"{{"messageType":"edoc","header":{{"subject":"{long}","data":"{long}"}},"attachments":[{{"attachmentName":"a","data":"{long}"}},{{"data":"QQ=="}},{{"data":"{long}","note":"x"}}]}}"#
        );
        let s = slim_of(&json, 16).expect("slim");
        let indexes: Vec<usize> = s.spills.iter().map(|(i, _)| *i).collect();
        assert_eq!(indexes, [0, 2]);
        let text = String::from_utf8(s.json).expect("utf-8");
        assert_eq!(
            text.matches(&long).count(),
            2,
            "the header's strings stay: {text}"
        );
        assert!(text.contains(&marker(0)) && text.contains(&marker(2)));
        let at = json
            .find(&format!(r#""attachmentName":"a","data":"{long}""#))
            .expect("found")
            + r#""attachmentName":"a","data":""#.len();
        assert_eq!(
            (s.spills[0].1.offset, s.spills[0].1.len),
            (at as u64, long.len() as u64)
        );
        // Below the threshold, the copy is the package.
        assert_eq!(slim_of(&json, 1000).expect("slim").json, json.as_bytes());
    }

    #[test]
    fn escaped_strings_stay_and_u_ffff_is_refused() {
        let long = "QUJD".repeat(8);
        let json = format!(r#"{{"attachments":[{{"data":"{long}\/{long}"}}]}}"#);
        let s = slim_of(&json, 16).expect("slim");
        assert!(s.spills.is_empty());
        assert_eq!(s.json, json.as_bytes());
        assert!(slim_of(r#"{"a":"\uFFFF0\uffff"}"#, 16).is_err());
        assert!(slim_of(&format!("{{\"a\":\"{}\"}}", marker(0)), 16).is_err());
        // Nesting is bounded before anything is built for it.
        let deep = "[".repeat(100_000);
        let err = slim_of(&deep, 16).expect_err("too deep");
        assert!(err.to_string().contains("nested deeper"), "{err}");
    }
}

//! Canonical XML 1.0 (<https://www.w3.org/TR/xml-c14n>) and Exclusive XML Canonicalization 1.0
//! (<https://www.w3.org/TR/xml-exc-c14n/>), with and without comments.
//!
//! The node sets XML-DSig needs here are subtrees: the whole document (`Reference URI=""`), or
//! one element (`URI="#id"`, `SignedInfo`), either minus the subtree of one element (the
//! enveloped-signature transform removes the `Signature`). XPath and XSLT are not supported, on
//! purpose: they are a classic source of verifier bugs and agency systems do not use them.
//!
//! Namespace handling is where verifiers go wrong, so both rules are explicit below: inclusive
//! C14N renders every in-scope namespace the nearest output ancestor did not render with the same
//! value (so an apex below the root carries its ancestors' declarations), exclusive C14N renders
//! only the namespaces an element visibly uses, plus the `InclusiveNamespaces PrefixList`.

use lienthong_edxml::dom::{Attribute, Document, Element, Node};

/// The `xml` prefix's namespace: never declared in output.
const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

/// A canonicalization algorithm, as named by its URI in a signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Algorithm {
    /// `http://www.w3.org/TR/2001/REC-xml-c14n-20010315` (`#WithComments`).
    Inclusive { comments: bool },
    /// Canonical XML 1.1, `http://www.w3.org/2006/12/xml-c14n11` (`#WithComments`), signxml's
    /// default. The same as 1.0 except for document subsets: the apex inherits `xml:lang` and
    /// `xml:space` but not `xml:id`; an inherited `xml:base` would need the 1.1 fix-up, which
    /// is not done, so such a signature fails to verify (never the other way round).
    Inclusive11 { comments: bool },
    /// `http://www.w3.org/2001/10/xml-exc-c14n#` (`WithComments`), with the prefixes of
    /// `InclusiveNamespaces PrefixList` (`#default` for the default namespace).
    Exclusive {
        comments: bool,
        inclusive_prefixes: Vec<String>,
    },
}

impl Algorithm {
    /// The algorithm a URI names; `None` for anything else (refused by the verifier).
    pub fn from_uri(uri: &str, inclusive_prefixes: Vec<String>) -> Option<Self> {
        Some(match uri {
            "http://www.w3.org/TR/2001/REC-xml-c14n-20010315" => {
                Self::Inclusive { comments: false }
            }
            "http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments" => {
                Self::Inclusive { comments: true }
            }
            "http://www.w3.org/2006/12/xml-c14n11" => Self::Inclusive11 { comments: false },
            "http://www.w3.org/2006/12/xml-c14n11#WithComments" => {
                Self::Inclusive11 { comments: true }
            }
            "http://www.w3.org/2001/10/xml-exc-c14n#" => Self::Exclusive {
                comments: false,
                inclusive_prefixes,
            },
            "http://www.w3.org/2001/10/xml-exc-c14n#WithComments" => Self::Exclusive {
                comments: true,
                inclusive_prefixes,
            },
            _ => return None,
        })
    }

    pub(crate) fn comments(&self) -> bool {
        match self {
            Self::Inclusive { comments }
            | Self::Inclusive11 { comments }
            | Self::Exclusive { comments, .. } => *comments,
        }
    }

    /// The same algorithm with comments kept or dropped.
    pub(crate) fn with_comments(self, keep: bool) -> Self {
        match self {
            Self::Inclusive { .. } => Self::Inclusive { comments: keep },
            Self::Inclusive11 { .. } => Self::Inclusive11 { comments: keep },
            Self::Exclusive {
                inclusive_prefixes, ..
            } => Self::Exclusive {
                comments: keep,
                inclusive_prefixes,
            },
        }
    }
}

/// Where canonical bytes go: a buffer, or straight into a digest (so a 50 MB package is never
/// copied into a canonical form just to be hashed).
pub trait Sink {
    fn push_str(&mut self, s: &str);
    fn push(&mut self, c: char) {
        let mut buf = [0u8; 4];
        self.push_str(c.encode_utf8(&mut buf));
    }
}

impl Sink for String {
    fn push_str(&mut self, s: &str) {
        String::push_str(self, s);
    }
}

impl Sink for ring::digest::Context {
    fn push_str(&mut self, s: &str) {
        self.update(s.as_bytes());
    }
}

/// Canonicalizes `apex` (the document root for the whole document) and its subtree, leaving out
/// the subtree of `exclude` if given. When `apex` is the root, the comments and processing
/// instructions around it are part of the output.
pub fn canonicalize(
    document: &Document,
    apex: &Element,
    exclude: Option<&Element>,
    algorithm: &Algorithm,
) -> Vec<u8> {
    let mut out = String::new();
    canonicalize_into(document, apex, exclude, algorithm, &mut out);
    out.into_bytes()
}

/// Canonicalizes into `out` (see [`canonicalize`]); returns how many bytes were written, or 0
/// when a large attachment left in the package (a spilled text) could not be read back.
pub fn canonicalize_into(
    document: &Document,
    apex: &Element,
    exclude: Option<&Element>,
    algorithm: &Algorithm,
    out: &mut dyn Sink,
) -> usize {
    let mut out = Counting {
        inner: out,
        written: 0,
    };
    let out = &mut out;
    let whole = std::ptr::eq(apex, &document.root);
    let c = Canonicalizer {
        algorithm,
        exclude,
        comments: algorithm.comments(),
        text_has_cr: document.text_has_cr,
        unreadable: std::cell::Cell::new(false),
    };
    if whole {
        for node in &document.before {
            if c.node_outside(node, out) {
                out.push('\n');
            }
        }
        c.element(apex, &mut Stack::new(), &mut Stack::new(), &[], out);
        for node in &document.after {
            let mut text = String::new();
            if c.node_outside(node, &mut text) {
                out.push('\n');
                out.push_str(&text);
            }
        }
    } else {
        let ancestors = ancestors_of(&document.root, apex).unwrap_or_default();
        let mut in_scope = Stack::new();
        let mut xml_attributes: Vec<&Attribute> = Vec::new();
        for a in &ancestors {
            for (prefix, uri) in &a.namespace_declarations {
                in_scope.push((prefix.as_deref(), uri.as_str()));
            }
            for attr in a
                .attributes
                .iter()
                .filter(|x| x.namespace.as_deref() == Some(XML_NS))
            {
                xml_attributes.retain(|x| x.name != attr.name);
                xml_attributes.push(attr);
            }
        }
        // Inclusive C14N of a document subset carries the xml:* attributes the apex inherits.
        let inherited: Vec<&Attribute> = match algorithm {
            Algorithm::Inclusive11 { .. } => xml_attributes
                .into_iter()
                .filter(|x| x.name != "id" && x.name != "base")
                .filter(|x| {
                    apex.attributes
                        .iter()
                        .all(|a| a.namespace.as_deref() != Some(XML_NS) || a.name != x.name)
                })
                .collect(),
            Algorithm::Inclusive { .. } => xml_attributes
                .into_iter()
                .filter(|x| {
                    apex.attributes
                        .iter()
                        .all(|a| a.namespace.as_deref() != Some(XML_NS) || a.name != x.name)
                })
                .collect(),
            Algorithm::Exclusive { .. } => Vec::new(),
        };
        c.element(apex, &mut in_scope, &mut Stack::new(), &inherited, out);
    }
    if c.unreadable.get() {
        return 0;
    }
    out.written
}

struct Counting<'a> {
    inner: &'a mut dyn Sink,
    written: usize,
}

impl Sink for Counting<'_> {
    fn push_str(&mut self, s: &str) {
        self.written += s.len();
        self.inner.push_str(s);
    }
}

/// The chain of elements from the root down to `target`'s parent.
pub fn ancestors_of<'a>(root: &'a Element, target: &Element) -> Option<Vec<&'a Element>> {
    if std::ptr::eq(root, target) {
        return Some(Vec::new());
    }
    for child in root.elements() {
        if let Some(mut chain) = ancestors_of(child, target) {
            chain.insert(0, root);
            return Some(chain);
        }
    }
    None
}

struct Canonicalizer<'a> {
    algorithm: &'a Algorithm,
    exclude: Option<&'a Element>,
    comments: bool,
    /// Some text may hold a CR (see [`Document::text_has_cr`]).
    text_has_cr: bool,
    /// A spilled text could not be read from the package: the output is incomplete.
    unreadable: std::cell::Cell<bool>,
}

/// Namespace bindings as a stack, innermost last: a lookup walks back from the end. Elements
/// carry few declarations, so this beats cloning maps for every element.
type Stack<'a> = Vec<(Option<&'a str>, &'a str)>;

fn lookup<'a>(stack: &[(Option<&'a str>, &'a str)], prefix: Option<&str>) -> Option<&'a str> {
    stack
        .iter()
        .rev()
        .find(|(p, _)| *p == prefix)
        .map(|(_, u)| *u)
}

fn write_name(prefix: Option<&str>, name: &str, out: &mut dyn Sink) {
    if let Some(p) = prefix {
        out.push_str(p);
        out.push(':');
    }
    out.push_str(name);
}

impl<'a> Canonicalizer<'a> {
    /// A comment or PI outside the root; returns whether anything was written.
    fn node_outside(&self, node: &Node, out: &mut dyn Sink) -> bool {
        match node {
            Node::Comment(c) if self.comments => {
                comment(c, out);
                true
            }
            Node::ProcessingInstruction { target, data } => {
                pi(target, data, out);
                true
            }
            _ => false,
        }
    }

    /// `scope`: namespaces in scope at the parent; `rendered`: what the output ancestors rendered
    /// (inclusively: everything they had in scope).
    fn element<'e>(
        &self,
        e: &'e Element,
        scope: &mut Stack<'e>,
        rendered: &mut Stack<'e>,
        inherited_xml: &[&Attribute],
        out: &mut dyn Sink,
    ) where
        'a: 'e,
    {
        if self.exclude.is_some_and(|x| std::ptr::eq(x, e)) {
            return;
        }
        let (scope_len, rendered_len) = (scope.len(), rendered.len());
        for (prefix, uri) in &e.namespace_declarations {
            scope.push((prefix.as_deref(), uri.as_str()));
        }

        let mut candidates: Vec<Option<&str>> = match self.algorithm {
            Algorithm::Inclusive { .. } | Algorithm::Inclusive11 { .. } => {
                scope.iter().map(|(p, _)| *p).collect()
            }
            Algorithm::Exclusive {
                inclusive_prefixes, ..
            } => {
                let mut used: Vec<Option<&str>> = vec![e.prefix.as_deref()];
                used.extend(
                    e.attributes
                        .iter()
                        .filter_map(|a| a.prefix.as_deref().map(Some)),
                );
                for p in inclusive_prefixes {
                    let p = (p != "#default").then_some(p.as_str());
                    if lookup(scope, p).is_some() {
                        used.push(p);
                    }
                }
                used
            }
        };
        // Lexicographic by prefix, the default namespace (no prefix) first.
        candidates.sort_unstable();
        candidates.dedup();

        let inclusive = matches!(
            self.algorithm,
            Algorithm::Inclusive { .. } | Algorithm::Inclusive11 { .. }
        );
        let mut declarations: Vec<(Option<&str>, &str)> = Vec::new();
        for prefix in candidates {
            if prefix == Some("xml") {
                continue;
            }
            let uri = lookup(scope, prefix).unwrap_or_default();
            if uri == XML_NS {
                continue;
            }
            let before = lookup(&rendered[..rendered_len], prefix).unwrap_or_default();
            if inclusive {
                // Inclusively, an output element stands for everything in its scope.
                rendered.push((prefix, uri));
            }
            // An empty default namespace is only rendered to undo a non-empty one above.
            if uri == before || (prefix.is_none() && uri.is_empty() && before.is_empty()) {
                continue;
            }
            if prefix.is_some() && uri.is_empty() {
                continue;
            }
            if !inclusive {
                rendered.push((prefix, uri));
            }
            declarations.push((prefix, uri));
        }

        out.push('<');
        write_name(e.prefix.as_deref(), &e.name, out);
        for (prefix, uri) in &declarations {
            match prefix {
                Some(p) => {
                    out.push_str(" xmlns:");
                    out.push_str(p);
                }
                None => out.push_str(" xmlns"),
            }
            out.push_str("=\"");
            escape_attribute(uri, out);
            out.push('"');
        }
        if !e.attributes.is_empty() || !inherited_xml.is_empty() {
            let mut attributes: Vec<&Attribute> = e
                .attributes
                .iter()
                .chain(inherited_xml.iter().copied())
                .collect();
            attributes.sort_by(|a, b| {
                (a.namespace.as_deref().unwrap_or(""), a.name.as_str())
                    .cmp(&(b.namespace.as_deref().unwrap_or(""), b.name.as_str()))
            });
            for a in attributes {
                out.push(' ');
                write_name(a.prefix.as_deref(), &a.name, out);
                out.push_str("=\"");
                escape_attribute(&a.value, out);
                out.push('"');
            }
        }
        out.push('>');
        for child in &e.children {
            match child {
                Node::Element(c) => self.element(c, scope, rendered, &[], out),
                Node::Text(t) if t.spilled().is_some() => {
                    // A large attachment text, read back from the package: ASCII without `&`
                    // (so without CR after line-end handling); only `>` needs escaping.
                    let read = t.for_each_chunk(|chunk| match std::str::from_utf8(chunk) {
                        Ok(s) => escape_text(s, false, out),
                        Err(_) => self.unreadable.set(true),
                    });
                    if read.is_err() {
                        self.unreadable.set(true);
                    }
                }
                Node::Text(t) if t.is_plain() => out.push_str(t),
                Node::Text(t) => escape_text(t, self.text_has_cr, out),
                Node::Comment(c) if self.comments => comment(c, out),
                Node::Comment(_) => {}
                Node::ProcessingInstruction { target, data } => pi(target, data, out),
            }
        }
        out.push_str("</");
        write_name(e.prefix.as_deref(), &e.name, out);
        out.push('>');
        scope.truncate(scope_len);
        rendered.truncate(rendered_len);
    }
}

fn comment(text: &str, out: &mut dyn Sink) {
    out.push_str("<!--");
    out.push_str(text);
    out.push_str("-->");
}

fn pi(target: &str, data: &str, out: &mut dyn Sink) {
    out.push_str("<?");
    out.push_str(target);
    if !data.is_empty() {
        out.push(' ');
        out.push_str(data);
    }
    out.push_str("?>");
}

/// Escapes `&`, `<`, `>` and CR (searched for only when the document may hold one); runs without
/// them are written as they are, in one piece.
fn escape_text(text: &str, may_hold_cr: bool, out: &mut dyn Sink) {
    let replacement = |b| match b {
        b'&' => "&amp;",
        b'<' => "&lt;",
        b'>' => "&gt;",
        _ => "&#xD;",
    };
    let bytes = text.as_bytes();
    if may_hold_cr && memchr::memchr(b'\r', bytes).is_some() {
        escape(
            text,
            out,
            |b| matches!(b, b'&' | b'<' | b'>' | b'\r'),
            replacement,
        );
        return;
    }
    // The usual case (and the whole of a base64 attachment): SIMD search for the three others.
    let mut start = 0;
    for i in memchr::memchr3_iter(b'&', b'<', b'>', bytes) {
        out.push_str(&text[start..i]);
        out.push_str(replacement(bytes[i]));
        start = i + 1;
    }
    out.push_str(&text[start..]);
}

/// Escapes `&`, `<`, `"`, TAB, LF and CR in attribute values.
fn escape_attribute(value: &str, out: &mut dyn Sink) {
    escape(
        value,
        out,
        |b| matches!(b, b'&' | b'<' | b'"' | b'\t' | b'\n' | b'\r'),
        |b| match b {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'"' => "&quot;",
            b'\t' => "&#x9;",
            b'\n' => "&#xA;",
            _ => "&#xD;",
        },
    );
}

/// Writes `text` with the bytes `special` picks replaced by `replacement`. The special bytes are
/// ASCII, so cutting there always falls between UTF-8 characters.
fn escape(
    text: &str,
    out: &mut dyn Sink,
    special: impl Fn(u8) -> bool,
    replacement: impl Fn(u8) -> &'static str,
) {
    let bytes = text.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if special(b) {
            out.push_str(&text[start..i]);
            out.push_str(replacement(b));
            start = i + 1;
        }
    }
    out.push_str(&text[start..]);
}

//! A small, safe, faithful document tree read with quick-xml.
//!
//! The typed model is mapped from this tree rather than from events so that validation can name
//! the exact path of every broken rule, and the signature verifier canonicalizes this same tree,
//! so what is verified and what is routed come from one parse (no parser differential).
//!
//! Reading is safe by construction: a document type declaration (and so any entity definition) is
//! refused, only the five predefined entities and character references are expanded, nesting
//! depth is bounded, and names are resolved against their namespaces so `edXML:From` and `From`
//! under a default namespace are the same element.
//!
//! It is faithful to the XML information set canonicalization needs: element and attribute
//! prefixes, namespace declarations per element, comments and processing instructions (also
//! outside the root), end-of-line handling (CR LF and CR become LF) and attribute-value
//! normalization (literal tabs and newlines in attributes become spaces) done before references
//! are expanded, as an XML processor does.

pub use compact_str::CompactString;
use quick_xml::NsReader;
use std::borrow::Cow;
use std::sync::Arc;

use quick_xml::events::Event;
use quick_xml::name::{PrefixDeclaration, ResolveResult};

use crate::error::ParseError;
use crate::source::{Range, Source};

/// Deepest element nesting accepted; real packages are under 10 levels.
const MAX_DEPTH: usize = 64;

/// A whole document: the root element and the comments and processing instructions around it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    pub before: Vec<Node>,
    pub root: Element,
    pub after: Vec<Node>,
    /// Whether some text holds a CR. Line ends are normalized on reading, so only a character
    /// reference can put one there; canonicalization skips its search for CR when none did.
    pub text_has_cr: bool,
}

/// One element: namespace URI, prefix and local name, the namespace declarations it carries,
/// its other attributes, and its children in document order.
///
/// Names, prefixes and texts are [`CompactString`]s: up to 24 bytes are held inline, so the
/// tree of a package (a few hundred names and the white space between its elements) is read
/// without an allocation for each (`docs/performance.md`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    /// Shared between the elements of one namespace: a package has few, and many elements.
    pub namespace: Option<Arc<str>>,
    pub prefix: Option<CompactString>,
    pub name: CompactString,
    /// `xmlns` (prefix `None`) and `xmlns:p` declarations, in document order. An empty value
    /// undeclares the default namespace.
    pub namespace_declarations: Vec<(Option<String>, String)>,
    pub attributes: Vec<Attribute>,
    pub children: Vec<Node>,
}

/// An attribute other than a namespace declaration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    pub namespace: Option<Arc<str>>,
    pub prefix: Option<CompactString>,
    pub name: CompactString,
    pub value: String,
}

/// Character data, as read: references expanded, line ends normalized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text {
    value: CompactString,
    /// Known to hold none of `&`, `<`, `>`, CR, so canonical XML writes it as it is. Set only
    /// by the reader, which learned it in the search it made anyway (a base64 attachment is
    /// then never searched again).
    plain: bool,
    /// A large attachment text left in the package (see [`crate::spill`]): `value` is then
    /// empty and the text is read from this range with [`Text::for_each_chunk`].
    spilled: Option<Range>,
}

impl Text {
    /// The text; empty for a spilled text, whose bytes only [`Text::for_each_chunk`] gives.
    pub fn as_str(&self) -> &str {
        &self.value
    }

    /// Where a spilled text lies in the package.
    pub fn spilled(&self) -> Option<&Range> {
        self.spilled.as_ref()
    }

    /// The text's bytes, a chunk at a time (read from the package when spilled; a spilled text
    /// is ASCII).
    pub fn for_each_chunk(&self, mut f: impl FnMut(&[u8])) -> std::io::Result<()> {
        match &self.spilled {
            Some(range) => range.for_each_text_chunk(f),
            None => {
                f(self.value.as_bytes());
                Ok(())
            }
        }
    }

    /// Holds none of `&`, `<`, `>`, CR; `false` means "unknown, look".
    pub fn is_plain(&self) -> bool {
        self.plain
    }

    fn append(&mut self, other: Text) {
        self.value.push_str(&other.value);
        self.plain &= other.plain;
    }
}

impl From<String> for Text {
    fn from(value: String) -> Self {
        Self {
            value: value.into(),
            plain: false,
            spilled: None,
        }
    }
}

impl From<&str> for Text {
    fn from(value: &str) -> Self {
        Self {
            value: value.into(),
            plain: false,
            spilled: None,
        }
    }
}

impl std::ops::Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        &self.value
    }
}

/// A child of an element, or a node around the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Element(Element),
    Text(Text),
    Comment(String),
    ProcessingInstruction { target: String, data: String },
}

impl Element {
    /// Child elements, in order.
    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            _ => None,
        })
    }

    /// Child elements with this local name (namespace is checked once, at the root).
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.elements().filter(move |e| e.name == name)
    }

    /// The first child element with this local name.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.elements().find(|e| e.name == name)
    }

    /// First child among several accepted spellings (`Bussiness` and `Business`).
    pub fn child_any(&self, names: &[&str]) -> Option<&Element> {
        self.elements().find(|e| names.contains(&e.name.as_str()))
    }

    /// The element's own text (direct text children concatenated), trimmed.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for n in &self.children {
            if let Node::Text(t) = n {
                out.push_str(t);
            }
        }
        out.trim().to_owned()
    }

    /// The text of a child, if the child is present.
    pub fn child_text(&self, name: &str) -> Option<String> {
        self.child(name).map(Element::text)
    }

    /// An attribute without namespace, by name (`Id`, `URI`, `Algorithm`...).
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|a| a.namespace.is_none() && a.name == name)
            .map(|a| a.value.as_str())
    }

    /// The element's name as written, `prefix:local` or `local`.
    pub fn qualified_name(&self) -> String {
        qualified(self.prefix.as_deref(), &self.name)
    }
}

impl Attribute {
    /// The attribute's name as written.
    pub fn qualified_name(&self) -> String {
        qualified(self.prefix.as_deref(), &self.name)
    }
}

fn qualified(prefix: Option<&str>, local: &str) -> String {
    match prefix {
        Some(p) => format!("{p}:{local}"),
        None => local.to_owned(),
    }
}

/// Reads a whole document into its root element.
pub fn read(bytes: &[u8]) -> Result<Element, ParseError> {
    read_document(bytes).map(|d| d.root)
}

/// Reads a whole document, keeping what surrounds the root.
pub fn read_document(bytes: &[u8]) -> Result<Document, ParseError> {
    read_with_spills(bytes, &[])
}

/// Reads a document from a source, leaving attachment texts over `threshold` bytes in it (see
/// [`crate::spill`]): the tree then holds their ranges, and memory holds the rest only.
pub fn read_document_source(
    source: Arc<dyn Source>,
    threshold: u64,
) -> Result<Document, ParseError> {
    let slim = crate::spill::slim(source, threshold)?;
    read_with_spills(&slim.xml, &slim.spills)
}

/// The range a text stands for, when it is a marker of the slim copy being read.
fn spill_index(raw: &str, spills: &[Range]) -> Option<Result<Range, ParseError>> {
    if spills.is_empty() {
        return None;
    }
    let index = crate::spill::marker_index(raw.as_bytes())?;
    Some(spills.get(index).cloned().ok_or(ParseError::Malformed {
        position: 0,
        reason: format!("spill marker {index} names no range"),
    }))
}

/// Reads the slim copy of a document whose markers stand for `spills` (marker `n` for
/// `spills[n]`).
pub fn read_slim(bytes: &[u8], spills: &[Range]) -> Result<Document, ParseError> {
    read_with_spills(bytes, spills)
}

fn read_with_spills(bytes: &[u8], spills: &[Range]) -> Result<Document, ParseError> {
    let mut reader = NsReader::from_reader(bytes);
    reader.config_mut().trim_text(false);
    reader.config_mut().check_end_names = true;
    reader.config_mut().expand_empty_elements = true;

    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut before = Vec::new();
    let mut after = Vec::new();
    let mut text_has_cr = false;
    let mut namespaces = Namespaces::default();
    loop {
        let position = reader.buffer_position();
        let malformed = |reason: String| ParseError::Malformed { position, reason };
        // Events borrow from the input: a large text (a base64 attachment) is copied once, into
        // the tree, and only if it needs no rewriting even that is a plain memcpy.
        let event = reader
            .read_resolved_event()
            .map_err(|e| malformed(e.to_string()))?;
        match event {
            (ns, Event::Start(start)) => {
                if root.is_some() {
                    return Err(malformed("content after the root element".into()));
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(ParseError::TooDeep { limit: MAX_DEPTH });
                }
                let namespace = namespaces.resolve(ns, position)?;
                let name = nc_name(start.local_name().as_ref(), position)?;
                let prefix = start
                    .name()
                    .prefix()
                    .map(|p| nc_name(p.as_ref(), position))
                    .transpose()?;
                let mut namespace_declarations = Vec::new();
                let mut attributes = Vec::new();
                for attr in start.attributes() {
                    let attr = attr.map_err(|e| malformed(e.to_string()))?;
                    let value = attribute_value(&attr.value, position)?;
                    if let Some(binding) = attr.key.as_namespace_binding() {
                        let prefix = match binding {
                            PrefixDeclaration::Default => None,
                            PrefixDeclaration::Named(p) => Some(nc_name(p, position)?.into()),
                        };
                        namespace_declarations.push((prefix, value));
                        continue;
                    }
                    let (ans, local) = reader.resolve_attribute(attr.key);
                    attributes.push(Attribute {
                        namespace: namespaces.resolve(ans, position)?,
                        prefix: attr
                            .key
                            .prefix()
                            .map(|p| nc_name(p.as_ref(), position))
                            .transpose()?,
                        name: nc_name(local.as_ref(), position)?,
                        value,
                    });
                }
                stack.push(Element {
                    namespace,
                    prefix,
                    name,
                    namespace_declarations,
                    attributes,
                    children: Vec::new(),
                });
            }
            (_, Event::End(_)) => {
                let done = stack
                    .pop()
                    .ok_or_else(|| malformed("unexpected end tag".into()))?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(Node::Element(done)),
                    None => root = Some(done),
                }
            }
            (_, Event::Text(text)) => {
                let raw = utf8_str(&text, position)?;
                // One search for both things that change text (a whole base64 attachment
                // usually has neither), then one copy.
                let text = if memchr::memchr3(b'\r', b'&', b'>', raw.as_bytes()).is_none() {
                    // No reference and no CR: the text is the raw bytes, and (`<` being
                    // impossible in raw text) needs no escaping either.
                    match spill_index(raw, spills) {
                        Some(range) => Text {
                            value: CompactString::default(),
                            plain: false,
                            spilled: Some(range?),
                        },
                        None => Text {
                            value: raw.into(),
                            plain: true,
                            spilled: None,
                        },
                    }
                } else if memchr::memchr2(b'\r', b'&', raw.as_bytes()).is_none() {
                    Text::from(raw)
                } else {
                    let text = quick_xml::escape::unescape(&normalize_line_ends(raw))
                        .map_err(|e| malformed(e.to_string()))?
                        .into_owned();
                    text_has_cr |= memchr::memchr(b'\r', text.as_bytes()).is_some();
                    Text::from(text)
                };
                push_text(&mut stack, text, position)?;
            }
            (_, Event::CData(cdata)) => {
                let text = normalize_line_ends(utf8_str(&cdata, position)?).into_owned();
                push_text(&mut stack, Text::from(text), position)?;
            }
            (_, Event::Comment(comment)) => {
                let text = normalize_line_ends(utf8_str(&comment, position)?).into_owned();
                push_other(
                    &mut stack,
                    &root,
                    &mut before,
                    &mut after,
                    Node::Comment(text),
                );
            }
            (_, Event::PI(pi)) => {
                let target = utf8(pi.target(), position)?;
                let data = normalize_line_ends(utf8_str(pi.content(), position)?.trim_start())
                    .into_owned();
                let node = Node::ProcessingInstruction { target, data };
                push_other(&mut stack, &root, &mut before, &mut after, node);
            }
            (_, Event::DocType(_)) => return Err(ParseError::DocTypeRefused),
            (_, Event::Empty(_)) => {
                // expand_empty_elements turns these into Start/End pairs.
                return Err(malformed("unexpected empty element event".into()));
            }
            (_, Event::Decl(_)) => {}
            (_, Event::Eof) => break,
        }
    }
    if let Some(open) = stack.last() {
        return Err(ParseError::Malformed {
            position: reader.buffer_position(),
            reason: format!("unclosed element `{}`", open.name),
        });
    }
    let root = root.ok_or(ParseError::Empty)?;
    Ok(Document {
        before,
        root,
        after,
        text_has_cr,
    })
}

/// Namespace URIs seen so far, each allocated once.
#[derive(Default)]
struct Namespaces(Vec<Arc<str>>);

impl Namespaces {
    fn resolve(
        &mut self,
        ns: ResolveResult,
        position: u64,
    ) -> Result<Option<Arc<str>>, ParseError> {
        match ns {
            ResolveResult::Bound(ns) => {
                let uri = ns.as_ref();
                if let Some(known) = self.0.iter().find(|k| k.as_bytes() == uri) {
                    return Ok(Some(Arc::clone(known)));
                }
                let known: Arc<str> = Arc::from(utf8_str(uri, position)?);
                // A hostile package may declare thousands: keep sharing bounded.
                if self.0.len() < 64 {
                    self.0.push(Arc::clone(&known));
                }
                Ok(Some(known))
            }
            ResolveResult::Unbound => Ok(None),
            ResolveResult::Unknown(prefix) => Err(ParseError::Malformed {
                position,
                reason: format!(
                    "undeclared namespace prefix `{}`",
                    String::from_utf8_lossy(&prefix)
                ),
            }),
        }
    }
}

/// End-of-line handling (XML 1.0 section 2.11): CR LF and lone CR become LF.
fn normalize_line_ends(s: &str) -> Cow<'_, str> {
    if memchr::memchr(b'\r', s.as_bytes()).is_none() {
        return Cow::Borrowed(s);
    }
    Cow::Owned(s.replace("\r\n", "\n").replace('\r', "\n"))
}

/// Attribute-value normalization (XML 1.0 section 3.3.3) for CDATA attributes: literal white
/// space becomes a space before references are expanded, so `&#xA;` survives as a newline.
fn attribute_value(raw: &[u8], position: u64) -> Result<String, ParseError> {
    let text = utf8_str(raw, position)?;
    // Most values (identifiers, algorithm URIs) hold no white space to normalize and no
    // reference: one copy.
    if memchr::memchr3(b'\t', b'\n', b'\r', raw).is_none() && memchr::memchr(b'&', raw).is_none() {
        return Ok(text.to_owned());
    }
    let raw = normalize_line_ends(text).replace(['\t', '\n'], " ");
    quick_xml::escape::unescape(&raw)
        .map(|v| v.into_owned())
        .map_err(|e| ParseError::Malformed {
            position,
            reason: e.to_string(),
        })
}

/// Comments and processing instructions go to the open element, or around the root.
fn push_other(
    stack: &mut [Element],
    root: &Option<Element>,
    before: &mut Vec<Node>,
    after: &mut Vec<Node>,
    node: Node,
) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(node),
        None if root.is_none() => before.push(node),
        None => after.push(node),
    }
}

fn push_text(stack: &mut [Element], text: Text, position: u64) -> Result<(), ParseError> {
    match stack.last_mut() {
        Some(parent) => {
            // Adjacent text (text, CDATA, text) is one text node; a spilled text stands alone
            // (it is the whole content of its element).
            if let Some(Node::Text(last)) = parent
                .children
                .last_mut()
                .filter(|_| text.spilled.is_none())
                .filter(|n| !matches!(n, Node::Text(t) if t.spilled.is_some()))
            {
                last.append(text);
            } else {
                parent.children.push(Node::Text(text));
            }
            Ok(())
        }
        None if text.trim().is_empty() => Ok(()),
        None => Err(ParseError::Malformed {
            position,
            reason: "text outside the root element".into(),
        }),
    }
}

fn utf8(bytes: &[u8], position: u64) -> Result<String, ParseError> {
    utf8_str(bytes, position).map(str::to_owned)
}

/// UTF-8 validation with SIMD: a base64 attachment is validated at memory speed.
fn utf8_str(bytes: &[u8], position: u64) -> Result<&str, ParseError> {
    simdutf8::basic::from_utf8(bytes).map_err(|_| ParseError::Malformed {
        position,
        reason: "invalid UTF-8".into(),
    })
}

/// A name of the Namespaces in XML recommendation (`NCName`: an XML `Name` without `:`). The
/// tokenizer takes whatever stands between `<` and `>` or `=`; a name it took that XML does not
/// allow (`<0?/>`) would make this tree differ from what any other parser reads, so it is refused.
fn nc_name(name: &[u8], position: u64) -> Result<CompactString, ParseError> {
    let name = utf8_str(name, position)?;
    fn start(c: char) -> bool {
        matches!(c,
            'A'..='Z' | '_' | 'a'..='z' | '\u{C0}'..='\u{D6}' | '\u{D8}'..='\u{F6}'
            | '\u{F8}'..='\u{2FF}' | '\u{370}'..='\u{37D}' | '\u{37F}'..='\u{1FFF}'
            | '\u{200C}'..='\u{200D}' | '\u{2070}'..='\u{218F}' | '\u{2C00}'..='\u{2FEF}'
            | '\u{3001}'..='\u{D7FF}' | '\u{F900}'..='\u{FDCF}' | '\u{FDF0}'..='\u{FFFD}'
            | '\u{10000}'..='\u{EFFFF}')
    }
    fn rest(c: char) -> bool {
        start(c)
            || matches!(c, '-' | '.' | '0'..='9' | '\u{B7}' | '\u{300}'..='\u{36F}' | '\u{203F}'..='\u{2040}')
    }
    let mut chars = name.chars();
    if chars.next().is_some_and(start) && chars.all(rest) {
        Ok(name.into())
    } else {
        Err(ParseError::Malformed {
            position,
            reason: format!("`{name}` is not an XML name"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_document_type_declarations() {
        let xml = br#"<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "boom">]><a>&x;</a>"#;
        assert!(matches!(read(xml), Err(ParseError::DocTypeRefused)));
    }

    #[test]
    fn refuses_names_xml_does_not_allow() {
        // Found by the c14n fuzz target: the tokenizer took `0?/` for an element name.
        for xml in [
            &b"<0?//>"[..],
            b"<a><0b/></a>",
            b"<a -x=\"1\"/>",
            b"<a xmlns:1p=\"urn:x\"/>",
            b"<a><b?c></b?c></a>",
        ] {
            let err = read(xml).expect_err(&String::from_utf8_lossy(xml));
            assert!(
                err.to_string().contains("is not an XML name"),
                "{}: {err}",
                String::from_utf8_lossy(xml)
            );
        }
        for xml in [
            "<Văn_bản/>",
            "<a b.c-d=\"1\" _e=\"2\"/>",
            "<p:a xmlns:p=\"urn:x\" p:x·y=\"1\"/>",
        ] {
            read(xml.as_bytes()).unwrap_or_else(|e| panic!("{xml}: {e}"));
        }
    }

    #[test]
    fn refuses_undefined_entities() {
        assert!(matches!(
            read(b"<a>&x;</a>"),
            Err(ParseError::Malformed { .. })
        ));
    }

    #[test]
    fn resolves_prefixed_and_default_namespaces_alike() {
        let a = read(br#"<p:a xmlns:p="urn:x"><p:b>1</p:b></p:a>"#).expect("parses");
        let b = read(br#"<a xmlns="urn:x"><b>1</b></a>"#).expect("parses");
        assert_eq!(a.namespace.as_deref(), Some("urn:x"));
        let (ab, bb) = (a.child("b").expect("b"), b.child("b").expect("b"));
        assert_eq!(
            (&ab.namespace, &ab.name, ab.text()),
            (&bb.namespace, &bb.name, bb.text())
        );
        assert_eq!(
            (ab.prefix.as_deref(), bb.prefix.as_deref()),
            (Some("p"), None)
        );
        assert_eq!(ab.qualified_name(), "p:b");
    }

    #[test]
    fn normalizes_line_ends_and_attribute_white_space_before_expanding_references() {
        let doc = read_document(
            b"<?pi  data?><!--c1--><a x=\"1\t2\r\n3&#xA;4\">l1\r\nl2\rl3&#xD;<![CDATA[<&>]]></a><!--c2-->",
        )
        .expect("parses");
        assert_eq!(doc.root.attribute("x"), Some("1 2 3\n4"));
        assert_eq!(
            doc.root.children,
            vec![Node::Text("l1\nl2\nl3\r<&>".into())]
        );
        assert_eq!(
            doc.before,
            vec![
                Node::ProcessingInstruction {
                    target: "pi".into(),
                    data: "data".into()
                },
                Node::Comment("c1".into())
            ]
        );
        assert_eq!(doc.after, vec![Node::Comment("c2".into())]);
    }

    #[test]
    fn each_thing_that_changes_an_attribute_value_is_seen_alone() {
        // A value with none of them is copied as it is; each alone still changes it.
        for (raw, value) in [
            ("plain value #1", "plain value #1"),
            ("a\tb", "a b"),
            ("a\nb", "a b"),
            ("a\rb", "a b"),
            ("a\r\nb", "a b"),
            ("a&amp;b", "a&b"),
            ("a&#9;b", "a\tb"),
        ] {
            let xml = format!("<a x=\"{raw}\"/>");
            let e = read(xml.as_bytes()).expect("parses");
            assert_eq!(e.attribute("x"), Some(value), "{raw:?}");
        }
    }

    #[test]
    fn keeps_namespace_declarations_apart_from_attributes() {
        let e = read(br#"<a xmlns="urn:d" xmlns:p="urn:p" p:x="1" y="2"/>"#).expect("parses");
        assert_eq!(
            e.namespace_declarations,
            vec![(None, "urn:d".into()), (Some("p".into()), "urn:p".into())]
        );
        assert_eq!(e.attributes.len(), 2);
        assert_eq!(e.attributes[0].namespace.as_deref(), Some("urn:p"));
        assert_eq!(
            e.attributes[1].namespace, None,
            "unprefixed attributes have no namespace"
        );
    }

    #[test]
    fn bounds_nesting_depth() {
        let deep = "<a>".repeat(100) + &"</a>".repeat(100);
        assert!(matches!(
            read(deep.as_bytes()),
            Err(ParseError::TooDeep { .. })
        ));
    }

    #[test]
    fn refuses_mismatched_end_tags_and_trailing_roots() {
        assert!(read(b"<a><b></a></b>").is_err());
        assert!(read(b"<a/><b/>").is_err());
        assert!(matches!(read(b"   "), Err(ParseError::Empty)));
    }
}

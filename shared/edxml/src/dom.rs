//! A small, safe element tree read with quick-xml.
//!
//! The typed model is mapped from this tree rather than from events so that validation can name
//! the exact path of every broken rule. Reading is safe by construction: a document type
//! declaration (and so any entity definition) is refused, only the five predefined entities and
//! character references are expanded, nesting depth is bounded, and names are resolved against
//! their namespaces so `edXML:From` and `From` under a default namespace are the same element.

use quick_xml::NsReader;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;

use crate::error::ParseError;

/// Deepest element nesting accepted; real packages are under 10 levels.
const MAX_DEPTH: usize = 64;

/// One element: namespace URI, local name, attributes, and children in document order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    pub namespace: Option<String>,
    pub name: String,
    pub attributes: Vec<(String, String)>,
    pub children: Vec<Node>,
}

/// A child of an element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Element(Element),
    Text(String),
}

impl Element {
    /// Child elements, in order.
    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
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

    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads a whole document into its root element.
pub fn read(bytes: &[u8]) -> Result<Element, ParseError> {
    let mut reader = NsReader::from_reader(bytes);
    reader.config_mut().trim_text(false);
    reader.config_mut().check_end_names = true;
    reader.config_mut().expand_empty_elements = true;

    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut buf = Vec::new();
    loop {
        let position = reader.buffer_position();
        let event =
            reader
                .read_resolved_event_into(&mut buf)
                .map_err(|e| ParseError::Malformed {
                    position,
                    reason: e.to_string(),
                })?;
        match event {
            (ns, Event::Start(start)) => {
                if root.is_some() {
                    return Err(ParseError::Malformed {
                        position,
                        reason: "content after the root element".into(),
                    });
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(ParseError::TooDeep { limit: MAX_DEPTH });
                }
                let namespace = match ns {
                    ResolveResult::Bound(ns) => {
                        Some(String::from_utf8_lossy(ns.as_ref()).into_owned())
                    }
                    ResolveResult::Unbound => None,
                    ResolveResult::Unknown(prefix) => {
                        return Err(ParseError::Malformed {
                            position,
                            reason: format!(
                                "undeclared namespace prefix `{}`",
                                String::from_utf8_lossy(&prefix)
                            ),
                        });
                    }
                };
                let name = utf8(start.local_name().as_ref(), position)?;
                let mut attributes = Vec::new();
                for attr in start.attributes() {
                    let attr = attr.map_err(|e| ParseError::Malformed {
                        position,
                        reason: e.to_string(),
                    })?;
                    let key = utf8(attr.key.as_ref(), position)?;
                    let value = attr
                        .decode_and_unescape_value(reader.decoder())
                        .map_err(|e| ParseError::Malformed {
                            position,
                            reason: e.to_string(),
                        })?
                        .into_owned();
                    attributes.push((key, value));
                }
                stack.push(Element {
                    namespace,
                    name,
                    attributes,
                    children: Vec::new(),
                });
            }
            (_, Event::End(_)) => {
                let done = stack.pop().ok_or_else(|| ParseError::Malformed {
                    position,
                    reason: "unexpected end tag".into(),
                })?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(Node::Element(done)),
                    None => root = Some(done),
                }
            }
            (_, Event::Text(text)) => {
                let text = text.unescape().map_err(|e| ParseError::Malformed {
                    position,
                    reason: e.to_string(),
                })?;
                push_text(&mut stack, &text, position)?;
            }
            (_, Event::CData(cdata)) => {
                let text = utf8(&cdata, position)?;
                push_text(&mut stack, &text, position)?;
            }
            (_, Event::DocType(_)) => return Err(ParseError::DocTypeRefused),
            (_, Event::Empty(_)) => {
                // expand_empty_elements turns these into Start/End pairs.
                return Err(ParseError::Malformed {
                    position,
                    reason: "unexpected empty element event".into(),
                });
            }
            (_, Event::Decl(_) | Event::Comment(_) | Event::PI(_)) => {}
            (_, Event::Eof) => break,
        }
        buf.clear();
    }
    if !stack.is_empty() {
        return Err(ParseError::Malformed {
            position: reader.buffer_position(),
            reason: format!("unclosed element `{}`", stack[stack.len() - 1].name),
        });
    }
    root.ok_or(ParseError::Empty)
}

fn push_text(stack: &mut [Element], text: &str, position: u64) -> Result<(), ParseError> {
    match stack.last_mut() {
        Some(parent) => {
            parent.children.push(Node::Text(text.to_owned()));
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
    std::str::from_utf8(bytes)
        .map(str::to_owned)
        .map_err(|_| ParseError::Malformed {
            position,
            reason: "invalid UTF-8".into(),
        })
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
        assert_eq!(a.child("b"), b.child("b"));
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

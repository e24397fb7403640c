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

use std::collections::BTreeMap;

use lienthong_edxml::dom::{Attribute, Document, Element, Node};

/// The `xml` prefix's namespace: never declared in output.
const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

/// A canonicalization algorithm, as named by its URI in a signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Algorithm {
    /// `http://www.w3.org/TR/2001/REC-xml-c14n-20010315` (`#WithComments`).
    Inclusive { comments: bool },
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

    fn comments(&self) -> bool {
        match self {
            Self::Inclusive { comments } | Self::Exclusive { comments, .. } => *comments,
        }
    }
}

/// Namespace bindings by prefix (`None`: the default namespace; an empty URI: undeclared).
type Bindings = BTreeMap<Option<String>, String>;

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
    let whole = std::ptr::eq(apex, &document.root);
    let c = Canonicalizer {
        algorithm,
        exclude,
        comments: algorithm.comments(),
    };
    if whole {
        for node in &document.before {
            if c.node_outside(node, &mut out) {
                out.push('\n');
            }
        }
        c.element(apex, &Bindings::new(), &Bindings::new(), &[], &mut out);
        for node in &document.after {
            let mut text = String::new();
            if c.node_outside(node, &mut text) {
                out.push('\n');
                out.push_str(&text);
            }
        }
    } else {
        let ancestors = ancestors_of(&document.root, apex).unwrap_or_default();
        let mut in_scope = Bindings::new();
        let mut xml_attributes: Vec<&Attribute> = Vec::new();
        for a in &ancestors {
            declare(&mut in_scope, a);
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
        c.element(apex, &in_scope, &Bindings::new(), &inherited, &mut out);
    }
    out.into_bytes()
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

fn declare(bindings: &mut Bindings, e: &Element) {
    for (prefix, uri) in &e.namespace_declarations {
        bindings.insert(prefix.clone(), uri.clone());
    }
}

struct Canonicalizer<'a> {
    algorithm: &'a Algorithm,
    exclude: Option<&'a Element>,
    comments: bool,
}

impl Canonicalizer<'_> {
    /// A comment or PI outside the root; returns whether anything was written.
    fn node_outside(&self, node: &Node, out: &mut String) -> bool {
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

    /// `parent_scope`: namespaces in scope at the parent; `rendered`: what the nearest output
    /// ancestor rendered (or, inclusively, had in scope).
    fn element(
        &self,
        e: &Element,
        parent_scope: &Bindings,
        rendered: &Bindings,
        inherited_xml: &[&Attribute],
        out: &mut String,
    ) {
        if self.exclude.is_some_and(|x| std::ptr::eq(x, e)) {
            return;
        }
        let mut scope = parent_scope.clone();
        declare(&mut scope, e);

        let candidates: Vec<Option<String>> = match self.algorithm {
            Algorithm::Inclusive { .. } => scope.keys().cloned().collect(),
            Algorithm::Exclusive {
                inclusive_prefixes, ..
            } => {
                let mut used: Vec<Option<String>> = vec![e.prefix.clone()];
                used.extend(
                    e.attributes
                        .iter()
                        .filter_map(|a| a.prefix.clone().map(Some)),
                );
                for p in inclusive_prefixes {
                    let p = (p != "#default").then(|| p.clone());
                    if scope.contains_key(&p) {
                        used.push(p);
                    }
                }
                used.sort();
                used.dedup();
                used
            }
        };
        let mut now_rendered = rendered.clone();
        let mut declarations: Vec<(Option<String>, String)> = Vec::new();
        for prefix in candidates {
            if prefix.as_deref() == Some("xml") {
                continue;
            }
            let uri = scope.get(&prefix).cloned().unwrap_or_default();
            if uri == XML_NS {
                continue;
            }
            let before = rendered
                .get(&prefix)
                .map(String::as_str)
                .unwrap_or_default();
            // An empty default namespace is only rendered to undo a non-empty one above.
            if uri == before || (prefix.is_none() && uri.is_empty() && before.is_empty()) {
                continue;
            }
            if prefix.is_some() && uri.is_empty() {
                continue;
            }
            now_rendered.insert(prefix.clone(), uri.clone());
            declarations.push((prefix, uri));
        }
        if matches!(self.algorithm, Algorithm::Inclusive { .. }) {
            // Inclusively, an output element stands for everything in its scope.
            now_rendered = scope.clone();
        }

        let name = e.qualified_name();
        out.push('<');
        out.push_str(&name);
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
            out.push_str(&a.qualified_name());
            out.push_str("=\"");
            escape_attribute(&a.value, out);
            out.push('"');
        }
        out.push('>');
        for child in &e.children {
            match child {
                Node::Element(c) => self.element(c, &scope, &now_rendered, &[], out),
                Node::Text(t) => escape_text(t, out),
                Node::Comment(c) if self.comments => comment(c, out),
                Node::Comment(_) => {}
                Node::ProcessingInstruction { target, data } => pi(target, data, out),
            }
        }
        out.push_str("</");
        out.push_str(&name);
        out.push('>');
    }
}

fn comment(text: &str, out: &mut String) {
    out.push_str("<!--");
    out.push_str(text);
    out.push_str("-->");
}

fn pi(target: &str, data: &str, out: &mut String) {
    out.push_str("<?");
    out.push_str(target);
    if !data.is_empty() {
        out.push(' ');
        out.push_str(data);
    }
    out.push_str("?>");
}

fn escape_text(text: &str, out: &mut String) {
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#xD;"),
            c => out.push(c),
        }
    }
}

fn escape_attribute(value: &str, out: &mut String) {
    for ch in value.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '"' => out.push_str("&quot;"),
            '\t' => out.push_str("&#x9;"),
            '\n' => out.push_str("&#xA;"),
            '\r' => out.push_str("&#xD;"),
            c => out.push(c),
        }
    }
}

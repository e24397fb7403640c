//! The examples of the W3C recommendations, run through our canonicalizer. Canonical XML 1.0
//! section 3 and Exclusive XML Canonicalization section 2.2. Examples that rely on a DTD (which
//! the bus refuses) are given without it, and their expected output drops what the DTD added
//! (default attributes, ID and NMTOKENS normalization); each such change is noted.

use lienthong_edxml::dom::{Document, Element, read_document};
use lienthong_xmldsig::{Algorithm, canonicalize};

const INCLUSIVE: Algorithm = Algorithm::Inclusive { comments: false };
const INCLUSIVE_WITH_COMMENTS: Algorithm = Algorithm::Inclusive { comments: true };

fn doc(xml: &str) -> Document {
    read_document(xml.as_bytes()).expect("well-formed")
}

fn whole(xml: &str, alg: &Algorithm) -> String {
    let d = doc(xml);
    String::from_utf8(canonicalize(&d, &d.root, None, alg)).expect("utf8")
}

fn find<'a>(e: &'a Element, name: &str) -> Option<&'a Element> {
    if e.name == name {
        return Some(e);
    }
    e.elements().find_map(|c| find(c, name))
}

#[test]
fn section_3_1_pis_comments_and_outside_of_document_element() {
    // The original also has `<!DOCTYPE doc SYSTEM "doc.dtd">`, which C14N drops anyway.
    let input = "<?xml version=\"1.0\"?>\n\n<?xml-stylesheet   href=\"doc.xsl\"\n   type=\"text/xsl\"   ?>\n\n<doc>Hello, world!<!-- Comment 1 --></doc>\n\n<?pi-without-data     ?>\n\n<!-- Comment 2 -->\n\n<!-- Comment 3 -->\n";
    assert_eq!(
        whole(input, &INCLUSIVE),
        "<?xml-stylesheet href=\"doc.xsl\"\n   type=\"text/xsl\"   ?>\n<doc>Hello, world!</doc>\n<?pi-without-data?>"
    );
    assert_eq!(
        whole(input, &INCLUSIVE_WITH_COMMENTS),
        "<?xml-stylesheet href=\"doc.xsl\"\n   type=\"text/xsl\"   ?>\n<doc>Hello, world!<!-- Comment 1 --></doc>\n<?pi-without-data?>\n<!-- Comment 2 -->\n<!-- Comment 3 -->"
    );
}

#[test]
fn section_3_2_whitespace_in_document_content() {
    let input = "<doc>\n   <clean>   </clean>\n   <dirty>   A   B   </dirty>\n   <mixed>\n      A\n      <clean>   </clean>\n      B\n      <dirty>   A   B   </dirty>\n      C\n   </mixed>\n</doc>";
    assert_eq!(whole(input, &INCLUSIVE), input);
}

#[test]
fn section_3_3_start_and_end_tags() {
    // Without the DTD, e9 gets no defaulted attr="default".
    let input = r#"<doc>
   <e1   />
   <e2   ></e2>
   <e3   name = "elem3"   id="elem3"   />
   <e4   name="elem4"   id="elem4"   ></e4>
   <e5 a:attr="out" b:attr="sorted" attr2="all" attr="I'm"
      xmlns:b="http://www.ietf.org"
      xmlns:a="http://www.w3.org"
      xmlns="http://example.org"/>
   <e6 xmlns="" xmlns:a="http://www.w3.org">
      <e7 xmlns="http://www.ietf.org">
         <e8 xmlns="" xmlns:a="http://www.w3.org">
            <e9 xmlns="" xmlns:a="http://www.ietf.org"/>
         </e8>
      </e7>
   </e6>
</doc>"#;
    let expected = r#"<doc>
   <e1></e1>
   <e2></e2>
   <e3 id="elem3" name="elem3"></e3>
   <e4 id="elem4" name="elem4"></e4>
   <e5 xmlns="http://example.org" xmlns:a="http://www.w3.org" xmlns:b="http://www.ietf.org" attr="I'm" attr2="all" b:attr="sorted" a:attr="out"></e5>
   <e6 xmlns:a="http://www.w3.org">
      <e7 xmlns="http://www.ietf.org">
         <e8 xmlns="">
            <e9 xmlns:a="http://www.ietf.org"></e9>
         </e8>
      </e7>
   </e6>
</doc>"#;
    assert_eq!(whole(input, &INCLUSIVE), expected);
}

#[test]
fn section_3_4_character_modifications_and_character_references() {
    // Without the DTD, normNames and normId are CDATA attributes: not collapsed further.
    let input = "<doc>\n   <text>First line&#x0d;&#10;Second line</text>\n   <value>&#x32;</value>\n   <compute><![CDATA[value>\"0\" && value<\"10\" ?\"valid\":\"error\"]]></compute>\n   <compute expr='value>\"0\" &amp;&amp; value&lt;\"10\" ?\"valid\":\"error\"'>valid</compute>\n   <norm attr=' &apos;   &#x20;&#13;&#xa;&#9;   &apos; '/>\n   <normNames attr='   A   &#x20;&#13;&#xa;&#9;   B   '/>\n   <normId id=' &apos;   &#x20;&#13;&#xa;&#9;   &apos; '/>\n</doc>";
    let expected = "<doc>\n   <text>First line&#xD;\nSecond line</text>\n   <value>2</value>\n   <compute>value&gt;\"0\" &amp;&amp; value&lt;\"10\" ?\"valid\":\"error\"</compute>\n   <compute expr=\"value>&quot;0&quot; &amp;&amp; value&lt;&quot;10&quot; ?&quot;valid&quot;:&quot;error&quot;\">valid</compute>\n   <norm attr=\" '    &#xD;&#xA;&#x9;   ' \"></norm>\n   <normNames attr=\"   A    &#xD;&#xA;&#x9;   B   \"></normNames>\n   <normId id=\" '    &#xD;&#xA;&#x9;   ' \"></normId>\n</doc>";
    assert_eq!(whole(input, &INCLUSIVE), expected);
}

#[test]
fn section_3_6_utf8_and_character_references() {
    assert_eq!(whole("<doc>&#169;</doc>", &INCLUSIVE), "<doc>\u{a9}</doc>");
}

const EXC_2_2: &str = r#"<n0:local xmlns:n0="foo:bar" xmlns:n3="ftp://example.org"><n1:elem2 xmlns:n1="http://example.net" xml:lang="en"><n3:stuff xmlns:n3="ftp://example.org"/></n1:elem2></n0:local>"#;

#[test]
fn exclusive_section_2_2_renders_only_visibly_used_namespaces() {
    let d = doc(EXC_2_2);
    let apex = find(&d.root, "elem2").expect("elem2");
    let inclusive = String::from_utf8(canonicalize(&d, apex, None, &INCLUSIVE)).expect("utf8");
    assert_eq!(
        inclusive,
        r#"<n1:elem2 xmlns:n0="foo:bar" xmlns:n1="http://example.net" xmlns:n3="ftp://example.org" xml:lang="en"><n3:stuff></n3:stuff></n1:elem2>"#
    );
    let exclusive = Algorithm::Exclusive {
        comments: false,
        inclusive_prefixes: vec![],
    };
    let exclusive = String::from_utf8(canonicalize(&d, apex, None, &exclusive)).expect("utf8");
    assert_eq!(
        exclusive,
        r#"<n1:elem2 xmlns:n1="http://example.net" xml:lang="en"><n3:stuff xmlns:n3="ftp://example.org"></n3:stuff></n1:elem2>"#
    );
    // InclusiveNamespaces PrefixList="n0" brings the unused n0 back.
    let listed = Algorithm::Exclusive {
        comments: false,
        inclusive_prefixes: vec!["n0".into()],
    };
    let listed = String::from_utf8(canonicalize(&d, apex, None, &listed)).expect("utf8");
    assert!(
        listed.starts_with(
            r#"<n1:elem2 xmlns:n0="foo:bar" xmlns:n1="http://example.net" xml:lang="en">"#
        ),
        "{listed}"
    );
}

#[test]
fn inclusive_subset_inherits_xml_attributes_and_ancestor_default_namespace() {
    let d = doc(
        r#"<a xmlns="urn:a" xml:lang="vi" xml:space="preserve"><b xml:lang="en"><c>t</c></b></a>"#,
    );
    let c = find(&d.root, "c").expect("c");
    let out = String::from_utf8(canonicalize(&d, c, None, &INCLUSIVE)).expect("utf8");
    assert_eq!(
        out,
        r#"<c xmlns="urn:a" xml:lang="en" xml:space="preserve">t</c>"#
    );
    let exc = Algorithm::Exclusive {
        comments: false,
        inclusive_prefixes: vec![],
    };
    let out = String::from_utf8(canonicalize(&d, c, None, &exc)).expect("utf8");
    assert_eq!(out, r#"<c xmlns="urn:a">t</c>"#);
}

#[test]
fn an_excluded_subtree_leaves_no_trace() {
    let d = doc(r#"<a><b>keep</b><Signature xmlns="urn:sig"><x/></Signature><c/></a>"#);
    let sig = find(&d.root, "Signature").expect("sig");
    let out = String::from_utf8(canonicalize(&d, &d.root, Some(sig), &INCLUSIVE)).expect("utf8");
    assert_eq!(out, "<a><b>keep</b><c></c></a>");
}

#[test]
fn text_read_as_plain_is_written_as_it_is_and_everything_else_is_escaped() {
    // The reader marks text with no reference, CR or `>` as plain; the canonicalizer then skips
    // its search. Every other shape must still come out escaped.
    let cases = [
        (
            "<a>plain base64 AAAA+/==</a>",
            "<a>plain base64 AAAA+/==</a>",
            true,
        ),
        ("<a>a>b</a>", "<a>a&gt;b</a>", false),
        ("<a>x &amp; y &lt; z</a>", "<a>x &amp; y &lt; z</a>", false),
        ("<a>l1&#xD;l2</a>", "<a>l1&#xD;l2</a>", false),
        (
            "<a>abc<![CDATA[<&]]>def</a>",
            "<a>abc&lt;&amp;def</a>",
            false,
        ),
    ];
    for (xml, canonical, plain) in cases {
        let d = doc(xml);
        let lienthong_edxml::dom::Node::Text(t) = &d.root.children[0] else {
            panic!("{xml}: one text child")
        };
        assert_eq!(t.is_plain(), plain, "{xml}");
        assert_eq!(whole(xml, &INCLUSIVE), canonical, "{xml}");
    }
}

#[test]
fn canonical_xml_1_1_does_not_let_a_subset_inherit_xml_id() {
    // C14N 1.1 section 2.4: xml:lang and xml:space are inherited by the apex of a subset as in
    // 1.0, xml:id is not.
    let xml = r#"<a xmlns="urn:x" xml:lang="vi" xml:id="doc"><b>t</b></a>"#;
    let d = doc(xml);
    let b = find(&d.root, "b").expect("b");
    let v10 = canonicalize(&d, b, None, &INCLUSIVE);
    let v11 = canonicalize(&d, b, None, &Algorithm::Inclusive11 { comments: false });
    assert_eq!(
        String::from_utf8(v10).expect("utf8"),
        r#"<b xmlns="urn:x" xml:id="doc" xml:lang="vi">t</b>"#
    );
    assert_eq!(
        String::from_utf8(v11).expect("utf8"),
        r#"<b xmlns="urn:x" xml:lang="vi">t</b>"#
    );
    // Whole documents come out the same under both.
    assert_eq!(
        canonicalize(&d, &d.root, None, &INCLUSIVE),
        canonicalize(
            &d,
            &d.root,
            None,
            &Algorithm::Inclusive11 { comments: false }
        )
    );
}

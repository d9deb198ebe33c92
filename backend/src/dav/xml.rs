//! WebDAV request bodies read into a small tree, and the `multistatus` answers written.
//!
//! Read with quick-xml, which never expands an entity by itself: a document type declaration
//! (the door to external and recursive entities) is refused outright, and so is any entity
//! but XML's five and character references. Depth and element count are bounded, so that a
//! hostile body costs a bounded amount of memory and time; its size is bounded before it is
//! read (the route's body limit).

use std::fmt::Write as _;

use quick_xml::escape::{escape, unescape};
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;

/// The DAV namespace.
pub const DAV: &str = "DAV:";
/// The CalDAV namespace (RFC 4791).
pub const CALDAV: &str = "urn:ietf:params:xml:ns:caldav";
/// Apple's calendar server extensions (`getctag`).
pub const CS: &str = "http://calendarserver.org/ns/";
/// Apple's iCal extensions (`calendar-color`).
pub const APPLE: &str = "http://apple.com/ns/ical/";

/// How deeply elements may nest in a request; real ones stay under ten.
pub const MAX_DEPTH: usize = 32;
/// How many elements a request may hold (a multiget of many hrefs stays well below).
pub const MAX_ELEMENTS: usize = 20_000;

/// Why a request body could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum XmlError {
    #[error("the body is not UTF-8")]
    NotUtf8,
    #[error("a document type declaration is not accepted")]
    DocType,
    #[error("the XML nests deeper than {MAX_DEPTH} elements")]
    TooDeep,
    #[error("the XML has more than {MAX_ELEMENTS} elements")]
    TooMany,
    #[error("an element's namespace prefix is not declared")]
    UnknownPrefix,
    #[error("the body holds no XML element")]
    Empty,
    #[error("malformed XML: {0}")]
    Malformed(String),
}

/// An element: its namespace, local name, attributes (local name, value) and content.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Element {
    pub namespace: String,
    pub name: String,
    pub attributes: Vec<(String, String)>,
    pub children: Vec<Element>,
    pub text: String,
}

impl Element {
    /// Whether this is `name` in `namespace`.
    pub fn is(&self, namespace: &str, name: &str) -> bool {
        self.namespace == namespace && self.name == name
    }

    /// The first child that is `name` in `namespace`.
    pub fn child(&self, namespace: &str, name: &str) -> Option<&Element> {
        self.children.iter().find(|child| child.is(namespace, name))
    }

    /// Every child that is `name` in `namespace`.
    pub fn children_named<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> impl Iterator<Item = &'a Element> + 'a {
        self.children
            .iter()
            .filter(move |child| child.is(namespace, name))
    }

    /// The value of the attribute with this local name.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// Reads `body` into its root element.
pub fn parse(body: &[u8]) -> Result<Element, XmlError> {
    let text = std::str::from_utf8(body).map_err(|_| XmlError::NotUtf8)?;
    let mut reader = NsReader::from_str(text);
    let malformed = |error: &dyn std::fmt::Display| XmlError::Malformed(error.to_string());
    let mut stack: Vec<Element> = Vec::new();
    // Text of the element being read, raw (escaped) until it ends.
    let mut raw_text: Vec<String> = Vec::new();
    let mut count = 0usize;
    loop {
        let (namespace, event) = reader
            .read_resolved_event()
            .map_err(|error| malformed(&error))?;
        let namespace = match namespace {
            ResolveResult::Bound(namespace) => namespace.into_inner().to_owned(),
            ResolveResult::Unbound => String::new(),
            ResolveResult::Unknown(_) => return Err(XmlError::UnknownPrefix),
        };
        match event {
            Event::DocType(_) => return Err(XmlError::DocType),
            Event::Start(start) | Event::Empty(start) if stack.len() >= MAX_DEPTH => {
                let _ = start;
                return Err(XmlError::TooDeep);
            }
            Event::Start(ref start) | Event::Empty(ref start) => {
                count += 1;
                if count > MAX_ELEMENTS {
                    return Err(XmlError::TooMany);
                }
                let mut element = Element {
                    namespace,
                    name: start.local_name().into_inner().to_owned(),
                    ..Element::default()
                };
                for attribute in start.attributes() {
                    let attribute = attribute.map_err(|error| malformed(&error))?;
                    let value = attribute
                        .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                        .map_err(|error| malformed(&error))?;
                    let key = attribute.key.local_name().into_inner().to_owned();
                    element.attributes.push((key, value.into_owned()));
                }
                if matches!(event, Event::Empty(_)) {
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(element),
                        // An empty root (`<propfind/>`) is the whole document.
                        None => return Ok(element),
                    }
                } else {
                    stack.push(element);
                    raw_text.push(String::new());
                }
            }
            Event::End(_) => {
                let mut element = stack
                    .pop()
                    .ok_or_else(|| malformed(&"unbalanced end tag"))?;
                let raw = raw_text.pop().unwrap_or_default();
                element.text = unescape(&raw)
                    .map_err(|error| malformed(&error))?
                    .trim()
                    .to_owned();
                match stack.last_mut() {
                    Some(parent) => parent.children.push(element),
                    None => return Ok(element),
                }
            }
            Event::Text(text) => {
                if let Some(raw) = raw_text.last_mut() {
                    raw.push_str(&text.into_inner());
                }
            }
            Event::GeneralRef(reference) => {
                if let Some(raw) = raw_text.last_mut() {
                    raw.push('&');
                    raw.push_str(&reference.into_inner());
                    raw.push(';');
                }
            }
            Event::CData(data) => {
                if let Some(raw) = raw_text.last_mut() {
                    raw.push_str(&escape(&*data.into_inner()));
                }
            }
            Event::Eof => {
                return Err(match stack.is_empty() {
                    true => XmlError::Empty,
                    false => malformed(&"the document ends inside an element"),
                });
            }
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
        }
    }
}

/// A `multistatus` body being written.
pub struct Multistatus {
    body: String,
}

/// The prefix a namespace is written with in our answers.
pub fn prefix(namespace: &str) -> Option<&'static str> {
    match namespace {
        DAV => Some("d"),
        CALDAV => Some("c"),
        CS => Some("cs"),
        APPLE => Some("a"),
        _ => None,
    }
}

/// `<name/>` in `namespace` as an element of the answer (a namespace of its own declared
/// in place when it is none of ours).
pub fn empty_element(namespace: &str, name: &str) -> String {
    match prefix(namespace) {
        Some(prefix) => format!("<{prefix}:{name}/>"),
        None => format!("<x:{name} xmlns:x=\"{}\"/>", escape(namespace)),
    }
}

/// `<name>inner</name>` in `namespace`, `inner` already XML.
pub fn element(namespace: &str, name: &str, inner: &str) -> String {
    match prefix(namespace) {
        Some(prefix) => format!("<{prefix}:{name}>{inner}</{prefix}:{name}>"),
        None => format!(
            "<x:{name} xmlns:x=\"{}\">{inner}</x:{name}>",
            escape(namespace)
        ),
    }
}

/// Text escaped for XML content.
pub fn text(value: &str) -> String {
    escape(value).into_owned()
}

impl Default for Multistatus {
    fn default() -> Self {
        Multistatus {
            body: format!(
                "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<d:multistatus xmlns:d=\"{DAV}\" \
                 xmlns:c=\"{CALDAV}\" xmlns:cs=\"{CS}\" xmlns:a=\"{APPLE}\">"
            ),
        }
    }
}

impl Multistatus {
    /// One resource's properties: those found (already XML) and those not (`namespace`,
    /// `name`), in two `propstat`s.
    pub fn response(&mut self, href: &str, found: &[String], missing: &[(String, String)]) {
        let _ = write!(self.body, "<d:response><d:href>{}</d:href>", text(href));
        if !found.is_empty() || missing.is_empty() {
            self.body.push_str("<d:propstat><d:prop>");
            for property in found {
                self.body.push_str(property);
            }
            self.body
                .push_str("</d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat>");
        }
        if !missing.is_empty() {
            self.body.push_str("<d:propstat><d:prop>");
            for (namespace, name) in missing {
                self.body.push_str(&empty_element(namespace, name));
            }
            self.body
                .push_str("</d:prop><d:status>HTTP/1.1 404 Not Found</d:status></d:propstat>");
        }
        self.body.push_str("</d:response>");
    }

    /// A resource with a status and no properties (a member that is gone, a missing href).
    pub fn status(&mut self, href: &str, status: &str) {
        let _ = write!(
            self.body,
            "<d:response><d:href>{}</d:href><d:status>HTTP/1.1 {status}</d:status></d:response>",
            text(href)
        );
    }

    /// The sync token of a sync report, and the end of the body.
    pub fn finish(mut self, sync_token: Option<&str>) -> String {
        if let Some(token) = sync_token {
            let _ = write!(self.body, "<d:sync-token>{}</d:sync-token>", text(token));
        }
        self.body.push_str("</d:multistatus>\n");
        self.body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_propfind_is_read_with_its_namespaces() {
        let body = br#"<?xml version="1.0"?>
            <D:propfind xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">
              <D:prop><D:getetag/><C:calendar-data/><X:odd xmlns:X="urn:x"/></D:prop>
            </D:propfind>"#;
        let root = parse(body).expect("a document");
        assert!(root.is(DAV, "propfind"));
        let prop = root.child(DAV, "prop").expect("prop");
        let names: Vec<(&str, &str)> = prop
            .children
            .iter()
            .map(|p| (p.namespace.as_str(), p.name.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                (DAV, "getetag"),
                (CALDAV, "calendar-data"),
                ("urn:x", "odd")
            ]
        );
    }

    #[test]
    fn text_and_attributes_are_unescaped() {
        let body = br#"<a xmlns="DAV:" k="x &amp; y"><b>1 &lt; 2 &#233;<![CDATA[<c>]]></b></a>"#;
        let root = parse(body).expect("a document");
        assert_eq!(root.attribute("k"), Some("x & y"));
        assert_eq!(root.children[0].text, "1 < 2 é<c>");
    }

    #[test]
    fn an_empty_root_is_a_whole_document() {
        let root = parse(br#"<D:propfind xmlns:D="DAV:"/>"#).expect("a document");
        assert!(root.is(DAV, "propfind"));
    }

    #[test]
    fn hostile_bodies_are_refused() {
        let entity = br#"<?xml version="1.0"?><!DOCTYPE a [<!ENTITY e SYSTEM "file:///etc/passwd">]><a xmlns="DAV:">&e;</a>"#;
        assert_eq!(parse(entity), Err(XmlError::DocType));
        let deep = format!("{}{}", "<a>".repeat(10_000), "</a>".repeat(10_000));
        assert_eq!(parse(deep.as_bytes()), Err(XmlError::TooDeep));
        let wide = format!("<a>{}</a>", "<b/>".repeat(MAX_ELEMENTS + 1));
        assert_eq!(parse(wide.as_bytes()), Err(XmlError::TooMany));
        let unknown = br#"<a xmlns="DAV:">&nope;</a>"#;
        assert!(matches!(parse(unknown), Err(XmlError::Malformed(_))));
        assert_eq!(parse(b"\xff\xfe"), Err(XmlError::NotUtf8));
        assert_eq!(parse(b""), Err(XmlError::Empty));
        assert!(parse(b"<a><b></a>").is_err());
        assert_eq!(parse(br#"<p:a/>"#), Err(XmlError::UnknownPrefix));
    }

    #[test]
    fn answers_escape_what_they_carry() {
        let mut answer = Multistatus::default();
        answer.response(
            "/dav/a&b",
            &[element(DAV, "displayname", &text("<x>"))],
            &[("urn:x".into(), "odd".into())],
        );
        let body = answer.finish(Some("t&1"));
        assert!(body.contains("<d:href>/dav/a&amp;b</d:href>"));
        assert!(body.contains("<d:displayname>&lt;x&gt;</d:displayname>"));
        assert!(body.contains("<x:odd xmlns:x=\"urn:x\"/>"));
        assert!(body.contains("<d:sync-token>t&amp;1</d:sync-token>"));
    }
}

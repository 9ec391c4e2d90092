//! What the reader makes of a fetched body: which content types it understands, how the bytes
//! become text (charset), and the main content of HTML pages (Readability, via `dom_smoothie`)
//! as markdown or plain text. Every output is bounded.

use dom_smoothie::{Config, Readability, ReadabilityError, TextMode};
use encoding_rs::{Encoding, UTF_8};
use url::Url;

use crate::domain::search::{ContentFormat, Image};

/// Most bytes of text returned for one page; the rest is cut off with a note.
pub(super) const MAX_TEXT_BYTES: usize = 512 * 1024;
/// Most images returned for one page.
const MAX_IMAGES: usize = 50;
/// Longest image URL kept (data: URLs can be megabytes).
const MAX_IMAGE_URL_CHARS: usize = 2048;
/// Most elements a page may have; parsing is linear but Readability scores them several times.
const MAX_ELEMENTS: usize = 200_000;
/// Deepest nesting a page may have: the HTML parser walks the open elements for many tags,
/// and Readability's clean-up is quadratic in depth, so a page of a million nested `<div>`s
/// (5 MB) would pin a core for hours. Browsers cap depth in the hundreds too.
const MAX_DEPTH: usize = 1_000;
/// How far into an HTML body a `<meta charset>` is looked for (HTML §13.2.3.2 uses 1024).
const PRESCAN_BYTES: usize = 1024;

/// How a body is read, by its content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// HTML: main content extracted.
    Html,
    /// Plain text or markdown: returned as it is.
    Text,
    /// No content type: decided from the body.
    Unlabelled,
}

/// A `Content-Type` header's kind and charset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ContentType {
    /// How to read the body.
    pub kind: Kind,
    /// The `charset` parameter, when given.
    pub charset: Option<String>,
}

impl ContentType {
    /// Reads a `Content-Type` header value.
    ///
    /// # Errors
    /// "unsupported content type …" for types the reader does not understand.
    pub(super) fn parse(header: Option<&str>) -> Result<Self, String> {
        let Some(header) = header else {
            return Ok(Self {
                kind: Kind::Unlabelled,
                charset: None,
            });
        };
        let mut parts = header.split(';');
        let essence = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let kind = match essence.as_str() {
            "text/html" | "application/xhtml+xml" => Kind::Html,
            "text/plain" | "text/markdown" | "text/x-markdown" => Kind::Text,
            "" => Kind::Unlabelled,
            other => {
                let shown: String = other.chars().take(100).collect();
                return Err(format!("unsupported content type {shown}"));
            }
        };
        let charset = parts.find_map(|param| {
            let (name, value) = param.split_once('=')?;
            name.trim()
                .eq_ignore_ascii_case("charset")
                .then(|| value.trim().trim_matches('"').to_owned())
        });
        Ok(Self { kind, charset })
    }
}

/// What a page's body gave.
#[derive(Debug, Clone, PartialEq, Default)]
pub(super) struct Rendered {
    /// The title, when the page has one.
    pub title: Option<String>,
    /// The main content, markdown or plain text.
    pub text: String,
    /// Images of the main content, when asked for.
    pub images: Vec<Image>,
}

/// Renders `body`, fetched from `url` (after redirects: relative links resolve against it).
///
/// # Errors
/// A short reason when the body is binary or has no readable content.
pub(super) fn render(
    body: &[u8],
    content_type: &ContentType,
    url: &Url,
    format: ContentFormat,
    include_images: bool,
) -> Result<Rendered, String> {
    let kind = match content_type.kind {
        Kind::Unlabelled => sniff(body)?,
        kind => kind,
    };
    let charset = content_type.charset.as_deref();
    if kind == Kind::Text {
        return Ok(Rendered {
            text: bounded(decode(body, charset, false)),
            ..Rendered::default()
        });
    }
    let html = decode(body, charset, true);
    check_shape(&html)?;
    let config = Config {
        text_mode: match format {
            ContentFormat::Markdown => TextMode::Markdown,
            ContentFormat::Text => TextMode::Formatted,
        },
        max_elements_to_parse: MAX_ELEMENTS,
        ..Config::default()
    };
    let article = Readability::new(html, Some(url.as_str()), Some(config))
        .and_then(|mut readability| readability.parse())
        .map_err(|e| match e {
            ReadabilityError::TooManyElements(found, _) => {
                format!("the page has too many elements to read ({found})")
            }
            _ => "the page has no readable content".to_owned(),
        })?;
    let title = article.title.trim();
    Ok(Rendered {
        title: (!title.is_empty()).then(|| title.chars().take(500).collect()),
        text: bounded(article.text_content.trim().to_owned()),
        images: if include_images {
            images(&article.content)
        } else {
            Vec::new()
        },
    })
}

/// The kind of a body that came without a content type: HTML if it says so, text if it has no
/// NUL bytes, refused otherwise.
fn sniff(body: &[u8]) -> Result<Kind, String> {
    let head = &body[..body.len().min(PRESCAN_BYTES)];
    let start = String::from_utf8_lossy(head)
        .trim_start()
        .to_ascii_lowercase();
    if start.starts_with("<!doctype html") || start.starts_with("<html") {
        Ok(Kind::Html)
    } else if head.contains(&0) {
        Err("unsupported content: binary data without a content type".to_owned())
    } else {
        Ok(Kind::Text)
    }
}

/// `body` as text: a byte-order mark wins, then the header's charset, then (HTML) a
/// `<meta charset>` near the start, then UTF-8; malformed bytes become U+FFFD.
fn decode(body: &[u8], charset: Option<&str>, html: bool) -> String {
    let declared = charset
        .and_then(|label| Encoding::for_label(label.as_bytes()))
        .or_else(|| html.then(|| meta_charset(body)).flatten());
    let (text, _, _) = declared.unwrap_or(UTF_8).decode(body);
    text.into_owned()
}

/// The encoding a `charset=` near the start of an HTML body names. HTML §13.2.3.2 prescans the
/// same bytes, and reads UTF-16 labels there as UTF-8 (a page that could declare itself in
/// ASCII is not UTF-16), which is what `output_encoding` gives.
fn meta_charset(body: &[u8]) -> Option<&'static Encoding> {
    let head = body[..body.len().min(PRESCAN_BYTES)].to_ascii_lowercase();
    let at = head.windows(8).position(|w| w == b"charset=")? + 8;
    let label: Vec<u8> = head[at..]
        .iter()
        .skip_while(|b| matches!(b, b'"' | b'\'' | b' '))
        .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b':' | b'.'))
        .copied()
        .collect();
    Some(Encoding::for_label(&label)?.output_encoding())
}

/// `text` cut to [`MAX_TEXT_BYTES`] on a character boundary, with a note when cut.
fn bounded(mut text: String) -> String {
    if text.len() <= MAX_TEXT_BYTES {
        return text;
    }
    let mut end = MAX_TEXT_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push_str("\n\n[page text cut off at 512 KiB]");
    text
}

/// The `<img>` sources of the extracted content (already absolute), http(s) only, without
/// repeats, at most [`MAX_IMAGES`].
fn images(content_html: &str) -> Vec<Image> {
    let document = dom_query::Document::from(content_html);
    let mut found: Vec<Image> = Vec::new();
    for img in document.select("img[src]").iter() {
        let Some(src) = img.attr("src") else { continue };
        let src = src.trim();
        let usable = src.len() <= MAX_IMAGE_URL_CHARS
            && (src.starts_with("https://") || src.starts_with("http://"));
        if !usable || found.iter().any(|image| image.url == src) {
            continue;
        }
        let description = img
            .attr("alt")
            .map(|alt| alt.trim().chars().take(300).collect::<String>())
            .filter(|alt| !alt.is_empty());
        found.push(Image {
            url: src.to_owned(),
            description,
        });
        if found.len() == MAX_IMAGES {
            break;
        }
    }
    found
}

/// Elements that never hold others, and those a new sibling closes by itself: neither makes a
/// page deeper, however often it is opened.
const FLAT_ELEMENTS: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track",
    "wbr", "param", "keygen", "frame", "p", "li", "dt", "dd", "tr", "td", "th", "option",
    "optgroup", "rb", "rt", "rp", "thead", "tbody", "tfoot", "colgroup", "caption", "html", "head",
    "body",
];

/// Refuses, in one pass over the text, a page with more tags than [`MAX_ELEMENTS`] or nested
/// deeper than [`MAX_DEPTH`] (counted generously: opened minus closed, skipping comments,
/// scripts, styles, empty and self-closing elements), before the parser's cost depends on it.
fn check_shape(html: &str) -> Result<(), String> {
    let bytes = html.as_bytes();
    let (mut at, mut tags, mut depth, mut deepest) = (0, 0usize, 0usize, 0usize);
    while let Some(offset) = bytes[at..].iter().position(|b| *b == b'<') {
        at += offset + 1;
        let rest = &bytes[at..];
        if rest.starts_with(b"!--") {
            at += find(rest, b"-->").map_or(rest.len(), |end| end + 3);
            continue;
        }
        let closing = rest.first() == Some(&b'/');
        let name_start = usize::from(closing);
        let name_len = rest[name_start..]
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric() || **b == b'-')
            .count();
        if name_len == 0 || !rest[name_start].is_ascii_alphabetic() {
            continue;
        }
        let name =
            String::from_utf8_lossy(&rest[name_start..name_start + name_len]).to_ascii_lowercase();
        // The tag ends at its `>`, or where the next one starts (so a page of unclosed `<a`
        // is still read once).
        let end = rest
            .iter()
            .skip(1)
            .position(|b| *b == b'>' || *b == b'<')
            .map_or(rest.len(), |p| p + 1);
        at += end;
        if closing {
            if !FLAT_ELEMENTS.contains(&name.as_str()) {
                depth = depth.saturating_sub(1);
            }
            continue;
        }
        tags += 1;
        if tags > MAX_ELEMENTS {
            return Err(format!(
                "the page has too many elements to read (more than {MAX_ELEMENTS})"
            ));
        }
        if name == "script" || name == "style" {
            // Their text is not markup: skip to where they close.
            let closer = format!("</{name}");
            let inside = &bytes[at..];
            at += find_ignoring_case(inside, closer.as_bytes()).unwrap_or(inside.len());
            continue;
        }
        let self_closing = rest.get(end) == Some(&b'>') && rest[end - 1] == b'/';
        if !self_closing && !FLAT_ELEMENTS.contains(&name.as_str()) {
            depth += 1;
            deepest = deepest.max(depth);
            if deepest > MAX_DEPTH {
                return Err(format!(
                    "the page is nested too deeply to read (more than {MAX_DEPTH} levels)"
                ));
            }
        }
    }
    Ok(())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn find_ignoring_case(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_are_read_by_essence_and_charset() {
        for (header, kind, charset) in [
            (Some("text/html"), Kind::Html, None),
            (
                Some("TEXT/HTML; Charset=\"ISO-8859-1\""),
                Kind::Html,
                Some("ISO-8859-1"),
            ),
            (Some("application/xhtml+xml"), Kind::Html, None),
            (Some("text/plain;charset=utf-8"), Kind::Text, Some("utf-8")),
            (Some("text/markdown"), Kind::Text, None),
            (Some(""), Kind::Unlabelled, None),
            (None, Kind::Unlabelled, None),
        ] {
            let parsed = ContentType::parse(header).unwrap();
            assert_eq!(parsed.kind, kind, "{header:?}");
            assert_eq!(parsed.charset.as_deref(), charset, "{header:?}");
        }
        for refused in ["image/png", "application/pdf", "application/json; x=1"] {
            let why = ContentType::parse(Some(refused)).unwrap_err();
            assert!(why.starts_with("unsupported content type "), "{why}");
        }
    }

    #[test]
    fn bodies_are_decoded_by_bom_header_meta_then_utf8() {
        assert_eq!(decode(b"caf\xe9", Some("latin1"), false), "café");
        assert_eq!(decode("café".as_bytes(), None, false), "café");
        assert_eq!(
            decode(b"caf\xe9", None, false),
            "caf\u{fffd}",
            "lossy UTF-8"
        );
        let meta = b"<html><head><meta charset=\"windows-1252\"></head>caf\xe9";
        assert!(decode(meta, None, true).ends_with("café"), "meta charset");
        assert!(
            decode(meta, None, false).ends_with('\u{fffd}'),
            "not for text"
        );
        assert!(
            decode(meta, Some("utf-8"), true).ends_with('\u{fffd}'),
            "header wins"
        );
        let utf16_claim = b"<meta charset=utf-16>caf\xc3\xa9";
        assert!(
            decode(utf16_claim, None, true).ends_with("café"),
            "UTF-16 in meta is UTF-8"
        );
        assert_eq!(
            decode(b"\xef\xbb\xbfok", Some("latin1"), false),
            "ok",
            "BOM wins"
        );
    }

    #[test]
    fn pages_too_deep_or_too_big_to_parse_are_refused_in_one_pass() {
        let nested = "<div>".repeat(MAX_DEPTH + 1);
        assert!(
            check_shape(&nested)
                .unwrap_err()
                .contains("nested too deeply")
        );
        let closed = "<div>x</div>".repeat(MAX_DEPTH * 10);
        assert_eq!(check_shape(&closed), Ok(()), "siblings are not depth");
        let paragraphs = "<p>x<li>y<br><img src=a /><x-a/>".repeat(MAX_DEPTH * 2);
        assert_eq!(
            check_shape(&paragraphs),
            Ok(()),
            "flat and self-closing elements"
        );
        let script = format!(
            "<script>{}</script><div>x</div>",
            "if (a<b) {}".repeat(5_000)
        );
        assert_eq!(check_shape(&script), Ok(()), "script text is not markup");
        let comment = format!("<!--{}-->", "<div>".repeat(MAX_DEPTH * 2));
        assert_eq!(check_shape(&comment), Ok(()));
        let many = "<br>".repeat(MAX_ELEMENTS + 1);
        assert!(
            check_shape(&many)
                .unwrap_err()
                .contains("too many elements")
        );
        let unclosed = "<a".repeat(1_000_000);
        assert!(
            check_shape(&unclosed).is_err(),
            "read in one pass, not quadratically"
        );
        assert!(
            render(
                nested.as_bytes(),
                &ContentType::parse(Some("text/html")).unwrap(),
                &Url::parse("https://example.com/").unwrap(),
                ContentFormat::Markdown,
                false,
            )
            .unwrap_err()
            .contains("nested too deeply")
        );
    }

    #[test]
    fn unlabelled_bodies_are_sniffed_and_binary_refused() {
        assert_eq!(sniff(b"  <!DOCTYPE html><p>x"), Ok(Kind::Html));
        assert_eq!(sniff(b"<html>"), Ok(Kind::Html));
        assert_eq!(sniff(b"just words"), Ok(Kind::Text));
        assert!(sniff(b"\x89PNG\r\n\x1a\n\0\0").is_err());
    }

    #[test]
    fn output_is_cut_on_a_character_boundary() {
        let long = "é".repeat(MAX_TEXT_BYTES);
        let cut = bounded(long);
        assert!(cut.len() < MAX_TEXT_BYTES + 100);
        assert!(cut.ends_with("[page text cut off at 512 KiB]"));
        assert_eq!(bounded("short".to_owned()), "short");
    }

    #[test]
    fn pages_without_content_or_with_too_many_elements_fail() {
        let url = Url::parse("https://example.com/").unwrap();
        let html = ContentType::parse(Some("text/html")).unwrap();
        let render = |body: &[u8]| render(body, &html, &url, ContentFormat::Markdown, false);
        assert!(render(b"<html><body></body></html>").is_err());
        let huge = "<p>x</p>".repeat(MAX_ELEMENTS + 1);
        let why = render(huge.as_bytes()).unwrap_err();
        assert!(why.contains("too many elements"), "{why}");
    }

    #[test]
    fn only_web_images_are_listed_once() {
        let images = images(
            r#"<img src="https://a.example/1.png" alt=" one "><img src="data:image/png;base64,AAAA">
            <img src="https://a.example/1.png"><img src="javascript:alert(1)"><img src="http://b/2.gif">"#,
        );
        let urls: Vec<&str> = images.iter().map(|i| i.url.as_str()).collect();
        assert_eq!(urls, ["https://a.example/1.png", "http://b/2.gif"]);
        assert_eq!(images[0].description.as_deref(), Some("one"));
    }
}

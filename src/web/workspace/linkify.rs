//! Escapes user text for HTML and makes web links clickable. No HTML from
//! users is ever rendered: every character outside a link is escaped, and
//! links are only `http(s)://` URLs, rendered with `rel="noopener
//! noreferrer nofollow"`.

/// Escapes `s` for HTML text and attribute contexts.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Escaped text with `http://` and `https://` links turned into anchors.
/// The `linkify` crate finds the links (it knows where a URL ends among
/// brackets and sentence punctuation); any other scheme stays text.
pub fn linkify(text: &str) -> String {
    let mut finder = linkify::LinkFinder::new();
    finder.kinds(&[linkify::LinkKind::Url]);
    let mut out = String::with_capacity(text.len() + 32);
    for span in finder.spans(text) {
        let part = span.as_str();
        if span.kind().is_some() && is_web_url(part) {
            let e = escape(part);
            out.push_str(&format!(
                "<a href=\"{e}\" rel=\"noopener noreferrer nofollow\" target=\"_blank\">{e}</a>"
            ));
        } else {
            out.push_str(&escape(part));
        }
    }
    out
}

/// Whether a found link is an http(s) URL with something after the scheme.
fn is_web_url(link: &str) -> bool {
    let lower = link.to_ascii_lowercase();
    ["http://", "https://"]
        .iter()
        .any(|scheme| lower.starts_with(scheme) && lower.len() > scheme.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            linkify("<script>alert(1)</script>"),
            "&lt;script&gt;alert(1)&lt;/script&gt;"
        );
        assert_eq!(
            linkify("a & \"b\" 'c'"),
            "a &amp; &quot;b&quot; &#39;c&#39;"
        );
    }

    #[test]
    fn links_become_safe_anchors() {
        let h = linkify("see https://example.com/a?b=1&c=2. thanks");
        assert_eq!(
            h,
            "see <a href=\"https://example.com/a?b=1&amp;c=2\" rel=\"noopener noreferrer nofollow\" target=\"_blank\">https://example.com/a?b=1&amp;c=2</a>. thanks"
        );
        assert!(!linkify("javascript:alert(1)").contains("<a"));
        assert!(!linkify("http://\"onmouseover=alert(1)").contains("onmouseover=alert(1)\""));
    }

    #[test]
    fn odd_input_never_panics() {
        for s in [
            "http://",
            "https://",
            "http://é",
            "xhttp://a",
            "http://a)",
            "é http://ü.example/ö",
            "(see https://example.com/x)",
            "ftp://example.com/file",
        ] {
            let _ = linkify(s);
        }
        assert_eq!(linkify("http://"), "http://");
        assert!(linkify("(see https://example.com/x)").contains(">https://example.com/x</a>)"));
        assert!(!linkify("ftp://example.com/file").contains("<a"));
    }
}

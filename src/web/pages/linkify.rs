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
pub fn linkify(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 32);
    let mut rest = text;
    while let Some(start) = find_link(rest) {
        out.push_str(&escape(&rest[..start]));
        let tail = &rest[start..];
        let mut end = tail
            .find(|c: char| c.is_whitespace() || c == '<' || c == '>' || c == '"')
            .unwrap_or(tail.len());
        // Trailing punctuation usually ends the sentence, not the URL.
        while end > 0 && tail[..end].ends_with(['.', ',', ';', ':', '!', '?', ')', '\'']) {
            end -= tail[..end].chars().next_back().map_or(1, char::len_utf8);
        }
        let url = &tail[..end];
        if url.len() <= "https://".len() {
            out.push_str(&escape(url));
        } else {
            let e = escape(url);
            out.push_str(&format!(
                "<a href=\"{e}\" rel=\"noopener noreferrer nofollow\" target=\"_blank\">{e}</a>"
            ));
        }
        // `tail` starts with "http://" or "https://", which ends in '/', so
        // `end` is at least 7 and the loop always advances.
        rest = &tail[end.max(1)..];
    }
    out.push_str(&escape(rest));
    out
}

fn find_link(s: &str) -> Option<usize> {
    let lower = s.to_ascii_lowercase();
    match (lower.find("http://"), lower.find("https://")) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
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
        ] {
            let _ = linkify(s);
        }
        assert_eq!(linkify("http://"), "http://");
    }
}

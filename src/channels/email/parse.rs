//! Turning a raw message from the mailbox into what a conversation needs.
//!
//! Customers' mail clients differ wildly: some send only HTML, some quote
//! the whole thread under the reply, headers may be encoded in any charset.
//! This module reduces all of that to a [`Mail`] whose `text` is just what
//! the customer wrote this time, so agents do not read the thread twice.

use mail_parser::{HeaderValue, MessageParser, MimeHeaders};

/// One received message, reduced to what natter stores and threads on.
#[derive(Debug, Clone, PartialEq)]
pub struct Mail {
    /// The Message-ID without angle brackets, used to recognise replies to
    /// it and to ignore a message seen twice.
    pub message_id: Option<String>,
    /// The ids in In-Reply-To (without brackets): the strongest hint of
    /// which conversation this continues.
    pub in_reply_to: Vec<String>,
    /// The ids in References (without brackets), oldest first: a fallback
    /// for threading when In-Reply-To names a message natter never saw.
    pub references: Vec<String>,
    /// The sender's address, lower-cased so that one customer is one
    /// contact whatever case their client uses.
    pub from_address: String,
    /// The sender's display name, to name a new contact.
    pub from_name: Option<String>,
    /// Addresses in To, Cc and Delivered-To, lower-cased: where a
    /// plus-address token (see [`super::plus_token`]) is looked for.
    pub recipients: Vec<String>,
    /// The decoded subject, to title a new conversation.
    pub subject: Option<String>,
    /// What the customer wrote this time: plain text (or HTML reduced to
    /// text) with quoted history and signature trimmed away.
    pub text: String,
    /// Whether the message had an HTML body, so the UI can offer the
    /// original when the reduction lost something.
    pub had_html: bool,
    /// Whether the message was sent by a machine (vacation reply, bounce,
    /// bulk mail). Natter must not answer these, or two autoresponders
    /// would mail each other forever.
    pub auto_submitted: bool,
    /// Files the customer attached (not the text or HTML body parts).
    pub attachments: Vec<MailAttachment>,
}

/// One attached file, kept whole so an agent can download it.
#[derive(Debug, Clone, PartialEq)]
pub struct MailAttachment {
    /// The file name the sender gave, or a generic one when none was given.
    pub name: String,
    /// The MIME type (`type/subtype`), to serve the file correctly.
    pub content_type: String,
    /// The decoded content.
    pub bytes: Vec<u8>,
}

/// Parses a raw RFC 5322 message. Returns `None` when the bytes are not a
/// message at all or have no usable sender address, because such a message
/// cannot become part of a conversation; never panics on hostile input, since
/// anyone on the internet can put bytes into the mailbox.
pub fn parse(raw: &[u8]) -> Option<Mail> {
    let message = MessageParser::default().parse(raw)?;

    let (from_address, from_name) = {
        let addr = message.from().and_then(|a| a.first())?;
        let address = addr.address()?.trim().to_lowercase();
        if !address.contains('@') {
            return None;
        }
        let name = addr
            .name()
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty());
        (address, name)
    };

    let mut recipients: Vec<String> = Vec::new();
    let mut add_recipient = |a: &str| {
        let a = a
            .trim()
            .trim_start_matches('<')
            .trim_end_matches('>')
            .to_lowercase();
        if a.contains('@') && !recipients.contains(&a) {
            recipients.push(a);
        }
    };
    for list in message
        .header_values("To")
        .chain(message.header_values("Cc"))
    {
        if let Some(addresses) = list.as_address() {
            for a in addresses.iter() {
                if let Some(a) = a.address() {
                    add_recipient(a);
                }
            }
        }
    }
    for (name, value) in message.headers_raw() {
        if name.eq_ignore_ascii_case("Delivered-To") {
            add_recipient(value);
        }
    }

    let mut auto_submitted = false;
    for (name, value) in message.headers_raw() {
        let value = value.trim().to_ascii_lowercase();
        if name.eq_ignore_ascii_case("Auto-Submitted") {
            // RFC 3834: any value but "no" means a machine sent it.
            let keyword = value.split(';').next().unwrap_or("").trim();
            if keyword != "no" {
                auto_submitted = true;
            }
        } else if name.eq_ignore_ascii_case("Precedence") {
            if matches!(value.as_str(), "bulk" | "junk" | "auto_reply" | "list") {
                auto_submitted = true;
            }
        } else if name.eq_ignore_ascii_case("X-Autoreply")
            || name.eq_ignore_ascii_case("X-Autorespond")
        {
            auto_submitted = true;
        }
    }

    let had_html = message.html_bodies().any(|p| p.is_text_html());

    // The text bodies: mail-parser lists the text/plain alternative when
    // there is one and the HTML part otherwise.
    let mut full = String::new();
    for part in message.text_bodies() {
        let piece = if part.is_text_html() {
            part.text_contents().map(html_to_text)
        } else if part.is_text() {
            part.text_contents().map(|t| t.replace("\r\n", "\n"))
        } else {
            None
        };
        if let Some(piece) = piece {
            if !full.is_empty() && !full.ends_with('\n') {
                full.push('\n');
            }
            full.push_str(&piece);
        }
    }
    let text = strip_quoted(&full);

    let body_ids: Vec<u32> = message
        .text_body
        .iter()
        .chain(message.html_body.iter())
        .copied()
        .collect();
    let attachments = message
        .attachments
        .iter()
        .filter(|id| !body_ids.contains(id))
        .filter_map(|id| message.parts.get(*id as usize))
        .filter(|part| !part.is_multipart())
        .map(|part| {
            let content_type = part
                .content_type()
                .map(|ct| match ct.subtype() {
                    Some(sub) => format!("{}/{}", ct.ctype(), sub),
                    None => ct.ctype().to_string(),
                })
                .unwrap_or_else(|| "application/octet-stream".to_string())
                .to_ascii_lowercase();
            let name = part
                .attachment_name()
                .map(|n| n.trim().to_string())
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| {
                    if part.is_message() {
                        "message.eml".to_string()
                    } else {
                        "attachment".to_string()
                    }
                });
            MailAttachment {
                name,
                content_type,
                bytes: part.contents().to_vec(),
            }
        })
        .collect();

    Some(Mail {
        message_id: message.message_id().and_then(clean_id),
        in_reply_to: ids(message.in_reply_to()),
        references: ids(message.references()),
        from_address,
        from_name,
        recipients,
        subject: message
            .subject()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty()),
        text,
        had_html,
        auto_submitted,
        attachments,
    })
}

/// A message id without brackets or whitespace; `None` for an empty one.
fn clean_id(id: &str) -> Option<String> {
    let id = id
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim();
    (!id.is_empty()).then(|| id.to_string())
}

/// The ids of an In-Reply-To or References header, whichever form the
/// parser produced.
fn ids(value: &HeaderValue<'_>) -> Vec<String> {
    let raw: Vec<&str> = match value {
        HeaderValue::Text(t) => vec![t.as_ref()],
        HeaderValue::TextList(list) => list.iter().map(|t| t.as_ref()).collect(),
        _ => Vec::new(),
    };
    raw.into_iter()
        .flat_map(|s| s.split_whitespace())
        .filter_map(clean_id)
        .collect()
}

/// Elements whose content is not readable text.
const SKIPPED_ELEMENTS: [&str; 4] = ["script", "style", "head", "title"];
/// Elements that start a new line in the text rendering.
const BLOCK_ELEMENTS: [&str; 20] = [
    "p",
    "div",
    "br",
    "li",
    "tr",
    "table",
    "ul",
    "ol",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "blockquote",
    "hr",
    "pre",
    "section",
    "article",
    "body",
];

/// Reduces HTML to readable plain text: tags dropped, script and style
/// contents dropped, entities decoded, block elements and `<br>` turned into
/// line breaks, link text kept, and blockquoted lines prefixed with `> ` so
/// that quoted history can be trimmed like in plain-text mail. A small
/// hand-written scanner, because the input is hostile and a full HTML engine
/// would be a large dependency for a preview.
pub fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    let mut quote_depth: usize = 0;
    let mut at_line_start = true;
    let mut pending_space = false;
    let mut rest = html;

    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("<!--") {
            rest = match after.find("-->") {
                Some(end) => &after[end + 3..],
                None => "",
            };
            continue;
        }
        if rest.starts_with('<') {
            let Some(end) = rest.find('>') else {
                break;
            };
            let tag = &rest[1..end];
            rest = &rest[end + 1..];
            let closing = tag.starts_with('/');
            let name: String = tag
                .trim_start_matches('/')
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect::<String>()
                .to_ascii_lowercase();
            if name.is_empty() {
                continue;
            }
            if !closing && SKIPPED_ELEMENTS.contains(&name.as_str()) && !tag.ends_with('/') {
                rest = skip_past_close(rest, &name);
                continue;
            }
            if name == "blockquote" {
                if closing {
                    quote_depth = quote_depth.saturating_sub(1);
                } else {
                    quote_depth += 1;
                }
            }
            if BLOCK_ELEMENTS.contains(&name.as_str()) {
                if !at_line_start || name == "br" || name == "p" {
                    out.push('\n');
                }
                at_line_start = true;
                pending_space = false;
                if name == "li" && !closing {
                    start_line(&mut out, &mut at_line_start, quote_depth);
                    out.push_str("- ");
                }
            } else if name == "td" || name == "th" {
                pending_space = true;
            }
            continue;
        }
        let next_tag = rest.find('<').unwrap_or(rest.len());
        let chunk = &rest[..next_tag];
        rest = &rest[next_tag..];
        let decoded = decode_entities(chunk);
        for c in decoded.chars() {
            if c.is_whitespace() && c != '\u{a0}' {
                pending_space = !at_line_start;
                continue;
            }
            if pending_space {
                out.push(' ');
                pending_space = false;
            }
            start_line(&mut out, &mut at_line_start, quote_depth);
            out.push(if c == '\u{a0}' { ' ' } else { c });
        }
    }
    tidy_lines(&out)
}

/// Writes the quote prefix when the first character of a line is about to
/// be written.
fn start_line(out: &mut String, at_line_start: &mut bool, quote_depth: usize) {
    if *at_line_start {
        for _ in 0..quote_depth {
            out.push_str("> ");
        }
        *at_line_start = false;
    }
}

/// The rest of the document after `</name>`, case-insensitively; empty when
/// the element is never closed (its content is dropped, which is safe).
fn skip_past_close<'a>(rest: &'a str, name: &str) -> &'a str {
    let needle = format!("</{name}");
    let lower = rest.to_ascii_lowercase();
    match lower.find(&needle) {
        Some(pos) => match rest[pos..].find('>') {
            Some(end) => &rest[pos + end + 1..],
            None => "",
        },
        None => "",
    }
}

/// Decodes the HTML entities mail clients actually produce: the XML five,
/// numeric references and the common typographic names. Unknown entities
/// stay as written, which is what browsers do too.
fn decode_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('&') {
        out.push_str(&rest[..pos]);
        rest = &rest[pos..];
        let end = rest
            .char_indices()
            .take(12)
            .find(|(_, c)| *c == ';')
            .map(|(i, _)| i);
        let decoded = end.and_then(|end| {
            let entity = &rest[1..end];
            let c = if let Some(num) = entity.strip_prefix('#') {
                let code = if let Some(hex) = num.strip_prefix(['x', 'X']) {
                    u32::from_str_radix(hex, 16).ok()
                } else {
                    num.parse::<u32>().ok()
                };
                code.and_then(char::from_u32)
            } else {
                named_entity(entity)
            };
            c.map(|c| (c, end))
        });
        match decoded {
            Some((c, end)) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The named entities worth knowing in mail.
fn named_entity(name: &str) -> Option<char> {
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => '\u{a0}',
        "copy" => '©',
        "reg" => '®',
        "trade" => '™',
        "hellip" => '…',
        "mdash" => '—',
        "ndash" => '–',
        "lsquo" => '‘',
        "rsquo" => '’',
        "ldquo" => '“',
        "rdquo" => '”',
        "euro" => '€',
        "pound" => '£',
        "bull" => '•',
        "middot" => '·',
        "laquo" => '«',
        "raquo" => '»',
        "auml" => 'ä',
        "ouml" => 'ö',
        "uuml" => 'ü',
        "Auml" => 'Ä',
        "Ouml" => 'Ö',
        "Uuml" => 'Ü',
        "szlig" => 'ß',
        "eacute" => 'é',
        "egrave" => 'è',
        "agrave" => 'à',
        "ccedil" => 'ç',
        _ => return None,
    })
}

/// Trims trailing spaces on each line and collapses runs of blank lines, so
/// HTML layout noise does not become screens of empty lines.
fn tidy_lines(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank_run = 0;
    for line in text.lines() {
        let line = line.trim_end();
        if line.trim().is_empty() {
            blank_run += 1;
            if blank_run > 1 {
                continue;
            }
            out.push('\n');
        } else {
            blank_run = 0;
            out.push_str(line);
            out.push('\n');
        }
    }
    out.trim().to_string()
}

/// Removes the quoted history and the signature under a reply, so a
/// conversation shows each message once. Falls back to the whole text when
/// trimming would leave nothing (a message that is only a forward or only a
/// quote still has to show something).
pub fn strip_quoted(text: &str) -> String {
    let text = text.replace("\r\n", "\n");
    let lines: Vec<&str> = text.lines().collect();
    let cut = lines
        .iter()
        .enumerate()
        .find(|(i, _)| starts_history(&lines, *i))
        .map_or(lines.len(), |(i, _)| i);
    let mut kept = &lines[..cut];
    // Trailing quoted lines (and the blank lines between them) go too; an
    // inline answer between quotes stays untouched.
    while let Some(last) = kept.last() {
        let t = last.trim();
        if t.is_empty() || t.starts_with('>') || is_rule(t) {
            kept = &kept[..kept.len() - 1];
        } else {
            break;
        }
    }
    let trimmed = kept.join("\n").trim().to_string();
    if trimmed.is_empty() {
        text.trim().to_string()
    } else {
        trimmed
    }
}

/// A horizontal rule Outlook draws above its quoted header.
fn is_rule(t: &str) -> bool {
    t.len() >= 5 && t.chars().all(|c| c == '_' || c == '-')
}

/// Whether line `i` begins quoted history or a signature.
fn starts_history(lines: &[&str], i: usize) -> bool {
    let line = lines[i];
    // "-- " is the standard signature separator; clients that strip
    // trailing spaces leave "--".
    if line.trim_end() == "--" {
        return true;
    }
    let t = line.trim().trim_start_matches('>').trim();
    let lower = t.to_lowercase();
    if lower.starts_with("-----original message-----")
        || lower.starts_with("----- original message -----")
        || lower.starts_with("-------- original message --------")
        || lower.starts_with("---------- forwarded message")
    {
        return true;
    }
    // Outlook: a "From:" line followed within a few lines by "Sent:" (or
    // "Date:" in some versions), with no blank line needed between.
    if lower.starts_with("from:") {
        let window = lines.iter().skip(i + 1).take(4);
        for next in window {
            let n = next.trim().trim_start_matches('>').trim().to_lowercase();
            if n.starts_with("sent:") || n.starts_with("date:") {
                return true;
            }
        }
    }
    // "On <date>, <name> wrote:" -- Gmail wraps long ones over two or three
    // lines, so join a few before looking for the end.
    if lower.starts_with("on ") {
        let mut joined = lower.clone();
        for extra in 0..3 {
            if joined.trim_end().ends_with("wrote:") {
                return joined.len() < 400;
            }
            match lines.get(i + 1 + extra) {
                Some(next) if !next.trim().is_empty() => {
                    joined.push(' ');
                    joined.push_str(&next.trim().to_lowercase());
                }
                _ => break,
            }
        }
        if joined.trim_end().ends_with("wrote:") {
            return joined.len() < 400;
        }
    }
    // The same header in a few other common languages.
    if (lower.starts_with("am ") && lower.trim_end().ends_with("schrieb:"))
        || (lower.starts_with("le ") && lower.trim_end().ends_with("a écrit :"))
        || (lower.starts_with("el ") && lower.trim_end().ends_with("escribió:"))
    {
        return true;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crlf(s: &str) -> Vec<u8> {
        s.replace('\n', "\r\n").into_bytes()
    }

    #[test]
    fn plain_message() {
        let raw = crlf(
            "Return-Path: <Jane@Example.COM>\n\
Delivered-To: support@natter.test\n\
From: Jane Doe <Jane@Example.COM>\n\
To: Support <support+c42@natter.test>\n\
Cc: boss@example.com\n\
Subject: Where is my order?\n\
Date: Mon, 3 Jun 2024 10:00:00 +0200\n\
Message-ID: <abc123@mail.example.com>\n\
MIME-Version: 1.0\n\
Content-Type: text/plain; charset=utf-8\n\
\n\
Hello,\n\
\n\
my order #1234 has not arrived.\n\
\n\
Jane\n",
        );
        let mail = parse(&raw).expect("parses");
        assert_eq!(mail.message_id.as_deref(), Some("abc123@mail.example.com"));
        assert_eq!(mail.from_address, "jane@example.com");
        assert_eq!(mail.from_name.as_deref(), Some("Jane Doe"));
        assert_eq!(mail.subject.as_deref(), Some("Where is my order?"));
        assert_eq!(
            mail.recipients,
            vec![
                "support+c42@natter.test".to_string(),
                "boss@example.com".to_string(),
                "support@natter.test".to_string()
            ]
        );
        assert_eq!(
            mail.text,
            "Hello,\n\nmy order #1234 has not arrived.\n\nJane"
        );
        assert!(!mail.had_html);
        assert!(!mail.auto_submitted);
        assert!(mail.attachments.is_empty());
        assert!(mail.in_reply_to.is_empty());
    }

    #[test]
    fn gmail_html_only_reply() {
        let raw = crlf(
            "From: Bob <bob@gmail.com>\n\
To: support@natter.test\n\
Subject: Re: Your ticket\n\
Message-ID: <CAB+xyz@mail.gmail.com>\n\
In-Reply-To: <natter-7@natter.test>\n\
References: <natter-1@natter.test>\n\x20<natter-7@natter.test>\n\
MIME-Version: 1.0\n\
Content-Type: text/html; charset=\"UTF-8\"\n\
Content-Transfer-Encoding: quoted-printable\n\
\n\
<div dir=3D\"ltr\">Thanks, that worked!<br><br>Tom &amp; Jerry say &quot;hi&quot;=\n\
\x20&lt;3 &#128512;<div>See <a href=3D\"https://x.test\">the docs</a></div></div>=\n\
<br><div class=3D\"gmail_quote\"><div dir=3D\"ltr\" class=3D\"gmail_attr\">On Mon=\n\
, Jun 3, 2024 at 10:00=E2=80=AFAM Support &lt;<a href=3D\"mailto:support@natte=\n\
r.test\">support@natter.test</a>&gt; wrote:<br></div><blockquote class=3D\"gmai=\n\
l_quote\" style=3D\"margin:0px\">Have you tried turning it off and on?</blockq=\n\
uote></div>\n",
        );
        let mail = parse(&raw).expect("parses");
        assert!(mail.had_html);
        assert_eq!(mail.in_reply_to, vec!["natter-7@natter.test"]);
        assert_eq!(
            mail.references,
            vec!["natter-1@natter.test", "natter-7@natter.test"]
        );
        assert_eq!(
            mail.text,
            "Thanks, that worked!\n\nTom & Jerry say \"hi\" <3 \u{1F600}\nSee the docs"
        );
    }

    #[test]
    fn outlook_html_only_reply() {
        let raw = crlf(
            "From: \"Carol Smith\" <carol@corp.example>\n\
To: <support@natter.test>\n\
Subject: RE: Invoice\n\
Message-ID: <DB9PR01MB@eurprd01.prod.outlook.com>\n\
MIME-Version: 1.0\n\
Content-Type: text/html; charset=\"us-ascii\"\n\
\n\
<html><head><style>p.MsoNormal {margin:0cm;}</style><script>alert(1)</script></head>\n\
<body lang=\"EN-US\"><div class=\"WordSection1\">\n\
<p class=\"MsoNormal\">Hi,<o:p></o:p></p>\n\
<p class=\"MsoNormal\">Please resend the invoice.<o:p></o:p></p>\n\
<ul><li>PDF please</li><li>by Friday</li></ul>\n\
<div style=\"border:none;border-top:solid #E1E1E1 1.0pt\">\n\
<p class=\"MsoNormal\"><b>From:</b> Support &lt;support@natter.test&gt;<br>\n\
<b>Sent:</b> Monday, June 3, 2024 10:00 AM<br>\n\
<b>To:</b> Carol Smith<br>\n\
<b>Subject:</b> Invoice</p></div>\n\
<p class=\"MsoNormal\">Here is your invoice.</p>\n\
</div></body></html>\n",
        );
        let mail = parse(&raw).expect("parses");
        assert!(mail.had_html);
        assert_eq!(
            mail.text,
            "Hi,\n\nPlease resend the invoice.\n- PDF please\n- by Friday"
        );
        assert!(!mail.text.contains("alert"));
        assert!(!mail.text.contains("MsoNormal"));
    }

    #[test]
    fn multipart_alternative_prefers_plain() {
        let raw = crlf(
            "From: dave@example.com\n\
To: support@natter.test\n\
Subject: alt\n\
MIME-Version: 1.0\n\
Content-Type: multipart/alternative; boundary=\"b1\"\n\
\n\
--b1\n\
Content-Type: text/plain; charset=utf-8\n\
\n\
Plain version\n\
--b1\n\
Content-Type: text/html; charset=utf-8\n\
\n\
<p>HTML version</p>\n\
--b1--\n",
        );
        let mail = parse(&raw).expect("parses");
        assert_eq!(mail.text, "Plain version");
        assert!(mail.had_html);
        assert!(mail.attachments.is_empty());
    }

    #[test]
    fn quoted_reply_plain_styles() {
        let gmail = crlf(
            "From: a@example.com\n\
Subject: Re: x\n\
\n\
Yes, please cancel it.\n\
\n\
On Mon, 3 Jun 2024 at 10:00, Natter Support <\n\
support@natter.test> wrote:\n\
\n\
> Do you want to cancel?\n\
>\n\
> Support\n",
        );
        assert_eq!(
            parse(&gmail).expect("parses").text,
            "Yes, please cancel it."
        );

        let outlook = crlf(
            "From: a@example.com\n\
Subject: RE: x\n\
\n\
No thanks.\n\
\n\
-- \n\
Alice Example | ACME\n\
\n\
-----Original Message-----\n\
From: Support <support@natter.test>\n\
Sent: Monday, June 3, 2024 10:00 AM\n\
Subject: x\n\
\n\
Old text\n",
        );
        assert_eq!(parse(&outlook).expect("parses").text, "No thanks.");

        let outlook_block = crlf(
            "From: a@example.com\n\
Subject: RE: x\n\
\n\
Fine by me.\n\
________________________________\n\
From: Support <support@natter.test>\n\
Sent: Monday, June 3, 2024 10:00 AM\n\
To: Alice\n\
Subject: x\n\
\n\
Old text\n",
        );
        assert_eq!(parse(&outlook_block).expect("parses").text, "Fine by me.");

        let trailing = crlf(
            "From: a@example.com\n\
\n\
> what about this?\n\
That is fine.\n\
> and that?\n\
> more\n",
        );
        assert_eq!(
            parse(&trailing).expect("parses").text,
            "> what about this?\nThat is fine."
        );
    }

    #[test]
    fn only_quote_keeps_untrimmed_text() {
        let raw = crlf("From: a@example.com\n\n> just a quote\n");
        assert_eq!(parse(&raw).expect("parses").text, "> just a quote");
    }

    #[test]
    fn attachment_is_extracted() {
        let raw = crlf(
            "From: e@example.com\n\
To: support@natter.test\n\
Subject: screenshot\n\
MIME-Version: 1.0\n\
Content-Type: multipart/mixed; boundary=\"mix\"\n\
\n\
--mix\n\
Content-Type: multipart/alternative; boundary=\"alt\"\n\
\n\
--alt\n\
Content-Type: text/plain; charset=utf-8\n\
\n\
See attached.\n\
--alt\n\
Content-Type: text/html; charset=utf-8\n\
\n\
<p>See attached.</p>\n\
--alt--\n\
--mix\n\
Content-Type: image/png; name=\"shot.png\"\n\
Content-Disposition: attachment; filename=\"shot.png\"\n\
Content-Transfer-Encoding: base64\n\
\n\
iVBORw0KGgo=\n\
--mix\n\
Content-Type: text/plain; charset=utf-8\n\
Content-Disposition: attachment; filename=\"log.txt\"\n\
\n\
line 1\n\
--mix--\n",
        );
        let mail = parse(&raw).expect("parses");
        assert_eq!(mail.text, "See attached.");
        assert_eq!(mail.attachments.len(), 2, "{:?}", mail.attachments);
        assert_eq!(mail.attachments[0].name, "shot.png");
        assert_eq!(mail.attachments[0].content_type, "image/png");
        assert_eq!(mail.attachments[0].bytes, b"\x89PNG\r\n\x1a\n");
        assert_eq!(mail.attachments[1].name, "log.txt");
        assert_eq!(mail.attachments[1].content_type, "text/plain");
    }

    #[test]
    fn encoded_headers_are_decoded() {
        let raw = crlf(
            "From: =?UTF-8?B?SsO8cmdlbiBNw7xsbGVy?= <juergen@example.de>\n\
To: support@natter.test\n\
Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?= und =?UTF-8?B?4pyT?=\n\
\n\
Hallo\n",
        );
        let mail = parse(&raw).expect("parses");
        assert_eq!(mail.from_name.as_deref(), Some("Jürgen Müller"));
        assert_eq!(mail.subject.as_deref(), Some("Grüße und ✓"));
    }

    #[test]
    fn auto_submitted_is_detected() {
        let base = "From: a@example.com\nTo: support@natter.test\n";
        for (header, expected) in [
            ("Auto-Submitted: auto-replied\n", true),
            ("Auto-Submitted: Auto-Generated; owner-email=x@y\n", true),
            ("Auto-Submitted: no\n", false),
            ("Auto-Submitted: NO\n", false),
            ("Precedence: bulk\n", true),
            ("Precedence: junk\n", true),
            ("Precedence: auto_reply\n", true),
            ("X-Autoreply: yes\n", true),
            ("X-Autorespond: Out of office\n", true),
            ("", false),
        ] {
            let raw = crlf(&format!("{base}{header}\nI am away.\n"));
            let mail = parse(&raw).expect("parses");
            assert_eq!(mail.auto_submitted, expected, "{header}");
        }
    }

    #[test]
    fn latin1_body_is_decoded() {
        let mut raw = crlf(
            "From: f@example.fr\n\
Subject: =?ISO-8859-1?Q?caf=E9?=\n\
Content-Type: text/plain; charset=iso-8859-1\n\
Content-Transfer-Encoding: 8bit\n\
\n",
        );
        raw.extend_from_slice(b"Un caf\xe9 cr\xe8me, s'il vous pla\xeet.\r\n");
        let mail = parse(&raw).expect("parses");
        assert_eq!(mail.subject.as_deref(), Some("café"));
        assert_eq!(mail.text, "Un café crème, s'il vous plaît.");
    }

    #[test]
    fn garbage_never_panics() {
        let samples: Vec<Vec<u8>> = vec![
            Vec::new(),
            b"\x00\x01\x02\xff\xfe".to_vec(),
            b"From:\r\n\r\n".to_vec(),
            b"From: <>\r\n\r\n<".to_vec(),
            b"From: a@b\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n--x".to_vec(),
            b"From: a@b\r\nContent-Type: text/html\r\n\r\n<scr<script<<&#xFFFFFFFF;&#99999999999;&;&".to_vec(),
            (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect(),
        ];
        for s in samples {
            let _ = parse(&s);
        }
        assert_eq!(parse(b"\x00\x01\x02\xff\xfe"), None);

        // Random mixtures of the tokens the hand-written HTML scanner and
        // quote trimmer react to, including multi-byte characters next to
        // the ASCII they look for.
        let pieces = [
            "<",
            ">",
            "&",
            "#",
            "x",
            ";",
            "é",
            "😀",
            "<script>",
            "</",
            "<!--",
            "-->",
            "\n",
            "On ",
            "wrote:",
            "> ",
            "--",
            "From:",
            "Sent:",
            "<br>",
            "<blockquote>",
            "&#",
            "&#x",
            "</blockquote>",
            "<p",
            " ",
            "a",
        ];
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..3000 {
            let mut html = String::new();
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            for k in 0..(seed % 40) {
                let idx = ((seed >> (k % 48)) as usize + k as usize * 7) % pieces.len();
                html.push_str(pieces[idx]);
            }
            let _ = html_to_text(&html);
            let _ = strip_quoted(&html);
            let raw = format!("From: a@b.c\r\nContent-Type: text/html\r\n\r\n{html}");
            let _ = parse(raw.as_bytes());
        }
    }

    #[test]
    fn html_entities_and_blocks() {
        assert_eq!(
            html_to_text("<p>a&nbsp;b &euro;5 &unknown; &#x41;</p><p>c</p>"),
            "a b €5 &unknown; A\n\nc"
        );
        assert_eq!(
            html_to_text("x<blockquote>quoted<br>two</blockquote>y"),
            "x\n> quoted\n> two\ny"
        );
        assert_eq!(html_to_text("<STYLE>p{}</STYLE>ok<!-- c -->"), "ok");
    }
}

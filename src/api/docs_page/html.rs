//! HTML helpers: escaping, tables, anchors, and prose with `code` spans.

pub(super) const TABLE_END: &str = "</tbody>\n</table>\n</div>\n";

pub(super) fn table_start(headings: &[&str]) -> String {
    // The wrapper scrolls sideways on narrow screens instead of the page.
    let mut html =
        String::from("<div class=\"api-table-wrap\">\n<table class=\"api-table\">\n<thead><tr>");
    for heading in headings {
        html.push_str(&format!("<th scope=\"col\">{}</th>", escape(heading)));
    }
    html.push_str("</tr></thead>\n<tbody>\n");
    html
}

pub(super) fn yes_no(required: bool) -> &'static str {
    if required {
        "<span class=\"api-required\">required</span>"
    } else {
        "optional"
    }
}

pub(super) fn schema_link(name: &str) -> String {
    format!(
        "<a href=\"#{}\"><code>{}</code></a>",
        anchor("schema-", name),
        escape(name)
    )
}

/// `#/components/schemas/QuotaSnapshot` → `QuotaSnapshot`.
pub(super) fn ref_name(location: &str) -> &str {
    location.rsplit('/').next().unwrap_or(location)
}

pub(super) fn operation_anchor(method: &str, path: &str) -> String {
    anchor(&format!("op-{method}-"), path.trim_start_matches('/'))
}

/// An `id` made only of safe characters, so it needs no escaping.
pub(super) fn anchor(prefix: &str, raw: &str) -> String {
    let mut id = String::from(prefix);
    id.extend(raw.chars().map(|c| {
        if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
            c
        } else {
            '-'
        }
    }));
    id
}

/// Paragraphs (split on blank lines) of [`inline`] text.
pub(super) fn prose(text: &str) -> String {
    text.split("\n\n")
        .map(str::trim)
        .filter(|paragraph| !paragraph.is_empty())
        .map(|paragraph| {
            let joined = paragraph
                .lines()
                .map(str::trim)
                .collect::<Vec<_>>()
                .join(" ");
            format!("<p>{}</p>\n", inline(&joined))
        })
        .collect()
}

/// Escaped text with `backtick spans` as `<code>`; an unmatched backtick
/// stays a backtick.
pub(super) fn inline(text: &str) -> String {
    let parts: Vec<&str> = text.split('`').collect();
    let closed = parts.len() % 2 == 1;
    let mut html = String::with_capacity(text.len() + 16);
    for (index, part) in parts.iter().enumerate() {
        let is_code = index % 2 == 1;
        if is_code && (closed || index + 1 < parts.len()) {
            html.push_str(&format!("<code>{}</code>", escape(part)));
        } else if is_code {
            html.push('`');
            html.push_str(&escape(part));
        } else {
            html.push_str(&escape(part));
        }
    }
    html
}

/// HTML-escapes text for element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            _ => escaped.push(c),
        }
    }
    escaped
}

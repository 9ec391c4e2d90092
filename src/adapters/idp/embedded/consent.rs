//! The consent page and the error page: small, self-contained HTML with no scripts, so a strict
//! Content-Security-Policy can forbid everything else.

use super::authorize::ConsentPage;

/// The headers every page of the authorization endpoint carries: no caching, no framing
/// (clickjacking), no scripts, no referrer leaking the query.
pub const PAGE_HEADERS: [(&str, &str); 5] = [
    ("cache-control", "no-store"),
    ("x-frame-options", "DENY"),
    (
        "content-security-policy",
        "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
    ),
    ("referrer-policy", "no-referrer"),
    ("x-content-type-options", "nosniff"),
];

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;\
padding:0 1rem;color:#222}h1{font-size:1.3rem}code{background:#eee;padding:0 .2rem}\
ul{padding-left:1.2rem}.actions{display:flex;gap:1rem;margin-top:1.5rem}\
button{font-size:1rem;padding:.5rem 1.2rem;border-radius:.3rem;border:1px solid #888;cursor:pointer}\
button.approve{background:#1d4ed8;color:#fff;border-color:#1d4ed8}.muted{color:#666;font-size:.9rem}\
.admin{border:2px solid #b91c1c;background:#fef2f2;border-radius:.3rem;padding:.2rem 1rem;margin:1rem 0}\
.admin h2{color:#b91c1c;font-size:1.1rem}";

/// The consent page for `page`, posting to `action`.
pub fn consent_html(page: &ConsentPage, action: &str) -> String {
    let scopes: String = page
        .scopes
        .iter()
        .map(|s| format!("<li><code>{}</code></li>", escape(s)))
        .collect();
    let scopes = if scopes.is_empty() {
        String::new()
    } else {
        format!("<p>It asks for:</p><ul>{scopes}</ul>")
    };
    // The admin scope is not one more line in the list: it hands over the whole server, so it
    // is set apart and spelled out before the operator approves.
    let admin = if page.admin_scopes.is_empty() {
        String::new()
    } else {
        let names: Vec<String> = page
            .admin_scopes
            .iter()
            .map(|s| format!("<code>{}</code>", escape(s)))
            .collect();
        format!(
            "<section class=\"admin\"><h2>Administrator access</h2>\
<p>{names} makes this client an administrator of this searchgate: it could \
read the whole audit trail (every client's searches and sign-ins) and list and remove \
registered clients through the admin API.</p>\
<p><strong>Approve only if you would hand this client the keys to the server.</strong></p>\
</section>",
            names = names.join(", ")
        )
    };
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>Approve {name} – searchgate</title><style>{STYLE}</style></head><body>\
<h1>Allow <strong>{name}</strong> to use searchgate?</h1>\
<p class=\"muted\">Client id <code>{client_id}</code></p>\
{scopes}{admin}\
<p>After you decide, your browser returns to <strong>{host}</strong>.</p>\
<form method=\"post\" action=\"{action}\">\
<input type=\"hidden\" name=\"ticket\" value=\"{ticket}\">\
<div class=\"actions\"><button class=\"approve\" type=\"submit\" name=\"decision\" value=\"approve\">Approve</button>\
<button type=\"submit\" name=\"decision\" value=\"deny\">Deny</button></div></form>\
<p class=\"muted\">searchgate's development authorization server: approving signs you in as the \
local operator.</p></body></html>",
        name = escape(&page.client_name),
        client_id = escape(&page.client_id),
        host = escape(&page.redirect_host),
        action = escape(action),
        ticket = escape(&page.ticket),
    )
}

/// A page explaining why the sign-in cannot continue.
pub fn problem_html(message: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>Sign-in problem – searchgate</title><style>{STYLE}</style></head><body>\
<h1>The sign-in cannot continue</h1><p>{}</p></body></html>",
        escape(message)
    )
}

/// HTML-escapes text for element content and quoted attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_supplied_text_is_escaped() {
        let page = ConsentPage {
            client_name: "<script>alert(1)</script>".into(),
            client_id: "a\"b".into(),
            redirect_host: "x'y".into(),
            scopes: vec!["web-search:read".into()],
            admin_scopes: vec!["<b>admin</b>".into()],
            ticket: "t".into(),
        };
        let html = consent_html(&page, "/idp/authorize");
        assert!(!html.contains("<script>"));
        assert!(html.contains("&lt;script&gt;"));
        assert!(html.contains("a&quot;b"));
        assert!(html.contains("x&#39;y"));
        assert!(
            html.contains("<code>&lt;b&gt;admin&lt;/b&gt;</code>"),
            "admin scope names are escaped too"
        );
    }
}

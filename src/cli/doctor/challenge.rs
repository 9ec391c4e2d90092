//! Step 1: an unauthenticated request of each protocol era gets 401 with a Bearer challenge
//! naming the protected-resource metadata (MCP authorization; RFC 9728 §5.1, RFC 6750 §3),
//! and the `WWW-Authenticate` parser (RFC 9110 §11.6.1) the other steps share.

use reqwest::StatusCode;

use super::{
    Doctor, Step,
    wire::{self, Answer, MODERN, RPC_LIMIT},
};

/// One challenge of a `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Challenge {
    /// The scheme, as sent.
    pub scheme: String,
    /// The auth-params, names as sent, values unquoted.
    pub params: Vec<(String, String)>,
}

impl Challenge {
    /// The value of parameter `name` (names are case-insensitive).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The Bearer challenge among every `WWW-Authenticate` header of `answer`.
///
/// # Errors
/// What is wrong: no header, a header that does not parse, or no Bearer challenge.
pub(super) fn bearer(answer: &Answer) -> Result<Challenge, String> {
    let values: Vec<&str> = answer
        .headers
        .get_all("www-authenticate")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if values.is_empty() {
        return Err("no WWW-Authenticate header".to_owned());
    }
    let mut challenges = Vec::new();
    for value in &values {
        challenges.extend(parse(value).map_err(|e| format!("WWW-Authenticate {value:?}: {e}"))?);
    }
    challenges
        .into_iter()
        .find(|c| c.scheme.eq_ignore_ascii_case("bearer"))
        .ok_or_else(|| {
            format!(
                "no Bearer challenge in WWW-Authenticate {:?}",
                values.join(", ")
            )
        })
}

/// Parses a `WWW-Authenticate` value: challenges are a scheme followed by a token68 or by
/// comma-separated `name=value` params, values being tokens or quoted strings.
///
/// # Errors
/// Where the value stops making sense.
pub(super) fn parse(value: &str) -> Result<Vec<Challenge>, String> {
    let chars: Vec<char> = value.chars().collect();
    let mut at = 0;
    let mut challenges: Vec<Challenge> = Vec::new();
    let skip_space = |at: &mut usize| {
        while chars.get(*at).is_some_and(|c| *c == ' ' || *c == '\t') {
            *at += 1;
        }
    };
    loop {
        while chars.get(at).is_some_and(|c| matches!(c, ' ' | '\t' | ',')) {
            at += 1;
        }
        if at >= chars.len() {
            break;
        }
        let start = at;
        while chars.get(at).is_some_and(|c| is_tchar(*c)) {
            at += 1;
        }
        if at == start {
            return Err(format!("unexpected {:?} at character {at}", chars[at]));
        }
        let token: String = chars[start..at].iter().collect();
        skip_space(&mut at);
        if chars.get(at) == Some(&'=') && !ends_token68(&chars, at) {
            let Some(challenge) = challenges.last_mut() else {
                return Err(format!("parameter {token:?} before any scheme"));
            };
            at += 1;
            skip_space(&mut at);
            let value = if chars.get(at) == Some(&'"') {
                quoted(&chars, &mut at)?
            } else {
                let start = at;
                while chars.get(at).is_some_and(|c| is_tchar(*c)) {
                    at += 1;
                }
                chars[start..at].iter().collect()
            };
            challenge.params.push((token, value));
        } else if chars.get(at) == Some(&'=') {
            // A token68 credential (`Negotiate abc==`): the previous scheme's, not a param.
            while chars.get(at) == Some(&'=') {
                at += 1;
            }
        } else {
            challenges.push(Challenge {
                scheme: token,
                params: Vec::new(),
            });
        }
    }
    Ok(challenges)
}

/// Whether the `=` at `at` ends a token68 (only `=`s, then the end or a comma, follow).
fn ends_token68(chars: &[char], mut at: usize) -> bool {
    while chars.get(at) == Some(&'=') {
        at += 1;
    }
    while chars.get(at).is_some_and(|c| *c == ' ' || *c == '\t') {
        at += 1;
    }
    matches!(chars.get(at), None | Some(','))
}

/// Reads a quoted string starting at the `"` at `at`, undoing `\` escapes.
fn quoted(chars: &[char], at: &mut usize) -> Result<String, String> {
    let mut value = String::new();
    *at += 1;
    loop {
        match chars.get(*at) {
            None => return Err("a quoted string does not end".to_owned()),
            Some('"') => {
                *at += 1;
                return Ok(value);
            }
            Some('\\') => {
                let escaped = chars
                    .get(*at + 1)
                    .ok_or("a quoted string ends in a backslash")?;
                value.push(*escaped);
                *at += 2;
            }
            Some(c) => {
                value.push(*c);
                *at += 1;
            }
        }
    }
}

/// RFC 9110 §5.6.2 token characters.
fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

impl Doctor<'_> {
    /// Step 1: the 401 challenge, for a 2025-11-25 `initialize` (no `MCP-Protocol-Version`
    /// yet, as clients send it) and for a stateless 2026-07-28 request.
    pub(super) async fn challenges(&mut self) {
        let url = self.url.to_string();
        let legacy = self.mcp_post(None).json(&wire::initialize());
        let answer = wire::send(legacy, &url, RPC_LIMIT).await;
        let found = self.check_challenge("challenge-legacy", "a 2025-11-25 initialize", answer);
        self.resource_metadata_url = found;
        let modern = self
            .mcp_post(Some(MODERN))
            .header("mcp-method", "tools/list")
            .json(&wire::modern_tools_list());
        let answer = wire::send(modern, &url, RPC_LIMIT).await;
        let found = self.check_challenge("challenge-modern", "a 2026-07-28 request", answer);
        if self.resource_metadata_url.is_none() {
            self.resource_metadata_url = found;
        }
    }

    /// Records the step and returns the challenge's `resource_metadata` URL when it is usable.
    fn check_challenge(
        &mut self,
        step: &str,
        what: &str,
        answer: Result<Answer, String>,
    ) -> Option<String> {
        let answer = match answer {
            Ok(answer) => answer,
            Err(error) => {
                self.push(Step::fail(
                    step,
                    format!("cannot reach {}: {error}", self.url),
                    "Start the server, and give the URL clients use (its scheme, host, port and path must reach the MCP endpoint).",
                ));
                return None;
            }
        };
        if answer.status != StatusCode::UNAUTHORIZED {
            let detail = format!(
                "{what} without a token got HTTP {} (expected 401)",
                answer.status
            );
            let fix = match answer.status.as_u16() {
                200..=299 => {
                    "Require a token on the MCP endpoint (searchgate: SEARCHGATE_AUTH__PROVIDER=embedded, oidc or scalekit), so clients learn where to sign in from the 401."
                }
                300..=399 => {
                    "Give the URL the redirect points to: clients do not follow redirects for a POST."
                }
                403 => {
                    "The request was refused before authentication: add the URL's host to SEARCHGATE_SERVER__ALLOWED_HOSTS (and check the proxy forwards the Host header)."
                }
                404 | 405 => {
                    "Give the MCP endpoint's exact URL (searchgate: public_url + mcp_path, /web-search/mcp by default)."
                }
                _ => {
                    "Answer a request without a token with 401 and WWW-Authenticate: Bearer resource_metadata=\"…\" (MCP authorization, RFC 9728 §5.1)."
                }
            };
            self.push(Step::fail(step, detail, fix));
            return None;
        }
        let fix_header = "Send WWW-Authenticate: Bearer resource_metadata=\"<the protected-resource metadata URL>\" with every 401 (RFC 9728 §5.1).";
        let challenge = match bearer(&answer) {
            Ok(challenge) => challenge,
            Err(problem) => {
                self.push(Step::fail(step, format!("401, but {problem}"), fix_header));
                return None;
            }
        };
        let Some(metadata) = challenge.param("resource_metadata") else {
            self.push(Step::fail(
                step,
                "401 with a Bearer challenge that has no resource_metadata",
                fix_header,
            ));
            return None;
        };
        if !url::Url::parse(metadata).is_ok_and(|u| matches!(u.scheme(), "http" | "https")) {
            self.push(Step::fail(
                step,
                format!("resource_metadata {metadata:?} is not an absolute URL"),
                fix_header,
            ));
            return None;
        }
        let mut detail = format!("{what}: 401, Bearer resource_metadata=\"{metadata}\"");
        if let Some(scope) = challenge.param("scope") {
            detail.push_str(&format!(", scope=\"{scope}\""));
        }
        if let Some(error) = challenge.param("error") {
            // RFC 6750 §3.1: a request without credentials should get no error code.
            detail.push_str(&format!(
                " (error=\"{error}\" on a request without a token)"
            ));
        }
        self.push(Step::pass(step, detail));
        Some(metadata.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn challenges_parse_as_rfc_9110_writes_them() {
        let cases: &[(&str, Vec<Challenge>, &str)] = &[
            (
                r#"Bearer resource_metadata="https://s.example/.well-known/oauth-protected-resource/mcp", scope="web-search:read""#,
                vec![Challenge {
                    scheme: "Bearer".into(),
                    params: params(&[
                        (
                            "resource_metadata",
                            "https://s.example/.well-known/oauth-protected-resource/mcp",
                        ),
                        ("scope", "web-search:read"),
                    ]),
                }],
                "searchgate's own challenge",
            ),
            (
                r#"Basic realm="a, b", Bearer error=invalid_token,error_description="say \"no\"""#,
                vec![
                    Challenge {
                        scheme: "Basic".into(),
                        params: params(&[("realm", "a, b")]),
                    },
                    Challenge {
                        scheme: "Bearer".into(),
                        params: params(&[
                            ("error", "invalid_token"),
                            ("error_description", "say \"no\""),
                        ]),
                    },
                ],
                "two challenges, a comma inside quotes, a token value, escapes",
            ),
            (
                "Negotiate abc==, bearer  realm = \"x\"",
                vec![
                    Challenge {
                        scheme: "Negotiate".into(),
                        params: vec![],
                    },
                    Challenge {
                        scheme: "bearer".into(),
                        params: params(&[("realm", "x")]),
                    },
                ],
                "a token68 is no parameter; spaces around = are allowed",
            ),
        ];
        for (value, expected, why) in cases {
            assert_eq!(&parse(value).expect(why), expected, "{why}");
        }
    }

    #[test]
    fn broken_challenges_are_errors() {
        for (value, why) in [
            (r#"Bearer realm="open"#, "an unterminated quoted string"),
            (r#"realm="x""#, "a parameter before any scheme"),
            (r#"Bearer @"#, "a character that is no token"),
        ] {
            assert!(parse(value).is_err(), "{why}");
        }
    }

    #[test]
    fn parameter_names_match_whatever_their_case() {
        let challenge = &parse(r#"Bearer Resource_Metadata="u""#).unwrap()[0];
        assert_eq!(challenge.param("resource_metadata"), Some("u"));
    }
}

//! Step 3, second part: whether the endpoints the authorization server's metadata names answer
//! as clients need (an answer, not a missing route or a server error), probed without side
//! effects: nothing is registered and no token issued.

use reqwest::{StatusCode, header::CONTENT_TYPE};
use serde_json::Value;

use super::{
    Doctor, Step,
    wire::{self, Answer, METADATA_LIMIT},
};

impl Doctor<'_> {
    /// A GET without parameters: an error page or a redirect to a sign-in page is an answer;
    /// a missing route or a broken server is not.
    pub(super) async fn check_authorization_endpoint(&mut self) {
        let step = "as-authorization-endpoint";
        let Some(url) = self.as_field("authorization_endpoint") else {
            self.push(Step::fail(
                step,
                "the metadata has no authorization_endpoint",
                "Publish authorization_endpoint in the authorization server's metadata (RFC 8414 §2).",
            ));
            return;
        };
        let answer = self.get(&url).await;
        let verdict = endpoint_verdict(&answer, &[404, 405]);
        self.record_endpoint(step, &url, answer, verdict, "GET without parameters");
    }

    /// A POST of a grant without its code or client: an OAuth error (4xx with a JSON `error`),
    /// not a missing route.
    pub(super) async fn check_token_endpoint(&mut self) {
        let step = "as-token-endpoint";
        let Some(url) = self.as_field("token_endpoint") else {
            self.push(Step::fail(
                step,
                "the metadata has no token_endpoint",
                "Publish token_endpoint in the authorization server's metadata (RFC 8414 §2).",
            ));
            return;
        };
        let request = self
            .http
            .post(&url)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body("grant_type=authorization_code");
        let answer = wire::send(request, &url, METADATA_LIMIT).await;
        let mut verdict = endpoint_verdict(&answer, &[404, 405]);
        if let (Ok(answer), Verdict::Answers) = (&answer, &verdict) {
            let is_oauth_error = answer.status.is_client_error()
                && answer.json().is_some_and(|b| b.get("error").is_some());
            if !is_oauth_error {
                verdict =
                    Verdict::Odd("an OAuth error (4xx with a JSON error member, RFC 6749 §5.2)");
            }
        }
        self.record_endpoint(step, &url, answer, verdict, "POST of a grant without code");
    }

    /// A JSON array, which no registration endpoint can accept (RFC 7591 §2 metadata is an
    /// object): it must answer (400), and nothing is registered.
    pub(super) async fn check_registration_endpoint(&mut self) {
        let step = "as-registration-endpoint";
        let Some(url) = self.as_field("registration_endpoint") else {
            self.push(Step::skip(
                step,
                "the metadata names no registration_endpoint",
            ));
            return;
        };
        let request = self
            .http
            .post(&url)
            .header(CONTENT_TYPE, "application/json")
            .body("[]");
        let answer = wire::send(request, &url, METADATA_LIMIT).await;
        let mut verdict = endpoint_verdict(&answer, &[404, 405]);
        if let Ok(answer) = &answer
            && matches!(answer.status.as_u16(), 401 | 403)
        {
            verdict = Verdict::Odd(
                "open registration: it asks for an initial access token, which MCP clients do not have",
            );
        }
        self.record_endpoint(step, &url, answer, verdict, "POST of a JSON array");
    }

    /// GET: 200 JSON with `keys`.
    pub(super) async fn check_jwks(&mut self) {
        let step = "as-jwks";
        let Some(url) = self.as_field("jwks_uri") else {
            self.push(Step::skip(step, "the metadata names no jwks_uri"));
            return;
        };
        let answer = self.get(&url).await;
        let mut verdict = endpoint_verdict(&answer, &[]);
        if let (Ok(answer), Verdict::Answers) = (&answer, &verdict) {
            let keys = answer
                .json()
                .and_then(|b| b.get("keys").and_then(Value::as_array).map(Vec::len));
            verdict = match (answer.status, keys) {
                (StatusCode::OK, Some(n)) if n > 0 => Verdict::Answers,
                _ => Verdict::Broken("200 with a JSON key set that has keys"),
            };
        }
        self.record_endpoint(step, &url, answer, verdict, "GET");
    }

    fn record_endpoint(
        &mut self,
        step: &str,
        url: &str,
        answer: Result<Answer, String>,
        verdict: Verdict,
        what: &str,
    ) {
        let answer = match answer {
            Ok(answer) => answer,
            Err(error) => {
                self.push(Step::fail(
                    step,
                    format!("cannot reach {url}: {error}"),
                    "Make the endpoint the authorization server's metadata names reachable from where clients run.",
                ));
                return;
            }
        };
        let seen = format!("{what} {url}: HTTP {}", answer.status);
        match verdict {
            Verdict::Answers => self.push(Step::pass(step, seen)),
            Verdict::Odd(expected) => self.push(Step::warn(
                step,
                format!("{seen} ({})", answer.oauth_error()),
                format!("Expected {expected}; check the endpoint the metadata names."),
            )),
            Verdict::Broken(expected) => self.push(Step::fail(
                step,
                format!("{seen} ({})", answer.oauth_error()),
                format!("Expected {expected}: make the metadata name the endpoint's real URL, and check the authorization server's logs."),
            )),
        }
    }
}

/// How an endpoint answered.
enum Verdict {
    Answers,
    /// Answers, but not as clients expect.
    Odd(&'static str),
    /// Not usable: the expectation.
    Broken(&'static str),
}

/// No answer, a server error, or one of `missing` statuses is broken.
fn endpoint_verdict(answer: &Result<Answer, String>, missing: &[u16]) -> Verdict {
    match answer {
        Ok(answer)
            if answer.status.is_server_error() || missing.contains(&answer.status.as_u16()) =>
        {
            Verdict::Broken("an answer from the endpoint, not a missing route or a server error")
        }
        _ => Verdict::Answers,
    }
}

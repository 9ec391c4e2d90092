//! The authorization endpoint: the request is checked (client and client policy, redirect URI,
//! PKCE S256, resource, scopes), with every error shown on the page; the operator is shown a
//! consent page, and the decision comes back as a form post carrying a signed, short-lived
//! ticket, so no pending request is held in memory and any replica can take the decision. Each
//! ticket decides once: its id is recorded in the store when it is used.

use std::collections::HashMap;

use jsonwebtoken::{Algorithm, Validation};
use serde::{Deserialize, Serialize};
use url::Url;

use super::{EmbeddedAuthorizationServer, Lookup, keys, now};
use crate::domain::{
    auth::canonical,
    clients::redirect_uri_registered,
    issuer::{ClientRecord, CodeRecord},
};

/// How long a consent page may stay open before its form expires.
const TICKET_TTL_SECS: i64 = 600;
/// The JWT type of consent tickets (never accepted as an access token).
const TICKET_TYP: &str = "consent+jwt";

/// What the authorization endpoint answers.
#[derive(Debug)]
pub enum Answer {
    /// Ask the operator.
    Consent(ConsentPage),
    /// Send the browser back to the client.
    Redirect(Url),
    /// An error that must not be sent to the redirect URI (any error before the operator has
    /// decided, a broken or used form): shown on the page.
    Problem {
        /// 400 for the request's fault, 403 for a denied client, 503 when the store is down.
        status: u16,
        /// What went wrong, for the person in front of the browser.
        message: String,
    },
}

/// What the consent page shows.
#[derive(Debug)]
pub struct ConsentPage {
    /// The client's name, or its id.
    pub client_name: String,
    /// The client id.
    pub client_id: String,
    /// Where the browser goes afterwards.
    pub redirect_host: String,
    /// The ordinary scopes asked for.
    pub scopes: Vec<String>,
    /// The operator-only scopes asked for (the admin scope), which the page sets apart and
    /// explains, since they hand the client the whole server.
    pub admin_scopes: Vec<String>,
    /// The signed ticket the form posts back.
    pub ticket: String,
}

/// The authorization request, carried through the consent form.
#[derive(Debug, Serialize, Deserialize)]
struct Ticket {
    iss: String,
    aud: String,
    exp: i64,
    /// A random id, recorded when the ticket is used: each ticket decides once.
    jti: String,
    client_id: String,
    redirect_uri: String,
    redirect_uri_sent: bool,
    scope: String,
    state: Option<String>,
    code_challenge: String,
    resource: String,
}

fn problem(status: u16, message: impl Into<String>) -> Answer {
    Answer::Problem {
        status,
        message: message.into(),
    }
}

impl EmbeddedAuthorizationServer {
    /// Checks an authorization request (`GET /idp/authorize`).
    pub async fn authorize(&self, params: &HashMap<String, String>) -> Answer {
        let get = |name: &str| {
            params
                .get(name)
                .map(String::as_str)
                .filter(|v| !v.is_empty())
        };
        let Some(client_id) = get("client_id") else {
            return problem(400, "The request names no client (client_id is missing).");
        };
        let client = match self.find_client(client_id).await {
            Lookup::Found(client) => client,
            Lookup::Unknown(why) => return problem(400, why),
            // Shown, never redirected: the client is not one this server answers.
            Lookup::Denied(why) => return problem(403, sentence(&why)),
            Lookup::Unavailable(why) => return problem(503, why),
        };
        let sent_redirect = get("redirect_uri").is_some();
        let redirect_uri = match get("redirect_uri") {
            Some(uri) if redirect_uri_registered(&client.redirect_uris, uri) => uri.to_owned(),
            Some(_) => {
                return problem(
                    400,
                    "The redirect_uri is not one this client registered, so the answer cannot \
                     be sent back to it.",
                );
            }
            None if client.redirect_uris.len() == 1 => client.redirect_uris[0].clone(),
            None => return problem(400, "The request has no redirect_uri."),
        };
        // RFC 6749 §4.1.2.1 would send the remaining errors back to the redirect URI. But every
        // client here registered itself (at /oauth/register, or by a metadata document at a URL
        // of its choosing), so its redirect URI is a stranger's: redirecting there before the
        // operator has acted would make this server an open redirector (RFC 9700 §4.11.2).
        // The errors are shown on the page; only the operator's decision is redirected.
        let state = get("state").map(str::to_owned);
        let refuse = |error: &str, description: &str| {
            problem(
                400,
                format!("The client's request is not valid ({error}): {description}."),
            )
        };
        if get("response_type") != Some("code") {
            return refuse(
                "unsupported_response_type",
                "only response_type=code is supported",
            );
        }
        if !client.grant_types.iter().any(|g| g == "authorization_code") {
            return refuse(
                "unauthorized_client",
                "the client did not register the authorization_code grant",
            );
        }
        let Some(challenge) = get("code_challenge") else {
            return refuse("invalid_request", "PKCE is required: send a code_challenge");
        };
        if get("code_challenge_method") != Some("S256") {
            return refuse("invalid_request", "code_challenge_method must be S256");
        }
        if !(43..=128).contains(&challenge.len())
            || !challenge
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return refuse(
                "invalid_request",
                "code_challenge must be a base64url SHA-256 (43 characters)",
            );
        }
        let resource = match self.check_resource(get("resource")) {
            Ok(resource) => resource,
            Err(description) => return refuse("invalid_target", &description),
        };
        let scope = match self.grantable_scope(get("scope")) {
            Ok(scope) => scope,
            Err(description) => return refuse("invalid_scope", &description),
        };
        let ticket = Ticket {
            iss: self.config.issuer.clone(),
            aud: self.ticket_audience(),
            exp: now() + TICKET_TTL_SECS,
            jti: keys::random_string(16),
            client_id: client.client_id.clone(),
            redirect_uri: redirect_uri.clone(),
            redirect_uri_sent: sent_redirect,
            scope: scope.clone(),
            state,
            code_challenge: challenge.to_owned(),
            resource,
        };
        let signed = match self.sign_ticket(&ticket) {
            Ok(signed) => signed,
            Err(error) => {
                tracing::error!(error = %format!("{error:#}"), "cannot sign a consent ticket");
                return problem(503, "The server cannot sign in right now; try again.");
            }
        };
        Answer::Consent(ConsentPage {
            client_name: display_name(&client),
            client_id: client.client_id,
            redirect_host: Url::parse(&redirect_uri)
                .ok()
                .and_then(|u| u.host_str().map(str::to_owned))
                .unwrap_or_default(),
            scopes: scope
                .split_whitespace()
                .filter(|s| !self.is_operator_scope(s))
                .map(str::to_owned)
                .collect(),
            admin_scopes: scope
                .split_whitespace()
                .filter(|s| self.is_operator_scope(s))
                .map(str::to_owned)
                .collect(),
            ticket: signed,
        })
    }

    /// Takes the operator's decision (`POST /idp/authorize`).
    pub async fn decide(&self, ticket: &str, approve: bool) -> Answer {
        let Some(ticket) = self.read_ticket(ticket).await else {
            return problem(
                400,
                "This consent form is not valid or has expired. Start the sign-in again from \
                 your MCP client.",
            );
        };
        // Spent before anything else, approve or deny, in the database so that no replica
        // takes a second decision on the same form.
        match self.store.spend_ticket(&ticket.jti, ticket.exp).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(client_id = %ticket.client_id, "refused a consent form sent again");
                return problem(
                    400,
                    "This consent form was already used. Start the sign-in again from your MCP \
                     client.",
                );
            }
            Err(error) => {
                tracing::error!(error = %format!("{error:#}"), "cannot record a consent decision");
                return problem(
                    503,
                    "The server cannot record the decision right now; try again.",
                );
            }
        }
        if !self.client_allowed(&ticket.client_id) {
            return problem(403, sentence(super::DENIED));
        }
        if !approve {
            return Answer::Redirect(self.redirect(
                &ticket.redirect_uri,
                &[
                    ("error", "access_denied"),
                    ("error_description", "the operator denied the request"),
                ],
                ticket.state.as_deref(),
            ));
        }
        let code = keys::random_string(32);
        let record = CodeRecord {
            code_hash: keys::sha256_hex(&code),
            client_id: ticket.client_id.clone(),
            redirect_uri: if ticket.redirect_uri_sent {
                ticket.redirect_uri.clone()
            } else {
                String::new()
            },
            code_challenge: ticket.code_challenge,
            scope: ticket.scope,
            resource: ticket.resource,
            subject: self.config.subject.clone(),
            expires_at: now() + i64::try_from(self.config.code_ttl.as_secs()).unwrap_or(60),
        };
        if let Err(error) = self.store.add_code(&record).await {
            tracing::error!(error = %format!("{error:#}"), "cannot store an authorization code");
            return problem(
                503,
                "The server cannot store the sign-in right now; try again.",
            );
        }
        tracing::info!(client_id = %ticket.client_id, scope = %record.scope, "the operator approved a client");
        Answer::Redirect(self.redirect(
            &ticket.redirect_uri,
            &[("code", &code)],
            ticket.state.as_deref(),
        ))
    }

    /// `resource`, when given, must be searchgate's (RFC 8707); the canonical resource is
    /// what tokens name.
    pub(super) fn check_resource(&self, resource: Option<&str>) -> Result<String, String> {
        match resource {
            None => Ok(self.config.resource.clone()),
            Some(asked) => {
                let asked = canonical(asked);
                if asked == self.config.resource || self.config.audiences.contains(&asked) {
                    Ok(self.config.resource.clone())
                } else {
                    Err(format!(
                        "this server issues tokens for {} only",
                        self.config.resource
                    ))
                }
            }
        }
    }

    /// The scopes to grant for a request: those asked for (all when none), each one offered.
    /// `offline_access` asks for a refresh token (always issued) and `openid` for nothing
    /// more (no ID tokens here); both are accepted and left out of the grant.
    pub fn grantable_scope(&self, asked: Option<&str>) -> Result<String, String> {
        self.scope_from(asked, true)
    }

    /// As [`Self::grantable_scope`]; `privileged` also offers the operator-only scopes (the
    /// admin scope), which only the consent page and `searchgate token` may grant.
    pub(super) fn scope_from(
        &self,
        asked: Option<&str>,
        privileged: bool,
    ) -> Result<String, String> {
        let asked: Vec<&str> = asked
            .unwrap_or_default()
            .split_whitespace()
            .filter(|s| !matches!(*s, "offline_access" | "openid"))
            .collect();
        let offered = |s: &str| {
            self.config.scopes.iter().any(|o| o == s)
                || (privileged && self.config.operator_scopes.iter().any(|o| o == s))
        };
        if let Some(unknown) = asked.iter().find(|s| !offered(s)) {
            return Err(format!(
                "scope {:?} is not offered; this server offers {}",
                unknown.chars().take(64).collect::<String>(),
                self.config.scopes.join(" ")
            ));
        }
        let mut granted: Vec<&str> = Vec::new();
        for scope in asked {
            if !granted.contains(&scope) {
                granted.push(scope);
            }
        }
        Ok(if granted.is_empty() {
            self.config.scopes.join(" ")
        } else {
            granted.join(" ")
        })
    }

    /// Whether `scope` is operator-only (the admin scope) rather than an ordinary offered one.
    fn is_operator_scope(&self, scope: &str) -> bool {
        self.config.operator_scopes.iter().any(|o| o == scope)
            && !self.config.scopes.iter().any(|o| o == scope)
    }

    /// `redirect_uri` with `pairs`, `state` and `iss` (RFC 9207) added to its query.
    fn redirect(&self, redirect_uri: &str, pairs: &[(&str, &str)], state: Option<&str>) -> Url {
        let mut url = Url::parse(redirect_uri).expect("registered redirect URIs are absolute");
        {
            let mut query = url.query_pairs_mut();
            for (name, value) in pairs {
                query.append_pair(name, value);
            }
            if let Some(state) = state {
                query.append_pair("state", state);
            }
            query.append_pair("iss", &self.config.issuer);
        }
        url
    }

    fn ticket_audience(&self) -> String {
        format!("{}/authorize", self.config.issuer)
    }

    fn sign_ticket(&self, ticket: &Ticket) -> anyhow::Result<String> {
        self.current_signer()?.sign(TICKET_TYP, ticket)
    }

    async fn read_ticket(&self, ticket: &str) -> Option<Ticket> {
        let header = jsonwebtoken::decode_header(ticket).ok()?;
        if header.typ.as_deref() != Some(TICKET_TYP) || header.alg != Algorithm::RS256 {
            return None;
        }
        let key = self.jwt.keys().key_for(header.kid.as_deref()).await.ok()?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.leeway = 0;
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&[self.ticket_audience()]);
        jsonwebtoken::decode::<Ticket>(ticket, &key.key, &validation)
            .ok()
            .map(|data| data.claims)
    }
}

/// `text` as a sentence for the page: capitalised, with a full stop.
fn sentence(text: &str) -> String {
    let mut chars = text.chars();
    let first: String = chars
        .next()
        .map(|c| c.to_uppercase().collect())
        .unwrap_or_default();
    format!("{first}{}.", chars.as_str().trim_end_matches('.'))
}

fn display_name(client: &ClientRecord) -> String {
    client
        .client_name
        .clone()
        .unwrap_or_else(|| client.client_id.clone())
}

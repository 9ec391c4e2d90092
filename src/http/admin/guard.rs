//! Who may use the admin API: a verified token of a client that is not denied, carrying the
//! admin scope. With authentication off nobody may.

use std::sync::Arc;

use poem::{Request, http::StatusCode};

use crate::{
    domain::{
        auth::{AuthorizationServer, Principal, ScopePolicy},
        clients::{ClientPolicy, ClientVerdict},
    },
    http::{
        bearer::{Challenge, authenticate, insufficient_scope, no_client, refusal},
        error::ErrorBody,
    },
};

/// Who may use the admin API.
pub struct AdminGuard {
    /// The verifier; `None` when authentication is off (then nothing passes).
    pub auth: Option<Arc<dyn AuthorizationServer>>,
    /// The admin scope.
    pub scope: String,
    /// Applies scope implications.
    pub scopes: Arc<ScopePolicy>,
    /// The challenge parameters.
    pub challenge: Challenge,
    /// The client policy: a denied client's tokens are refused here too.
    pub policy: Option<ClientPolicy>,
}

/// A refusal by [`AdminGuard`]: the answer, and its audit reason code when it is not the one
/// its status usually means.
pub(super) struct Refusal {
    /// What to send.
    pub(super) answer: poem::Error,
    /// The audit row's reason code, when not the status's usual one.
    pub(super) reason: Option<&'static str>,
}

impl Refusal {
    fn new(answer: poem::Response, reason: Option<&'static str>) -> Self {
        Self {
            answer: poem::Error::from_response(answer),
            reason,
        }
    }
}

impl AdminGuard {
    /// The admin, or the refusal to send.
    pub(super) async fn check(&self, req: &Request) -> Result<Principal, Refusal> {
        let Some(auth) = &self.auth else {
            let body = ErrorBody::new(
                "access_denied",
                "the admin API needs authentication; it is off (auth.provider = none)",
            );
            return Err(Refusal::new(
                body.response(StatusCode::FORBIDDEN),
                Some("admin_unavailable"),
            ));
        };
        let principal = authenticate(
            auth.as_ref(),
            &self.challenge,
            req.headers(),
            req.uri().query(),
        )
        .await
        .map_err(|response| Refusal::new(response, None))?;
        let verdict = self
            .policy
            .as_ref()
            .map_or(ClientVerdict::Allowed, |policy| {
                policy.judge(principal.client_id.as_deref())
            });
        if verdict == ClientVerdict::Unnamed {
            let error = no_client();
            return Err(Refusal::new(
                refusal(&self.challenge, &error),
                Some(error.code()),
            ));
        }
        if verdict == ClientVerdict::Denied {
            return Err(Refusal::new(
                self.challenge.response(
                    StatusCode::FORBIDDEN,
                    Some((
                        "access_denied",
                        "this client is not allowed to use this server; ask its operator",
                    )),
                    &self.scope,
                ),
                Some("client_denied"),
            ));
        }
        if !self
            .scopes
            .satisfies(&principal.scopes, std::slice::from_ref(&self.scope))
        {
            return Err(Refusal::new(
                insufficient_scope(
                    &self.challenge,
                    &self.scope,
                    "this operation needs the admin scope",
                ),
                None,
            ));
        }
        Ok(principal)
    }
}

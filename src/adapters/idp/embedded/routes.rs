//! The HTTP face of the embedded authorization server, mounted under `/idp` by startup.

use std::collections::HashMap;

use poem::{
    Body, EndpointExt, IntoResponse, Request, Response, Route, handler,
    http::{HeaderValue, StatusCode, header},
    web::Data,
};

use super::{
    EmbeddedAuthorizationServer,
    authorize::Answer,
    consent::{PAGE_HEADERS, consent_html, problem_html},
    token::OAuthError,
};

/// Largest form or registration body read.
const MAX_BODY_BYTES: usize = 16 * 1024;

impl EmbeddedAuthorizationServer {
    /// The consent page (`/idp/authorize`): for the operator's browser only, so it is mounted
    /// without CORS.
    pub fn authorize_endpoint(&self) -> poem::endpoint::BoxEndpoint<'static, Response> {
        poem::get(authorize_get)
            .post(authorize_post)
            .data(self.clone())
            .boxed()
    }

    /// The other routes under the issuer's path (`/idp`): token, jwks and the
    /// discovery documents, which browser-based clients call cross-origin.
    pub fn endpoint(&self) -> poem::endpoint::BoxEndpoint<'static, Response> {
        Route::new()
            .at("/token", poem::post(token))
            .at("/jwks", poem::get(jwks))
            .at("/.well-known/openid-configuration", poem::get(metadata))
            .at(
                "/.well-known/oauth-authorization-server",
                poem::get(metadata),
            )
            .data(self.clone())
            .boxed()
    }

    /// The metadata document alone, for the RFC 8414 and OIDC path-suffixed well-known URLs on
    /// the root (`/.well-known/oauth-authorization-server/idp`).
    pub fn metadata_endpoint(&self) -> poem::endpoint::BoxEndpoint<'static, Response> {
        poem::get(metadata).data(self.clone()).boxed()
    }
}

#[handler]
fn metadata(idp: Data<&EmbeddedAuthorizationServer>) -> Response {
    json(StatusCode::OK, &idp.metadata_document())
        .with_header(header::CACHE_CONTROL, "public, max-age=300")
        .into_response()
}

#[handler]
async fn jwks(idp: Data<&EmbeddedAuthorizationServer>) -> Response {
    match idp.published_keys().await {
        Ok(document) => json(StatusCode::OK, &document)
            .with_header(header::CACHE_CONTROL, "public, max-age=60")
            .into_response(),
        Err(error) => {
            tracing::error!(error = %format!("{error:#}"), "cannot read the signing keys");
            json(
                StatusCode::SERVICE_UNAVAILABLE,
                &serde_json::json!({"error": "temporarily_unavailable", "error_description": "the signing keys cannot be read"}),
            )
            .into_response()
        }
    }
}

#[handler]
async fn authorize_get(req: &Request, idp: Data<&EmbeddedAuthorizationServer>) -> Response {
    let params = match parse_params(req.uri().query().unwrap_or_default().as_bytes()) {
        Ok(params) => params,
        Err(message) => return page(StatusCode::BAD_REQUEST, problem_html(&message)),
    };
    let action = format!("{}/authorize", idp.issuer_path());
    match idp.authorize(&params).await {
        Answer::Consent(consent) => page(StatusCode::OK, consent_html(&consent, &action)),
        answer => answer_response(answer, StatusCode::FOUND),
    }
}

#[handler]
async fn authorize_post(
    req: &Request,
    body: Body,
    idp: Data<&EmbeddedAuthorizationServer>,
) -> Response {
    // The consent form is only ever posted by the page itself: refuse cross-site posts, which
    // would let another site approve on the operator's behalf.
    if !same_origin(req, &idp.config.issuer) {
        tracing::warn!(origin = ?req.headers().get(header::ORIGIN), "refused a cross-site consent post");
        return page(
            StatusCode::FORBIDDEN,
            problem_html("This form can only be sent from searchgate's own consent page."),
        );
    }
    let form = match read_form(req, body).await {
        Ok(form) => form,
        Err(message) => return page(StatusCode::BAD_REQUEST, problem_html(&message)),
    };
    let approve = match form.get("decision").map(String::as_str) {
        Some("approve") => true,
        Some("deny") => false,
        _ => {
            return page(
                StatusCode::BAD_REQUEST,
                problem_html("The form must say approve or deny."),
            );
        }
    };
    let ticket = form.get("ticket").map(String::as_str).unwrap_or_default();
    answer_response(idp.decide(ticket, approve).await, StatusCode::SEE_OTHER)
}

#[handler]
async fn token(req: &Request, body: Body, idp: Data<&EmbeddedAuthorizationServer>) -> Response {
    let form = match read_form(req, body).await {
        Ok(form) => form,
        Err(message) => {
            return oauth_error(&OAuthError {
                status: 400,
                basic_challenge: false,
                error: "invalid_request",
                error_description: message,
            });
        }
    };
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match idp.token(&form, authorization).await {
        Ok(answer) => json(StatusCode::OK, &answer)
            .with_header(header::CACHE_CONTROL, "no-store")
            .with_header(header::PRAGMA, "no-cache")
            .into_response(),
        Err(error) => oauth_error(&error),
    }
}

fn answer_response(answer: Answer, redirect_status: StatusCode) -> Response {
    match answer {
        Answer::Redirect(url) => Response::builder()
            .status(redirect_status)
            .header(header::LOCATION, url.as_str())
            .header(header::CACHE_CONTROL, "no-store")
            .finish(),
        Answer::Problem { status, message } => page(
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
            problem_html(&message),
        ),
        Answer::Consent(_) => page(
            StatusCode::INTERNAL_SERVER_ERROR,
            problem_html("unexpected consent"),
        ),
    }
}

fn page(status: StatusCode, html: String) -> Response {
    let mut response = Response::builder()
        .status(status)
        .content_type("text/html; charset=utf-8")
        .body(html);
    for (name, value) in PAGE_HEADERS {
        response
            .headers_mut()
            .insert(name, HeaderValue::from_static(value));
    }
    response
}

fn json(status: StatusCode, value: &impl serde::Serialize) -> Response {
    Response::builder()
        .status(status)
        .content_type("application/json")
        .body(serde_json::to_vec(value).unwrap_or_default())
}

fn oauth_error(error: &OAuthError) -> Response {
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut response = json(status, error);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if error.basic_challenge {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"searchgate\""),
        );
    }
    response
}

fn content_type_is(req: &Request, expected: &str) -> bool {
    req.content_type().is_some_and(|ct| {
        ct.split(';')
            .next()
            .is_some_and(|m| m.trim().eq_ignore_ascii_case(expected))
    })
}

async fn read_form(req: &Request, body: Body) -> Result<HashMap<String, String>, String> {
    if !content_type_is(req, "application/x-www-form-urlencoded") {
        return Err("send the parameters as application/x-www-form-urlencoded".to_owned());
    }
    let bytes = body
        .into_bytes_limit(MAX_BODY_BYTES)
        .await
        .map_err(|_| format!("the body exceeds {MAX_BODY_BYTES} bytes"))?;
    parse_params(&bytes)
}

/// Form or query parameters; OAuth forbids sending one twice (RFC 6749 §3.1).
fn parse_params(raw: &[u8]) -> Result<HashMap<String, String>, String> {
    let mut params = HashMap::new();
    for (name, value) in url::form_urlencoded::parse(raw) {
        if params
            .insert(name.clone().into_owned(), value.into_owned())
            .is_some()
        {
            return Err(format!(
                "the parameter {:?} is sent more than once",
                name.chars().take(64).collect::<String>()
            ));
        }
    }
    Ok(params)
}

/// Whether a form post comes from a page of this origin: `Origin` (when sent) names the host
/// the request was sent to or the issuer's (behind a proxy that rewrites `Host`), and
/// `Sec-Fetch-Site` (when sent) does not say cross-site.
fn same_origin(req: &Request, issuer: &str) -> bool {
    let headers = req.headers();
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
        && !matches!(site, "same-origin" | "none")
    {
        return false;
    }
    match headers.get(header::ORIGIN) {
        None => true,
        Some(origin) => {
            let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
            let origin_host = origin
                .to_str()
                .ok()
                .and_then(|o| url::Url::parse(o).ok())
                .and_then(|u| {
                    u.host_str().map(|h| match u.port() {
                        Some(port) => format!("{h}:{port}"),
                        None => h.to_owned(),
                    })
                });
            let issuer_origin = url::Url::parse(issuer).map(|u| u.origin().ascii_serialization());
            // RFC 6454: the scheme is part of the origin, so `https://host` is not `http://host`.
            let same_scheme = origin
                .to_str()
                .ok()
                .and_then(|o| o.split_once("://"))
                .map(|p| p.0)
                == issuer.split_once("://").map(|p| p.0);
            let same_host = same_scheme
                && host.is_some_and(|h| {
                    origin_host
                        .as_deref()
                        .is_some_and(|o| o.eq_ignore_ascii_case(h))
                });
            same_host || origin.to_str().ok() == issuer_origin.ok().as_deref()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_parameters_are_refused() {
        assert!(parse_params(b"a=1&b=2").is_ok());
        assert!(parse_params(b"a=1&a=2").is_err());
    }
}

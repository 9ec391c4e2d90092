//! Client ID Metadata Documents: a client whose id is an https URL describes itself in a JSON
//! document at that URL. Fetching a URL a stranger chose is a server-side request forgery risk,
//! so the fetch is guarded: https only, public addresses only (checked on the resolved
//! addresses the connection uses), no proxy, no redirects, 5 KB, 10 s, a few fetches at a time;
//! good documents are cached.

use std::{sync::Arc, time::Duration};

use moka::future::Cache;
use serde::Deserialize;
use url::Url;

use super::Lookup;
use crate::{
    adapters::{
        http_client::read_limited,
        public_web::{HostRefused, PublicOnly, check_host, has_no_public_address},
    },
    domain::{
        clients::{ClientError, ClientMetadata, RegistrationRequest},
        issuer::ClientRecord,
    },
};

const MAX_DOCUMENT_BYTES: usize = 5 * 1024;
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
const CACHE_TTL: Duration = Duration::from_secs(600);
/// Most documents fetched at once (each may take up to `FETCH_TIMEOUT`).
const MAX_CONCURRENT_FETCHES: usize = 4;

/// Fetches and caches metadata documents.
#[derive(Clone)]
pub struct CimdResolver {
    http: reqwest::Client,
    cache: Cache<String, ClientRecord>,
    fetches: Arc<tokio::sync::Semaphore>,
    /// Documents answered in place of a fetch, by URL: unit tests cannot reach a public host.
    #[cfg(test)]
    pub(super) served: Arc<std::sync::Mutex<std::collections::HashMap<String, String>>>,
}

#[derive(Deserialize)]
struct Document {
    client_id: String,
    #[serde(flatten)]
    registration: RegistrationFields,
}

#[derive(Deserialize)]
struct RegistrationFields {
    redirect_uris: Option<Vec<String>>,
    client_name: Option<String>,
    grant_types: Option<Vec<String>>,
    response_types: Option<Vec<String>>,
    token_endpoint_auth_method: Option<String>,
}

impl CimdResolver {
    pub fn new() -> Self {
        let http = reqwest::Client::builder()
            .user_agent(concat!("searchgate/", env!("CARGO_PKG_VERSION")))
            .https_only(true)
            // A proxy would resolve the name itself, past the public-address check.
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(FETCH_TIMEOUT)
            .dns_resolver(PublicOnly)
            .build()
            .expect("a static client configuration is valid");
        Self {
            http,
            cache: Cache::builder()
                .max_capacity(1_000)
                .time_to_live(CACHE_TTL)
                .build(),
            fetches: Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT_FETCHES)),
            #[cfg(test)]
            served: Arc::default(),
        }
    }

    /// The client `url` describes, and whether its document was fetched just now (rather
    /// than read from the cache); or why it cannot be used. Only good documents are cached,
    /// so a host that was briefly down is asked again next time.
    pub async fn resolve(&self, url: &str) -> Result<(ClientRecord, bool), Lookup> {
        check_url(url).map_err(Lookup::Unknown)?;
        let resolver = self.clone();
        let entry = self
            .cache
            .entry(url.to_owned())
            .or_try_insert_with(async move { resolver.fetch(url).await })
            .await
            .map_err(|lookup| lookup.as_ref().clone())?;
        let fetched = entry.is_fresh();
        Ok((entry.into_value(), fetched))
    }

    async fn fetch(&self, url: &str) -> Result<ClientRecord, Lookup> {
        #[cfg(test)]
        if let Some(body) = self.served.lock().expect("not poisoned").get(url).cloned() {
            return document_to_client(url, body.as_bytes()).map_err(Lookup::Unknown);
        }
        let _turn = self
            .fetches
            .acquire()
            .await
            .map_err(|_| Lookup::Unavailable("shutting down".to_owned()))?;
        let response = self
            .http
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| {
                // A host with no public address is the client's fault, not an outage: it
                // will never be fetched, however often the client asks.
                if has_no_public_address(&e) {
                    Lookup::Unknown(format!(
                        "client id URLs must name a public host: {}",
                        host_of(url)
                    ))
                } else {
                    Lookup::Unavailable(format!(
                        "cannot fetch the client's metadata document {url}: {}",
                        e.without_url()
                    ))
                }
            })?;
        let status = response.status();
        if !status.is_success() {
            let why = format!(
                "the client's metadata document {url} answered HTTP {}",
                status.as_u16()
            );
            return Err(if status.is_server_error() {
                Lookup::Unavailable(why)
            } else {
                Lookup::Unknown(why)
            });
        }
        let body = read_limited(response, url, MAX_DOCUMENT_BYTES)
            .await
            .map_err(|e| Lookup::Unknown(format!("the client's metadata document: {e}")))?;
        document_to_client(url, &body).map_err(Lookup::Unknown)
    }
}

/// Validates a fetched document: it must name itself and be a public client.
fn document_to_client(url: &str, body: &[u8]) -> Result<ClientRecord, String> {
    let document: Document = serde_json::from_slice(body)
        .map_err(|e| format!("the client's metadata document is not valid JSON: {e}"))?;
    if document.client_id != url {
        return Err(format!(
            "the client's metadata document names client_id {:?}, not its own URL",
            document.client_id.chars().take(200).collect::<String>()
        ));
    }
    let fields = document.registration;
    let method = fields
        .token_endpoint_auth_method
        .unwrap_or_else(|| "none".to_owned());
    if method != "none" {
        return Err(format!(
            "metadata-document clients must be public (token_endpoint_auth_method none), not {method:?}"
        ));
    }
    let metadata = ClientMetadata::from_request(RegistrationRequest {
        redirect_uris: fields.redirect_uris,
        client_name: fields.client_name,
        grant_types: fields.grant_types,
        response_types: fields.response_types,
        token_endpoint_auth_method: Some(method),
    })
    .map_err(|e| match e {
        ClientError::Rejected { description, .. } => {
            format!("the client's metadata document is invalid: {description}")
        }
        other => other.to_string(),
    })?;
    Ok(ClientRecord {
        client_id: url.to_owned(),
        client_name: metadata.client_name,
        redirect_uris: metadata.redirect_uris,
        grant_types: metadata.grant_types,
        token_endpoint_auth_method: metadata.token_endpoint_auth_method,
        secret_hash: None,
        created_at: 0,
    })
}

/// The URL rules before any connection: https, a host, a path, no credentials or fragment, and
/// not an address literal outside the public internet.
fn check_url(url: &str) -> Result<Url, String> {
    let parsed = Url::parse(url).map_err(|_| format!("client id {url:?} is not a URL"))?;
    if parsed.scheme() != "https" {
        return Err("client id URLs must use https".to_owned());
    }
    if parsed.fragment().is_some() || !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("client id URLs must not carry a fragment or credentials".to_owned());
    }
    if parsed.path() == "/" {
        return Err("client id URLs must have a path".to_owned());
    }
    match check_host(&parsed) {
        Ok(()) => Ok(parsed),
        Err(HostRefused::Localhost(_)) => {
            Err("client id URLs must not point at this machine".to_owned())
        }
        Err(_) => Err("client id URLs must name a public host".to_owned()),
    }
}

/// The host of a URL already checked by [`check_url`], for messages.
fn host_of(url: &str) -> String {
    Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_https_urls_with_a_path_are_fetched() {
        assert!(check_url("https://app.example.com/oauth/client.json").is_ok());
        for bad in [
            "http://app.example.com/client.json",
            "https://app.example.com/",
            "https://127.0.0.1/client.json",
            "https://10.1.2.3/client.json",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/client.json",
            "https://[fd00::1]/client.json",
            "https://[::ffff:127.0.0.1]/client.json",
            "https://[::ffff:0:127.0.0.1]/client.json",
            "https://[100::1]/client.json",
            "https://localhost/client.json",
            "https://localhost./c.json",
            "https://LOCALHOST./c.json",
            "https://app.localhost/c.json",
            "https://u:p@app.example.com/client.json",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn a_name_with_no_public_address_is_the_clients_fault_not_an_outage() {
        // Past `check_url`, as a name that resolves only inside the network would be.
        let answer = CimdResolver::new()
            .fetch("https://localhost/client.json")
            .await;
        assert!(
            matches!(&answer, Err(Lookup::Unknown(why)) if why.contains("public host")),
            "an unusable client id (invalid_client), not 503: {:?}",
            answer.err()
        );
    }

    #[test]
    fn documents_must_name_themselves_and_be_public_clients() {
        let url = "https://app.example.com/client.json";
        let good = format!(
            r#"{{"client_id":"{url}","client_name":"App","redirect_uris":["http://127.0.0.1:3000/cb"]}}"#
        );
        let client = document_to_client(url, good.as_bytes()).unwrap();
        assert_eq!(client.client_name.as_deref(), Some("App"));
        assert_eq!(client.token_endpoint_auth_method, "none");
        let other =
            r#"{"client_id":"https://evil.example/c.json","redirect_uris":["https://a/cb"]}"#;
        assert!(document_to_client(url, other.as_bytes()).is_err());
        let secret = format!(
            r#"{{"client_id":"{url}","token_endpoint_auth_method":"client_secret_basic","redirect_uris":["https://a.example/cb"]}}"#
        );
        assert!(document_to_client(url, secret.as_bytes()).is_err());
        let bad_redirect =
            format!(r#"{{"client_id":"{url}","redirect_uris":["http://evil.example/cb"]}}"#);
        assert!(document_to_client(url, bad_redirect.as_bytes()).is_err());
    }
}

//! Which clients may register and use searchgate: the operator's allow and deny lists of
//! client ids and redirect-URI hosts, plus the clients denied through the admin API. Checked
//! on every request, so it is all in memory.

use std::{
    collections::HashSet,
    sync::{Arc, RwLock},
};

use url::Url;

use super::ClientError;

/// The configured lists; empty allow lists allow everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyLists {
    /// Only these client ids, when not empty.
    pub allow_client_ids: Vec<String>,
    /// Never these client ids.
    pub deny_client_ids: Vec<String>,
    /// Only redirect URIs on these hosts (exact, or `*.example.com`), when not empty.
    pub allow_redirect_hosts: Vec<String>,
    /// Never redirect URIs on these hosts.
    pub deny_redirect_hosts: Vec<String>,
}

/// What the policy says of a token's client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientVerdict {
    /// The client may use searchgate (or no policy is in force).
    Allowed,
    /// The client is denied: by a list, or through the admin API.
    Denied,
    /// A policy is in force and the token names no client: it cannot be judged, so it is
    /// refused (an allow list that any client-less token passed would allow everyone).
    Unnamed,
}

/// The client policy. Cheap to clone; clones share the denied set.
#[derive(Debug, Clone, Default)]
pub struct ClientPolicy {
    lists: Arc<PolicyLists>,
    denied: Arc<RwLock<HashSet<String>>>,
}

impl ClientPolicy {
    /// A policy with `lists` and, from the store, the clients denied so far.
    pub fn new(lists: PolicyLists, denied: impl IntoIterator<Item = String>) -> Self {
        Self {
            lists: Arc::new(lists),
            denied: Arc::new(RwLock::new(denied.into_iter().collect())),
        }
    }

    /// Whether tokens of `client_id` may be used.
    pub fn allows_client(&self, client_id: &str) -> bool {
        let lists = &self.lists;
        if lists.deny_client_ids.iter().any(|d| d == client_id) {
            return false;
        }
        if !lists.allow_client_ids.is_empty()
            && !lists.allow_client_ids.iter().any(|a| a == client_id)
        {
            return false;
        }
        !self
            .denied
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(client_id)
    }

    /// Whether any client policy is in force: an allow or deny list of client ids, or a
    /// client denied through the admin API.
    pub fn is_configured(&self) -> bool {
        !self.lists.allow_client_ids.is_empty()
            || !self.lists.deny_client_ids.is_empty()
            || !self
                .denied
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .is_empty()
    }

    /// Judges the client a token names, if any.
    pub fn judge(&self, client_id: Option<&str>) -> ClientVerdict {
        match client_id {
            Some(id) if self.allows_client(id) => ClientVerdict::Allowed,
            Some(_) => ClientVerdict::Denied,
            None if self.is_configured() => ClientVerdict::Unnamed,
            None => ClientVerdict::Allowed,
        }
    }

    /// Denies `client_id` from now on (the admin API).
    pub fn deny(&self, client_id: &str) {
        self.denied
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(client_id.to_owned());
    }

    /// Adds the store's denials (other replicas deny too). A denial is never lifted, so the
    /// sets are merged: a deny made here while the store was being read is not undone.
    pub fn reload_denied(&self, denied: impl IntoIterator<Item = String>) {
        self.denied
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend(denied);
    }

    /// Checks the redirect URIs of a registration against the host lists.
    ///
    /// # Errors
    /// [`ClientError::Rejected`] with `invalid_redirect_uri` naming the refused host.
    pub fn check_redirects(&self, redirect_uris: &[String]) -> Result<(), ClientError> {
        for uri in redirect_uris {
            let host = Url::parse(uri)
                .ok()
                .and_then(|u| {
                    u.host_str()
                        .map(|h| h.trim_matches(['[', ']']).to_ascii_lowercase())
                })
                .unwrap_or_default();
            let matches = |pattern: &String| host_matches(pattern, &host);
            let refused = self.lists.deny_redirect_hosts.iter().any(matches)
                || (!self.lists.allow_redirect_hosts.is_empty()
                    && !self.lists.allow_redirect_hosts.iter().any(matches));
            if refused {
                return Err(ClientError::Rejected {
                    code: "invalid_redirect_uri",
                    description: format!(
                        "redirect URIs on {host} are not accepted by this server's client policy"
                    ),
                });
            }
        }
        Ok(())
    }
}

/// `example.com` matches itself; `*.example.com` matches its subdomains.
fn host_matches(pattern: &str, host: &str) -> bool {
    let pattern = pattern.to_ascii_lowercase();
    match pattern.strip_prefix("*.") {
        Some(domain) => host.ends_with(&format!(".{domain}")),
        None => pattern == host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_and_denials_decide_which_clients_pass() {
        let policy = ClientPolicy::new(
            PolicyLists {
                deny_client_ids: vec!["bad".into()],
                ..PolicyLists::default()
            },
            ["gone".to_owned()],
        );
        assert!(policy.allows_client("good"));
        assert!(!policy.allows_client("bad"));
        assert!(!policy.allows_client("gone"));
        policy.deny("good");
        assert!(!policy.allows_client("good"));
        // A reload read before that deny landed does not lift it.
        policy.reload_denied(["gone".to_owned(), "other".to_owned()]);
        assert!(!policy.allows_client("good"));
        assert!(!policy.allows_client("other"));
        let only = ClientPolicy::new(
            PolicyLists {
                allow_client_ids: vec!["one".into()],
                ..PolicyLists::default()
            },
            [],
        );
        assert!(only.allows_client("one"));
        assert!(!only.allows_client("two"));
    }

    #[test]
    fn a_token_naming_no_client_is_refused_once_any_policy_is_in_force() {
        let none = ClientPolicy::default();
        assert_eq!(
            none.judge(None),
            ClientVerdict::Allowed,
            "no policy, nothing to judge"
        );
        let hosts_only = ClientPolicy::new(
            PolicyLists {
                deny_redirect_hosts: vec!["evil.example".into()],
                ..PolicyLists::default()
            },
            [],
        );
        assert_eq!(
            hosts_only.judge(None),
            ClientVerdict::Allowed,
            "redirect hosts judge registrations, not tokens"
        );
        for lists in [
            PolicyLists {
                allow_client_ids: vec!["one".into()],
                ..PolicyLists::default()
            },
            PolicyLists {
                deny_client_ids: vec!["bad".into()],
                ..PolicyLists::default()
            },
        ] {
            let policy = ClientPolicy::new(lists.clone(), []);
            assert_eq!(policy.judge(None), ClientVerdict::Unnamed, "{lists:?}");
        }
        let stored = ClientPolicy::default();
        stored.deny("gone");
        assert_eq!(
            stored.judge(None),
            ClientVerdict::Unnamed,
            "a denial through the admin API is a policy"
        );
        assert_eq!(stored.judge(Some("gone")), ClientVerdict::Denied);
        assert_eq!(stored.judge(Some("other")), ClientVerdict::Allowed);
    }

    #[test]
    fn redirect_hosts_are_matched_exactly_or_by_subdomain() {
        let policy = ClientPolicy::new(
            PolicyLists {
                allow_redirect_hosts: vec!["127.0.0.1".into(), "*.example.com".into()],
                deny_redirect_hosts: vec!["evil.example.com".into()],
                ..PolicyLists::default()
            },
            [],
        );
        assert!(
            policy
                .check_redirects(&["http://127.0.0.1:9/cb".into()])
                .is_ok()
        );
        assert!(
            policy
                .check_redirects(&["https://app.example.com/cb".into()])
                .is_ok()
        );
        assert!(
            policy
                .check_redirects(&["https://example.com/cb".into()])
                .is_err()
        );
        assert!(
            policy
                .check_redirects(&["https://evil.example.com/cb".into()])
                .is_err()
        );
        assert!(
            policy
                .check_redirects(&["https://other.org/cb".into()])
                .is_err()
        );
    }
}

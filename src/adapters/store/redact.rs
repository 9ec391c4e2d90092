//! Database URLs without their passwords, for messages, logs and printed configuration: the
//! store's open errors name the URL, and so do the configuration and start-up, which import it
//! from here (the store must not import the configuration that is built on top of it).

/// A URL without its passwords (`postgres://user:***@host/db`, `password=***` and
/// `sslpassword=***` in the query), for
/// messages, logs and printed configuration.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(parsed) if parsed.password().is_some() || parsed.query().is_some() => {
            let mut parsed = parsed;
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("***"));
            }
            if parsed.query().is_some() {
                let pairs: Vec<(String, String)> = parsed
                    .query_pairs()
                    .map(|(k, v)| {
                        // libpq's `sslpassword` (the client key's passphrase) is as secret as
                        // `password`.
                        let hidden = k.eq_ignore_ascii_case("password")
                            || k.eq_ignore_ascii_case("sslpassword");
                        (
                            k.into_owned(),
                            if hidden {
                                "***".to_owned()
                            } else {
                                v.into_owned()
                            },
                        )
                    })
                    .collect();
                parsed.query_pairs_mut().clear().extend_pairs(pairs);
            }
            parsed.to_string()
        }
        Ok(_) => url.to_owned(),
        // Unparsable: keep the scheme only, the rest may hold a secret.
        Err(_) => match url.split_once(':') {
            Some((scheme, _)) => format!("{scheme}:…"),
            None => "…".to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db.internal:5432/searchgate"),
            "postgres://app:***@db.internal:5432/searchgate"
        );
        let query = redact_url("postgres://db/sg?user=app&password=s3cret&sslmode=require");
        assert!(!query.contains("s3cret"), "{query}");
        assert!(query.contains("sslmode=require"), "{query}");
        let ssl = redact_url("postgres://app@db/sg?sslmode=verify-full&SSLPassword=k3y-pass");
        assert!(!ssl.contains("k3y-pass"), "{ssl}");
        assert!(ssl.contains("SSLPassword=***"), "{ssl}");
        assert_eq!(
            redact_url("sqlite://searchgate.db"),
            "sqlite://searchgate.db"
        );
        assert_eq!(redact_url("postgres://app:s3cret@[bad"), "postgres:…");
    }
}

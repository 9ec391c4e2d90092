//! The certificate and key files: read (bounded), parsed, checked against each other, and
//! described (subject, names, validity) for logs and `check-config`.

use std::{
    io::Read,
    net::IpAddr,
    path::{Path, PathBuf},
    sync::Arc,
};

use rustls::{
    crypto::CryptoProvider,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
    sign::CertifiedKey,
};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

/// Largest certificate chain or key file read: real ones are a few kilobytes.
const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// Where the certificate chain and its key are (`server.tls`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateFiles {
    /// PEM: the server's certificate first, then its intermediates.
    pub cert: PathBuf,
    /// PEM: the private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// The two files' bytes, as read at one moment.
#[derive(Clone, PartialEq, Eq)]
pub struct Contents {
    cert: Vec<u8>,
    key: Vec<u8>,
}

impl std::fmt::Debug for Contents {
    // Never the bytes: one file is the private key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Contents")
            .field("cert_bytes", &self.cert.len())
            .field("key_bytes", &self.key.len())
            .finish()
    }
}

impl CertificateFiles {
    /// Reads both files.
    ///
    /// # Errors
    /// A file that cannot be read or is larger than 1 MiB, named.
    pub fn read(&self) -> Result<Contents, String> {
        Ok(Contents {
            cert: read_bounded(&self.cert)?,
            key: read_bounded(&self.key)?,
        })
    }

    /// Reads and parses both files; the certificate, and what was read.
    ///
    /// # Errors
    /// What is wrong with them, naming the file.
    pub fn load(&self, provider: &CryptoProvider) -> Result<(Certificate, Contents), String> {
        let contents = self.read()?;
        Ok((Certificate::parse(&contents, self, provider)?, contents))
    }
}

fn read_bounded(path: &Path) -> Result<Vec<u8>, String> {
    let file =
        std::fs::File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(format!("{} is larger than 1 MiB", path.display()));
    }
    Ok(bytes)
}

/// A certificate chain with its key, ready to serve.
#[derive(Debug, Clone)]
pub struct Certificate {
    /// What rustls serves.
    pub key: Arc<CertifiedKey>,
    /// What the certificate says.
    pub info: CertificateInfo,
}

impl Certificate {
    /// Parses `contents` (read from `files`, named in errors).
    ///
    /// # Errors
    /// No certificate, no key, a key that does not belong to the certificate, an expired
    /// certificate.
    pub fn parse(
        contents: &Contents,
        files: &CertificateFiles,
        provider: &CryptoProvider,
    ) -> Result<Self, String> {
        let chain = CertificateDer::pem_slice_iter(&contents.cert)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| {
                format!(
                    "{} is not a PEM certificate chain: {e}",
                    files.cert.display()
                )
            })?;
        if chain.is_empty() {
            return Err(format!(
                "{} holds no certificate (expected PEM `BEGIN CERTIFICATE` blocks)",
                files.cert.display()
            ));
        }
        let key = PrivateKeyDer::from_pem_slice(&contents.key).map_err(|e| {
            format!(
                "{} holds no private key (expected PEM `BEGIN PRIVATE KEY`, `BEGIN RSA PRIVATE \
                 KEY` or `BEGIN EC PRIVATE KEY`): {e}",
                files.key.display()
            )
        })?;
        let info =
            CertificateInfo::of(&chain[0]).map_err(|e| format!("{}: {e}", files.cert.display()))?;
        let key = CertifiedKey::from_der(chain, key, provider).map_err(|e| {
            format!(
                "the key in {} does not belong to the certificate in {} ({e})",
                files.key.display(),
                files.cert.display()
            )
        })?;
        let now = chrono::Utc::now().timestamp();
        if info.not_after < now {
            return Err(format!(
                "the certificate in {} expired at {}",
                files.cert.display(),
                rfc3339(info.not_after)
            ));
        }
        Ok(Self {
            key: Arc::new(key),
            info,
        })
    }
}

/// What a certificate says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateInfo {
    /// The subject's distinguished name (`CN=search.example.com`).
    pub subject: String,
    /// The DNS names and IP addresses it is valid for (its subject alternative names).
    pub names: Vec<String>,
    /// Valid from (Unix seconds).
    pub not_before: i64,
    /// Valid until (Unix seconds).
    pub not_after: i64,
}

impl CertificateInfo {
    fn of(der: &CertificateDer<'_>) -> Result<Self, String> {
        let (_, cert) = X509Certificate::from_der(der)
            .map_err(|e| format!("the first certificate cannot be read: {e}"))?;
        let names = cert
            .subject_alternative_name()
            .map_err(|e| format!("the certificate's alternative names cannot be read: {e}"))?
            .map(|san| {
                san.value
                    .general_names
                    .iter()
                    .filter_map(|name| match name {
                        GeneralName::DNSName(dns) => Some((*dns).to_owned()),
                        GeneralName::IPAddress(bytes) => ip_of(bytes).map(|ip| ip.to_string()),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Self {
            subject: cert.subject().to_string(),
            names,
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
        })
    }

    /// Whether a client connecting to `host` accepts this certificate's names (RFC 6125: a
    /// `*.` wildcard covers one label; an IP address must be listed as one).
    pub fn covers(&self, host: &str) -> bool {
        let host = host.trim_matches(['[', ']']).to_ascii_lowercase();
        if let Ok(ip) = host.parse::<IpAddr>() {
            return self
                .names
                .iter()
                .any(|name| name.parse::<IpAddr>().is_ok_and(|n| n == ip));
        }
        self.names.iter().any(|name| {
            let name = name.to_ascii_lowercase();
            match name.strip_prefix("*.") {
                Some(parent) => host
                    .split_once('.')
                    .is_some_and(|(label, rest)| !label.is_empty() && rest == parent),
                None => name == host,
            }
        })
    }

    /// Whole days left before it expires, at `now` (Unix seconds); negative once expired.
    pub fn days_left(&self, now: i64) -> i64 {
        (self.not_after - now).div_euclid(86_400)
    }
}

fn ip_of(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(bytes).ok()?)),
        16 => Some(IpAddr::from(<[u8; 16]>::try_from(bytes).ok()?)),
        _ => None,
    }
}

/// `seconds` as an RFC 3339 UTC time.
pub fn rfc3339(seconds: i64) -> String {
    chrono::DateTime::from_timestamp(seconds, 0).map_or_else(
        || seconds.to_string(),
        |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(names: &[&str]) -> CertificateInfo {
        CertificateInfo {
            subject: String::new(),
            names: names.iter().map(|n| (*n).to_owned()).collect(),
            not_before: 0,
            not_after: 0,
        }
    }

    #[test]
    fn names_cover_hosts_as_clients_check_them() {
        let cert = info(&[
            "search.example.com",
            "*.internal.example",
            "127.0.0.1",
            "::1",
        ]);
        assert!(cert.covers("search.example.com"));
        assert!(cert.covers("SEARCH.example.com"));
        assert!(cert.covers("a.internal.example"));
        assert!(
            !cert.covers("a.b.internal.example"),
            "a wildcard covers one label"
        );
        assert!(!cert.covers("internal.example"));
        assert!(!cert.covers("other.example.com"));
        assert!(cert.covers("127.0.0.1"));
        assert!(cert.covers("[::1]"));
        assert!(!cert.covers("127.0.0.2"));
    }

    #[test]
    fn days_left_counts_whole_days() {
        let mut cert = info(&[]);
        cert.not_after = 10 * 86_400 + 5;
        assert_eq!(cert.days_left(0), 10);
        assert_eq!(cert.days_left(11 * 86_400), -1);
    }
}

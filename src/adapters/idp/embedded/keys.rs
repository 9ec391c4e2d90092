//! Signing keys: RSA 2048 made with aws-lc-rs, stored as PKCS#8 PEM, published as a JWKS, and
//! the random values and hashes the server hands out.

use aws_lc_rs::{
    encoding::AsDer,
    rsa::{KeyPair, KeySize},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{
    Algorithm, EncodingKey, Header,
    jwk::{Jwk, PublicKeyUse},
};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::domain::issuer::{KeyRecord, UnixTime};

/// The key that signs new tokens.
#[derive(Clone)]
pub struct Signer {
    /// Its id, written into every token header.
    pub kid: String,
    key: EncodingKey,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").field("kid", &self.kid).finish()
    }
}

impl Signer {
    /// The signer for a stored key.
    ///
    /// # Errors
    /// When the stored PEM is not an RSA private key.
    pub fn new(record: &KeyRecord) -> anyhow::Result<Self> {
        Ok(Self {
            kid: record.kid.clone(),
            key: EncodingKey::from_rsa_pem(record.private_pem.as_bytes())?,
        })
    }

    /// Signs `claims` as a JWT of type `typ`.
    ///
    /// # Errors
    /// When signing fails (it does not with a valid key).
    pub fn sign(&self, typ: &str, claims: &impl Serialize) -> anyhow::Result<String> {
        let mut header = Header::new(Algorithm::RS256);
        header.typ = Some(typ.to_owned());
        header.kid = Some(self.kid.clone());
        Ok(jsonwebtoken::encode(&header, claims, &self.key)?)
    }
}

/// A fresh signing key made at `now`.
///
/// # Errors
/// When the system cannot generate a key.
pub fn generate(now: UnixTime) -> anyhow::Result<KeyRecord> {
    let pair = KeyPair::generate(KeySize::Rsa2048)
        .map_err(|_| anyhow::anyhow!("cannot generate an RSA key"))?;
    let der = pair
        .as_der()
        .map_err(|_| anyhow::anyhow!("cannot encode the RSA key"))?;
    let pem = pem::encode(&pem::Pem::new("PRIVATE KEY", der.as_ref().to_vec()));
    Ok(KeyRecord {
        // A letter first: a kid starting with `-` reads as an option on the command line.
        kid: format!("k{}", random_string(12)),
        private_pem: pem,
        created_at: now,
        rotated_at: None,
        tokens_expire_at: now,
        retired_at: None,
    })
}

/// The JWKS of the keys whose tokens are accepted at `now`.
///
/// # Errors
/// When a stored key cannot be read.
pub fn jwks(
    records: &[KeyRecord],
    now: UnixTime,
    leeway: i64,
) -> anyhow::Result<serde_json::Value> {
    let keys = records
        .iter()
        .filter(|k| k.is_published(now, leeway))
        .map(public_jwk)
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(serde_json::json!({ "keys": keys }))
}

fn public_jwk(record: &KeyRecord) -> anyhow::Result<serde_json::Value> {
    let key = EncodingKey::from_rsa_pem(record.private_pem.as_bytes())?;
    let mut jwk = Jwk::from_encoding_key(&key, Algorithm::RS256)?;
    jwk.common.key_id = Some(record.kid.clone());
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    Ok(serde_json::to_value(jwk)?)
}

/// `bytes` random bytes from the system's CSPRNG, base64url without padding.
pub fn random_string(bytes: usize) -> String {
    let mut buffer = vec![0_u8; bytes];
    aws_lc_rs::rand::fill(&mut buffer).expect("the system random generator works");
    URL_SAFE_NO_PAD.encode(buffer)
}

/// SHA-256 in lowercase hex: how codes, refresh tokens and secrets are stored.
pub fn sha256_hex(value: &str) -> String {
    Sha256::digest(value.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// PKCE S256 (RFC 7636 §4.6): `BASE64URL(SHA256(verifier)) == challenge`.
pub fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    same(
        &URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())),
        challenge,
    )
}

/// Whether `secret` hashes to `hash` (hex SHA-256).
pub fn secret_matches(hash: &str, secret: &str) -> bool {
    same(&sha256_hex(secret), hash)
}

/// Compares without an early exit, so timing says nothing about where strings differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0_u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_sign_tokens_their_jwks_verifies() {
        let record = generate(1_000).unwrap();
        let signer = Signer::new(&record).unwrap();
        let token = signer
            .sign("at+jwt", &serde_json::json!({ "sub": "a" }))
            .unwrap();
        let jwks = jwks(std::slice::from_ref(&record), 1_000, 0).unwrap();
        let jwk: Jwk = serde_json::from_value(jwks["keys"][0].clone()).unwrap();
        assert_eq!(jwk.common.key_id.as_deref(), Some(record.kid.as_str()));
        let key = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
        let mut validation = jsonwebtoken::Validation::new(Algorithm::RS256);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        let data = jsonwebtoken::decode::<serde_json::Value>(&token, &key, &validation).unwrap();
        assert_eq!(data.claims["sub"], "a");
        assert_eq!(data.header.typ.as_deref(), Some("at+jwt"));
        assert!(!jwks.to_string().contains("\"d\""), "no private part");
    }

    #[test]
    fn rotated_keys_stay_published_while_their_tokens_live() {
        let mut key = generate(0).unwrap();
        key.rotated_at = Some(100);
        key.tokens_expire_at = 200;
        assert!(key.is_published(150, 0));
        assert!(!key.is_published(250, 0));
        assert!(key.is_published(250, 60));
        key.retired_at = Some(120);
        assert!(!key.is_published(150, 0));
    }

    #[test]
    fn pkce_s256_follows_rfc_7636_appendix_b() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert!(pkce_matches(
            verifier,
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        ));
        assert!(!pkce_matches(
            verifier,
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cN"
        ));
        assert!(!pkce_matches(verifier, ""));
    }
}

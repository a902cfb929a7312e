//! Access tokens: ES256-signed JWTs minted by the token endpoint and checked by the vault.
//!
//! The signing key is generated at start and never leaves the process, so a token is only valid
//! against the dev vault that issued it. Claims follow Entra ID v1 access tokens (`iss`
//! `https://sts.windows.net/<tenant>/`, `aud` the resource, `appid`, `tid`, `oid`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::directory::Principal;
use crate::store::unix_now;

/// Lifetime of issued tokens (Entra's default for app tokens is 60-90 minutes).
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// Most tokens whose signature is remembered as verified ([`TokenIssuer::validate`]); past it
/// the memory starts over. A token is verified once, not on every request it is sent with: an
/// ECDSA verification is most of the dev vault's work per request, and the benchmark runs it on
/// the cores of the daemon it measures.
const MAX_VERIFIED: usize = 4096;

/// Why a token was refused. The messages are the vault's reply text and hold no token bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a JWT, or the signature does not verify.
    #[error("AKV10000: Request is missing a Bearer or PoP token.")]
    Missing,
    /// Signature or format invalid.
    #[error("AKV10022: Invalid audience or signature.")]
    Invalid,
    /// Expired or not yet valid.
    #[error("AKV10032: Token expired or not yet valid.")]
    Expired,
    /// Issued for another resource.
    #[error("AKV10022: Invalid audience. Expected {expected}, found: {found}.")]
    Audience {
        /// What the vault accepts.
        expected: String,
        /// What the token says.
        found: String,
    },
    /// Issued by another tenant.
    #[error(
        "AKV10032: Invalid issuer. Expected one of https://sts.windows.net/{expected}/, found {found}."
    )]
    Tenant {
        /// The vault's tenant.
        expected: String,
        /// The token's issuer.
        found: String,
    },
}

/// The claims keyvol's dev tokens carry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// Resource the token is for, e.g. `https://vault.azure.net`.
    pub aud: String,
    /// Issuer, `https://sts.windows.net/<tenant>/`.
    pub iss: String,
    /// Issued at.
    pub iat: i64,
    /// Not before.
    pub nbf: i64,
    /// Expiry.
    pub exp: i64,
    /// Application (client) id.
    pub appid: String,
    /// Object id of the identity (the dev vault uses the client id).
    pub oid: String,
    /// Subject.
    pub sub: String,
    /// Tenant id.
    pub tid: String,
    /// Token version.
    pub ver: String,
}

/// Mints and checks tokens for one tenant.
pub struct TokenIssuer {
    encoding: EncodingKey,
    decoding: DecodingKey,
    tenant: String,
    key_pem: String,
    public_jwk: serde_json::Value,
    kid: String,
    /// Claims of tokens whose signature verified, by the token's exact text. Only the signature
    /// check is skipped for them: time window, issuer and audience are checked on every use.
    verified: Mutex<HashMap<String, Claims>>,
}

/// Failure to create the signing key.
#[derive(Debug, thiserror::Error)]
#[error("failed to create the token signing key: {0}")]
pub struct KeyError(String);

impl TokenIssuer {
    /// A new issuer with a fresh P-256 key.
    pub fn new(tenant: &str) -> Result<Self, KeyError> {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(|e| KeyError(e.to_string()))?;
        Self::with_key_pem(tenant, &key.serialize_pem())
    }

    /// An issuer signing with a stored P-256 key (PKCS#8 PEM), so tokens outlive a restart.
    pub fn with_key_pem(tenant: &str, pem: &str) -> Result<Self, KeyError> {
        let key = rcgen::KeyPair::from_pem(pem).map_err(|e| KeyError(e.to_string()))?;
        let encoding =
            EncodingKey::from_ec_pem(pem.as_bytes()).map_err(|e| KeyError(e.to_string()))?;
        let decoding = DecodingKey::from_ec_pem(key.public_key_pem().as_bytes())
            .map_err(|e| KeyError(e.to_string()))?;
        let spki = rcgen::PublicKeyData::subject_public_key_info(&key);
        let kid = crate::crypto::x5t(&spki);
        let jwk = crate::crypto::jwk_from_spki(&spki).map_err(|e| KeyError(e.to_string()))?;
        let mut public_jwk = serde_json::to_value(jwk).map_err(|e| KeyError(e.to_string()))?;
        public_jwk["kid"] = serde_json::json!(kid);
        public_jwk["use"] = serde_json::json!("sig");
        public_jwk["alg"] = serde_json::json!("ES256");
        Ok(Self {
            encoding,
            decoding,
            tenant: tenant.to_owned(),
            key_pem: pem.to_owned(),
            public_jwk,
            kid,
            verified: Mutex::new(HashMap::new()),
        })
    }

    /// The signing key, PKCS#8 PEM, for the file-backed store.
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// The public signing key as a JWK (with `kid`), for the discovery documents.
    pub fn public_jwk(&self) -> serde_json::Value {
        self.public_jwk.clone()
    }

    /// The tenant this issuer speaks for.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// The `iss` claim of this issuer's tokens.
    pub fn issuer(&self) -> String {
        format!("https://sts.windows.net/{}/", self.tenant)
    }

    /// Mints a token for `client_id` (object id the same) and resource `audience`.
    pub fn issue(&self, client_id: &str, audience: &str) -> Result<(String, i64), KeyError> {
        self.issue_to(
            &Principal {
                client_id: client_id.to_owned(),
                object_id: client_id.to_owned(),
            },
            audience,
        )
    }

    /// Mints a token for `principal` and resource `audience`.
    pub fn issue_to(
        &self,
        principal: &Principal,
        audience: &str,
    ) -> Result<(String, i64), KeyError> {
        let now = unix_now();
        let lifetime = i64::try_from(TOKEN_LIFETIME.as_secs()).unwrap_or(3600);
        let claims = Claims {
            aud: audience.to_owned(),
            iss: self.issuer(),
            iat: now,
            nbf: now - 300,
            exp: now + lifetime,
            appid: principal.client_id.clone(),
            oid: principal.object_id.clone(),
            sub: principal.object_id.clone(),
            tid: self.tenant.clone(),
            ver: "1.0".into(),
        };
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &self.encoding)
            .map_err(|e| KeyError(e.to_string()))?;
        Ok((token, lifetime))
    }

    /// Verifies the signature and the time window (every claim the JWT must carry present).
    fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let mut validation = Validation::new(Algorithm::ES256);
        validation.validate_aud = false;
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "nbf", "aud", "iss"]);
        validation.validate_nbf = true;
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature
                | jsonwebtoken::errors::ErrorKind::ImmatureSignature => TokenError::Expired,
                _ => TokenError::Invalid,
            })
    }

    fn verified(&self) -> std::sync::MutexGuard<'_, HashMap<String, Claims>> {
        // A map of verified tokens stays consistent whatever a panicking holder did.
        self.verified.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The claims of `token` if its signature verified before.
    fn remembered(&self, token: &str) -> Option<Claims> {
        self.verified().get(token).cloned()
    }

    fn remember(&self, token: &str, claims: &Claims) {
        let mut verified = self.verified();
        if verified.len() >= MAX_VERIFIED {
            verified.clear();
        }
        verified.insert(token.to_owned(), claims.clone());
    }

    /// Verifies signature, time window, tenant and audience.
    pub fn validate(
        &self,
        token: &str,
        audience_ok: impl Fn(&str) -> bool,
        expected: &str,
    ) -> Result<Claims, TokenError> {
        let claims = match self.remembered(token) {
            Some(claims) => {
                let now = unix_now();
                if now >= claims.exp || now < claims.nbf {
                    return Err(TokenError::Expired);
                }
                claims
            }
            None => {
                let claims = self.verify(token)?;
                self.remember(token, &claims);
                claims
            }
        };
        if claims.iss != self.issuer() || claims.tid != self.tenant {
            return Err(TokenError::Tenant {
                expected: self.tenant.clone(),
                found: claims.iss,
            });
        }
        if !audience_ok(&claims.aud) {
            return Err(TokenError::Audience {
                expected: expected.to_owned(),
                found: claims.aud,
            });
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_tokens_validate_and_foreign_ones_do_not() {
        let a = TokenIssuer::new("t1").expect("key");
        let b = TokenIssuer::new("t1").expect("key");
        let (tok, _) = a.issue("app", "https://vault.azure.net").expect("issue");
        let ok = |aud: &str| aud == "https://vault.azure.net";
        assert_eq!(a.validate(&tok, ok, "x").expect("valid").appid, "app");
        assert_eq!(b.validate(&tok, ok, "x").err(), Some(TokenError::Invalid));
        assert!(matches!(
            a.validate(&tok, |_| false, "x"),
            Err(TokenError::Audience { .. })
        ));
        let other_tenant = TokenIssuer::new("t2").expect("key");
        let (tok2, _) = other_tenant
            .issue("app", "https://vault.azure.net")
            .expect("issue");
        assert_eq!(a.validate(&tok2, ok, "x").err(), Some(TokenError::Invalid));
    }

    #[test]
    fn expired_tokens_and_tokens_naming_another_tenant_are_refused() {
        let issuer = TokenIssuer::new("t1").expect("key");
        let now = unix_now();
        let claims = |exp: i64, iss: &str, tid: &str| Claims {
            aud: "https://vault.azure.net".into(),
            iss: iss.into(),
            iat: now - 7200,
            nbf: now - 7200,
            exp,
            appid: "app".into(),
            oid: "app".into(),
            sub: "app".into(),
            tid: tid.into(),
            ver: "1.0".into(),
        };
        let sign = |c: &Claims| {
            jsonwebtoken::encode(&Header::new(Algorithm::ES256), c, &issuer.encoding).expect("sign")
        };
        let ok = |_: &str| true;
        let expired = sign(&claims(now - 60, &issuer.issuer(), "t1"));
        assert_eq!(
            issuer.validate(&expired, ok, "x").err(),
            Some(TokenError::Expired)
        );
        let foreign = sign(&claims(now + 600, "https://sts.windows.net/t2/", "t2"));
        assert!(matches!(
            issuer.validate(&foreign, ok, "x"),
            Err(TokenError::Tenant { .. })
        ));
    }

    #[test]
    fn a_remembered_token_is_still_held_to_its_time_window_issuer_and_audience() {
        let issuer = TokenIssuer::new("t1").expect("key");
        let (tok, _) = issuer
            .issue("app", "https://vault.azure.net")
            .expect("issue");
        let vault = |aud: &str| aud == "https://vault.azure.net";
        assert_eq!(
            issuer.validate(&tok, vault, "x").expect("valid").appid,
            "app"
        );
        assert!(issuer.remembered(&tok).is_some());
        assert!(matches!(
            issuer.validate(&tok, |_| false, "x"),
            Err(TokenError::Audience { .. })
        ));
        // The remembered claims of a token that has since expired (or is not yet valid) no
        // longer pass.
        let mut claims = issuer.remembered(&tok).expect("remembered");
        claims.exp = unix_now() - 1;
        issuer.remember(&tok, &claims);
        assert_eq!(
            issuer.validate(&tok, vault, "x").err(),
            Some(TokenError::Expired)
        );
        claims.exp = unix_now() + 600;
        claims.nbf = unix_now() + 60;
        issuer.remember(&tok, &claims);
        assert_eq!(
            issuer.validate(&tok, vault, "x").err(),
            Some(TokenError::Expired)
        );
        claims.nbf = unix_now() - 60;
        claims.tid = "t2".into();
        issuer.remember(&tok, &claims);
        assert!(matches!(
            issuer.validate(&tok, vault, "x"),
            Err(TokenError::Tenant { .. })
        ));
        // A token that never verified is not remembered.
        let forged = format!("{tok}x");
        assert_eq!(
            issuer.validate(&forged, vault, "x").err(),
            Some(TokenError::Invalid)
        );
        assert!(issuer.remembered(&forged).is_none());
    }

    #[test]
    fn a_stored_signing_key_keeps_verifying_tokens_after_a_restart() {
        let first = TokenIssuer::new("t1").expect("key");
        let (tok, _) = first
            .issue("app", "https://vault.azure.net")
            .expect("issue");
        let again = TokenIssuer::with_key_pem("t1", first.key_pem()).expect("reload");
        let ok = |_: &str| true;
        assert_eq!(again.validate(&tok, ok, "x").expect("valid").appid, "app");
        assert_eq!(again.public_jwk()["kid"], first.public_jwk()["kid"]);
    }
}

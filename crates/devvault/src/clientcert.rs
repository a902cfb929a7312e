//! Certificate credentials of applications (`clients[].certificates` in the seed): what the SDKs'
//! `CertificateCredential` signs in with. The client proves itself with a JWT it signs with the
//! certificate's private key; Entra finds the registered certificate by the thumbprint in the JWT
//! header, verifies the signature with its public key and checks the claims.
//!
//! Where to start: [`ClientCertificate::from_pem`] (seed time) and [`verify`] (token time, called
//! by [`crate::directory::Directory::authenticate_assertion`] when the assertion names a
//! certificate or claims to be issued by the client itself).
//!
//! The checks, in Entra's order of concern:
//! - the header names a certificate by `x5t#S256` (base64url SHA-256 of its DER, what MSAL sends
//!   with PS256) or `x5t` (base64url SHA-1, what azure-identity sends with RS256), and that
//!   certificate is registered on the app (else AADSTS700027, thumbprint named);
//! - the signature verifies with the certificate's RSA key, RS* or PS* (else AADSTS700027);
//! - `exp` and `nbf`, with five minutes' skew (AADSTS700024);
//! - `iss` and `sub` are both the client id (AADSTS700021);
//! - `aud` is this token endpoint, v2.0 or v1, for the tenant, on the host the client used
//!   (AADSTS700023);
//! - `jti` is present (AADSTS50027). Reuse of a `jti` is not tracked.
//!
//! The certificate's own validity period is not checked.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, Header};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde::Deserialize;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::public_key::PublicKey;

use crate::clientauth::{AuthError, assertion_validation};

/// Why a seeded certificate credential cannot be used. Messages never echo the PEM.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    /// The text holds no `CERTIFICATE` block, or one that does not decode.
    #[error("not a PEM certificate")]
    NotPem,
    /// More than one `CERTIFICATE` block; each entry registers one certificate.
    #[error("holds {0} certificates; give one per entry")]
    SeveralCertificates(usize),
    /// The DER is not an X.509 certificate.
    #[error("the certificate could not be read")]
    Unreadable,
    /// Not an RSA key: Entra's certificate assertions are RS256 or PS256.
    #[error("the certificate's key is not RSA; certificate credentials sign with RS256 or PS256")]
    NotRsa,
}

/// A certificate registered on an application.
#[derive(Clone)]
pub struct ClientCertificate {
    sha1: Vec<u8>,
    sha256: Vec<u8>,
    key: DecodingKey,
}

impl ClientCertificate {
    /// Reads PEM text holding exactly one certificate (other blocks, such as a private key kept in
    /// the same file, are ignored).
    pub fn from_pem(pem: &str) -> Result<Self, CertificateError> {
        let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| CertificateError::NotPem)?;
        let der = match certs.as_slice() {
            [] => return Err(CertificateError::NotPem),
            [one] => one.as_ref(),
            more => return Err(CertificateError::SeveralCertificates(more.len())),
        };
        Self::from_der(der)
    }

    /// Reads one DER certificate.
    pub fn from_der(der: &[u8]) -> Result<Self, CertificateError> {
        let (_, cert) = X509Certificate::from_der(der).map_err(|_| CertificateError::Unreadable)?;
        let key = match cert.public_key().parsed() {
            // DER integers carry a sign byte; the verifier wants the bare magnitudes.
            Ok(PublicKey::RSA(rsa)) => DecodingKey::from_rsa_raw_components(
                magnitude(rsa.modulus),
                magnitude(rsa.exponent),
            ),
            _ => return Err(CertificateError::NotRsa),
        };
        Ok(Self {
            sha1: digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, der),
            sha256: digest(&aws_lc_rs::digest::SHA256, der),
            key,
        })
    }

    fn matches(&self, thumbprint: &Thumbprint) -> bool {
        match thumbprint {
            Thumbprint::Sha256(t) => *t == self.sha256,
            Thumbprint::Sha1(t) => *t == self.sha1,
        }
    }
}

fn magnitude(b: &[u8]) -> &[u8] {
    let first = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    &b[first..]
}

fn digest(alg: &'static aws_lc_rs::digest::Algorithm, der: &[u8]) -> Vec<u8> {
    aws_lc_rs::digest::digest(alg, der).as_ref().to_vec()
}

/// A certificate thumbprint from an assertion header.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Thumbprint {
    /// `x5t#S256`.
    Sha256(Vec<u8>),
    /// `x5t`.
    Sha1(Vec<u8>),
}

impl Thumbprint {
    /// From the header: `x5t#S256` wins over `x5t`. `None` when neither is there.
    fn from_header(header: &Header) -> Result<Option<Self>, AuthError> {
        // base64url; MSAL pads it, other clients do not.
        let decode = |s: &str| {
            URL_SAFE_NO_PAD
                .decode(s.trim_end_matches('='))
                .map_err(|_| AuthError::MalformedAssertion)
        };
        if let Some(t) = &header.x5t_s256 {
            return decode(t).map(|b| Some(Thumbprint::Sha256(b)));
        }
        if let Some(t) = &header.x5t {
            return decode(t).map(|b| Some(Thumbprint::Sha1(b)));
        }
        Ok(None)
    }

    /// Uppercase hex, as the portal shows thumbprints.
    fn hex(&self) -> String {
        let (Thumbprint::Sha256(b) | Thumbprint::Sha1(b)) = self;
        hex::encode_upper(b)
    }
}

/// True when an assertion is a certificate credential's rather than a federated token: it names
/// a certificate, or its issuer is the client itself.
pub fn is_certificate_assertion(header: &Header, iss: Option<&str>, client_id: &str) -> bool {
    header.x5t.is_some()
        || header.x5t_s256.is_some()
        || iss.is_some_and(|i| i.eq_ignore_ascii_case(client_id))
}

#[derive(Deserialize)]
struct Claims {
    iss: Option<String>,
    sub: Option<String>,
    aud: Option<serde_json::Value>,
    jti: Option<String>,
}

/// Verifies a certificate credential's assertion for `client_id` against its registered
/// `certificates`. `token_endpoint` says whether an audience names this token endpoint.
pub fn verify(
    certificates: &[ClientCertificate],
    client_id: &str,
    assertion: &str,
    header: &Header,
    token_endpoint: impl Fn(&str) -> bool,
) -> Result<(), AuthError> {
    let thumbprint = Thumbprint::from_header(header)?;
    let cert = thumbprint
        .as_ref()
        .and_then(|t| certificates.iter().find(|c| c.matches(t)))
        .ok_or_else(|| AuthError::CertificateNotRegistered {
            thumbprint: thumbprint.as_ref().map(Thumbprint::hex),
        })?;
    let rsa = [
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
    ];
    if !rsa.contains(&header.alg) {
        return Err(AuthError::BadSignature);
    }
    let validation = assertion_validation(header.alg);
    let claims = match jsonwebtoken::decode::<Claims>(assertion, &cert.key, &validation) {
        Ok(data) => data.claims,
        Err(e) => {
            return Err(match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature
                | jsonwebtoken::errors::ErrorKind::ImmatureSignature => AuthError::AssertionTime,
                jsonwebtoken::errors::ErrorKind::InvalidSignature
                | jsonwebtoken::errors::ErrorKind::InvalidAlgorithm
                | jsonwebtoken::errors::ErrorKind::InvalidRsaKey(_) => AuthError::BadSignature,
                _ => AuthError::MalformedAssertion,
            });
        }
    };
    let is_client = |v: &Option<String>| v.as_deref().is_some_and(|v| v == client_id);
    if !is_client(&claims.iss) || !is_client(&claims.sub) {
        return Err(AuthError::AssertionNotFromClient);
    }
    let audiences: Vec<&str> = match &claims.aud {
        Some(serde_json::Value::String(s)) => vec![s.as_str()],
        Some(serde_json::Value::Array(a)) => a.iter().filter_map(|v| v.as_str()).collect(),
        _ => Vec::new(),
    };
    if !audiences.iter().any(|a| token_endpoint(a)) {
        return Err(AuthError::AssertionAudience {
            audience: audiences.join(","),
        });
    }
    if claims.jti.as_deref().is_none_or(str::is_empty) {
        return Err(AuthError::MalformedAssertion);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{self, KeySpec, NewCertificate};
    use jsonwebtoken::EncodingKey;
    use serde_json::json;

    const CLIENT: &str = "cert-app";
    const AUD: &str = "https://login.test/tenant/oauth2/v2.0/token";

    struct Signer {
        der: Vec<u8>,
        key: EncodingKey,
    }

    fn signer(key: KeySpec) -> Signer {
        let m = crypto::self_signed(&NewCertificate {
            subject: "CN=cert-app".into(),
            dns_names: vec![],
            validity_months: 1,
            key,
        })
        .expect("cert");
        let pem = crypto::pem_block("PRIVATE KEY", &m.key_pkcs8);
        let key = match key {
            KeySpec::Rsa(_) => EncodingKey::from_rsa_pem(pem.as_bytes()),
            KeySpec::Ec(_) => EncodingKey::from_ec_pem(pem.as_bytes()),
        }
        .expect("key");
        Signer {
            der: m.leaf().to_vec(),
            key,
        }
    }

    fn sha(alg: &'static aws_lc_rs::digest::Algorithm, der: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(digest(alg, der))
    }

    fn header(s: &Signer, alg: Algorithm, sha256: bool) -> Header {
        let mut h = Header::new(alg);
        if sha256 {
            h.x5t_s256 = Some(sha(&aws_lc_rs::digest::SHA256, &s.der));
        } else {
            h.x5t = Some(sha(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, &s.der));
        }
        h
    }

    fn claims(change: impl FnOnce(&mut serde_json::Value)) -> serde_json::Value {
        let now = crate::store::unix_now();
        let mut c = json!({"aud": AUD, "iss": CLIENT, "sub": CLIENT, "exp": now + 600,
            "iat": now, "nbf": now, "jti": "8d2c1f0e"});
        change(&mut c);
        c
    }

    fn check(registered: &Signer, h: &Header, token: &str) -> Result<(), AuthError> {
        let certs = [ClientCertificate::from_der(&registered.der).expect("registered")];
        verify(&certs, CLIENT, token, h, |a| a == AUD)
    }

    fn sign(s: &Signer, h: &Header, c: &serde_json::Value) -> String {
        jsonwebtoken::encode(h, c, &s.key).expect("sign")
    }

    #[test]
    fn an_assertion_signed_by_a_registered_certificate_passes_by_either_thumbprint() {
        let s = signer(KeySpec::Rsa(2048));
        for (alg, sha256) in [(Algorithm::RS256, false), (Algorithm::PS256, true)] {
            let h = header(&s, alg, sha256);
            assert_eq!(check(&s, &h, &sign(&s, &h, &claims(|_| {}))), Ok(()));
        }
    }

    #[test]
    fn an_unregistered_certificate_is_named_by_its_thumbprint() {
        let (registered, other) = (signer(KeySpec::Rsa(2048)), signer(KeySpec::Rsa(2048)));
        let h = header(&other, Algorithm::RS256, false);
        let want = hex::encode_upper(digest(
            &aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY,
            &other.der,
        ));
        assert_eq!(
            check(&registered, &h, &sign(&other, &h, &claims(|_| {}))),
            Err(AuthError::CertificateNotRegistered {
                thumbprint: Some(want)
            })
        );
        let bare = Header::new(Algorithm::RS256);
        assert_eq!(
            check(
                &registered,
                &bare,
                &sign(&registered, &bare, &claims(|_| {}))
            ),
            Err(AuthError::CertificateNotRegistered { thumbprint: None })
        );
    }

    #[test]
    fn a_registered_thumbprint_with_another_key_fails_signature_validation() {
        let (registered, other) = (signer(KeySpec::Rsa(2048)), signer(KeySpec::Rsa(2048)));
        let h = header(&registered, Algorithm::RS256, false);
        assert_eq!(
            check(&registered, &h, &sign(&other, &h, &claims(|_| {}))),
            Err(AuthError::BadSignature)
        );
    }

    #[test]
    fn claims_are_checked_as_entra_checks_them() {
        let s = signer(KeySpec::Rsa(2048));
        let h = header(&s, Algorithm::RS256, false);
        let run =
            |change: fn(&mut serde_json::Value)| check(&s, &h, &sign(&s, &h, &claims(change)));
        assert_eq!(
            run(|c| c["exp"] = json!(crate::store::unix_now() - 3600)),
            Err(AuthError::AssertionTime)
        );
        assert_eq!(
            run(|c| c["nbf"] = json!(crate::store::unix_now() + 3600)),
            Err(AuthError::AssertionTime)
        );
        assert_eq!(
            run(|c| c["iss"] = json!("someone-else")),
            Err(AuthError::AssertionNotFromClient)
        );
        assert_eq!(
            run(|c| c["sub"] = json!("someone-else")),
            Err(AuthError::AssertionNotFromClient)
        );
        assert_eq!(
            run(|c| c["aud"] = json!("https://elsewhere/oauth2/v2.0/token")),
            Err(AuthError::AssertionAudience {
                audience: "https://elsewhere/oauth2/v2.0/token".into()
            })
        );
        assert_eq!(
            run(|c| {
                if let Some(o) = c.as_object_mut() {
                    o.remove("jti");
                }
            }),
            Err(AuthError::MalformedAssertion)
        );
    }

    #[test]
    fn seeded_certificates_must_be_one_rsa_certificate() {
        let ec = signer(KeySpec::Ec(crypto::Curve::P256));
        assert_eq!(
            ClientCertificate::from_der(&ec.der).err(),
            Some(CertificateError::NotRsa)
        );
        let rsa = signer(KeySpec::Rsa(2048));
        let one = crypto::pem_block("CERTIFICATE", &rsa.der);
        assert!(ClientCertificate::from_pem(&one).is_ok());
        assert_eq!(
            ClientCertificate::from_pem(&format!("{one}{one}")).err(),
            Some(CertificateError::SeveralCertificates(2))
        );
        assert_eq!(
            ClientCertificate::from_pem("not pem").err(),
            Some(CertificateError::NotPem)
        );
    }
}

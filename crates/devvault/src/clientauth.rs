//! What every client-assertion check shares: why authentication failed ([`AuthError`], one
//! AADSTS code per variant in [`crate::entra`]) and how an assertion's JWT is validated (time
//! with Entra's clock skew, required claims). [`crate::directory`] checks federated
//! assertions with it and [`crate::clientcert`] certificate ones.

use jsonwebtoken::{Algorithm, Validation};

/// Clock skew allowed on assertions, as Entra allows a few minutes.
pub const ASSERTION_LEEWAY_SECS: u64 = 300;

/// The JWT validation both kinds of assertion get: `exp` and `nbf` (jsonwebtoken leaves `nbf`
/// unchecked unless asked; Entra refuses early assertions) with [`ASSERTION_LEEWAY_SECS`], the
/// claims Entra requires, and no audience check (callers check it against the token endpoint
/// or the federated credentials).
pub fn assertion_validation(alg: Algorithm) -> Validation {
    let mut validation = Validation::new(alg);
    validation.validate_aud = false;
    validation.validate_nbf = true;
    validation.leeway = ASSERTION_LEEWAY_SECS;
    validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
    validation
}

/// Why a client could not authenticate. Each maps to one AADSTS code in the token endpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No such application.
    #[error("application {0} was not found in the directory")]
    UnknownClient(String),
    /// The client secret is wrong.
    #[error("invalid client secret")]
    BadSecret,
    /// Neither a secret nor an assertion.
    #[error("no client credential")]
    NoCredential,
    /// The assertion is not a JWT.
    #[error("malformed assertion")]
    MalformedAssertion,
    /// No trusted keys for the assertion's issuer.
    #[error("no federated identity record for issuer {0}")]
    UnknownIssuer(String),
    /// The signature did not verify with any of the issuer's keys.
    #[error("assertion signature validation failed")]
    BadSignature,
    /// Expired or not yet valid.
    #[error("assertion is not within its valid time range")]
    AssertionTime,
    /// A certificate assertion whose header names no certificate registered on the app.
    #[error("the signing certificate is not registered on the application")]
    CertificateNotRegistered {
        /// The thumbprint the header gave, uppercase hex; `None` when it gave none.
        thumbprint: Option<String>,
    },
    /// A certificate assertion whose `iss` or `sub` is not the client id.
    #[error("the assertion's iss and sub are not the client id")]
    AssertionNotFromClient,
    /// A certificate assertion not addressed to this token endpoint.
    #[error("the assertion's audience is not this token endpoint")]
    AssertionAudience {
        /// The assertion's audiences.
        audience: String,
    },
    /// Signed by a trusted issuer but no credential of the app matches issuer, subject and
    /// audience.
    #[error("no matching federated identity record")]
    NoMatchingFederation {
        /// Assertion issuer.
        issuer: String,
        /// Assertion subject.
        subject: String,
        /// Assertion audiences.
        audience: String,
    },
}

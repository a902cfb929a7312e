//! The identity directory: the applications, managed identities and pod bindings the seed
//! declares, the OIDC issuers trusted for federated credentials, and the checks behind every way
//! of getting a token — client secret, client assertion (federated, or signed with a registered
//! certificate: [`crate::clientcert`]), IMDS identity selection, NMI pod lookup.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;

use crate::clientauth::{AuthError, assertion_validation};
use crate::clientcert::{self, ClientCertificate};
use crate::seed::{Seed, SeedError, SeedFederatedCredential};

/// The identity a token is issued to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Application (client) id.
    pub client_id: String,
    /// Object (principal) id.
    pub object_id: String,
}

/// An application that may ask the token endpoint for tokens.
#[derive(Clone)]
struct App {
    principal: Principal,
    secret: Option<String>,
    federated: Vec<SeedFederatedCredential>,
    certificates: Vec<ClientCertificate>,
}

/// A managed identity of the "VM".
#[derive(Debug, Clone)]
pub struct ManagedIdentity {
    /// Who it is.
    pub principal: Principal,
    /// ARM resource id.
    pub resource_id: Option<String>,
    /// True for the system-assigned identity.
    pub system_assigned: bool,
}

#[derive(Debug, Clone)]
struct PodBinding {
    namespace: String,
    pod_name: Option<String>,
    client_id: String,
}

struct IssuerKey {
    kid: Option<String>,
    key: DecodingKey,
}

/// Why IMDS could not pick an identity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImdsError {
    /// The "VM" has no identity at all, or none matches the selector.
    #[error("Identity not found")]
    NotFound,
    /// Several user-assigned identities and no selector.
    #[error(
        "Multiple user assigned identities exist, please specify the clientId / resourceId of the identity in the token request"
    )]
    Ambiguous,
}

/// All identities of one dev vault.
#[derive(Default)]
pub struct Directory {
    apps: BTreeMap<String, App>,
    managed: Vec<ManagedIdentity>,
    pods: Vec<PodBinding>,
    issuers: BTreeMap<String, Vec<IssuerKey>>,
}

#[derive(Deserialize)]
struct AssertionClaims {
    iss: Option<String>,
    sub: Option<String>,
    #[serde(default)]
    aud: Option<serde_json::Value>,
}

impl Directory {
    /// The directory a seed describes.
    pub fn from_seed(seed: &Seed) -> Result<Self, SeedError> {
        let mut dir = Directory::default();
        for (i, c) in seed.clients.iter().enumerate() {
            dir.apps.insert(
                c.client_id.to_ascii_lowercase(),
                App {
                    principal: Principal {
                        client_id: c.client_id.clone(),
                        object_id: c.object_id.clone().unwrap_or_else(|| c.client_id.clone()),
                    },
                    secret: Some(c.client_secret.clone()).filter(|s| !s.is_empty()),
                    federated: c.federated_credentials.clone(),
                    certificates: client_certificates(i, &c.certificates)?,
                },
            );
        }
        for m in &seed.managed_identities {
            let principal = Principal {
                client_id: m.client_id.clone(),
                object_id: m.object_id.clone().unwrap_or_else(|| m.client_id.clone()),
            };
            if !m.federated_credentials.is_empty() {
                dir.apps
                    .entry(m.client_id.to_ascii_lowercase())
                    .or_insert_with(|| App {
                        principal: principal.clone(),
                        secret: None,
                        federated: m.federated_credentials.clone(),
                        certificates: Vec::new(),
                    });
            }
            dir.managed.push(ManagedIdentity {
                principal,
                resource_id: m.resource_id.clone(),
                system_assigned: m.system_assigned,
            });
        }
        for p in &seed.pod_identities {
            dir.pods.push(PodBinding {
                namespace: p.namespace.clone(),
                pod_name: p.pod_name.clone(),
                client_id: p.client_id.clone(),
            });
        }
        for (i, iss) in seed.oidc_issuers.iter().enumerate() {
            let field = |what: &str| SeedError::Invalid {
                field: format!("oidcIssuers[{i}].{what}"),
                reason: "not a usable RSA or EC public key".into(),
            };
            let mut keys = Vec::new();
            if let Some(pem) = &iss.public_key_pem {
                let key = DecodingKey::from_rsa_pem(pem.as_bytes())
                    .or_else(|_| DecodingKey::from_ec_pem(pem.as_bytes()))
                    .map_err(|_| field("publicKeyPem"))?;
                keys.push(IssuerKey { kid: None, key });
            }
            if let Some(jwks) = &iss.jwks {
                let set: jsonwebtoken::jwk::JwkSet =
                    serde_json::from_value(jwks.clone()).map_err(|_| field("jwks"))?;
                for jwk in &set.keys {
                    let key = DecodingKey::from_jwk(jwk).map_err(|_| field("jwks"))?;
                    keys.push(IssuerKey {
                        kid: jwk.common.key_id.clone(),
                        key,
                    });
                }
            }
            dir.issuers
                .entry(iss.issuer.clone())
                .or_default()
                .extend(keys);
        }
        Ok(dir)
    }

    /// Checks a client secret.
    pub fn authenticate_secret(
        &self,
        client_id: &str,
        secret: &str,
    ) -> Result<Principal, AuthError> {
        let app = self
            .apps
            .get(&client_id.to_ascii_lowercase())
            .ok_or_else(|| AuthError::UnknownClient(client_id.to_owned()))?;
        match &app.secret {
            Some(expected) if constant_time_eq(secret.as_bytes(), expected.as_bytes()) => {
                Ok(app.principal.clone())
            }
            _ => Err(AuthError::BadSecret),
        }
    }

    /// True when the application exists.
    pub fn has_app(&self, client_id: &str) -> bool {
        self.apps.contains_key(&client_id.to_ascii_lowercase())
    }

    /// Verifies a client assertion for `client_id`. An assertion that names a certificate (or
    /// whose issuer is the client itself) goes to the app's registered certificates
    /// ([`clientcert::verify`]; `token_endpoint` says whether an audience names this token
    /// endpoint). Any other is a federated one: signature against the issuer's keys, time
    /// window, then issuer + subject + audience against the app's federated credentials.
    pub fn authenticate_assertion(
        &self,
        client_id: &str,
        assertion: &str,
        token_endpoint: impl Fn(&str) -> bool,
    ) -> Result<Principal, AuthError> {
        let app = self
            .apps
            .get(&client_id.to_ascii_lowercase())
            .ok_or_else(|| AuthError::UnknownClient(client_id.to_owned()))?;
        let header =
            jsonwebtoken::decode_header(assertion).map_err(|_| AuthError::MalformedAssertion)?;
        let unverified = peek_claims(assertion)?;
        if clientcert::is_certificate_assertion(&header, unverified.iss.as_deref(), client_id) {
            clientcert::verify(
                &app.certificates,
                client_id,
                assertion,
                &header,
                token_endpoint,
            )?;
            return Ok(app.principal.clone());
        }
        let issuer = unverified.iss.clone().unwrap_or_default();
        let keys = self
            .issuers
            .get(&issuer)
            .ok_or_else(|| AuthError::UnknownIssuer(issuer.clone()))?;
        if matches!(
            header.alg,
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
        ) {
            return Err(AuthError::BadSignature);
        }
        let mut validation = assertion_validation(header.alg);
        validation.set_issuer(&[issuer.as_str()]);
        let mut verified = None;
        let mut time_error = false;
        for k in keys {
            if let (Some(want), Some(have)) = (&header.kid, &k.kid)
                && want != have
            {
                continue;
            }
            match jsonwebtoken::decode::<AssertionClaims>(assertion, &k.key, &validation) {
                Ok(data) => {
                    verified = Some(data.claims);
                    break;
                }
                Err(e) => {
                    if matches!(
                        e.kind(),
                        jsonwebtoken::errors::ErrorKind::ExpiredSignature
                            | jsonwebtoken::errors::ErrorKind::ImmatureSignature
                    ) {
                        time_error = true;
                    }
                }
            }
        }
        let claims = match verified {
            Some(c) => c,
            None if time_error => return Err(AuthError::AssertionTime),
            None => return Err(AuthError::BadSignature),
        };
        let subject = claims.sub.unwrap_or_default();
        let audiences: Vec<String> = match claims.aud {
            Some(serde_json::Value::String(s)) => vec![s],
            Some(serde_json::Value::Array(a)) => a
                .into_iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        };
        let matched = app.federated.iter().any(|fc| {
            fc.issuer == issuer
                && fc.subject == subject
                && audiences.iter().any(|a| a == fc.audience())
        });
        if matched {
            Ok(app.principal.clone())
        } else {
            Err(AuthError::NoMatchingFederation {
                issuer,
                subject,
                audience: audiences.join(","),
            })
        }
    }

    /// The identity IMDS hands out: the one selected by client id, object id or resource id,
    /// else the system-assigned one, else the only user-assigned one.
    pub fn imds_identity(
        &self,
        client_id: Option<&str>,
        object_id: Option<&str>,
        resource_id: Option<&str>,
    ) -> Result<&ManagedIdentity, ImdsError> {
        let eq = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
        if let Some(c) = client_id {
            return self
                .managed
                .iter()
                .find(|m| eq(&m.principal.client_id, c))
                .ok_or(ImdsError::NotFound);
        }
        if let Some(o) = object_id {
            return self
                .managed
                .iter()
                .find(|m| eq(&m.principal.object_id, o))
                .ok_or(ImdsError::NotFound);
        }
        if let Some(r) = resource_id {
            return self
                .managed
                .iter()
                .find(|m| m.resource_id.as_deref().is_some_and(|x| eq(x, r)))
                .ok_or(ImdsError::NotFound);
        }
        if let Some(system) = self.managed.iter().find(|m| m.system_assigned) {
            return Ok(system);
        }
        match self.managed.as_slice() {
            [] => Err(ImdsError::NotFound),
            [only] => Ok(only),
            _ => Err(ImdsError::Ambiguous),
        }
    }

    /// The identity bound to a pod (optionally narrowed to `client_id`), as NMI finds it.
    pub fn pod_identity(
        &self,
        namespace: &str,
        pod: &str,
        client_id: Option<&str>,
    ) -> Option<Principal> {
        self.pods
            .iter()
            .filter(|b| b.namespace == namespace)
            .filter(|b| b.pod_name.as_deref().is_none_or(|p| p == pod))
            .find(|b| client_id.is_none_or(|c| c.eq_ignore_ascii_case(&b.client_id)))
            .map(|b| {
                self.managed
                    .iter()
                    .find(|m| m.principal.client_id.eq_ignore_ascii_case(&b.client_id))
                    .map(|m| m.principal.clone())
                    .unwrap_or_else(|| Principal {
                        client_id: b.client_id.clone(),
                        object_id: b.client_id.clone(),
                    })
            })
    }
}

/// The certificates registered on seed client `i`.
fn client_certificates(i: usize, pems: &[String]) -> Result<Vec<ClientCertificate>, SeedError> {
    pems.iter()
        .enumerate()
        .map(|(j, pem)| {
            ClientCertificate::from_pem(pem).map_err(|e| SeedError::Invalid {
                field: format!("clients[{i}].certificates[{j}]"),
                reason: e.to_string(),
            })
        })
        .collect()
}

fn peek_claims(token: &str) -> Result<AssertionClaims, AuthError> {
    let payload = token
        .split('.')
        .nth(1)
        .ok_or(AuthError::MalformedAssertion)?;
    let bytes = URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| AuthError::MalformedAssertion)?;
    serde_json::from_slice(&bytes).map_err(|_| AuthError::MalformedAssertion)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    fn issuer_key() -> (String, EncodingKey) {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
        let enc = EncodingKey::from_ec_pem(key.serialize_pem().as_bytes()).expect("enc");
        (key.public_key_pem(), enc)
    }

    fn assertion(enc: &EncodingKey, iss: &str, sub: &str, aud: &str, exp_in: i64) -> String {
        let now = crate::store::unix_now();
        jsonwebtoken::encode(
            &Header::new(Algorithm::ES256),
            &json!({"iss": iss, "sub": sub, "aud": aud, "exp": now + exp_in, "nbf": now - 10, "iat": now}),
            enc,
        )
        .expect("sign")
    }

    fn directory(pem: &str) -> Directory {
        let yaml = format!(
            "clients:\n- clientId: wl-app\n  federatedCredentials:\n  - issuer: https://oidc.test\n    subject: system:serviceaccount:ns:sa\noidcIssuers:\n- issuer: https://oidc.test\n  publicKeyPem: |\n    {}\n",
            pem.trim().replace('\n', "\n    ")
        );
        Directory::from_seed(&Seed::from_yaml(&yaml).expect("seed")).expect("directory")
    }

    #[test]
    fn a_matching_federated_assertion_yields_the_app_and_mismatches_do_not() {
        let (pem, enc) = issuer_key();
        let dir = directory(&pem);
        let sub = "system:serviceaccount:ns:sa";
        let aud = "api://AzureADTokenExchange";
        let ok = assertion(&enc, "https://oidc.test", sub, aud, 600);
        assert_eq!(
            dir.authenticate_assertion("wl-app", &ok, |_| false)
                .expect("ok")
                .client_id,
            "wl-app"
        );
        let wrong_sub = assertion(
            &enc,
            "https://oidc.test",
            "system:serviceaccount:ns:other",
            aud,
            600,
        );
        assert!(matches!(
            dir.authenticate_assertion("wl-app", &wrong_sub, |_| false),
            Err(AuthError::NoMatchingFederation { .. })
        ));
        let wrong_aud = assertion(&enc, "https://oidc.test", sub, "api://other", 600);
        assert!(matches!(
            dir.authenticate_assertion("wl-app", &wrong_aud, |_| false),
            Err(AuthError::NoMatchingFederation { .. })
        ));
        let expired = assertion(&enc, "https://oidc.test", sub, aud, -3600);
        assert_eq!(
            dir.authenticate_assertion("wl-app", &expired, |_| false),
            Err(AuthError::AssertionTime)
        );
        let (_, other_key) = issuer_key();
        let forged = assertion(&other_key, "https://oidc.test", sub, aud, 600);
        assert_eq!(
            dir.authenticate_assertion("wl-app", &forged, |_| false),
            Err(AuthError::BadSignature)
        );
        let foreign = assertion(&enc, "https://elsewhere", sub, aud, 600);
        assert!(matches!(
            dir.authenticate_assertion("wl-app", &foreign, |_| false),
            Err(AuthError::UnknownIssuer(_))
        ));
    }

    #[test]
    fn a_federated_assertion_not_valid_yet_is_refused_beyond_the_skew() {
        let (pem, enc) = issuer_key();
        let dir = directory(&pem);
        let now = crate::store::unix_now();
        let early = |nbf: i64| {
            jsonwebtoken::encode(
                &Header::new(Algorithm::ES256),
                &json!({"iss": "https://oidc.test", "sub": "system:serviceaccount:ns:sa",
                        "aud": "api://AzureADTokenExchange", "exp": now + 7200, "nbf": nbf}),
                &enc,
            )
            .expect("sign")
        };
        assert_eq!(
            dir.authenticate_assertion("wl-app", &early(now + 3600), |_| false),
            Err(AuthError::AssertionTime)
        );
        assert!(
            dir.authenticate_assertion("wl-app", &early(now + 60), |_| false)
                .is_ok(),
            "within the five minutes' skew"
        );
    }

    #[test]
    fn an_issuer_given_as_a_jwks_verifies_assertions_by_key_id() {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
        let enc = EncodingKey::from_ec_pem(key.serialize_pem().as_bytes()).expect("enc");
        let spki = rcgen::PublicKeyData::subject_public_key_info(&key);
        let mut jwk =
            serde_json::to_value(crate::crypto::jwk_from_spki(&spki).expect("jwk")).expect("json");
        jwk["kid"] = json!("key-1");
        jwk["alg"] = json!("ES256");
        let yaml = format!(
            "clients:\n- clientId: wl-app\n  federatedCredentials:\n  - issuer: https://oidc.test\n    subject: sa\noidcIssuers:\n- issuer: https://oidc.test\n  jwks: {}\n",
            json!({ "keys": [jwk] })
        );
        let dir = Directory::from_seed(&Seed::from_yaml(&yaml).expect("seed")).expect("dir");
        let now = crate::store::unix_now();
        let claims = json!({"iss": "https://oidc.test", "sub": "sa", "aud": "api://AzureADTokenExchange", "exp": now + 600});
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some("key-1".into());
        let token = jsonwebtoken::encode(&header, &claims, &enc).expect("sign");
        assert_eq!(
            dir.authenticate_assertion("wl-app", &token, |_| false)
                .expect("ok")
                .client_id,
            "wl-app"
        );
        header.kid = Some("another-key".into());
        let token = jsonwebtoken::encode(&header, &claims, &enc).expect("sign");
        assert_eq!(
            dir.authenticate_assertion("wl-app", &token, |_| false),
            Err(AuthError::BadSignature)
        );
    }

    #[test]
    fn a_client_certificate_that_is_not_one_rsa_certificate_fails_the_seed_by_field() {
        let ec = crate::crypto::self_signed(&crate::crypto::NewCertificate {
            subject: "CN=ec".into(),
            dns_names: vec![],
            validity_months: 1,
            key: crate::crypto::KeySpec::Ec(crate::crypto::Curve::P256),
        })
        .expect("cert");
        let pem = crate::crypto::pem_block("CERTIFICATE", ec.leaf());
        let yaml = format!(
            "clients:\n- clientId: a\n- clientId: b\n  certificates:\n  - |\n    {}\n",
            pem.trim().replace('\n', "\n    ")
        );
        let err = Directory::from_seed(&Seed::from_yaml(&yaml).expect("seed"))
            .err()
            .expect("refused");
        assert!(
            err.to_string()
                .starts_with("seed clients[1].certificates[0]: the certificate's key is not RSA"),
            "{err}"
        );
    }

    #[test]
    fn imds_picks_by_selector_then_system_assigned_then_the_only_one() {
        let seed = Seed::from_yaml(
            "managedIdentities:\n- clientId: ua-1\n  objectId: oid-1\n  resourceId: /subs/x/ua-1\n- clientId: sys\n  systemAssigned: true\n",
        )
        .expect("seed");
        let dir = Directory::from_seed(&seed).expect("dir");
        let pick = |c, o, r| {
            dir.imds_identity(c, o, r)
                .map(|m| m.principal.client_id.clone())
        };
        assert_eq!(pick(None, None, None), Ok("sys".into()));
        assert_eq!(pick(Some("UA-1"), None, None), Ok("ua-1".into()));
        assert_eq!(pick(None, Some("oid-1"), None), Ok("ua-1".into()));
        assert_eq!(pick(None, None, Some("/subs/x/ua-1")), Ok("ua-1".into()));
        assert_eq!(pick(Some("nope"), None, None), Err(ImdsError::NotFound));
        let two =
            Seed::from_yaml("managedIdentities:\n- clientId: a\n- clientId: b\n").expect("seed");
        let dir = Directory::from_seed(&two).expect("dir");
        assert_eq!(
            dir.imds_identity(None, None, None).err(),
            Some(ImdsError::Ambiguous)
        );
    }
}

//! The seed file: the tenant, the identities (service principals with secrets, certificates or
//! federated credentials, managed identities, pod identities, and the OIDC issuers federated
//! credentials trust), and each vault's access policies and objects (secrets; keys generated or
//! given; certificates generated, with a chain, or given as PFX or PEM). docs/dev-vault.md has the
//! full reference; in short:
//!
//! ```yaml
//! tenantId: 6b0f2b1e-6a8a-4b5a-9d0e-2f5c3c3a9a11   # optional
//! clients:
//!   - clientId: demo-app
//!     clientSecret: demo-password                  # optional with other credentials
//!     federatedCredentials:
//!       - issuer: https://oidc.example
//!         subject: system:serviceaccount:default:app
//!     certificates:                                 # certificate credentials (PEM, RSA)
//!       - "-----BEGIN CERTIFICATE-----..."
//! oidcIssuers:
//!   - issuer: https://oidc.example
//!     publicKeyPem: "-----BEGIN PUBLIC KEY-----..."
//! managedIdentities:                                # what IMDS hands out
//!   - clientId: vm-identity
//!     systemAssigned: true
//! podIdentities:                                    # what NMI hands out
//!   - namespace: default
//!     clientId: vm-identity
//! vaults:
//!   - name: keyvol-demo
//!     accessPolicies:                               # optional; absent = everyone may do all
//!       - identity: demo-app
//!         secrets: [get, list]
//!     secrets:
//!       - name: db-password
//!         value: correct-horse-battery-staple
//!     keys:
//!       - name: signing
//!         kty: EC
//!         crv: P-384
//!     certificates:
//!       - name: web
//!         subject: CN=web.example
//!         chain: true
//! ```
//!
//! Errors name the field and never echo values, which may be secrets.

use base64::Engine;
use serde::Deserialize;

use crate::certpolicy;
use crate::crypto::{self, CertMaterial, KeySpec};
use crate::limits::{check_limits, valid_object_name, valid_vault_name, valid_version};
use crate::store::{
    Attributes, KeyVersion, NewCertVersion, NewSecret, Store, StoreError, Tags, unix_now,
};

/// Tenant used when the seed names none.
pub const DEFAULT_TENANT: &str = "72f3b6e9-3c5a-4d6b-9a1e-0c2d4e6f8a10";

/// The audience Entra expects on federated assertions by default.
pub const DEFAULT_FEDERATED_AUDIENCE: &str = "api://AzureADTokenExchange";

/// Why a seed could not be loaded. Messages never echo the seed's text, which holds secrets.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    /// Not valid YAML for the seed schema.
    #[error("failed to parse seed: {0}")]
    Syntax(String),
    /// A value breaks a rule.
    #[error("seed {field}: {reason}")]
    Invalid {
        /// Path of the field.
        field: String,
        /// What is wrong.
        reason: String,
    },
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> SeedError {
    SeedError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

/// `Debug` showing only the field that names the entry: the rest may be secret (client secrets,
/// values, private keys, PFX passwords).
macro_rules! debug_naming_only {
    ($type:ident, $field:ident) => {
        impl std::fmt::Debug for $type {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($type))
                    .field(stringify!($field), &self.$field)
                    .finish_non_exhaustive()
            }
        }
    };
}

/// A whole seed.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Seed {
    /// Directory (tenant) id the vault and token endpoint use.
    pub tenant_id: Option<String>,
    /// Applications (service principals).
    #[serde(default)]
    pub clients: Vec<SeedClient>,
    /// Managed identities of the "VM" that IMDS serves.
    #[serde(default)]
    pub managed_identities: Vec<SeedManagedIdentity>,
    /// Pod to identity bindings that the NMI endpoint serves.
    #[serde(default)]
    pub pod_identities: Vec<SeedPodIdentity>,
    /// OIDC issuers whose tokens may be presented as client assertions.
    #[serde(default)]
    pub oidc_issuers: Vec<SeedIssuer>,
    /// Vaults and their objects.
    #[serde(default)]
    pub vaults: Vec<SeedVault>,
}

/// A service principal.
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedClient {
    /// Application (client) id.
    pub client_id: String,
    /// Its secret; empty means the client has none (federated credentials only).
    #[serde(default)]
    pub client_secret: String,
    /// Object id (defaults to the client id).
    pub object_id: Option<String>,
    /// Federated identity credentials.
    #[serde(default)]
    pub federated_credentials: Vec<SeedFederatedCredential>,
    /// Certificate credentials: PEM certificates (RSA keys), one per entry, whose private keys
    /// sign client assertions (`CertificateCredential`).
    #[serde(default)]
    pub certificates: Vec<String>,
}

debug_naming_only!(SeedClient, client_id);

/// A federated identity credential: tokens from `issuer` about `subject` for `audience`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedFederatedCredential {
    /// Issuer URL, matched exactly against the assertion's `iss`.
    pub issuer: String,
    /// Subject, matched exactly against `sub`.
    pub subject: String,
    /// Audience (default `api://AzureADTokenExchange`).
    pub audience: Option<String>,
}

impl SeedFederatedCredential {
    /// The audience in force.
    pub fn audience(&self) -> &str {
        self.audience
            .as_deref()
            .unwrap_or(DEFAULT_FEDERATED_AUDIENCE)
    }
}

/// A managed identity assigned to the "VM".
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedManagedIdentity {
    /// Client id.
    pub client_id: String,
    /// Object (principal) id (defaults to the client id).
    pub object_id: Option<String>,
    /// ARM resource id of a user-assigned identity.
    pub resource_id: Option<String>,
    /// True for the system-assigned identity (at most one).
    #[serde(default)]
    pub system_assigned: bool,
    /// Federated identity credentials (workload identity with a user-assigned identity).
    #[serde(default)]
    pub federated_credentials: Vec<SeedFederatedCredential>,
}

/// A pod's identity, as AAD Pod Identity's AzureIdentityBinding gave it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedPodIdentity {
    /// Pod namespace.
    pub namespace: String,
    /// Pod name; absent means every pod in the namespace.
    pub pod_name: Option<String>,
    /// Client id of the identity.
    pub client_id: String,
}

/// An OIDC issuer and the keys that verify its tokens.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedIssuer {
    /// Issuer URL.
    pub issuer: String,
    /// A public key (SPKI PEM, RSA or EC).
    pub public_key_pem: Option<String>,
    /// A JSON Web Key Set.
    pub jwks: Option<serde_json::Value>,
}

/// One vault.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedVault {
    /// Vault name (3-24 of `0-9a-zA-Z-`).
    pub name: String,
    /// Who may do what; absent means every identity may do everything.
    pub access_policies: Option<Vec<SeedAccessPolicy>>,
    /// Secrets in the vault.
    #[serde(default)]
    pub secrets: Vec<SeedSecret>,
    /// Keys.
    #[serde(default)]
    pub keys: Vec<SeedKey>,
    /// Certificates.
    #[serde(default)]
    pub certificates: Vec<SeedCertificate>,
}

/// Permissions of one identity, per object kind, named as in Key Vault access policies.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedAccessPolicy {
    /// Client id or object id.
    pub identity: String,
    /// Secret permissions (`get`, `list`, `set`, `delete`, `recover`, `purge`, or `all`).
    #[serde(default)]
    pub secrets: Vec<String>,
    /// Key permissions (`get`, `list`, `create`, `import`, `update`, `delete`, `recover`,
    /// `purge`, `all`).
    #[serde(default)]
    pub keys: Vec<String>,
    /// Certificate permissions (`get`, `list`, `create`, `import`, `update`, `delete`, `recover`,
    /// `purge`, `all`).
    #[serde(default)]
    pub certificates: Vec<String>,
}

/// One secret with one or more versions.
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedSecret {
    /// Secret name (1-127 of `0-9a-zA-Z-`).
    pub name: String,
    /// Shorthand for a single version.
    pub value: Option<String>,
    /// Content type for the shorthand form (and default for versions).
    pub content_type: Option<String>,
    /// Tags for the shorthand form.
    #[serde(default)]
    pub tags: Tags,
    /// Enabled flag for the shorthand form.
    pub enabled: Option<bool>,
    /// Not-before (Unix seconds) for the shorthand form.
    pub nbf: Option<i64>,
    /// Expiry (Unix seconds) for the shorthand form.
    pub exp: Option<i64>,
    /// Versions, oldest first.
    #[serde(default)]
    pub versions: Vec<SeedSecretVersion>,
}

debug_naming_only!(SeedSecret, name);

/// One version of a secret.
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedSecretVersion {
    /// The value.
    pub value: String,
    /// A fixed version id (32 lowercase hex); generated when absent.
    pub version: Option<String>,
    /// Content type.
    pub content_type: Option<String>,
    /// Whether the version is enabled (default true).
    pub enabled: Option<bool>,
    /// Not-before.
    pub nbf: Option<i64>,
    /// Expiry.
    pub exp: Option<i64>,
    /// Tags.
    #[serde(default)]
    pub tags: Tags,
}

/// A key: generated from `kty`/`keySize`/`crv`, or given as a private key PEM.
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedKey {
    /// Key name.
    pub name: String,
    /// `RSA` (default) or `EC`.
    pub kty: Option<String>,
    /// RSA size (2048 default, 3072, 4096).
    pub key_size: Option<u32>,
    /// EC curve (P-256 default, P-384, P-521).
    pub crv: Option<String>,
    /// A private key to use instead of generating one (PKCS#8, PKCS#1 or SEC1 PEM).
    pub private_key_pem: Option<String>,
    /// Permitted operations (the type's defaults when absent).
    pub key_ops: Option<Vec<String>>,
    /// Fixed version id.
    pub version: Option<String>,
    /// Enabled flag.
    pub enabled: Option<bool>,
    /// Tags.
    #[serde(default)]
    pub tags: Tags,
}

debug_naming_only!(SeedKey, name);

/// A certificate: generated (self-signed, or under a generated chain), or given as PFX or PEM.
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedCertificate {
    /// Certificate name.
    pub name: String,
    /// Subject for generated certificates (default `CN=<name>`).
    pub subject: Option<String>,
    /// DNS names for generated certificates.
    #[serde(default)]
    pub dns_names: Vec<String>,
    /// Validity of generated certificates in months (default 12).
    pub validity_months: Option<u32>,
    /// Key type of generated certificates (`RSA` default, `EC`).
    pub kty: Option<String>,
    /// RSA size of generated certificates.
    pub key_size: Option<u32>,
    /// Curve of generated EC certificates.
    pub crv: Option<String>,
    /// Generate the leaf under a fresh intermediate and root instead of self-signing.
    #[serde(default)]
    pub chain: bool,
    /// The backing secret's content type (`application/x-pkcs12` default, or
    /// `application/x-pem-file`).
    pub content_type: Option<String>,
    /// A PFX to import, base64.
    pub pfx: Option<String>,
    /// The PFX's password.
    pub password: Option<String>,
    /// A PEM (private key and certificates) to import.
    pub pem: Option<String>,
    /// Fixed version id.
    pub version: Option<String>,
    /// Enabled flag.
    pub enabled: Option<bool>,
    /// Tags.
    #[serde(default)]
    pub tags: Tags,
}

debug_naming_only!(SeedCertificate, name);

impl Seed {
    /// Parses and checks a seed.
    pub fn from_yaml(text: &str) -> Result<Self, SeedError> {
        let seed: Seed = serde_saphyr::from_str(text).map_err(|e| {
            SeedError::Syntax(
                e.render_with_options(serde_saphyr::render_options! {
                    snippets: serde_saphyr::SnippetMode::Off,
                })
                .to_string(),
            )
        })?;
        seed.check()?;
        Ok(seed)
    }

    /// The tenant id in force.
    pub fn tenant(&self) -> &str {
        self.tenant_id.as_deref().unwrap_or(DEFAULT_TENANT)
    }

    fn check(&self) -> Result<(), SeedError> {
        if self
            .managed_identities
            .iter()
            .filter(|m| m.system_assigned)
            .count()
            > 1
        {
            return Err(invalid(
                "managedIdentities",
                "at most one identity may be systemAssigned",
            ));
        }
        for (i, iss) in self.oidc_issuers.iter().enumerate() {
            if iss.public_key_pem.is_none() && iss.jwks.is_none() {
                return Err(invalid(
                    format!("oidcIssuers[{i}]"),
                    "give publicKeyPem or jwks",
                ));
            }
        }
        for (i, v) in self.vaults.iter().enumerate() {
            if !valid_vault_name(&v.name) {
                return Err(invalid(
                    format!("vaults[{i}].name"),
                    format!(
                        "{:?} must be 3-24 characters of 0-9, a-z, A-Z and '-'",
                        v.name
                    ),
                ));
            }
            check_objects(i, &v.secrets)?;
            check_objects(i, &v.keys)?;
            check_objects(i, &v.certificates)?;
        }
        Ok(())
    }

    /// Fills `store` with the seed's vaults. A vault the store already holds (a file-backed
    /// store on a later start) is left as it is: stored data wins over the seed.
    pub fn populate(&self, store: &Store) -> Result<(), SeedError> {
        for (i, v) in self.vaults.iter().enumerate() {
            if !store.add_vault(&v.name) {
                continue;
            }
            seed_objects(store, i, &v.name, &v.secrets)?;
            seed_objects(store, i, &v.name, &v.keys)?;
            seed_objects(store, i, &v.name, &v.certificates)?;
        }
        Ok(())
    }
}

/// What the seed's three object kinds share: a name under a kind's key, rules of their own,
/// and how each goes into the store. [`Seed::check`] and [`Seed::populate`] walk every kind the
/// same way through it; errors name the object as `vaults[i].<kind>[j]`.
trait SeedObject {
    /// The kind's key under a vault (`secrets`).
    const KIND: &'static str;
    /// The object's name.
    fn name(&self) -> &str;
    /// Checks the kind's own rules (beyond the name); `field` is the object's path.
    fn check(&self, _field: &str) -> Result<(), SeedError> {
        Ok(())
    }
    /// Adds the object to `vault`.
    fn seed(&self, store: &Store, vault: &str) -> Result<(), String>;
}

/// Checks every object of one kind in vault `i`.
fn check_objects<T: SeedObject>(i: usize, objects: &[T]) -> Result<(), SeedError> {
    for (j, o) in objects.iter().enumerate() {
        let field = format!("vaults[{i}].{}[{j}]", T::KIND);
        if !valid_object_name(o.name()) {
            return Err(invalid(
                format!("{field}.name"),
                format!(
                    "{:?} must be 1-127 characters of 0-9, a-z, A-Z and '-'",
                    o.name()
                ),
            ));
        }
        o.check(&field)?;
    }
    Ok(())
}

/// Adds every object of one kind to vault `i`, named `vault`.
fn seed_objects<T: SeedObject>(
    store: &Store,
    i: usize,
    vault: &str,
    objects: &[T],
) -> Result<(), SeedError> {
    for (j, o) in objects.iter().enumerate() {
        o.seed(store, vault)
            .map_err(|reason| invalid(format!("vaults[{i}].{}[{j}]", T::KIND), reason))?;
    }
    Ok(())
}

impl SeedObject for SeedSecret {
    const KIND: &'static str = "secrets";

    fn name(&self) -> &str {
        &self.name
    }

    fn check(&self, field: &str) -> Result<(), SeedError> {
        if self.value.is_some() != self.versions.is_empty() {
            return Err(invalid(field, "give either value or versions"));
        }
        check_limits(self.value.as_deref(), self.content_type.as_deref())
            .map_err(|e| invalid(field, e.to_string()))?;
        for (k, ver) in self.versions.iter().enumerate() {
            if let Some(id) = &ver.version
                && !valid_version(id)
            {
                return Err(invalid(
                    format!("{field}.versions[{k}].version"),
                    "must be 32 lowercase hex characters",
                ));
            }
            check_limits(Some(&ver.value), ver.content_type.as_deref())
                .map_err(|e| invalid(format!("{field}.versions[{k}]"), e.to_string()))?;
        }
        Ok(())
    }

    fn seed(&self, store: &Store, vault: &str) -> Result<(), String> {
        let versions: Vec<NewSecret> = match &self.value {
            Some(value) => vec![NewSecret {
                value: value.clone(),
                content_type: self.content_type.clone(),
                tags: non_empty(&self.tags),
                enabled: self.enabled,
                nbf: self.nbf,
                exp: self.exp,
                version: None,
            }],
            None => self
                .versions
                .iter()
                .map(|ver| NewSecret {
                    value: ver.value.clone(),
                    content_type: ver
                        .content_type
                        .clone()
                        .or_else(|| self.content_type.clone()),
                    enabled: ver.enabled,
                    nbf: ver.nbf,
                    exp: ver.exp,
                    tags: non_empty(&ver.tags),
                    version: ver.version.clone(),
                })
                .collect(),
        };
        for new in versions {
            store
                .set_secret(vault, &self.name, new)
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

impl SeedObject for SeedKey {
    const KIND: &'static str = "keys";

    fn name(&self) -> &str {
        &self.name
    }

    fn seed(&self, store: &Store, vault: &str) -> Result<(), String> {
        let version = key_version(self)?;
        store
            .write(vault, |vt| vt.keys.add(&self.name, version).map(|_| ()))
            .map_err(|e: StoreError| e.to_string())
    }
}

impl SeedObject for SeedCertificate {
    const KIND: &'static str = "certificates";

    fn name(&self) -> &str {
        &self.name
    }

    fn check(&self, field: &str) -> Result<(), SeedError> {
        if self.pfx.is_some() && self.pem.is_some() {
            return Err(invalid(field, "give at most one of pfx and pem"));
        }
        Ok(())
    }

    fn seed(&self, store: &Store, vault: &str) -> Result<(), String> {
        seed_certificate(store, vault, self)
    }
}

fn key_version(k: &SeedKey) -> Result<KeyVersion, String> {
    let pkcs8 = match &k.private_key_pem {
        Some(pem) => crypto::pkcs8_from_pem(pem).map_err(|e| e.to_string())?,
        None => KeySpec::parse(
            k.kty.as_deref().unwrap_or("RSA"),
            k.key_size,
            k.crv.as_deref(),
        )
        .and_then(KeySpec::generate)
        .map_err(|e| e.to_string())?,
    };
    let jwk = crypto::jwk_from_pkcs8(&pkcs8).map_err(|e| e.to_string())?;
    let key_ops = k.key_ops.clone().unwrap_or_else(|| jwk.default_ops());
    Ok(KeyVersion {
        version: k
            .version
            .clone()
            .unwrap_or_else(crate::store::new_version_id),
        pkcs8,
        jwk,
        key_ops,
        attributes: Attributes::new(k.enabled, None, None, unix_now()),
        tags: non_empty(&k.tags),
        managed: false,
        exportable: false,
    })
}

fn seed_certificate(store: &Store, vault: &str, c: &SeedCertificate) -> Result<(), String> {
    let content_type = c
        .content_type
        .clone()
        .unwrap_or_else(|| crypto::CONTENT_TYPE_PKCS12.to_owned());
    let (material, issuer): (CertMaterial, &str) = if let Some(pfx) = &c.pfx {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(pfx.trim())
            .map_err(|_| "pfx is not base64".to_owned())?;
        let m = CertMaterial::from_pfx(&bytes, c.password.as_deref().unwrap_or(""))
            .map_err(|e| e.to_string())?;
        (m, "Unknown")
    } else if let Some(pem) = &c.pem {
        (
            CertMaterial::from_pem(pem).map_err(|e| e.to_string())?,
            "Unknown",
        )
    } else {
        let req = crypto::NewCertificate {
            subject: c
                .subject
                .clone()
                .unwrap_or_else(|| format!("CN={}", c.name)),
            dns_names: c.dns_names.clone(),
            validity_months: c
                .validity_months
                .unwrap_or(certpolicy::DEFAULT_VALIDITY_MONTHS),
            key: KeySpec::parse(
                c.kty.as_deref().unwrap_or("RSA"),
                c.key_size,
                c.crv.as_deref(),
            )
            .map_err(|e| e.to_string())?,
        };
        let m = if c.chain {
            crypto::with_chain(&req)
        } else {
            crypto::self_signed(&req)
        }
        .map_err(|e| e.to_string())?;
        (m, "Self")
    };
    let now = unix_now();
    let policy =
        certpolicy::describe(&material, &content_type, issuer, now).map_err(|e| e.to_string())?;
    let policy_ct = certpolicy::content_type_of(&policy)?;
    debug_assert_eq!(policy_ct, content_type);
    store
        .write(vault, |v| {
            v.add_certificate(
                &c.name,
                NewCertVersion {
                    material: &material,
                    policy,
                    enabled: c.enabled,
                    tags: non_empty(&c.tags),
                    pending: None,
                    version: c.version.clone(),
                },
                now,
            )
            .map(|_| ())
        })
        .map_err(|e| e.to_string())
}

fn non_empty(tags: &Tags) -> Option<Tags> {
    Some(tags.clone()).filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shorthand_and_versions_parse() {
        let seed = Seed::from_yaml(
            "clients:\n- clientId: a\n  clientSecret: b\nvaults:\n- name: kv1\n  secrets:\n  - name: s\n    value: v\n  - name: t\n    versions:\n    - value: one\n    - value: two\n      version: 0123456789abcdef0123456789abcdef\n",
        )
        .expect("parses");
        assert_eq!(seed.vaults[0].secrets.len(), 2);
        assert_eq!(seed.tenant(), DEFAULT_TENANT);
    }

    #[test]
    fn errors_name_the_field_and_never_echo_values() {
        let err = Seed::from_yaml("vaults:\n- name: k\n").expect_err("short name");
        assert!(err.to_string().starts_with("seed vaults[0].name:"), "{err}");
        let err = Seed::from_yaml("clients:\n- clientId: a\n  clientSecret: [hunter2\n")
            .expect_err("syntax");
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[test]
    fn a_bad_object_name_is_reported_at_its_index_within_its_kind() {
        let err = Seed::from_yaml(
            "vaults:\n- name: kv1\n  secrets:\n  - name: s\n    value: v\n  keys:\n  - name: k\n  - name: bad_name\n",
        )
        .expect_err("bad key name");
        assert!(
            err.to_string().starts_with("seed vaults[0].keys[1].name:"),
            "{err}"
        );
        let err = Seed::from_yaml(
            "vaults:\n- name: kv1\n  certificates:\n  - name: c\n    pfx: AA==\n    pem: x\n",
        )
        .expect_err("pfx and pem");
        assert!(
            err.to_string()
                .starts_with("seed vaults[0].certificates[0]:"),
            "{err}"
        );
    }

    #[test]
    fn secrets_beyond_the_services_limits_are_refused_without_echoing_them() {
        let big = "q".repeat(crate::limits::MAX_VALUE_CHARS + 1);
        let err = Seed::from_yaml(&format!(
            "vaults:\n- name: kv1\n  secrets:\n  - name: s\n    value: {big}\n"
        ))
        .expect_err("too large");
        assert!(
            err.to_string().starts_with("seed vaults[0].secrets[0]:"),
            "{err}"
        );
        assert!(!err.to_string().contains("qqqq"), "{err}");
        let long_type = "t".repeat(crate::limits::MAX_CONTENT_TYPE_CHARS + 1);
        let err = Seed::from_yaml(&format!(
            "vaults:\n- name: kv1\n  secrets:\n  - name: s\n    versions:\n    - value: v\n      contentType: {long_type}\n"
        ))
        .expect_err("content type too long");
        assert!(
            err.to_string()
                .starts_with("seed vaults[0].secrets[0].versions[0]:"),
            "{err}"
        );
    }

    #[test]
    fn keys_and_certificates_are_generated_or_taken_from_the_seed() {
        let made = crypto::with_chain(&crypto::NewCertificate {
            subject: "CN=given".into(),
            dns_names: vec![],
            validity_months: 6,
            key: KeySpec::Ec(crypto::Curve::P256),
        })
        .expect("cert");
        let pem_yaml = made.to_pem().replace('\n', "\n      ");
        let pfx = base64::engine::general_purpose::STANDARD.encode(made.to_pfx().expect("pfx"));
        let yaml = format!(
            "vaults:\n- name: kv1\n  keys:\n  - name: rsa\n    keySize: 3072\n  - name: ec\n    kty: EC\n    crv: P-521\n  certificates:\n  - name: gen\n    chain: true\n    contentType: application/x-pem-file\n  - name: given\n    pem: |\n      {pem_yaml}\n  - name: given-pfx\n    pfx: {pfx}\n"
        );
        let seed = Seed::from_yaml(&yaml).expect("parses");
        let store = Store::in_memory();
        seed.populate(&store).expect("populate");
        store
            .read("kv1", |v| {
                let rsa = v.keys.get("rsa").and_then(|e| e.latest()).expect("rsa");
                assert_eq!(rsa.jwk.rsa_bits(), Some(3072));
                let ec = v.keys.get("ec").and_then(|e| e.latest()).expect("ec");
                assert_eq!(ec.jwk.crv.as_deref(), Some("P-521"));
                let gen_secret = v.secrets.get("gen").and_then(|e| e.latest()).expect("gen");
                assert_eq!(gen_secret.value.matches("BEGIN CERTIFICATE").count(), 3);
                let given = v
                    .certificates
                    .get("given")
                    .and_then(|e| e.latest())
                    .expect("given");
                assert_eq!(given.cer, made.chain[0]);
            })
            .expect("vault");
        // A second populate leaves an existing vault alone.
        seed.populate(&store).expect("again");
        assert_eq!(
            store
                .read("kv1", |v| v.keys.get("rsa").map(|e| e.versions.len()))
                .expect("read"),
            Some(1)
        );
    }
}

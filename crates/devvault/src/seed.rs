//! The seed file: which tenant, clients and vault objects a dev vault starts with.
//!
//! ```yaml
//! tenantId: 6b0f2b1e-6a8a-4b5a-9d0e-2f5c3c3a9a11   # optional
//! clients:
//!   - clientId: demo-app
//!     clientSecret: demo-password
//! vaults:
//!   - name: keyvol-demo
//!     secrets:
//!       - name: db-password
//!         value: correct-horse-battery-staple
//!       - name: api-key
//!         contentType: text/plain
//!         versions:               # oldest first; the last one is current
//!           - value: old-key
//!           - value: new-key
//!             version: 0123456789abcdef0123456789abcdef
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;

/// Tenant used when the seed names none.
pub const DEFAULT_TENANT: &str = "72f3b6e9-3c5a-4d6b-9a1e-0c2d4e6f8a10";

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

/// A whole seed.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Seed {
    /// Directory (tenant) id the vault and token endpoint use.
    #[serde(default)]
    pub tenant_id: Option<String>,
    /// Applications that may get tokens with a client secret.
    #[serde(default)]
    pub clients: Vec<SeedClient>,
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
    /// Its secret.
    pub client_secret: String,
}

impl std::fmt::Debug for SeedClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeedClient")
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// One vault.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedVault {
    /// Vault name (3-24 of `0-9a-zA-Z-`).
    pub name: String,
    /// Secrets in the vault.
    #[serde(default)]
    pub secrets: Vec<SeedSecret>,
}

/// One secret with one or more versions.
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedSecret {
    /// Secret name (1-127 of `0-9a-zA-Z-`).
    pub name: String,
    /// Shorthand for a single version.
    #[serde(default)]
    pub value: Option<String>,
    /// Content type for the shorthand form (and default for versions).
    #[serde(default)]
    pub content_type: Option<String>,
    /// Tags for the shorthand form.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Versions, oldest first.
    #[serde(default)]
    pub versions: Vec<SeedSecretVersion>,
}

impl std::fmt::Debug for SeedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeedSecret")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// One version of a secret.
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedSecretVersion {
    /// The value.
    pub value: String,
    /// A fixed version id (32 lowercase hex); generated when absent.
    #[serde(default)]
    pub version: Option<String>,
    /// Content type.
    #[serde(default)]
    pub content_type: Option<String>,
    /// Whether the version is enabled (default true).
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

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
        for (i, v) in self.vaults.iter().enumerate() {
            if !valid_vault_name(&v.name) {
                return Err(SeedError::Invalid {
                    field: format!("vaults[{i}].name"),
                    reason: format!(
                        "{:?} must be 3-24 characters of 0-9, a-z, A-Z and '-'",
                        v.name
                    ),
                });
            }
            for (j, s) in v.secrets.iter().enumerate() {
                let field = format!("vaults[{i}].secrets[{j}]");
                if !valid_object_name(&s.name) {
                    return Err(SeedError::Invalid {
                        field: format!("{field}.name"),
                        reason: format!(
                            "{:?} must be 1-127 characters of 0-9, a-z, A-Z and '-'",
                            s.name
                        ),
                    });
                }
                if s.value.is_some() != s.versions.is_empty() {
                    return Err(SeedError::Invalid {
                        field,
                        reason: "give either value or versions".into(),
                    });
                }
                for (k, ver) in s.versions.iter().enumerate() {
                    if let Some(id) = &ver.version
                        && !valid_version(id)
                    {
                        return Err(SeedError::Invalid {
                            field: format!("{field}.versions[{k}].version"),
                            reason: "must be 32 lowercase hex characters".into(),
                        });
                    }
                }
            }
        }
        Ok(())
    }
}

/// Key Vault's vault name rule: 3-24 of `0-9a-zA-Z-`.
pub fn valid_vault_name(name: &str) -> bool {
    (3..=24).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Key Vault's object name rule: 1-127 of `0-9a-zA-Z-`.
pub fn valid_object_name(name: &str) -> bool {
    (1..=127).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// A version id as the service makes them: 32 lowercase hex characters.
pub fn valid_version(v: &str) -> bool {
    v.len() == 32
        && v.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
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
}

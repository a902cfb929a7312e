//! The in-memory object store: vaults, secrets and their versions.
//!
//! Names compare case-insensitively, as Key Vault identifiers do. The newest version of an object
//! is the last one created. Locks are held only for map operations, never across I/O.

use std::collections::BTreeMap;
use std::sync::RwLock;
use std::time::{SystemTime, UNIX_EPOCH};

use rand::Rng;

use crate::seed::{Seed, valid_object_name};

/// Why a store operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// No vault of that name is served.
    #[error("vault {0} is not served here")]
    VaultNotFound(String),
    /// The object (or that version of it) does not exist.
    #[error("object not found")]
    NotFound,
    /// A name breaks Key Vault's naming rule.
    #[error("invalid name")]
    BadName,
}

/// One version of a secret.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretVersion {
    /// 32 lowercase hex characters.
    pub version: String,
    /// The value.
    pub value: String,
    /// Content type.
    pub content_type: Option<String>,
    /// Enabled flag.
    pub enabled: bool,
    /// Creation time, Unix seconds.
    pub created: i64,
    /// Last update, Unix seconds.
    pub updated: i64,
    /// Not-before, Unix seconds.
    pub nbf: Option<i64>,
    /// Expiry, Unix seconds.
    pub exp: Option<i64>,
    /// Tags.
    pub tags: BTreeMap<String, String>,
}

/// A secret: its name as first written and its versions, oldest first.
#[derive(Clone)]
pub struct SecretEntry {
    /// Name with the case it was created with.
    pub name: String,
    /// Versions, oldest first.
    pub versions: Vec<SecretVersion>,
}

#[derive(Default)]
struct Vault {
    secrets: BTreeMap<String, SecretEntry>,
}

/// All vaults of one dev vault instance.
#[derive(Default)]
pub struct Store {
    vaults: RwLock<BTreeMap<String, Vault>>,
}

/// Input for a new secret version.
#[derive(Clone, Default)]
pub struct NewSecret {
    /// The value.
    pub value: String,
    /// Content type.
    pub content_type: Option<String>,
    /// Enabled flag (default true).
    pub enabled: Option<bool>,
    /// Not-before.
    pub nbf: Option<i64>,
    /// Expiry.
    pub exp: Option<i64>,
    /// Tags.
    pub tags: BTreeMap<String, String>,
    /// A fixed version id; generated when absent.
    pub version: Option<String>,
}

impl Store {
    /// A store holding what `seed` describes.
    pub fn from_seed(seed: &Seed) -> Self {
        let store = Store::default();
        for v in &seed.vaults {
            store.add_vault(&v.name);
            for s in &v.secrets {
                let versions: Vec<NewSecret> = match &s.value {
                    Some(value) => vec![NewSecret {
                        value: value.clone(),
                        content_type: s.content_type.clone(),
                        tags: s.tags.clone(),
                        ..NewSecret::default()
                    }],
                    None => s
                        .versions
                        .iter()
                        .map(|ver| NewSecret {
                            value: ver.value.clone(),
                            content_type: ver
                                .content_type
                                .clone()
                                .or_else(|| s.content_type.clone()),
                            enabled: ver.enabled,
                            tags: ver.tags.clone(),
                            version: ver.version.clone(),
                            ..NewSecret::default()
                        })
                        .collect(),
                };
                for new in versions {
                    // Names were checked when the seed was parsed.
                    let _ = store.set_secret(&v.name, &s.name, new);
                }
            }
        }
        store
    }

    /// Adds an empty vault (no-op if it exists).
    pub fn add_vault(&self, name: &str) {
        if let Ok(mut vaults) = self.vaults.write() {
            vaults.entry(name.to_ascii_lowercase()).or_default();
        }
    }

    /// Names of the vaults served.
    pub fn vault_names(&self) -> Vec<String> {
        self.vaults
            .read()
            .map(|v| v.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// True when `vault` is served.
    pub fn has_vault(&self, vault: &str) -> bool {
        self.vaults
            .read()
            .map(|v| v.contains_key(&vault.to_ascii_lowercase()))
            .unwrap_or(false)
    }

    /// A secret version: the newest when `version` is `None`.
    pub fn get_secret(
        &self,
        vault: &str,
        name: &str,
        version: Option<&str>,
    ) -> Result<(String, SecretVersion), StoreError> {
        let vaults = self.vaults.read().map_err(|_| StoreError::NotFound)?;
        let v = vaults
            .get(&vault.to_ascii_lowercase())
            .ok_or_else(|| StoreError::VaultNotFound(vault.to_owned()))?;
        let entry = v
            .secrets
            .get(&name.to_ascii_lowercase())
            .ok_or(StoreError::NotFound)?;
        let found = match version {
            None => entry.versions.last(),
            Some(ver) => entry
                .versions
                .iter()
                .find(|x| x.version.eq_ignore_ascii_case(ver)),
        };
        found
            .map(|x| (entry.name.clone(), x.clone()))
            .ok_or(StoreError::NotFound)
    }

    /// Adds a new version of a secret (creating the secret) and returns it.
    pub fn set_secret(
        &self,
        vault: &str,
        name: &str,
        new: NewSecret,
    ) -> Result<(String, SecretVersion), StoreError> {
        if !valid_object_name(name) {
            return Err(StoreError::BadName);
        }
        let mut vaults = self.vaults.write().map_err(|_| StoreError::NotFound)?;
        let v = vaults
            .get_mut(&vault.to_ascii_lowercase())
            .ok_or_else(|| StoreError::VaultNotFound(vault.to_owned()))?;
        let entry = v
            .secrets
            .entry(name.to_ascii_lowercase())
            .or_insert_with(|| SecretEntry {
                name: name.to_owned(),
                versions: Vec::new(),
            });
        let now = unix_now();
        let version = SecretVersion {
            version: new.version.unwrap_or_else(new_version_id),
            value: new.value,
            content_type: new.content_type,
            enabled: new.enabled.unwrap_or(true),
            created: now,
            updated: now,
            nbf: new.nbf,
            exp: new.exp,
            tags: new.tags,
        };
        entry.versions.push(version.clone());
        Ok((entry.name.clone(), version))
    }
}

/// A fresh version id: 32 lowercase hex characters.
pub fn new_version_id() -> String {
    let bytes: [u8; 16] = rand::rng().random();
    hex::encode(bytes)
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_version_wins_and_old_ones_stay_reachable() {
        let store = Store::default();
        store.add_vault("kv1");
        let (_, v1) = store
            .set_secret(
                "kv1",
                "S",
                NewSecret {
                    value: "one".into(),
                    ..Default::default()
                },
            )
            .expect("set");
        store
            .set_secret(
                "KV1",
                "s",
                NewSecret {
                    value: "two".into(),
                    ..Default::default()
                },
            )
            .expect("set");
        let (name, latest) = store.get_secret("kv1", "s", None).expect("get");
        assert_eq!((name.as_str(), latest.value.as_str()), ("S", "two"));
        assert_eq!(
            store
                .get_secret("kv1", "s", Some(&v1.version))
                .expect("get")
                .1
                .value,
            "one"
        );
        assert_eq!(
            store.get_secret("kv1", "nope", None).err(),
            Some(StoreError::NotFound)
        );
        assert!(matches!(
            store.get_secret("kv2", "s", None),
            Err(StoreError::VaultNotFound(_))
        ));
    }
}

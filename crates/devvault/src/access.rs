//! Access policies: which identity may do what to which kind of object in which vault, in Key
//! Vault's access-policy model (permissions per object kind, named as the service names them).
//!
//! A vault whose seed gives no `accessPolicies` lets every authenticated identity do everything,
//! which is what dev vaults did before policies existed.

use std::collections::{BTreeMap, BTreeSet};

use crate::seed::Seed;

/// The kind of object an operation touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ObjectKind {
    /// Secrets.
    Secret,
    /// Keys.
    Key,
    /// Certificates.
    Certificate,
}

impl ObjectKind {
    /// Path segment of live objects (`secrets`).
    pub fn segment(self) -> &'static str {
        match self {
            ObjectKind::Secret => "secrets",
            ObjectKind::Key => "keys",
            ObjectKind::Certificate => "certificates",
        }
    }

    /// Path segment of deleted objects (`deletedsecrets`).
    pub fn deleted_segment(self) -> &'static str {
        match self {
            ObjectKind::Secret => "deletedsecrets",
            ObjectKind::Key => "deletedkeys",
            ObjectKind::Certificate => "deletedcertificates",
        }
    }

    /// Lowercase noun (`secret`).
    pub fn noun(self) -> &'static str {
        match self {
            ObjectKind::Secret => "secret",
            ObjectKind::Key => "key",
            ObjectKind::Certificate => "certificate",
        }
    }

    /// Capitalised noun used in error codes (`Secret` in `SecretNotFound`).
    pub fn title(self) -> &'static str {
        match self {
            ObjectKind::Secret => "Secret",
            ObjectKind::Key => "Key",
            ObjectKind::Certificate => "Certificate",
        }
    }
}

/// One identity's permissions in one vault.
#[derive(Debug, Clone, Default)]
struct Grant {
    secrets: BTreeSet<String>,
    keys: BTreeSet<String>,
    certificates: BTreeSet<String>,
}

impl Grant {
    fn allows(&self, kind: ObjectKind, permission: &str) -> bool {
        let set = match kind {
            ObjectKind::Secret => &self.secrets,
            ObjectKind::Key => &self.keys,
            ObjectKind::Certificate => &self.certificates,
        };
        set.contains("all") || set.contains(permission)
    }
}

/// Every vault's policies.
#[derive(Debug, Clone, Default)]
pub struct AccessPolicies {
    /// Vault (lowercase) to identity to grant. Vaults absent here are open.
    by_vault: BTreeMap<String, BTreeMap<String, Grant>>,
}

impl AccessPolicies {
    /// The policies a seed gives.
    pub fn from_seed(seed: &Seed) -> Self {
        let mut by_vault = BTreeMap::new();
        for v in &seed.vaults {
            let Some(policies) = &v.access_policies else {
                continue;
            };
            let mut grants: BTreeMap<String, Grant> = BTreeMap::new();
            for p in policies {
                let g = grants.entry(p.identity.to_ascii_lowercase()).or_default();
                let lower = |list: &Vec<String>| {
                    list.iter()
                        .map(|s| s.to_ascii_lowercase())
                        .collect::<Vec<_>>()
                };
                g.secrets.extend(lower(&p.secrets));
                g.keys.extend(lower(&p.keys));
                g.certificates.extend(lower(&p.certificates));
            }
            by_vault.insert(v.name.to_ascii_lowercase(), grants);
        }
        Self { by_vault }
    }

    /// True when the identity (by client id or object id) holds `permission` on `kind` in
    /// `vault`.
    pub fn allows(
        &self,
        vault: &str,
        client_id: &str,
        object_id: &str,
        kind: ObjectKind,
        permission: &str,
    ) -> bool {
        let Some(grants) = self.by_vault.get(&vault.to_ascii_lowercase()) else {
            return true;
        };
        [client_id, object_id]
            .iter()
            .filter_map(|id| grants.get(&id.to_ascii_lowercase()))
            .any(|g| g.allows(kind, permission))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vault_without_policies_is_open_and_one_with_them_grants_only_what_they_say() {
        let seed = Seed::from_yaml(
            "vaults:\n- name: open-kv\n- name: shut-kv\n  accessPolicies:\n  - identity: Reader\n    secrets: [get, list]\n  - identity: admin-oid\n    keys: [all]\n",
        )
        .expect("seed");
        let p = AccessPolicies::from_seed(&seed);
        assert!(p.allows("open-kv", "anyone", "x", ObjectKind::Key, "delete"));
        assert!(p.allows("SHUT-KV", "reader", "x", ObjectKind::Secret, "get"));
        assert!(!p.allows("shut-kv", "reader", "x", ObjectKind::Secret, "set"));
        assert!(!p.allows("shut-kv", "reader", "x", ObjectKind::Key, "get"));
        assert!(p.allows("shut-kv", "app", "admin-oid", ObjectKind::Key, "create"));
        assert!(!p.allows("shut-kv", "stranger", "x", ObjectKind::Secret, "get"));
    }
}

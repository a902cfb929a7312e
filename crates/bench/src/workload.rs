//! What the benchmarks mount: one vault of secrets, one SecretProviderClass per object count
//! (plain upstream Azure classes), and a pool of service principals so that every cold sample
//! can use an identity the daemon has never seen.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};

use crate::error::BenchError;

/// The vault every class reads.
pub const VAULT: &str = "keyvol-bench";
/// The dev vault's tenant.
pub const TENANT: &str = "7b1e0c3a-5d2f-4e6b-8a9c-0d1e2f3a4b5c";
/// Namespace of the classes and pods.
pub const NAMESPACE: &str = "bench";
/// Bytes in each secret's value: the size of a typical password or API key.
pub const SECRET_BYTES: usize = 64;

/// Name of the `i`-th secret (1-based).
pub fn object_name(i: usize) -> String {
    format!("obj-{i:03}")
}

/// Name of the class with `objects` objects.
pub fn class_name(objects: usize) -> String {
    format!("bench-{objects}")
}

/// A service principal of the pool.
#[derive(Clone)]
pub struct Identity {
    /// Client id.
    pub client_id: String,
    /// Client secret (a dev-vault value, not a real secret).
    pub client_secret: String,
}

fn identity(i: usize) -> Identity {
    Identity {
        client_id: format!("bench-sp-{i:05}"),
        client_secret: format!("bench-sp-secret-{i:05}"),
    }
}

/// Service principals, handed out once each.
pub struct IdentityPool {
    size: usize,
    next: AtomicUsize,
}

impl IdentityPool {
    /// A pool of `size` identities (seeded into the dev vault by [`seed_yaml`]).
    pub fn new(size: usize) -> Self {
        Self {
            size,
            next: AtomicUsize::new(0),
        }
    }

    /// How many identities there are.
    pub fn size(&self) -> usize {
        self.size
    }

    /// An identity no one has used yet.
    pub fn fresh(&self) -> Result<Identity, BenchError> {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        if i >= self.size {
            return Err(BenchError::IdentitiesExhausted { size: self.size });
        }
        Ok(identity(i))
    }
}

/// The secret value of object `i`: fixed, `SECRET_BYTES` long.
fn secret_value(i: usize) -> String {
    let mut v = format!("value-of-{}-", object_name(i));
    while v.len() < SECRET_BYTES {
        v.push('x');
    }
    v.truncate(SECRET_BYTES);
    v
}

/// The dev vault seed: the tenant, `identities` service principals, and one vault with
/// `objects` secrets. JSON, which is YAML.
pub fn seed_yaml(objects: usize, identities: usize) -> String {
    let clients: Vec<Value> = (0..identities)
        .map(|i| {
            let id = identity(i);
            json!({ "clientId": id.client_id, "clientSecret": id.client_secret })
        })
        .collect();
    let secrets: Vec<Value> = (1..=objects)
        .map(|i| json!({ "name": object_name(i), "value": secret_value(i) }))
        .collect();
    json!({
        "tenantId": TENANT,
        "clients": clients,
        "vaults": [{ "name": VAULT, "secrets": secrets }],
    })
    .to_string()
}

/// The `objects` parameter naming the first `objects` secrets, as users write it.
fn objects_parameter(objects: usize) -> String {
    let mut s = String::from("array:\n");
    for i in 1..=objects {
        s.push_str(&format!(
            "  - |\n    objectName: {}\n    objectType: secret\n",
            object_name(i)
        ));
    }
    s
}

/// The class's `spec.parameters`.
pub fn class_parameters(objects: usize) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("keyvaultName".to_owned(), VAULT.to_owned()),
        ("tenantId".to_owned(), TENANT.to_owned()),
        ("objects".to_owned(), objects_parameter(objects)),
    ])
}

/// The SecretProviderClass with `objects` objects, as stored in the API.
pub fn class(objects: usize) -> Value {
    json!({
        "apiVersion": "secrets-store.csi.x-k8s.io/v1",
        "kind": "SecretProviderClass",
        "metadata": { "name": class_name(objects), "namespace": NAMESPACE },
        "spec": { "provider": "azure", "parameters": class_parameters(objects) },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_is_accepted_by_the_dev_vault() {
        let seed = keyvol_devvault::Seed::from_yaml(&seed_yaml(3, 2)).expect("seed");
        assert_eq!(seed.tenant(), TENANT);
        assert_eq!(seed.clients.len(), 2);
        assert_eq!(seed.vaults[0].name, VAULT);
        assert_eq!(seed.vaults[0].secrets.len(), 3);
        assert_eq!(secret_value(7).len(), SECRET_BYTES);
    }

    #[test]
    fn classes_name_their_objects_in_the_upstream_format() {
        let p = class_parameters(2);
        assert_eq!(
            p["objects"],
            "array:\n  - |\n    objectName: obj-001\n    objectType: secret\n  - |\n    objectName: obj-002\n    objectType: secret\n"
        );
        let c = class(2);
        assert_eq!(c["metadata"]["name"], "bench-2");
        assert_eq!(c["spec"]["provider"], "azure");
    }

    #[test]
    fn the_pool_hands_out_each_identity_once() {
        let pool = IdentityPool::new(2);
        let a = pool.fresh().expect("first").client_id;
        let b = pool.fresh().expect("second").client_id;
        assert_ne!(a, b);
        assert!(matches!(
            pool.fresh(),
            Err(BenchError::IdentitiesExhausted { size: 2 })
        ));
    }
}

//! The object store: vaults holding secrets, keys and certificates, each with versions and a
//! soft-deleted state, in memory and optionally written through to the file-backed [`Db`].
//!
//! Names compare case-insensitively, as Key Vault identifiers do; the case of the first write is
//! kept. Versions are kept oldest first, so the newest is the last. A certificate is three objects
//! sharing name and version: the certificate, a managed key and a managed secret.
//!
//! With a database, every write rewrites the changed vault's document before the write returns, so
//! what a client was told is what survives a restart, and a write that cannot be stored is not
//! made. Writes hold the vault map's lock while they commit; a dev vault's writes are rare and
//! small. In memory, writes change the vault in place.

use std::collections::BTreeMap;
use std::sync::RwLock;
use std::time::{SystemTime, UNIX_EPOCH};

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::crypto::{self, CertMaterial, PublicJwk};
use crate::limits::valid_object_name;
use crate::persist::{Db, PersistError};

/// Tags of an object.
pub type Tags = BTreeMap<String, String>;

/// Days a deleted object stays recoverable (the service's default).
pub const RECOVERABLE_DAYS: i64 = 90;

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
    /// The name is held by a deleted object that has not been purged.
    #[error("the object is deleted but recoverable")]
    DeletedConflict,
    /// The database write failed; the change was not made.
    #[error("failed to persist the change")]
    Persist,
}

/// Attributes every version has. Times are Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attributes {
    /// Enabled flag.
    pub enabled: bool,
    /// Not before.
    pub nbf: Option<i64>,
    /// Expiry.
    pub exp: Option<i64>,
    /// Created.
    pub created: i64,
    /// Last updated.
    pub updated: i64,
}

impl Attributes {
    /// Fresh attributes stamped `now`.
    pub fn new(enabled: Option<bool>, nbf: Option<i64>, exp: Option<i64>, now: i64) -> Self {
        Self {
            enabled: enabled.unwrap_or(true),
            nbf,
            exp,
            created: now,
            updated: now,
        }
    }
}

/// A change of attributes and tags (`PATCH`). Absent fields stay as they are.
#[derive(Debug, Clone, Default)]
pub struct AttributeUpdate {
    /// New enabled flag.
    pub enabled: Option<bool>,
    /// New not-before.
    pub nbf: Option<i64>,
    /// New expiry.
    pub exp: Option<i64>,
    /// New tags (replacing all).
    pub tags: Option<Tags>,
    /// New content type (secrets only).
    pub content_type: Option<String>,
    /// New permitted operations (keys only).
    pub key_ops: Option<Vec<String>>,
}

/// What every version type offers the generic table operations (and the generic routes in
/// [`crate::objects`]).
pub trait Version: Clone {
    /// The version id.
    fn id(&self) -> &str;
    /// Attributes.
    fn attributes(&self) -> &Attributes;
    /// Attributes and tags, to change.
    fn attributes_and_tags(&mut self) -> (&mut Attributes, &mut Option<Tags>);
    /// True when the version belongs to a certificate (its key or secret).
    fn managed(&self) -> bool {
        false
    }
    /// Applies what a PATCH may change beyond attributes and tags.
    fn update_own(&mut self, _change: &AttributeUpdate) {}

    /// Applies a PATCH: attributes, tags, then the type's own members.
    fn update(&mut self, change: &AttributeUpdate, now: i64) {
        let (attrs, tags) = self.attributes_and_tags();
        if let Some(e) = change.enabled {
            attrs.enabled = e;
        }
        if change.nbf.is_some() {
            attrs.nbf = change.nbf;
        }
        if change.exp.is_some() {
            attrs.exp = change.exp;
        }
        if let Some(t) = &change.tags {
            *tags = Some(t.clone());
        }
        attrs.updated = now;
        self.update_own(change);
    }
}

/// The [`Version`] accessors, the same in every version type (`version`, `attributes`, `tags`).
macro_rules! version_accessors {
    () => {
        fn id(&self) -> &str {
            &self.version
        }
        fn attributes(&self) -> &Attributes {
            &self.attributes
        }
        fn attributes_and_tags(&mut self) -> (&mut Attributes, &mut Option<Tags>) {
            (&mut self.attributes, &mut self.tags)
        }
    };
}

/// One version of a secret.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretVersion {
    /// 32 lowercase hex characters.
    pub version: String,
    /// The value.
    pub value: String,
    /// Content type.
    pub content_type: Option<String>,
    /// Attributes.
    pub attributes: Attributes,
    /// Tags; `None` when never set (the service then omits the member).
    #[serde(default)]
    pub tags: Option<Tags>,
    /// True when the secret backs a certificate.
    pub managed: bool,
}

impl std::fmt::Debug for SecretVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretVersion")
            .field("version", &self.version)
            .field("content_type", &self.content_type)
            .finish_non_exhaustive()
    }
}

impl Version for SecretVersion {
    version_accessors!();
    fn managed(&self) -> bool {
        self.managed
    }
    fn update_own(&mut self, change: &AttributeUpdate) {
        if let Some(ct) = &change.content_type {
            self.content_type = Some(ct.clone());
        }
    }
}

/// One version of a key. The private key never leaves the store through the API.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyVersion {
    /// 32 lowercase hex characters.
    pub version: String,
    /// Private key, PKCS#8 DER, base64 in the database document.
    #[serde(with = "b64_bytes")]
    pub pkcs8: Vec<u8>,
    /// Public members.
    pub jwk: PublicJwk,
    /// Permitted operations.
    pub key_ops: Vec<String>,
    /// Attributes.
    pub attributes: Attributes,
    /// Tags; `None` when never set (the service then omits the member).
    #[serde(default)]
    pub tags: Option<Tags>,
    /// True when the key belongs to a certificate.
    pub managed: bool,
    /// Whether the private key may be exported (certificate keys are).
    pub exportable: bool,
}

impl std::fmt::Debug for KeyVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyVersion")
            .field("version", &self.version)
            .field("kty", &self.jwk.kty)
            .finish_non_exhaustive()
    }
}

impl Version for KeyVersion {
    version_accessors!();
    fn managed(&self) -> bool {
        self.managed
    }
    fn update_own(&mut self, change: &AttributeUpdate) {
        if let Some(ops) = &change.key_ops {
            self.key_ops.clone_from(ops);
        }
    }
}

/// One version of a certificate: the public part. Its key and secret live in the key and secret
/// tables under the same name and version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertVersion {
    /// 32 lowercase hex characters.
    pub version: String,
    /// DER of the leaf certificate.
    #[serde(with = "b64_bytes")]
    pub cer: Vec<u8>,
    /// Subject, RFC 4514.
    pub subject: String,
    /// Attributes.
    pub attributes: Attributes,
    /// Tags; `None` when never set (the service then omits the member).
    #[serde(default)]
    pub tags: Option<Tags>,
}

impl Version for CertVersion {
    version_accessors!();
}

/// An object: its name as first written and its versions, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry<V> {
    /// Name with the case it was created with.
    pub name: String,
    /// Versions, oldest first.
    pub versions: Vec<V>,
}

impl<V: Version> Entry<V> {
    /// The newest version.
    pub fn latest(&self) -> Option<&V> {
        self.versions.last()
    }

    /// A version by id (case-insensitive), or the newest when `version` is `None`.
    pub fn find(&self, version: Option<&str>) -> Option<&V> {
        match version {
            None => self.latest(),
            Some(v) => self
                .versions
                .iter()
                .find(|x| x.id().eq_ignore_ascii_case(v)),
        }
    }

    /// Versions ordered by version id, as the service lists them.
    pub fn listed(&self) -> Vec<&V> {
        let mut out: Vec<&V> = self.versions.iter().collect();
        out.sort_by(|a, b| a.id().cmp(b.id()));
        out
    }
}

/// A soft-deleted object.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Deleted<V> {
    /// The object as it was.
    pub entry: Entry<V>,
    /// When it was deleted.
    pub deleted_date: i64,
    /// When it would be purged.
    pub scheduled_purge_date: i64,
}

/// Live and deleted objects of one kind.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Table<V> {
    /// Live objects by lowercase name.
    pub live: BTreeMap<String, Entry<V>>,
    /// Soft-deleted objects by lowercase name.
    pub deleted: BTreeMap<String, Deleted<V>>,
}

impl<V> Default for Table<V> {
    fn default() -> Self {
        Self {
            live: BTreeMap::new(),
            deleted: BTreeMap::new(),
        }
    }
}

impl<V: Version> Table<V> {
    /// A live object.
    pub fn get(&self, name: &str) -> Option<&Entry<V>> {
        self.live.get(&name.to_ascii_lowercase())
    }

    /// Adds a version (creating the object) and returns the object's stored name.
    pub fn add(&mut self, name: &str, version: V) -> Result<String, StoreError> {
        if !valid_object_name(name) {
            return Err(StoreError::BadName);
        }
        let key = name.to_ascii_lowercase();
        if self.deleted.contains_key(&key) {
            return Err(StoreError::DeletedConflict);
        }
        let entry = self.live.entry(key).or_insert_with(|| Entry {
            name: name.to_owned(),
            versions: Vec::new(),
        });
        entry.versions.push(version);
        Ok(entry.name.clone())
    }

    /// Applies a PATCH to one version (the newest when `version` is `None`).
    pub fn update(
        &mut self,
        name: &str,
        version: Option<&str>,
        change: &AttributeUpdate,
        now: i64,
    ) -> Result<(String, V), StoreError> {
        let entry = self
            .live
            .get_mut(&name.to_ascii_lowercase())
            .ok_or(StoreError::NotFound)?;
        let idx = match version {
            None => entry.versions.len().checked_sub(1),
            Some(v) => entry
                .versions
                .iter()
                .position(|x| x.id().eq_ignore_ascii_case(v)),
        }
        .ok_or(StoreError::NotFound)?;
        let slot = &mut entry.versions[idx];
        slot.update(change, now);
        Ok((entry.name.clone(), slot.clone()))
    }

    /// Soft-deletes an object.
    pub fn delete(&mut self, name: &str, now: i64) -> Result<Deleted<V>, StoreError> {
        let key = name.to_ascii_lowercase();
        let entry = self.live.remove(&key).ok_or(StoreError::NotFound)?;
        let deleted = Deleted {
            entry,
            deleted_date: now,
            scheduled_purge_date: now + RECOVERABLE_DAYS * 86_400,
        };
        self.deleted.insert(key, deleted.clone());
        Ok(deleted)
    }

    /// A deleted object.
    pub fn get_deleted(&self, name: &str) -> Option<&Deleted<V>> {
        self.deleted.get(&name.to_ascii_lowercase())
    }

    /// Removes a deleted object for good.
    pub fn purge(&mut self, name: &str) -> Result<(), StoreError> {
        self.deleted
            .remove(&name.to_ascii_lowercase())
            .map(|_| ())
            .ok_or(StoreError::NotFound)
    }

    /// Brings a deleted object back.
    pub fn recover(&mut self, name: &str) -> Result<Entry<V>, StoreError> {
        let key = name.to_ascii_lowercase();
        let deleted = self.deleted.remove(&key).ok_or(StoreError::NotFound)?;
        self.live.insert(key, deleted.entry.clone());
        Ok(deleted.entry)
    }
}

/// A certificate's policy and last operation, kept per certificate (not per version).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CertMeta {
    /// The policy document as the service returns it (without `id`, added when rendered).
    pub policy: serde_json::Value,
    /// The last create operation, if the certificate was created (not imported).
    pub pending: Option<PendingOp>,
}

/// A certificate create operation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingOp {
    /// Request id.
    pub request_id: String,
    /// Base64 DER of the certificate signing request.
    pub csr: String,
    /// Issuer name from the policy.
    pub issuer: String,
    /// Polls answered so far; the first poll after creation completes it.
    pub polls: u32,
}

/// One vault's objects.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Vault {
    /// Secrets (including certificate-backed ones).
    pub secrets: Table<SecretVersion>,
    /// Keys (including certificate keys).
    pub keys: Table<KeyVersion>,
    /// Certificates.
    pub certificates: Table<CertVersion>,
    /// Policy and operation per certificate, by lowercase name.
    pub cert_meta: BTreeMap<String, CertMeta>,
}

/// A new certificate version's inputs.
pub struct NewCertVersion<'a> {
    /// Key and chain.
    pub material: &'a CertMaterial,
    /// Policy document (its `secret_props.contentType` decides the secret's format).
    pub policy: serde_json::Value,
    /// Enabled flag from the request.
    pub enabled: Option<bool>,
    /// Tags; `None` when never set (the service then omits the member).
    pub tags: Option<Tags>,
    /// The create operation, for created (not imported) certificates.
    pub pending: Option<PendingOp>,
    /// A fixed version id (seeds); generated when absent.
    pub version: Option<String>,
}

impl Vault {
    /// Adds a certificate version with its managed key and secret; returns the stored name and
    /// the certificate version.
    pub fn add_certificate(
        &mut self,
        name: &str,
        new: NewCertVersion<'_>,
        now: i64,
    ) -> Result<(String, CertVersion), CertStoreError> {
        if !valid_object_name(name) {
            return Err(CertStoreError::Store(StoreError::BadName));
        }
        let key = name.to_ascii_lowercase();
        if self.certificates.deleted.contains_key(&key)
            || self.keys.deleted.contains_key(&key)
            || self.secrets.deleted.contains_key(&key)
        {
            return Err(CertStoreError::Store(StoreError::DeletedConflict));
        }
        let info = crypto::cert_info(new.material.leaf())?;
        let jwk = crypto::jwk_from_pkcs8(&new.material.key_pkcs8)?;
        let content_type = new
            .policy
            .pointer("/secret_props/contentType")
            .and_then(|v| v.as_str())
            .unwrap_or(crypto::CONTENT_TYPE_PKCS12)
            .to_owned();
        let value = new.material.secret_value(&content_type)?;
        let version = new.version.unwrap_or_else(new_version_id);
        let attributes = Attributes::new(new.enabled, Some(info.nbf), Some(info.exp), now);
        let cert = CertVersion {
            version: version.clone(),
            cer: new.material.leaf().to_vec(),
            subject: info.subject,
            attributes: attributes.clone(),
            tags: new.tags.clone(),
        };
        let ops = jwk.default_ops();
        self.keys.add(
            name,
            KeyVersion {
                version: version.clone(),
                pkcs8: new.material.key_pkcs8.clone(),
                jwk,
                key_ops: ops,
                attributes: attributes.clone(),
                tags: new.tags.clone(),
                managed: true,
                exportable: true,
            },
        )?;
        self.secrets.add(
            name,
            SecretVersion {
                version: version.clone(),
                value,
                content_type: Some(content_type),
                attributes,
                tags: new.tags.clone(),
                managed: true,
            },
        )?;
        let stored = self.certificates.add(name, cert.clone())?;
        self.cert_meta.insert(
            key,
            CertMeta {
                policy: new.policy,
                pending: new.pending,
            },
        );
        Ok((stored, cert))
    }

    /// Deletes a certificate with its key and secret.
    pub fn delete_certificate(
        &mut self,
        name: &str,
        now: i64,
    ) -> Result<Deleted<CertVersion>, StoreError> {
        let deleted = self.certificates.delete(name, now)?;
        let _ = self.keys.delete(name, now);
        let _ = self.secrets.delete(name, now);
        Ok(deleted)
    }

    /// Purges a deleted certificate with its key and secret.
    pub fn purge_certificate(&mut self, name: &str) -> Result<(), StoreError> {
        self.certificates.purge(name)?;
        let _ = self.keys.purge(name);
        let _ = self.secrets.purge(name);
        self.cert_meta.remove(&name.to_ascii_lowercase());
        Ok(())
    }

    /// Recovers a deleted certificate with its key and secret.
    pub fn recover_certificate(&mut self, name: &str) -> Result<Entry<CertVersion>, StoreError> {
        let entry = self.certificates.recover(name)?;
        let _ = self.keys.recover(name);
        let _ = self.secrets.recover(name);
        Ok(entry)
    }
}

/// Why a certificate could not be stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertStoreError {
    /// The store refused it.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The material is unusable.
    #[error(transparent)]
    Crypto(#[from] crypto::CryptoError),
}

/// All vaults of one dev vault instance.
pub struct Store {
    vaults: RwLock<BTreeMap<String, Vault>>,
    db: Option<Db>,
}

impl Default for Store {
    fn default() -> Self {
        Self::in_memory()
    }
}

impl Store {
    /// An empty in-memory store.
    pub fn in_memory() -> Self {
        Self {
            vaults: RwLock::new(BTreeMap::new()),
            db: None,
        }
    }

    /// A store backed by `db`, loaded with what it holds.
    pub fn with_db(db: Db) -> Result<Self, PersistError> {
        let mut vaults = BTreeMap::new();
        for (name, doc) in db.load_vaults()? {
            match serde_json::from_slice::<Vault>(&doc) {
                Ok(v) => {
                    vaults.insert(name, v);
                }
                Err(_) => {
                    tracing::warn!(vault = %name, "skipping a stored vault that does not parse");
                }
            }
        }
        Ok(Self {
            vaults: RwLock::new(vaults),
            db: Some(db),
        })
    }

    /// The database, if file-backed.
    pub fn db(&self) -> Option<&Db> {
        self.db.as_ref()
    }

    /// Adds an empty vault; returns false if it already existed.
    pub fn add_vault(&self, name: &str) -> bool {
        let Ok(mut vaults) = self.vaults.write() else {
            return false;
        };
        let key = name.to_ascii_lowercase();
        if vaults.contains_key(&key) {
            return false;
        }
        let vault = Vault::default();
        self.persist(&key, &vault);
        vaults.insert(key, vault);
        true
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

    /// Reads one vault.
    pub fn read<R>(&self, vault: &str, f: impl FnOnce(&Vault) -> R) -> Result<R, StoreError> {
        let vaults = self
            .vaults
            .read()
            .map_err(|_| StoreError::VaultNotFound(vault.to_owned()))?;
        let v = vaults
            .get(&vault.to_ascii_lowercase())
            .ok_or_else(|| StoreError::VaultNotFound(vault.to_owned()))?;
        Ok(f(v))
    }

    /// Changes one vault. The change is kept (and persisted) only when `f` succeeds.
    pub fn write<R, E: From<StoreError>>(
        &self,
        vault: &str,
        f: impl FnOnce(&mut Vault) -> Result<R, E>,
    ) -> Result<R, E> {
        let mut vaults = self
            .vaults
            .write()
            .map_err(|_| StoreError::VaultNotFound(vault.to_owned()))?;
        let key = vault.to_ascii_lowercase();
        let current = vaults
            .get_mut(&key)
            .ok_or_else(|| StoreError::VaultNotFound(vault.to_owned()))?;
        if self.db.is_none() {
            // In memory the change is made in place: every write operation checks before it
            // changes anything, so a failed one leaves the vault as it was, and seeding many
            // objects stays linear.
            return f(current);
        }
        let mut draft = current.clone();
        let out = f(&mut draft)?;
        if !self.persist(&key, &draft) {
            return Err(StoreError::Persist.into());
        }
        *current = draft;
        Ok(out)
    }

    /// Writes a vault's document; true when there is no database or the write succeeded.
    fn persist(&self, key: &str, vault: &Vault) -> bool {
        let Some(db) = &self.db else {
            return true;
        };
        let doc = match serde_json::to_vec(vault) {
            Ok(d) => d,
            Err(_) => return false,
        };
        match db.save_vault(key, &doc) {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(error = %e, "failed to persist a vault");
                false
            }
        }
    }

    /// A secret version (the newest when `version` is `None`), with the stored name.
    pub fn get_secret(
        &self,
        vault: &str,
        name: &str,
        version: Option<&str>,
    ) -> Result<(String, SecretVersion), StoreError> {
        self.read(vault, |v| {
            let entry = v.secrets.get(name).ok_or(StoreError::NotFound)?;
            let found = entry.find(version).ok_or(StoreError::NotFound)?;
            Ok((entry.name.clone(), found.clone()))
        })?
    }

    /// Adds a new version of a secret (creating the secret) and returns it.
    pub fn set_secret(
        &self,
        vault: &str,
        name: &str,
        new: NewSecret,
    ) -> Result<(String, SecretVersion), StoreError> {
        let now = unix_now();
        let version = SecretVersion {
            version: new.version.unwrap_or_else(new_version_id),
            value: new.value,
            content_type: new.content_type,
            attributes: Attributes::new(new.enabled, new.nbf, new.exp, now),
            tags: new.tags,
            managed: false,
        };
        self.write(vault, |v| {
            let stored = v.secrets.add(name, version.clone())?;
            Ok::<_, StoreError>((stored, version))
        })
    }
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
    /// Tags; `None` when never set (the service then omits the member).
    pub tags: Option<Tags>,
    /// A fixed version id; generated when absent.
    pub version: Option<String>,
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

mod b64_bytes {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{KeySpec, NewCertificate};

    fn secret(value: &str) -> NewSecret {
        NewSecret {
            value: value.into(),
            ..Default::default()
        }
    }

    #[test]
    fn newest_version_wins_and_old_ones_stay_reachable() {
        let store = Store::in_memory();
        store.add_vault("kv1");
        let (_, v1) = store.set_secret("kv1", "S", secret("one")).expect("set");
        store.set_secret("KV1", "s", secret("two")).expect("set");
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

    #[test]
    fn a_deleted_name_cannot_be_reused_until_purged_and_recovery_restores_it() {
        let store = Store::in_memory();
        store.add_vault("kv1");
        store.set_secret("kv1", "s", secret("one")).expect("set");
        store
            .write("kv1", |v| v.secrets.delete("s", 10).map(|_| ()))
            .expect("delete");
        assert_eq!(
            store.set_secret("kv1", "s", secret("two")).err(),
            Some(StoreError::DeletedConflict)
        );
        store
            .write("kv1", |v| v.secrets.recover("s").map(|_| ()))
            .expect("recover");
        assert_eq!(
            store.get_secret("kv1", "s", None).expect("get").1.value,
            "one"
        );
        store
            .write("kv1", |v| {
                v.secrets.delete("s", 10)?;
                v.secrets.purge("s")
            })
            .expect("purge");
        store.set_secret("kv1", "s", secret("two")).expect("reuse");
    }

    #[test]
    fn a_certificate_is_three_objects_sharing_name_and_version() {
        let store = Store::in_memory();
        store.add_vault("kv1");
        let material = crypto::self_signed(&NewCertificate {
            subject: "CN=web".into(),
            dns_names: vec![],
            validity_months: 12,
            key: KeySpec::Rsa(2048),
        })
        .expect("cert");
        let policy = serde_json::json!({"secret_props": {"contentType": "application/x-pem-file"}});
        let (_, cert) = store
            .write("kv1", |v| {
                v.add_certificate(
                    "web",
                    NewCertVersion {
                        material: &material,
                        policy,
                        enabled: None,
                        tags: None,
                        pending: None,
                        version: None,
                    },
                    100,
                )
            })
            .expect("add");
        let (key, secret) = store
            .read("kv1", |v| {
                (
                    v.keys.get("web").and_then(|e| e.latest()).cloned(),
                    v.secrets.get("web").and_then(|e| e.latest()).cloned(),
                )
            })
            .expect("read");
        let (key, secret) = (key.expect("key"), secret.expect("secret"));
        assert_eq!(key.version, cert.version);
        assert_eq!(secret.version, cert.version);
        assert!(key.managed && secret.managed);
        assert_eq!(secret.value, material.to_pem());
        store
            .write("kv1", |v| v.delete_certificate("web", 200).map(|_| ()))
            .expect("delete");
        assert!(
            store
                .read("kv1", |v| v.keys.get("web").is_none()
                    && v.secrets.get("web").is_none())
                .expect("read")
        );
    }

    #[test]
    fn seeding_many_secrets_in_memory_stays_fast() {
        let store = Store::in_memory();
        store.add_vault("kv1");
        let started = std::time::Instant::now();
        for i in 0..20_000 {
            store
                .set_secret("kv1", &format!("s{i}"), secret("v"))
                .expect("set");
        }
        assert_eq!(
            store.read("kv1", |v| v.secrets.live.len()).expect("read"),
            20_000
        );
        // Linear work: well under a second in a debug build; the bound leaves room for slow CI.
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
    }

    #[test]
    fn a_failed_write_changes_nothing() {
        let store = Store::in_memory();
        store.add_vault("kv1");
        store.set_secret("kv1", "s", secret("one")).expect("set");
        assert_eq!(
            store.set_secret("kv1", "bad name!", secret("x")).err(),
            Some(StoreError::BadName)
        );
        let r: Result<(), StoreError> = store.write("kv1", |v| v.secrets.purge("s"));
        assert_eq!(r, Err(StoreError::NotFound));
        assert_eq!(
            store.get_secret("kv1", "s", None).expect("get").1.value,
            "one"
        );
        assert_eq!(
            store.read("kv1", |v| v.secrets.live.len()).expect("read"),
            1
        );
    }

    #[test]
    fn a_file_backed_store_keeps_writes_across_reopening() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let store = Store::with_db(Db::open(dir.path()).expect("db")).expect("store");
            store.add_vault("kv1");
            store.set_secret("kv1", "s", secret("kept")).expect("set");
        }
        let store = Store::with_db(Db::open(dir.path()).expect("db")).expect("store");
        assert_eq!(
            store.get_secret("kv1", "s", None).expect("get").1.value,
            "kept"
        );
    }
}

//! Wildcard `objectName`s (docs/beyond-upstream.md): an object whose name holds `*` or `?`
//! stands for every enabled object of its `objectType` whose name matches, each at its newest
//! version, in a file named after it. The vault is listed once per kind a mount needs (with the
//! same retries and throttle gate as any request), so every mount — and every rotation —
//! sees objects created, disabled or deleted since the last one.
//!
//! How many objects one entry may select is capped (`--azure-max-wildcard-objects`), and so is
//! how much of a vault keyvol lists ([`MAX_LISTED_OBJECTS`]); the file names selected objects
//! get are checked against every other file of the mount, as the class's own are at parse time.

use std::collections::BTreeMap;

use keyvol_core::RelPath;

use super::context::MountCtx;
use super::retry::with_retries;
use crate::error::AzureError;
use crate::keyvault::ObjectInfo;
use crate::objects::{KeyVaultObject, ObjectType, check_directories, glob_match};

/// How many objects one wildcard entry may select unless the node says otherwise.
pub const DEFAULT_MAX_WILDCARD_OBJECTS: usize = 256;
/// Most objects of one kind keyvol lists in a vault. Key Vault sets no limit; a vault with more
/// than this many secrets is better served by explicit names (and a listing this long would
/// take hundreds of requests).
pub const MAX_LISTED_OBJECTS: usize = 25_000;

/// `objects` with each wildcard entry replaced by the objects it selects in the vault of
/// `ctx`, paired with the index of the entry they come from, in `objects` order (a wildcard's
/// selection in name order). Lists each kind at most once; checks every file name of the result.
pub(super) async fn expand(
    ctx: &MountCtx,
    objects: &[(usize, KeyVaultObject)],
    max_per_entry: usize,
) -> Result<Vec<(usize, KeyVaultObject)>, AzureError> {
    if !objects.iter().any(|(_, o)| o.is_wildcard()) {
        return Ok(objects.to_vec());
    }
    let mut listings: BTreeMap<ObjectType, Vec<ObjectInfo>> = BTreeMap::new();
    for (i, object) in objects.iter().filter(|(_, o)| o.is_wildcard()) {
        let kind = object.object_type;
        if let std::collections::btree_map::Entry::Vacant(slot) = listings.entry(kind) {
            let mut listed = list(ctx, kind, *i, &object.name).await?;
            listed.sort_by(|a, b| a.name.cmp(&b.name));
            slot.insert(listed);
        }
    }
    let mut out = Vec::with_capacity(objects.len());
    for (i, object) in objects {
        if !object.is_wildcard() {
            out.push((*i, object.clone()));
            continue;
        }
        let listed = listings
            .get(&object.object_type)
            .map_or(&[][..], Vec::as_slice);
        let selected: Vec<&ObjectInfo> = listed
            .iter()
            .filter(|o| o.enabled == Some(true) && glob_match(&object.name, &o.name))
            .collect();
        if selected.len() > max_per_entry {
            return Err(AzureError::InvalidParameter {
                field: format!("objects[{i}].objectName"),
                reason: format!(
                    "{:?} selects {} enabled {}s in {}, more than the {max_per_entry} one entry may select on this node (--azure-max-wildcard-objects); narrow the pattern or split it",
                    object.name,
                    selected.len(),
                    object.object_type.as_str(),
                    ctx.vault_url
                ),
            });
        }
        for info in selected {
            out.push((*i, selected_object(object, info)?));
        }
    }
    check_files(&out)?;
    Ok(out)
}

/// The object a wildcard entry selects: its settings, the listed name, the newest version.
fn selected_object(
    entry: &KeyVaultObject,
    info: &ObjectInfo,
) -> Result<KeyVaultObject, AzureError> {
    let file = RelPath::new(&info.name).map_err(|e| {
        AzureError::Internal(format!(
            "the vault listed an object whose name is not a file name: {e}"
        ))
    })?;
    let mut extensions = entry.extensions.clone();
    extensions.wildcard = false;
    Ok(KeyVaultObject {
        name: info.name.clone(),
        file,
        version: String::new(),
        version_history: 0,
        extensions,
        ..entry.clone()
    })
}

/// The vault's objects of `kind`, with retries behind its throttle gate. A 403 names the
/// permission a wildcard needs. `entry` and `pattern` name the first entry that asked.
async fn list(
    ctx: &MountCtx,
    kind: ObjectType,
    entry: usize,
    pattern: &str,
) -> Result<Vec<ObjectInfo>, AzureError> {
    let what = format!("the list of {}s", kind.as_str());
    let vault = ctx.vault.clone();
    let observer = ctx.state.observer.clone();
    let result = with_retries(
        ctx.deadline,
        Some((&ctx.state.gates, &ctx.vault_url)),
        &what,
        || {
            let vault = vault.clone();
            let observer = observer.clone();
            async move {
                let started = std::time::Instant::now();
                let result = vault.list_objects(kind, MAX_LISTED_OBJECTS).await;
                if let Some(observer) = &observer {
                    let error = result.as_ref().err().map(AzureError::code);
                    observer.request(kind.as_str(), "*", started.elapsed(), error);
                }
                result
            }
        },
    )
    .await;
    result.map_err(|e| match e {
        AzureError::Forbidden { detail, .. } => AzureError::Forbidden {
            object: format!(
                "{what} for objects[{entry}].objectName {pattern:?} in {}",
                ctx.vault_url
            ),
            detail: format!(
                "{detail}; a wildcard objectName needs the list permission on {}s (access policy: list; Azure RBAC: a role that may list them, such as {})",
                kind.as_str(),
                rbac_role(kind)
            ),
        },
        other => other,
    })
}

/// A built-in role that may list a kind.
fn rbac_role(kind: ObjectType) -> &'static str {
    match kind {
        ObjectType::Secret => "Key Vault Secrets User",
        ObjectType::Key => "Key Vault Crypto User",
        ObjectType::Cert => "Key Vault Certificate User",
    }
}

/// Every file of the expanded mount is written by one object and can exist (no file where
/// another needs a directory), as `objects` parsing checks for the class's own names.
pub(super) fn check_files(objects: &[(usize, KeyVaultObject)]) -> Result<(), AzureError> {
    let mut files: BTreeMap<String, (usize, u32)> = BTreeMap::new();
    for (i, object) in objects {
        // In `objects` order, so `other` is the earlier entry.
        if let Some((other, _)) =
            files.insert(object.file.to_string(), (*i, object.version_history))
        {
            return Err(AzureError::InvalidParameter {
                field: format!("objects[{i}]"),
                reason: format!(
                    "file name {:?} (of {}/{}) is also used by objects[{other}]; a wildcard's objects are written under their own names",
                    object.file.as_str(),
                    object.object_type.as_str(),
                    object.name
                ),
            });
        }
        for extracted in &object.extensions.jmes_path {
            if files.insert(extracted.file.to_string(), (*i, 0)).is_some() {
                return Err(AzureError::InvalidParameter {
                    field: format!("{}.objectAlias", extracted.field),
                    reason: format!(
                        "file name {:?} is also written for an object a wildcard selects",
                        extracted.file.as_str()
                    ),
                });
            }
        }
    }
    check_directories(&files)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use async_trait::async_trait;

    use super::*;
    use crate::keyvault::{CertificateBundle, KeyBundle, KeyVault, SecretBundle, VersionInfo};

    /// A vault that only lists: `objects` per kind, or 403 for every listing.
    #[derive(Default)]
    struct ListingVault {
        secrets: Vec<(&'static str, Option<bool>)>,
        certs: Vec<(&'static str, Option<bool>)>,
        forbidden: bool,
        lists: AtomicU32,
    }

    #[async_trait]
    impl KeyVault for ListingVault {
        async fn get_secret(&self, _: &str, _: &str) -> Result<SecretBundle, AzureError> {
            Err(AzureError::Internal("not in this test".into()))
        }
        async fn get_key(&self, _: &str, _: &str) -> Result<KeyBundle, AzureError> {
            Err(AzureError::Internal("not in this test".into()))
        }
        async fn get_certificate(&self, _: &str, _: &str) -> Result<CertificateBundle, AzureError> {
            Err(AzureError::Internal("not in this test".into()))
        }
        async fn list_versions(
            &self,
            _: ObjectType,
            _: &str,
        ) -> Result<Vec<VersionInfo>, AzureError> {
            Err(AzureError::Internal("not in this test".into()))
        }
        async fn list_objects(
            &self,
            kind: ObjectType,
            max: usize,
        ) -> Result<Vec<ObjectInfo>, AzureError> {
            self.lists.fetch_add(1, Ordering::SeqCst);
            if self.forbidden {
                return Err(AzureError::Forbidden {
                    object: format!("the list of {}s", kind.as_str()),
                    detail: "Forbidden: The user does not have secrets list permission (inner: AccessDenied)".into(),
                });
            }
            let items = match kind {
                ObjectType::Secret => &self.secrets,
                ObjectType::Cert => &self.certs,
                ObjectType::Key => return Ok(Vec::new()),
            };
            assert!(items.len() <= max);
            Ok(items
                .iter()
                .map(|(name, enabled)| ObjectInfo {
                    name: (*name).into(),
                    enabled: *enabled,
                })
                .collect())
        }
    }

    fn ctx(vault: Arc<ListingVault>) -> MountCtx {
        MountCtx::for_test(vault)
    }

    fn objects(items: &[&str]) -> Vec<(usize, KeyVaultObject)> {
        let mut text = String::from("array:\n");
        for item in items {
            text.push_str("  - |\n");
            for line in item.lines() {
                text.push_str(&format!("    {line}\n"));
            }
        }
        crate::objects::parse_objects(&text)
            .expect("valid")
            .objects
            .into_iter()
            .enumerate()
            .collect()
    }

    fn names(expanded: &[(usize, KeyVaultObject)]) -> Vec<(usize, String, String)> {
        expanded
            .iter()
            .map(|(i, o)| (*i, o.name.clone(), o.file.to_string()))
            .collect()
    }

    fn vault() -> ListingVault {
        ListingVault {
            secrets: vec![
                ("db-b", Some(false)),
                ("db-a", Some(true)),
                ("DB-c", Some(true)),
                ("db", Some(true)),
                ("other", Some(true)),
                ("db-none", None),
            ],
            certs: vec![("web", Some(true))],
            ..ListingVault::default()
        }
    }

    #[tokio::test]
    async fn a_wildcard_selects_the_enabled_objects_it_matches_in_name_order() {
        let v = Arc::new(vault());
        let c = ctx(v.clone());
        let expanded = expand(
            &c,
            &objects(&[
                "objectName: plain\nobjectType: secret\nobjectAlias: p",
                "objectName: db-*\nobjectType: secret\nfilePermission: \"0440\"",
                "objectName: o?h??\nobjectType: secret\nobjectEncoding: base64",
                "objectName: \"*\"\nobjectType: cert",
            ]),
            256,
        )
        .await
        .expect("expands");
        assert_eq!(
            names(&expanded),
            [
                (0, "plain".into(), "p".into()),
                (1, "DB-c".into(), "DB-c".into()),
                (1, "db-a".into(), "db-a".into()),
                (2, "other".into(), "other".into()),
                (3, "web".into(), "web".into()),
            ],
            "disabled db-b, db-none without attributes and db (no match) are left out"
        );
        let a = &expanded[2].1;
        assert_eq!(
            (
                a.version.as_str(),
                a.version_history,
                a.file_permission,
                a.is_wildcard()
            ),
            ("", 0, Some(0o440), false),
            "the entry's settings, the newest version"
        );
        assert_eq!(v.lists.load(Ordering::SeqCst), 2, "one listing per kind");
    }

    #[tokio::test]
    async fn without_a_wildcard_nothing_is_listed() {
        let v = Arc::new(vault());
        let o = objects(&["objectName: db-a\nobjectType: secret"]);
        assert_eq!(expand(&ctx(v.clone()), &o, 256).await.expect("as is"), o);
        assert_eq!(v.lists.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn more_matches_than_the_cap_fail_naming_the_entry_and_the_flag() {
        let err = expand(
            &ctx(Arc::new(vault())),
            &objects(&[
                "objectName: a\nobjectType: secret",
                "objectName: \"*\"\nobjectType: secret",
            ]),
            3,
        )
        .await
        .expect_err("over the cap");
        assert_eq!(
            err.to_string(),
            "objects[1].objectName: \"*\" selects 4 enabled secrets in https://kv.vault.azure.net/, more than the 3 one entry may select on this node (--azure-max-wildcard-objects); narrow the pattern or split it"
        );
    }

    #[tokio::test]
    async fn a_forbidden_listing_names_the_list_permission() {
        let v = Arc::new(ListingVault {
            forbidden: true,
            ..ListingVault::default()
        });
        let err = expand(
            &ctx(v),
            &objects(&["objectName: db-*\nobjectType: secret"]),
            256,
        )
        .await
        .expect_err("403");
        assert_eq!(err.code(), "Forbidden");
        let text = err.to_string();
        assert!(
            text.starts_with("failed to get the list of secrets for objects[0].objectName \"db-*\" in https://kv.vault.azure.net/: forbidden (")
                && text.contains("a wildcard objectName needs the list permission on secrets (access policy: list;"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn a_selected_name_another_entry_writes_is_an_error() {
        let cases: [(Vec<&str>, Option<&str>); 4] = [
            (
                vec![
                    "objectName: db-a\nobjectType: secret",
                    "objectName: db-*\nobjectType: secret",
                ],
                Some(
                    "objects[1]: file name \"db-a\" (of secret/db-a) is also used by objects[0]; a wildcard's objects are written under their own names",
                ),
            ),
            (
                vec![
                    "objectName: \"*\"\nobjectType: cert",
                    "objectName: w*\nobjectType: secret",
                ],
                Some(
                    "objects[1]: file name \"web\" (of secret/web) is also used by objects[0]; a wildcard's objects are written under their own names",
                ),
            ),
            (
                vec![
                    "objectName: x\nobjectType: secret\nobjectAlias: db-a/inner",
                    "objectName: db-?\nobjectType: secret",
                ],
                Some(
                    "objects[0]: file name \"db-a/inner\" would need \"db-a\" (objects[1]) to be a directory",
                ),
            ),
            (
                vec![
                    "objectName: web-*\nobjectType: secret",
                    "objectName: x\nobjectType: secret\nobjectAlias: web",
                ],
                None,
            ),
        ];
        for (items, want) in cases {
            let mut v = vault();
            v.secrets.push(("web", Some(true)));
            let result = expand(&ctx(Arc::new(v)), &objects(&items), 256).await;
            match (want, result) {
                (Some(want), Err(e)) => assert_eq!(e.to_string(), want),
                (None, Ok(_)) => {}
                (want, result) => panic!(
                    "{items:?}: want {want:?}, got {:?}",
                    result.map(|x| names(&x))
                ),
            }
        }
    }

    #[test]
    fn an_upstream_object_has_no_extensions() {
        let o = objects(&["objectName: db-1\nobjectType: secret\nobjectAlias: x"]);
        assert_eq!(
            o[0].1.extensions,
            crate::objects::ObjectExtensions::default()
        );
    }
}

//! Several vaults in one class (docs/beyond-upstream.md): an object may name its own
//! `keyvaultName` (and `tenantId`, for a vault in another tenant), fetched with the class's
//! identity. The objects are grouped by vault; each vault gets its own client (so its own
//! learned challenge and warm-up), its own throttle gate and its own wildcard listings, and the
//! vaults are worked on concurrently, a few at a time.
//!
//! The pod status's object ids stay upstream's `<type>/<name>` unless objects of two vaults
//! would share one; those become `<vault>/<type>/<name>`.

use std::collections::{BTreeMap, BTreeSet};

use futures::stream::{self, StreamExt, TryStreamExt};
use keyvol_core::{MountRequest, MountResponse};
use tokio::time::Instant;

use super::context::MountCtx;
use super::{AzureProvider, ObjectFiles, wildcard};
use crate::error::AzureError;
use crate::objects::KeyVaultObject;
use crate::params::AzureParams;

/// How many vaults of one mount are worked on at once (each with the provider's fetch
/// concurrency), so a class naming many vaults does not send all their requests together.
pub const VAULTS_AT_ONCE: usize = 4;

/// The objects of one vault.
struct VaultGroup {
    /// The vault's name as the class (or the first object naming it) spells it.
    vault: String,
    /// Its tenant.
    tenant: String,
    /// The objects, with their index in `objects`.
    members: Vec<(usize, KeyVaultObject)>,
}

/// One vault ready to fetch: its name, its context, its objects (wildcards expanded) with
/// their index in `objects`.
type Planned = (String, MountCtx, Vec<(usize, KeyVaultObject)>);

/// `params.objects` grouped by (vault, tenant): the class's vault first, then in order of
/// first appearance. Vault names are compared ignoring case, as DNS does.
fn groups(params: &AzureParams) -> Vec<VaultGroup> {
    let mut out: Vec<VaultGroup> = Vec::new();
    for (i, object) in params.objects.iter().enumerate() {
        let vault = object
            .extensions
            .vault
            .as_deref()
            .unwrap_or(&params.vault_name);
        let tenant = object
            .extensions
            .tenant
            .as_deref()
            .unwrap_or(&params.tenant_id);
        let member = (i, object.clone());
        match out
            .iter_mut()
            .find(|g| g.vault.eq_ignore_ascii_case(vault) && g.tenant == tenant)
        {
            Some(group) => group.members.push(member),
            None => out.push(VaultGroup {
                vault: vault.to_owned(),
                tenant: tenant.to_owned(),
                members: vec![member],
            }),
        }
    }
    // The class's own vault first: its client is the one a plain class uses.
    if let Some(pos) = out.iter().position(|g| {
        g.vault.eq_ignore_ascii_case(&params.vault_name) && g.tenant == params.tenant_id
    }) {
        let own = out.remove(pos);
        out.insert(0, own);
    }
    out
}

/// Fetches every object of the mount: per vault, its context and wildcard listings, then —
/// once every file name of the whole mount is known to be free of clashes — its objects.
/// All or nothing; the response is in `objects` order.
pub(super) async fn fetch_all(
    provider: &AzureProvider,
    request: &MountRequest,
    params: &AzureParams,
    deadline: Instant,
) -> Result<MountResponse, AzureError> {
    let at_once = VAULTS_AT_ONCE;
    let planned: Vec<Planned> = stream::iter(groups(params))
        .map(|group| async move {
            let ctx = provider.vault_ctx(request, params, &group.vault, &group.tenant, deadline)?;
            let expanded =
                wildcard::expand(&ctx, &group.members, provider.config.max_wildcard_objects)
                    .await?;
            Ok::<_, AzureError>((group.vault, ctx, expanded))
        })
        .buffered(at_once)
        .try_collect()
        .await?;
    if planned.len() > 1 {
        let mut all: Vec<(usize, KeyVaultObject)> = planned
            .iter()
            .flat_map(|(_, _, objects)| objects.iter().cloned())
            .collect();
        all.sort_by_key(|(i, _)| *i);
        wildcard::check_files(&all)?;
    }
    let fetched: Vec<(String, Vec<(usize, ObjectFiles)>)> = stream::iter(planned)
        .map(|(vault, ctx, objects)| async move {
            let indices: Vec<usize> = objects.iter().map(|(i, _)| *i).collect();
            let objects: Vec<KeyVaultObject> = objects.into_iter().map(|(_, o)| o).collect();
            let results = provider.fetch_group(ctx, objects).await?;
            Ok::<_, AzureError>((vault, indices.into_iter().zip(results).collect()))
        })
        .buffered(at_once)
        .try_collect()
        .await?;
    Ok(response(fetched))
}

/// The mount's response from each vault's results: files and versions in `objects` order,
/// ids qualified by vault where two vaults would share one.
fn response(fetched: Vec<(String, Vec<(usize, ObjectFiles)>)>) -> MountResponse {
    let mut vaults_of: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (vault, results) in &fetched {
        for (_, (_, versions)) in results {
            for v in versions {
                vaults_of
                    .entry(v.id.clone())
                    .or_default()
                    .insert(vault.to_ascii_lowercase());
            }
        }
    }
    let mut ordered: Vec<(usize, String, ObjectFiles)> = fetched
        .into_iter()
        .flat_map(|(vault, results)| {
            results
                .into_iter()
                .map(move |(i, files)| (i, vault.clone(), files))
        })
        .collect();
    // Stable: a wildcard's objects keep their name order.
    ordered.sort_by_key(|(i, _, _)| *i);
    let mut response = MountResponse::default();
    for (_, vault, (files, versions)) in ordered {
        response.files.extend(files);
        response
            .object_versions
            .extend(versions.into_iter().map(|mut v| {
                if vaults_of.get(&v.id).is_some_and(|set| set.len() > 1) {
                    v.id = format!("{vault}/{}", v.id);
                }
                v
            }));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyvol_core::{ObjectVersion, ProviderFile, RelPath, Sensitive};

    fn params(items: &[&str]) -> AzureParams {
        let mut text = String::from("array:\n");
        for item in items {
            text.push_str("  - |\n");
            for line in item.lines() {
                text.push_str(&format!("    {line}\n"));
            }
        }
        let attrs = [
            (crate::params::POD_NAME, "p"),
            (crate::params::POD_NAMESPACE, "ns"),
            ("keyvaultName", "kv-main"),
            ("tenantId", "t-main"),
            ("objects", text.as_str()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        AzureParams::parse(&attrs, "AzurePublicCloud", None).expect("params")
    }

    #[test]
    fn objects_are_grouped_by_vault_and_tenant_the_classs_vault_first() {
        let p = params(&[
            "objectName: a\nobjectType: secret\nkeyvaultName: kv-other",
            "objectName: b\nobjectType: secret",
            "objectName: c\nobjectType: secret\nkeyvaultName: KV-OTHER",
            "objectName: d\nobjectType: secret\nkeyvaultName: kv-other\ntenantId: t-2",
            "objectName: e\nobjectType: secret\nkeyvaultName: KV-main",
        ]);
        let got: Vec<(String, String, Vec<usize>)> = groups(&p)
            .into_iter()
            .map(|g| {
                (
                    g.vault,
                    g.tenant,
                    g.members.iter().map(|(i, _)| *i).collect(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("kv-main".into(), "t-main".into(), vec![1, 4]),
                ("kv-other".into(), "t-main".into(), vec![0, 2]),
                ("kv-other".into(), "t-2".into(), vec![3]),
            ]
        );
    }

    fn result(id: &str, file: &str) -> ObjectFiles {
        (
            vec![ProviderFile {
                path: RelPath::new(file).expect("path"),
                mode: 0o644,
                contents: Sensitive::new(Vec::new()),
            }],
            vec![ObjectVersion {
                id: id.into(),
                version: "v".into(),
            }],
        )
    }

    #[test]
    fn ids_are_qualified_by_vault_only_where_two_vaults_share_them() {
        let r = response(vec![
            (
                "kv-main".into(),
                vec![
                    (0, result("secret/db", "db")),
                    (2, result("secret/only-main", "m")),
                    (3, result("secret/db", "db-again")),
                ],
            ),
            (
                "KV-Other".into(),
                vec![
                    (1, result("secret/db", "db-other")),
                    (4, result("cert/web", "web")),
                ],
            ),
        ]);
        let ids: Vec<&str> = r.object_versions.iter().map(|v| v.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "kv-main/secret/db",
                "KV-Other/secret/db",
                "secret/only-main",
                "kv-main/secret/db",
                "cert/web"
            ],
            "objects order; one vault naming an id twice keeps it as upstream does"
        );
        let files: Vec<&str> = r.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(files, ["db", "db-other", "m", "db-again", "web"]);
        let same_vault = response(vec![(
            "kv".into(),
            vec![(0, result("secret/a", "a")), (1, result("secret/a", "b"))],
        )]);
        assert_eq!(same_vault.object_versions[1].id, "secret/a");
    }
}

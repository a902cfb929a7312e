//! `objectVersionHistory`: which versions of an object to mount — the enabled ones, newest
//! first, starting at `objectVersion` (or the newest), exactly N of them.

use super::context::MountCtx;
use super::retry::with_retries;
use crate::error::AzureError;
use crate::objects::KeyVaultObject;

/// The `objectVersionHistory` versions to mount: enabled ones, newest first, starting at
/// `objectVersion` (or the newest), exactly N of them (upstream returned N+1, an off-by-one).
pub(super) async fn pick_history(
    ctx: &MountCtx,
    object: &KeyVaultObject,
) -> Result<Vec<String>, AzureError> {
    let vault = ctx.vault.clone();
    let (kind, name) = (object.object_type, object.name.clone());
    let what = format!("{}/{} versions", kind.as_str(), object.name);
    let mut list = with_retries(
        ctx.deadline,
        Some((&ctx.state.gates, &ctx.vault_url)),
        &what,
        || {
            let vault = vault.clone();
            let name = name.clone();
            async move { vault.list_versions(kind, &name).await }
        },
    )
    .await?;
    list.retain(|v| v.enabled == Some(true));
    list.sort_by(|a, b| {
        b.created
            .unwrap_or(0)
            .cmp(&a.created.unwrap_or(0))
            .then_with(|| a.version.cmp(&b.version))
    });
    let start = if object.version.is_empty() || object.version.eq_ignore_ascii_case("latest") {
        0
    } else {
        list.iter()
            .position(|v| v.version.eq_ignore_ascii_case(&object.version))
            .ok_or_else(|| AzureError::NotFound {
                object: format!("{}/{}", kind.as_str(), object.name),
                detail: format!(
                    "objectVersion {} is not among the enabled versions",
                    object.version
                ),
            })?
    };
    Ok(list
        .into_iter()
        .skip(start)
        .take(object.version_history as usize)
        .map(|v| v.version)
        .collect())
}

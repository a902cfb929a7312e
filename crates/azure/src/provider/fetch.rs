//! One object version from the vault, at most once at a time: from the share window
//! ([`super::share`]) if a volume fetched it a moment ago with the same identity, else joined to
//! an identical request already in flight ([`super::coalesce`]), else from the vault with
//! retries ([`super::retry`]).

use std::sync::Arc;

use futures::FutureExt;

use super::context::{FetchKey, MountCtx};
use super::retry::with_retries;
use crate::error::AzureError;
use crate::format::Fetched;
use crate::objects::ObjectType;

/// One object version: from the share window if a volume fetched it a moment ago with the
/// same identity, else from the vault with retries, shared with any identical request already
/// in flight. Never shared across identities: the identity is part of the key.
pub(super) async fn fetch_version(
    ctx: &MountCtx,
    kind: ObjectType,
    name: &str,
    version: &str,
) -> Result<Arc<Fetched>, AzureError> {
    let key = FetchKey {
        vault: ctx.vault_url.clone(),
        identity: ctx.identity.clone(),
        kind,
        name: name.to_owned(),
        version: version.to_owned(),
    };
    if let Some(hit) = ctx.state.shared.recent(&key, ctx.share_window) {
        return Ok(hit);
    }
    let start = || {
        let vault = ctx.vault.clone();
        let state = ctx.state.clone();
        let vault_url = ctx.vault_url.clone();
        let (name, version, deadline) = (name.to_owned(), version.to_owned(), ctx.deadline);
        async move {
            let what = format!("{}/{name}", kind.as_str());
            with_retries(deadline, Some((&state.gates, &vault_url)), &what, || {
                let vault = vault.clone();
                let observer = state.observer.clone();
                let (name, version) = (name.clone(), version.clone());
                async move {
                    let started = std::time::Instant::now();
                    let result = match kind {
                        ObjectType::Secret => {
                            vault.get_secret(&name, &version).await.map(Fetched::Secret)
                        }
                        ObjectType::Key => vault.get_key(&name, &version).await.map(Fetched::Key),
                        ObjectType::Cert => vault
                            .get_certificate(&name, &version)
                            .await
                            .map(Fetched::Cert),
                    };
                    if let Some(observer) = &observer {
                        let error = result.as_ref().err().map(AzureError::code);
                        observer.request(kind.as_str(), &name, started.elapsed(), error);
                    }
                    Ok(Arc::new(result?))
                }
            })
            .await
        }
        .boxed()
    };
    let result = ctx.state.in_flight.join_or_start(&key, start).await;
    if let Ok(value) = &result {
        ctx.state
            .shared
            .remember(key, value.clone(), ctx.share_window);
    }
    result
}

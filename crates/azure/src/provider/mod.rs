//! The Azure provider: validates a mount request, picks the identity, fetches every object
//! concurrently from Key Vault — with deadline-aware retries and identical in-flight requests
//! coalesced process-wide — and returns the files. All or nothing.
//!
//! This module holds the mount flow ([`AzureProvider::fetch`], [`AzureProvider::fetch_bundles`])
//! and what one object contributes to it. The private submodules, one concern each: `fetch`
//! gets one object version — from the share window (`share`), joined to an identical request in
//! flight (`coalesce`), or from the vault with deadline-aware retries (`retry`) behind per-vault
//! throttle gates (`gate`) and the node-wide per-vault request budget (`budget`); `history`
//! picks the versions of `objectVersionHistory`; `context` holds the process-wide state and one
//! mount's view that they all work with. Beyond upstream (docs/beyond-upstream.md): `vaults`
//! groups a class's objects by vault and works on the vaults concurrently, each with its own
//! context; `wildcard` lists a vault for wildcard `objectName`s; `jmesPath` files come from
//! [`crate::jmes`].
//!
//! A mount sends all its objects at once: the token scope each vault wants is known before the
//! first request (from the cloud, or learned once per vault for the process — see
//! [`crate::challenge`]), so no object waits for another to learn it, and a new identity costs
//! one token request, which every request of the mount waits on together.
//!
//! Every per-identity and per-vault cache is bounded and shrinks back when idle: credentials
//! ([`crate::identity::CredentialCache`]), Key Vault clients ([`CLIENT_IDLE`], [`MAX_CLIENTS`]),
//! vaults' challenges ([`crate::challenge::Scopes`]), throttle gates and request budgets,
//! share-window results and coalesced requests (each module says how).

mod budget;
mod coalesce;
mod context;
mod fetch;
mod gate;
mod history;
mod retry;
mod share;
mod vaults;
mod wildcard;

pub use self::budget::{RATE_BURST, RATE_PER_SECOND};
pub use self::wildcard::{DEFAULT_MAX_WILDCARD_OBJECTS, MAX_LISTED_OBJECTS};

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use keyvol_core::{
    MountRequest, MountResponse, ObjectVersion, Provider, ProviderError, ProviderFile, RelPath,
    Sensitive,
};
use tokio::time::Instant;

use self::context::{FetchState, MountCtx};
use self::fetch::fetch_version;
use self::history::pick_history;

use crate::cache::IdleCache;
use crate::challenge::Scopes;
use crate::error::AzureError;
use crate::format::{Fetched, FormatOptions, render};
use crate::http::{HttpConfig, build_client};
use crate::identity::{CredentialCache, IdentityKey};
use crate::keyvault::{Caller, KeyVault, version_of};
use crate::objects::KeyVaultObject;
use crate::params::AzureParams;
use crate::rest::RestKeyVault;

/// Most requests in flight to one vault from the whole process (`--azure-fetch-concurrency`),
/// all mounts and identities together. A mount sends all its objects at once, so a mount of up
/// to this many objects is one round trip when nothing else is in flight to its vault; the
/// rate stays within Key Vault's documented 4,000 transactions per 10 s per vault through the
/// per-vault rate bucket ([`budget::RATE_BURST`], [`budget::RATE_PER_SECOND`]).
pub const DEFAULT_FETCH_CONCURRENCY: usize = 64;
/// Deadline of one mount: below kubelet's two-minute NodePublishVolume deadline, so keyvol answers
/// with its own clear error instead of kubelet's DeadlineExceeded.
pub const DEFAULT_MOUNT_TIMEOUT: Duration = Duration::from_secs(100);
/// A Key Vault client of one identity not used by any mount for this long is dropped (the next
/// mount builds another; connections and the vault's challenge are shared process-wide and
/// outlive it). The default of `--azure-identity-idle`, which also applies to credentials.
pub const CLIENT_IDLE: Duration = Duration::from_secs(600);
/// Shortest `--azure-identity-idle`.
pub const MIN_IDENTITY_IDLE: Duration = Duration::from_secs(1);
/// The eviction task ([`AzureProvider::spawn_eviction`]) sweeps at a quarter of the idle time,
/// at most this far apart.
const MAX_EVICTION_PERIOD: Duration = Duration::from_secs(60);
/// Most (vault, identity) clients kept. Vault names and identities come from classes; a node
/// talks to a handful of vaults with a few hundred identities at most. Past this, the least
/// recently used client is dropped.
pub const MAX_CLIENTS: usize = 1024;

/// Provider settings, from the command line.
#[derive(Debug, Clone)]
pub struct AzureProviderConfig {
    /// Cloud used when a class names none (`--cloud-name`).
    pub default_cloud: String,
    /// HTTP trust, timeouts and redirects.
    pub http: HttpConfig,
    /// Most requests in flight to one vault, node-wide (every mount sends all its objects at
    /// once, within this).
    pub fetch_concurrency: usize,
    /// Deadline of one mount, retries included.
    pub mount_timeout: Duration,
    /// PEM output switches.
    pub format: FormatOptions,
    /// Port of the AAD Pod Identity NMI on this node (`2579` upstream).
    pub nmi_port: u16,
    /// IMDS base URL (`http://169.254.169.254` on Azure VMs).
    pub imds_endpoint: String,
    /// How long one fetch of an object version serves every volume that asks for it with the
    /// same identity (node-wide sharing); zero turns sharing off.
    pub share_window: Duration,
    /// The only directory a class's `cloudEnvFileName` may name a file in (`--cloud-env-dir`);
    /// `None` turns custom clouds off.
    pub cloud_env_dir: Option<PathBuf>,
    /// Told about every Key Vault request (the `keyvault_request` metric), if anyone listens.
    pub observer: Option<Arc<dyn keyvol_core::RequestObserver>>,
    /// Most objects one wildcard `objectName` may select (`--azure-max-wildcard-objects`).
    pub max_wildcard_objects: usize,
    /// A credential (with its token) or Key Vault client no mount has used for this long is
    /// dropped (`--azure-identity-idle`).
    pub identity_idle: Duration,
}

impl Default for AzureProviderConfig {
    fn default() -> Self {
        Self {
            default_cloud: "AzurePublicCloud".into(),
            http: HttpConfig::default(),
            fetch_concurrency: DEFAULT_FETCH_CONCURRENCY,
            mount_timeout: DEFAULT_MOUNT_TIMEOUT,
            format: FormatOptions::default(),
            nmi_port: crate::identity::DEFAULT_NMI_PORT,
            imds_endpoint: crate::identity::DEFAULT_IMDS_ENDPOINT.into(),
            share_window: Duration::ZERO,
            cloud_env_dir: None,
            observer: None,
            max_wildcard_objects: DEFAULT_MAX_WILDCARD_OBJECTS,
            identity_idle: CLIENT_IDLE,
        }
    }
}

/// The files and object versions one object contributes to a mount.
type ObjectFiles = (Vec<ProviderFile>, Vec<ObjectVersion>);

/// The provider. Create one per process: it owns the token, client, challenge and in-flight
/// caches.
pub struct AzureProvider {
    config: AzureProviderConfig,
    http: reqwest::Client,
    credentials: CredentialCache,
    clients: IdleCache<(String, IdentityKey), Arc<dyn KeyVault>>,
    scopes: Scopes,
    state: Arc<FetchState>,
}

impl AzureProvider {
    /// Builds the provider and its HTTP client.
    pub fn new(config: AzureProviderConfig) -> Result<Self, AzureError> {
        let http = build_client(&config.http)?;
        let observer = config.observer.clone();
        let gates = self::gate::Gates::new(self::budget::Budgets::new(config.fetch_concurrency));
        let idle = config.identity_idle.max(MIN_IDENTITY_IDLE);
        Ok(Self {
            config,
            http,
            credentials: CredentialCache::new(idle, crate::identity::MAX_CREDENTIALS),
            clients: IdleCache::new(idle, MAX_CLIENTS),
            scopes: Scopes::default(),
            state: Arc::new(FetchState {
                observer,
                gates,
                ..FetchState::default()
            }),
        })
    }

    /// Drops everything the provider keeps that no mount has used for its idle time —
    /// credentials and their tokens, Key Vault clients, learned vault scopes, request budgets,
    /// parsed `objects` texts — and returns how many entries went. Lookups drop idle entries as
    /// they go; this also reaches caches nothing looks at any more.
    pub fn evict_idle(&self) -> usize {
        self.credentials.evict_idle()
            + self.clients.sweep_now()
            + self.scopes.evict_idle()
            + self.state.gates.evict_idle()
            + crate::objects::evict_idle()
    }

    /// Starts the task that calls [`Self::evict_idle`] every quarter of the identity idle time
    /// (at most a minute apart), so a node whose tenants have gone returns to its idle size
    /// without another mount. The task ends when the provider is dropped. Needs a Tokio runtime.
    pub fn spawn_eviction(self: &Arc<Self>) {
        let period = (self.config.identity_idle.max(MIN_IDENTITY_IDLE) / 4)
            .clamp(Duration::from_millis(250), MAX_EVICTION_PERIOD);
        let provider = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(provider) = provider.upgrade() else {
                    return;
                };
                let evicted = provider.evict_idle();
                if evicted > 0 {
                    tracing::debug!(evicted, "dropped idle credentials, clients and caches");
                }
            }
        });
    }

    fn vault_client(
        &self,
        vault_url: &str,
        key: &IdentityKey,
        credential: Arc<dyn azure_core::credentials::TokenCredential>,
        params: &AzureParams,
    ) -> Result<Arc<dyn KeyVault>, AzureError> {
        self.clients
            .get_or_try_insert_with(&(vault_url.to_owned(), key.clone()), || {
                let vault = RestKeyVault::new(
                    self.http.clone(),
                    vault_url,
                    Caller {
                        identity: key.label(),
                        token_endpoint: key.token_endpoint(),
                    },
                    credential,
                    params.cloud.vault_scope(),
                    self.scopes.vault(vault_url),
                )?;
                Ok(Arc::new(vault) as Arc<dyn KeyVault>)
            })
    }

    fn parse(&self, request: &MountRequest) -> Result<AzureParams, AzureError> {
        AzureParams::parse(
            &request.attributes,
            &self.config.default_cloud,
            self.config.cloud_env_dir.as_deref(),
        )
    }

    /// Fetches everything `request` names, within the mount deadline.
    pub async fn fetch(&self, request: &MountRequest) -> Result<MountResponse, AzureError> {
        let timeout = self.config.mount_timeout;
        tokio::time::timeout(timeout, self.fetch_inner(request))
            .await
            .map_err(|_| AzureError::Deadline(timeout))?
    }

    async fn fetch_inner(&self, request: &MountRequest) -> Result<MountResponse, AzureError> {
        let deadline = Instant::now() + self.config.mount_timeout;
        let params = self.parse(request)?;
        for warning in &params.warnings {
            tracing::warn!(pod = %params.pod_name, namespace = %params.pod_namespace, "{warning}");
        }
        if params.objects.is_empty() {
            return Ok(MountResponse::default());
        }
        vaults::fetch_all(self, request, &params, deadline).await
    }

    /// Files and versions of `objects` (all of the vault of `ctx`, wildcards expanded), in
    /// order: every object sent at once (see [`fetch_all`]).
    async fn fetch_group(
        &self,
        ctx: MountCtx,
        objects: Vec<KeyVaultObject>,
    ) -> Result<Vec<ObjectFiles>, AzureError> {
        fetch_all(&ctx, &objects).await
    }
}

/// Every object's files and versions, in `objects` order, all fetched at once: the vault's
/// request budget is what holds requests back. The first failure ends the others.
async fn fetch_all(
    ctx: &MountCtx,
    objects: &[KeyVaultObject],
) -> Result<Vec<ObjectFiles>, AzureError> {
    futures::future::try_join_all(objects.iter().map(|object| fetch_object(ctx, object))).await
}

/// One object of a mount and the vault's answer for it, before any formatting.
///
/// Returned by [`AzureProvider::fetch_bundles`] for front ends that write their own formats (the
/// FlexVolume driver writes the original `azure/kv` bytes: secrets as stored, certificates as DER).
pub struct FetchedObject {
    /// The object, as validated from the request's `objects`.
    pub object: KeyVaultObject,
    /// What the vault returned for the object's version.
    pub fetched: Arc<Fetched>,
}

impl AzureProvider {
    /// The vault client, identity and deadline for one mount: the process-wide credential for
    /// the request's identity and the cached Key Vault client for (vault, identity).
    fn mount_ctx(
        &self,
        request: &MountRequest,
        params: &AzureParams,
        deadline: Instant,
    ) -> Result<MountCtx, AzureError> {
        self.vault_ctx(
            request,
            params,
            &params.vault_name,
            &params.tenant_id,
            deadline,
        )
    }

    /// [`AzureProvider::mount_ctx`] for vault `vault_name` of tenant `tenant` (an object's own
    /// `keyvaultName` and `tenantId`), with the class's identity.
    fn vault_ctx(
        &self,
        request: &MountRequest,
        params: &AzureParams,
        vault_name: &str,
        tenant: &str,
        deadline: Instant,
    ) -> Result<MountCtx, AzureError> {
        let (identity, credential) = self.credentials.credential(
            &params.identity,
            tenant,
            &params.cloud,
            request,
            &self.http,
            &crate::identity::Endpoints {
                nmi_port: self.config.nmi_port,
                imds: self.config.imds_endpoint.clone(),
            },
            (&params.pod_name, &params.pod_namespace),
        )?;
        let vault_url = params.cloud.vault_url(vault_name);
        let vault = self.vault_client(&vault_url, &identity, credential, params)?;
        Ok(MountCtx {
            vault,
            vault_url,
            identity,
            deadline,
            state: self.state.clone(),
            share_window: self.config.share_window,
            format: self.config.format,
            default_mode: request.default_mode,
        })
    }

    /// Fetches every object `request` names and returns the vault's answers unformatted, in
    /// `objects` order: the same parameter validation, identity, client cache, retries,
    /// coalescing and mount deadline as [`AzureProvider::fetch`], without [`render`].
    ///
    /// Each object's one version is fetched; `objectVersionHistory` above 1 is refused, since
    /// its file naming belongs to [`AzureProvider::fetch`].
    pub async fn fetch_bundles(
        &self,
        request: &MountRequest,
    ) -> Result<Vec<FetchedObject>, AzureError> {
        let timeout = self.config.mount_timeout;
        tokio::time::timeout(timeout, self.fetch_bundles_inner(request))
            .await
            .map_err(|_| AzureError::Deadline(timeout))?
    }

    async fn fetch_bundles_inner(
        &self,
        request: &MountRequest,
    ) -> Result<Vec<FetchedObject>, AzureError> {
        let deadline = Instant::now() + self.config.mount_timeout;
        let params = self.parse(request)?;
        if let Some(i) = params.objects.iter().position(|o| o.version_history > 1) {
            return Err(AzureError::InvalidParameter {
                field: format!("objects[{i}].objectVersionHistory"),
                reason: "is not supported when fetching unformatted bundles".into(),
            });
        }
        if let Some(i) = params
            .objects
            .iter()
            .position(|o| !o.extensions.jmes_path.is_empty())
        {
            return Err(AzureError::InvalidParameter {
                field: format!("objects[{i}].jmesPath"),
                reason: "is not supported when fetching unformatted bundles".into(),
            });
        }
        if let Some(i) = params
            .objects
            .iter()
            .position(|o| o.extensions.vault.is_some())
        {
            return Err(AzureError::InvalidParameter {
                field: format!("objects[{i}].keyvaultName"),
                reason: "is not supported when fetching unformatted bundles".into(),
            });
        }
        if let Some(i) = params.objects.iter().position(KeyVaultObject::is_wildcard) {
            return Err(AzureError::InvalidParameter {
                field: format!("objects[{i}].objectName"),
                reason: "a wildcard is not supported when fetching unformatted bundles".into(),
            });
        }
        if params.objects.is_empty() {
            return Ok(Vec::new());
        }
        let ctx = self.mount_ctx(request, &params, deadline)?;
        futures::future::try_join_all(params.objects.iter().map(|object| {
            let ctx = &ctx;
            async move {
                let fetched =
                    fetch_version(ctx, object.object_type, &object.name, &object.version).await?;
                Ok(FetchedObject {
                    object: object.clone(),
                    fetched,
                })
            }
        }))
        .await
    }
}

/// Files and versions of one object (one version, or `objectVersionHistory` of them).
async fn fetch_object(
    ctx: &MountCtx,
    object: &KeyVaultObject,
) -> Result<(Vec<ProviderFile>, Vec<ObjectVersion>), AzureError> {
    let kind = object.object_type.as_str();
    let mut files = Vec::new();
    let mut versions = Vec::new();
    if object.version_history <= 1 {
        let fetched = fetch_version(ctx, object.object_type, &object.name, &object.version).await?;
        push_files(ctx, object, &object.file, &fetched, &mut files)?;
        if let Some(own) = files.iter().find(|f| f.path == object.file) {
            let mode = own.mode;
            let extracted = crate::jmes::files(object, own.contents.expose(), mode)?;
            files.extend(extracted);
        }
        versions.push(ObjectVersion {
            id: format!("{kind}/{}", object.name),
            version: fetched_version(&fetched).to_owned(),
        });
        return Ok((files, versions));
    }
    let chosen = pick_history(ctx, object).await?;
    // The chosen versions are fetched at once (one round trip after the listing).
    let all = futures::future::try_join_all(
        chosen
            .iter()
            .map(|version| fetch_version(ctx, object.object_type, &object.name, version)),
    )
    .await?;
    for (index, fetched) in all.iter().enumerate() {
        let file = RelPath::new(&format!("{}/{index}", object.file)).map_err(|e| {
            AzureError::InvalidParameter {
                field: "objectAlias".into(),
                reason: e.to_string(),
            }
        })?;
        push_files(ctx, object, &file, fetched, &mut files)?;
        versions.push(ObjectVersion {
            id: format!("{kind}/{}/{index}", object.name),
            version: fetched_version(fetched).to_owned(),
        });
    }
    Ok((files, versions))
}

fn fetched_version(f: &Fetched) -> &str {
    match f {
        Fetched::Secret(s) => version_of(&s.id),
        Fetched::Key(k) => version_of(&k.kid),
        Fetched::Cert(c) => version_of(&c.id),
    }
}

fn push_files(
    ctx: &MountCtx,
    object: &KeyVaultObject,
    file: &RelPath,
    fetched: &Fetched,
    out: &mut Vec<ProviderFile>,
) -> Result<(), AzureError> {
    for (path, bytes) in render(object, file, fetched, ctx.format)? {
        out.push(ProviderFile {
            path,
            mode: object.file_permission.unwrap_or(ctx.default_mode),
            contents: Sensitive::new(bytes),
        });
    }
    Ok(())
}

#[async_trait]
impl Provider for AzureProvider {
    async fn mount(&self, request: MountRequest) -> Result<MountResponse, ProviderError> {
        self.fetch(&request).await.map_err(ProviderError::from)
    }

    fn runtime(&self) -> (&'static str, &'static str) {
        ("keyvol-azure", env!("CARGO_PKG_VERSION"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A service-principal mount of vault `kv<vault>` by client `c<client>`.
    fn sp_request(client: usize, vault: usize) -> MountRequest {
        MountRequest {
            attributes: [
                (crate::params::POD_NAME, "p"),
                (crate::params::POD_NAMESPACE, "ns"),
                ("keyvaultName", &*format!("kv{vault:03}")),
                ("tenantId", "t"),
                (
                    "objects",
                    "array:\n  - |\n    objectName: s\n    objectType: secret\n",
                ),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
            secrets: [
                ("clientid", format!("c{client}")),
                ("clientsecret", "s3cret".to_owned()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), Sensitive::new(v)))
            .collect(),
            default_mode: 0o644,
            target_path: String::new(),
            current_versions: Vec::new(),
        }
    }

    /// Builds the credential and client a mount of `request` would use (no network call).
    fn touch(provider: &AzureProvider, request: &MountRequest) {
        let params = provider.parse(request).expect("params");
        provider
            .mount_ctx(request, &params, Instant::now() + Duration::from_secs(1))
            .map(|_| ())
            .expect("mount context");
    }

    #[tokio::test(start_paused = true)]
    async fn identities_that_come_and_go_leave_the_caches_at_their_idle_size() {
        let provider = AzureProvider::new(AzureProviderConfig::default()).expect("provider");
        for i in 0..300 {
            touch(&provider, &sp_request(i, i % 7));
        }
        assert_eq!(
            (provider.credentials.len(), provider.clients.len()),
            (300, 300)
        );
        tokio::time::advance(CLIENT_IDLE + Duration::from_secs(1)).await;
        touch(&provider, &sp_request(0, 0));
        assert_eq!(
            (provider.credentials.len(), provider.clients.len()),
            (1, 1),
            "only the identity still in use is kept"
        );
        for i in 0..MAX_CLIENTS + 100 {
            touch(&provider, &sp_request(i, 1));
        }
        assert_eq!(provider.clients.len(), MAX_CLIENTS, "bounded");
        assert_eq!(
            provider.credentials.len(),
            crate::identity::MAX_CREDENTIALS,
            "bounded"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_eviction_task_lets_go_of_identities_nothing_mounts_with_any_more() {
        let idle = Duration::from_secs(8);
        let provider = Arc::new(
            AzureProvider::new(AzureProviderConfig {
                identity_idle: idle,
                ..AzureProviderConfig::default()
            })
            .expect("provider"),
        );
        provider.spawn_eviction();
        for i in 0..50 {
            touch(&provider, &sp_request(i, i % 3));
        }
        tokio::time::sleep(idle / 2).await;
        touch(&provider, &sp_request(0, 0));
        assert_eq!(
            (provider.credentials.len(), provider.clients.len()),
            (50, 50),
            "nothing is idle yet"
        );
        // No lookup after this: only the task can drop what went idle.
        tokio::time::sleep(idle / 2 + idle / 4 + Duration::from_millis(10)).await;
        assert_eq!(
            (provider.credentials.len(), provider.clients.len()),
            (1, 1),
            "only the identity used since is kept"
        );
        tokio::time::sleep(idle * 2).await;
        assert_eq!((provider.credentials.len(), provider.clients.len()), (0, 0));
        let weak = Arc::downgrade(&provider);
        drop(provider);
        tokio::time::sleep(idle).await;
        assert!(
            weak.upgrade().is_none(),
            "the task does not keep the provider"
        );
    }

    /// Resident memory of the process in KiB.
    fn rss_kib() -> u64 {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            })
            .unwrap_or(0)
    }

    /// Measurement, not a check: `cargo test -p keyvol-azure --lib resident_memory -- --ignored
    /// --nocapture` prints the resident size after waves of 20,000 identities that each go idle.
    #[tokio::test(start_paused = true)]
    #[ignore = "measurement; prints numbers"]
    async fn resident_memory_after_many_identities() {
        let provider = AzureProvider::new(AzureProviderConfig::default()).expect("provider");
        let mut line = format!("RSS KiB: start {}", rss_kib());
        for wave in 0..3 {
            for i in 0..20_000 {
                touch(&provider, &sp_request(wave * 20_000 + i, i % 50));
            }
            line.push_str(&format!(", after wave {wave} {}", rss_kib()));
            tokio::time::advance(CLIENT_IDLE + Duration::from_secs(1)).await;
        }
        touch(&provider, &sp_request(0, 0));
        println!(
            "{line}; held now: credentials {}, clients {}",
            provider.credentials.len(),
            provider.clients.len()
        );
    }

    #[tokio::test]
    async fn unformatted_bundles_refuse_version_history_before_any_network_call() {
        let provider = AzureProvider::new(AzureProviderConfig::default()).expect("provider");
        let request = MountRequest {
            attributes: [
                (crate::params::POD_NAME, "p"),
                (crate::params::POD_NAMESPACE, "ns"),
                ("keyvaultName", "kv1"),
                ("tenantId", "t"),
                (
                    "objects",
                    "array:\n  - |\n    objectName: s\n    objectType: secret\n    objectVersionHistory: 2\n",
                ),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
            secrets: Default::default(),
            default_mode: 0o644,
            target_path: String::new(),
            current_versions: Vec::new(),
        };
        let err = provider
            .fetch_bundles(&request)
            .await
            .err()
            .expect("refused");
        assert_eq!(
            err.to_string(),
            "objects[0].objectVersionHistory: is not supported when fetching unformatted bundles"
        );
    }
}

#[cfg(test)]
mod fake_vault_tests {
    use super::*;
    use crate::keyvault::{CertificateBundle, KeyBundle, SecretBundle, VersionInfo};
    use crate::objects::ObjectType;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// Version `n` as Key Vault spells versions: 32 hexadecimal digits.
    fn ver(n: u8) -> String {
        format!("{n:032x}")
    }

    /// A vault with one secret `s` in versions v0 (oldest) .. v4 (newest); v3 is disabled. The
    /// value of version `n` is `s@v<n>`.
    #[derive(Default)]
    struct FakeVault {
        gets: AtomicU32,
        delay: Option<Duration>,
        /// Answer this many gets with 429 and Retry-After 2 s first.
        throttle_first: AtomicU32,
        /// Gets in flight now, and the most at once.
        in_flight: AtomicU32,
        peak: AtomicU32,
    }

    #[async_trait]
    impl KeyVault for FakeVault {
        async fn get_secret(&self, name: &str, version: &str) -> Result<SecretBundle, AzureError> {
            self.gets.fetch_add(1, Ordering::SeqCst);
            if self.throttle_first.load(Ordering::SeqCst) > 0 {
                self.throttle_first.fetch_sub(1, Ordering::SeqCst);
                return Err(AzureError::Throttled {
                    object: format!("secret/{name}"),
                    service: crate::error::Service::Vault,
                    endpoint: "https://kv.vault.azure.net/".into(),
                    detail: "Throttled".into(),
                    retry_after: Some(Duration::from_secs(2)),
                });
            }
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.peak.fetch_max(now, Ordering::SeqCst);
            if let Some(d) = self.delay {
                tokio::time::sleep(d).await;
            }
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            let version = if version.is_empty() {
                ver(4)
            } else {
                version.to_owned()
            };
            let label = u8::from_str_radix(&version, 16)
                .map(|n| format!("v{n}"))
                .unwrap_or_else(|_| version.clone());
            Ok(SecretBundle {
                value: Sensitive::new(format!("{name}@{label}")),
                id: format!("https://kv.vault.azure.net/secrets/{name}/{version}"),
                content_type: None,
                kid: None,
            })
        }
        async fn get_key(&self, _: &str, _: &str) -> Result<KeyBundle, AzureError> {
            Err(AzureError::Internal("no keys".into()))
        }
        async fn get_certificate(&self, _: &str, _: &str) -> Result<CertificateBundle, AzureError> {
            Err(AzureError::Internal("no certificates".into()))
        }
        async fn list_versions(
            &self,
            _: ObjectType,
            _: &str,
        ) -> Result<Vec<VersionInfo>, AzureError> {
            // Deliberately not in creation order, as the service returns them.
            Ok([
                (2, 102, true),
                (0, 100, true),
                (4, 104, true),
                (3, 103, false),
                (1, 101, true),
            ]
            .into_iter()
            .map(|(v, c, e)| VersionInfo {
                version: ver(v),
                enabled: Some(e),
                created: Some(c),
            })
            .collect())
        }
        async fn list_objects(
            &self,
            kind: ObjectType,
            _: usize,
        ) -> Result<Vec<crate::keyvault::ObjectInfo>, AzureError> {
            Ok(match kind {
                ObjectType::Secret => vec![crate::keyvault::ObjectInfo {
                    name: "s".into(),
                    enabled: Some(true),
                }],
                _ => Vec::new(),
            })
        }
    }

    fn ctx(vault: Arc<FakeVault>) -> MountCtx {
        MountCtx::for_test(vault)
    }

    fn object(extra: &str) -> KeyVaultObject {
        let text = format!(
            "array:\n  - |\n    objectName: s\n    objectType: secret\n{}",
            extra
                .lines()
                .map(|l| format!("    {l}\n"))
                .collect::<String>()
        );
        crate::objects::parse_objects(&text)
            .expect("valid")
            .objects
            .remove(0)
    }

    fn contents(files: &[ProviderFile]) -> Vec<(String, String)> {
        files
            .iter()
            .map(|f| {
                (
                    f.path.to_string(),
                    String::from_utf8_lossy(f.contents.expose()).into_owned(),
                )
            })
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn a_mount_sends_every_object_at_once_and_keeps_their_order() {
        let vault = Arc::new(FakeVault {
            delay: Some(Duration::from_millis(20)),
            ..FakeVault::default()
        });
        let c = ctx(vault.clone());
        let objects: Vec<KeyVaultObject> = (0..64)
            .map(|i| {
                let mut o = object(&format!("objectAlias: f{i}"));
                o.name = format!("s{i}");
                o
            })
            .collect();
        let start = Instant::now();
        let all = fetch_all(&c, &objects).await.expect("fetches");
        assert_eq!(
            Instant::now() - start,
            Duration::from_millis(20),
            "one round trip"
        );
        assert_eq!(
            vault.peak.load(Ordering::SeqCst),
            64,
            "all in flight at once"
        );
        let files: Vec<(String, String)> = all.iter().flat_map(|(f, _)| contents(f)).collect();
        assert_eq!(files[0], ("f0".into(), "s0@v4".into()));
        assert_eq!(files[63], ("f63".into(), "s63@v4".into()));
        assert_eq!(files.len(), 64);

        // Past the vault's in-flight limit (64 by default), a second round.
        let objects: Vec<KeyVaultObject> = (0..65)
            .map(|i| {
                let mut o = object(&format!("objectAlias: g{i}"));
                o.name = format!("t{i}");
                o
            })
            .collect();
        let start = Instant::now();
        fetch_all(&c, &objects).await.expect("fetches");
        assert_eq!(Instant::now() - start, Duration::from_millis(40));
        assert_eq!(vault.peak.load(Ordering::SeqCst), 64);
    }

    // Upstream A3.5: with more versions available than asked for, the Azure provider returned N+1.
    #[tokio::test]
    async fn version_history_returns_exactly_n() {
        let (files, versions) = fetch_object(
            &ctx(Arc::default()),
            &object("objectVersionHistory: 2\nobjectAlias: hist"),
        )
        .await
        .expect("fetches");
        assert_eq!(
            contents(&files),
            [
                ("hist/0".into(), "s@v4".into()),
                ("hist/1".into(), "s@v2".into())
            ],
            "newest first, disabled v3 skipped"
        );
        assert_eq!(
            versions,
            [
                ObjectVersion {
                    id: "secret/s/0".into(),
                    version: ver(4)
                },
                ObjectVersion {
                    id: "secret/s/1".into(),
                    version: ver(2)
                }
            ]
        );
    }

    #[tokio::test]
    async fn version_history_starts_at_object_version() {
        let (files, _) = fetch_object(
            &ctx(Arc::default()),
            &object(&format!(
                "objectVersionHistory: 5\nobjectVersion: {}",
                ver(2)
            )),
        )
        .await
        .expect("fetches");
        assert_eq!(
            contents(&files),
            [
                ("s/0".into(), "s@v2".into()),
                ("s/1".into(), "s@v1".into()),
                ("s/2".into(), "s@v0".into())
            ]
        );
        let err = fetch_object(
            &ctx(Arc::default()),
            &object(&format!(
                "objectVersionHistory: 2\nobjectVersion: {}",
                ver(3)
            )),
        )
        .await
        .expect_err("disabled start");
        assert!(
            err.to_string().contains(&format!(
                "objectVersion {} is not among the enabled versions",
                ver(3)
            )),
            "{err}"
        );
    }

    #[tokio::test]
    async fn identical_in_flight_fetches_are_coalesced() {
        let vault = Arc::new(FakeVault {
            delay: Some(Duration::from_millis(50)),
            ..FakeVault::default()
        });
        let c = ctx(vault.clone());
        let a = object("objectAlias: a");
        let b = object("objectAlias: b");
        let (ra, rb) = tokio::join!(fetch_object(&c, &a), fetch_object(&c, &b));
        assert_eq!(contents(&ra.expect("a").0), [("a".into(), "s@v4".into())]);
        assert_eq!(contents(&rb.expect("b").0), [("b".into(), "s@v4".into())]);
        assert_eq!(
            vault.gets.load(Ordering::SeqCst),
            1,
            "one vault request served both"
        );
        // Once finished, a later fetch goes to the vault again (no stale cache).
        fetch_object(&c, &a).await.expect("again");
        assert_eq!(vault.gets.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn coalescing_never_crosses_identities() {
        let vault = Arc::new(FakeVault {
            delay: Some(Duration::from_millis(50)),
            ..FakeVault::default()
        });
        let c1 = ctx(vault.clone());
        let mut c2 = c1.clone();
        c2.identity.client_id = "other".into();
        let o = object("");
        let (r1, r2) = tokio::join!(fetch_object(&c1, &o), fetch_object(&c2, &o));
        r1.expect("one");
        r2.expect("two");
        assert_eq!(vault.gets.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn volumes_share_one_fetch_per_window_and_never_across_identities() {
        let vault = Arc::new(FakeVault::default());
        let mut c = ctx(vault.clone());
        c.share_window = Duration::from_secs(120);
        let o = object("");
        fetch_object(&c, &o).await.expect("first");
        fetch_object(&c, &o).await.expect("second, shared");
        assert_eq!(
            vault.gets.load(Ordering::SeqCst),
            1,
            "one vault request per window"
        );
        let mut other = c.clone();
        other.identity.client_id = "other".into();
        fetch_object(&other, &o).await.expect("other identity");
        assert_eq!(
            vault.gets.load(Ordering::SeqCst),
            2,
            "another identity fetches for itself"
        );
        tokio::time::advance(Duration::from_secs(121)).await;
        fetch_object(&c, &o).await.expect("after the window");
        assert_eq!(vault.gets.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_throttled_vault_is_paused_for_everyone_and_other_vaults_are_not() {
        let vault = Arc::new(FakeVault::default());
        vault.throttle_first.store(1, Ordering::SeqCst);
        let c = ctx(vault.clone());
        let start = Instant::now();
        // The first request is throttled with Retry-After 2 s; it retries after the pause.
        fetch_object(&c, &object("objectAlias: a"))
            .await
            .expect("succeeds after the pause");
        assert!(Instant::now() - start >= Duration::from_secs(2));
        assert_eq!(vault.gets.load(Ordering::SeqCst), 2);

        // While a vault's gate is closed, new requests to it wait instead of hammering it...
        c.state.gates.close(&c.vault_url, Duration::from_secs(3));
        let before = Instant::now();
        fetch_object(
            &c,
            &object(&format!("objectVersion: {}\nobjectAlias: b", ver(10))),
        )
        .await
        .expect("waits for the gate");
        assert!(Instant::now() - before >= Duration::from_secs(3));
        // ...and a request to another vault does not wait.
        c.state.gates.close(&c.vault_url, Duration::from_secs(3));
        let mut elsewhere = c.clone();
        elsewhere.vault_url = "https://other.vault.azure.net/".into();
        let before = Instant::now();
        fetch_object(
            &elsewhere,
            &object(&format!("objectVersion: {}\nobjectAlias: c", ver(11))),
        )
        .await
        .expect("other vault");
        assert!(Instant::now() - before < Duration::from_secs(1));
        // A gate that outlasts the deadline fails at once with the throttling error.
        let mut short = c.clone();
        short.deadline = Instant::now() + Duration::from_secs(1);
        let err = fetch_object(
            &short,
            &object(&format!("objectVersion: {}\nobjectAlias: d", ver(12))),
        )
        .await
        .expect_err("gate past deadline");
        assert!(matches!(err, AzureError::Throttled { .. }), "{err:?}");
    }
}

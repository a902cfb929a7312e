//! The Azure provider: validates a mount request, picks the identity, fetches every object
//! concurrently from Key Vault, and returns the files. All or nothing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::stream::{self, StreamExt, TryStreamExt};
use keyvol_core::{
    MountRequest, MountResponse, ObjectVersion, Provider, ProviderError, ProviderFile, Sensitive,
};

use crate::error::AzureError;
use crate::format::secret_bytes;
use crate::http::{HttpConfig, build_client};
use crate::identity::{CredentialCache, IdentityKey, client_options};
use crate::keyvault::{KeyVault, SdkKeyVault};
use crate::objects::{KeyVaultObject, ObjectType};
use crate::params::AzureParams;

/// How many objects of one mount are fetched at once. Key Vault allows 4,000 reads per 10 s per
/// vault; 8 in flight keeps a 50-object mount fast without bursting a shared vault.
pub const DEFAULT_FETCH_CONCURRENCY: usize = 8;
/// Deadline of one mount: below kubelet's two-minute NodePublishVolume deadline, so keyvol answers
/// with its own clear error instead of kubelet's DeadlineExceeded.
pub const DEFAULT_MOUNT_TIMEOUT: Duration = Duration::from_secs(100);

/// Provider settings, from the command line.
#[derive(Debug, Clone)]
pub struct AzureProviderConfig {
    /// Cloud used when a class names none (`--cloud-name`).
    pub default_cloud: String,
    /// HTTP trust, timeouts and redirects.
    pub http: HttpConfig,
    /// Objects fetched in parallel per mount.
    pub fetch_concurrency: usize,
    /// Deadline of one mount, retries included.
    pub mount_timeout: Duration,
}

impl Default for AzureProviderConfig {
    fn default() -> Self {
        Self {
            default_cloud: "AzurePublicCloud".into(),
            http: HttpConfig::default(),
            fetch_concurrency: DEFAULT_FETCH_CONCURRENCY,
            mount_timeout: DEFAULT_MOUNT_TIMEOUT,
        }
    }
}

/// The provider. Create one per process: it owns the token and client caches.
pub struct AzureProvider {
    config: AzureProviderConfig,
    http: reqwest::Client,
    credentials: CredentialCache,
    clients: Mutex<HashMap<(String, IdentityKey), Arc<dyn KeyVault>>>,
}

impl AzureProvider {
    /// Builds the provider and its HTTP client.
    pub fn new(config: AzureProviderConfig) -> Result<Self, AzureError> {
        let http = build_client(&config.http)?;
        Ok(Self {
            config,
            http,
            credentials: CredentialCache::default(),
            clients: Mutex::new(HashMap::new()),
        })
    }

    fn vault_client(
        &self,
        vault_url: &str,
        key: &IdentityKey,
        credential: Arc<dyn azure_core::credentials::TokenCredential>,
        params: &AzureParams,
    ) -> Result<Arc<dyn KeyVault>, AzureError> {
        let mut clients = self
            .clients
            .lock()
            .map_err(|_| AzureError::Internal("client cache poisoned".into()))?;
        let cache_key = (vault_url.to_owned(), key.clone());
        if let Some(c) = clients.get(&cache_key) {
            return Ok(c.clone());
        }
        let client: Arc<dyn KeyVault> = Arc::new(SdkKeyVault::new(
            vault_url,
            key.label(),
            credential,
            client_options(&params.cloud, &self.http),
        )?);
        clients.insert(cache_key, client.clone());
        Ok(client)
    }

    /// Fetches everything `request` names, within the mount deadline.
    pub async fn fetch(&self, request: &MountRequest) -> Result<MountResponse, AzureError> {
        let deadline = self.config.mount_timeout;
        tokio::time::timeout(deadline, self.fetch_inner(request))
            .await
            .map_err(|_| AzureError::Deadline(deadline))?
    }

    async fn fetch_inner(&self, request: &MountRequest) -> Result<MountResponse, AzureError> {
        let params = AzureParams::parse(&request.attributes, &self.config.default_cloud)?;
        for warning in &params.warnings {
            tracing::warn!(pod = %params.pod_name, namespace = %params.pod_namespace, "{warning}");
        }
        for (i, o) in params.objects.iter().enumerate() {
            if o.object_type != ObjectType::Secret {
                return Err(AzureError::Unsupported(format!(
                    "objects[{i}].objectType: {} objects are not implemented yet",
                    o.object_type.as_str()
                )));
            }
            if o.version_history > 1 {
                return Err(AzureError::Unsupported(format!(
                    "objects[{i}].objectVersionHistory: is not implemented yet"
                )));
            }
        }
        if params.objects.is_empty() {
            return Ok(MountResponse::default());
        }
        let (key, credential) = self.credentials.credential(
            &params.identity,
            &params.tenant_id,
            &params.cloud,
            &request.secrets,
            &self.http,
        )?;
        let vault_url = params.cloud.vault_url(&params.vault_name);
        let vault = self.vault_client(&vault_url, &key, credential, &params)?;
        let default_mode = request.default_mode;
        let results: Vec<(ProviderFile, ObjectVersion)> = stream::iter(params.objects.clone())
            .map(move |object| {
                let vault = vault.clone();
                async move { fetch_object(vault, &object, default_mode).await }
            })
            .buffered(self.config.fetch_concurrency.max(1))
            .try_collect()
            .await?;
        let mut response = MountResponse::default();
        for (file, version) in results {
            response.files.push(file);
            response.object_versions.push(version);
        }
        Ok(response)
    }
}

async fn fetch_object(
    vault: Arc<dyn KeyVault>,
    object: &KeyVaultObject,
    default_mode: u32,
) -> Result<(ProviderFile, ObjectVersion), AzureError> {
    let bundle = vault.get_secret(&object.name, &object.version).await?;
    let bytes = secret_bytes(object, &bundle)?;
    let file = ProviderFile {
        path: object.file.clone(),
        mode: object.file_permission.unwrap_or(default_mode),
        contents: Sensitive::new(bytes),
    };
    let version = ObjectVersion {
        id: format!("{}/{}", object.object_type.as_str(), object.name),
        version: bundle.version().to_owned(),
    };
    Ok((file, version))
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

//! Identities: turning an identity mode plus the mount's secrets into a token credential, and
//! keeping one credential (and so one token cache) per identity for the whole process.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
use azure_core::credentials::{Secret, TokenCredential};
use azure_core::http::{ClientOptions, Transport};
use azure_identity::{ClientSecretCredential, ClientSecretCredentialOptions};
use keyvol_core::Sensitive;
use sha2::{Digest, Sha256};

use crate::cloud::Cloud;
use crate::error::AzureError;
use crate::params::IdentityMode;

/// Process-wide identity key: never holds a secret, only its digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdentityKey {
    /// Mode name.
    pub mode: &'static str,
    /// Tenant.
    pub tenant: String,
    /// Client id (or empty for system-assigned identities).
    pub client_id: String,
    /// Authority host.
    pub authority: String,
    /// SHA-256 of the secret material, so a rotated client secret gets a new credential.
    pub secret_digest: [u8; 32],
}

impl IdentityKey {
    /// Log-safe label: mode and client id.
    pub fn label(&self) -> String {
        if self.client_id.is_empty() {
            self.mode.to_owned()
        } else {
            format!("{} {}", self.mode, self.client_id)
        }
    }
}

/// Credentials shared by all mounts of the process.
#[derive(Default)]
pub struct CredentialCache {
    map: Mutex<HashMap<IdentityKey, Arc<dyn TokenCredential>>>,
}

/// Looks up `name` in the node-publish secrets, case-insensitively (upstream's rule).
fn secret_value<'a>(
    secrets: &'a BTreeMap<String, Sensitive<String>>,
    name: &str,
) -> Option<&'a Sensitive<String>> {
    secrets
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

impl CredentialCache {
    /// The credential for this mount's identity, created on first use.
    pub fn credential(
        &self,
        mode: &IdentityMode,
        tenant: &str,
        cloud: &Cloud,
        secrets: &BTreeMap<String, Sensitive<String>>,
        http: &reqwest::Client,
    ) -> Result<(IdentityKey, Arc<dyn TokenCredential>), AzureError> {
        match mode {
            IdentityMode::ServicePrincipal => {
                if secrets.is_empty() {
                    return Err(AzureError::MissingCredential(
                        "nodePublishSecretRef secret is not set (it must hold clientid and clientsecret)".into(),
                    ));
                }
                let client_id = secret_value(secrets, "clientid")
                    .ok_or_else(|| {
                        AzureError::MissingCredential("could not find clientid in secrets".into())
                    })?
                    .expose()
                    .trim()
                    .to_owned();
                let client_secret = secret_value(secrets, "clientsecret").ok_or_else(|| {
                    AzureError::MissingCredential("could not find clientsecret in secrets".into())
                })?;
                let secret_text = client_secret.expose().trim().to_owned();
                if client_id.is_empty() || secret_text.is_empty() {
                    return Err(AzureError::MissingCredential(
                        "clientid and clientsecret must not be empty".into(),
                    ));
                }
                let key = IdentityKey {
                    mode: "ServicePrincipal",
                    tenant: tenant.to_owned(),
                    client_id: client_id.clone(),
                    authority: cloud.authority_host.clone(),
                    secret_digest: Sha256::digest(secret_text.as_bytes()).into(),
                };
                self.get_or_create(key, || {
                    let options = ClientSecretCredentialOptions {
                        client_options: client_options(cloud, http),
                    };
                    ClientSecretCredential::new(
                        tenant,
                        client_id.clone(),
                        Secret::new(secret_text.clone()),
                        Some(options),
                    )
                    .map(|c| c as Arc<dyn TokenCredential>)
                    .map_err(|e| AzureError::InvalidParameter {
                        field: "tenantId".into(),
                        reason: format!("cannot build a credential: {e}"),
                    })
                })
            }
            IdentityMode::WorkloadIdentity { .. }
            | IdentityMode::VmManagedIdentity { .. }
            | IdentityMode::PodIdentity => Err(AzureError::Unsupported(format!(
                "identity mode {} is not implemented yet; use a service principal (nodePublishSecretRef)",
                mode.name()
            ))),
        }
    }

    fn get_or_create(
        &self,
        key: IdentityKey,
        make: impl FnOnce() -> Result<Arc<dyn TokenCredential>, AzureError>,
    ) -> Result<(IdentityKey, Arc<dyn TokenCredential>), AzureError> {
        let mut map = self
            .map
            .lock()
            .map_err(|_| AzureError::Internal("credential cache poisoned".into()))?;
        if let Some(c) = map.get(&key) {
            return Ok((key, c.clone()));
        }
        let cred = make()?;
        map.insert(key.clone(), cred.clone());
        Ok((key, cred))
    }
}

/// SDK client options: our HTTP client as transport and the cloud's authority host.
pub fn client_options(cloud: &Cloud, http: &reqwest::Client) -> ClientOptions {
    let mut custom = CustomConfiguration::default();
    custom.authority_host = cloud.authority_host.trim_end_matches('/').to_owned();
    ClientOptions {
        transport: Some(Transport::new(Arc::new(http.clone()))),
        cloud: Some(Arc::new(CloudConfiguration::Custom(custom))),
        ..ClientOptions::default()
    }
}

//! Identities: turning an identity mode plus the mount's secrets and tokens into a token
//! credential, and keeping one credential (so one token cache) per identity for the whole
//! process — bounded, and dropped once the identity has not been used for a while
//! ([`CREDENTIAL_IDLE`], [`MAX_CREDENTIALS`]). Service principals and workload identity use the
//! official SDK's credentials, with the SDK's retries off (keyvol's own honour the mount's
//! deadline); the node-local endpoints (IMDS and AAD Pod Identity's NMI) are spoken directly so
//! their addresses are configurable and their retries bounded.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
use azure_core::credentials::{AccessToken, Secret, TokenCredential, TokenRequestOptions};
use azure_core::error::ErrorKind;
use azure_core::http::{ClientMethodOptions, ClientOptions, RetryOptions, Transport};
use azure_core::time::OffsetDateTime;
use azure_identity::{
    ClientAssertion, ClientAssertionCredential, ClientAssertionCredentialOptions,
    ClientSecretCredential, ClientSecretCredentialOptions,
};
use base64::Engine;
use keyvol_core::{MountRequest, Sensitive};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::cache::IdleCache;
use crate::cloud::Cloud;
use crate::error::AzureError;
use crate::params::{IdentityMode, SA_TOKENS};

/// AAD Pod Identity's NMI port (upstream's `PodIdentityNMIPort`).
pub const DEFAULT_NMI_PORT: u16 = 2579;
/// Azure's instance metadata service.
pub const DEFAULT_IMDS_ENDPOINT: &str = "http://169.254.169.254";
/// Audience of the service-account token exchanged in workload identity.
pub const WORKLOAD_IDENTITY_AUDIENCE: &str = "api://AzureADTokenExchange";
/// A credential (with its token cache) not used by any mount for this long is dropped; the
/// next mount of that identity asks for a new token. Rotation and republish use a mounted
/// volume's identity every few minutes, so only identities no volume uses any more go.
pub const CREDENTIAL_IDLE: Duration = Duration::from_secs(600);
/// Most identities whose credentials are kept. A node runs at most a few hundred pods; past
/// this, the least recently used credential is dropped (its mounts keep working, they only
/// stop sharing its token).
pub const MAX_CREDENTIALS: usize = 1024;
/// Largest `csi.storage.k8s.io/serviceAccount.tokens` JSON accepted. Kubelet's is a few KiB
/// per audience; the value may also come from a class parameter, so it is bounded before
/// parsing.
const MAX_SERVICE_ACCOUNT_TOKENS_BYTES: usize = 256 * 1024;
/// Tokens are renewed this long before they expire.
const EXPIRY_MARGIN: Duration = Duration::from_secs(300);
/// Tries against IMDS / NMI, and the waits between them. NMI may take tens of seconds to
/// assign an identity to a new pod (the FlexVolume waited 5 × 7 s); IMDS asks for backoff on
/// 404/410/429/5xx.
const LOCAL_ENDPOINT_WAITS: [Duration; 5] = [
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
    Duration::from_secs(8),
];

/// Node-local identity endpoints.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// NMI port on localhost.
    pub nmi_port: u16,
    /// IMDS base URL.
    pub imds: String,
}

/// Process-wide identity key: never holds a secret, only a digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdentityKey {
    /// Mode name.
    pub mode: &'static str,
    /// Tenant.
    pub tenant: String,
    /// Client id (or the pod for pod identity, empty for a system-assigned identity).
    pub client_id: String,
    /// Authority host.
    pub authority: String,
    /// SHA-256 of what else distinguishes the identity: the client secret (so a rotated secret
    /// gets a new credential) or the service account (issuer and subject) of a workload.
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

    /// URL of the endpoint this identity gets its tokens from, for messages.
    pub fn token_endpoint(&self) -> String {
        let authority = self.authority.trim_end_matches('/');
        match self.mode {
            "VMManagedIdentity" => format!("{authority}/metadata/identity/oauth2/token"),
            "PodIdentity" => format!("http://{authority}/host/token/"),
            _ => format!("{authority}/{}/oauth2/v2.0/token", self.tenant),
        }
    }
}

/// One identity's credential and, for workload identity, the slot it reads the newest
/// service-account token from (kept together, so they are dropped together).
#[derive(Clone)]
struct Cached {
    credential: Arc<dyn TokenCredential>,
    assertion: Option<Arc<AssertionSlot>>,
}

/// Credentials shared by all mounts of the process, bounded by [`MAX_CREDENTIALS`] and
/// [`CREDENTIAL_IDLE`].
pub struct CredentialCache {
    map: IdleCache<IdentityKey, Cached>,
}

impl Default for CredentialCache {
    fn default() -> Self {
        Self::new(CREDENTIAL_IDLE, MAX_CREDENTIALS)
    }
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
    /// A cache that drops credentials unused for `idle` and holds at most `capacity`.
    pub fn new(idle: Duration, capacity: usize) -> Self {
        Self {
            map: IdleCache::new(idle, capacity),
        }
    }

    /// Drops the credentials (and their tokens) no mount has used for the idle time; returns how
    /// many went.
    pub fn evict_idle(&self) -> usize {
        self.map.sweep_now()
    }

    /// Number of identities whose credentials are held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when no credential is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The credential for this mount's identity, created on first use.
    #[allow(clippy::too_many_arguments)]
    pub fn credential(
        &self,
        mode: &IdentityMode,
        tenant: &str,
        cloud: &Cloud,
        request: &MountRequest,
        http: &reqwest::Client,
        endpoints: &Endpoints,
        pod: (&str, &str),
    ) -> Result<(IdentityKey, Arc<dyn TokenCredential>), AzureError> {
        let authority = cloud.authority_host.clone();
        match mode {
            IdentityMode::ServicePrincipal => {
                let secrets = &request.secrets;
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
                let secret_text = secret_value(secrets, "clientsecret")
                    .ok_or_else(|| {
                        AzureError::MissingCredential(
                            "could not find clientsecret in secrets".into(),
                        )
                    })?
                    .expose()
                    .trim()
                    .to_owned();
                if client_id.is_empty() || secret_text.is_empty() {
                    return Err(AzureError::MissingCredential(
                        "clientid and clientsecret must not be empty".into(),
                    ));
                }
                let key = IdentityKey {
                    mode: "ServicePrincipal",
                    tenant: tenant.to_owned(),
                    client_id: client_id.clone(),
                    authority,
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
                    .map(|c| plain(c as Arc<dyn TokenCredential>))
                    .map_err(|e| AzureError::InvalidParameter {
                        field: "tenantId".into(),
                        reason: format!("cannot build a credential: {e}"),
                    })
                })
            }
            IdentityMode::WorkloadIdentity { client_id } => {
                let token = service_account_token(request)?;
                let (iss, sub) = jwt_issuer_subject(token.expose()).unwrap_or_default();
                let key = IdentityKey {
                    mode: "WorkloadIdentity",
                    tenant: tenant.to_owned(),
                    client_id: client_id.clone(),
                    authority,
                    secret_digest: Sha256::digest(format!("{iss}\n{sub}").as_bytes()).into(),
                };
                // Kubelet hands a fresh token on every publish; the shared credential always
                // presents the newest one it has seen, from the slot it was built with.
                let cached = self.map.get_or_try_insert_with(&key, || {
                    let slot = Arc::new(AssertionSlot::default());
                    let options = ClientAssertionCredentialOptions {
                        client_options: client_options(cloud, http),
                    };
                    ClientAssertionCredential::new(
                        tenant.to_owned(),
                        client_id.clone(),
                        SlotAssertion(slot.clone()),
                        Some(options),
                    )
                    .map(|c| Cached {
                        credential: c as Arc<dyn TokenCredential>,
                        assertion: Some(slot),
                    })
                    .map_err(|e| AzureError::InvalidParameter {
                        field: "clientID".into(),
                        reason: format!("cannot build a credential: {e}"),
                    })
                })?;
                if let Some(slot) = &cached.assertion {
                    slot.set(token);
                }
                Ok((key, cached.credential))
            }
            IdentityMode::VmManagedIdentity {
                user_assigned_client_id,
            } => {
                let key = IdentityKey {
                    mode: "VMManagedIdentity",
                    tenant: tenant.to_owned(),
                    client_id: user_assigned_client_id.clone().unwrap_or_default(),
                    authority: endpoints.imds.clone(),
                    secret_digest: [0; 32],
                };
                self.get_or_create(key, || {
                    Ok(plain(Arc::new(ImdsCredential {
                        http: http.clone(),
                        endpoint: endpoints.imds.trim_end_matches('/').to_owned(),
                        client_id: user_assigned_client_id.clone(),
                        cache: TokenCache::default(),
                    })))
                })
            }
            IdentityMode::PodIdentity => {
                let (pod_name, pod_namespace) = pod;
                let key = IdentityKey {
                    mode: "PodIdentity",
                    tenant: tenant.to_owned(),
                    client_id: format!("{pod_namespace}/{pod_name}"),
                    authority: format!("localhost:{}", endpoints.nmi_port),
                    secret_digest: [0; 32],
                };
                self.get_or_create(key, || {
                    Ok(plain(Arc::new(NmiCredential {
                        http: http.clone(),
                        url: format!("http://localhost:{}/host/token/", endpoints.nmi_port),
                        pod_name: pod_name.to_owned(),
                        pod_namespace: pod_namespace.to_owned(),
                        cache: TokenCache::default(),
                    })))
                })
            }
        }
    }

    fn get_or_create(
        &self,
        key: IdentityKey,
        make: impl FnOnce() -> Result<Cached, AzureError>,
    ) -> Result<(IdentityKey, Arc<dyn TokenCredential>), AzureError> {
        let cached = self.map.get_or_try_insert_with(&key, make)?;
        Ok((key, cached.credential))
    }
}

/// A credential that needs no assertion slot.
fn plain(credential: Arc<dyn TokenCredential>) -> Cached {
    Cached {
        credential,
        assertion: None,
    }
}

/// The service-account token for [`WORKLOAD_IDENTITY_AUDIENCE`]: from the request's secrets
/// (KEP-5538, kubelet ≥ 1.35 with `serviceAccountTokenInSecrets`) or the volume context.
fn service_account_token(request: &MountRequest) -> Result<Sensitive<String>, AzureError> {
    let raw = secret_value(&request.secrets, SA_TOKENS)
        .map(|s| s.expose().clone())
        .or_else(|| request.attributes.get(SA_TOKENS).cloned())
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| AzureError::MissingCredential("failed to parse workload identity tokens: service account tokens not found (set tokenRequests with audience api://AzureADTokenExchange on the CSIDriver)".into()))?;
    if raw.len() > MAX_SERVICE_ACCOUNT_TOKENS_BYTES {
        return Err(AzureError::MissingCredential(format!(
            "failed to parse workload identity tokens: larger than {} KiB",
            MAX_SERVICE_ACCOUNT_TOKENS_BYTES / 1024
        )));
    }
    #[derive(Deserialize)]
    struct Entry {
        token: String,
    }
    let map: HashMap<String, Entry> = serde_json::from_str(&raw).map_err(|_| {
        AzureError::MissingCredential("failed to unmarshal service account tokens".into())
    })?;
    map.into_iter()
        .find(|(aud, _)| aud == WORKLOAD_IDENTITY_AUDIENCE)
        .map(|(_, e)| Sensitive::new(e.token))
        .ok_or_else(|| {
            AzureError::MissingCredential(format!(
                "token for audience {WORKLOAD_IDENTITY_AUDIENCE} not found"
            ))
        })
}

/// `iss` and `sub` of a JWT, read without verification (only used to key the cache).
fn jwt_issuer_subject(token: &str) -> Option<(String, String)> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    #[derive(Deserialize)]
    struct Claims {
        iss: Option<String>,
        sub: Option<String>,
    }
    let c: Claims = serde_json::from_slice(&bytes).ok()?;
    Some((c.iss.unwrap_or_default(), c.sub.unwrap_or_default()))
}

/// Holds the newest service-account token for one workload identity.
#[derive(Default)]
pub struct AssertionSlot {
    token: RwLock<Option<Sensitive<String>>>,
}

impl AssertionSlot {
    fn set(&self, token: Sensitive<String>) {
        if let Ok(mut t) = self.token.write() {
            *t = Some(token);
        }
    }
}

struct SlotAssertion(Arc<AssertionSlot>);

impl fmt::Debug for SlotAssertion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SlotAssertion(<redacted>)")
    }
}

#[async_trait]
impl ClientAssertion for SlotAssertion {
    async fn secret(
        &self,
        _options: Option<ClientMethodOptions<'_>>,
    ) -> azure_core::Result<String> {
        self.0
            .token
            .read()
            .ok()
            .and_then(|t| t.as_ref().map(|s| s.expose().clone()))
            .ok_or_else(|| {
                azure_core::Error::with_message(
                    ErrorKind::Credential,
                    "no service account token available",
                )
            })
    }
}

/// Tokens by scope until shortly before they expire.
#[derive(Default)]
struct TokenCache {
    tokens: Mutex<HashMap<String, AccessToken>>,
    /// Held while a token is fetched, so the concurrent requests of a mount wait for that one
    /// token request instead of each sending their own.
    fetching: tokio::sync::Mutex<()>,
}

impl TokenCache {
    fn get(&self, scope: &str) -> Option<AccessToken> {
        let tokens = self.tokens.lock().ok()?;
        let t = tokens.get(scope)?;
        let margin = azure_core::time::Duration::seconds(EXPIRY_MARGIN.as_secs() as i64);
        (t.expires_on - margin > OffsetDateTime::now_utc()).then(|| t.clone())
    }

    fn put(&self, scope: &str, token: AccessToken) {
        if let Ok(mut tokens) = self.tokens.lock() {
            tokens.insert(scope.to_owned(), token);
        }
    }
}

fn credential_error(message: String) -> azure_core::Error {
    azure_core::Error::with_message(ErrorKind::Credential, message)
}

/// The resource for a scope: `https://vault.azure.net/.default` → `https://vault.azure.net`.
fn resource_of(scopes: &[&str]) -> azure_core::Result<String> {
    let scope = scopes
        .first()
        .ok_or_else(|| credential_error("no scope requested".into()))?;
    Ok(scope.trim_end_matches("/.default").to_owned())
}

/// Numbers that IMDS and NMI send as strings (and sometimes as numbers).
#[derive(Deserialize)]
#[serde(untagged)]
enum Num {
    S(String),
    N(i64),
}

impl Num {
    fn value(&self) -> Option<i64> {
        match self {
            Num::S(s) => s.trim().parse().ok(),
            Num::N(n) => Some(*n),
        }
    }
}

#[derive(Deserialize)]
struct MsiToken {
    access_token: String,
    expires_on: Option<Num>,
    expires_in: Option<Num>,
}

impl MsiToken {
    fn into_access_token(self) -> AccessToken {
        let now = OffsetDateTime::now_utc();
        let expires = self
            .expires_on
            .and_then(|n| n.value())
            .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
            .or_else(|| {
                self.expires_in
                    .and_then(|n| n.value())
                    .map(|s| now + azure_core::time::Duration::seconds(s))
            })
            .unwrap_or(now);
        AccessToken::new(self.access_token, expires)
    }
}

#[derive(Deserialize)]
struct OAuthError {
    error: Option<String>,
    error_description: Option<String>,
}

/// A VM or VMSS managed identity through IMDS.
struct ImdsCredential {
    http: reqwest::Client,
    endpoint: String,
    client_id: Option<String>,
    cache: TokenCache,
}

impl fmt::Debug for ImdsCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImdsCredential")
            .field("endpoint", &self.endpoint)
            .field("client_id", &self.client_id)
            .finish()
    }
}

#[async_trait]
impl TokenCredential for ImdsCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let resource = resource_of(scopes)?;
        if let Some(t) = self.cache.get(&resource) {
            return Ok(t);
        }
        let _fetching = self.cache.fetching.lock().await;
        if let Some(t) = self.cache.get(&resource) {
            return Ok(t);
        }
        let mut query = vec![
            ("api-version", "2018-02-01".to_owned()),
            ("resource", resource.clone()),
        ];
        if let Some(id) = &self.client_id {
            query.push(("client_id", id.clone()));
        }
        let url = format!("{}/metadata/identity/oauth2/token", self.endpoint);
        let mut last = String::new();
        for (attempt, wait) in std::iter::once(Duration::ZERO)
            .chain(LOCAL_ENDPOINT_WAITS)
            .enumerate()
        {
            tokio::time::sleep(wait).await;
            let resp = match self
                .http
                .get(&url)
                .query(&query)
                .header("Metadata", "true")
                .send()
                .await
            {
                Ok(r) => r,
                Err(e) => {
                    last = format!("IMDS at {} is unreachable: {e}", self.endpoint);
                    continue;
                }
            };
            let status = resp.status().as_u16();
            if status == 200 {
                let body: MsiToken = resp.json().await.map_err(|_| {
                    credential_error("IMDS answered with a malformed token response".into())
                })?;
                let token = body.into_access_token();
                self.cache.put(&resource, token.clone());
                return Ok(token);
            }
            let err: Option<OAuthError> = resp.json().await.ok();
            let detail = err
                .map(|e| {
                    format!(
                        "{}: {}",
                        e.error.unwrap_or_default(),
                        e.error_description.unwrap_or_default()
                    )
                })
                .unwrap_or_default();
            last = format!("IMDS answered {status} {detail}");
            if status == 400 {
                last.push_str(if self.client_id.is_some() {
                    " (the requested identity isn't assigned to this node)"
                } else {
                    " (no system-assigned identity, or several user-assigned ones: set userAssignedIdentityID)"
                });
            }
            // IMDS documents 404, 410, 429 and 5xx as worth retrying; other answers are final.
            if !(status == 404 || status == 410 || status == 429 || status >= 500) {
                break;
            }
            tracing::debug!(attempt, status, "IMDS not ready, retrying");
        }
        Err(credential_error(last))
    }
}

/// AAD Pod Identity: the node's NMI hands out the pod's identity token.
struct NmiCredential {
    http: reqwest::Client,
    url: String,
    pod_name: String,
    pod_namespace: String,
    cache: TokenCache,
}

impl fmt::Debug for NmiCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NmiCredential")
            .field("url", &self.url)
            .field(
                "pod",
                &format_args!("{}/{}", self.pod_namespace, self.pod_name),
            )
            .finish()
    }
}

#[async_trait]
impl TokenCredential for NmiCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let resource = resource_of(scopes)?;
        if let Some(t) = self.cache.get(&resource) {
            return Ok(t);
        }
        let _fetching = self.cache.fetching.lock().await;
        if let Some(t) = self.cache.get(&resource) {
            return Ok(t);
        }
        #[derive(Deserialize)]
        struct NmiResponse {
            token: MsiToken,
            clientid: Option<String>,
        }
        let mut last = String::new();
        for (attempt, wait) in std::iter::once(Duration::ZERO)
            .chain(LOCAL_ENDPOINT_WAITS)
            .enumerate()
        {
            tokio::time::sleep(wait).await;
            let resp = match self
                .http
                .get(&self.url)
                .query(&[("resource", resource.as_str())])
                .header("podname", &self.pod_name)
                .header("podns", &self.pod_namespace)
                .send()
                .await
            {
                Ok(r) => r,
                Err(e) => {
                    last = format!("NMI at {} is unreachable: {e}", self.url);
                    continue;
                }
            };
            let status = resp.status().as_u16();
            if status == 200 {
                let body: NmiResponse = resp.json().await.map_err(|_| {
                    credential_error("NMI answered with a malformed token response".into())
                })?;
                if body.token.access_token.is_empty()
                    || body.clientid.as_deref().unwrap_or("").is_empty()
                {
                    return Err(credential_error(
                        "nmi did not return expected values in response: token and clientid".into(),
                    ));
                }
                let token = body.token.into_access_token();
                self.cache.put(&resource, token.clone());
                return Ok(token);
            }
            // NMI answers in plain text; keep a short, token-free excerpt.
            let text = resp.text().await.unwrap_or_default();
            let excerpt: String = text.trim().chars().take(200).collect();
            last =
                format!("nmi response failed with status code: {status}, response body: {excerpt}");
            // 404 means the identity is not assigned (yet): NMI assigns it asynchronously.
            if status == 400 {
                break;
            }
            tracing::debug!(
                attempt,
                status,
                "NMI has no identity for the pod yet, retrying"
            );
        }
        Err(credential_error(last))
    }
}

/// SDK client options: our HTTP client as transport, the cloud's authority host, and no SDK
/// retries. Retries are keyvol's own, deadline-aware (`provider`'s `retry`): the SDK's policy
/// would sleep out any `Retry-After` — an hour, if the token endpoint asks — past the mount's
/// deadline.
pub fn client_options(cloud: &Cloud, http: &reqwest::Client) -> ClientOptions {
    let mut custom = CustomConfiguration::default();
    custom.authority_host = cloud.authority_host.trim_end_matches('/').to_owned();
    ClientOptions {
        transport: Some(Transport::new(Arc::new(http.clone()))),
        cloud: Some(Arc::new(CloudConfiguration::Custom(custom))),
        retry: RetryOptions::none(),
        ..ClientOptions::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(attrs: &[(&str, &str)], secrets: &[(&str, &str)]) -> MountRequest {
        MountRequest {
            attributes: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            secrets: secrets
                .iter()
                .map(|(k, v)| (k.to_string(), Sensitive::new(v.to_string())))
                .collect(),
            default_mode: 0o644,
            target_path: String::new(),
            current_versions: Vec::new(),
        }
    }

    #[test]
    fn workload_identity_token_comes_from_secrets_first_then_attributes() {
        let json = r#"{"api://AzureADTokenExchange":{"token":"a.b.c","expirationTimestamp":"2030-01-01T00:00:00Z"}}"#;
        let other = r#"{"api://AzureADTokenExchange":{"token":"x.y.z","expirationTimestamp":"2030-01-01T00:00:00Z"}}"#;
        let t = service_account_token(&request(&[(SA_TOKENS, other)], &[(SA_TOKENS, json)]))
            .expect("found");
        assert_eq!(t.expose(), "a.b.c");
        let t = service_account_token(&request(&[(SA_TOKENS, other)], &[])).expect("found");
        assert_eq!(t.expose(), "x.y.z");
    }

    #[test]
    fn workload_identity_errors_are_upstreams_and_hold_no_token() {
        let err = service_account_token(&request(&[], &[])).expect_err("missing");
        assert!(
            err.to_string().contains("service account tokens not found"),
            "{err}"
        );
        let err = service_account_token(&request(
            &[(SA_TOKENS, r#"{"other":{"token":"t0ps3cret"}}"#)],
            &[],
        ))
        .expect_err("audience");
        assert_eq!(
            err.to_string(),
            "failed to get credentials: token for audience api://AzureADTokenExchange not found"
        );
        let err =
            service_account_token(&request(&[(SA_TOKENS, "t0ps3cret")], &[])).expect_err("garbage");
        assert!(!err.to_string().contains("t0ps3cret"));
    }

    fn sp_request(client_id: &str) -> MountRequest {
        request(&[], &[("clientid", client_id), ("clientsecret", "s3cret")])
    }

    #[tokio::test(start_paused = true)]
    async fn credentials_are_bounded_and_dropped_when_no_mount_uses_them() {
        let cache = CredentialCache::new(Duration::from_secs(600), 8);
        let http = crate::http::build_client(&crate::http::HttpConfig::default()).expect("http");
        let cloud = Cloud::by_name("").expect("public cloud");
        let endpoints = Endpoints {
            nmi_port: 1,
            imds: "http://127.0.0.1:1".into(),
        };
        let get = |client_id: &str| {
            cache
                .credential(
                    &IdentityMode::ServicePrincipal,
                    "t",
                    &cloud,
                    &sp_request(client_id),
                    &http,
                    &endpoints,
                    ("p", "ns"),
                )
                .expect("credential")
                .1
        };
        let first = get("c0");
        assert!(
            Arc::ptr_eq(&first, &get("c0")),
            "one credential per identity"
        );
        for i in 1..20 {
            get(&format!("c{i}"));
        }
        assert_eq!(cache.len(), 8, "never more than the capacity");
        tokio::time::advance(Duration::from_secs(300)).await;
        get("c19");
        tokio::time::advance(Duration::from_secs(301)).await;
        get("c19");
        assert_eq!(
            cache.len(),
            1,
            "identities unused for the idle time are gone"
        );
        tokio::time::advance(Duration::from_secs(601)).await;
        get("c-new");
        assert_eq!(cache.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_workload_identity_recreated_after_eviction_presents_the_newest_token() {
        let cache = CredentialCache::new(Duration::from_secs(600), 8);
        let http = crate::http::build_client(&crate::http::HttpConfig::default()).expect("http");
        let cloud = Cloud::by_name("").expect("public cloud");
        let endpoints = Endpoints {
            nmi_port: 1,
            imds: "http://127.0.0.1:1".into(),
        };
        let mode = IdentityMode::WorkloadIdentity {
            client_id: "wi".into(),
        };
        let with_token = |token: &str| {
            let json = format!(r#"{{"api://AzureADTokenExchange":{{"token":"{token}"}}}}"#);
            request(&[(SA_TOKENS, json.as_str())], &[])
        };
        cache
            .credential(
                &mode,
                "t",
                &cloud,
                &with_token("h.e30.one"),
                &http,
                &endpoints,
                ("p", "ns"),
            )
            .expect("credential");
        tokio::time::advance(Duration::from_secs(601)).await;
        cache
            .credential(
                &mode,
                "t",
                &cloud,
                &with_token("h.e30.two"),
                &http,
                &endpoints,
                ("p", "ns"),
            )
            .expect("credential");
        let key_slot = cache
            .map
            .get(&IdentityKey {
                mode: "WorkloadIdentity",
                tenant: "t".into(),
                client_id: "wi".into(),
                authority: cloud.authority_host.clone(),
                secret_digest: Sha256::digest("\n".as_bytes()).into(),
            })
            .and_then(|c| c.assertion)
            .expect("slot kept with the credential");
        let token = key_slot
            .token
            .read()
            .expect("lock")
            .as_ref()
            .map(|t| t.expose().clone());
        assert_eq!(token.as_deref(), Some("h.e30.two"));
    }

    #[test]
    fn token_endpoints_are_named_per_mode() {
        let key = |mode, authority: &str| IdentityKey {
            mode,
            tenant: "t".into(),
            client_id: String::new(),
            authority: authority.into(),
            secret_digest: [0; 32],
        };
        assert_eq!(
            key("ServicePrincipal", "https://login.microsoftonline.com/").token_endpoint(),
            "https://login.microsoftonline.com/t/oauth2/v2.0/token"
        );
        assert_eq!(
            key("VMManagedIdentity", "http://169.254.169.254").token_endpoint(),
            "http://169.254.169.254/metadata/identity/oauth2/token"
        );
        assert_eq!(
            key("PodIdentity", "localhost:2579").token_endpoint(),
            "http://localhost:2579/host/token/"
        );
    }

    #[test]
    fn oversized_service_account_tokens_are_refused_before_parsing() {
        let big = format!(
            r#"{{"x":"{}"}}"#,
            "a".repeat(MAX_SERVICE_ACCOUNT_TOKENS_BYTES)
        );
        let err = service_account_token(&request(&[(SA_TOKENS, big.as_str())], &[]))
            .expect_err("too large");
        assert!(err.to_string().contains("larger than 256 KiB"), "{err}");
    }

    #[test]
    fn jwt_issuer_and_subject_are_read() {
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(r#"{"iss":"https://oidc","sub":"system:serviceaccount:ns:sa"}"#);
        assert_eq!(
            jwt_issuer_subject(&format!("h.{payload}.s")),
            Some(("https://oidc".into(), "system:serviceaccount:ns:sa".into()))
        );
        assert_eq!(jwt_issuer_subject("nonsense"), None);
    }

    #[test]
    fn msi_numbers_may_be_strings() {
        let t: MsiToken = serde_json::from_str(
            r#"{"access_token":"t","expires_on":"4102444800","expires_in":"3599"}"#,
        )
        .expect("parses");
        assert_eq!(
            t.into_access_token().expires_on.unix_timestamp(),
            4102444800
        );
        let t: MsiToken =
            serde_json::from_str(r#"{"access_token":"t","expires_in":3599}"#).expect("parses");
        assert!(t.into_access_token().expires_on > OffsetDateTime::now_utc());
    }
}

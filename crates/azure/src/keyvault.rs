//! The Key Vault operations the provider needs, behind a small trait, and their implementation on
//! the official Azure SDK for Rust.
//!
//! Errors from the SDK are mapped here, once, into [`AzureError`]s built from the status and the
//! service's error code and message. Response bodies of successful calls (which hold secret
//! values) never reach an error message.

use async_trait::async_trait;
use azure_core::credentials::TokenCredential;
use azure_core::error::ErrorKind;
use azure_security_keyvault_secrets::{SecretClient, SecretClientOptions};
use keyvol_core::Sensitive;
use serde::Deserialize;
use std::sync::Arc;

use crate::error::AzureError;

/// Key Vault REST API version keyol speaks. Upstream's provider uses 7.4 through its pinned SDKs;
/// 7.4 has every field the provider reads.
pub const API_VERSION: &str = "7.4";

/// A secret as the vault returned it.
pub struct SecretBundle {
    /// The value.
    pub value: Sensitive<String>,
    /// `https://<vault>/secrets/<name>/<version>`.
    pub id: String,
    /// Content type, e.g. `application/x-pkcs12` for certificate-backed secrets.
    pub content_type: Option<String>,
    /// Set when the secret backs a certificate.
    pub kid: Option<String>,
}

impl SecretBundle {
    /// The version: the last segment of the id.
    pub fn version(&self) -> &str {
        self.id
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or("")
    }
}

/// The operations on one vault, for one identity.
#[async_trait]
pub trait KeyVault: Send + Sync {
    /// Gets a secret; an empty `version` means the newest.
    async fn get_secret(&self, name: &str, version: &str) -> Result<SecretBundle, AzureError>;
}

/// [`KeyVault`] on the official SDK.
pub struct SdkKeyVault {
    vault_url: String,
    identity: String,
    secrets: SecretClient,
}

impl SdkKeyVault {
    /// Clients for `vault_url` authenticating with `credential`.
    pub fn new(
        vault_url: &str,
        identity: String,
        credential: Arc<dyn TokenCredential>,
        client_options: azure_core::http::ClientOptions,
    ) -> Result<Self, AzureError> {
        let options = SecretClientOptions {
            api_version: API_VERSION.to_owned(),
            client_options,
            ..SecretClientOptions::default()
        };
        let secrets = SecretClient::new(vault_url, credential, Some(options)).map_err(|e| {
            AzureError::Internal(format!(
                "failed to create a Key Vault client for {vault_url}: {e}"
            ))
        })?;
        Ok(Self {
            vault_url: vault_url.to_owned(),
            identity,
            secrets,
        })
    }
}

#[async_trait]
impl KeyVault for SdkKeyVault {
    async fn get_secret(&self, name: &str, version: &str) -> Result<SecretBundle, AzureError> {
        let object = format!("secret/{name}");
        let options = azure_security_keyvault_secrets::models::SecretClientGetSecretOptions {
            secret_version: (!version.is_empty()).then(|| version.to_owned()),
            ..Default::default()
        };
        let response = self
            .secrets
            .get_secret(name, Some(options))
            .await
            .map_err(|e| map_error(e, &object, &self.vault_url, &self.identity))?;
        let secret = response.into_model().map_err(|_| AzureError::Format {
            object: object.clone(),
            reason: "the vault's answer is not a secret bundle".into(),
        })?;
        let value = secret.value.ok_or_else(|| AzureError::Format {
            object: object.clone(),
            reason: "the vault returned no value".into(),
        })?;
        let id = secret.id.ok_or_else(|| AzureError::Format {
            object,
            reason: "the vault returned no id".into(),
        })?;
        Ok(SecretBundle {
            value: Sensitive::new(value),
            id,
            content_type: secret.content_type,
            kid: secret.kid,
        })
    }
}

#[derive(Deserialize)]
struct ServiceError {
    error: ServiceErrorBody,
}

#[derive(Deserialize)]
struct ServiceErrorBody {
    code: Option<String>,
    message: Option<String>,
    innererror: Option<Box<ServiceErrorBody>>,
}

/// The azure_core errors in `err`'s source chain, outermost first. The SDK's pipeline wraps
/// failures (a retry policy around a credential around an HTTP response), so the meaningful
/// one is often a few levels down.
fn azure_chain(err: &azure_core::Error) -> Vec<&azure_core::Error> {
    let mut out = vec![err];
    let mut cur: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(err);
    while let Some(e) = cur {
        if let Some(a) = e.downcast_ref::<azure_core::Error>() {
            out.push(a);
        }
        cur = e.source();
    }
    out
}

/// Maps an SDK error to ours. Only error responses' bodies are read.
pub fn map_error(
    err: azure_core::Error,
    object: &str,
    vault_url: &str,
    identity: &str,
) -> AzureError {
    let chain = azure_chain(&err);
    if let Some(pos) = chain
        .iter()
        .position(|e| matches!(e.kind(), ErrorKind::Credential))
    {
        // The identity provider's own answer sits below the credential error, when there is one.
        let detail = chain[pos..]
            .iter()
            .find(|e| matches!(e.kind(), ErrorKind::HttpResponse { .. }))
            .map(|e| {
                let status = e.http_status().map(u16::from).unwrap_or(0);
                format!("HTTP {status}: {}", e.to_string().trim())
            })
            .unwrap_or_else(|| credential_detail(chain[pos]));
        return AzureError::Authentication {
            identity: identity.to_owned(),
            detail,
        };
    }
    let err = chain
        .iter()
        .find(|e| matches!(e.kind(), ErrorKind::HttpResponse { .. }))
        .copied()
        .unwrap_or(&err);
    match err.kind() {
        ErrorKind::HttpResponse {
            status,
            error_code,
            raw_response,
        } => {
            let status = u16::from(*status);
            let parsed = raw_response
                .as_ref()
                .and_then(|r| r.body().json::<ServiceError>().ok());
            let mut detail = match &parsed {
                Some(e) => format!(
                    "{}: {}",
                    e.error
                        .code
                        .as_deref()
                        .or(error_code.as_deref())
                        .unwrap_or("Error"),
                    e.error.message.as_deref().unwrap_or("").trim()
                ),
                None => format!("HTTP {status} {}", error_code.as_deref().unwrap_or(""))
                    .trim()
                    .to_owned(),
            };
            if let Some(inner) = parsed
                .as_ref()
                .and_then(|e| e.error.innererror.as_ref())
                .and_then(|i| i.code.clone())
            {
                detail.push_str(&format!(" (inner: {inner})"));
            }
            match status {
                401 => AzureError::Authentication {
                    identity: identity.to_owned(),
                    detail: format!("the vault refused the token: {detail}"),
                },
                403 => AzureError::Forbidden {
                    object: object.to_owned(),
                    detail,
                },
                404 => AzureError::NotFound {
                    object: object.to_owned(),
                    detail,
                },
                429 => AzureError::Throttled {
                    object: object.to_owned(),
                    detail,
                },
                500..=599 => AzureError::Unavailable {
                    endpoint: vault_url.to_owned(),
                    detail,
                },
                _ => AzureError::Internal(format!("failed to get {object}: {detail}")),
            }
        }
        ErrorKind::Connection | ErrorKind::Io => AzureError::Unavailable {
            endpoint: vault_url.to_owned(),
            detail: source_chain(err),
        },
        ErrorKind::DataConversion => AzureError::Format {
            object: object.to_owned(),
            reason: "the vault's answer could not be parsed".into(),
        },
        _ => AzureError::Internal(format!("failed to get {object}: {}", source_chain(err))),
    }
}

/// The identity provider's answer, without the SDK's troubleshooting boilerplate.
fn credential_detail(err: &azure_core::Error) -> String {
    let text = err.to_string();
    let text = text.split("\nTo troubleshoot").next().unwrap_or(&text);
    let text = text.split(" To troubleshoot").next().unwrap_or(text);
    text.trim().to_owned()
}

fn source_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        let s = e.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = e.source();
    }
    out
}

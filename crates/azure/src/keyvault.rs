//! The Key Vault operations the provider needs, behind a small trait, and their implementation on
//! the official Azure SDK for Rust.
//!
//! Errors from the SDK are mapped here, once, into [`AzureError`]s built from the status and the
//! service's error code and message. Response bodies of successful calls (which hold secret
//! values) never reach an error message.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use azure_core::credentials::TokenCredential;
use azure_core::error::ErrorKind;
use azure_core::http::RetryOptions;
use azure_security_keyvault_certificates::{CertificateClient, CertificateClientOptions};
use azure_security_keyvault_keys::{KeyClient, KeyClientOptions};
use azure_security_keyvault_secrets::{SecretClient, SecretClientOptions};
use futures::TryStreamExt;
use keyvol_core::{Sensitive, report};
use serde::Deserialize;

use crate::error::{AzureError, Service};
use crate::objects::ObjectType;

/// Key Vault REST API version keyvol speaks. Upstream's provider uses 7.4 through its pinned
/// SDKs; 7.4 has every field the provider reads.
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

/// The public half of a key, as JWK members (raw big-endian bytes).
#[derive(Debug, Clone, Default)]
pub struct KeyBundle {
    /// `https://<vault>/keys/<name>/<version>`.
    pub kid: String,
    /// `RSA`, `RSA-HSM`, `EC`, `EC-HSM`, `oct`, ...
    pub kty: String,
    /// Curve of EC keys: `P-256`, `P-384`, `P-521`, `P-256K`.
    pub crv: Option<String>,
    /// RSA modulus.
    pub n: Option<Vec<u8>>,
    /// RSA public exponent.
    pub e: Option<Vec<u8>>,
    /// EC x coordinate.
    pub x: Option<Vec<u8>>,
    /// EC y coordinate.
    pub y: Option<Vec<u8>>,
}

impl KeyBundle {
    /// The public members of a key as the SDK decoded the vault's answer; `object` (e.g.
    /// `key/k1`) names it in errors.
    pub fn from_sdk(
        object: &str,
        key: &azure_security_keyvault_keys::models::Key,
    ) -> Result<Self, AzureError> {
        let jwk = key.key.as_ref().ok_or_else(|| AzureError::Format {
            object: object.to_owned(),
            reason: "the vault returned no key".into(),
        })?;
        let kid = jwk.kid.clone().ok_or_else(|| AzureError::Format {
            object: object.to_owned(),
            reason: "the vault returned no kid".into(),
        })?;
        let kty: &str = jwk.kty.as_ref().map(<&str>::from).unwrap_or("");
        Ok(KeyBundle {
            kid,
            kty: kty.to_owned(),
            crv: jwk.crv.as_ref().map(|c| c.as_ref().to_owned()),
            n: jwk.n.clone(),
            e: jwk.e.clone(),
            x: jwk.x.clone(),
            y: jwk.y.clone(),
        })
    }
}

/// A certificate's public part.
#[derive(Debug, Clone, Default)]
pub struct CertificateBundle {
    /// `https://<vault>/certificates/<name>/<version>`.
    pub id: String,
    /// DER of the leaf certificate.
    pub cer: Vec<u8>,
}

/// One entry of a version listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionInfo {
    /// The version id.
    pub version: String,
    /// Whether the version is enabled; `None` when the listing carried no attributes.
    pub enabled: Option<bool>,
    /// Creation time, Unix seconds.
    pub created: Option<i64>,
}

/// The last path segment of an object id: its version.
pub fn version_of(id: &str) -> &str {
    id.trim_end_matches('/').rsplit('/').next().unwrap_or("")
}

/// The operations on one vault, for one identity.
#[async_trait]
pub trait KeyVault: Send + Sync {
    /// Gets a secret; an empty `version` means the newest.
    async fn get_secret(&self, name: &str, version: &str) -> Result<SecretBundle, AzureError>;
    /// Gets a key's public part; an empty `version` means the newest.
    async fn get_key(&self, name: &str, version: &str) -> Result<KeyBundle, AzureError>;
    /// Gets a certificate; an empty `version` means the newest.
    async fn get_certificate(
        &self,
        name: &str,
        version: &str,
    ) -> Result<CertificateBundle, AzureError>;
    /// Lists every version of an object (all pages).
    async fn list_versions(
        &self,
        kind: ObjectType,
        name: &str,
    ) -> Result<Vec<VersionInfo>, AzureError>;
}

/// [`KeyVault`] on the official SDK: one client per object kind, each learning the vault's
/// challenge once and caching its token for as long as the process lives.
pub struct SdkKeyVault {
    vault_url: String,
    caller: Caller,
    secrets: SecretClient,
    keys: KeyClient,
    certificates: CertificateClient,
}

impl SdkKeyVault {
    /// Clients for `vault_url` authenticating with `credential` as `caller`. Retries are
    /// keyvol's own (deadline-aware, see `provider`), so the SDK's are turned off here.
    pub fn new(
        vault_url: &str,
        caller: Caller,
        credential: Arc<dyn TokenCredential>,
        mut client_options: azure_core::http::ClientOptions,
    ) -> Result<Self, AzureError> {
        client_options.retry = RetryOptions::none();
        let err = |e: azure_core::Error| {
            AzureError::Internal(format!(
                "failed to create a Key Vault client for {vault_url}: {}",
                report::chain(&e)
            ))
        };
        let secrets = SecretClient::new(
            vault_url,
            credential.clone(),
            Some(SecretClientOptions {
                api_version: API_VERSION.to_owned(),
                client_options: client_options.clone(),
                ..Default::default()
            }),
        )
        .map_err(err)?;
        let keys = KeyClient::new(
            vault_url,
            credential.clone(),
            Some(KeyClientOptions {
                api_version: API_VERSION.to_owned(),
                client_options: client_options.clone(),
                ..Default::default()
            }),
        )
        .map_err(err)?;
        let certificates = CertificateClient::new(
            vault_url,
            credential,
            Some(CertificateClientOptions {
                api_version: API_VERSION.to_owned(),
                client_options,
                ..Default::default()
            }),
        )
        .map_err(err)?;
        Ok(Self {
            vault_url: vault_url.to_owned(),
            caller,
            secrets,
            keys,
            certificates,
        })
    }

    fn map(&self, e: azure_core::Error, object: &str) -> AzureError {
        map_error(e, object, &self.vault_url, &self.caller)
    }
}

fn version_opt(version: &str) -> Option<String> {
    (!version.is_empty()).then(|| version.to_owned())
}

fn unix(t: Option<azure_core::time::OffsetDateTime>) -> Option<i64> {
    t.map(|t| t.unix_timestamp())
}

#[async_trait]
impl KeyVault for SdkKeyVault {
    async fn get_secret(&self, name: &str, version: &str) -> Result<SecretBundle, AzureError> {
        let object = format!("secret/{name}");
        let options = azure_security_keyvault_secrets::models::SecretClientGetSecretOptions {
            secret_version: version_opt(version),
            ..Default::default()
        };
        let response = self
            .secrets
            .get_secret(name, Some(options))
            .await
            .map_err(|e| self.map(e, &object))?;
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

    async fn get_key(&self, name: &str, version: &str) -> Result<KeyBundle, AzureError> {
        let object = format!("key/{name}");
        let options = azure_security_keyvault_keys::models::KeyClientGetKeyOptions {
            key_version: version_opt(version),
            ..Default::default()
        };
        let response = self
            .keys
            .get_key(name, Some(options))
            .await
            .map_err(|e| self.map(e, &object))?;
        let key = response.into_model().map_err(|_| AzureError::Format {
            object: object.clone(),
            reason: "the vault's answer is not a key bundle".into(),
        })?;
        KeyBundle::from_sdk(&object, &key)
    }

    async fn get_certificate(
        &self,
        name: &str,
        version: &str,
    ) -> Result<CertificateBundle, AzureError> {
        let object = format!("cert/{name}");
        let options =
            azure_security_keyvault_certificates::models::CertificateClientGetCertificateOptions {
                certificate_version: version_opt(version),
                ..Default::default()
            };
        let response = self
            .certificates
            .get_certificate(name, Some(options))
            .await
            .map_err(|e| self.map(e, &object))?;
        let cert = response.into_model().map_err(|_| AzureError::Format {
            object: object.clone(),
            reason: "the vault's answer is not a certificate bundle".into(),
        })?;
        let id = cert.id.ok_or_else(|| AzureError::Format {
            object: object.clone(),
            reason: "the vault returned no id".into(),
        })?;
        let cer = cert.cer.ok_or_else(|| AzureError::Format {
            object,
            reason: "the vault returned no cer".into(),
        })?;
        Ok(CertificateBundle { id, cer })
    }

    async fn list_versions(
        &self,
        kind: ObjectType,
        name: &str,
    ) -> Result<Vec<VersionInfo>, AzureError> {
        let object = format!("{}/{name}", kind.as_str());
        match kind {
            ObjectType::Secret => {
                let pager = self.secrets.list_secret_properties_versions(name, None);
                self.versions(pager, &object).await
            }
            ObjectType::Key => {
                let pager = self.keys.list_key_properties_versions(name, None);
                self.versions(pager, &object).await
            }
            ObjectType::Cert => {
                let pager = self
                    .certificates
                    .list_certificate_properties_versions(name, None);
                self.versions(pager, &object).await
            }
        }
    }
}

impl SdkKeyVault {
    /// Every page of a version listing, as [`VersionInfo`]s; items without an id are skipped.
    async fn versions<S, T>(
        &self,
        pager: azure_core::Result<S>,
        object: &str,
    ) -> Result<Vec<VersionInfo>, AzureError>
    where
        S: futures::Stream<Item = azure_core::Result<T>> + Send,
        T: VersionItem + Send,
    {
        let items: Vec<T> = pager
            .map_err(|e| self.map(e, object))?
            .try_collect()
            .await
            .map_err(|e| self.map(e, object))?;
        Ok(items.iter().filter_map(VersionItem::info).collect())
    }
}

/// What a version listing reads from an item of the SDK's listings. The three kinds' item types
/// (`SecretProperties`, `KeyProperties`, `CertificateProperties`) share the fields but no trait.
trait VersionItem {
    /// The item as a [`VersionInfo`]; `None` when it carries no id.
    fn info(&self) -> Option<VersionInfo>;
}

/// Implements [`VersionItem`] for an SDK item type whose object id is in the field `$id`.
macro_rules! version_item {
    ($item:ty, $id:ident) => {
        impl VersionItem for $item {
            fn info(&self) -> Option<VersionInfo> {
                let attributes = self.attributes.as_ref();
                Some(VersionInfo {
                    version: version_of(self.$id.as_deref()?).to_owned(),
                    enabled: attributes.and_then(|a| a.enabled),
                    created: unix(attributes.and_then(|a| a.created)),
                })
            }
        }
    };
}

version_item!(
    azure_security_keyvault_secrets::models::SecretProperties,
    id
);
version_item!(azure_security_keyvault_keys::models::KeyProperties, kid);
version_item!(
    azure_security_keyvault_certificates::models::CertificateProperties,
    id
);

/// Who a client authenticates as, for error messages: never a secret.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Log-safe label of the identity (mode and client id).
    pub identity: String,
    /// URL of the identity's token endpoint.
    pub token_endpoint: String,
}

/// A Key Vault error body: `{"error":{"code":…,"message":…,"innererror":{"code":…}}}`.
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

/// An Entra ID (OAuth) error body: `{"error":"…","error_description":"…"}`.
#[derive(Deserialize)]
struct OAuthError {
    error: String,
    error_description: Option<String>,
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

/// How long an error response asks the caller to wait: `Retry-After` (seconds or an HTTP
/// date), else `retry-after-ms` or `x-ms-retry-after-ms` (milliseconds), as Azure's SDKs read
/// them.
pub fn retry_after(headers: &azure_core::http::headers::Headers) -> Option<Duration> {
    use azure_core::http::headers::{HeaderName, RETRY_AFTER};
    const RETRY_AFTER_MS: HeaderName = HeaderName::from_static("retry-after-ms");
    const X_MS_RETRY_AFTER_MS: HeaderName = HeaderName::from_static("x-ms-retry-after-ms");
    if let Some(v) = headers.get_optional_str(&RETRY_AFTER).map(str::trim) {
        if let Ok(secs) = v.parse::<u64>() {
            return Some(Duration::from_secs(secs));
        }
        if let Ok(at) = azure_core::time::parse_rfc7231(v) {
            let now = azure_core::time::OffsetDateTime::now_utc();
            return Some(Duration::from_secs(
                u64::try_from((at - now).whole_seconds()).unwrap_or(0),
            ));
        }
    }
    [RETRY_AFTER_MS, X_MS_RETRY_AFTER_MS]
        .iter()
        .find_map(|h| headers.get_optional_str(h)?.trim().parse::<u64>().ok())
        .map(Duration::from_millis)
}

/// What an error response says: the service's error code and message from a Key Vault or
/// Entra ID body, else `HTTP <status> <code>`. Only error responses reach here.
fn response_detail(
    status: u16,
    error_code: Option<&str>,
    raw: Option<&azure_core::http::RawResponse>,
) -> String {
    if let Some(e) = raw.and_then(|r| r.body().json::<ServiceError>().ok()) {
        let mut detail = format!(
            "{}: {}",
            e.error.code.as_deref().or(error_code).unwrap_or("Error"),
            e.error.message.as_deref().unwrap_or("").trim()
        );
        if let Some(inner) = e.error.innererror.as_ref().and_then(|i| i.code.as_deref()) {
            detail.push_str(&format!(" (inner: {inner})"));
        }
        return detail;
    }
    if let Some(e) = raw.and_then(|r| r.body().json::<OAuthError>().ok()) {
        let description = e.error_description.unwrap_or_default();
        let description = description.lines().next().unwrap_or("").trim();
        return format!("{}: {description}", e.error);
    }
    format!("HTTP {status} {}", error_code.unwrap_or(""))
        .trim()
        .to_owned()
}

/// Maps an SDK error to ours. Only error responses' bodies are read.
///
/// The credential's own failures (the SDK calls it from inside the vault request) are told
/// apart from the vault's: a 429 or a 5xx from the token endpoint becomes a throttling or
/// server error naming the token endpoint, any other answer an authentication failure.
pub fn map_error(
    err: azure_core::Error,
    object: &str,
    vault_url: &str,
    caller: &Caller,
) -> AzureError {
    let chain = azure_chain(&err);
    if let Some(pos) = chain
        .iter()
        .position(|e| matches!(e.kind(), ErrorKind::Credential))
    {
        let below = &chain[pos..];
        if let Some((e, status, error_code, raw)) = below.iter().find_map(|e| match e.kind() {
            ErrorKind::HttpResponse {
                status,
                error_code,
                raw_response,
            } => Some((e, u16::from(*status), error_code, raw_response)),
            _ => None,
        }) {
            let raw = raw.as_deref();
            let wait = raw.and_then(|r| retry_after(r.headers()));
            return match status {
                429 => AzureError::Throttled {
                    object: object.to_owned(),
                    service: Service::TokenEndpoint,
                    endpoint: caller.token_endpoint.clone(),
                    detail: response_detail(status, error_code.as_deref(), raw),
                    retry_after: wait,
                },
                500..=599 => AzureError::ServerError {
                    object: object.to_owned(),
                    service: Service::TokenEndpoint,
                    endpoint: caller.token_endpoint.clone(),
                    status,
                    detail: response_detail(status, error_code.as_deref(), raw),
                    retry_after: wait,
                },
                _ => AzureError::Authentication {
                    identity: caller.identity.clone(),
                    detail: format!("HTTP {status}: {}", e.to_string().trim()),
                },
            };
        }
        if let Some(e) = below
            .iter()
            .find(|e| matches!(e.kind(), ErrorKind::Connection | ErrorKind::Io))
        {
            return AzureError::Unavailable {
                endpoint: caller.token_endpoint.clone(),
                detail: report::chain(*e),
                retry_after: None,
            };
        }
        return AzureError::Authentication {
            identity: caller.identity.clone(),
            detail: credential_detail(chain[pos]),
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
            let raw = raw_response.as_deref();
            let detail = response_detail(status, error_code.as_deref(), raw);
            let wait = raw.and_then(|r| retry_after(r.headers()));
            match status {
                401 => AzureError::Authentication {
                    identity: caller.identity.clone(),
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
                    service: Service::Vault,
                    endpoint: vault_url.to_owned(),
                    detail,
                    retry_after: wait,
                },
                500..=599 => AzureError::ServerError {
                    object: object.to_owned(),
                    service: Service::Vault,
                    endpoint: vault_url.to_owned(),
                    status,
                    detail,
                    retry_after: wait,
                },
                _ => AzureError::Internal(format!("failed to get {object}: {detail}")),
            }
        }
        ErrorKind::Connection | ErrorKind::Io => AzureError::Unavailable {
            endpoint: vault_url.to_owned(),
            detail: report::chain(err),
            retry_after: None,
        },
        ErrorKind::DataConversion => AzureError::Format {
            object: object.to_owned(),
            reason: "the vault's answer could not be parsed".into(),
        },
        _ => AzureError::Internal(format!("failed to get {object}: {}", report::chain(err))),
    }
}

/// The identity provider's answer, without the SDK's troubleshooting boilerplate.
fn credential_detail(err: &azure_core::Error) -> String {
    let text = report::chain(err);
    // azure_identity 1.0.0 cannot parse Entra error bodies whose description holds escapes (real
    // Entra's do: "...\r\nTrace ID: ...") and reports the raw string inside a serde message;
    // pull the description back out.
    const MARK: &str = "invalid type: string \"";
    if let Some(start) = text.find(MARK) {
        let rest = &text[start + MARK.len()..];
        if let Some(end) = rest.find("\", expected") {
            return rest[..end]
                .replace("\\r\\n", " ")
                .replace("\r\n", " ")
                .trim()
                .to_owned();
        }
    }
    let text = text.split("\nTo troubleshoot").next().unwrap_or(&text);
    let text = text.split(" To troubleshoot").next().unwrap_or(text);
    text.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use azure_core::http::headers::{HeaderName, Headers};
    use azure_core::http::{RawResponse, StatusCode};

    const VAULT: &str = "https://kv.vault.azure.net/";
    const TOKEN: &str = "https://login.microsoftonline.com/t/oauth2/v2.0/token";

    fn caller() -> Caller {
        Caller {
            identity: "ServicePrincipal c".into(),
            token_endpoint: TOKEN.into(),
        }
    }

    /// An SDK error for an HTTP answer, as the pipeline builds them.
    fn http_error(status: u16, headers: &[(&'static str, &str)], body: &str) -> azure_core::Error {
        let mut h = Headers::new();
        for (k, v) in headers {
            h.insert(HeaderName::from_static(k), v.to_string());
        }
        let status = StatusCode::from(status);
        azure_core::Error::with_message(
            ErrorKind::HttpResponse {
                status,
                error_code: None,
                raw_response: Some(Box::new(RawResponse::from_bytes(
                    status,
                    h,
                    body.as_bytes().to_vec(),
                ))),
            },
            "",
        )
    }

    /// The same answer from the token endpoint, wrapped as the credential wraps it.
    fn token_error(status: u16, headers: &[(&'static str, &str)], body: &str) -> azure_core::Error {
        azure_core::Error::with_error(
            ErrorKind::Credential,
            http_error(status, headers, body),
            "ClientSecretCredential authentication failed.",
        )
    }

    fn map(e: azure_core::Error) -> AzureError {
        map_error(e, "secret/s1", VAULT, &caller())
    }

    #[test]
    fn a_token_endpoint_429_is_throttling_by_the_token_endpoint_with_its_wait() {
        let e = map(token_error(
            429,
            &[("retry-after", "3600")],
            r#"{"error":"temporarily_unavailable","error_description":"AADSTS50196: slow down.\r\nTrace ID: x"}"#,
        ));
        match &e {
            AzureError::Throttled {
                service,
                endpoint,
                retry_after,
                detail,
                ..
            } => {
                assert_eq!(*service, Service::TokenEndpoint);
                assert_eq!(endpoint, TOKEN);
                assert_eq!(*retry_after, Some(Duration::from_secs(3600)));
                assert_eq!(detail, "temporarily_unavailable: AADSTS50196: slow down.");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn server_errors_keep_their_status_and_say_whose_they_are() {
        let body = r#"{"error":{"code":"InternalServerError","message":"boom"}}"#;
        let e = map(http_error(500, &[], body));
        assert_eq!(
            e.to_string(),
            "failed to get secret/s1: the vault https://kv.vault.azure.net/ answered HTTP 500 InternalServerError (InternalServerError: boom)"
        );
        let e = map(token_error(500, &[], body));
        assert!(
            matches!(
                e,
                AzureError::ServerError {
                    service: Service::TokenEndpoint,
                    status: 500,
                    ..
                }
            ),
            "{e:?}"
        );
        let e = map(http_error(503, &[("retry-after", "7")], ""));
        assert_eq!(
            (e.code(), e.retry_after()),
            ("ServiceUnavailable", Some(Duration::from_secs(7)))
        );
    }

    #[test]
    fn other_token_endpoint_answers_are_authentication_failures() {
        let e = map(token_error(401, &[], r#"{"error":"invalid_client"}"#));
        assert!(matches!(e, AzureError::Authentication { .. }), "{e:?}");
    }

    #[test]
    fn retry_after_is_read_in_seconds_as_a_date_or_in_milliseconds() {
        let headers = |pairs: &[(&'static str, &str)]| {
            let mut h = Headers::new();
            for (k, v) in pairs {
                h.insert(HeaderName::from_static(k), v.to_string());
            }
            h
        };
        assert_eq!(
            retry_after(&headers(&[("retry-after", "30")])),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            retry_after(&headers(&[(
                "retry-after",
                "Fri, 01 Jan 2021 00:00:00 GMT"
            )])),
            Some(Duration::ZERO),
            "a date in the past means now"
        );
        assert_eq!(
            retry_after(&headers(&[("x-ms-retry-after-ms", "1500")])),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(retry_after(&headers(&[])), None);
    }
}

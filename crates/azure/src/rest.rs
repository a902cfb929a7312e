//! keyvol's Key Vault client: the reads the provider makes — a secret, a key, a certificate, an
//! object's versions — over the Key Vault REST API ([`API_VERSION`]) on the process's one HTTP
//! client ([`crate::http`]), with a bearer token from the identity's credential for the scope
//! its vault asks for ([`crate::challenge`]: learned once per vault for the process, or known
//! from the cloud, so no request goes out alone to learn what is already known).
//!
//! Errors are mapped here, once, into [`AzureError`]s built from the status and the service's
//! error code and message (Key Vault's or Entra ID's), never from the body of a successful
//! answer, which holds the secret. Every body is read with a cap ([`MAX_RESPONSE_BYTES`],
//! [`MAX_ERROR_BODY_BYTES`]); a version listing follows at most [`MAX_VERSION_PAGES`] pages, and
//! only to the same vault. Nothing is retried here except once after a challenge names a scope
//! other than the one the token was for: retries are the provider's (deadline-aware).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use azure_core::credentials::{AccessToken, TokenCredential};
use azure_core::error::ErrorKind;
use base64::Engine;
use keyvol_core::{Sensitive, report};
use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap, HeaderValue};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use url::Url;

use crate::challenge::{self, VaultScope};
use crate::error::{AzureError, Service};
use crate::keyvault::{
    API_VERSION, Caller, CertificateBundle, KeyBundle, KeyVault, ObjectInfo, SecretBundle,
    VersionInfo, name_in_id, version_of,
};
use crate::objects::ObjectType;

/// Largest successful answer read. Key Vault stores secrets of at most 25 KB (a PFX as base64
/// JSON text); a key's JWK, a certificate's DER and a page of 25 versions are smaller still.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;
/// Largest error body read (for the service's error code and message).
pub const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;
/// Most pages of one version listing followed (25 versions a page: 10,000 versions).
pub const MAX_VERSION_PAGES: usize = 400;
/// Most pages of one object listing followed (25 objects a page: 25,000 objects; the
/// wildcard cap is far lower).
pub const MAX_LIST_PAGES: usize = 1000;
/// Versions per page asked for: the most Key Vault returns.
const VERSIONS_PER_PAGE: &str = "25";

/// [`KeyVault`] over the REST API for one vault and one identity. Cheap to build: the HTTP
/// client (and its connections) and the vault's challenge are shared process-wide.
pub struct RestKeyVault {
    http: reqwest::Client,
    /// `https://<vault>.<suffix>/`.
    base: Url,
    /// The same, as given, for messages.
    vault_url: String,
    /// The vault's host, which a challenge's scope must be a parent domain of.
    host: String,
    caller: Caller,
    credential: Arc<dyn TokenCredential>,
    /// The scope known from the cloud, used until the vault's challenge is learned.
    cloud_scope: Option<String>,
    /// What the process learned of this vault's challenge (shared by every identity).
    scope: Arc<VaultScope>,
}

impl RestKeyVault {
    /// A client for `vault_url` authenticating with `credential` as `caller`.
    pub fn new(
        http: reqwest::Client,
        vault_url: &str,
        caller: Caller,
        credential: Arc<dyn TokenCredential>,
        cloud_scope: Option<String>,
        scope: Arc<VaultScope>,
    ) -> Result<Self, AzureError> {
        let base = Url::parse(vault_url)
            .ok()
            .filter(|u| u.scheme() == "https" && u.host_str().is_some())
            .ok_or_else(|| AzureError::Internal(format!("{vault_url} is not a Key Vault URL")))?;
        let host = base.host_str().unwrap_or_default().to_owned();
        Ok(Self {
            http,
            base,
            vault_url: vault_url.to_owned(),
            host,
            caller,
            credential,
            cloud_scope,
            scope,
        })
    }

    /// `<vault>/<kind>/<segments…>?api-version=…`, each segment percent-encoded.
    fn url(&self, kind: ObjectType, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.clear().push(collection(kind)).extend(segments);
        }
        url.query_pairs_mut()
            .append_pair("api-version", API_VERSION);
        url
    }

    /// GETs `url` with a token for the vault's scope and returns the successful answer's body.
    async fn get(&self, url: &Url, object: &str) -> Result<Sensitive<Vec<u8>>, AzureError> {
        let known = self
            .scope
            .learned()
            .map(|s| s.to_string())
            .or_else(|| self.cloud_scope.clone());
        let scope = match known {
            Some(scope) => scope,
            None => {
                // Nothing known: one request per vault at a time goes out unauthenticated for
                // the challenge; the others wait and then use what it learned.
                let _learning = self.scope.learning.lock().await;
                match self.scope.learned() {
                    Some(scope) => scope.to_string(),
                    None => {
                        let answer = self.send(url, None, object).await?;
                        if answer.status() != StatusCode::UNAUTHORIZED {
                            return self.finish(answer, object).await;
                        }
                        let scope =
                            self.challenged(answer.headers(), object)?
                                .ok_or_else(|| AzureError::Authentication {
                                    identity: self.caller.identity.clone(),
                                    detail: format!(
                                        "failed to get {object}: the vault answered 401 without a challenge"
                                    ),
                                })?;
                        self.scope.learn(&scope);
                        scope
                    }
                }
            }
        };
        let token = self.token(&scope, object).await?;
        let answer = self.send(url, Some(&token), object).await?;
        if answer.status() == StatusCode::UNAUTHORIZED
            && let Some(challenged) = self.challenged(answer.headers(), object)?
            && challenged != scope
        {
            // The vault wants a token for another scope than the cloud's (or than it named
            // before): learn it for every identity and send the request again with one.
            self.scope.learn(&challenged);
            let token = self.token(&challenged, object).await?;
            let answer = self.send(url, Some(&token), object).await?;
            return self.finish(answer, object).await;
        }
        self.finish(answer, object).await
    }

    /// The scope a 401's challenge names: `None` without a challenge, an error when the
    /// challenge names none or one that may not be used for this vault.
    fn challenged(&self, headers: &HeaderMap, object: &str) -> Result<Option<String>, AzureError> {
        let refused = |detail: String| AzureError::Authentication {
            identity: self.caller.identity.clone(),
            detail: format!("failed to get {object}: {detail}"),
        };
        let Some(header) = headers.get(header::WWW_AUTHENTICATE) else {
            return Ok(None);
        };
        let scope = header
            .to_str()
            .ok()
            .and_then(challenge::parse)
            .ok_or_else(|| refused("the vault's challenge names no resource or scope".into()))?;
        challenge::check(&scope, &self.host).map_err(refused)?;
        Ok(Some(scope))
    }

    /// A token for `scope` from the identity's credential (which caches it).
    async fn token(&self, scope: &str, object: &str) -> Result<AccessToken, AzureError> {
        self.credential
            .get_token(&[scope], None)
            .await
            .map_err(|e| map_credential_error(e, object, &self.caller))
    }

    /// Sends one GET, with the token when there is one.
    async fn send(
        &self,
        url: &Url,
        token: Option<&AccessToken>,
        object: &str,
    ) -> Result<reqwest::Response, AzureError> {
        let mut request = self
            .http
            .get(url.clone())
            .header(header::ACCEPT, "application/json");
        if let Some(token) = token {
            let mut value = HeaderValue::try_from(format!("Bearer {}", token.token.secret()))
                .map_err(|_| AzureError::Authentication {
                    identity: self.caller.identity.clone(),
                    detail: "the token is not a valid header value".into(),
                })?;
            value.set_sensitive(true);
            request = request.header(header::AUTHORIZATION, value);
        }
        request.send().await.map_err(|e| AzureError::Unavailable {
            endpoint: self.vault_url.clone(),
            detail: format!("failed to get {object}: {}", report::chain(&e)),
            retry_after: None,
        })
    }

    /// The body of a successful answer (capped), or the error an unsuccessful one stands for.
    async fn finish(
        &self,
        answer: reqwest::Response,
        object: &str,
    ) -> Result<Sensitive<Vec<u8>>, AzureError> {
        let status = answer.status();
        if status.is_success() {
            return read_capped(answer, MAX_RESPONSE_BYTES)
                .await
                .map(Sensitive::new)
                .map_err(|e| match e {
                    ReadError::TooLarge => AzureError::Format {
                        object: object.to_owned(),
                        reason: format!(
                            "the vault's answer is larger than {} KiB",
                            MAX_RESPONSE_BYTES / 1024
                        ),
                    },
                    ReadError::Transport(e) => AzureError::Unavailable {
                        endpoint: self.vault_url.clone(),
                        detail: format!("failed to get {object}: {}", report::chain(&e)),
                        retry_after: None,
                    },
                });
        }
        let headers = answer.headers().clone();
        // An error body is only read for the service's code and message; a body that cannot be
        // read leaves the status alone to speak.
        let body = read_capped(answer, MAX_ERROR_BODY_BYTES)
            .await
            .unwrap_or_default();
        Err(vault_error(
            status.as_u16(),
            &headers,
            &body,
            object,
            &self.vault_url,
            &self.caller,
        ))
    }

    /// GETs `url` and parses the answer as `T`; `what` names `T` for the error.
    async fn get_json<T: DeserializeOwned>(
        &self,
        url: &Url,
        object: &str,
        what: &str,
    ) -> Result<T, AzureError> {
        let body = self.get(url, object).await?;
        serde_json::from_slice(body.expose()).map_err(|_| AzureError::Format {
            object: object.to_owned(),
            reason: format!("the vault's answer is not {what}"),
        })
    }

    /// The URL of a listing's next page: only on this vault, with the api-version.
    fn next_page(&self, link: &str, object: &str) -> Result<Url, AzureError> {
        let url = Url::parse(link)
            .ok()
            .filter(|u| u.origin() == self.base.origin())
            .ok_or_else(|| AzureError::Format {
                object: object.to_owned(),
                reason: "the vault's nextLink leads to another host".into(),
            })?;
        if url.query_pairs().any(|(k, _)| k == "api-version") {
            return Ok(url);
        }
        let mut url = url;
        url.query_pairs_mut()
            .append_pair("api-version", API_VERSION);
        Ok(url)
    }
}

/// The collection an object kind lives in.
fn collection(kind: ObjectType) -> &'static str {
    match kind {
        ObjectType::Secret => "secrets",
        ObjectType::Key => "keys",
        ObjectType::Cert => "certificates",
    }
}

/// `segments` for a GET of `name` at `version` (the newest when empty).
fn name_version<'a>(name: &'a str, version: &'a str) -> Vec<&'a str> {
    if version.is_empty() {
        vec![name]
    } else {
        vec![name, version]
    }
}

/// A secret bundle's fields keyvol reads.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SecretJson {
    value: Option<String>,
    id: Option<String>,
    content_type: Option<String>,
    kid: Option<String>,
}

/// A key bundle's fields keyvol reads.
#[derive(Deserialize)]
struct KeyJson {
    key: Option<JwkJson>,
}

/// The public members of a JSON web key (base64url).
#[derive(Deserialize)]
struct JwkJson {
    kid: Option<String>,
    kty: Option<String>,
    crv: Option<String>,
    n: Option<String>,
    e: Option<String>,
    x: Option<String>,
    y: Option<String>,
}

/// A certificate bundle's fields keyvol reads.
#[derive(Deserialize)]
struct CertificateJson {
    id: Option<String>,
    cer: Option<String>,
}

/// One page of a version listing.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct VersionPage {
    #[serde(default)]
    value: Vec<VersionItemJson>,
    next_link: Option<String>,
}

/// One item of a version listing: secrets and certificates name themselves by `id`, keys by
/// `kid`.
#[derive(Deserialize)]
struct VersionItemJson {
    id: Option<String>,
    kid: Option<String>,
    attributes: Option<AttributesJson>,
}

#[derive(Deserialize)]
struct AttributesJson {
    enabled: Option<bool>,
    created: Option<i64>,
}

/// Base64 as Key Vault writes it: base64url for JWK members, standard for `cer`; padding
/// optional either way.
fn base64_any(text: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    let text = text.trim_end_matches('=');
    URL_SAFE_NO_PAD
        .decode(text)
        .or_else(|_| STANDARD_NO_PAD.decode(text))
        .ok()
}

#[async_trait]
impl KeyVault for RestKeyVault {
    async fn get_secret(&self, name: &str, version: &str) -> Result<SecretBundle, AzureError> {
        let object = format!("secret/{name}");
        let url = self.url(ObjectType::Secret, &name_version(name, version));
        let secret: SecretJson = self.get_json(&url, &object, "a secret bundle").await?;
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
        let url = self.url(ObjectType::Key, &name_version(name, version));
        let body = self.get(&url, &object).await?;
        key_bundle(&object, body.expose())
    }

    async fn get_certificate(
        &self,
        name: &str,
        version: &str,
    ) -> Result<CertificateBundle, AzureError> {
        let object = format!("cert/{name}");
        let url = self.url(ObjectType::Cert, &name_version(name, version));
        let cert: CertificateJson = self.get_json(&url, &object, "a certificate bundle").await?;
        let id = cert.id.ok_or_else(|| AzureError::Format {
            object: object.clone(),
            reason: "the vault returned no id".into(),
        })?;
        let cer = cert
            .cer
            .as_deref()
            .map(|c| {
                base64_any(c).ok_or_else(|| AzureError::Format {
                    object: object.clone(),
                    reason: "the certificate's cer is not base64".into(),
                })
            })
            .transpose()?
            .ok_or_else(|| AzureError::Format {
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
        let mut url = self.url(kind, &[name, "versions"]);
        url.query_pairs_mut()
            .append_pair("maxresults", VERSIONS_PER_PAGE);
        let mut out = Vec::new();
        for _ in 0..MAX_VERSION_PAGES {
            let page: VersionPage = self.get_json(&url, &object, "a version listing").await?;
            out.extend(page.value.into_iter().filter_map(|item| {
                let id = item.id.or(item.kid)?;
                let attributes = item.attributes;
                Some(VersionInfo {
                    version: version_of(&id).to_owned(),
                    enabled: attributes.as_ref().and_then(|a| a.enabled),
                    created: attributes.as_ref().and_then(|a| a.created),
                })
            }));
            match page.next_link.filter(|l| !l.is_empty()) {
                Some(link) => url = self.next_page(&link, &object)?,
                None => return Ok(out),
            }
        }
        Err(AzureError::Format {
            object,
            reason: format!(
                "the vault lists more than {MAX_VERSION_PAGES} pages of versions; not following more"
            ),
        })
    }

    async fn list_objects(
        &self,
        kind: ObjectType,
        max: usize,
    ) -> Result<Vec<ObjectInfo>, AzureError> {
        let what = format!("the list of {}s", kind.as_str());
        let mut url = self.url(kind, &[]);
        url.query_pairs_mut()
            .append_pair("maxresults", VERSIONS_PER_PAGE);
        let mut out = Vec::new();
        let mut seen = 0usize;
        for _ in 0..MAX_LIST_PAGES {
            let page: VersionPage = self.get_json(&url, &what, "an object listing").await?;
            for item in page.value {
                seen += 1;
                if seen > max {
                    return Err(AzureError::Internal(format!(
                        "{what} of {} has more than {max} entries; keyvol stops listing there",
                        self.vault_url
                    )));
                }
                let Some(id) = item.id.or(item.kid) else {
                    continue;
                };
                if let Some(name) = name_in_id(&id) {
                    out.push(ObjectInfo {
                        name: name.to_owned(),
                        enabled: item.attributes.as_ref().and_then(|a| a.enabled),
                    });
                }
            }
            match page.next_link.filter(|l| !l.is_empty()) {
                Some(link) => url = self.next_page(&link, &what)?,
                None => return Ok(out),
            }
        }
        Err(AzureError::Format {
            object: what,
            reason: format!(
                "the vault lists more than {MAX_LIST_PAGES} pages of objects; not following more"
            ),
        })
    }
}

/// A key bundle (`GET /keys/{name}` answer: JWK members in base64url) as a [`KeyBundle`];
/// `object` (e.g. `key/k1`) names it in errors, which never hold the body.
pub fn key_bundle(object: &str, body: &[u8]) -> Result<KeyBundle, AzureError> {
    let format = |reason: &str| AzureError::Format {
        object: object.to_owned(),
        reason: reason.to_owned(),
    };
    let key: KeyJson = serde_json::from_slice(body)
        .map_err(|_| format("the vault's answer is not a key bundle"))?;
    let jwk = key.key.ok_or_else(|| format("the vault returned no key"))?;
    let kid = jwk.kid.ok_or_else(|| format("the vault returned no kid"))?;
    let member = |value: Option<String>, field: &str| -> Result<Option<Vec<u8>>, AzureError> {
        value
            .map(|v| {
                base64_any(&v).ok_or_else(|| format(&format!("the key's {field} is not base64url")))
            })
            .transpose()
    };
    Ok(KeyBundle {
        kid,
        kty: jwk.kty.unwrap_or_default(),
        crv: jwk.crv,
        n: member(jwk.n, "n")?,
        e: member(jwk.e, "e")?,
        x: member(jwk.x, "x")?,
        y: member(jwk.y, "y")?,
    })
}

/// Why a body could not be read.
enum ReadError {
    /// Larger than the cap.
    TooLarge,
    /// The connection failed mid-body.
    Transport(reqwest::Error),
}

/// Reads a body, refusing one larger than `cap` (by its Content-Length, or as it arrives).
async fn read_capped(mut answer: reqwest::Response, cap: usize) -> Result<Vec<u8>, ReadError> {
    if answer.content_length().is_some_and(|n| n > cap as u64) {
        return Err(ReadError::TooLarge);
    }
    let mut body = Vec::with_capacity(
        answer
            .content_length()
            .map_or(0, |n| usize::try_from(n).unwrap_or(0)),
    );
    while let Some(chunk) = answer.chunk().await.map_err(ReadError::Transport)? {
        if body.len() + chunk.len() > cap {
            return Err(ReadError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
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

/// What an error answer says: the service's error code and message from a Key Vault or Entra ID
/// body, else `HTTP <status> <code>`. Only error answers reach here.
fn response_detail(status: u16, error_code: Option<&str>, body: &[u8]) -> String {
    if let Ok(e) = serde_json::from_slice::<ServiceError>(body) {
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
    if let Ok(e) = serde_json::from_slice::<OAuthError>(body) {
        let description = e.error_description.unwrap_or_default();
        let description = description.lines().next().unwrap_or("").trim();
        return format!("{}: {description}", e.error);
    }
    format!("HTTP {status} {}", error_code.unwrap_or(""))
        .trim()
        .to_owned()
}

/// How long an answer asks the caller to wait, from the values of `Retry-After` (seconds or an
/// HTTP date) and of `retry-after-ms` / `x-ms-retry-after-ms` (milliseconds), as Azure's SDKs
/// read them.
fn parse_retry_after(
    retry_after: Option<&str>,
    milliseconds: impl IntoIterator<Item = Option<String>>,
) -> Option<Duration> {
    if let Some(v) = retry_after.map(str::trim) {
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
    milliseconds
        .into_iter()
        .find_map(|v| v?.trim().parse::<u64>().ok())
        .map(Duration::from_millis)
}

/// [`parse_retry_after`] of a vault answer's headers.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    parse_retry_after(
        get("retry-after").as_deref(),
        [get("retry-after-ms"), get("x-ms-retry-after-ms")],
    )
}

/// [`parse_retry_after`] of a token endpoint's answer, as the credential reports it.
fn credential_retry_after(headers: &azure_core::http::headers::Headers) -> Option<Duration> {
    use azure_core::http::headers::{HeaderName, RETRY_AFTER};
    let get = |name: &HeaderName| headers.get_optional_str(name).map(str::to_owned);
    parse_retry_after(
        get(&RETRY_AFTER).as_deref(),
        [
            get(&HeaderName::from_static("retry-after-ms")),
            get(&HeaderName::from_static("x-ms-retry-after-ms")),
        ],
    )
}

/// The error an unsuccessful vault answer stands for.
fn vault_error(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    object: &str,
    vault_url: &str,
    caller: &Caller,
) -> AzureError {
    let detail = response_detail(status, None, body);
    let wait = retry_after(headers);
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

/// The azure_core errors in `err`'s source chain, outermost first. The credentials wrap
/// failures (a credential around an HTTP answer), so the meaningful one is often a level down.
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

/// Maps a credential's failure to get a token for `object`'s request: a 429 or a 5xx from the
/// token endpoint becomes a throttling or server error naming the token endpoint, an
/// unreachable endpoint [`AzureError::Unavailable`], anything else an authentication failure.
pub fn map_credential_error(err: azure_core::Error, object: &str, caller: &Caller) -> AzureError {
    let chain = azure_chain(&err);
    let pos = chain
        .iter()
        .position(|e| matches!(e.kind(), ErrorKind::Credential))
        .unwrap_or(0);
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
        let body = raw.map(|r| r.body().as_ref()).unwrap_or_default();
        let wait = raw.and_then(|r| credential_retry_after(r.headers()));
        return match status {
            429 => AzureError::Throttled {
                object: object.to_owned(),
                service: Service::TokenEndpoint,
                endpoint: caller.token_endpoint.clone(),
                detail: response_detail(status, error_code.as_deref(), body),
                retry_after: wait,
            },
            500..=599 => AzureError::ServerError {
                object: object.to_owned(),
                service: Service::TokenEndpoint,
                endpoint: caller.token_endpoint.clone(),
                status,
                detail: response_detail(status, error_code.as_deref(), body),
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
    AzureError::Authentication {
        identity: caller.identity.clone(),
        detail: credential_detail(chain[pos]),
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
    use azure_core::http::{RawResponse, StatusCode as SdkStatus};

    const VAULT: &str = "https://kv.vault.azure.net/";
    const TOKEN: &str = "https://login.microsoftonline.com/t/oauth2/v2.0/token";

    fn caller() -> Caller {
        Caller {
            identity: "ServicePrincipal c".into(),
            token_endpoint: TOKEN.into(),
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).expect("value"));
        }
        h
    }

    fn vault(status: u16, pairs: &[(&'static str, &str)], body: &str) -> AzureError {
        vault_error(
            status,
            &headers(pairs),
            body.as_bytes(),
            "secret/s1",
            VAULT,
            &caller(),
        )
    }

    /// The token endpoint's answer, wrapped as the SDK's credentials wrap it.
    fn token_error(status: u16, pairs: &[(&'static str, &str)], body: &str) -> azure_core::Error {
        let mut h = Headers::new();
        for (k, v) in pairs {
            h.insert(HeaderName::from_static(k), v.to_string());
        }
        let status = SdkStatus::from(status);
        let http = azure_core::Error::with_message(
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
        );
        azure_core::Error::with_error(
            ErrorKind::Credential,
            http,
            "ClientSecretCredential authentication failed.",
        )
    }

    fn token(e: azure_core::Error) -> AzureError {
        map_credential_error(e, "secret/s1", &caller())
    }

    #[test]
    fn a_token_endpoint_429_is_throttling_by_the_token_endpoint_with_its_wait() {
        let e = token(token_error(
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
        let e = vault(500, &[], body);
        assert_eq!(
            e.to_string(),
            "failed to get secret/s1: the vault https://kv.vault.azure.net/ answered HTTP 500 InternalServerError (InternalServerError: boom)"
        );
        let e = token(token_error(500, &[], body));
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
        let e = vault(503, &[("retry-after", "7")], "");
        assert_eq!(
            (e.code(), e.retry_after()),
            ("ServiceUnavailable", Some(Duration::from_secs(7)))
        );
    }

    #[test]
    fn vault_answers_map_to_their_kinds_with_the_services_code_and_message() {
        let body = r#"{"error":{"code":"SecretNotFound","message":"A secret with (name/id) s1 was not found in this key vault.","innererror":{"code":"X"}}}"#;
        let e = vault(404, &[], body);
        assert_eq!(e.code(), "ObjectNotFound");
        assert!(
            e.to_string()
                .contains("SecretNotFound: A secret with (name/id) s1 was not found in this key vault. (inner: X)"),
            "{e}"
        );
        assert_eq!(vault(403, &[], body).code(), "Forbidden");
        assert_eq!(vault(401, &[], body).code(), "AuthenticationFailed");
        let e = vault(429, &[("x-ms-retry-after-ms", "1500")], "not json");
        assert_eq!(
            (e.code(), e.retry_after()),
            ("Throttled", Some(Duration::from_millis(1500)))
        );
        assert_eq!(
            vault(418, &[], "").to_string(),
            "failed to get secret/s1: HTTP 418"
        );
    }

    #[test]
    fn other_token_endpoint_answers_are_authentication_failures() {
        let e = token(token_error(401, &[], r#"{"error":"invalid_client"}"#));
        assert!(matches!(e, AzureError::Authentication { .. }), "{e:?}");
        let e = token(azure_core::Error::with_message(
            ErrorKind::Credential,
            "no service account token available",
        ));
        assert_eq!(
            e.to_string(),
            "failed to authenticate ServicePrincipal c: no service account token available"
        );
    }

    #[test]
    fn retry_after_is_read_in_seconds_as_a_date_or_in_milliseconds() {
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

    #[test]
    fn jwk_members_and_cer_are_read_in_either_base64_alphabet() {
        assert_eq!(base64_any("_-8"), Some(vec![0xff, 0xef]));
        assert_eq!(base64_any("/+8="), Some(vec![0xff, 0xef]));
        assert_eq!(base64_any("AQAB"), Some(vec![1, 0, 1]));
        assert_eq!(base64_any("not base64!"), None);
    }

    fn client() -> RestKeyVault {
        RestKeyVault::new(
            reqwest::Client::new(),
            VAULT,
            caller(),
            Arc::new(NoCredential),
            None,
            Arc::default(),
        )
        .expect("client")
    }

    #[derive(Debug)]
    struct NoCredential;

    #[async_trait]
    impl TokenCredential for NoCredential {
        async fn get_token(
            &self,
            _: &[&str],
            _: Option<azure_core::credentials::TokenRequestOptions<'_>>,
        ) -> azure_core::Result<AccessToken> {
            Err(azure_core::Error::with_message(
                ErrorKind::Credential,
                "none",
            ))
        }
    }

    #[test]
    fn urls_are_built_from_percent_encoded_segments() {
        let c = client();
        assert_eq!(
            c.url(ObjectType::Secret, &name_version("s1", "")).as_str(),
            "https://kv.vault.azure.net/secrets/s1?api-version=7.4"
        );
        assert_eq!(
            c.url(ObjectType::Cert, &name_version("c", "0123")).as_str(),
            "https://kv.vault.azure.net/certificates/c/0123?api-version=7.4"
        );
        assert_eq!(
            c.url(ObjectType::Key, &name_version("../x?y", "")).as_str(),
            "https://kv.vault.azure.net/keys/..%2Fx%3Fy?api-version=7.4",
            "a name never leaves its segment (names are validated before; this is the backstop)"
        );
    }

    #[test]
    fn next_links_are_followed_only_on_the_same_vault() {
        let c = client();
        assert_eq!(
            c.next_page(
                "https://kv.vault.azure.net:443/secrets/s/versions?api-version=7.4&$skiptoken=x",
                "secret/s"
            )
            .expect("same vault")
            .as_str(),
            "https://kv.vault.azure.net/secrets/s/versions?api-version=7.4&$skiptoken=x"
        );
        assert!(
            c.next_page(
                "https://kv.vault.azure.net/secrets/s/versions?$skiptoken=x",
                "o"
            )
            .expect("same vault")
            .as_str()
            .ends_with("&api-version=7.4")
        );
        for elsewhere in [
            "https://evil.example/secrets/s/versions",
            "http://kv.vault.azure.net/secrets/s/versions",
            "https://kv.vault.azure.net:8443/secrets/s/versions",
            "/secrets/s/versions",
        ] {
            assert!(c.next_page(elsewhere, "o").is_err(), "{elsewhere}");
        }
    }
}

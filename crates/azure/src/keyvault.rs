//! The Key Vault operations the provider needs, behind a small trait, and what they return.
//! keyvol's implementation speaks the REST API itself ([`crate::rest::RestKeyVault`]); tests put
//! fakes behind the same trait.
//!
//! Errors are [`AzureError`]s built from the status and the service's error code and message.
//! Response bodies of successful calls (which hold secret values) never reach an error message.

use async_trait::async_trait;
use keyvol_core::Sensitive;

use crate::error::AzureError;
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
    /// Lists the vault's objects of one kind, each with its current version's attributes,
    /// following every page; fails once more than `max` have been listed. Needs the vault's
    /// `list` permission on that kind.
    async fn list_objects(
        &self,
        kind: ObjectType,
        max: usize,
    ) -> Result<Vec<ObjectInfo>, AzureError>;
}

/// One object of a vault's listing (wildcard objectName).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// The object's name, in Key Vault's syntax (items whose id holds anything else are
    /// dropped: a name from the vault becomes a URL path and a file name).
    pub name: String,
    /// Whether its current version is enabled; `None` when the listing carried no attributes.
    pub enabled: Option<bool>,
}

/// The object name in a listed id, `https://<vault>/<kind>/<name>[/<version>]`, when it is in
/// Key Vault's syntax.
pub fn name_in_id(id: &str) -> Option<&str> {
    let path = id.split_once("://")?.1.split_once('/')?.1;
    let mut segments = path.split('/');
    segments.next()?;
    segments
        .next()
        .filter(|n| crate::objects::is_object_name(n))
}

/// Who a client authenticates as, for error messages: never a secret.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Log-safe label of the identity (mode and client id).
    pub identity: String,
    /// URL of the identity's token endpoint.
    pub token_endpoint: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_ids_give_names_only_in_key_vaults_syntax() {
        assert_eq!(
            name_in_id("https://kv.vault.azure.net/secrets/db-1"),
            Some("db-1")
        );
        assert_eq!(
            name_in_id("https://kv.vault.azure.net:8443/keys/k/0123456789abcdef0123456789abcdef"),
            Some("k")
        );
        for bad in [
            "https://kv.vault.azure.net/secrets/a%2F..",
            "https://kv.vault.azure.net/secrets/",
            "https://kv.vault.azure.net/secrets",
            "https://kv.vault.azure.net/secrets/a_b",
            "no-scheme/secrets/a",
        ] {
            assert_eq!(name_in_id(bad), None, "{bad}");
        }
    }
}

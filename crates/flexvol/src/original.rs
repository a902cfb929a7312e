//! The original driver's file formats, so applications written against `azure/kv` keep reading
//! the same bytes, and the provider adapter that writes them.
//!
//! | Object type | What the original wrote | What this writes |
//! |---|---|---|
//! | `secret` | the value as stored (a certificate's secret: its base64 PFX, or its PEM) | the same |
//! | `cert` | the leaf certificate's DER bytes | the same |
//! | `key` | the RSA modulus as a base64url string; EC keys crashed the driver | the public key as a `PUBLIC KEY` PEM, RSA and EC |
//!
//! The key is the one deliberate difference: a bare modulus is not a usable key and EC keys
//! never worked, so no application can depend on the old bytes.

use async_trait::async_trait;
use keyvol_azure::format::Fetched;
use keyvol_azure::jwk::public_key_pem;
use keyvol_azure::keyvault::version_of;
use keyvol_azure::provider::FetchedObject;
use keyvol_azure::{AzureError, AzureProvider};
use keyvol_core::{
    MountRequest, MountResponse, ObjectVersion, Provider, ProviderError, ProviderFile, Sensitive,
};

/// The bytes the original driver would have written for one fetched object (keys excepted, see
/// the module documentation).
pub fn render(fetched: &FetchedObject) -> Result<Vec<u8>, AzureError> {
    match fetched.fetched.as_ref() {
        Fetched::Secret(secret) => Ok(secret.value.expose().as_bytes().to_vec()),
        Fetched::Cert(cert) => Ok(cert.cer.clone()),
        Fetched::Key(key) => public_key_pem(key).map_err(|e| AzureError::Format {
            object: format!("key/{}", fetched.object.name),
            reason: e.to_string(),
        }),
    }
}

fn version(fetched: &Fetched) -> &str {
    match fetched {
        Fetched::Secret(s) => version_of(&s.id),
        Fetched::Key(k) => version_of(&k.kid),
        Fetched::Cert(c) => version_of(&c.id),
    }
}

/// The Azure provider with the original driver's formats: fetches through
/// [`AzureProvider::fetch_bundles`] (same identities, caches and retries as the CSI path) and
/// renders with [`render`]. Files get the request's default mode.
pub struct OriginalFormat<'a> {
    provider: &'a AzureProvider,
}

impl<'a> OriginalFormat<'a> {
    /// Wraps `provider`.
    pub fn new(provider: &'a AzureProvider) -> Self {
        Self { provider }
    }
}

#[async_trait]
impl Provider for OriginalFormat<'_> {
    async fn mount(&self, request: MountRequest) -> Result<MountResponse, ProviderError> {
        let fetched = self.provider.fetch_bundles(&request).await?;
        let mut response = MountResponse::default();
        for f in &fetched {
            response.files.push(ProviderFile {
                path: f.object.file.clone(),
                mode: f.object.file_permission.unwrap_or(request.default_mode),
                contents: Sensitive::new(render(f)?),
            });
            response.object_versions.push(ObjectVersion {
                id: format!("{}/{}", f.object.object_type.as_str(), f.object.name),
                version: version(&f.fetched).to_owned(),
            });
        }
        Ok(response)
    }

    fn runtime(&self) -> (&'static str, &'static str) {
        self.provider.runtime()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use keyvol_azure::keyvault::{CertificateBundle, KeyBundle, SecretBundle};
    use keyvol_azure::objects::{KeyVaultObject, ObjectEncoding, ObjectFormat, ObjectType};
    use keyvol_core::RelPath;

    use super::*;

    fn fetched(object_type: ObjectType, f: Fetched) -> FetchedObject {
        FetchedObject {
            object: KeyVaultObject {
                name: "o".into(),
                file: RelPath::new("o").expect("path"),
                object_type,
                version: String::new(),
                version_history: 0,
                format: ObjectFormat::Pem,
                encoding: ObjectEncoding::Utf8,
                file_permission: None,
                extensions: Default::default(),
            },
            fetched: Arc::new(f),
        }
    }

    #[test]
    fn secrets_are_written_as_stored_even_when_they_back_a_certificate() {
        let pfx_b64 = "MIIKZAIBAzCCCiAGCSqGSIb3DQEHAaCCChEEggoN";
        let f = fetched(
            ObjectType::Secret,
            Fetched::Secret(SecretBundle {
                value: Sensitive::new(pfx_b64.into()),
                id: "https://kv.vault.azure.net/secrets/o/abc".into(),
                content_type: Some("application/x-pkcs12".into()),
                kid: Some("https://kv.vault.azure.net/keys/o/abc".into()),
            }),
        );
        assert_eq!(render(&f).expect("renders"), pfx_b64.as_bytes());
        assert_eq!(version(&f.fetched), "abc");
    }

    #[test]
    fn certificates_are_written_as_der() {
        let der = vec![0x30, 0x82, 0x01, 0x0a, 0x02];
        let f = fetched(
            ObjectType::Cert,
            Fetched::Cert(CertificateBundle {
                id: "https://kv.vault.azure.net/certificates/o/v1".into(),
                cer: der.clone(),
            }),
        );
        assert_eq!(render(&f).expect("renders"), der);
    }

    #[test]
    fn keys_are_written_as_public_key_pem_and_unsupported_ones_fail_by_name() {
        // A P-256 point (the generator), so the conversion has a real point to check.
        let x = hex_bytes("6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296");
        let y = hex_bytes("4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5");
        let f = fetched(
            ObjectType::Key,
            Fetched::Key(KeyBundle {
                kid: "https://kv.vault.azure.net/keys/o/v2".into(),
                kty: "EC".into(),
                crv: Some("P-256".into()),
                x: Some(x),
                y: Some(y),
                ..KeyBundle::default()
            }),
        );
        let pem = String::from_utf8(render(&f).expect("renders")).expect("text");
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"), "{pem}");
        let f = fetched(
            ObjectType::Key,
            Fetched::Key(KeyBundle {
                kid: "https://kv.vault.azure.net/keys/o/v3".into(),
                kty: "oct".into(),
                ..KeyBundle::default()
            }),
        );
        assert_eq!(
            render(&f).expect_err("oct").to_string(),
            "failed to convert key/o: key type 'oct' currently not supported"
        );
    }

    fn hex_bytes(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }
}

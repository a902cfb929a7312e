//! Turning what the vault returned into file bytes, as upstream's provider does: secret
//! encodings (utf-8, base64, hex) and certificate-backed secrets by content type.

use base64::Engine;

use crate::error::AzureError;
use crate::keyvault::SecretBundle;
use crate::objects::{KeyVaultObject, ObjectEncoding, ObjectFormat};

/// Content type of PEM certificate secrets.
pub const CONTENT_TYPE_PEM: &str = "application/x-pem-file";
/// Content type of PKCS#12 certificate secrets.
pub const CONTENT_TYPE_PFX: &str = "application/x-pkcs12";

/// The bytes to write for a `secret` object.
pub fn secret_bytes(object: &KeyVaultObject, bundle: &SecretBundle) -> Result<Vec<u8>, AzureError> {
    let id = format!("secret/{}", object.name);
    let raw = bundle.value.expose();
    let content: Vec<u8> = if bundle.kid.is_some() {
        match bundle.content_type.as_deref() {
            Some(CONTENT_TYPE_PEM) => raw.as_bytes().to_vec(),
            Some(CONTENT_TYPE_PFX) if object.format == ObjectFormat::Pfx => raw.as_bytes().to_vec(),
            Some(CONTENT_TYPE_PFX) => {
                return Err(AzureError::Unsupported(format!(
                    "{id}: converting a PKCS#12 certificate secret to PEM is not implemented yet; set objectFormat: pfx"
                )));
            }
            other => {
                return Err(AzureError::Format {
                    object: id,
                    reason: format!(
                        "unknown content type {:?} on a certificate-backed secret",
                        other.unwrap_or("")
                    ),
                });
            }
        }
    } else {
        raw.as_bytes().to_vec()
    };
    decode(&id, object.encoding, content)
}

fn decode(id: &str, encoding: ObjectEncoding, content: Vec<u8>) -> Result<Vec<u8>, AzureError> {
    match encoding {
        ObjectEncoding::Utf8 => Ok(content),
        ObjectEncoding::Base64 => base64::engine::general_purpose::STANDARD
            .decode(&content)
            .map_err(|_| AzureError::Format {
                object: id.to_owned(),
                reason: "objectEncoding is base64 but the value is not valid standard base64"
                    .into(),
            }),
        ObjectEncoding::Hex => hex::decode(&content).map_err(|_| AzureError::Format {
            object: id.to_owned(),
            reason: "objectEncoding is hex but the value is not valid hex".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyvol_core::{RelPath, Sensitive};

    fn object(encoding: ObjectEncoding) -> KeyVaultObject {
        KeyVaultObject {
            name: "s".into(),
            file: RelPath::new("s").expect("path"),
            object_type: crate::objects::ObjectType::Secret,
            version: String::new(),
            version_history: 0,
            format: ObjectFormat::Pem,
            encoding,
            file_permission: None,
        }
    }

    fn bundle(value: &str) -> SecretBundle {
        SecretBundle {
            value: Sensitive::new(value.into()),
            id: "https://kv/secrets/s/v1".into(),
            content_type: None,
            kid: None,
        }
    }

    #[test]
    fn encodings_decode_and_errors_hide_the_value() {
        assert_eq!(
            secret_bytes(&object(ObjectEncoding::Utf8), &bundle("héllo")).expect("utf8"),
            "héllo".as_bytes()
        );
        assert_eq!(
            secret_bytes(&object(ObjectEncoding::Base64), &bundle("aGk=")).expect("b64"),
            b"hi"
        );
        assert_eq!(
            secret_bytes(&object(ObjectEncoding::Hex), &bundle("6869")).expect("hex"),
            b"hi"
        );
        let err =
            secret_bytes(&object(ObjectEncoding::Hex), &bundle("topsecret")).expect_err("bad hex");
        assert!(!err.to_string().contains("topsecret"), "{err}");
    }
}

//! Turning what the vault returned into file bytes, as upstream's provider does: secret
//! encodings (utf-8, base64, hex), certificate-backed secrets by content type (PEM as stored,
//! PKCS#12 converted to PEM or kept as PFX), keys as `PUBLIC KEY` PEM, certificates as the leaf
//! `CERTIFICATE` PEM, and the optional separate `.crt` / `.key` files.

use base64::Engine;
use keyvol_core::RelPath;

use crate::error::AzureError;
use crate::jwk::public_key_pem;
use crate::keyvault::{CertificateBundle, KeyBundle, SecretBundle};
use crate::objects::{KeyVaultObject, ObjectEncoding, ObjectFormat};
use crate::pemfile::{encode_pem, parse_blocks};
use crate::pfx_pem::pfx_to_pem;

/// Content type of PEM certificate secrets.
pub const CONTENT_TYPE_PEM: &str = "application/x-pem-file";
/// Content type of PKCS#12 certificate secrets.
pub const CONTENT_TYPE_PFX: &str = "application/x-pkcs12";

/// Output switches, from the provider's command line (upstream's flags of the same names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FormatOptions {
    /// `--construct-pem-chain` (default true): order PEM chains leaf → root.
    pub construct_pem_chain: bool,
    /// `--write-cert-and-key-in-separate-files` (default false): also write `<file>.crt` and
    /// `<file>.key` for certificate-backed secrets.
    pub separate_cert_and_key: bool,
}

impl Default for FormatOptions {
    fn default() -> Self {
        Self {
            construct_pem_chain: true,
            separate_cert_and_key: false,
        }
    }
}

/// What was fetched for one object version.
pub enum Fetched {
    /// A secret.
    Secret(SecretBundle),
    /// A key.
    Key(KeyBundle),
    /// A certificate.
    Cert(CertificateBundle),
}

/// The files one fetched object version becomes, in order; `file` is where the main file goes.
pub fn render(
    object: &KeyVaultObject,
    file: &RelPath,
    fetched: &Fetched,
    options: FormatOptions,
) -> Result<Vec<(RelPath, Vec<u8>)>, AzureError> {
    let id = format!("{}/{}", object.object_type.as_str(), object.name);
    let format_err = |reason: String| AzureError::Format {
        object: id.clone(),
        reason,
    };
    match fetched {
        Fetched::Key(key) => Ok(vec![(
            file.clone(),
            public_key_pem(key).map_err(|e| format_err(e.to_string()))?,
        )]),
        Fetched::Cert(cert) => Ok(vec![(
            file.clone(),
            encode_pem("CERTIFICATE", &cert.cer).into_bytes(),
        )]),
        Fetched::Secret(secret) => {
            let mut files = Vec::new();
            let raw = secret.value.expose();
            let content: Vec<u8> = if secret.kid.is_some() {
                match secret.content_type.as_deref() {
                    Some(CONTENT_TYPE_PEM) => {
                        if options.separate_cert_and_key {
                            let blocks = parse_blocks(raw.as_bytes()).map_err(format_err)?;
                            let certs: String = blocks
                                .iter()
                                .filter(|b| b.tag == "CERTIFICATE")
                                .map(|b| encode_pem(&b.tag, &b.der))
                                .collect();
                            let keys: String = blocks
                                .iter()
                                .filter(|b| b.tag != "CERTIFICATE")
                                .map(|b| encode_pem(&b.tag, &b.der))
                                .collect();
                            push_split(&mut files, file, certs, keys, &format_err)?;
                        }
                        raw.as_bytes().to_vec()
                    }
                    Some(CONTENT_TYPE_PFX) if object.format == ObjectFormat::Pfx => {
                        raw.as_bytes().to_vec()
                    }
                    Some(CONTENT_TYPE_PFX) => {
                        let pfx = base64::engine::general_purpose::STANDARD
                            .decode(raw.trim())
                            .map_err(|_| {
                                format_err(
                                    "the PKCS#12 certificate secret is not valid base64".into(),
                                )
                            })?;
                        let parts =
                            pfx_to_pem(&pfx, options.construct_pem_chain).map_err(format_err)?;
                        if parts.chain == Some(crate::chain::ChainOrder::Stored) {
                            tracing::warn!(object = %id, "certificate chain is incomplete; writing it in the order Key Vault stored it");
                        }
                        if options.separate_cert_and_key {
                            push_split(
                                &mut files,
                                file,
                                parts.certs.concat(),
                                parts.keys.concat(),
                                &format_err,
                            )?;
                        }
                        parts.combined().into_bytes()
                    }
                    other => {
                        return Err(format_err(format!(
                            "unknown content type '{}' on a certificate-backed secret",
                            other.unwrap_or("")
                        )));
                    }
                }
            } else {
                raw.as_bytes().to_vec()
            };
            files.push((file.clone(), decode(&id, object.encoding, content)?));
            Ok(files)
        }
    }
}

/// Adds `<file>.crt` and `<file>.key` before the main file; never writes an empty one.
fn push_split(
    files: &mut Vec<(RelPath, Vec<u8>)>,
    file: &RelPath,
    certs: String,
    keys: String,
    format_err: &dyn Fn(String) -> AzureError,
) -> Result<(), AzureError> {
    for (suffix, text) in [("crt", certs), ("key", keys)] {
        if text.is_empty() {
            continue;
        }
        let path =
            RelPath::new(&format!("{file}.{suffix}")).map_err(|e| format_err(e.to_string()))?;
        files.push((path, text.into_bytes()));
    }
    Ok(())
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
    use keyvol_core::Sensitive;

    fn object(encoding: ObjectEncoding, format: ObjectFormat) -> KeyVaultObject {
        KeyVaultObject {
            name: "s".into(),
            file: RelPath::new("s").expect("path"),
            object_type: crate::objects::ObjectType::Secret,
            version: String::new(),
            version_history: 0,
            format,
            encoding,
            file_permission: None,
            extensions: Default::default(),
        }
    }

    fn secret(value: &str, content_type: Option<&str>, kid: bool) -> Fetched {
        Fetched::Secret(SecretBundle {
            value: Sensitive::new(value.into()),
            id: "https://kv/secrets/s/v1".into(),
            content_type: content_type.map(str::to_owned),
            kid: kid.then(|| "https://kv/keys/s/v1".to_owned()),
        })
    }

    fn one(o: &KeyVaultObject, f: &Fetched) -> Result<Vec<u8>, AzureError> {
        render(o, &o.file, f, FormatOptions::default()).map(|mut v| v.remove(0).1)
    }

    #[test]
    fn encodings_decode_and_errors_hide_the_value() {
        assert_eq!(
            one(
                &object(ObjectEncoding::Utf8, ObjectFormat::Pem),
                &secret("héllo", None, false)
            )
            .expect("utf8"),
            "héllo".as_bytes()
        );
        assert_eq!(
            one(
                &object(ObjectEncoding::Base64, ObjectFormat::Pem),
                &secret("aGk=", None, false)
            )
            .expect("b64"),
            b"hi"
        );
        assert_eq!(
            one(
                &object(ObjectEncoding::Hex, ObjectFormat::Pem),
                &secret("6869", None, false)
            )
            .expect("hex"),
            b"hi"
        );
        let err = one(
            &object(ObjectEncoding::Hex, ObjectFormat::Pem),
            &secret("topsecret", None, false),
        )
        .expect_err("bad hex");
        assert!(!err.to_string().contains("topsecret"), "{err}");
    }

    #[test]
    fn certificate_secrets_follow_their_content_type() {
        let o = object(ObjectEncoding::Utf8, ObjectFormat::Pem);
        let pem = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert_eq!(
            one(&o, &secret(pem, Some(CONTENT_TYPE_PEM), true)).expect("pem"),
            pem.as_bytes()
        );
        let err = one(&o, &secret("x", Some("text/plain"), true)).expect_err("unknown");
        assert!(
            err.to_string()
                .contains("unknown content type 'text/plain'"),
            "{err}"
        );
        let pfx = object(ObjectEncoding::Utf8, ObjectFormat::Pfx);
        assert_eq!(
            one(&pfx, &secret("UEZY", Some(CONTENT_TYPE_PFX), true)).expect("pfx"),
            b"UEZY"
        );
        let pfx_bin = object(ObjectEncoding::Base64, ObjectFormat::Pfx);
        assert_eq!(
            one(&pfx_bin, &secret("UEZY", Some(CONTENT_TYPE_PFX), true)).expect("pfx"),
            b"PFX"
        );
    }

    #[test]
    fn split_files_are_never_empty() {
        let o = object(ObjectEncoding::Utf8, ObjectFormat::Pfx);
        let opts = FormatOptions {
            separate_cert_and_key: true,
            ..FormatOptions::default()
        };
        // A PFX kept as PFX has no PEM blocks to split: only the main file (upstream wrote two
        // empty files here, A#1277).
        let files = render(
            &o,
            &o.file,
            &secret("UEZY", Some(CONTENT_TYPE_PFX), true),
            opts,
        )
        .expect("renders");
        assert_eq!(files.len(), 1);
    }
}

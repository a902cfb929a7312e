//! Sync to Kubernetes Secrets (`spec.secretObjects`): after a mount or refresh, the mounted files
//! named by each secret object become a Secret's data — labelled
//! `secrets-store.csi.k8s.io/managed=true`, with the class's labels and annotations, owned by
//! the pod's owners (or the pod status when the pod has none) so garbage collection removes it.
//!
//! Unlike upstream: owner references are merged, never dropped by an update (#2051); a Secret
//! keyvol did not create (no managed label) is never overwritten (#499); one failing object never
//! stops the others (#733).

use std::collections::BTreeMap;
use std::path::Path;

use der::{Decode, Encode};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use crate::cluster::{Cluster, ClusterError, SecretOutcome};
pub use crate::crd::MANAGED_LABEL;
use crate::crd::{SecretObject, SecretProviderClass};
/// Event reason of a failed sync (upstream's).
pub const FAILED_REASON: &str = "FailedToCreateSecret";
/// Secret type with the `tls.key` / `tls.crt` split.
pub const TLS_TYPE: &str = "kubernetes.io/tls";

/// Why one secret object (or the whole sync) failed. Messages name files and keys, never
/// contents.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// secretName, type or data is empty.
    #[error("secretObjects[{index}]: {what} is empty")]
    Incomplete {
        /// Index in `secretObjects`.
        index: usize,
        /// The missing field.
        what: &'static str,
    },
    /// `objectName` names no mounted file.
    #[error("secretObjects[{index}].data[{data}]: objectName {object:?} is not a mounted file")]
    NotMounted {
        /// Index in `secretObjects`.
        index: usize,
        /// Index in `data`.
        data: usize,
        /// The object name.
        object: String,
    },
    /// The file cannot be split into a TLS key and certificate.
    #[error("secretObjects[{index}]: {reason}")]
    Tls {
        /// Index in `secretObjects`.
        index: usize,
        /// What is wrong.
        reason: String,
    },
    /// A Secret of that name exists and was not created by the driver.
    #[error(
        "secret {name} exists and is not managed by the driver (no {MANAGED_LABEL}=true label); leaving it alone"
    )]
    NotManaged {
        /// Secret name.
        name: String,
    },
    /// The mounted files could not be read back.
    #[error("failed to read the mounted files for secretObjects")]
    ReadMounted {
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The owners for the synced Secrets (the pod's, or the pod status) could not be read.
    #[error("failed to get the owners of pod {namespace}/{pod}")]
    Owners {
        /// Namespace.
        namespace: String,
        /// Pod name.
        pod: String,
        /// The cause.
        #[source]
        source: ClusterError,
    },
    /// The API refused the Secret.
    #[error("failed to apply secret {name}")]
    Apply {
        /// Secret name.
        name: String,
        /// The cause.
        #[source]
        source: ClusterError,
    },
}

/// The Secret one secret object describes, from the mounted files (relative path → bytes).
pub fn build_secret(
    index: usize,
    object: &SecretObject,
    namespace: &str,
    files: &BTreeMap<String, Vec<u8>>,
    owners: &[OwnerReference],
) -> Result<Secret, SyncError> {
    if object.secret_name.is_empty() {
        return Err(SyncError::Incomplete {
            index,
            what: "secretName",
        });
    }
    if object.secret_type.is_empty() {
        return Err(SyncError::Incomplete {
            index,
            what: "type",
        });
    }
    if object.data.is_empty() {
        return Err(SyncError::Incomplete {
            index,
            what: "data",
        });
    }
    let mut data = BTreeMap::new();
    for (j, d) in object.data.iter().enumerate() {
        let bytes = files
            .get(&d.object_name)
            .ok_or_else(|| SyncError::NotMounted {
                index,
                data: j,
                object: d.object_name.clone(),
            })?;
        if object.secret_type == TLS_TYPE {
            let (key, cert) =
                tls_split(bytes).map_err(|reason| SyncError::Tls { index, reason })?;
            data.insert("tls.key".to_owned(), ByteString(key));
            data.insert("tls.crt".to_owned(), ByteString(cert));
        } else {
            data.insert(d.key.clone(), ByteString(bytes.clone()));
        }
    }
    let mut labels = object.labels.clone();
    labels.insert(MANAGED_LABEL.to_owned(), "true".to_owned());
    Ok(Secret {
        metadata: ObjectMeta {
            name: Some(object.secret_name.clone()),
            namespace: Some(namespace.to_owned()),
            labels: Some(labels),
            annotations: (!object.annotations.is_empty()).then(|| object.annotations.clone()),
            owner_references: Some(owners.to_vec()),
            ..ObjectMeta::default()
        },
        data: Some(data),
        type_: Some(object.secret_type.clone()),
        ..Secret::default()
    })
}

/// Splits a PEM bundle into `tls.key` (the private key as PKCS#1 `RSA PRIVATE KEY` or SEC1
/// `EC PRIVATE KEY`, as upstream normalises it) and `tls.crt` (every certificate, in order).
pub fn tls_split(pem_bytes: &[u8]) -> Result<(Vec<u8>, Vec<u8>), String> {
    let blocks = pem::parse_many(pem_bytes).map_err(|_| {
        "the file is not PEM (PFX is not supported for kubernetes.io/tls)".to_owned()
    })?;
    let mut key = None;
    let mut certs = String::new();
    let cfg = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
    for b in &blocks {
        match b.tag() {
            "CERTIFICATE" => certs.push_str(&pem::encode_config(b, cfg)),
            "RSA PRIVATE KEY" | "EC PRIVATE KEY" if key.is_none() => {
                key = Some(pem::encode_config(b, cfg))
            }
            "PRIVATE KEY" if key.is_none() => key = Some(pkcs8_to_traditional(b.contents())?),
            _ => {}
        }
    }
    let key = key.ok_or_else(|| "no private key in the file".to_owned())?;
    if certs.is_empty() {
        return Err("no certificate in the file".into());
    }
    Ok((key.into_bytes(), certs.into_bytes()))
}

const RSA_OID: der::oid::ObjectIdentifier =
    der::oid::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const EC_OID: der::oid::ObjectIdentifier =
    der::oid::ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");

fn pkcs8_to_traditional(der_bytes: &[u8]) -> Result<String, String> {
    let info = pkcs8::PrivateKeyInfoRef::from_der(der_bytes)
        .map_err(|_| "the private key is not PKCS#8".to_owned())?;
    let cfg = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
    if info.algorithm.oid == RSA_OID {
        return Ok(pem::encode_config(
            &pem::Pem::new("RSA PRIVATE KEY", info.private_key.as_bytes().to_vec()),
            cfg,
        ));
    }
    if info.algorithm.oid == EC_OID {
        let curve = info
            .algorithm
            .parameters
            .and_then(|p| p.decode_as::<der::oid::ObjectIdentifier>().ok())
            .ok_or_else(|| "the EC key names no curve".to_owned())?;
        let inner = sec1::EcPrivateKey::from_der(info.private_key.as_bytes())
            .map_err(|_| "the EC key is malformed".to_owned())?;
        // SEC1 with the named curve inside, as Go's MarshalECPrivateKey writes it.
        let with_curve = sec1::EcPrivateKey {
            parameters: Some(sec1::EcParameters::NamedCurve(curve)),
            ..inner
        };
        let out = with_curve
            .to_der()
            .map_err(|_| "the EC key cannot be re-encoded".to_owned())?;
        return Ok(pem::encode_config(
            &pem::Pem::new("EC PRIVATE KEY", out),
            cfg,
        ));
    }
    Err(format!(
        "private key algorithm {} is not supported for kubernetes.io/tls",
        info.algorithm.oid
    ))
}

/// Syncs every secret object of `class` for one pod's volume. Failures are reported per object
/// (and as Warning events on the pod); they never fail the mount.
pub async fn sync_secrets(
    cluster: &dyn Cluster,
    class: &SecretProviderClass,
    namespace: &str,
    pod_name: &str,
    pod_uid: &str,
    pod_status_name: &str,
    target: &Path,
) -> SyncReport {
    let mut report = SyncReport::default();
    if class.spec.secret_objects.is_empty() {
        return report;
    }
    // The volume's files are read back on the blocking pool, not on the async runtime.
    let reader = keyvol_core::AtomicWriter::new(target);
    let files = match tokio::task::spawn_blocking(move || reader.read_current()).await {
        Ok(Ok(f)) => f,
        Ok(Err(source)) => {
            report.errors.push(SyncError::ReadMounted { source });
            return report;
        }
        Err(_) => {
            report.errors.push(SyncError::ReadMounted {
                source: std::io::Error::other("the read of the volume's files did not complete"),
            });
            return report;
        }
    };
    // Owners: the pod's owners, or the pod status when the pod has none (upstream's rule).
    let owners_error = |source: ClusterError| SyncError::Owners {
        namespace: namespace.to_owned(),
        pod: pod_name.to_owned(),
        source,
    };
    let owners = match cluster.pod_owners(namespace, pod_name).await {
        Ok(o) if !o.is_empty() => o,
        Ok(_) => match cluster.pod_status_owner(namespace, pod_status_name).await {
            Ok(o) => vec![o],
            Err(e) => {
                report.errors.push(owners_error(e));
                return report;
            }
        },
        Err(e) => {
            report.errors.push(owners_error(e));
            return report;
        }
    };
    for (i, object) in class.spec.secret_objects.iter().enumerate() {
        let result = match build_secret(i, object, namespace, &files, &owners) {
            Ok(secret) => match cluster.apply_secret(secret).await {
                Ok(SecretOutcome::NotManaged) => Err(SyncError::NotManaged {
                    name: object.secret_name.clone(),
                }),
                Ok(outcome) => {
                    tracing::info!(secret = %object.secret_name, namespace, ?outcome, "synced secret");
                    report.synced += 1;
                    Ok(())
                }
                Err(source) => Err(SyncError::Apply {
                    name: object.secret_name.clone(),
                    source,
                }),
            },
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            // Names, codes and the API server's messages only: never a Secret's data.
            let message = keyvol_core::report::chain(&e);
            tracing::warn!(error = %message, namespace, pod = pod_name, "secret sync failed");
            let _ = cluster
                .event(
                    namespace,
                    pod_name,
                    pod_uid,
                    crate::cluster::EventType::Warning,
                    FAILED_REASON,
                    &message,
                )
                .await;
            report.errors.push(e);
        }
    }
    report
}

/// What one sync did.
#[derive(Debug, Default)]
pub struct SyncReport {
    /// Secrets created or updated.
    pub synced: usize,
    /// What failed, each already logged and evented.
    pub errors: Vec<SyncError>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::SecretObjectData;

    fn chain_pem() -> (String, String) {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
        let cert = rcgen::CertificateParams::new(vec!["a.example".into()])
            .expect("params")
            .self_signed(&key)
            .expect("cert");
        (format!("{}{}", key.serialize_pem(), cert.pem()), cert.pem())
    }

    #[test]
    fn tls_secrets_split_key_and_certificate() {
        let (bundle, cert) = chain_pem();
        let (key, crt) = tls_split(bundle.as_bytes()).expect("splits");
        assert!(
            String::from_utf8(key)
                .expect("utf8")
                .starts_with("-----BEGIN EC PRIVATE KEY-----\n")
        );
        assert_eq!(String::from_utf8(crt).expect("utf8"), cert);
        assert!(tls_split(b"not pem").is_err());
    }

    #[test]
    fn build_secret_maps_objects_to_keys_and_names_missing_files() {
        let object = SecretObject {
            secret_name: "s".into(),
            secret_type: "Opaque".into(),
            labels: BTreeMap::from([("app".to_owned(), "x".to_owned())]),
            data: vec![SecretObjectData {
                object_name: "dir/a".into(),
                key: "A".into(),
            }],
            ..SecretObject::default()
        };
        let files = BTreeMap::from([("dir/a".to_owned(), b"va".to_vec())]);
        let s = build_secret(0, &object, "ns", &files, &[]).expect("builds");
        assert_eq!(
            s.data
                .as_ref()
                .and_then(|d| d.get("A"))
                .map(|b| b.0.clone()),
            Some(b"va".to_vec())
        );
        let labels = s.metadata.labels.expect("labels");
        assert_eq!(labels.get(MANAGED_LABEL).map(String::as_str), Some("true"));
        assert_eq!(labels.get("app").map(String::as_str), Some("x"));
        let err = build_secret(3, &object, "ns", &BTreeMap::new(), &[]).expect_err("missing");
        assert_eq!(
            err.to_string(),
            "secretObjects[3].data[0]: objectName \"dir/a\" is not a mounted file"
        );
        let incomplete = SecretObject {
            secret_type: String::new(),
            ..object
        };
        assert_eq!(
            build_secret(1, &incomplete, "ns", &files, &[])
                .expect_err("no type")
                .to_string(),
            "secretObjects[1]: type is empty"
        );
    }
}

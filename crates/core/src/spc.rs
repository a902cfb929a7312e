//! The SecretProviderClass manifest: parsing `secrets-store.csi.x-k8s.io/v1` and `v1alpha1`
//! documents into a typed value, with errors that name the offending field.

use std::collections::BTreeMap;

use serde_json::Value;

/// API group of the SecretProviderClass kinds.
pub const GROUP: &str = "secrets-store.csi.x-k8s.io";
/// Kind name of the class.
pub const KIND: &str = "SecretProviderClass";
/// Served API versions; `v1` is the storage version, `v1alpha1` is deprecated but served.
pub const API_VERSIONS: [&str; 2] = [
    "secrets-store.csi.x-k8s.io/v1",
    "secrets-store.csi.x-k8s.io/v1alpha1",
];

/// Why a manifest could not be turned into a SecretProviderClass.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpcError {
    /// The text is not YAML (or JSON).
    #[error("failed to parse manifest: {message}")]
    Syntax {
        /// Parser message, without a snippet of the input.
        message: String,
    },
    /// No document of kind SecretProviderClass was found.
    #[error("no SecretProviderClass found in the manifest")]
    NotFound,
    /// Several classes were found and none was selected by name.
    #[error("the manifest holds {count} SecretProviderClasses ({names}); choose one by name")]
    Ambiguous {
        /// How many there were.
        count: usize,
        /// Their names, comma-separated.
        names: String,
    },
    /// A field is missing or has the wrong shape.
    #[error("{field}: {reason}")]
    Field {
        /// Path of the field, e.g. `spec.parameters.objects`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl SpcError {
    fn field(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Field {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// One `spec.secretObjects[]` entry: a Kubernetes Secret to mirror mounted files into.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SecretObject {
    /// Name of the Secret.
    pub secret_name: String,
    /// Secret type, e.g. `Opaque` or `kubernetes.io/tls`.
    pub secret_type: String,
    /// Labels to set on the Secret.
    pub labels: BTreeMap<String, String>,
    /// Annotations to set on the Secret.
    pub annotations: BTreeMap<String, String>,
    /// Data keys and the mounted object each comes from.
    pub data: Vec<SecretObjectData>,
}

/// One `data[]` entry of a secret object.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SecretObjectData {
    /// The mounted object (its file name, i.e. alias or name).
    pub object_name: String,
    /// The key in the Secret's data.
    pub key: String,
}

/// A parsed SecretProviderClass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretProviderClass {
    /// `apiVersion` as written.
    pub api_version: String,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`, if any.
    pub namespace: Option<String>,
    /// `spec.provider`.
    pub provider: String,
    /// `spec.parameters`.
    pub parameters: BTreeMap<String, String>,
    /// `spec.secretObjects`.
    pub secret_objects: Vec<SecretObject>,
}

impl SecretProviderClass {
    /// The request a provider gets when a pod `pod_name` in `namespace` mounts this class outside
    /// a cluster (`keyvol mount`, the demo): the class parameters plus the volume-context keys
    /// kubelet would add (`secretProviderClass`, `csi.storage.k8s.io/pod.name`, `pod.namespace`,
    /// `ephemeral`), the given credentials, and the default file mode.
    pub fn mount_request(
        &self,
        pod_name: &str,
        namespace: &str,
        secrets: BTreeMap<String, crate::Sensitive<String>>,
        target: &std::path::Path,
    ) -> crate::MountRequest {
        let mut attributes = self.parameters.clone();
        attributes.insert("secretProviderClass".into(), self.name.clone());
        attributes.insert("csi.storage.k8s.io/pod.name".into(), pod_name.to_owned());
        attributes.insert(
            "csi.storage.k8s.io/pod.namespace".into(),
            namespace.to_owned(),
        );
        attributes.insert("csi.storage.k8s.io/ephemeral".into(), "true".into());
        crate::MountRequest {
            attributes,
            secrets,
            default_mode: crate::provider::DEFAULT_FILE_MODE,
            target_path: target.display().to_string(),
            current_versions: Vec::new(),
        }
    }

    /// Parses a manifest that may hold several YAML documents and picks the SecretProviderClass.
    ///
    /// With `name` set, the class of that name is chosen; otherwise the manifest must hold exactly
    /// one. Documents of other kinds (a Pod, a Secret) are skipped.
    pub fn from_manifest(text: &str, name: Option<&str>) -> Result<Self, SpcError> {
        let docs: Vec<Value> = serde_saphyr::from_multiple(text).map_err(|e| SpcError::Syntax {
            message: e
                .render_with_options(serde_saphyr::render_options! {
                    snippets: serde_saphyr::SnippetMode::Off,
                })
                .to_string(),
        })?;
        let mut classes = Vec::new();
        for (index, doc) in docs.iter().enumerate() {
            if doc.get("kind").and_then(Value::as_str) == Some(KIND) {
                classes.push((index, doc));
            }
        }
        let chosen = match name {
            Some(wanted) => classes
                .into_iter()
                .find(|(_, d)| d.pointer("/metadata/name").and_then(Value::as_str) == Some(wanted))
                .ok_or(SpcError::NotFound)?,
            None => match classes.len() {
                0 => return Err(SpcError::NotFound),
                1 => classes.remove(0),
                count => {
                    let names = classes
                        .iter()
                        .map(|(_, d)| {
                            d.pointer("/metadata/name")
                                .and_then(Value::as_str)
                                .unwrap_or("?")
                        })
                        .collect::<Vec<_>>()
                        .join(", ");
                    return Err(SpcError::Ambiguous { count, names });
                }
            },
        };
        Self::from_value(chosen.1)
    }

    /// Builds a class from one already-parsed document.
    pub fn from_value(doc: &Value) -> Result<Self, SpcError> {
        let api_version = str_field(doc, "apiVersion", "apiVersion")?
            .ok_or_else(|| SpcError::field("apiVersion", "is required"))?;
        if !API_VERSIONS.contains(&api_version.as_str()) {
            return Err(SpcError::field(
                "apiVersion",
                format!(
                    "{api_version:?} is not served; use {} or {}",
                    API_VERSIONS[0], API_VERSIONS[1]
                ),
            ));
        }
        match str_field(doc, "kind", "kind")? {
            Some(k) if k == KIND => {}
            _ => return Err(SpcError::field("kind", format!("must be {KIND}"))),
        }
        let metadata = doc
            .get("metadata")
            .ok_or_else(|| SpcError::field("metadata", "is required"))?;
        let name = str_field(metadata, "name", "metadata.name")?
            .filter(|n| !n.is_empty())
            .ok_or_else(|| SpcError::field("metadata.name", "is required"))?;
        let namespace = str_field(metadata, "namespace", "metadata.namespace")?;
        let spec = doc
            .get("spec")
            .ok_or_else(|| SpcError::field("spec", "is required"))?;
        if !spec.is_object() {
            return Err(SpcError::field("spec", "must be a mapping"));
        }
        let provider = str_field(spec, "provider", "spec.provider")?
            .filter(|p| !p.is_empty())
            .ok_or_else(|| SpcError::field("spec.provider", "is required"))?;
        let parameters = string_map(spec.get("parameters"), "spec.parameters")?;
        let mut secret_objects = Vec::new();
        match spec.get("secretObjects") {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    secret_objects.push(secret_object(item, &format!("spec.secretObjects[{i}]"))?);
                }
            }
            Some(_) => return Err(SpcError::field("spec.secretObjects", "must be a list")),
        }
        Ok(Self {
            api_version,
            name,
            namespace,
            provider,
            parameters,
            secret_objects,
        })
    }
}

fn secret_object(item: &Value, path: &str) -> Result<SecretObject, SpcError> {
    if !item.is_object() {
        return Err(SpcError::field(path, "must be a mapping"));
    }
    let mut data = Vec::new();
    match item.get("data") {
        None | Some(Value::Null) => {}
        Some(Value::Array(entries)) => {
            for (j, entry) in entries.iter().enumerate() {
                let p = format!("{path}.data[{j}]");
                data.push(SecretObjectData {
                    object_name: str_field(entry, "objectName", &format!("{p}.objectName"))?
                        .unwrap_or_default(),
                    key: str_field(entry, "key", &format!("{p}.key"))?.unwrap_or_default(),
                });
            }
        }
        Some(_) => return Err(SpcError::field(format!("{path}.data"), "must be a list")),
    }
    Ok(SecretObject {
        secret_name: str_field(item, "secretName", &format!("{path}.secretName"))?
            .unwrap_or_default(),
        secret_type: str_field(item, "type", &format!("{path}.type"))?.unwrap_or_default(),
        labels: string_map(item.get("labels"), &format!("{path}.labels"))?,
        annotations: string_map(item.get("annotations"), &format!("{path}.annotations"))?,
        data,
    })
}

/// Reads an optional string field; any other type is an error naming `path`.
fn str_field(parent: &Value, key: &str, path: &str) -> Result<Option<String>, SpcError> {
    match parent.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(SpcError::field(
            path,
            format!("must be a string, found {}", type_name(other)),
        )),
    }
}

/// Reads a map of strings, as Kubernetes stores `map[string]string` fields.
fn string_map(value: Option<&Value>, path: &str) -> Result<BTreeMap<String, String>, SpcError> {
    let mut out = BTreeMap::new();
    match value {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (k, v) in map {
                match v {
                    Value::String(s) => {
                        out.insert(k.clone(), s.clone());
                    }
                    other => {
                        return Err(SpcError::field(
                            format!("{path}.{k}"),
                            format!(
                                "must be a string, found {} (quote the value)",
                                type_name(other)
                            ),
                        ));
                    }
                }
            }
        }
        Some(other) => {
            return Err(SpcError::field(
                path,
                format!("must be a mapping, found {}", type_name(other)),
            ));
        }
    }
    Ok(out)
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: &str = r#"
apiVersion: secrets-store.csi.x-k8s.io/v1
kind: SecretProviderClass
metadata:
  name: azure-kvname
  namespace: default
spec:
  provider: azure
  secretObjects:
  - secretName: foosecret
    type: Opaque
    labels:
      environment: test
    data:
    - objectName: secretalias
      key: username
  parameters:
    usePodIdentity: "false"
    keyvaultName: "kvname"
    objects: |
      array:
        - |
          objectName: secret1
          objectType: secret
    tenantId: "tid"
"#;

    #[test]
    fn parses_a_v1_class_with_secret_objects() {
        let spc = SecretProviderClass::from_manifest(V1, None).expect("parses");
        assert_eq!(spc.name, "azure-kvname");
        assert_eq!(spc.namespace.as_deref(), Some("default"));
        assert_eq!(spc.provider, "azure");
        assert_eq!(
            spc.parameters.get("keyvaultName").map(String::as_str),
            Some("kvname")
        );
        assert!(spc.parameters["objects"].contains("objectName: secret1"));
        assert_eq!(spc.secret_objects.len(), 1);
        assert_eq!(spc.secret_objects[0].data[0].key, "username");
        assert_eq!(spc.secret_objects[0].labels["environment"], "test");
    }

    #[test]
    fn parses_v1alpha1_and_skips_other_documents() {
        let text = format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n---\n{}",
            V1.replace("/v1\n", "/v1alpha1\n")
        );
        let spc = SecretProviderClass::from_manifest(&text, None).expect("parses");
        assert_eq!(spc.api_version, "secrets-store.csi.x-k8s.io/v1alpha1");
    }

    #[test]
    fn errors_name_the_field() {
        let bad = V1.replace("usePodIdentity: \"false\"", "usePodIdentity: false");
        let err = SecretProviderClass::from_manifest(&bad, None).expect_err("rejects");
        assert_eq!(
            err.to_string(),
            "spec.parameters.usePodIdentity: must be a string, found a boolean (quote the value)"
        );

        let bad = V1.replace("  provider: azure\n", "");
        let err = SecretProviderClass::from_manifest(&bad, None).expect_err("rejects");
        assert_eq!(err.to_string(), "spec.provider: is required");

        let bad = V1.replace(
            "secrets-store.csi.x-k8s.io/v1",
            "secrets-store.csi.x-k8s.io/v2",
        );
        let err = SecretProviderClass::from_manifest(&bad, None).expect_err("rejects");
        assert!(err.to_string().starts_with("apiVersion: "), "{err}");

        let bad = V1.replace("secretName: foosecret", "secretName: [1]");
        let err = SecretProviderClass::from_manifest(&bad, None).expect_err("rejects");
        assert_eq!(
            err.to_string(),
            "spec.secretObjects[0].secretName: must be a string, found a list"
        );
    }

    #[test]
    fn several_classes_need_a_name() {
        let two = format!("{V1}\n---\n{}", V1.replace("azure-kvname", "other"));
        assert!(matches!(
            SecretProviderClass::from_manifest(&two, None),
            Err(SpcError::Ambiguous { count: 2, .. })
        ));
        let spc = SecretProviderClass::from_manifest(&two, Some("other")).expect("found");
        assert_eq!(spc.name, "other");
    }

    #[test]
    fn syntax_errors_do_not_echo_the_input() {
        let err = SecretProviderClass::from_manifest("a: [unclosed\nsecret: hunter2", None)
            .expect_err("rejects");
        assert!(matches!(err, SpcError::Syntax { .. }));
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
}

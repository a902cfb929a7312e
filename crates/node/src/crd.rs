//! The two custom resources of `secrets-store.csi.x-k8s.io`, as Rust types: SecretProviderClass
//! (`v1` storage, `v1alpha1` served and deprecated) and SecretProviderClassPodStatus (status only,
//! no spec, no status subresource — as upstream). The CRD YAML is generated from these types
//! (`keyvol crd`).

use std::collections::BTreeMap;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::CustomResource;
use kube::core::crd::merge_crds;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// API group.
pub const GROUP: &str = "secrets-store.csi.x-k8s.io";
/// Label upstream puts on every SecretProviderClassPodStatus: the node that mounted the volume.
pub const NODE_LABEL: &str = "internal.secrets-store.csi.k8s.io/node-name";

/// One `secretObjects[].data[]` entry.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretObjectData {
    /// Name of the mounted object (its file name).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub object_name: String,
    /// Key in the Secret's data.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub key: String,
}

/// One `secretObjects[]` entry: a Kubernetes Secret to mirror mounted files into.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretObject {
    /// Name of the Secret.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub secret_name: String,
    /// Secret type.
    #[serde(default, rename = "type", skip_serializing_if = "String::is_empty")]
    pub secret_type: String,
    /// Labels for the Secret.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations for the Secret.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Data keys and their objects.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data: Vec<SecretObjectData>,
}

/// `v1` SecretProviderClass.
pub mod v1 {
    use super::*;

    /// The spec of a SecretProviderClass.
    #[derive(
        CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema,
    )]
    #[kube(
        group = "secrets-store.csi.x-k8s.io",
        version = "v1",
        kind = "SecretProviderClass",
        namespaced
    )]
    #[kube(status = "SecretProviderClassStatus")]
    #[serde(rename_all = "camelCase")]
    pub struct SecretProviderClassSpec {
        /// Provider name: `azure`, or the name of an external provider's socket.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        pub provider: String,
        /// Provider parameters.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        pub parameters: BTreeMap<String, String>,
        /// Secrets to mirror mounted files into.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub secret_objects: Vec<SecretObject>,
    }

    /// Status of a SecretProviderClass (empty in v1, kept for schema compatibility).
    #[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
    pub struct SecretProviderClassStatus {}
}

/// `v1alpha1` SecretProviderClass (same shape; deprecated).
pub mod v1alpha1 {
    use super::*;

    /// The spec of a v1alpha1 SecretProviderClass.
    #[derive(
        CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema,
    )]
    #[kube(
        group = "secrets-store.csi.x-k8s.io",
        version = "v1alpha1",
        kind = "SecretProviderClass",
        namespaced
    )]
    #[kube(
        deprecated = "secrets-store.csi.x-k8s.io/v1alpha1 is deprecated. Use secrets-store.csi.x-k8s.io/v1"
    )]
    #[serde(rename_all = "camelCase")]
    pub struct SecretProviderClassSpec {
        /// Provider name.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        pub provider: String,
        /// Provider parameters.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        pub parameters: BTreeMap<String, String>,
        /// Secrets to mirror mounted files into.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub secret_objects: Vec<SecretObject>,
    }
}

pub use v1::{SecretProviderClass, SecretProviderClassSpec};

/// `status.objects[]` of a SecretProviderClassPodStatus.
#[derive(
    Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, JsonSchema,
)]
pub struct SecretProviderClassObject {
    /// Object id, e.g. `secret/db-password`.
    #[serde(default)]
    pub id: String,
    /// Version mounted.
    #[serde(default)]
    pub version: String,
}

/// The status of one pod's mount of one class.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretProviderClassPodStatusStatus {
    /// Pod name.
    #[serde(default)]
    pub pod_name: String,
    /// Class name.
    #[serde(default)]
    pub secret_provider_class_name: String,
    /// Whether the volume is mounted.
    #[serde(default)]
    pub mounted: bool,
    /// kubelet's target path of the volume.
    #[serde(default)]
    pub target_path: String,
    /// Mounted object versions, sorted by id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub objects: Vec<SecretProviderClassObject>,
}

/// SecretProviderClassPodStatus: metadata and status only, like upstream's type.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SecretProviderClassPodStatus {
    /// `secrets-store.csi.x-k8s.io/v1`.
    #[serde(default = "pod_status_api_version")]
    pub api_version: String,
    /// `SecretProviderClassPodStatus`.
    #[serde(default = "pod_status_kind")]
    pub kind: String,
    /// Standard metadata.
    pub metadata: ObjectMeta,
    /// The status.
    #[serde(default)]
    pub status: SecretProviderClassPodStatusStatus,
}

fn pod_status_api_version() -> String {
    format!("{GROUP}/v1")
}

fn pod_status_kind() -> String {
    "SecretProviderClassPodStatus".into()
}

impl Default for SecretProviderClassPodStatus {
    fn default() -> Self {
        Self {
            api_version: pod_status_api_version(),
            kind: pod_status_kind(),
            metadata: ObjectMeta::default(),
            status: SecretProviderClassPodStatusStatus::default(),
        }
    }
}

impl kube::Resource for SecretProviderClassPodStatus {
    type DynamicType = ();
    type Scope = kube::core::NamespaceResourceScope;

    fn kind(_: &()) -> std::borrow::Cow<'_, str> {
        "SecretProviderClassPodStatus".into()
    }
    fn group(_: &()) -> std::borrow::Cow<'_, str> {
        GROUP.into()
    }
    fn version(_: &()) -> std::borrow::Cow<'_, str> {
        "v1".into()
    }
    fn plural(_: &()) -> std::borrow::Cow<'_, str> {
        "secretproviderclasspodstatuses".into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// Upstream's name for a pod's status object: `<pod>-<namespace>-<class>`.
pub fn pod_status_name(pod: &str, namespace: &str, class: &str) -> String {
    format!("{pod}-{namespace}-{class}")
}

/// Why CRD generation failed.
#[derive(Debug, thiserror::Error)]
#[error("failed to build the CRDs: {0}")]
pub struct CrdError(String);

/// The SecretProviderClass CRD with both versions (v1 stored).
pub fn secret_provider_class_crd() -> Result<CustomResourceDefinition, CrdError> {
    use kube::CustomResourceExt;
    merge_crds(
        vec![
            v1::SecretProviderClass::crd(),
            v1alpha1::SecretProviderClass::crd(),
        ],
        "v1",
    )
    .map_err(|e| CrdError(e.to_string()))
}

/// The SecretProviderClassPodStatus CRD: v1 stored and v1alpha1 served, status-only schema.
pub fn pod_status_crd() -> Result<CustomResourceDefinition, CrdError> {
    let schema = schemars::schema_for!(SecretProviderClassPodStatusStatus);
    let status = serde_json::to_value(&schema).map_err(|e| CrdError(e.to_string()))?;
    let version = |name: &str, storage: bool| {
        serde_json::json!({
            "name": name,
            "served": true,
            "storage": storage,
            "schema": { "openAPIV3Schema": {
                "type": "object",
                "description": "SecretProviderClassPodStatus is the Schema for the secretproviderclassespodstatus API",
                "properties": {
                    "apiVersion": {"type": "string"},
                    "kind": {"type": "string"},
                    "metadata": {"type": "object"},
                    "status": strip_schema_meta(status.clone()),
                }
            }}
        })
    };
    let crd = serde_json::json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": { "name": format!("secretproviderclasspodstatuses.{GROUP}") },
        "spec": {
            "group": GROUP,
            "names": {
                "kind": "SecretProviderClassPodStatus",
                "listKind": "SecretProviderClassPodStatusList",
                "plural": "secretproviderclasspodstatuses",
                "singular": "secretproviderclasspodstatus",
            },
            "scope": "Namespaced",
            "versions": [version("v1", true), version("v1alpha1", false)],
        }
    });
    serde_json::from_value(crd).map_err(|e| CrdError(e.to_string()))
}

/// Drops `$schema`/`title`/`definitions` keys that CRD schemas do not accept, inlining nothing
/// (the status type has no references).
fn strip_schema_meta(mut v: serde_json::Value) -> serde_json::Value {
    if let Some(o) = v.as_object_mut() {
        o.remove("$schema");
        o.remove("title");
        o.remove("$defs");
        o.remove("definitions");
    }
    v
}

/// Both CRDs as a multi-document YAML stream.
pub fn crds_yaml() -> Result<String, CrdError> {
    let mut out = String::new();
    for crd in [secret_provider_class_crd()?, pod_status_crd()?] {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(&crd).map_err(|e| CrdError(e.to_string()))?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_class_crd_serves_v1_and_deprecated_v1alpha1() {
        let crd = secret_provider_class_crd().expect("crd");
        assert_eq!(
            crd.metadata.name.as_deref(),
            Some("secretproviderclasses.secrets-store.csi.x-k8s.io")
        );
        assert_eq!(crd.spec.scope, "Namespaced");
        assert_eq!(crd.spec.names.plural, "secretproviderclasses");
        let versions: Vec<(String, bool, bool)> = crd
            .spec
            .versions
            .iter()
            .map(|v| (v.name.clone(), v.served, v.storage))
            .collect();
        assert_eq!(
            versions,
            [("v1".into(), true, true), ("v1alpha1".into(), true, false)]
        );
        assert_eq!(crd.spec.versions[1].deprecated, Some(true));
    }

    #[test]
    fn the_pod_status_crd_has_no_spec_and_no_subresource() {
        let crd = pod_status_crd().expect("crd");
        let v1 = &crd.spec.versions[0];
        assert!(v1.subresources.is_none());
        let schema = serde_json::to_value(v1.schema.as_ref().expect("schema")).expect("json");
        let props = &schema["openAPIV3Schema"]["properties"];
        assert!(props.get("spec").is_none());
        assert_eq!(
            props["status"]["properties"]["secretProviderClassName"]["type"],
            "string"
        );
        assert!(
            crds_yaml()
                .expect("yaml")
                .contains("kind: CustomResourceDefinition")
        );
    }

    #[test]
    fn upstream_example_classes_deserialize_into_the_types() {
        // Shaped like upstream's examples (keyvault-secrets and the sync-as-secret docs).
        let v1: SecretProviderClass = serde_saphyr::from_str(
            "apiVersion: secrets-store.csi.x-k8s.io/v1\nkind: SecretProviderClass\nmetadata:\n  name: azure-sync\n  namespace: default\nspec:\n  provider: azure\n  secretObjects:\n  - data:\n    - key: username\n      objectName: foo1\n    secretName: foosecret\n    type: Opaque\n    labels:\n      environment: test\n  parameters:\n    usePodIdentity: \"false\"\n    keyvaultName: kvname\n    objects: |\n      array:\n        - |\n          objectName: foo1\n          objectType: secret\n    tenantId: tid\n",
        )
        .expect("v1 example");
        assert_eq!(v1.spec.secret_objects[0].data[0].key, "username");
        let alpha: v1alpha1::SecretProviderClass = serde_saphyr::from_str(
            "apiVersion: secrets-store.csi.x-k8s.io/v1alpha1\nkind: SecretProviderClass\nmetadata:\n  name: a\nspec:\n  provider: azure\n  parameters:\n    keyvaultName: kv\n",
        )
        .expect("v1alpha1 example");
        assert_eq!(alpha.spec.provider, "azure");
    }
}

//! SecretProviderClass parameters of the `azure` provider, parsed into typed values and fully
//! validated before any network call, with upstream's names, defaults and case rules.

use std::collections::BTreeMap;
use std::path::Path;

use crate::cloud::Cloud;
use crate::error::AzureError;
use crate::objects::{KeyVaultObject, edit_distance, is_vault_name, parse_objects};

/// Volume-context key with the pod name (injected by kubelet with `podInfoOnMount`).
pub const POD_NAME: &str = "csi.storage.k8s.io/pod.name";
/// Volume-context key with the pod namespace.
pub const POD_NAMESPACE: &str = "csi.storage.k8s.io/pod.namespace";
/// Volume-context key with the service-account tokens (JSON keyed by audience).
pub const SA_TOKENS: &str = "csi.storage.k8s.io/serviceAccount.tokens";

/// Parameter keys the upstream provider reads.
const KNOWN: [&str; 13] = [
    "keyvaultName",
    "tenantId",
    "tenantID",
    "cloudName",
    "cloudEnvFileName",
    "usePodIdentity",
    "useVMManagedIdentity",
    "useAzureTokenProxy",
    "userAssignedIdentityID",
    "clientID",
    "objects",
    "resourceGroup",
    "subscriptionId",
];

/// Which identity fetches the objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentityMode {
    /// A service principal from the nodePublishSecretRef (`clientid`, `clientsecret`).
    ServicePrincipal,
    /// Workload identity: the pod's service-account token exchanged for `client_id`.
    WorkloadIdentity {
        /// Client id of the federated application or managed identity.
        client_id: String,
    },
    /// The node's managed identity through IMDS; `None` means system-assigned.
    VmManagedIdentity {
        /// Client id of a user-assigned identity.
        user_assigned_client_id: Option<String>,
    },
    /// AAD Pod Identity through the node's NMI.
    PodIdentity,
}

impl IdentityMode {
    /// Upstream's name for the mode, used in messages.
    pub fn name(&self) -> &'static str {
        match self {
            IdentityMode::ServicePrincipal => "ServicePrincipal",
            IdentityMode::WorkloadIdentity { .. } => "WorkloadIdentity",
            IdentityMode::VmManagedIdentity { .. } => "VMManagedIdentity",
            IdentityMode::PodIdentity => "PodIdentity",
        }
    }
}

/// Everything one mount needs, validated.
#[derive(Debug, Clone)]
pub struct AzureParams {
    /// `keyvaultName`.
    pub vault_name: String,
    /// `tenantID`, else `tenantId`.
    pub tenant_id: String,
    /// The cloud (`cloudName`, or `cloudEnvFileName` for custom clouds).
    pub cloud: Cloud,
    /// The identity mode.
    pub identity: IdentityMode,
    /// The objects to fetch.
    pub objects: Vec<KeyVaultObject>,
    /// Pod name.
    pub pod_name: String,
    /// Pod namespace.
    pub pod_namespace: String,
    /// Advice about keys that look misspelled.
    pub warnings: Vec<String>,
}

fn invalid(field: &str, reason: impl Into<String>) -> AzureError {
    AzureError::InvalidParameter {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Go's `strconv.ParseBool`, with the empty string meaning false (upstream's rule).
fn parse_bool(attrs: &BTreeMap<String, String>, key: &str) -> Result<bool, AzureError> {
    match attrs.get(key).map(|v| v.trim()).unwrap_or("") {
        "" | "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        other => Err(invalid(
            key,
            format!("{other:?} is not a boolean (true or false)"),
        )),
    }
}

fn get<'a>(attrs: &'a BTreeMap<String, String>, key: &str) -> &'a str {
    attrs.get(key).map(|v| v.trim()).unwrap_or("")
}

impl AzureParams {
    /// Parses the merged attributes of a mount request.
    ///
    /// `default_cloud` is the provider's `--cloud-name`; `cloud_env_dir` its `--cloud-env-dir`,
    /// the only directory `cloudEnvFileName` may name a file in (`None`: custom clouds off).
    pub fn parse(
        attrs: &BTreeMap<String, String>,
        default_cloud: &str,
        cloud_env_dir: Option<&Path>,
    ) -> Result<Self, AzureError> {
        let pod_name = get(attrs, POD_NAME).to_owned();
        if pod_name.is_empty() {
            return Err(invalid(POD_NAME, "pod name is not provided"));
        }
        let pod_namespace = get(attrs, POD_NAMESPACE).to_owned();
        if pod_namespace.is_empty() {
            return Err(invalid(POD_NAMESPACE, "pod namespace is not provided"));
        }

        let use_pod_identity = parse_bool(attrs, "usePodIdentity")?;
        let use_vm_mi = parse_bool(attrs, "useVMManagedIdentity")?;
        let use_token_proxy = parse_bool(attrs, "useAzureTokenProxy")?;
        if [use_pod_identity, use_vm_mi, use_token_proxy]
            .iter()
            .filter(|b| **b)
            .count()
            > 1
        {
            return Err(invalid(
                "usePodIdentity",
                "only one identity mode can be enabled at a time: usePodIdentity, useVMManagedIdentity, or useAzureTokenProxy",
            ));
        }

        let vault_name = get(attrs, "keyvaultName").to_owned();
        if vault_name.is_empty() {
            return Err(invalid("keyvaultName", "keyvaultName is not provided"));
        }
        if !is_vault_name(&vault_name) {
            return Err(invalid(
                "keyvaultName",
                format!("Invalid vault name: {vault_name:?}, must match [-a-zA-Z0-9]{{3,24}}"),
            ));
        }

        let tenant_id = match get(attrs, "tenantID") {
            "" => get(attrs, "tenantId").to_owned(),
            t => t.to_owned(),
        };
        if tenant_id.is_empty() {
            return Err(invalid("tenantId", "tenantId is not provided"));
        }

        let env_file = get(attrs, "cloudEnvFileName");
        let cloud_name = match get(attrs, "cloudName") {
            "" => default_cloud,
            n => n,
        };
        let cloud = if !env_file.is_empty() && cloud_name.eq_ignore_ascii_case("AzureStackCloud") {
            Cloud::from_env_file(cloud_env_dir, env_file)
                .map_err(|e| invalid("cloudEnvFileName", keyvol_core::report::chain(&e)))?
        } else if cloud_name.eq_ignore_ascii_case("AzureStackCloud") {
            return Err(invalid(
                "cloudEnvFileName",
                "is required when cloudName is AzureStackCloud",
            ));
        } else {
            Cloud::by_name(cloud_name).ok_or_else(|| {
                invalid(
                    "cloudName",
                    format!("{cloud_name:?} is not one of AzurePublicCloud, AzureUSGovernmentCloud, AzureChinaCloud, AzureGermanCloud, AzureStackCloud"),
                )
            })?
        };

        let client_id = get(attrs, "clientID").to_owned();
        let identity = if use_pod_identity {
            IdentityMode::PodIdentity
        } else if use_vm_mi {
            let id = get(attrs, "userAssignedIdentityID");
            IdentityMode::VmManagedIdentity {
                user_assigned_client_id: (!id.is_empty()).then(|| id.to_owned()),
            }
        } else if use_token_proxy {
            return Err(AzureError::Unsupported(
                "useAzureTokenProxy (AKS identity binding) is not supported by keyvol; use clientID with workload identity".into(),
            ));
        } else if !client_id.is_empty() {
            IdentityMode::WorkloadIdentity { client_id }
        } else {
            IdentityMode::ServicePrincipal
        };

        let parsed = parse_objects(attrs.get("objects").map(String::as_str).unwrap_or(""))?;
        let mut warnings = parsed.warnings;
        for key in attrs.keys() {
            if key.contains('/')
                || KNOWN.contains(&key.as_str())
                || key == "secretProviderClass"
                || key == "providerName"
            {
                continue;
            }
            if let Some(known) = KNOWN.iter().find(|k| {
                k.eq_ignore_ascii_case(key)
                    || edit_distance(&k.to_ascii_lowercase(), &key.to_ascii_lowercase()) <= 2
            }) {
                warnings.push(format!(
                    "{key}: unknown parameter, did you mean {known}? (ignored, as upstream does)"
                ));
            }
        }
        Ok(Self {
            vault_name,
            tenant_id,
            cloud,
            identity,
            objects: parsed.objects,
            pod_name,
            pod_namespace,
            warnings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(extra: &[(&str, &str)]) -> BTreeMap<String, String> {
        let mut m: BTreeMap<String, String> = [
            (POD_NAME, "p"),
            (POD_NAMESPACE, "ns"),
            ("keyvaultName", "kv1"),
            ("tenantId", "t-old"),
            (
                "objects",
                "array:\n  - |\n    objectName: s\n    objectType: secret\n",
            ),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in extra {
            m.insert(k.to_string(), v.to_string());
        }
        m
    }

    #[test]
    fn defaults_are_upstreams() {
        let p = AzureParams::parse(&attrs(&[]), "AzurePublicCloud", None).expect("parses");
        assert_eq!(p.identity, IdentityMode::ServicePrincipal);
        assert_eq!(p.cloud.name, "AzurePublicCloud");
        assert_eq!(p.tenant_id, "t-old");
    }

    #[test]
    fn tenant_id_upper_case_wins() {
        let p = AzureParams::parse(&attrs(&[("tenantID", "t-new")]), "AzurePublicCloud", None)
            .expect("parses");
        assert_eq!(p.tenant_id, "t-new");
    }

    #[test]
    fn identity_decision_tree_follows_upstream() {
        let p = AzureParams::parse(&attrs(&[("clientID", "wi")]), "AzurePublicCloud", None)
            .expect("parses");
        assert_eq!(
            p.identity,
            IdentityMode::WorkloadIdentity {
                client_id: "wi".into()
            }
        );
        let p = AzureParams::parse(
            &attrs(&[
                ("useVMManagedIdentity", "true"),
                ("userAssignedIdentityID", "u"),
            ]),
            "AzurePublicCloud",
            None,
        )
        .expect("parses");
        assert_eq!(
            p.identity,
            IdentityMode::VmManagedIdentity {
                user_assigned_client_id: Some("u".into())
            }
        );
        let p = AzureParams::parse(
            &attrs(&[("usePodIdentity", "True")]),
            "AzurePublicCloud",
            None,
        )
        .expect("parses");
        assert_eq!(p.identity, IdentityMode::PodIdentity);
        let err = AzureParams::parse(
            &attrs(&[("usePodIdentity", "true"), ("useVMManagedIdentity", "1")]),
            "AzurePublicCloud",
            None,
        )
        .expect_err("two modes");
        assert!(err.to_string().contains("only one identity mode"), "{err}");
    }

    #[test]
    fn bad_values_name_the_parameter() {
        let cases = [
            (
                attrs(&[("keyvaultName", "")]),
                "keyvaultName: keyvaultName is not provided",
            ),
            (
                attrs(&[("keyvaultName", "a_b")]),
                "keyvaultName: Invalid vault name: \"a_b\", must match [-a-zA-Z0-9]{3,24}",
            ),
            (
                attrs(&[("tenantId", "")]),
                "tenantId: tenantId is not provided",
            ),
            (
                attrs(&[("usePodIdentity", "yes")]),
                "usePodIdentity: \"yes\" is not a boolean (true or false)",
            ),
            (
                attrs(&[(POD_NAME, "")]),
                "csi.storage.k8s.io/pod.name: pod name is not provided",
            ),
        ];
        for (a, want) in cases {
            assert_eq!(
                AzureParams::parse(&a, "AzurePublicCloud", None)
                    .expect_err(want)
                    .to_string(),
                want
            );
        }
        let err = AzureParams::parse(&attrs(&[("cloudName", "Mars")]), "AzurePublicCloud", None)
            .expect_err("cloud");
        assert!(
            err.to_string()
                .starts_with("cloudName: \"Mars\" is not one of"),
            "{err}"
        );
    }

    #[test]
    fn misspelled_parameters_are_reported() {
        // Upstream silently ignores userAssignedIdentityId and falls back to system-assigned (A#853).
        let p = AzureParams::parse(
            &attrs(&[
                ("useVMManagedIdentity", "true"),
                ("userAssignedIdentityId", "u"),
            ]),
            "AzurePublicCloud",
            None,
        )
        .expect("parses");
        assert_eq!(
            p.identity,
            IdentityMode::VmManagedIdentity {
                user_assigned_client_id: None
            }
        );
        assert_eq!(p.warnings, vec!["userAssignedIdentityId: unknown parameter, did you mean userAssignedIdentityID? (ignored, as upstream does)".to_string()]);
    }
}

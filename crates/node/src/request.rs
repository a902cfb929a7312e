//! NodePublishVolume requests parsed into a typed value: the CSI fields checked as the spec and
//! upstream require, and the volume-context keys kubelet adds with `podInfoOnMount`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use keyvol_core::Sensitive;
use keyvol_proto::csi::v1 as csi;

use crate::error::NodeError;

/// Volume-context key naming the class.
pub const CLASS_KEY: &str = "secretProviderClass";
/// Pod name key.
pub const POD_NAME: &str = "csi.storage.k8s.io/pod.name";
/// Pod namespace key.
pub const POD_NAMESPACE: &str = "csi.storage.k8s.io/pod.namespace";
/// Pod UID key.
pub const POD_UID: &str = "csi.storage.k8s.io/pod.uid";
/// Service account key.
pub const SERVICE_ACCOUNT: &str = "csi.storage.k8s.io/serviceAccount.name";
/// Service-account tokens key (volume context before KEP-5538, secrets after).
pub const SA_TOKENS: &str = "csi.storage.k8s.io/serviceAccount.tokens";

/// A validated publish request. It has no `Debug`: log [`PublishRequest::summary`].
#[derive(Clone)]
pub struct PublishRequest {
    /// Volume id.
    pub volume_id: String,
    /// kubelet's target directory.
    pub target_path: PathBuf,
    /// The class named by the volume.
    pub class_name: String,
    /// Pod name.
    pub pod_name: String,
    /// Pod namespace.
    pub pod_namespace: String,
    /// Pod UID.
    pub pod_uid: String,
    /// The whole volume context (merged over the class parameters).
    pub volume_context: BTreeMap<String, String>,
    /// nodePublishSecretRef data and, with KEP-5538, service-account tokens.
    pub secrets: BTreeMap<String, Sensitive<String>>,
    /// The group the volume is for (the pod's fsGroup, which kubelet passes as the volume
    /// mount group because the node advertises VOLUME_MOUNT_GROUP).
    pub mount_group: Option<u32>,
}

impl PublishRequest {
    /// Log-safe description.
    pub fn summary(&self) -> String {
        format!(
            "volume={} target={} pod={}/{} class={}",
            self.volume_id,
            self.target_path.display(),
            self.pod_namespace,
            self.pod_name,
            self.class_name
        )
    }

    /// Parses and checks a CSI request.
    pub fn parse(req: csi::NodePublishVolumeRequest) -> Result<Self, NodeError> {
        let capability = req.volume_capability.ok_or_else(|| {
            NodeError::InvalidArgument("Volume capability missing in request".into())
        })?;
        if req.volume_id.is_empty() {
            return Err(NodeError::InvalidArgument(
                "Volume ID missing in request".into(),
            ));
        }
        if req.target_path.is_empty() {
            return Err(NodeError::InvalidArgument(
                "Target path missing in request".into(),
            ));
        }
        let mount_group = match &capability.access_type {
            Some(csi::volume_capability::AccessType::Block(_)) => {
                return Err(NodeError::InvalidArgument(
                    "block volumes are not supported: secrets are mounted as files".into(),
                ));
            }
            Some(csi::volume_capability::AccessType::Mount(m))
                if !m.volume_mount_group.is_empty() =>
            {
                Some(m.volume_mount_group.parse::<u32>().map_err(|_| {
                    NodeError::InvalidArgument(format!(
                        "volume_capability.mount.volume_mount_group {:?} is not a group id",
                        m.volume_mount_group
                    ))
                })?)
            }
            _ => None,
        };
        if req.volume_context.is_empty() {
            return Err(NodeError::InvalidArgument(
                "Volume attributes missing in request".into(),
            ));
        }
        if !req.readonly {
            return Err(NodeError::InvalidArgument(
                "Readonly is not true in request (set csi.readOnly: true on the volume)".into(),
            ));
        }
        let target_path = PathBuf::from(&req.target_path);
        if !target_path.is_absolute() {
            return Err(NodeError::InvalidArgument(format!(
                "Target path {} is not absolute",
                req.target_path
            )));
        }
        let get = |k: &str| req.volume_context.get(k).cloned().unwrap_or_default();
        let class_name = get(CLASS_KEY);
        if class_name.is_empty() {
            return Err(NodeError::InvalidArgument(format!(
                "volume attribute {CLASS_KEY} is missing (name the SecretProviderClass in volumeAttributes)"
            )));
        }
        let pod_namespace = get(POD_NAMESPACE);
        if pod_namespace.is_empty() {
            return Err(NodeError::InvalidArgument(format!(
                "volume attribute {POD_NAMESPACE} is missing (the CSIDriver must set podInfoOnMount: true)"
            )));
        }
        Ok(Self {
            volume_id: req.volume_id,
            target_path,
            class_name,
            pod_name: get(POD_NAME),
            pod_namespace,
            pod_uid: get(POD_UID),
            volume_context: req.volume_context,
            mount_group,
            secrets: req
                .secrets
                .into_iter()
                .map(|(k, v)| (k, Sensitive::new(v)))
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> csi::NodePublishVolumeRequest {
        csi::NodePublishVolumeRequest {
            volume_id: "v".into(),
            target_path: "/var/lib/kubelet/pods/u/volumes/kubernetes.io~csi/secrets/mount".into(),
            volume_capability: Some(csi::VolumeCapability {
                access_type: Some(csi::volume_capability::AccessType::Mount(Default::default())),
                access_mode: None,
            }),
            readonly: true,
            volume_context: [
                (CLASS_KEY, "spc"),
                (POD_NAME, "p"),
                (POD_NAMESPACE, "ns"),
                (POD_UID, "u"),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
            ..Default::default()
        }
    }

    fn err(r: csi::NodePublishVolumeRequest) -> String {
        match PublishRequest::parse(r) {
            Err(e) => e.to_string(),
            Ok(_) => "ok".into(),
        }
    }

    #[test]
    fn missing_fields_are_invalid_arguments_naming_them() {
        assert_eq!(
            err(csi::NodePublishVolumeRequest {
                volume_capability: None,
                ..req()
            }),
            "Volume capability missing in request"
        );
        assert_eq!(
            err(csi::NodePublishVolumeRequest {
                volume_id: String::new(),
                ..req()
            }),
            "Volume ID missing in request"
        );
        assert_eq!(
            err(csi::NodePublishVolumeRequest {
                target_path: String::new(),
                ..req()
            }),
            "Target path missing in request"
        );
        assert!(
            err(csi::NodePublishVolumeRequest {
                readonly: false,
                ..req()
            })
            .starts_with("Readonly is not true in request")
        );
        assert_eq!(
            err(csi::NodePublishVolumeRequest {
                volume_context: Default::default(),
                ..req()
            }),
            "Volume attributes missing in request"
        );
        assert_eq!(err(req()), "ok");
    }
}

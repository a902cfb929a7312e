//! Hand-written `Debug` for the generated messages that carry secrets, so that `{:?}` (in a log
//! line, a test failure, a panic) never prints them. `build.rs` tells prost not to derive
//! `Debug` for exactly these messages; prost requires one, so the crate cannot build without
//! this module.
//!
//! What is shown: ids, paths, flags, map keys, sizes. What is never shown: the values of the
//! CSI `secrets` maps, the service-account tokens kubelet puts into the volume context, the
//! provider `attributes` (which carry those tokens) and `secrets` strings, and file contents.

use std::collections::BTreeMap;
use std::fmt;

use crate::csi::v1::{NodeExpandVolumeRequest, NodePublishVolumeRequest, NodeStageVolumeRequest};
use crate::provider::v1alpha1::{File, MountRequest};

/// Volume-context key under which kubelet passes the pod's service-account tokens.
pub const SERVICE_ACCOUNT_TOKENS_KEY: &str = "csi.storage.k8s.io/serviceAccount.tokens";

/// Text shown in place of a secret value.
pub const REDACTED: &str = "<redacted>";

/// A map shown with its keys only.
struct Keys<'a>(&'a BTreeMap<String, String>);

impl fmt::Debug for Keys<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.keys().map(|key| (key, REDACTED)))
            .finish()
    }
}

/// A volume context shown in full except for the service-account tokens.
struct VolumeContext<'a>(&'a BTreeMap<String, String>);

impl fmt::Debug for VolumeContext<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(key, value)| {
                let shown = if key == SERVICE_ACCOUNT_TOKENS_KEY {
                    REDACTED
                } else {
                    value.as_str()
                };
                (key, shown)
            }))
            .finish()
    }
}

/// A byte or string payload shown by size.
struct Size(usize);

impl fmt::Debug for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} bytes>", self.0)
    }
}

impl fmt::Debug for NodeStageVolumeRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeStageVolumeRequest")
            .field("volume_id", &self.volume_id)
            .field("publish_context", &self.publish_context)
            .field("staging_target_path", &self.staging_target_path)
            .field("volume_capability", &self.volume_capability)
            .field("secrets", &Keys(&self.secrets))
            .field("volume_context", &VolumeContext(&self.volume_context))
            .finish()
    }
}

impl fmt::Debug for NodePublishVolumeRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodePublishVolumeRequest")
            .field("volume_id", &self.volume_id)
            .field("publish_context", &self.publish_context)
            .field("staging_target_path", &self.staging_target_path)
            .field("target_path", &self.target_path)
            .field("volume_capability", &self.volume_capability)
            .field("readonly", &self.readonly)
            .field("secrets", &Keys(&self.secrets))
            .field("volume_context", &VolumeContext(&self.volume_context))
            .finish()
    }
}

impl fmt::Debug for NodeExpandVolumeRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeExpandVolumeRequest")
            .field("volume_id", &self.volume_id)
            .field("volume_path", &self.volume_path)
            .field("capacity_range", &self.capacity_range)
            .field("staging_target_path", &self.staging_target_path)
            .field("volume_capability", &self.volume_capability)
            .field("secrets", &Keys(&self.secrets))
            .finish()
    }
}

impl fmt::Debug for MountRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MountRequest")
            .field("attributes", &Size(self.attributes.len()))
            .field("secrets", &Size(self.secrets.len()))
            .field("target_path", &self.target_path)
            .field("permission", &self.permission)
            .field("current_object_version", &self.current_object_version)
            .finish()
    }
}

impl fmt::Debug for File {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("File")
            .field("path", &self.path)
            .field("mode", &format_args!("{:#o}", self.mode))
            .field("contents", &Size(self.contents.len()))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::v1alpha1::{MountResponse, ObjectVersion};

    const SECRET: &str = "hunter2-very-secret";

    fn map(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
        entries
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn node_publish_debug_hides_secrets_and_tokens_but_shows_the_rest() {
        let request = NodePublishVolumeRequest {
            volume_id: "csi-123".into(),
            target_path: "/var/lib/kubelet/pods/x/volumes/kubernetes.io~csi/v/mount".into(),
            readonly: true,
            secrets: map(&[("clientsecret", SECRET)]),
            volume_context: map(&[
                ("csi.storage.k8s.io/pod.name", "web-0"),
                (SERVICE_ACCOUNT_TOKENS_KEY, SECRET),
            ]),
            ..Default::default()
        };
        let shown = format!("{request:?}");
        assert!(!shown.contains(SECRET), "{shown}");
        assert!(shown.contains("clientsecret"), "{shown}");
        assert!(shown.contains("web-0"), "{shown}");
        assert!(shown.contains("csi-123"), "{shown}");
    }

    #[test]
    fn stage_and_expand_debug_hide_secrets() {
        let stage = NodeStageVolumeRequest {
            secrets: map(&[("password", SECRET)]),
            volume_context: map(&[(SERVICE_ACCOUNT_TOKENS_KEY, SECRET)]),
            ..Default::default()
        };
        let expand = NodeExpandVolumeRequest {
            secrets: map(&[("password", SECRET)]),
            ..Default::default()
        };
        for shown in [format!("{stage:?}"), format!("{expand:?}")] {
            assert!(!shown.contains(SECRET), "{shown}");
            assert!(shown.contains("password"), "{shown}");
        }
    }

    #[test]
    fn mount_request_and_response_debug_hide_attributes_secrets_and_contents() {
        let request = MountRequest {
            attributes: format!(r#"{{"{SERVICE_ACCOUNT_TOKENS_KEY}":"{SECRET}"}}"#),
            secrets: format!(r#"{{"clientsecret":"{SECRET}"}}"#),
            target_path: "/mnt/t".into(),
            permission: "420".into(),
            current_object_version: vec![],
        };
        let response = MountResponse {
            object_version: vec![ObjectVersion {
                id: "secret/db".into(),
                version: "v7".into(),
            }],
            error: None,
            files: vec![File {
                path: "db".into(),
                mode: 0o644,
                contents: SECRET.as_bytes().to_vec(),
            }],
        };
        let shown = format!("{request:?} {response:?}");
        assert!(!shown.contains(SECRET), "{shown}");
        assert!(
            shown.contains("secret/db") && shown.contains("v7"),
            "{shown}"
        );
        assert!(shown.contains("0o644"), "{shown}");
        assert!(shown.contains("<19 bytes>"), "{shown}");
    }
}

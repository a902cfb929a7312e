//! The harness in kubelet's place: NodePublishVolume and NodeUnpublishVolume requests as kubelet
//! sends them for a `csi:` inline volume with `podInfoOnMount` and a nodePublishSecretRef, each
//! call on a connection of its own (kubelet's CSI client dials per operation), and the
//! kubelet-style target paths under the workspace.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use keyvol_proto::csi::v1 as csi;

use crate::error::BenchError;
use crate::workload::{Identity, NAMESPACE, class_name};

/// One pod's volume.
#[derive(Debug, Clone)]
pub struct Volume {
    /// CSI volume id (kubelet's `csi-<hash>`).
    pub id: String,
    /// kubelet's target directory.
    pub target: PathBuf,
    /// Pod name.
    pub pod: String,
    /// Pod UID.
    pub uid: String,
    /// Class name.
    pub class: String,
}

impl Volume {
    /// The `seq`-th volume, for the class with `objects` objects, under `pods_dir`.
    pub fn new(pods_dir: &Path, seq: u64, objects: usize) -> Self {
        let uid = format!("00000000-0000-4000-8000-{seq:012}");
        Self {
            id: format!("csi-bench-{seq:08}"),
            target: pods_dir.join(format!("{uid}/volumes/kubernetes.io~csi/secrets/mount")),
            pod: format!("app-{seq}"),
            uid,
            class: class_name(objects),
        }
    }

    /// The publish request for this volume with `identity` in its nodePublishSecretRef.
    pub fn publish_request(&self, identity: &Identity) -> csi::NodePublishVolumeRequest {
        let context: BTreeMap<String, String> = [
            ("secretProviderClass", self.class.as_str()),
            ("csi.storage.k8s.io/pod.name", self.pod.as_str()),
            ("csi.storage.k8s.io/pod.namespace", NAMESPACE),
            ("csi.storage.k8s.io/pod.uid", self.uid.as_str()),
            ("csi.storage.k8s.io/serviceAccount.name", "default"),
            ("csi.storage.k8s.io/ephemeral", "true"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        csi::NodePublishVolumeRequest {
            volume_id: self.id.clone(),
            target_path: self.target.display().to_string(),
            volume_capability: Some(csi::VolumeCapability {
                access_type: Some(csi::volume_capability::AccessType::Mount(Default::default())),
                access_mode: Some(csi::volume_capability::AccessMode {
                    mode: csi::volume_capability::access_mode::Mode::SingleNodeReaderOnly as i32,
                }),
            }),
            readonly: true,
            volume_context: context,
            secrets: BTreeMap::from([
                ("clientid".to_owned(), identity.client_id.clone()),
                ("clientsecret".to_owned(), identity.client_secret.clone()),
            ]),
            ..Default::default()
        }
    }
}

/// Connection attempts per call before giving up: a unix socket refuses connects beyond its
/// listen backlog, and gRPC clients (kubelet's included) reconnect with a backoff.
const CONNECT_ATTEMPTS: u32 = 12;
/// First wait before reconnecting; doubles per attempt (about 2 s in all).
const CONNECT_BACKOFF: Duration = Duration::from_millis(1);

/// A dialled node client, and how many connects were refused before it.
async fn client(
    socket: &Path,
) -> Result<
    (
        csi::node_client::NodeClient<keyvol_proto::tonic::transport::Channel>,
        u32,
    ),
    BenchError,
> {
    let mut refused = 0;
    let mut wait = CONNECT_BACKOFF;
    loop {
        match keyvol_proto::uds::connect(socket).await {
            Ok(channel) => return Ok((csi::node_client::NodeClient::new(channel), refused)),
            Err(source) if refused + 1 >= CONNECT_ATTEMPTS => {
                return Err(BenchError::Connect {
                    socket: socket.to_path_buf(),
                    source,
                });
            }
            Err(_) => {
                refused += 1;
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
        }
    }
}

/// One publish as the caller saw it.
#[derive(Debug, Clone, Copy)]
pub struct Published {
    /// From dialling to the answer, reconnects included.
    pub took: Duration,
    /// Connects the socket refused (and that were retried) before the call went out.
    pub refused_connects: u32,
}

/// Dials the node and publishes. First, as kubelet does before it calls NodePublishVolume, the
/// volume's directory (the target's parent, where kubelet keeps `vol_data.json`) is created;
/// the target itself is the driver's to create.
pub async fn publish(
    socket: &Path,
    request: csi::NodePublishVolumeRequest,
) -> Result<Published, BenchError> {
    if let Some(parent) = Path::new(&request.target_path).parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|source| BenchError::Write {
                path: parent.to_path_buf(),
                source,
            })?;
    }
    let started = Instant::now();
    let (mut node, refused_connects) = client(socket).await?;
    node.node_publish_volume(request)
        .await
        .map_err(|s| BenchError::call("NodePublishVolume", &s))?;
    Ok(Published {
        took: started.elapsed(),
        refused_connects,
    })
}

/// Dials the node and unpublishes.
pub async fn unpublish(socket: &Path, volume: &Volume) -> Result<(), BenchError> {
    let (mut node, _) = client(socket).await?;
    node.node_unpublish_volume(csi::NodeUnpublishVolumeRequest {
        volume_id: volume.id.clone(),
        target_path: volume.target.display().to_string(),
    })
    .await
    .map_err(|s| BenchError::call("NodeUnpublishVolume", &s))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volumes_have_kubelet_paths_and_pod_info() {
        let v = Volume::new(Path::new("/pods"), 7, 10);
        assert_eq!(
            v.target,
            Path::new(
                "/pods/00000000-0000-4000-8000-000000000007/volumes/kubernetes.io~csi/secrets/mount"
            )
        );
        let r = v.publish_request(&Identity {
            client_id: "c".into(),
            client_secret: "s".into(),
        });
        assert_eq!(r.volume_context["secretProviderClass"], "bench-10");
        assert_eq!(r.volume_context["csi.storage.k8s.io/pod.name"], "app-7");
        assert_eq!(r.secrets["clientid"], "c");
        assert!(r.readonly);
    }
}

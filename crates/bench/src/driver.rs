//! The harness in the upstream driver's place towards `keyvol provider`: Mount requests with the
//! class parameters and pod attributes as JSON, the nodePublishSecretRef as JSON and permission
//! `"420"`, over one connection that is kept (the driver caches its provider clients).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use keyvol_proto::provider::v1alpha1 as pb;
use keyvol_proto::tonic::transport::Channel;

use crate::error::BenchError;
use crate::kubelet::Volume;
use crate::workload::{Identity, NAMESPACE, class_parameters};

/// A provider client.
#[derive(Clone)]
pub struct Driver {
    client: pb::csi_driver_provider_client::CsiDriverProviderClient<Channel>,
}

impl Driver {
    /// Dials the provider socket.
    pub async fn connect(socket: &Path) -> Result<Self, BenchError> {
        let channel =
            keyvol_proto::uds::connect(socket)
                .await
                .map_err(|source| BenchError::Connect {
                    socket: socket.to_path_buf(),
                    source,
                })?;
        Ok(Self {
            client: pb::csi_driver_provider_client::CsiDriverProviderClient::new(channel),
        })
    }

    /// One Mount for `volume` (a class with `objects` objects) as `identity`; returns its time.
    /// Fails unless every object came back as a file.
    pub async fn mount(
        &mut self,
        volume: &Volume,
        objects: usize,
        identity: &Identity,
    ) -> Result<Duration, BenchError> {
        let request = mount_request(volume, objects, identity)?;
        let started = Instant::now();
        let response = self
            .client
            .mount(request)
            .await
            .map_err(|s| BenchError::call("Mount", &s))?
            .into_inner();
        let elapsed = started.elapsed();
        if response.files.len() != objects {
            return Err(BenchError::WrongAnswer {
                call: "Mount",
                expected: objects,
                got: response.files.len(),
            });
        }
        Ok(elapsed)
    }
}

/// The request the driver builds: class parameters, then the volume context kubelet sent.
fn mount_request(
    volume: &Volume,
    objects: usize,
    identity: &Identity,
) -> Result<pb::MountRequest, BenchError> {
    let mut attributes = class_parameters(objects);
    for (k, v) in [
        ("secretProviderClass", volume.class.as_str()),
        ("csi.storage.k8s.io/pod.name", volume.pod.as_str()),
        ("csi.storage.k8s.io/pod.namespace", NAMESPACE),
        ("csi.storage.k8s.io/pod.uid", volume.uid.as_str()),
        ("csi.storage.k8s.io/serviceAccount.name", "default"),
        ("csi.storage.k8s.io/ephemeral", "true"),
    ] {
        attributes.insert(k.to_owned(), v.to_owned());
    }
    let secrets = BTreeMap::from([
        ("clientid", identity.client_id.as_str()),
        ("clientsecret", identity.client_secret.as_str()),
    ]);
    Ok(pb::MountRequest {
        attributes: serde_json::to_string(&attributes)?,
        secrets: serde_json::to_string(&secrets)?,
        target_path: volume.target.display().to_string(),
        // 0644 in decimal, as the driver sends it.
        permission: "420".into(),
        current_object_version: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_requests_carry_parameters_pod_info_and_secrets_as_json() {
        let v = Volume::new(Path::new("/pods"), 1, 2);
        let r = mount_request(
            &v,
            2,
            &Identity {
                client_id: "c".into(),
                client_secret: "s".into(),
            },
        )
        .expect("request");
        let attrs: BTreeMap<String, String> = serde_json::from_str(&r.attributes).expect("json");
        assert_eq!(attrs["keyvaultName"], crate::workload::VAULT);
        assert_eq!(attrs["csi.storage.k8s.io/pod.name"], "app-1");
        assert!(attrs["objects"].contains("obj-002"));
        assert_eq!(r.secrets, r#"{"clientid":"c","clientsecret":"s"}"#);
        assert_eq!(r.permission, "420");
    }
}

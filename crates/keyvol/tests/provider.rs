//! `keyvol provider` driven over its socket the way the upstream Secrets Store CSI Driver drives
//! the upstream Azure provider: Version, then Mount with JSON attributes, secrets and permission.

mod util;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::Duration;

use keyvol_proto::provider::v1alpha1 as pb;
use keyvol_proto::tonic::Code;
use util::*;

const VAULT: &str = "keyvol-prov";

struct ProviderProc {
    child: Child,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl ProviderProc {
    fn start(vault: &DevVaultProc) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let socket = dir.path().join("azure.sock");
        let child = keyvol()
            .arg("provider")
            .arg(format!("--endpoint=unix://{}", socket.display()))
            .arg("--healthz-port=0")
            .args(vault.azure_args())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("provider starts");
        for _ in 0..100 {
            if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            child,
            socket,
            _dir: dir,
        }
    }
}

impl Drop for ProviderProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn attributes() -> String {
    let objects = "array:\n  - |\n    objectName: plain\n    objectType: secret\n  - |\n    objectName: plain\n    objectType: secret\n    objectAlias: nested/copy\n    filePermission: \"0400\"\n";
    let attrs: BTreeMap<&str, &str> = BTreeMap::from([
        ("keyvaultName", VAULT),
        ("tenantId", TENANT),
        ("objects", objects),
        ("csi.storage.k8s.io/pod.name", "app"),
        ("csi.storage.k8s.io/pod.namespace", "default"),
        ("csi.storage.k8s.io/pod.uid", "uid-1"),
        ("secretProviderClass", "spc"),
    ]);
    serde_json::to_string(&attrs).expect("json")
}

fn secrets(secret: &str) -> String {
    serde_json::to_string(&BTreeMap::from([
        ("clientid", CLIENT_ID),
        ("clientsecret", secret),
    ]))
    .expect("json")
}

#[test]
fn the_upstream_driver_can_mount_through_keyvol_provider() {
    let vault = DevVaultProc::start(&seed(&format!(
        "  - name: {VAULT}\n    secrets:\n      - name: plain\n        value: plain-value\n"
    )));
    let provider = ProviderProc::start(&vault);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    rt.block_on(async {
        let mut client = pb::csi_driver_provider_client::CsiDriverProviderClient::new(
            keyvol_proto::uds::connect(&provider.socket)
                .await
                .expect("socket"),
        );
        let v = client
            .version(pb::VersionRequest {
                version: "v1alpha1".into(),
            })
            .await
            .expect("version")
            .into_inner();
        assert_eq!(v.version, "v1alpha1");
        assert_eq!(v.runtime_name, "keyvol-azure");

        let resp = client
            .mount(pb::MountRequest {
                attributes: attributes(),
                secrets: secrets(CLIENT_SECRET),
                target_path: "/var/lib/kubelet/pods/uid-1/volumes/kubernetes.io~csi/s/mount".into(),
                permission: "420".into(),
                current_object_version: Vec::new(),
            })
            .await
            .expect("mount")
            .into_inner();
        let files: Vec<(String, i32, Vec<u8>)> = resp
            .files
            .into_iter()
            .map(|f| (f.path, f.mode, f.contents))
            .collect();
        assert_eq!(
            files,
            [
                ("plain".into(), 0o644, b"plain-value".to_vec()),
                ("nested/copy".into(), 0o400, b"plain-value".to_vec())
            ]
        );
        assert_eq!(resp.object_version.len(), 2);
        assert!(
            resp.object_version
                .iter()
                .all(|o| o.id == "secret/plain" && o.version.len() == 32)
        );

        let err = client
            .mount(pb::MountRequest {
                attributes: attributes(),
                secrets: secrets("wrong-secret-9f86d081"),
                permission: "420".into(),
                ..Default::default()
            })
            .await
            .expect_err("bad secret");
        assert_eq!(err.code(), Code::Unauthenticated);
        assert!(err.message().contains("AADSTS7000215"), "{}", err.message());
        assert!(!err.message().contains("wrong-secret-9f86d081"));

        let err = client
            .mount(pb::MountRequest {
                attributes: "not json".into(),
                secrets: secrets(CLIENT_SECRET),
                permission: "420".into(),
                ..Default::default()
            })
            .await
            .expect_err("bad attributes");
        assert_eq!(err.code(), Code::InvalidArgument);
    });
}

//! `keyvol node` with a Kubernetes API (the in-process fake API server) and the dev vault: the
//! whole NodePublishVolume path over the real CSI socket, the SecretProviderClassPodStatus it
//! records, unpublish after a restart, failures that leave nothing behind, external providers
//! (keyvol provider and a test provider), and rotation on republish.

mod util;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use keyvol_fakekube::FakeKube;
use keyvol_node::crd::SecretProviderClassPodStatus;
use keyvol_proto::csi::v1 as csi;
use keyvol_proto::provider::v1alpha1 as pb;
use keyvol_proto::tonic::{self, Code};
use serde_json::json;
use util::*;

const VAULT: &str = "keyvol-node";

fn vault_seed() -> String {
    seed(&format!(
        "  - name: {VAULT}\n    secrets:\n      - name: db-password\n        value: s3cr3t-one\n      - name: api-key\n        value: key-one\n"
    ))
}

fn objects(items: &[&str]) -> String {
    let mut s = String::from("array:\n");
    for item in items {
        s.push_str("  - |\n");
        for line in item.lines() {
            s.push_str(&format!("    {line}\n"));
        }
    }
    s
}

fn class(name: &str, provider: &str, items: &[&str]) -> serde_json::Value {
    json!({
        "apiVersion": "secrets-store.csi.x-k8s.io/v1",
        "kind": "SecretProviderClass",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "provider": provider,
            "parameters": {"keyvaultName": VAULT, "tenantId": TENANT, "objects": objects(items)},
        }
    })
}

fn publish_request(target: &Path, class: &str) -> csi::NodePublishVolumeRequest {
    csi::NodePublishVolumeRequest {
        volume_id: format!("csi-{class}"),
        target_path: target.display().to_string(),
        volume_capability: Some(csi::VolumeCapability {
            access_type: Some(csi::volume_capability::AccessType::Mount(Default::default())),
            access_mode: Some(csi::volume_capability::AccessMode {
                mode: csi::volume_capability::access_mode::Mode::SingleNodeReaderOnly as i32,
            }),
        }),
        readonly: true,
        volume_context: [
            ("secretProviderClass", class),
            ("csi.storage.k8s.io/pod.name", "app"),
            ("csi.storage.k8s.io/pod.namespace", "default"),
            ("csi.storage.k8s.io/pod.uid", "uid-1"),
            ("csi.storage.k8s.io/serviceAccount.name", "default"),
            ("csi.storage.k8s.io/ephemeral", "true"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
        secrets: BTreeMap::from([
            ("clientid".into(), CLIENT_ID.into()),
            ("clientsecret".into(), CLIENT_SECRET.into()),
        ]),
        ..Default::default()
    }
}

fn unpublish_request(target: &Path, class: &str) -> csi::NodeUnpublishVolumeRequest {
    csi::NodeUnpublishVolumeRequest {
        volume_id: format!("csi-{class}"),
        target_path: target.display().to_string(),
    }
}

fn is_mounted(p: &Path) -> bool {
    let table = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let p = p.display().to_string();
    table
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(p.as_str()))
}

/// Fake API + dev vault + node, ready for CSI calls.
struct Cluster {
    fake: FakeKube,
    vault: DevVaultProc,
    node: Option<NodeProc>,
    pods: PathBuf,
    _pods_dir: tempfile::TempDir,
}

impl Cluster {
    async fn start(extra: &[&str]) -> Self {
        let fake = FakeKube::start().await.expect("fake API");
        let vault = DevVaultProc::start(&vault_seed());
        let pods_dir = tempfile::tempdir().expect("tempdir");
        let pods = pods_dir.path().to_path_buf();
        let mut me = Self {
            fake,
            vault,
            node: None,
            pods,
            _pods_dir: pods_dir,
        };
        me.start_node(tempfile::tempdir().expect("tempdir"), extra);
        me
    }

    fn start_node(&mut self, dir: tempfile::TempDir, extra: &[&str]) {
        write_kubeconfig(dir.path(), &self.fake.url());
        let mut args: Vec<String> = self.vault.azure_args();
        args.extend(extra.iter().map(|s| s.to_string()));
        self.node = Some(NodeProc::start_in(dir, &args));
    }

    fn node(&self) -> &NodeProc {
        self.node.as_ref().expect("node running")
    }

    fn target(&self, class: &str) -> PathBuf {
        self.pods
            .join(format!("uid-1/volumes/kubernetes.io~csi/{class}/mount"))
    }

    async fn client(&self) -> csi::node_client::NodeClient<tonic::transport::Channel> {
        csi::node_client::NodeClient::new(
            keyvol_proto::uds::connect(self.node().csi_socket())
                .await
                .expect("csi socket"),
        )
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Leave no tmpfs behind, whatever the test did.
        if let Ok(entries) = std::fs::read_dir(self.pods.join("uid-1/volumes/kubernetes.io~csi")) {
            for e in entries.flatten() {
                let _ = keyvol()
                    .args(["unmount", "--target"])
                    .arg(e.path().join("mount"))
                    .output();
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_mounts_files_from_the_vault_and_records_the_pod_status() {
    let c = Cluster::start(&[]).await;
    c.fake
        .insert(&class(
            "spc",
            "azure",
            &[
                "objectName: db-password\nobjectType: secret",
                "objectName: api-key\nobjectType: secret\nobjectAlias: nested/api-key",
            ],
        ))
        .expect("class");
    let target = c.target("spc");
    let mut node = c.client().await;
    node.node_publish_volume(publish_request(&target, "spc"))
        .await
        .expect("publish");

    assert_eq!(
        std::fs::read_to_string(target.join("db-password")).expect("file"),
        "s3cr3t-one"
    );
    assert_eq!(
        std::fs::read_to_string(target.join("nested/api-key")).expect("file"),
        "key-one"
    );
    assert!(
        std::fs::read_link(target.join("..data")).is_ok(),
        "atomic-writer layout"
    );
    if is_root() {
        assert!(is_mounted(&target), "a tmpfs is mounted at the target");
    }

    let status: SecretProviderClassPodStatus = c
        .fake
        .get("default", "app-default-spc")
        .expect("read")
        .expect("pod status exists");
    assert_eq!(
        status
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("internal.secrets-store.csi.k8s.io/node-name"))
            .map(String::as_str),
        Some("node-a")
    );
    let owner = &status.metadata.owner_references.as_ref().expect("owner")[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str(), owner.uid.as_str()),
        ("Pod", "app", "uid-1")
    );
    assert!(status.status.mounted);
    assert_eq!(status.status.secret_provider_class_name, "spc");
    assert_eq!(status.status.target_path, target.display().to_string());
    let ids: Vec<&str> = status
        .status
        .objects
        .iter()
        .map(|o| o.id.as_str())
        .collect();
    assert_eq!(
        ids,
        ["secret/api-key", "secret/db-password"],
        "sorted by id"
    );

    // Idempotent: a second publish (rotation off) changes nothing.
    let data = std::fs::read_link(target.join("..data")).expect("link");
    node.node_publish_volume(publish_request(&target, "spc"))
        .await
        .expect("publish again");
    assert_eq!(
        std::fs::read_link(target.join("..data")).expect("link"),
        data
    );

    node.node_unpublish_volume(unpublish_request(&target, "spc"))
        .await
        .expect("unpublish");
    assert!(!target.exists());
    assert!(!is_mounted(&target));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unpublish_after_a_restart_finds_the_mount_in_the_mount_table() {
    let mut c = Cluster::start(&[]).await;
    c.fake
        .insert(&class(
            "spc",
            "azure",
            &["objectName: db-password\nobjectType: secret"],
        ))
        .expect("class");
    let target = c.target("spc");
    c.client()
        .await
        .node_publish_volume(publish_request(&target, "spc"))
        .await
        .expect("publish");
    let dir = c.node.take().expect("node").stop();
    c.start_node(dir, &[]);
    c.client()
        .await
        .node_unpublish_volume(unpublish_request(&target, "spc"))
        .await
        .expect("unpublish after restart");
    assert!(!target.exists() && !is_mounted(&target));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_leave_the_target_unmounted_and_clean() {
    let c = Cluster::start(&[]).await;
    let mut node = c.client().await;

    let target = c.target("missing");
    let err = node
        .node_publish_volume(publish_request(&target, "missing"))
        .await
        .expect_err("no class");
    assert_eq!(err.code(), Code::NotFound);
    assert!(
        err.message()
            .contains("failed to get secretproviderclass default/missing"),
        "{}",
        err.message()
    );

    c.fake
        .insert(&class(
            "bad",
            "azure",
            &[
                "objectName: db-password\nobjectType: secret",
                "objectName: nope\nobjectType: secret",
            ],
        ))
        .expect("class");
    let target = c.target("bad");
    let err = node
        .node_publish_volume(publish_request(&target, "bad"))
        .await
        .expect_err("missing object");
    assert_eq!(err.code(), Code::NotFound);
    assert!(err.message().contains("secret/nope"), "{}", err.message());
    assert!(!is_mounted(&target), "the tmpfs this call mounted is gone");
    assert!(
        std::fs::read_dir(&target).map(|d| d.count()).unwrap_or(0) == 0,
        "nothing written"
    );
    assert!(
        c.fake
            .get::<SecretProviderClassPodStatus>("default", "app-default-bad")
            .expect("read")
            .is_none()
    );

    // A class created after the node started is found at once (direct read on a cache miss).
    c.fake
        .insert(&class(
            "late",
            "azure",
            &["objectName: api-key\nobjectType: secret"],
        ))
        .expect("class");
    let target = c.target("late");
    node.node_publish_volume(publish_request(&target, "late"))
        .await
        .expect("late class");
    assert_eq!(
        std::fs::read_to_string(target.join("api-key")).expect("file"),
        "key-one"
    );
}

/// A provider written for this test: returns one file naming what it was asked.
struct TestProvider;

#[tonic::async_trait]
impl pb::csi_driver_provider_server::CsiDriverProvider for TestProvider {
    async fn version(
        &self,
        _: tonic::Request<pb::VersionRequest>,
    ) -> Result<tonic::Response<pb::VersionResponse>, tonic::Status> {
        Ok(tonic::Response::new(pb::VersionResponse {
            version: "v1alpha1".into(),
            runtime_name: "test".into(),
            runtime_version: "0.0.1".into(),
        }))
    }
    async fn mount(
        &self,
        req: tonic::Request<pb::MountRequest>,
    ) -> Result<tonic::Response<pb::MountResponse>, tonic::Status> {
        let r = req.into_inner();
        let attrs: BTreeMap<String, String> = serde_json::from_str(&r.attributes)
            .map_err(|e| tonic::Status::invalid_argument(e.to_string()))?;
        let secrets: BTreeMap<String, String> = serde_json::from_str(&r.secrets)
            .map_err(|e| tonic::Status::invalid_argument(e.to_string()))?;
        let summary = format!(
            "vault={} pod={} permission={} clientid={}",
            attrs.get("keyvaultName").cloned().unwrap_or_default(),
            attrs
                .get("csi.storage.k8s.io/pod.name")
                .cloned()
                .unwrap_or_default(),
            r.permission,
            secrets.get("clientid").cloned().unwrap_or_default()
        );
        Ok(tonic::Response::new(pb::MountResponse {
            object_version: vec![pb::ObjectVersion {
                id: "test/one".into(),
                version: "v7".into(),
            }],
            error: None,
            files: vec![pb::File {
                path: "dir/summary".into(),
                mode: 0o440,
                contents: summary.into_bytes(),
            }],
        }))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_providers_are_reached_over_the_provider_protocol() {
    let c = Cluster::start(&[]).await;
    let providers = c.node().dir.path().join("providers");
    std::fs::create_dir_all(&providers).expect("dir");

    // A provider no one here wrote the client for: a small tonic server on <dir>/testprov.sock.
    let listener =
        keyvol_proto::uds::UdsListener::bind(providers.join("testprov.sock")).expect("bind");
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(pb::csi_driver_provider_server::CsiDriverProviderServer::new(TestProvider))
            .serve_with_incoming(listener.into_incoming()),
    );
    c.fake
        .insert(&class(
            "ext",
            "testprov",
            &["objectName: x\nobjectType: secret"],
        ))
        .expect("class");
    let target = c.target("ext");
    let mut node = c.client().await;
    node.node_publish_volume(publish_request(&target, "ext"))
        .await
        .expect("publish via test provider");
    assert_eq!(
        std::fs::read_to_string(target.join("dir/summary")).expect("file"),
        format!("vault={VAULT} pod=app permission=420 clientid={CLIENT_ID}")
    );
    let status: SecretProviderClassPodStatus = c
        .fake
        .get("default", "app-default-ext")
        .expect("read")
        .expect("status");
    assert_eq!(status.status.objects[0].version, "v7");

    // keyvol provider under keyvol node, as it would run under the upstream driver.
    let mut provider: Child = keyvol()
        .arg("provider")
        .arg(format!(
            "--endpoint=unix://{}",
            providers.join("kvazure.sock").display()
        ))
        .arg("--healthz-port=0")
        .args(c.vault.azure_args())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("provider starts");
    for _ in 0..200 {
        if providers.join("kvazure.sock").exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    c.fake
        .insert(&class(
            "viaprov",
            "kvazure",
            &["objectName: db-password\nobjectType: secret"],
        ))
        .expect("class");
    let target = c.target("viaprov");
    let result = node
        .node_publish_volume(publish_request(&target, "viaprov"))
        .await;
    let _ = provider.kill();
    let _ = provider.wait();
    result.expect("publish via keyvol provider");
    assert_eq!(
        std::fs::read_to_string(target.join("db-password")).expect("file"),
        "s3cr3t-one"
    );

    // No socket, no provider.
    c.fake
        .insert(&class(
            "nowhere",
            "nosuchprovider",
            &["objectName: x\nobjectType: secret"],
        ))
        .expect("class");
    let err = node
        .node_publish_volume(publish_request(&c.target("nowhere"), "nowhere"))
        .await
        .expect_err("no provider");
    assert!(
        err.message().contains("provider not found"),
        "{}",
        err.message()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn republish_refreshes_after_the_poll_interval_and_keeps_files_on_failure() {
    let c = Cluster::start(&[
        "--enable-secret-rotation=true",
        "--rotation-poll-interval=1s",
    ])
    .await;
    c.fake
        .insert(&class(
            "rot",
            "azure",
            &["objectName: db-password\nobjectType: secret"],
        ))
        .expect("class");
    let target = c.target("rot");
    let mut node = c.client().await;
    node.node_publish_volume(publish_request(&target, "rot"))
        .await
        .expect("publish");
    let v1: SecretProviderClassPodStatus = c
        .fake
        .get("default", "app-default-rot")
        .expect("read")
        .expect("status");

    let new_version =
        tokio::task::block_in_place(|| c.vault.set_secret(VAULT, "db-password", "s3cr3t-two"));
    // Before the interval: skipped, old content stays.
    node.node_publish_volume(publish_request(&target, "rot"))
        .await
        .expect("republish");
    assert_eq!(
        std::fs::read_to_string(target.join("db-password")).expect("file"),
        "s3cr3t-one"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    node.node_publish_volume(publish_request(&target, "rot"))
        .await
        .expect("republish after interval");
    assert_eq!(
        std::fs::read_to_string(target.join("db-password")).expect("file"),
        "s3cr3t-two"
    );
    let v2: SecretProviderClassPodStatus = c
        .fake
        .get("default", "app-default-rot")
        .expect("read")
        .expect("status");
    assert_ne!(v1.status.objects, v2.status.objects);
    assert_eq!(v2.status.objects[0].version, new_version);

    // A failing republish (the class now names a missing object) keeps the current files.
    c.fake
        .insert(&class(
            "rot",
            "azure",
            &["objectName: gone\nobjectType: secret"],
        ))
        .expect("class update");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    node.node_publish_volume(publish_request(&target, "rot"))
        .await
        .expect("masked republish error");
    assert_eq!(
        std::fs::read_to_string(target.join("db-password")).expect("file"),
        "s3cr3t-two"
    );
}

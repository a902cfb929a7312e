//! A node with everything it talks to, for tests: the in-process fake Kubernetes API server, a
//! dev vault seeded with two secrets, and a `keyvol node` process whose pods directory is a temp
//! dir — plus the class and request builders the node tests share.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use keyvol_fakekube::FakeKube;
use keyvol_proto::csi::v1 as csi;
use keyvol_proto::tonic;
use serde_json::json;

use super::*;

pub const VAULT: &str = "keyvol-node";

pub fn vault_seed() -> String {
    seed(&format!(
        "  - name: {VAULT}\n    secrets:\n      - name: db-password\n        value: s3cr3t-one\n      - name: api-key\n        value: key-one\n"
    ))
}

pub fn objects(items: &[&str]) -> String {
    let mut s = String::from("array:\n");
    for item in items {
        s.push_str("  - |\n");
        for line in item.lines() {
            s.push_str(&format!("    {line}\n"));
        }
    }
    s
}

pub fn spc_object(name: &str, provider: &str, items: &[&str]) -> serde_json::Value {
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

pub fn is_mounted(p: &Path) -> bool {
    let table = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let p = p.display().to_string();
    table
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(p.as_str()))
}

/// Fake API + dev vault + node, ready for CSI calls.
pub struct Cluster {
    pub fake: FakeKube,
    pub vault: DevVaultProc,
    pub node: Option<NodeProc>,
    pub pods: PathBuf,
    _pods_dir: tempfile::TempDir,
}

impl Cluster {
    pub async fn start(extra: &[&str]) -> Self {
        Self::start_with_vault(DevVaultProc::start(&vault_seed()), extra).await
    }

    /// A cluster around `vault` (e.g. one started with fault rules), the node started with
    /// `extra` flags.
    pub async fn start_with_vault(vault: DevVaultProc, extra: &[&str]) -> Self {
        let fake = FakeKube::start().await.expect("fake API");
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

    pub fn start_node(&mut self, dir: tempfile::TempDir, extra: &[&str]) {
        write_kubeconfig(dir.path(), &self.fake.url());
        let mut args: Vec<String> = self.vault.azure_args();
        args.extend(extra.iter().map(|s| s.to_string()));
        self.node = Some(NodeProc::start_in(dir, &args));
    }

    pub fn node(&self) -> &NodeProc {
        self.node.as_ref().expect("node running")
    }

    pub fn target(&self, class: &str) -> PathBuf {
        self.pods
            .join(format!("uid-1/volumes/kubernetes.io~csi/{class}/mount"))
    }

    pub async fn client(&self) -> csi::node_client::NodeClient<tonic::transport::Channel> {
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

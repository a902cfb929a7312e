//! The test rig a run measures against: the dev vault (in-process, with its added-latency rule
//! and request counters), the fake Kubernetes API (in-process, holding the classes), and the
//! files and flags that point `keyvol node` and `keyvol provider` at both.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use keyvol_devvault::faults::FaultRule;
use keyvol_devvault::{DevVault, DevVaultConfig, RunningDevVault, Seed};
use keyvol_fakekube::FakeKube;

use crate::daemon::Daemon;
use crate::error::BenchError;
use crate::kubelet::Volume;
use crate::requests::RequestCounts;
use crate::workload::{self, IdentityPool};

/// The directory of kubelet-style pod directories, below the run's directory.
pub const PODS_DIR: &str = "pods";

/// The running stand-ins.
pub struct Rig {
    keyvol: PathBuf,
    dir: PathBuf,
    vault: RunningDevVault,
    kube: FakeKube,
    ca_file: PathBuf,
    kubeconfig: PathBuf,
    /// Service principals for cold samples and distinct-identity bursts.
    pub identities: IdentityPool,
    volumes: AtomicU64,
    daemons: AtomicU64,
}

fn write(path: PathBuf, text: &str) -> Result<PathBuf, BenchError> {
    std::fs::write(&path, text).map_err(|source| BenchError::Write {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

impl Rig {
    /// Starts the dev vault (`max_objects` secrets, `identities` service principals) and the
    /// fake API with a class per object count, in `dir`.
    pub async fn start(
        keyvol: &Path,
        dir: &Path,
        object_counts: &[usize],
        identities: usize,
    ) -> Result<Self, BenchError> {
        let max_objects = object_counts.iter().copied().max().unwrap_or(1);
        let seed = Seed::from_yaml(&workload::seed_yaml(max_objects, identities))?;
        let vault = DevVault::start(DevVaultConfig::new(seed)).await?;
        let ca_file = write(dir.join("dev-vault-ca.pem"), vault.ca_pem())?;
        let kube = FakeKube::start().await?;
        let mut counts = object_counts.to_vec();
        counts.sort_unstable();
        counts.dedup();
        for n in counts {
            kube.insert(&workload::class(n))?;
        }
        let kubeconfig = write(
            dir.join("kubeconfig"),
            &format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\ncurrent-context: fake\nusers:\n- name: fake\n  user: {{}}\n",
                kube.url()
            ),
        )?;
        Ok(Self {
            keyvol: keyvol.to_path_buf(),
            dir: dir.to_path_buf(),
            vault,
            kube,
            ca_file,
            kubeconfig,
            identities: IdentityPool::new(identities),
            volumes: AtomicU64::new(0),
            daemons: AtomicU64::new(0),
        })
    }

    /// Makes the dev vault add `ms` milliseconds to every Key Vault and identity request.
    pub fn set_added_latency(&self, ms: u64) -> Result<(), BenchError> {
        let rules = if ms == 0 {
            Vec::new()
        } else {
            vec![FaultRule {
                route: "*".into(),
                latency_ms: ms,
                ..FaultRule::default()
            }]
        };
        self.vault.faults().replace(rules)?;
        Ok(())
    }

    /// Forgets the dev vault's counts.
    pub fn reset_counters(&self) {
        self.vault.counters().reset();
    }

    /// What the dev vault counted since the last reset.
    pub fn counts(&self) -> RequestCounts {
        RequestCounts::from_snapshot(&self.vault.counters().snapshot())
    }

    /// Where kubelet-style pod directories go.
    pub fn pods_dir(&self) -> PathBuf {
        self.dir.join(PODS_DIR)
    }

    /// A volume no one has published, for the class with `objects` objects.
    pub fn new_volume(&self, objects: usize) -> Volume {
        let seq = self.volumes.fetch_add(1, Ordering::Relaxed);
        Volume::new(&self.pods_dir(), seq, objects)
    }

    /// Objects stored in the fake API (classes and pod statuses).
    pub fn api_objects(&self) -> usize {
        self.kube.object_count()
    }

    fn azure_flags(&self) -> Vec<OsString> {
        vec![
            "--azure-connect-to".into(),
            self.vault.addr().to_string().into(),
            "--azure-ca-file".into(),
            self.ca_file.clone().into(),
        ]
    }

    fn daemon_dir(&self, name: &str) -> Result<PathBuf, BenchError> {
        let n = self.daemons.fetch_add(1, Ordering::Relaxed);
        let dir = self.dir.join(format!("{name}-{n}"));
        std::fs::create_dir_all(&dir).map_err(|source| BenchError::Write {
            path: dir.clone(),
            source,
        })?;
        Ok(dir)
    }

    /// Starts a fresh `keyvol node` (no registration, health or metrics listeners) with
    /// `extra` flags.
    pub async fn start_node(&self, extra: &[&str]) -> Result<Daemon, BenchError> {
        let dir = self.daemon_dir("node")?;
        let socket = dir.join("csi.sock");
        let mut args: Vec<OsString> = vec![
            "node".into(),
            format!("--endpoint=unix://{}", socket.display()).into(),
            "--nodeid=bench-node".into(),
            "--plugin-registration-dir=".into(),
            "--health-addr=".into(),
            "--metrics-addr=".into(),
            format!("--provider-volume={}", dir.join("providers").display()).into(),
            "--additional-provider-volume-paths=".into(),
            "--kubeconfig".into(),
            self.kubeconfig.clone().into(),
        ];
        args.extend(self.azure_flags());
        args.extend(extra.iter().map(OsString::from));
        Daemon::start("node", &self.keyvol, args, socket).await
    }

    /// Starts a fresh `keyvol provider` (no health listener).
    pub async fn start_provider(&self) -> Result<Daemon, BenchError> {
        let dir = self.daemon_dir("provider")?;
        let socket = dir.join("azure.sock");
        let mut args: Vec<OsString> = vec![
            "provider".into(),
            format!("--endpoint=unix://{}", socket.display()).into(),
            "--healthz-port=0".into(),
            "--prometheus-port=0".into(),
        ];
        args.extend(self.azure_flags());
        Daemon::start("provider", &self.keyvol, args, socket).await
    }

    /// Stops the dev vault.
    pub async fn shutdown(self) {
        self.vault.shutdown().await;
    }
}

//! Test harness: runs the real `keyvol` binary in a clean environment, starts dev vaults
//! in-process on free ports (from `keyvol-dev dev-vault`'s own flags), and cleans up mounts.
#![allow(dead_code, clippy::unwrap_used)]

pub mod cluster;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// Path of the binary under test: this build's, or `KEYVOL_E2E_BIN` to run the suite against
/// another build (e.g. an older commit's, to see a regression test fail there).
pub fn keyvol_bin() -> PathBuf {
    std::env::var_os("KEYVOL_E2E_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_keyvol")))
}

/// A command for the binary with an empty environment (PATH only).
pub fn keyvol() -> Command {
    let mut cmd = Command::new(keyvol_bin());
    cmd.env_clear();
    if let Ok(path) = std::env::var("PATH") {
        cmd.env("PATH", path);
    }
    cmd.stdin(Stdio::null());
    cmd
}

/// Runs and captures.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("keyvol runs")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// True when the tests can mount tmpfs (CI runs as root).
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Tenant of the test seeds.
pub const TENANT: &str = "11111111-2222-3333-4444-555555555555";
/// Client of the test seeds.
pub const CLIENT_ID: &str = "e2e-client";
/// Its secret.
pub const CLIENT_SECRET: &str = "e2e-client-secret-value";

/// A dev vault running in this test process on its own thread and runtime (so it lives on
/// whatever the test does with its own runtime), started from the same flags `keyvol-dev
/// dev-vault` takes. Stopped when dropped.
pub struct DevVaultProc {
    pub addr: SocketAddr,
    /// IMDS / NMI listener, when started with `--identity-listen`.
    pub identity: Option<SocketAddr>,
    pub ca_file: PathBuf,
    pub dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl DevVaultProc {
    /// Starts a dev vault seeded with `seed_yaml`.
    pub fn start(seed_yaml: &str) -> Self {
        Self::start_with(seed_yaml, &[])
    }

    /// Starts a dev vault with extra `keyvol-dev dev-vault` flags.
    pub fn start_with(seed_yaml: &str, extra: &[&str]) -> Self {
        use clap::Parser;
        let dir = tempfile::tempdir().expect("tempdir");
        let seed = dir.path().join("seed.yaml");
        std::fs::write(&seed, seed_yaml).expect("write seed");
        let ca_file = dir.path().join("ca.pem");
        let mut argv: Vec<String> = vec![
            "dev-vault".into(),
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--seed".into(),
            seed.display().to_string(),
            "--ca-file".into(),
            ca_file.display().to_string(),
        ];
        argv.extend(extra.iter().map(|s| (*s).to_owned()));
        let args =
            keyvol_devvault::cli::DevVaultArgs::try_parse_from(argv).expect("dev-vault flags");
        let config = args.config().expect("dev-vault config");
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("dev vault runtime");
            runtime.block_on(async move {
                let running = keyvol_devvault::DevVault::start(config)
                    .await
                    .expect("dev vault starts");
                let _ = ready_tx.send((running.addr(), running.identity_addr()));
                let _ = stopped.await;
                running.shutdown().await;
            });
        });
        let (addr, identity) = ready_rx.recv().expect("dev vault ready");
        Self {
            addr,
            identity,
            ca_file,
            dir,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// `--azure-connect-to` and `--azure-ca-file` for a mount against this vault.
    pub fn azure_args(&self) -> Vec<String> {
        vec![
            "--azure-connect-to".into(),
            self.addr.to_string(),
            "--azure-ca-file".into(),
            self.ca_file.display().to_string(),
        ]
    }

    /// An HTTPS client that trusts this vault and resolves `host` to it.
    pub fn client(&self, hosts: &[&str]) -> reqwest::blocking::Client {
        let pem = std::fs::read(&self.ca_file).expect("ca");
        let mut b = reqwest::blocking::Client::builder()
            .tls_certs_only(reqwest::Certificate::from_pem_bundle(&pem).expect("pem"));
        for h in hosts {
            b = b.resolve(h, self.addr);
        }
        b.build().expect("client")
    }

    /// A bearer token for the seed's client.
    pub fn token(&self) -> String {
        let client = self.client(&["login.microsoftonline.com"]);
        let resp = client
            .post(format!(
                "https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token"
            ))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", CLIENT_ID),
                ("client_secret", CLIENT_SECRET),
                ("scope", "https://vault.azure.net/.default"),
            ])
            .send()
            .expect("token request");
        assert_eq!(resp.status(), 200);
        let body: serde_json::Value = resp.json().expect("json");
        body["access_token"].as_str().expect("token").to_owned()
    }

    /// Runs `f` on a thread of its own: the blocking HTTP client must not run (or be dropped)
    /// inside a test's async runtime.
    fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
        std::thread::scope(|s| s.spawn(f).join().expect("admin call"))
    }

    /// The admin API at `path` (e.g. `faults`, `counters`).
    fn admin_url(&self, path: &str) -> String {
        format!("https://localhost:{}/_admin/{path}", self.addr.port())
    }

    /// Replaces the fault rules (JSON objects with the `--fault` keys in camelCase).
    pub fn set_faults(&self, rules: serde_json::Value) {
        Self::off_runtime(|| self.set_faults_now(rules))
    }

    fn set_faults_now(&self, rules: serde_json::Value) {
        let resp = self
            .client(&[])
            .put(self.admin_url("faults"))
            .json(&serde_json::json!({ "rules": rules }))
            .send()
            .expect("put faults");
        assert_eq!(resp.status(), 200, "{:?}", resp.text());
    }

    /// Removes every fault rule.
    pub fn clear_faults(&self) {
        Self::off_runtime(|| self.clear_faults_now())
    }

    fn clear_faults_now(&self) {
        let resp = self
            .client(&[])
            .delete(self.admin_url("faults"))
            .send()
            .expect("clear faults");
        assert!(resp.status().is_success());
    }

    /// Requests served so far (all routes, identities and statuses).
    pub fn request_count(&self) -> u64 {
        self.counters()["total"].as_u64().unwrap_or(0)
    }

    /// The dev vault's request counters (`GET /_admin/counters`): `total`, `byRoute`,
    /// `byStatus`, `byIdentity`.
    pub fn counters(&self) -> serde_json::Value {
        Self::off_runtime(|| {
            self.client(&[])
                .get(self.admin_url("counters"))
                .send()
                .expect("counters")
                .json()
                .expect("counters json")
        })
    }

    /// Forgets the request counters (and starts the in-flight peak again).
    pub fn reset_counters(&self) {
        Self::off_runtime(|| {
            let resp = self
                .client(&[])
                .delete(self.admin_url("counters"))
                .send()
                .expect("reset counters");
            assert!(resp.status().is_success());
        })
    }

    /// Adds a new version of a secret through the data plane.
    pub fn set_secret(&self, vault: &str, name: &str, value: &str) -> String {
        let host = format!("{vault}.vault.azure.net");
        let client = self.client(&[&host]);
        let resp = client
            .put(format!("https://{host}/secrets/{name}?api-version=7.4"))
            .bearer_auth(self.token())
            .json(&serde_json::json!({ "value": value }))
            .send()
            .expect("put");
        assert_eq!(resp.status(), 200);
        let body: serde_json::Value = resp.json().expect("json");
        body["id"]
            .as_str()
            .expect("id")
            .rsplit('/')
            .next()
            .expect("version")
            .to_owned()
    }
}

impl DevVaultProc {
    /// Enables or disables the newest version of a secret through the data plane.
    pub fn set_secret_enabled(&self, vault: &str, name: &str, enabled: bool) {
        Self::off_runtime(|| {
            let host = format!("{vault}.vault.azure.net");
            let resp = self
                .client(&[&host])
                .patch(format!("https://{host}/secrets/{name}/?api-version=7.4"))
                .bearer_auth(self.token())
                .json(&serde_json::json!({ "attributes": { "enabled": enabled } }))
                .send()
                .expect("patch");
            assert_eq!(resp.status(), 200);
        })
    }
}

impl Drop for DevVaultProc {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A target directory that is unmounted and removed when dropped.
pub struct Target {
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
}

impl Target {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("mnt");
        Self { dir, path }
    }

    /// Extra flags so the test works as root (real tmpfs) and as a developer (plain directory).
    pub fn backing_args(&self) -> Vec<String> {
        if is_root() {
            vec![]
        } else {
            vec!["--no-tmpfs".into()]
        }
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path.join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
    }

    /// Entries directly in the target.
    pub fn entries(&self) -> Vec<String> {
        let mut v: Vec<String> = match std::fs::read_dir(&self.path) {
            Ok(rd) => rd
                .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .collect(),
            Err(_) => Vec::new(),
        };
        v.sort();
        v
    }

    /// True when something is mounted at the target.
    pub fn is_mounted(&self) -> bool {
        let table = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let p = self.path.display().to_string();
        table
            .lines()
            .any(|l| l.split(' ').nth(4) == Some(p.as_str()))
    }

    /// The mount options of the target's mount, if any.
    pub fn mount_options(&self) -> Option<String> {
        let table = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let p = self.path.display().to_string();
        table
            .lines()
            .rev()
            .find(|l| l.split(' ').nth(4) == Some(p.as_str()))
            .and_then(|l| l.split(' ').nth(5))
            .map(str::to_owned)
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = keyvol()
            .args(["unmount", "--target"])
            .arg(&self.path)
            .output();
    }
}

/// Writes a file in `dir`.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write");
    p
}

/// A seed with the test tenant and client and the given vault YAML appended under `vaults:`.
pub fn seed(vaults_yaml: &str) -> String {
    format!(
        "tenantId: {TENANT}\nclients:\n  - clientId: {CLIENT_ID}\n    clientSecret: {CLIENT_SECRET}\nvaults:\n{vaults_yaml}"
    )
}

/// A SecretProviderClass for vault `vault` with the given object items (each a YAML mapping body).
pub fn class(vault: &str, objects: &[&str]) -> String {
    let mut items = String::new();
    for o in objects {
        items.push_str("        - |\n");
        for line in o.lines() {
            items.push_str("          ");
            items.push_str(line);
            items.push('\n');
        }
    }
    format!(
        "apiVersion: secrets-store.csi.x-k8s.io/v1\nkind: SecretProviderClass\nmetadata:\n  name: e2e\n  namespace: default\nspec:\n  provider: azure\n  parameters:\n    keyvaultName: {vault}\n    tenantId: {TENANT}\n    objects: |\n      array:\n{items}"
    )
}

/// A secrets file with the test client's credentials.
pub fn creds_file(dir: &Path, secret: &str) -> PathBuf {
    write(
        dir,
        "creds.yaml",
        &format!("clientid: {CLIENT_ID}\nclientsecret: {secret}\n"),
    )
}

/// File in a node's directory that receives its stderr (appended across restarts).
pub const NODE_LOG: &str = "node.log";

/// The stderr of a node started in `dir`: [`NODE_LOG`], opened for appending.
pub fn node_log(dir: &Path) -> Stdio {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(NODE_LOG))
        .map(Stdio::from)
        .expect("node log file")
}

/// A `keyvol node` process with its sockets in a temp dir; its stderr goes to [`NODE_LOG`].
pub struct NodeProc {
    child: Child,
    pub dir: tempfile::TempDir,
    pub health: u16,
    pub metrics: u16,
}

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A kubeconfig for an API server at `url` with no credentials.
pub fn write_kubeconfig(dir: &Path, url: &str) -> PathBuf {
    write(
        dir,
        "kubeconfig",
        &format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {url}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\ncurrent-context: fake\nusers:\n- name: fake\n  user: {{}}\n"
        ),
    )
}

impl NodeProc {
    /// Starts `keyvol node` in a fresh temp dir with `extra` flags after the harness's own.
    pub fn start(extra: &[&str]) -> Self {
        let extra: Vec<String> = extra.iter().map(|s| (*s).to_owned()).collect();
        Self::start_in(tempfile::tempdir().expect("tempdir"), &extra)
    }

    /// Starts `keyvol node` in `dir` (sockets, registry and provider dirs inside it).
    pub fn start_in(dir: tempfile::TempDir, extra: &[String]) -> Self {
        // A socket file left by a killed node would look like readiness.
        let _ = std::fs::remove_file(dir.path().join("csi.sock"));
        let (health, metrics) = (free_port(), free_port());
        let child = keyvol()
            .arg("node")
            .arg(format!(
                "--endpoint=unix://{}",
                dir.path().join("csi.sock").display()
            ))
            .arg("--nodeid=node-a")
            .arg(format!(
                "--plugin-registration-dir={}",
                dir.path().join("registry").display()
            ))
            .arg(format!(
                "--provider-volume={}",
                dir.path().join("providers").display()
            ))
            .arg("--additional-provider-volume-paths=")
            .arg(format!("--health-addr=127.0.0.1:{health}"))
            .arg(format!("--metrics-addr=127.0.0.1:{metrics}"))
            .env("KUBECONFIG", dir.path().join("kubeconfig"))
            .args(extra)
            .stdout(Stdio::null())
            .stderr(node_log(dir.path()))
            .spawn()
            .expect("node starts");
        let me = Self {
            child,
            dir,
            health,
            metrics,
        };
        // Ready when the socket accepts connections (the file exists a moment before listen).
        for _ in 0..400 {
            if std::os::unix::net::UnixStream::connect(me.csi_socket()).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        me
    }

    /// The CSI socket.
    pub fn csi_socket(&self) -> PathBuf {
        self.dir.path().join("csi.sock")
    }

    /// The node's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// How many file descriptors the node has open.
    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// A memory figure of the node from `/proc/<pid>/status` in KiB: `VmRSS` (resident now)
    /// or `VmHWM` (the peak resident size).
    pub fn memory_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("node process status");
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("{field} in /proc status"))
    }

    /// Everything the node has logged so far (all runs in this directory).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join(NODE_LOG)).unwrap_or_default()
    }

    /// Stops the process and hands back its directory (for a restart).
    pub fn stop(mut self) -> tempfile::TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let dir = tempfile::tempdir().expect("tempdir");
        std::mem::replace(&mut self.dir, dir)
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `cmd` (stderr captured), waits until `socket` accepts a connection or the process
/// exits, then stops it. Returns whether it served, and everything it wrote to stderr.
pub fn serves_on(cmd: &mut Command, socket: &Path) -> (bool, String) {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut serving = false;
    for _ in 0..400 {
        if std::os::unix::net::UnixStream::connect(socket).is_ok() {
            serving = true;
            break;
        }
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    let _ = child.kill();
    let out = child.wait_with_output().expect("output");
    (serving, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// A NodePublishVolumeRequest as kubelet sends it for pod `default/app` (uid `uid-1`) mounting
/// `class` at `target`, with the seed's client credentials as the nodePublishSecretRef.
pub fn publish_request(
    target: &Path,
    class: &str,
) -> keyvol_proto::csi::v1::NodePublishVolumeRequest {
    keyvol_proto::csi::v1::NodePublishVolumeRequest {
        volume_id: format!("csi-{class}"),
        target_path: target.display().to_string(),
        volume_capability: Some(keyvol_proto::csi::v1::VolumeCapability {
            access_type: Some(keyvol_proto::csi::v1::volume_capability::AccessType::Mount(Default::default())),
            access_mode: Some(keyvol_proto::csi::v1::volume_capability::AccessMode {
                mode: keyvol_proto::csi::v1::volume_capability::access_mode::Mode::SingleNodeReaderOnly as i32,
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

/// The matching NodeUnpublishVolumeRequest.
pub fn unpublish_request(
    target: &Path,
    class: &str,
) -> keyvol_proto::csi::v1::NodeUnpublishVolumeRequest {
    keyvol_proto::csi::v1::NodeUnpublishVolumeRequest {
        volume_id: format!("csi-{class}"),
        target_path: target.display().to_string(),
    }
}

//! `keyvol provider` driven over its socket the way the upstream Secrets Store CSI Driver drives
//! the upstream Azure provider: Version, then Mount with JSON attributes, secrets and permission.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::Duration;

use crate::util::*;
use keyvol_proto::provider::v1alpha1 as pb;
use keyvol_proto::tonic::Code;

const VAULT: &str = "keyvol-prov";

struct ProviderProc {
    child: Child,
    socket: PathBuf,
    metrics: u16,
    _dir: tempfile::TempDir,
}

impl ProviderProc {
    fn start(vault: &DevVaultProc) -> Self {
        Self::start_with(&vault.azure_args())
    }

    /// `keyvol provider` with `args` after its socket and health settings.
    fn start_with(args: &[String]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let socket = dir.path().join("azure.sock");
        let metrics = free_port();
        let child = keyvol()
            .arg("provider")
            .arg(format!("--endpoint=unix://{}", socket.display()))
            .arg("--healthz-port=0")
            .arg(format!("--prometheus-port={metrics}"))
            .args(args)
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
            metrics,
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

        // Upstream's provider metric, on --prometheus-port.
        let text = reqwest::get(format!("http://127.0.0.1:{}/metrics", provider.metrics))
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        assert!(
            text.contains("keyvault_request_count{object_type=\"secret\",object_name=\"plain\",error=\"\",provider=\"azure\",os_type=\"linux\"}"),
            "{text}"
        );
        assert!(!text.contains("node_publish"), "{text}");

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

#[test]
fn the_provider_socket_answers_whatever_authority_the_client_sends() {
    use keyvol_proto::prost::Message;
    let provider = ProviderProc::start_with(&[]);
    let raw = provider.socket.as_os_str().as_encoded_bytes().to_vec();
    let encoded: Vec<u8> = raw
        .iter()
        .flat_map(|&b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                vec![b]
            } else {
                format!("%{b:02X}").into_bytes()
            }
        })
        .collect();
    let forms: [(&str, Option<&[u8]>); 4] = [
        ("absent", None),
        ("localhost (the upstream driver)", Some(b"localhost")),
        ("raw path", Some(&raw)),
        ("percent-encoded path", Some(&encoded)),
    ];
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    rt.block_on(async {
        for (form, authority) in forms {
            let request = pb::VersionRequest {
                version: "v1alpha1".into(),
            };
            let reply = tokio::time::timeout(
                Duration::from_secs(10),
                keyvol_proto::rawclient::unary(
                    &provider.socket,
                    authority,
                    "/v1alpha1.CSIDriverProvider/Version",
                    &request.encode_to_vec(),
                ),
            )
            .await
            .expect("in time")
            .expect("call");
            assert_eq!(reply.grpc_status(), Some("0"), "{form}: {reply:?}");
            let version = pb::VersionResponse::decode(reply.message.expect("message").as_slice())
                .expect("VersionResponse");
            assert_eq!(version.version, "v1alpha1", "{form}");
        }
    });
}

/// What the upstream Azure provider chart renders for its container, defaults and every
/// optional value set; the endpoint and health port are set after them by the test.
fn upstream_provider_command_lines() -> Vec<Vec<&'static str>> {
    let health = [
        "--healthz-port=8989",
        "--healthz-path=/healthz",
        "--healthz-timeout=5s",
    ];
    let with = |extra: &[&'static str]| -> Vec<&'static str> {
        let mut args = vec!["--endpoint=unix:///provider/azure.sock"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&health);
        args
    };
    vec![
        with(&["--construct-pem-chain=true"]),
        with(&[
            "--log-format-json=true",
            "-v=5",
            "--construct-pem-chain=true",
            "--write-cert-and-key-in-separate-files=true",
            "--custom-user-agent=my-cluster",
            "--metrics-backend=Prometheus",
            "--prometheus-port=8898",
        ]),
        with(&[
            "--log-format-json=false",
            "--construct-pem-chain=false",
            "--write-cert-and-key-in-separate-files=false",
            "--enable-pprof=false",
            "--pprof-port=6060",
        ]),
    ]
}

#[test]
fn every_command_line_the_upstream_chart_renders_starts_the_provider() {
    for args in upstream_provider_command_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let socket = dir.path().join("azure.sock");
        let (serving, stderr) = serves_on(
            keyvol()
                .arg("provider")
                .args(&args)
                .arg(format!("--endpoint=unix://{}", socket.display()))
                .arg("--healthz-port=0")
                .arg("--prometheus-port=0"),
            &socket,
        );
        assert!(serving, "keyvol provider {args:?} did not start: {stderr}");
        if args.contains(&"--log-format-json=true") {
            for line in stderr.lines() {
                let value: serde_json::Value = serde_json::from_str(line).expect("JSON lines");
                assert!(
                    value["ts"].is_string() && value["msg"].is_string(),
                    "{line}"
                );
            }
        }
    }
}

/// The second service principal of [`round_trip_seed`].
const SECOND_CLIENT: (&str, &str) = ("e2e-second", "e2e-second-secret");
/// Objects per mount in the round-trip tests.
const OBJECTS: usize = 10;

/// Two service principals and a vault with secrets `s0`…`s9`.
fn round_trip_seed() -> String {
    let secrets: String = (0..OBJECTS)
        .map(|i| format!("      - name: s{i}\n        value: v{i}\n"))
        .collect();
    format!(
        "tenantId: {TENANT}\nclients:\n  - clientId: {CLIENT_ID}\n    clientSecret: {CLIENT_SECRET}\n  - clientId: {}\n    clientSecret: {}\nvaults:\n  - name: {VAULT}\n    secrets:\n{secrets}",
        SECOND_CLIENT.0, SECOND_CLIENT.1
    )
}

/// What the dev vault saw since its counters were last reset.
#[derive(Debug, Default, PartialEq, Eq)]
struct Seen {
    /// Token requests.
    tokens: u64,
    /// Secret reads answered 200.
    reads: u64,
    /// Vault requests answered 401.
    unauthorized: u64,
    /// Anything else.
    other: u64,
    /// The most requests served at once.
    peak_in_flight: u64,
}

fn seen(vault: &DevVaultProc) -> Seen {
    let counters = vault.counters();
    let mut seen = Seen {
        peak_in_flight: counters["peakInFlight"].as_u64().expect("peakInFlight"),
        ..Seen::default()
    };
    for row in counters["requests"].as_array().expect("rows") {
        let route = row["route"].as_str().unwrap_or("");
        let n = row["count"].as_u64().unwrap_or(0);
        match (route, row["status"].as_u64().unwrap_or(0)) {
            (r, 200) if r.contains("/oauth2/") => seen.tokens += n,
            (r, 200) if r.starts_with("GET /secrets/") => seen.reads += n,
            (r, 401) if r.starts_with("GET /secrets/") => seen.unauthorized += n,
            _ => seen.other += n,
        }
    }
    seen
}

/// Mounts `s0`…`s9` as `(client id, secret)` with `extra` attributes, checks the files and
/// returns what the vault saw for it.
async fn mount_counted(
    client: &mut pb::csi_driver_provider_client::CsiDriverProviderClient<
        keyvol_proto::tonic::transport::Channel,
    >,
    vault: &DevVaultProc,
    identity: (&str, &str),
    extra: &[(&str, &str)],
) -> Seen {
    let objects: String = (0..OBJECTS)
        .map(|i| format!("  - |\n    objectName: s{i}\n    objectType: secret\n"))
        .collect();
    let objects = format!("array:\n{objects}");
    let mut attrs: BTreeMap<&str, &str> = BTreeMap::from([
        ("keyvaultName", VAULT),
        ("tenantId", TENANT),
        ("objects", objects.as_str()),
        ("csi.storage.k8s.io/pod.name", "app"),
        ("csi.storage.k8s.io/pod.namespace", "default"),
    ]);
    attrs.extend(extra.iter().copied());
    let secrets = serde_json::to_string(&BTreeMap::from([
        ("clientid", identity.0),
        ("clientsecret", identity.1),
    ]))
    .expect("json");
    vault.reset_counters();
    let resp = client
        .mount(pb::MountRequest {
            attributes: serde_json::to_string(&attrs).expect("json"),
            secrets,
            permission: "420".into(),
            ..Default::default()
        })
        .await
        .expect("mount")
        .into_inner();
    let files: Vec<(String, Vec<u8>)> = resp
        .files
        .into_iter()
        .map(|f| (f.path, f.contents))
        .collect();
    let expected: Vec<(String, Vec<u8>)> = (0..OBJECTS)
        .map(|i| (format!("s{i}"), format!("v{i}").into_bytes()))
        .collect();
    assert_eq!(files, expected);
    seen(vault)
}

/// Runs `f` with a client of the provider on `socket`, on a runtime of its own.
fn with_provider<F>(socket: &std::path::Path, f: F)
where
    F: AsyncFnOnce(
        &mut pb::csi_driver_provider_client::CsiDriverProviderClient<
            keyvol_proto::tonic::transport::Channel,
        >,
    ),
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    rt.block_on(async {
        let mut client = pb::csi_driver_provider_client::CsiDriverProviderClient::new(
            keyvol_proto::uds::connect(socket).await.expect("socket"),
        );
        f(&mut client).await;
    });
}

/// Every read waits this long at the vault, so reads sent together overlap there.
fn slow_reads(vault: &DevVaultProc) {
    vault.set_faults(serde_json::json!([{ "route": "GET /secrets/*", "latencyMs": 400 }]));
}

// Issue 15: a new identity cost a 401 (its clients learned the challenge) and a first object sent
// alone; the rest went 8 at a time.
#[test]
fn a_new_identity_costs_one_token_request_then_every_object_goes_at_once() {
    let vault = DevVaultProc::start(&round_trip_seed());
    slow_reads(&vault);
    let provider = ProviderProc::start(&vault);
    with_provider(&provider.socket, async |client| {
        let all_at_once = |tokens| Seen {
            tokens,
            reads: OBJECTS as u64,
            peak_in_flight: OBJECTS as u64,
            ..Seen::default()
        };
        let first = (CLIENT_ID, CLIENT_SECRET);
        assert_eq!(
            mount_counted(client, &vault, first, &[]).await,
            all_at_once(1),
            "cold: one token request, then the reads together; no 401 (the cloud's scope is known)"
        );
        assert_eq!(
            mount_counted(client, &vault, first, &[]).await,
            all_at_once(0),
            "warm: the reads together"
        );
        assert_eq!(
            mount_counted(client, &vault, SECOND_CLIENT, &[]).await,
            all_at_once(1),
            "another identity: its token, then the reads"
        );
    });
}

#[test]
fn a_custom_clouds_vault_is_asked_for_its_challenge_once_for_every_identity() {
    let vault = DevVaultProc::start(&round_trip_seed());
    slow_reads(&vault);
    let clouds = tempfile::tempdir().expect("tempdir");
    write(
        clouds.path(),
        "stack.json",
        r#"{"name":"AzureStackCloud","activeDirectoryEndpoint":"https://login.microsoftonline.com/","keyVaultEndpoint":"https://vault.azure.net/","keyVaultDNSSuffix":"vault.azure.net"}"#,
    );
    let mut args = vault.azure_args();
    args.push(format!("--cloud-env-dir={}", clouds.path().display()));
    let provider = ProviderProc::start_with(&args);
    let cloud = [
        ("cloudName", "AzureStackCloud"),
        ("cloudEnvFileName", "stack.json"),
    ];
    with_provider(&provider.socket, async |client| {
        let seen = mount_counted(client, &vault, (CLIENT_ID, CLIENT_SECRET), &cloud).await;
        assert_eq!(
            (seen.unauthorized, seen.tokens, seen.reads, seen.other),
            (1, 1, OBJECTS as u64, 0),
            "one read goes out alone for the challenge, the others wait for it: {seen:?}"
        );
        assert_eq!(
            mount_counted(client, &vault, SECOND_CLIENT, &cloud).await,
            Seen {
                tokens: 1,
                reads: OBJECTS as u64,
                peak_in_flight: OBJECTS as u64,
                ..Seen::default()
            },
            "the vault's challenge is known: another identity needs only its token"
        );
    });
}

#[test]
fn a_vault_asking_for_another_resource_than_its_clouds_is_answered_and_remembered() {
    let vault = DevVaultProc::start_with(&round_trip_seed(), &["--resource", "https://azure.net"]);
    let provider = ProviderProc::start(&vault);
    with_provider(&provider.socket, async |client| {
        let seen = mount_counted(client, &vault, (CLIENT_ID, CLIENT_SECRET), &[]).await;
        assert!(
            seen.unauthorized >= 1 && seen.reads == OBJECTS as u64 && seen.tokens == 2,
            "the cloud's scope is refused, the challenge's is used: {seen:?}"
        );
        let seen = mount_counted(client, &vault, SECOND_CLIENT, &[]).await;
        assert_eq!(
            (seen.unauthorized, seen.tokens, seen.reads),
            (0, 1, OBJECTS as u64),
            "learned for every identity: {seen:?}"
        );
    });
}

#[test]
fn a_challenge_for_a_resource_outside_the_vaults_domain_gets_no_token() {
    let vault = DevVaultProc::start_with(
        &round_trip_seed(),
        &["--resource", "https://management.azure.com"],
    );
    let provider = ProviderProc::start(&vault);
    with_provider(&provider.socket, async |client| {
        let err = client
            .mount(pb::MountRequest {
                attributes: attributes(),
                secrets: secrets(CLIENT_SECRET),
                permission: "420".into(),
                ..Default::default()
            })
            .await
            .expect_err("refused");
        assert_eq!(err.code(), Code::Unauthenticated, "{}", err.message());
        assert!(
            err.message()
                .contains("names resource management.azure.com, which is not a parent domain of keyvol-prov.vault.azure.net"),
            "{}",
            err.message()
        );
        let tokens = vault.counters()["byRoute"]["POST /{tenant}/oauth2/v2.0/token"]
            .as_u64()
            .unwrap_or(0);
        assert_eq!(tokens, 1, "only the cloud's vault scope was ever asked for");
    });
}

/// Measurement, not a check: instructions `keyvol provider` executes per warm 10-object mount,
/// counted by valgrind's callgrind (stable on a noisy machine, unlike time). Run against a
/// release build:
///
/// `KEYVOL_E2E_BIN=$PWD/target/release/keyvol cargo test -p keyvol --test e2e instructions_per_warm_mount -- --ignored --nocapture`
///
/// The provider runs under `valgrind --tool=callgrind`; after warm-up mounts its counters are
/// zeroed, `MOUNTS` mounts are made, and the counters dumped (`callgrind_annotate` on the file
/// it prints shows where the instructions went).
#[test]
#[ignore = "measurement; needs valgrind, prints numbers"]
fn instructions_per_warm_mount() {
    const MOUNTS: u64 = 20;
    let vault = DevVaultProc::start(&round_trip_seed());
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("azure.sock");
    let out = std::env::temp_dir().join(format!("keyvol-callgrind.{}", std::process::id()));
    let mut child = std::process::Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg("--compress-strings=no")
        .arg("--compress-pos=no")
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(keyvol_bin())
        .arg("provider")
        .arg(format!("--endpoint=unix://{}", socket.display()))
        .arg("--healthz-port=0")
        .arg("--prometheus-port=0")
        .args(vault.azure_args())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("valgrind starts");
    for _ in 0..600 {
        if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
            break;
        }
        assert!(
            child.try_wait().expect("wait").is_none(),
            "valgrind ended (KEYVOL_E2E_BIN must be an absolute path)"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let control = |arg: &str| {
        let status = std::process::Command::new("callgrind_control")
            .arg(arg)
            .arg(child.id().to_string())
            .stdout(Stdio::null())
            .status()
            .expect("callgrind_control");
        assert!(status.success(), "callgrind_control {arg}");
    };
    with_provider(&socket, async |client| {
        for _ in 0..3 {
            mount_counted(client, &vault, (CLIENT_ID, CLIENT_SECRET), &[]).await;
        }
        control("--zero");
        for _ in 0..MOUNTS {
            mount_counted(client, &vault, (CLIENT_ID, CLIENT_SECRET), &[]).await;
        }
        control("--dump");
    });
    let _ = child.kill();
    let _ = child.wait();
    drop(dir);
    // The dump after the zero is the newest `<out>.<n>` callgrind wrote.
    let prefix = format!(
        "{}.",
        out.file_name().and_then(|n| n.to_str()).expect("name")
    );
    let dump = std::fs::read_dir(std::env::temp_dir())
        .expect("tmp")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix))
        })
        .max_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
        .expect("a dump");
    let text = std::fs::read_to_string(&dump).expect("dump");
    let total: u64 = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("summary:")
                .or_else(|| l.strip_prefix("totals:"))
        })
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("summary line");
    println!(
        "{MOUNTS} warm 10-object mounts: {total} instructions, {} per mount ({})",
        total / MOUNTS,
        dump.display()
    );
}

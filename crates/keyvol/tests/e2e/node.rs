//! `keyvol node` driven over its real sockets by a gRPC client, with no Kubernetes API: the CSI
//! surface, kubelet registration, `/healthz` and `/metrics`.

use std::path::Path;
use std::time::Duration;

use crate::util::*;
use keyvol_proto::csi::v1 as csi;
use keyvol_proto::pluginregistration as reg;
use keyvol_proto::tonic::Code;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn the_csi_surface_works_without_a_kubernetes_api() {
    let node = NodeProc::start(&[]);
    rt().block_on(async {
        let channel = keyvol_proto::uds::connect(node.csi_socket())
            .await
            .expect("connects");
        let mut identity = csi::identity_client::IdentityClient::new(channel.clone());
        let info = identity
            .get_plugin_info(csi::GetPluginInfoRequest {})
            .await
            .expect("info")
            .into_inner();
        assert_eq!(info.name, "secrets-store.csi.k8s.io");
        assert!(!info.vendor_version.is_empty());
        assert_eq!(
            identity
                .probe(csi::ProbeRequest {})
                .await
                .expect("probe")
                .into_inner()
                .ready,
            Some(true)
        );
        let caps = identity
            .get_plugin_capabilities(csi::GetPluginCapabilitiesRequest {})
            .await
            .expect("caps")
            .into_inner();
        assert!(
            caps.capabilities.is_empty(),
            "a node-only plugin advertises no controller"
        );

        let mut nodec = csi::node_client::NodeClient::new(channel);
        assert_eq!(
            nodec
                .node_get_info(csi::NodeGetInfoRequest {})
                .await
                .expect("info")
                .into_inner()
                .node_id,
            "node-a"
        );
        let caps = nodec
            .node_get_capabilities(csi::NodeGetCapabilitiesRequest {})
            .await
            .expect("caps")
            .into_inner();
        assert_eq!(
            caps.capabilities.len(),
            2,
            "STAGE_UNSTAGE_VOLUME and VOLUME_MOUNT_GROUP"
        );

        let target = node
            .dir
            .path()
            .join("pods/uid-1/volumes/kubernetes.io~csi/secrets/mount");
        let cases = [
            (
                csi::NodePublishVolumeRequest {
                    volume_id: String::new(),
                    ..publish_request(&target, "spc")
                },
                "Volume ID missing in request",
            ),
            (
                csi::NodePublishVolumeRequest {
                    target_path: String::new(),
                    ..publish_request(&target, "spc")
                },
                "Target path missing in request",
            ),
            (
                csi::NodePublishVolumeRequest {
                    volume_capability: None,
                    ..publish_request(&target, "spc")
                },
                "Volume capability missing in request",
            ),
            (
                csi::NodePublishVolumeRequest {
                    readonly: false,
                    ..publish_request(&target, "spc")
                },
                "Readonly is not true in request",
            ),
        ];
        for (req, want) in cases {
            let err = nodec.node_publish_volume(req).await.expect_err(want);
            assert_eq!(err.code(), Code::InvalidArgument, "{want}");
            assert!(err.message().contains(want), "{}", err.message());
        }
        // A request that needs the API fails clearly, and leaves nothing behind.
        let err = nodec
            .node_publish_volume(publish_request(&target, "spc"))
            .await
            .expect_err("no API");
        assert_eq!(err.code(), Code::Unavailable);
        assert!(
            err.message().contains("no Kubernetes API configured"),
            "{}",
            err.message()
        );
        assert!(
            !target.exists() || std::fs::read_dir(&target).map(|d| d.count()).unwrap_or(0) == 0
        );

        let unpub = |id: &str, t: &str| csi::NodeUnpublishVolumeRequest {
            volume_id: id.into(),
            target_path: t.into(),
        };
        assert_eq!(
            nodec
                .node_unpublish_volume(unpub("", "/x"))
                .await
                .expect_err("id")
                .code(),
            Code::InvalidArgument
        );
        assert_eq!(
            nodec
                .node_unpublish_volume(unpub("v", ""))
                .await
                .expect_err("target")
                .code(),
            Code::InvalidArgument
        );
        // Idempotent: unpublishing what is not there succeeds, twice.
        for _ in 0..2 {
            nodec
                .node_unpublish_volume(unpub("csi-0123", &target.display().to_string()))
                .await
                .expect("idempotent unpublish");
        }
    });
}

#[test]
fn kubelet_registration_health_and_metrics_are_built_in() {
    let node = NodeProc::start(&[]);
    rt().block_on(async {
        let reg_socket = node.dir.path().join("registry/secrets-store.csi.k8s.io-reg.sock");
        let mut client = reg::registration_client::RegistrationClient::new(keyvol_proto::uds::connect(&reg_socket).await.expect("reg socket"));
        let info = client.get_info(reg::InfoRequest {}).await.expect("info").into_inner();
        assert_eq!(info.r#type, "CSIPlugin");
        assert_eq!(info.name, "secrets-store.csi.k8s.io");
        assert_eq!(info.endpoint, "/var/lib/kubelet/plugins/csi-secrets-store/csi.sock");
        assert!(info.supported_versions.contains(&"1.0.0".to_string()));
        client
            .notify_registration_status(reg::RegistrationStatus { plugin_registered: true, error: String::new() })
            .await
            .expect("notify");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(node.csi_socket()).expect("socket").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the CSI socket is owner-only");

        let health = reqwest::get(format!("http://127.0.0.1:{}/healthz", node.health)).await.expect("healthz");
        assert_eq!(health.status(), 200);
        // A failed publish shows up in upstream's metric names.
        let mut nodec = csi::node_client::NodeClient::new(keyvol_proto::uds::connect(node.csi_socket()).await.expect("csi"));
        let _ = nodec.node_publish_volume(publish_request(&node.dir.path().join("t"), "spc")).await;
        let _ = nodec
            .node_unpublish_volume(csi::NodeUnpublishVolumeRequest { volume_id: "v".into(), target_path: node.dir.path().join("t").display().to_string() })
            .await;
        let text = reqwest::get(format!("http://127.0.0.1:{}/metrics", node.metrics)).await.expect("metrics").text().await.expect("text");
        assert!(text.contains("node_publish_error_total{provider=\"\",error_type=\"KubernetesAPIUnavailable\",os_type=\"linux\"} 1"), "{text}");
        assert!(text.contains("node_unpublish_total{os_type=\"linux\"} 1"), "{text}");
    });
}

#[test]
fn healthz_fails_when_the_csi_socket_is_gone() {
    let node = NodeProc::start(&[]);
    std::fs::remove_file(node.csi_socket()).expect("remove socket");
    rt().block_on(async {
        let health = reqwest::get(format!("http://127.0.0.1:{}/healthz", node.health))
            .await
            .expect("healthz");
        assert_eq!(health.status(), 503);
    });
}

/// `:authority` as grpc-go (kubelet's plugin watcher) sends it for a unix-socket target: the
/// socket path with every byte outside the URI unreserved set percent-encoded.
fn percent_encoded(path: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for &b in path.as_os_str().as_encoded_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b);
        } else {
            out.extend(format!("%{b:02X}").bytes());
        }
    }
    out
}

/// Calls one unary method with the raw client, sending exactly `authority` (or none).
async fn raw_call(
    socket: &Path,
    authority: Option<&[u8]>,
    method: &str,
    request: &impl keyvol_proto::prost::Message,
) -> keyvol_proto::rawclient::RawReply {
    tokio::time::timeout(
        Duration::from_secs(10),
        keyvol_proto::rawclient::unary(socket, authority, method, &request.encode_to_vec()),
    )
    .await
    .expect("an answer within 10 s")
    .expect("the call completes")
}

#[test]
fn every_node_socket_answers_whatever_authority_the_client_sends() {
    use keyvol_proto::prost::Message;
    let node = NodeProc::start(&[]);
    let reg_socket = node
        .dir
        .path()
        .join("registry/secrets-store.csi.k8s.io-reg.sock");
    let encoded = percent_encoded(&reg_socket);
    let raw = reg_socket.as_os_str().as_encoded_bytes().to_vec();
    // What kubelet 1.35's plugin watcher sent on the real cluster, byte for byte.
    let kubelet: &[u8] =
        b"%2Fvar%2Flib%2Fkubelet%2Fplugins_registry%2Fsecrets-store.csi.k8s.io-reg.sock";
    let forms: [(&str, Option<&[u8]>); 5] = [
        ("absent", None),
        ("localhost", Some(b"localhost")),
        ("raw path", Some(&raw)),
        ("percent-encoded path", Some(&encoded)),
        ("kubelet's exact percent-encoded path", Some(kubelet)),
    ];
    rt().block_on(async {
        for (form, authority) in forms {
            let info = raw_call(
                &reg_socket,
                authority,
                "/pluginregistration.Registration/GetInfo",
                &reg::InfoRequest {},
            )
            .await;
            assert_eq!(info.grpc_status(), Some("0"), "GetInfo, {form}: {info:?}");
            let info = reg::PluginInfo::decode(info.message.expect("message").as_slice())
                .expect("PluginInfo");
            assert_eq!(
                (info.r#type.as_str(), info.name.as_str()),
                ("CSIPlugin", "secrets-store.csi.k8s.io"),
                "{form}"
            );
            let ack = raw_call(
                &reg_socket,
                authority,
                "/pluginregistration.Registration/NotifyRegistrationStatus",
                &reg::RegistrationStatus {
                    plugin_registered: true,
                    error: String::new(),
                },
            )
            .await;
            assert_eq!(ack.grpc_status(), Some("0"), "Notify, {form}: {ack:?}");

            let csi_info = raw_call(
                &node.csi_socket(),
                authority,
                "/csi.v1.Identity/GetPluginInfo",
                &csi::GetPluginInfoRequest {},
            )
            .await;
            assert_eq!(csi_info.grpc_status(), Some("0"), "{form}: {csi_info:?}");
            let node_info = raw_call(
                &node.csi_socket(),
                authority,
                "/csi.v1.Node/NodeGetInfo",
                &csi::NodeGetInfoRequest {},
            )
            .await;
            let node_info =
                csi::NodeGetInfoResponse::decode(node_info.message.expect("message").as_slice())
                    .expect("NodeGetInfoResponse");
            assert_eq!(node_info.node_id, "node-a", "{form}");
        }
    });
}

/// What the upstream driver chart (v1.6) renders for the driver container, with every optional
/// value set, and what its static manifest and older charts pass; `$(…)` as kubelet expands it.
fn upstream_node_command_lines() -> Vec<Vec<&'static str>> {
    let base = [
        "--endpoint=$(CSI_ENDPOINT)",
        "--nodeid=$(KUBE_NODE_NAME)",
        "--provider-volume=/var/run/secrets-store-csi-providers",
        "--additional-provider-volume-paths=/etc/kubernetes/secrets-store-csi-providers",
    ];
    let with = |extra: &[&'static str]| -> Vec<&'static str> {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        args
    };
    vec![
        // Chart defaults.
        with(&["--metrics-addr=:8095", "--max-call-recv-msg-size=4194304"]),
        // Every optional value set, as the chart writes them.
        with(&[
            "-v=5",
            "--log-format-json=true",
            "--enable-secret-rotation=true",
            "--rotation-poll-interval=2m",
            "--metrics-addr=:8095",
            "--provider-health-check=true",
            "--provider-health-check-interval=2m",
            "--max-call-recv-msg-size=4194304",
        ]),
        // The Azure chart's embedded driver: metrics on :8080, klog-style -v with two dashes.
        with(&[
            "--v=2",
            "--log-format-json=false",
            "--metrics-addr=:8080",
            "--enable-secret-rotation=false",
            "--rotation-poll-interval=30s",
        ]),
        // Older charts and manifests: flags upstream has since removed or made no-ops.
        with(&[
            "--filtered-watch-secret=true",
            "--min-provider-version=azure=0.0.14",
            "--enable-pprof=false",
            "--pprof-port=6065",
            "--metrics-backend=Prometheus",
        ]),
    ]
}

#[test]
fn every_command_line_the_upstream_charts_render_starts_the_node() {
    for args in upstream_node_command_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let socket = dir.path().join("csi.sock");
        let (health, metrics) = (free_port(), free_port());
        let expanded: Vec<String> = args
            .iter()
            .map(|a| {
                a.replace("$(CSI_ENDPOINT)", &format!("unix://{}", socket.display()))
                    .replace("$(KUBE_NODE_NAME)", "node-a")
            })
            .collect();
        // The chart's ports and kubelet's registry would collide with the machine's; later
        // flags win, as with Go's flag package.
        let (serving, stderr) = serves_on(
            keyvol()
                .arg("node")
                .args(&expanded)
                .arg(format!(
                    "--plugin-registration-dir={}",
                    dir.path().join("registry").display()
                ))
                .arg(format!("--metrics-addr=127.0.0.1:{metrics}"))
                .arg(format!("--health-addr=127.0.0.1:{health}"))
                .env("KUBECONFIG", dir.path().join("no-kubeconfig")),
            &socket,
        );
        assert!(serving, "keyvol node {expanded:?} did not start: {stderr}");
        assert!(!stderr.contains('\u{1b}'), "colour escapes: {stderr}");
        if args.contains(&"--log-format-json=true") {
            let first = stderr.lines().next().expect("a start-up line");
            let line: serde_json::Value = serde_json::from_str(first).expect("JSON lines");
            assert!(line["ts"].is_string() && line["msg"].is_string(), "{first}");
            assert!(line["level"].is_string(), "{first}");
        }
    }
}

#[test]
fn bad_flags_are_refused_before_anything_starts() {
    for args in [
        vec!["--enable-secret-rotation", "true"],
        vec!["--log-format-json=yes"],
        vec!["--no-such-flag=1"],
        vec!["--rotation-poll-interval=often"],
    ] {
        let out = run(keyvol().arg("node").args(&args));
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("error:"), "{args:?}");
    }
}

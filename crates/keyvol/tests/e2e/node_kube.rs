//! `keyvol node` with a Kubernetes API (the in-process fake API server) and the dev vault: the
//! whole NodePublishVolume path over the real CSI socket, the SecretProviderClassPodStatus it
//! records, unpublish after a restart, failures that leave nothing behind, external providers
//! (keyvol provider and a test provider), and rotation on republish.

use std::collections::BTreeMap;
use std::process::{Child, Stdio};
use std::time::Duration;

use crate::util::cluster::*;
use crate::util::*;
use keyvol_fakekube::{FakeKube, Verb};
use keyvol_node::crd::SecretProviderClassPodStatus;
use keyvol_proto::csi::v1 as csi;
use keyvol_proto::provider::v1alpha1 as pb;
use keyvol_proto::tonic::{self, Code};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_mounts_files_from_the_vault_and_records_the_pod_status() {
    let c = Cluster::start(&[]).await;
    c.fake
        .insert(&spc_object(
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

    // At the default verbosity: one readable line per publish and unpublish, with who and how
    // it ended, and no colour escapes (stderr is a file here, as under kubectl logs).
    let log = c.node().log();
    assert!(!log.contains('\u{1b}'), "colour escapes in {log}");
    let publishes: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("node publish volume"))
        .collect();
    assert_eq!(publishes.len(), 2, "{log}");
    for (line, outcome) in publishes.iter().zip(["mounted", "already-mounted"]) {
        assert!(line.contains(" INFO "), "{line}");
        for field in [
            "pod=\"app\"",
            "namespace=\"default\"",
            "class=\"spc\"",
            &format!("outcome=\"{outcome}\""),
        ] {
            assert!(line.contains(field), "{field} missing in {line}");
        }
    }
    assert_eq!(
        log.lines()
            .filter(|l| l.contains("node unpublish volume") && l.contains("outcome=\"unmounted\""))
            .count(),
        1,
        "{log}"
    );
    for secret in ["s3cr3t-one", "key-one"] {
        assert!(!log.contains(secret), "a secret value reached the log");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unpublish_after_a_restart_finds_the_mount_in_the_mount_table() {
    let mut c = Cluster::start(&[]).await;
    c.fake
        .insert(&spc_object(
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
        .insert(&spc_object(
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
        .insert(&spc_object(
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_refusals_keep_their_kind_as_grpc_codes() {
    let c = Cluster::start(&[]).await;
    let mut node = c.client().await;
    c.fake
        .insert(&spc_object(
            "guarded",
            "azure",
            &["objectName: db-password\nobjectType: secret"],
        ))
        .expect("class");
    // RBAC refuses the class watch and the direct read. (Before issue 12 every API refusal
    // came back Unavailable.)
    let target = c.target("guarded");
    c.fake
        .fail_requests(Verb::List, "secretproviderclasses", 403, 1000);
    c.fake
        .fail_requests(Verb::Get, "secretproviderclasses", 403, 1);
    let err = node
        .node_publish_volume(publish_request(&target, "guarded"))
        .await
        .expect_err("forbidden class read");
    assert_eq!(err.code(), Code::PermissionDenied, "{}", err.message());
    assert!(
        err.message()
            .starts_with("failed to get secretproviderclass default/guarded: forbidden: "),
        "{}",
        err.message()
    );

    // The class read now works (directly: the watch is still refused), but the pod status write
    // is refused after the files were written: the mount is undone.
    c.fake
        .fail_requests(Verb::Create, "secretproviderclasspodstatuses", 403, 1);
    let err = node
        .node_publish_volume(publish_request(&target, "guarded"))
        .await
        .expect_err("forbidden pod status write");
    assert_eq!(err.code(), Code::PermissionDenied, "{}", err.message());
    assert!(
        err.message().starts_with(
            "failed to update secretproviderclasspodstatus default/app-default-guarded: forbidden: "
        ),
        "{}",
        err.message()
    );
    assert!(!is_mounted(&target), "the tmpfs this call mounted is gone");
    assert!(!err.message().contains("s3cr3t"), "{}", err.message());
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
        .insert(&spc_object(
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
        .arg("--prometheus-port=0")
        .args(c.vault.azure_args())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("provider starts");
    for _ in 0..200 {
        if std::os::unix::net::UnixStream::connect(providers.join("kvazure.sock")).is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    c.fake
        .insert(&spc_object(
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
        .insert(&spc_object(
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
        .insert(&spc_object(
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
        .insert(&spc_object(
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

fn pod(name: &str, uid: &str, owners: serde_json::Value) -> serde_json::Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "uid": uid, "ownerReferences": owners},
        "spec": {"containers": [{"name": "c", "image": "app"}], "nodeName": "node-a"},
    })
}

fn synced_class(
    name: &str,
    items: &[&str],
    secret_objects: serde_json::Value,
) -> serde_json::Value {
    let mut c = spc_object(name, "azure", items);
    c["spec"]["secretObjects"] = secret_objects;
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_objects_are_synced_owned_by_the_pods_owner_and_never_hijack_foreign_secrets() {
    let c = Cluster::start(&[
        "--enable-secret-rotation=true",
        "--rotation-poll-interval=1s",
    ])
    .await;
    // The TLS material is a plain secret holding key and certificate PEM, as a PEM-content-type
    // certificate's secret does.
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let cert = rcgen::CertificateParams::new(vec!["app.example".into()])
        .expect("params")
        .self_signed(&key)
        .expect("cert");
    let bundle = format!("{}{}", key.serialize_pem(), cert.pem());
    tokio::task::block_in_place(|| c.vault.set_secret(VAULT, "tls-bundle", &bundle));

    let rs_owner = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "app-rs", "uid": "rs-uid-1", "controller": true}]);
    c.fake.insert(&pod("app", "uid-1", rs_owner)).expect("pod");
    // A Secret someone else owns, with the name one secret object asks for.
    c.fake.insert(&json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "foreign", "namespace": "default"}, "data": {"x": "eA=="}})).expect("foreign");
    c.fake
        .insert(&synced_class(
            "sync",
            &["objectName: db-password\nobjectType: secret", "objectName: tls-bundle\nobjectType: secret\nobjectAlias: tls/bundle.pem"],
            json!([
                {"secretName": "app-creds", "type": "Opaque", "labels": {"team": "a"}, "annotations": {"note": "n"},
                 "data": [{"objectName": "db-password", "key": "password"}]},
                {"secretName": "app-tls", "type": "kubernetes.io/tls", "data": [{"objectName": "tls/bundle.pem", "key": "tls"}]},
                {"secretName": "foreign", "type": "Opaque", "data": [{"objectName": "db-password", "key": "p"}]},
            ]),
        ))
        .expect("class");
    let target = c.target("sync");
    let mut node = c.client().await;
    node.node_publish_volume(publish_request(&target, "sync"))
        .await
        .expect("publish (sync failures never fail the mount)");

    use k8s_openapi::api::core::v1::{Event, Secret};
    let creds: Secret = c
        .fake
        .get("default", "app-creds")
        .expect("read")
        .expect("synced secret");
    let labels = creds.metadata.labels.clone().expect("labels");
    assert_eq!(
        labels
            .get("secrets-store.csi.k8s.io/managed")
            .map(String::as_str),
        Some("true")
    );
    assert_eq!(labels.get("team").map(String::as_str), Some("a"));
    assert_eq!(
        creds
            .data
            .as_ref()
            .and_then(|d| d.get("password"))
            .map(|b| b.0.clone()),
        Some(b"s3cr3t-one".to_vec())
    );
    let owners = creds.metadata.owner_references.clone().expect("owners");
    assert_eq!(
        (owners[0].kind.as_str(), owners[0].uid.as_str()),
        ("ReplicaSet", "rs-uid-1"),
        "owned by the pod's owner"
    );

    let tls: Secret = c
        .fake
        .get("default", "app-tls")
        .expect("read")
        .expect("tls secret");
    assert_eq!(tls.type_.as_deref(), Some("kubernetes.io/tls"));
    let data = tls.data.expect("data");
    assert!(
        String::from_utf8_lossy(&data["tls.key"].0).starts_with("-----BEGIN EC PRIVATE KEY-----")
    );
    assert_eq!(String::from_utf8_lossy(&data["tls.crt"].0), cert.pem());

    let foreign: Secret = c
        .fake
        .get("default", "foreign")
        .expect("read")
        .expect("foreign");
    assert_eq!(
        foreign.data.expect("data").get("x").map(|b| b.0.clone()),
        Some(b"x".to_vec()),
        "a Secret keyvol did not create is never overwritten"
    );
    // Upstream's sync metrics and the provider's keyvault_request, on the node's /metrics.
    let text = reqwest::get(format!("http://127.0.0.1:{}/metrics", c.node().metrics))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        text.contains("sync_k8s_secret_total{provider=\"azure\",os_type=\"linux\"} 2"),
        "{text}"
    );
    assert!(text.contains("k8s_secret_duration_sec_count"), "{text}");
    assert!(
        text.contains(
            "keyvault_request_count{object_type=\"secret\",object_name=\"db-password\",error=\"\""
        ),
        "{text}"
    );
    let events: Vec<Event> = c.fake.list(Some("default")).expect("events");
    assert!(
        events
            .iter()
            .any(|e| e.reason.as_deref() == Some("FailedToCreateSecret")
                && e.message.as_deref().is_some_and(|m| m.contains("foreign")))
    );
    assert!(
        events
            .iter()
            .all(|e| !e.message.clone().unwrap_or_default().contains("s3cr3t")),
        "no secret in events"
    );

    // Rotation updates the Secret's data and keeps its owners (upstream #2051 dropped them).
    tokio::task::block_in_place(|| c.vault.set_secret(VAULT, "db-password", "s3cr3t-two"));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    node.node_publish_volume(publish_request(&target, "sync"))
        .await
        .expect("republish");
    let creds: Secret = c
        .fake
        .get("default", "app-creds")
        .expect("read")
        .expect("synced secret");
    assert_eq!(
        creds
            .data
            .as_ref()
            .and_then(|d| d.get("password"))
            .map(|b| b.0.clone()),
        Some(b"s3cr3t-two".to_vec())
    );
    assert_eq!(
        creds.metadata.owner_references.expect("owners")[0].uid,
        "rs-uid-1"
    );

    // A pod without owners: its Secret is owned by the pod status, which the pod owns, so
    // deleting the pod garbage-collects both.
    c.fake
        .insert(&pod("solo", "uid-2", json!([])))
        .expect("pod");
    c.fake
        .insert(&synced_class("sync2", &["objectName: db-password\nobjectType: secret"], json!([{"secretName": "solo-creds", "type": "Opaque", "data": [{"objectName": "db-password", "key": "p"}]}])))
        .expect("class");
    let mut req = publish_request(&c.target("sync2"), "sync2");
    req.volume_context
        .insert("csi.storage.k8s.io/pod.name".into(), "solo".into());
    req.volume_context
        .insert("csi.storage.k8s.io/pod.uid".into(), "uid-2".into());
    node.node_publish_volume(req).await.expect("publish solo");
    let solo: Secret = c
        .fake
        .get("default", "solo-creds")
        .expect("read")
        .expect("solo secret");
    let owner = &solo.metadata.owner_references.expect("owners")[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("SecretProviderClassPodStatus", "solo-default-sync2")
    );
    c.fake
        .delete::<k8s_openapi::api::core::v1::Pod>("default", "solo")
        .expect("delete pod");
    c.fake.gc();
    assert!(
        c.fake
            .get::<SecretProviderClassPodStatus>("default", "solo-default-sync2")
            .expect("read")
            .is_none()
    );
    assert!(
        c.fake
            .get::<Secret>("default", "solo-creds")
            .expect("read")
            .is_none(),
        "garbage-collected with its owner chain"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_class_annotation_overrides_the_rotation_interval() {
    let c = Cluster::start(&[
        "--enable-secret-rotation=true",
        "--rotation-poll-interval=1s",
    ])
    .await;
    let mut slow = spc_object(
        "slow",
        "azure",
        &["objectName: db-password\nobjectType: secret"],
    );
    slow["metadata"]["annotations"] = json!({"keyvol.dev/rotation-poll-interval": "1h"});
    c.fake.insert(&slow).expect("class");
    let target = c.target("slow");
    let mut node = c.client().await;
    node.node_publish_volume(publish_request(&target, "slow"))
        .await
        .expect("publish");
    tokio::task::block_in_place(|| c.vault.set_secret(VAULT, "db-password", "s3cr3t-two"));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    node.node_publish_volume(publish_request(&target, "slow"))
        .await
        .expect("republish");
    assert_eq!(
        std::fs::read_to_string(target.join("db-password")).expect("file"),
        "s3cr3t-one",
        "the class's 1h interval applies, not the node's 1s"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rotation_loop_refreshes_without_republish_and_tells_the_pod() {
    // No --enable-secret-rotation: kubelet's republishes do nothing; keyvol's loop rotates.
    let c = Cluster::start(&["--rotation-loop-interval=1s"]).await;
    c.fake.insert(&pod("app", "uid-1", json!([]))).expect("pod");
    c.fake
        .insert(&spc_object(
            "loop",
            "azure",
            &["objectName: db-password\nobjectType: secret"],
        ))
        .expect("class");
    let target = c.target("loop");
    let mut node = c.client().await;
    node.node_publish_volume(publish_request(&target, "loop"))
        .await
        .expect("publish");
    let before = std::fs::read_link(target.join("..data")).expect("link");

    // Nothing changed in the vault: the loop leaves the files alone.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert_eq!(
        std::fs::read_link(target.join("..data")).expect("link"),
        before,
        "no swap without a change"
    );

    let version =
        tokio::task::block_in_place(|| c.vault.set_secret(VAULT, "db-password", "s3cr3t-two"));
    let mut rotated = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if std::fs::read_to_string(target.join("db-password")).expect("file") == "s3cr3t-two" {
            rotated = true;
            break;
        }
    }
    assert!(rotated, "the loop rotated the file");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let status: SecretProviderClassPodStatus = c
        .fake
        .get("default", "app-default-loop")
        .expect("read")
        .expect("status");
    assert_eq!(status.status.objects[0].version, version);
    use k8s_openapi::api::core::v1::Event;
    let events: Vec<Event> = c.fake.list(Some("default")).expect("events");
    assert!(
        events
            .iter()
            .any(|e| e.reason.as_deref() == Some("MountRotationComplete")
                && e.type_.as_deref() == Some("Normal")),
        "an event on the pod"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_example_class_mounts_through_the_daemon() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples");
    let seed_text = std::fs::read_to_string(format!("{root}/dev-vault-seed.yaml")).expect("seed");
    let class_text =
        std::fs::read_to_string(format!("{root}/secretproviderclass.yaml")).expect("class");
    let class_json: serde_json::Value = serde_saphyr::from_str(&class_text).expect("yaml");

    let fake = FakeKube::start().await.expect("fake API");
    fake.insert(&class_json).expect("class");
    let vault = DevVaultProc::start(&seed_text);
    let dir = tempfile::tempdir().expect("tempdir");
    write_kubeconfig(dir.path(), &fake.url());
    let node = NodeProc::start_in(dir, &vault.azure_args());
    let pods = tempfile::tempdir().expect("tempdir");
    let target = pods
        .path()
        .join("uid-1/volumes/kubernetes.io~csi/secrets/mount");

    let seed: serde_json::Value = serde_saphyr::from_str(&seed_text).expect("seed yaml");
    let client = &seed["clients"][0];
    let mut req = publish_request(&target, "keyvol-demo");
    req.secrets = BTreeMap::from([
        (
            "clientid".into(),
            client["clientId"].as_str().expect("id").to_owned(),
        ),
        (
            "clientsecret".into(),
            client["clientSecret"].as_str().expect("secret").to_owned(),
        ),
    ]);
    let mut csi = csi::node_client::NodeClient::new(
        keyvol_proto::uds::connect(node.csi_socket())
            .await
            .expect("socket"),
    );
    csi.node_publish_volume(req)
        .await
        .expect("the README's class mounts");
    assert_eq!(
        std::fs::read_to_string(target.join("db-password")).expect("file"),
        "correct-horse-battery-staple"
    );
    assert_eq!(
        std::fs::read_to_string(target.join("config/api-key")).expect("file"),
        "api-key-version-2"
    );
    assert_eq!(
        std::fs::read_to_string(target.join("config/api-key.previous")).expect("file"),
        "api-key-version-1"
    );
    assert_eq!(
        std::fs::read_to_string(target.join("greeting.txt")).expect("file"),
        "hello from keyvol\n"
    );
    csi.node_unpublish_volume(unpublish_request(&target, "keyvol-demo"))
        .await
        .expect("unpublish");
    assert!(!target.exists());
}

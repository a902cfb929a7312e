//! A publish path you can trust (issue 13): every way a publish can end — an error, kubelet's
//! deadline dropping the call, the node killed mid-fetch — ends with the right files or with
//! nothing mounted, and unpublish/unmount touch only what a volume writer made. Each test
//! reproduces a defect observed on the wave-1 code (named in its comment).

use std::path::Path;
use std::time::Duration;

use keyvol_proto::tonic::{self, Code};
use serde_json::json;

use crate::util::cluster::*;
use crate::util::*;

/// Values of the test seeds that must never appear in any output.
const SECRETS: &[&str] = &["s3cr3t-one", "key-one", CLIENT_SECRET];

fn assert_no_secrets(what: &str, text: &str) {
    for s in SECRETS {
        assert!(!text.contains(s), "a secret value reached {what}: {text}");
    }
}

/// Slows every secret read so a publish is still fetching when the test interrupts it.
fn slow_secrets(vault: &DevVaultProc) {
    vault.set_faults(json!([{ "route": "GET /secrets/*", "latencyMs": 4000 }]));
}

async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..400 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting until {what}");
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Wave 1: the tmpfs was mounted before the fetch; killed mid-fetch, the node left it mounted
/// and empty, and the retry answered "already mounted" — a pod started without its secrets
/// (upstream #1051 in a new form). With rotation on, the retry skipped too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_fetch_fetches_again_after_restart() {
    if !is_root() {
        eprintln!("skipped: needs root for tmpfs mounts");
        return;
    }
    for extra in [&[][..], &["--enable-secret-rotation"][..]] {
        let mut c = Cluster::start(extra).await;
        c.fake
            .insert(&spc_object(
                "spc",
                "azure",
                &["objectName: db-password\nobjectType: secret"],
            ))
            .expect("class");
        let target = c.target("spc");
        slow_secrets(&c.vault);
        let mut client = c.client().await;
        let request = publish_request(&target, "spc");
        let call = tokio::spawn(async move { client.node_publish_volume(request).await });
        wait_until("the tmpfs is mounted", || is_mounted(&target)).await;
        // kill -9 while the provider is still waiting on the vault.
        let dir = c.node.take().expect("node").stop();
        let _ = call.await;
        assert!(is_mounted(&target), "the killed node's tmpfs stays behind");
        assert!(entries(&target).is_empty(), "{:?}", entries(&target));

        c.vault.clear_faults();
        c.start_node(dir, extra);
        let mut client = c.client().await;
        client
            .node_publish_volume(publish_request(&target, "spc"))
            .await
            .expect("the retry publishes");
        assert_eq!(
            std::fs::read_to_string(target.join("db-password")).expect("the file is there"),
            "s3cr3t-one",
            "{extra:?}"
        );
        client
            .node_unpublish_volume(unpublish_request(&target, "spc"))
            .await
            .expect("unpublish");
        assert!(!is_mounted(&target) && !target.exists());
        assert_no_secrets("the node log", &c.node().log());
    }
}

/// Wave 1: kubelet's deadline dropped the call while the provider was fetching; the empty tmpfs
/// stayed mounted and counted as published.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_cancelled_by_the_callers_deadline_leaves_nothing_mounted() {
    let c = Cluster::start(&[]).await;
    c.fake
        .insert(&spc_object(
            "spc",
            "azure",
            &["objectName: db-password\nobjectType: secret"],
        ))
        .expect("class");
    let target = c.target("spc");
    slow_secrets(&c.vault);
    let mut client = c.client().await;
    let mut request = tonic::Request::new(publish_request(&target, "spc"));
    request.set_timeout(Duration::from_millis(1500));
    let err = client
        .node_publish_volume(request)
        .await
        .expect_err("the deadline passes first");
    assert!(
        matches!(err.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{err:?}"
    );
    wait_until("the cancelled publish is undone", || {
        !is_mounted(&target) && !target.exists()
    })
    .await;

    c.vault.clear_faults();
    client
        .node_publish_volume(publish_request(&target, "spc"))
        .await
        .expect("the retry publishes");
    assert_eq!(
        std::fs::read_to_string(target.join("db-password")).expect("file"),
        "s3cr3t-one"
    );
    client
        .node_unpublish_volume(unpublish_request(&target, "spc"))
        .await
        .expect("unpublish");
}

/// Wave 1: NodeUnpublishVolume ran `remove_dir_all` on any target, keyvol's or not, and
/// `umount2` followed a symlinked target to the link's destination.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unpublish_refuses_what_keyvol_did_not_make_and_never_follows_a_symlink() {
    let c = Cluster::start(&[]).await;
    let mut client = c.client().await;

    // A directory of someone else's files.
    let foreign = c.target("foreign");
    std::fs::create_dir_all(foreign.join("docs")).expect("mkdir");
    std::fs::write(foreign.join("docs/notes.txt"), "mine").expect("write");
    let err = client
        .node_unpublish_volume(unpublish_request(&foreign, "foreign"))
        .await
        .expect_err("refused");
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(err.message().contains("did not write"), "{}", err.message());
    assert_eq!(
        std::fs::read_to_string(foreign.join("docs/notes.txt")).expect("kept"),
        "mine"
    );

    // A symlink to a directory (a mounted tmpfs, when root): neither followed nor removed.
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let destination = elsewhere.path().join("volume");
    std::fs::create_dir(&destination).expect("mkdir");
    if is_root() {
        keyvol_core::tmpfs::mount_tmpfs(&destination, None).expect("mount");
    }
    std::fs::write(destination.join("keep"), "x").expect("write");
    let link = c.target("link");
    std::fs::create_dir_all(link.parent().expect("parent")).expect("mkdir");
    std::os::unix::fs::symlink(&destination, &link).expect("symlink");
    let err = client
        .node_unpublish_volume(unpublish_request(&link, "link"))
        .await
        .expect_err("refused");
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(err.message().contains("symbolic link"), "{}", err.message());
    assert!(std::fs::symlink_metadata(&link).is_ok(), "the link stays");
    assert!(
        destination.join("keep").exists(),
        "the destination is untouched"
    );
    if is_root() {
        assert!(is_mounted(&destination), "the destination stays mounted");
    }

    // Publishing into the symlink is refused before anything is mounted over its destination.
    c.fake
        .insert(&spc_object(
            "link",
            "azure",
            &["objectName: db-password\nobjectType: secret"],
        ))
        .expect("class");
    let err = client
        .node_publish_volume(publish_request(&link, "link"))
        .await
        .expect_err("refused");
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert_eq!(
        entries(&destination),
        ["keep"],
        "nothing written or mounted over it"
    );
    if is_root() {
        let table = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
        let stacked = table
            .lines()
            .filter(|l| l.split(' ').nth(4) == Some(destination.to_str().expect("utf8")))
            .count();
        assert_eq!(stacked, 1, "only the test's own mount is there");
        keyvol_core::tmpfs::unmount(&destination).expect("cleanup");
    }

    // An already-clean target is success (kubelet's retries).
    client
        .node_unpublish_volume(unpublish_request(&c.target("never-mounted"), "x"))
        .await
        .expect("nothing to do is success");
    assert_no_secrets("the node log", &c.node().log());
}

/// Wave 1: `keyvol unmount --target ~` would have wiped a home directory.
#[test]
fn keyvol_unmount_removes_only_a_volume() {
    let home = tempfile::tempdir().expect("tempdir");
    std::fs::write(home.path().join(".bashrc"), "alias ll='ls -l'").expect("write");
    std::fs::create_dir(home.path().join("projects")).expect("mkdir");
    let out = run(keyvol().args(["unmount", "--target"]).arg(home.path()));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("did not write"), "{}", stderr(&out));
    assert_eq!(entries(home.path()), [".bashrc", "projects"]);

    // A symlink to a directory is refused, never followed.
    let link = home.path().join("link");
    std::os::unix::fs::symlink(home.path().join("projects"), &link).expect("symlink");
    let out = run(keyvol().args(["unmount", "--target"]).arg(&link));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(home.path().join("projects").is_dir());

    // Missing: nothing to do.
    let out = run(keyvol()
        .args(["unmount", "--target"])
        .arg(home.path().join("absent")));
    assert!(out.status.success(), "{}", stderr(&out));
}

/// Wave 1: in a reused directory (`--no-tmpfs`), a user's `s1/notes.txt` was replaced by
/// keyvol's link `s1`, and every `..*` directory was removed.
#[test]
fn a_reused_directory_keeps_its_owners_entries() {
    let vault = DevVaultProc::start(&seed(
        "  - name: reuse-vault\n    secrets:\n      - name: s1\n        value: one\n      - name: s2\n        value: two\n",
    ));
    let dir = tempfile::tempdir().expect("tempdir");
    let target = dir.path().join("work");
    std::fs::create_dir_all(target.join("s1")).expect("mkdir");
    std::fs::write(target.join("s1/notes.txt"), "mine").expect("write");
    std::fs::create_dir(target.join("..backup")).expect("mkdir");
    let creds = creds_file(dir.path(), CLIENT_SECRET);
    let mount = |objects: &[&str]| {
        let class = write(dir.path(), "class.yaml", &class("reuse-vault", objects));
        run(keyvol()
            .args(["mount", "--no-tmpfs", "--class"])
            .arg(&class)
            .arg("--target")
            .arg(&target)
            .arg("--secrets-file")
            .arg(&creds)
            .args(vault.azure_args()))
    };
    let out = mount(&["objectName: s1\nobjectType: secret"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("did not write"), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(target.join("s1/notes.txt")).expect("kept"),
        "mine"
    );

    let out = mount(&["objectName: s2\nobjectType: secret"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = mount(&["objectName: s2\nobjectType: secret\nobjectAlias: s2-again"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let names = entries(&target);
    assert!(names.contains(&"..backup".to_owned()), "{names:?}");
    assert!(names.contains(&"s1".to_owned()), "{names:?}");
    assert!(
        !names.contains(&"s2".to_owned()),
        "a stale link of keyvol's is removed"
    );
    assert_eq!(
        std::fs::read_to_string(target.join("s2-again")).expect("file"),
        "two"
    );
}

/// Wave 1: a failed mount left behind the empty target directory it had created.
#[test]
fn a_failed_mount_leaves_nothing_behind() {
    let vault = DevVaultProc::start(&seed(
        "  - name: fail-vault\n    secrets:\n      - name: s1\n        value: one\n",
    ));
    let dir = tempfile::tempdir().expect("tempdir");
    let target = dir.path().join("never");
    let class = write(
        dir.path(),
        "class.yaml",
        &class("fail-vault", &["objectName: s1\nobjectType: secret"]),
    );
    let creds = creds_file(dir.path(), "not-the-secret");
    let out = run(keyvol()
        .args(["mount", "--class"])
        .arg(&class)
        .arg("--target")
        .arg(&target)
        .arg("--secrets-file")
        .arg(&creds)
        .args(vault.azure_args())
        .args(if is_root() {
            &[][..]
        } else {
            &["--no-tmpfs"][..]
        }));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(!target.exists(), "the directory keyvol created is gone");
    assert_no_secrets("stderr", &stderr(&out));
}

/// Wave 1: `keyvol mount --class` and `--secrets-file` read whole files with no cap.
#[test]
fn inputs_a_user_names_are_read_with_a_cap() {
    let dir = tempfile::tempdir().expect("tempdir");
    let class = write(
        dir.path(),
        "class.yaml",
        &class("v", &["objectName: s\nobjectType: secret"]),
    );
    let big = dir.path().join("big.yaml");
    std::fs::write(&big, vec![b'#'; 3 * 1024 * 1024]).expect("write");
    for args in [
        vec!["--class".to_owned(), "/dev/zero".to_owned()],
        vec!["--class".to_owned(), big.display().to_string()],
        vec![
            "--class".to_owned(),
            class.display().to_string(),
            "--secrets-file".to_owned(),
            "/dev/zero".to_owned(),
        ],
    ] {
        let started = std::time::Instant::now();
        let out = run(keyvol()
            .arg("mount")
            .args(&args)
            .arg("--target")
            .arg(dir.path().join("t")));
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(started.elapsed() < Duration::from_secs(10), "{args:?}");
        assert!(!stderr(&out).contains("###"), "never the contents");
    }
}

/// Wave 1: a second `keyvol node` on the same endpoint silently took the socket of a live one.
#[test]
fn a_second_node_on_a_live_endpoint_exits_with_a_clear_error() {
    let first = NodeProc::start(&[]);
    let mut second = keyvol()
        .arg("node")
        .arg(format!(
            "--endpoint=unix://{}",
            first.csi_socket().display()
        ))
        .arg("--plugin-registration-dir=")
        .arg("--health-addr=")
        .arg("--metrics-addr=")
        .env("KUBECONFIG", first.dir.path().join("no-kubeconfig"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut exited = false;
    for _ in 0..400 {
        if second.try_wait().expect("wait").is_some() {
            exited = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    if !exited {
        let _ = second.kill();
    }
    let out = second.wait_with_output().expect("output");
    assert!(exited, "the second node kept running (it took the socket)");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("another process is serving"),
        "{}",
        stderr(&out)
    );
    assert!(
        std::os::unix::net::UnixStream::connect(first.csi_socket()).is_ok(),
        "the first node still serves"
    );
}

/// Wave 1: non-UTF-8 arguments to `keyvol flexvol` printed clap's text; kubelet parses the
/// output as JSON.
#[test]
fn every_flexvol_call_answers_json_whatever_its_arguments() {
    use std::os::unix::ffi::OsStrExt;
    let bad = std::ffi::OsStr::from_bytes(b"/var/lib/kubelet/\xff\xfe");
    for args in [
        vec![
            std::ffi::OsStr::new("mount"),
            bad,
            std::ffi::OsStr::new("{}"),
        ],
        vec![std::ffi::OsStr::new("--no-such-flag")],
        vec![bad],
    ] {
        let out = run(keyvol().arg("flexvol").args(&args));
        let reply: serde_json::Value =
            serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        assert_eq!(reply["status"], "Failure", "{args:?}");
        assert!(out.stderr.is_empty(), "{args:?}: {}", stderr(&out));
    }
}

/// Wave 1: 100 distinct volumes published and unpublished left the node at 189 open
/// descriptors (11 at start).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn descriptors_return_to_their_idle_level_after_volumes_come_and_go() {
    let c = Cluster::start(&[]).await;
    let classes: Vec<String> = (0..10).map(|i| format!("spc{i}")).collect();
    for name in &classes {
        c.fake
            .insert(&spc_object(
                name,
                "azure",
                &["objectName: db-password\nobjectType: secret"],
            ))
            .expect("class");
    }
    let mut client = c.client().await;
    // Warm up: the first publish opens the connections a node keeps (API server, vault).
    let warm = c.target("warm");
    c.fake
        .insert(&spc_object(
            "warm",
            "azure",
            &["objectName: db-password\nobjectType: secret"],
        ))
        .expect("class");
    client
        .node_publish_volume(publish_request(&warm, "warm"))
        .await
        .expect("warm publish");
    client
        .node_unpublish_volume(unpublish_request(&warm, "warm"))
        .await
        .expect("warm unpublish");
    let idle = c.node().open_fds();
    let mut calls = Vec::new();
    for i in 0..100 {
        let class = &classes[i % classes.len()];
        let target = c
            .pods
            .join(format!("uid-{i}/volumes/kubernetes.io~csi/v/mount"));
        let mut request = publish_request(&target, class);
        request.volume_id = format!("vol-{i}");
        request
            .volume_context
            .insert("csi.storage.k8s.io/pod.name".into(), format!("app-{i}"));
        let mut client = client.clone();
        calls.push(tokio::spawn(async move {
            client.node_publish_volume(request).await.expect("publish");
            client
                .node_unpublish_volume(keyvol_proto::csi::v1::NodeUnpublishVolumeRequest {
                    volume_id: format!("vol-{i}"),
                    target_path: target.display().to_string(),
                })
                .await
                .expect("unpublish");
        }));
    }
    for call in calls {
        call.await.expect("task");
    }
    let after = c.node().open_fds();
    eprintln!("open descriptors: idle {idle}, after 100 volumes {after}");
    assert!(
        after <= idle + 8,
        "descriptors grew from {idle} to {after} after 100 volumes came and went"
    );
}

/// A service-account token as kubelet hands it to the driver (a JWT; never to be echoed).
const SA_TOKEN: &str =
    "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6ZGVmYXVsdDphcHAifQ.c2lnbmF0dXJl";

/// No secret value, client secret or token in any log line (at -v=5), gRPC error, event,
/// metric, pod status or CLI output the node and `keyvol mount` produce — on success, on sync,
/// and on each kind of failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_or_token_reaches_any_output() {
    let c = Cluster::start(&[
        "-v=5",
        "--enable-secret-rotation=true",
        "--rotation-poll-interval=1s",
    ])
    .await;
    c.fake
        .insert(&json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "app", "namespace": "default", "uid": "uid-1"},
            "spec": {"containers": [{"name": "c", "image": "app"}], "nodeName": "node-a"},
        }))
        .expect("pod");
    let mut synced = spc_object(
        "good",
        "azure",
        &[
            "objectName: db-password\nobjectType: secret",
            "objectName: api-key\nobjectType: secret",
        ],
    );
    synced["spec"]["secretObjects"] = json!([{"secretName": "app-creds", "type": "Opaque",
        "data": [{"objectName": "db-password", "key": "password"}]}]);
    c.fake.insert(&synced).expect("class");
    c.fake
        .insert(&spc_object(
            "missing",
            "azure",
            &["objectName: no-such-secret\nobjectType: secret"],
        ))
        .expect("class");
    let mut client = c.client().await;
    let mut outputs: Vec<(String, String)> = Vec::new();

    let with_token = |mut r: keyvol_proto::csi::v1::NodePublishVolumeRequest| {
        r.volume_context.insert(
            "csi.storage.k8s.io/serviceAccount.tokens".into(),
            json!({"api://AzureADTokenExchange": {"token": SA_TOKEN, "expirationTimestamp": "2030-01-01T00:00:00Z"}}).to_string(),
        );
        r
    };
    let good = c.target("good");
    client
        .node_publish_volume(with_token(publish_request(&good, "good")))
        .await
        .expect("publish");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    client
        .node_publish_volume(with_token(publish_request(&good, "good")))
        .await
        .expect("republish (rotation)");
    for (class, secret) in [("missing", CLIENT_SECRET), ("good", "not-the-secret")] {
        let mut r = with_token(publish_request(&c.target(&format!("{class}-x")), class));
        r.secrets.insert("clientsecret".into(), secret.into());
        let err = client.node_publish_volume(r).await.expect_err("fails");
        outputs.push(("gRPC error".into(), err.message().to_owned()));
    }
    client
        .node_unpublish_volume(unpublish_request(&good, "good"))
        .await
        .expect("unpublish");

    use k8s_openapi::api::core::v1::Event;
    let events: Vec<Event> = c.fake.list(Some("default")).expect("events");
    outputs.push((
        "events".into(),
        serde_json::to_string(&events).expect("json"),
    ));
    let statuses: Vec<keyvol_node::crd::SecretProviderClassPodStatus> =
        c.fake.list(Some("default")).expect("statuses");
    outputs.push((
        "pod statuses".into(),
        serde_json::to_string(&statuses).expect("json"),
    ));
    let metrics = tokio::task::spawn_blocking({
        let port = c.node().metrics;
        move || {
            reqwest::blocking::get(format!("http://127.0.0.1:{port}/metrics"))
                .and_then(|r| r.text())
                .expect("metrics")
        }
    })
    .await
    .expect("metrics");
    outputs.push(("metrics".into(), metrics));
    let log = c.node().log();
    assert!(log.contains("outcome"), "the log has the publish lines");
    outputs.push(("node log at -v=5".into(), log));

    // `keyvol mount` at -v=5, wrong secret and success.
    let dir = tempfile::tempdir().expect("tempdir");
    let class_file = write(
        dir.path(),
        "class.yaml",
        &class(VAULT, &["objectName: db-password\nobjectType: secret"]),
    );
    for secret in ["not-the-secret", CLIENT_SECRET] {
        let creds = creds_file(dir.path(), secret);
        let target = dir.path().join(format!("t-{}", secret.len()));
        let out = tokio::task::block_in_place(|| {
            run(keyvol()
                .args(["-v=5", "mount", "--class"])
                .arg(&class_file)
                .arg("--target")
                .arg(&target)
                .arg("--secrets-file")
                .arg(&creds)
                .args(c.vault.azure_args())
                .args(if is_root() {
                    &[][..]
                } else {
                    &["--no-tmpfs"][..]
                }))
        });
        outputs.push((
            "keyvol mount".into(),
            format!("{}{}", stdout(&out), stderr(&out)),
        ));
        let _ = tokio::task::block_in_place(|| {
            run(keyvol().args(["unmount", "--target"]).arg(&target))
        });
    }

    for (what, text) in &outputs {
        assert_no_secrets(what, text);
        assert!(
            !text.contains(SA_TOKEN),
            "the service-account token reached {what}"
        );
        // Entra and dev-vault access tokens are JWTs: `eyJ` starts every one.
        assert!(!text.contains("eyJ"), "a token reached {what}: {text}");
    }
}

/// Reads `path` as a non-root user (65534) whose only group is `gid`; true when it could.
fn readable_by_group(path: &Path, gid: u32) -> bool {
    std::process::Command::new("chroot")
        .arg(format!("--userspec=65534:{gid}"))
        .arg(format!("--groups={gid}"))
        .arg("/")
        .arg("cat")
        .arg(path)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Issue 17 (#858, #346, Azure #225): files a non-root pod can read. With a mount group (the
/// pod's fsGroup), every file, directory and link is group-owned by it and files are
/// group-readable; `filePermission` still sets the owner bits and may remove world access.
#[test]
fn a_mount_group_makes_files_readable_by_that_group_only() {
    if !is_root() {
        eprintln!("skipped: needs root to own files by another group and to read as another user");
        return;
    }
    use std::os::unix::fs::MetadataExt;
    let vault = DevVaultProc::start(&seed(
        "  - name: group-vault\n    secrets:\n      - name: s1\n        value: one\n",
    ));
    let dir = tempfile::tempdir().expect("tempdir");
    let target = dir.path().join("mount");
    let class_file = write(
        dir.path(),
        "class.yaml",
        &class(
            "group-vault",
            &[
                "objectName: s1\nobjectType: secret\nobjectAlias: nested/s1\nfilePermission: \"0600\"",
            ],
        ),
    );
    let creds = creds_file(dir.path(), CLIENT_SECRET);
    let out = run(keyvol()
        .args(["mount", "--group", "4242", "--class"])
        .arg(&class_file)
        .arg("--target")
        .arg(&target)
        .arg("--secrets-file")
        .arg(&creds)
        .args(vault.azure_args()));
    assert!(out.status.success(), "{}", stderr(&out));
    let file = target.join("nested/s1");
    let meta = std::fs::metadata(&file).expect("meta");
    assert_eq!(meta.gid(), 4242);
    assert_eq!(
        meta.mode() & 0o777,
        0o640,
        "owner bits from filePermission, group may read"
    );
    for path in [target.clone(), target.join("..data"), target.join("nested")] {
        assert_eq!(
            std::fs::metadata(&path).expect("meta").gid(),
            4242,
            "{}",
            path.display()
        );
    }
    assert!(
        readable_by_group(&file, 4242),
        "a non-root member of the group reads it"
    );
    assert!(!readable_by_group(&file, 4243), "anyone else cannot");
    let out = run(keyvol().args(["unmount", "--target"]).arg(&target));
    assert!(out.status.success(), "{}", stderr(&out));
}

/// The same through `keyvol node`: kubelet passes the pod's fsGroup as the volume mount group.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubelets_volume_mount_group_reaches_the_files() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    use std::os::unix::fs::MetadataExt;
    let c = Cluster::start(&[]).await;
    c.fake
        .insert(&spc_object(
            "grp",
            "azure",
            &["objectName: db-password\nobjectType: secret\nfilePermission: \"0400\""],
        ))
        .expect("class");
    let target = c.target("grp");
    // A container reaches the volume through its own bind mount; on the host the reader must
    // get through the pod directories, so open them up as a container's view would be.
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(target.parent().expect("parent")).expect("mkdir");
        let mut dir = target.parent().expect("parent");
        while dir != c.pods.parent().expect("root") {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
            dir = dir.parent().expect("parent");
        }
    }
    let mut request = publish_request(&target, "grp");
    if let Some(keyvol_proto::csi::v1::volume_capability::AccessType::Mount(m)) = request
        .volume_capability
        .as_mut()
        .and_then(|cap| cap.access_type.as_mut())
    {
        m.volume_mount_group = "2000".into();
    }
    let mut client = c.client().await;
    client.node_publish_volume(request).await.expect("publish");
    let file = target.join("db-password");
    let meta = std::fs::metadata(&file).expect("meta");
    assert_eq!((meta.gid(), meta.mode() & 0o777), (2000, 0o440));
    let caps = tokio::task::block_in_place(|| readable_by_group(&file, 2000));
    assert!(caps, "readable by the pod's fsGroup");
    client
        .node_unpublish_volume(unpublish_request(&target, "grp"))
        .await
        .expect("unpublish");
}

/// Faults of the vault (errors, throttling with small and huge `Retry-After`, dropped
/// connections, answers slower than the deadline): each mount ends in bounded time with the
/// files or with nothing, never echoes a secret, and the next mount after the fault succeeds.
#[test]
fn vault_faults_end_in_bounded_time_with_nothing_half_written() {
    let vault = DevVaultProc::start(&seed(
        "  - name: fault-vault\n    secrets:\n      - name: s1\n        value: fault-secret-one\n      - name: s2\n        value: fault-secret-two\n",
    ));
    let dir = tempfile::tempdir().expect("tempdir");
    let class_file = write(
        dir.path(),
        "class.yaml",
        &class(
            "fault-vault",
            &[
                "objectName: s1\nobjectType: secret",
                "objectName: s2\nobjectType: secret",
            ],
        ),
    );
    let creds = creds_file(dir.path(), CLIENT_SECRET);
    let mount = |target: &Path| {
        let started = std::time::Instant::now();
        let out = run(keyvol()
            .args(["mount", "--azure-mount-timeout", "4s", "--class"])
            .arg(&class_file)
            .arg("--target")
            .arg(target)
            .arg("--secrets-file")
            .arg(&creds)
            .args(vault.azure_args())
            .args(if is_root() {
                &[][..]
            } else {
                &["--no-tmpfs"][..]
            }));
        (out, started.elapsed())
    };
    // (rule, whether the mount succeeds in spite of it)
    let cases = [
        (
            json!({"route": "GET /secrets/*", "errorRate": 1, "errorStatus": 500}),
            false,
        ),
        (
            json!({"route": "GET /secrets/*", "errorRate": 1, "errorStatus": 503}),
            false,
        ),
        (
            json!({"route": "GET /secrets/*", "throttleCount": 1, "retryAfterSecs": 1}),
            true,
        ),
        (
            json!({"route": "GET /secrets/*", "throttleRate": 1, "retryAfterSecs": 3600}),
            false,
        ),
        (json!({"route": "GET /secrets/*", "dropRate": 1}), false),
        (json!({"route": "GET /secrets/*", "latencyMs": 8000}), false),
        (
            json!({"route": "*", "errorRate": 0.5, "errorStatus": 503}),
            true,
        ),
    ];
    for (i, (rule, succeeds)) in cases.into_iter().enumerate() {
        vault.set_faults(json!([rule.clone()]));
        let target = dir.path().join(format!("t{i}"));
        let (out, took) = mount(&target);
        let text = format!("{}{}", stdout(&out), stderr(&out));
        assert!(took < Duration::from_secs(15), "{rule}: took {took:?}");
        for secret in ["fault-secret-one", "fault-secret-two", CLIENT_SECRET] {
            assert!(!text.contains(secret), "{rule}: a secret in the output");
        }
        if out.status.success() {
            assert!(succeeds, "{rule}: expected a failure, got {text}");
            assert_eq!(
                std::fs::read_to_string(target.join("s2")).expect("complete"),
                "fault-secret-two"
            );
            let _ = run(keyvol().args(["unmount", "--target"]).arg(&target));
        } else {
            // Transient faults (a 50 % error rate) may still exhaust the retries; never a
            // half-written volume.
            assert!(
                !target.exists(),
                "{rule}: something was left at the target: {text}"
            );
        }
        vault.clear_faults();
        let (out, _) = mount(&target);
        assert!(
            out.status.success(),
            "{rule}: the next mount: {}",
            stderr(&out)
        );
        assert_eq!(
            std::fs::read_to_string(target.join("s1")).expect("file"),
            "fault-secret-one"
        );
        let _ = run(keyvol().args(["unmount", "--target"]).arg(&target));
    }
}

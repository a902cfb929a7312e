//! Hostile SecretProviderClasses and misbehaving services, through the real binary: a
//! `cloudEnvFileName` pointing at `/dev/zero`, at a huge file or outside `--cloud-env-dir`;
//! object names and versions outside Key Vault's syntax; an oversized or deeply nested
//! `objects` list; a token endpoint that answers 429 with `Retry-After: 3600`; a vault or token
//! endpoint that answers 500. Each must fail fast, with a message naming the field or the
//! endpoint, without a request to the vault where the class is at fault, and without the node
//! growing.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use keyvol_proto::tonic::Code;
use serde_json::json;

use crate::util::cluster::{Cluster, spc_object as kube_class};
use crate::util::*;

const VAULT: &str = "keyvol-hostile";

/// Route template of the Entra v2 token endpoint in the dev vault (fault rules, counters).
const TOKEN_ROUTE: &str = "POST /{tenant}/oauth2/v2.0/token";

/// Longest a refused class may take to fail. Everything here fails before any network call
/// or after one answer; seconds mean a wait that should not have happened.
const FAST: Duration = Duration::from_secs(5);

/// Peak resident size the node may reach while refusing hostile classes. An idle node sits
/// well below it; reading a 512 MiB file (or `/dev/zero`) whole goes far above.
const NODE_PEAK_KIB: u64 = 128 * 1024;

fn hostile_seed() -> String {
    seed(&format!(
        "  - name: {VAULT}\n    secrets:\n      - name: s1\n        value: s1-value\n"
    ))
}

/// A class for [`VAULT`] with `objects` items and extra parameters (`key: value` lines,
/// values YAML-quoted by the caller).
fn class_with(items: &[&str], params: &[(&str, String)]) -> String {
    let mut extra = String::new();
    for (k, v) in params {
        extra.push_str(&format!("    {k}: {v}\n"));
    }
    class(VAULT, items).replace("    objects: |\n", &format!("{extra}    objects: |\n"))
}

/// Runs `keyvol mount` of `class_text` against `vault` with `flags`; returns the output and
/// how long it took.
fn mount(
    vault: &DevVaultProc,
    target: &Target,
    class_text: &str,
    flags: &[&str],
) -> (Output, Duration) {
    let class_file = write(target.dir.path(), "class.yaml", class_text);
    let creds = creds_file(target.dir.path(), CLIENT_SECRET);
    let started = Instant::now();
    let out = run(keyvol()
        .arg("mount")
        .arg("--class")
        .arg(&class_file)
        .arg("--target")
        .arg(&target.path)
        .arg("--secrets-file")
        .arg(&creds)
        .args(vault.azure_args())
        .args(target.backing_args())
        .args(flags));
    (out, started.elapsed())
}

/// The last line of stderr: the CLI's error.
fn last_line(out: &Output) -> String {
    stderr(out).lines().last().unwrap_or_default().to_owned()
}

/// Requests the dev vault has answered so far.
fn requests(vault: &DevVaultProc) -> u64 {
    vault.counters()["total"].as_u64().expect("total")
}

/// A sparse file of `size` bytes (no disk used) at `path`.
fn sparse(path: &Path, size: u64) -> PathBuf {
    let f = std::fs::File::create(path).expect("create");
    f.set_len(size).expect("set_len");
    path.to_path_buf()
}

/// A custom-cloud file for the public cloud's names (so `--azure-connect-to` reaches the dev
/// vault), with a marker that must never appear in a message.
fn cloud_json(marker: &str) -> String {
    format!(
        r#"{{"name":"AzureStackCloud","activeDirectoryEndpoint":"https://login.microsoftonline.com/","keyVaultEndpoint":"https://vault.azure.net/","keyVaultDNSSuffix":"vault.azure.net","resourceManagerEndpoint":"{marker}"}}"#
    )
}

#[test]
fn object_names_and_versions_outside_key_vaults_syntax_fail_before_any_request() {
    let vault = DevVaultProc::start(&hostile_seed());
    // Each once fetched `s1` (or `GET /keys/k1/`) and recorded an object id that does not exist.
    let cases = [
        (
            "objectName: \"s\\n1\"\nobjectAlias: a",
            "objects[1].objectName: \"s\\n1\"",
        ),
        (
            "objectName: \"s\\t1\"\nobjectAlias: a",
            "objects[1].objectName: \"s\\t1\"",
        ),
        (
            "objectName: k1/../s1\nobjectAlias: a",
            "objects[1].objectName: \"k1/../s1\"",
        ),
        (
            "objectName: \"%2e%2e/keys/k1\"\nobjectAlias: a",
            "objects[1].objectName: \"%2e%2e/keys/k1\"",
        ),
        (
            "objectName: s1\nobjectAlias: a\nobjectVersion: ../../keys/k1",
            "objects[1].objectVersion: \"../../keys/k1\"",
        ),
        (
            "objectName: s1\nobjectAlias: a\nobjectVersion: \"0011\\u00002233\"",
            "objects[1].objectVersion: \"0011\\0",
        ),
    ];
    for (item, want) in cases {
        let target = Target::new();
        let text = class_with(
            &[
                "objectName: s1\nobjectType: secret",
                &format!("{item}\nobjectType: secret"),
            ],
            &[],
        );
        let (out, took) = mount(&vault, &target, &text, &[]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{item:?} was accepted: {}",
            stderr(&out)
        );
        let line = last_line(&out);
        assert!(line.contains(want), "{item:?}: {line}");
        assert!(took < FAST, "{item:?} took {took:?}");
        assert!(!target.is_mounted());
    }
    assert_eq!(
        requests(&vault),
        0,
        "no request reached the dev vault: {}",
        vault.counters()
    );
}

#[test]
fn oversized_and_deeply_nested_objects_fail_fast_naming_the_field() {
    let vault = DevVaultProc::start(&hostile_seed());
    let valid = "objectName: s1\nobjectType: secret";
    // 1 MiB of an otherwise valid list (a long unknown key): over the parameter's cap, under the
    // class file's (which `keyvol mount` applies first; the node gets classes from the API).
    let huge = format!("{valid}\npadding: {}", "x".repeat(1 << 20));
    let target = Target::new();
    let (out, took) = mount(&vault, &target, &class_with(&[&huge], &[]), &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(last_line(&out).contains("objects: "), "{}", last_line(&out));
    assert!(
        last_line(&out).len() < 500,
        "the message does not echo the input"
    );
    assert!(took < FAST, "took {took:?}");

    // 100,000 nested flow sequences, as the whole parameter and inside one item.
    let deep = "[".repeat(100_000);
    let whole = class(VAULT, &[]).replace(
        "    objects: |\n      array:\n",
        &format!("    objects: |\n      {deep}\n"),
    );
    for (text, field) in [
        (whole, "objects: "),
        (class_with(&[&deep], &[]), "objects[0]: "),
    ] {
        let target = Target::new();
        let (out, took) = mount(&vault, &target, &text, &[]);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        let line = last_line(&out);
        assert!(line.contains(field) && line.contains("nest"), "{line}");
        assert!(
            line.len() < 500,
            "the message does not echo the input: {line}"
        );
        assert!(took < FAST, "took {took:?}");
    }
    assert_eq!(requests(&vault), 0, "{}", vault.counters());
}

#[test]
fn cloud_env_files_outside_the_directory_are_refused_alike_whether_they_exist_or_not() {
    let vault = DevVaultProc::start(&hostile_seed());
    let clouds = tempfile::tempdir().expect("tempdir");
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let marker = "marker-3b1f-do-not-echo";
    let exists = write(elsewhere.path(), "cloud.json", &cloud_json(marker));
    let missing = elsewhere.path().join("missing.json");
    let dir_flag = format!("--cloud-env-dir={}", clouds.path().display());
    let mut lines = Vec::new();
    for path in [&exists, &missing] {
        let target = Target::new();
        let text = class_with(
            &["objectName: s1\nobjectType: secret"],
            &[
                ("cloudName", "AzureStackCloud".into()),
                (
                    "cloudEnvFileName",
                    json!(path.display().to_string()).to_string(),
                ),
            ],
        );
        let (out, took) = mount(&vault, &target, &text, &[&dir_flag]);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(took < FAST);
        let line = last_line(&out);
        assert!(
            !stderr(&out).contains(marker),
            "the file's content leaked: {line}"
        );
        assert!(line.contains("cloudEnvFileName: "), "{line}");
        lines.push(line.replace(&path.display().to_string(), "<path>"));
    }
    assert_eq!(
        lines[0], lines[1],
        "the messages tell whether the outside file exists"
    );

    // `..` out of the directory and a link inside it pointing out are refused the same way.
    std::os::unix::fs::symlink(&exists, clouds.path().join("link-out.json")).expect("symlink");
    for name in ["../cloud.json", "link-out.json"] {
        let target = Target::new();
        let text = class_with(
            &["objectName: s1\nobjectType: secret"],
            &[
                ("cloudName", "AzureStackCloud".into()),
                ("cloudEnvFileName", json!(name).to_string()),
            ],
        );
        let (out, _) = mount(&vault, &target, &text, &[&dir_flag]);
        assert_eq!(out.status.code(), Some(2), "{name}: {}", stderr(&out));
        assert!(!stderr(&out).contains(marker), "{name}: {}", stderr(&out));
    }

    // Without --cloud-env-dir, custom clouds are off and the operator is told how to turn them on.
    let target = Target::new();
    let text = class_with(
        &["objectName: s1\nobjectType: secret"],
        &[
            ("cloudName", "AzureStackCloud".into()),
            ("cloudEnvFileName", "cloud.json".into()),
        ],
    );
    let (out, _) = mount(&vault, &target, &text, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        last_line(&out).contains("--cloud-env-dir"),
        "{}",
        last_line(&out)
    );
    assert_eq!(requests(&vault), 0, "{}", vault.counters());
}

#[test]
fn a_cloud_env_file_inside_the_directory_is_used_also_through_a_configmap_style_link() {
    let vault = DevVaultProc::start(&hostile_seed());
    let clouds = tempfile::tempdir().expect("tempdir");
    // A ConfigMap volume: `<file> -> ..data/<file>`, `..data -> ..<timestamp>`.
    std::fs::create_dir(clouds.path().join("..2024_01_01")).expect("dir");
    write(
        &clouds.path().join("..2024_01_01"),
        "stack.json",
        &cloud_json("x"),
    );
    std::os::unix::fs::symlink("..2024_01_01", clouds.path().join("..data")).expect("symlink");
    std::os::unix::fs::symlink("..data/stack.json", clouds.path().join("stack.json"))
        .expect("symlink");
    let dir_flag = format!("--cloud-env-dir={}", clouds.path().display());
    let absolute = clouds.path().join("stack.json").display().to_string();
    for name in ["stack.json", absolute.as_str()] {
        let target = Target::new();
        let text = class_with(
            &["objectName: s1\nobjectType: secret"],
            &[
                ("cloudName", "AzureStackCloud".into()),
                ("cloudEnvFileName", json!(name).to_string()),
            ],
        );
        let (out, _) = mount(&vault, &target, &text, &[&dir_flag]);
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        assert_eq!(target.read("s1"), "s1-value");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloud_env_files_that_never_end_fail_fast_and_the_node_stays_small() {
    let clouds = tempfile::tempdir().expect("tempdir");
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let c = Cluster::start(&[&format!("--cloud-env-dir={}", clouds.path().display())]).await;
    let mut node = c.client().await;
    let huge_outside = sparse(&elsewhere.path().join("huge.json"), 512 << 20);
    sparse(&clouds.path().join("huge.json"), 512 << 20);
    let cases = [
        huge_outside.display().to_string(),
        "huge.json".to_owned(),
        "/dev/zero".to_owned(),
        "../../../../../../dev/zero".to_owned(),
    ];
    for (i, file) in cases.iter().enumerate() {
        let name = format!("stack{i}");
        let mut spc = kube_class(
            &name,
            "azure",
            &["objectName: db-password\nobjectType: secret"],
        );
        spc["spec"]["parameters"]["cloudName"] = json!("AzureStackCloud");
        spc["spec"]["parameters"]["cloudEnvFileName"] = json!(file);
        c.fake.insert(&spc).expect("class");
        let started = Instant::now();
        let err = node
            .node_publish_volume(publish_request(&c.target(&name), &name))
            .await
            .expect_err("refused");
        let took = started.elapsed();
        assert_eq!(
            err.code(),
            Code::InvalidArgument,
            "{file}: {}",
            err.message()
        );
        assert!(
            err.message().contains("cloudEnvFileName: "),
            "{}",
            err.message()
        );
        assert!(took < FAST, "{file} took {took:?}");
        let peak = c.node().memory_kib("VmHWM");
        assert!(
            peak < NODE_PEAK_KIB,
            "{file}: the node peaked at {peak} KiB"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_objects_through_the_node_fail_fast_and_the_node_stays_small() {
    let c = Cluster::start(&[]).await;
    let mut node = c.client().await;
    let huge = format!(
        "objectName: db-password\nobjectType: secret\npadding: {}",
        "x".repeat(10 << 20)
    );
    let deep = "[".repeat(100_000);
    for (name, items, want) in [
        ("huge", [huge.as_str()], "objects: is 10241 KiB"),
        ("deep", [deep.as_str()], "objects[0]: is nested deeper"),
    ] {
        c.fake
            .insert(&kube_class(name, "azure", &items))
            .expect("class");
        let started = Instant::now();
        let err = node
            .node_publish_volume(publish_request(&c.target(name), name))
            .await
            .expect_err("refused");
        assert_eq!(
            err.code(),
            Code::InvalidArgument,
            "{name}: {}",
            err.message()
        );
        assert!(err.message().contains(want), "{}", err.message());
        assert!(started.elapsed() < FAST);
    }
    let peak = c.node().memory_kib("VmHWM");
    assert!(peak < NODE_PEAK_KIB, "the node peaked at {peak} KiB");
    let counters = tokio::task::block_in_place(|| c.vault.counters());
    assert_eq!(
        counters["total"], 0,
        "no request reached the dev vault: {counters}"
    );
}

#[test]
fn a_token_endpoint_429_whose_retry_after_outlasts_the_deadline_fails_at_once() {
    let fault = format!("{TOKEN_ROUTE}:throttleCount=1000,retryAfterSecs=3600");
    let vault = DevVaultProc::start_with(&hostile_seed(), &["--fault", &fault]);
    let target = Target::new();
    let text = class_with(&["objectName: s1\nobjectType: secret"], &[]);
    let (out, took) = mount(&vault, &target, &text, &["--azure-mount-timeout=20s"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(took < FAST, "waited {took:?} for a Retry-After of an hour");
    let line = last_line(&out);
    assert!(line.contains("throttled by the token endpoint"), "{line}");
    assert!(line.contains("/oauth2/v2.0/token"), "{line}");
    assert_eq!(
        vault.counters()["byRoute"][TOKEN_ROUTE],
        1,
        "{}",
        vault.counters()
    );
}

#[test]
fn a_token_endpoint_429_whose_retry_after_fits_is_waited_out() {
    let fault = format!("{TOKEN_ROUTE}:throttleCount=1,retryAfterSecs=2");
    let vault = DevVaultProc::start_with(&hostile_seed(), &["--fault", &fault]);
    let target = Target::new();
    let text = class_with(&["objectName: s1\nobjectType: secret"], &[]);
    let (out, took) = mount(&vault, &target, &text, &["--azure-mount-timeout=20s"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(took >= Duration::from_secs(2), "did not wait: {took:?}");
    assert_eq!(target.read("s1"), "s1-value");
    assert_eq!(
        vault.counters()["byRoute"][TOKEN_ROUTE],
        2,
        "{}",
        vault.counters()
    );
}

#[test]
fn server_errors_of_the_vault_and_the_token_endpoint_are_reported_as_they_are() {
    let cases = [
        (
            "GET /secrets/*",
            500,
            "HTTP 500 InternalServerError",
            "the vault",
        ),
        (
            "GET /secrets/*",
            503,
            "HTTP 503 ServiceUnavailable",
            "the vault",
        ),
        (
            TOKEN_ROUTE,
            500,
            "HTTP 500 InternalServerError",
            "the token endpoint",
        ),
    ];
    for (route, status, want, service) in cases {
        let fault = format!("{route}:errorRate=1,errorStatus={status}");
        let vault = DevVaultProc::start_with(&hostile_seed(), &["--fault", &fault]);
        let target = Target::new();
        let text = class_with(&["objectName: s1\nobjectType: secret"], &[]);
        let (out, took) = mount(&vault, &target, &text, &["--azure-mount-timeout=3s"]);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        let line = last_line(&out);
        assert!(
            line.contains(want) && line.contains(service),
            "{route} {status}: {line}"
        );
        if status == 500 {
            assert!(
                !line.contains("ServiceUnavailable") && !line.contains("failed to reach"),
                "{line}"
            );
        }
        assert!(took < FAST, "{route} {status}: took {took:?}");
    }
}

//! End-to-end tests of the FlexVolume driver `azure/kv`: the real binary, called the way kubelet
//! calls it (`flexvol <command> <dir> <json options>`, and as a copy named `kv`), against a real
//! `keyvol dev-vault` process. Every call's output is checked against kubelet's contract: exactly
//! one JSON object on stdout and nothing on stderr (kubelet parses the two together).
//!
//! As root (CI) the driver mounts real tmpfs volumes; otherwise it cannot mount at all, so the
//! tests that need a mounted volume check the clear failure instead and stop there.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::*;
use base64::Engine;
use serde_json::{Map, Value, json};

const VAULT: &str = "keyvol-flex";
const PINNED: &str = "00112233445566778899aabbccddeeff";

fn flex_seed() -> String {
    format!(
        "tenantId: {TENANT}
clients:
  - clientId: {CLIENT_ID}
    clientSecret: {CLIENT_SECRET}
managedIdentities:
  - clientId: mi-system
    systemAssigned: true
  - clientId: mi-user
podIdentities:
  - namespace: default
    podName: app
    clientId: mi-user
vaults:
  - name: {VAULT}
    secrets:
      - name: plain
        value: plain-value
      - name: multi
        versions:
          - value: multi-old
            version: {PINNED}
          - value: multi-new
    keys:
      - name: rsa-key
        kty: RSA
      - name: ec-key
        kty: EC
        crv: P-256
    certificates:
      - name: web
        subject: CN=web.example
      - name: web-pem
        subject: CN=pem.example
        contentType: application/x-pem-file
"
    )
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// `keyvol flexvol` with the node settings a test node would have (the dev vault's address and
/// CA, and its IMDS) in the environment, as kubelet's environment would carry them.
fn flexvol(vault: Option<&DevVaultProc>) -> Command {
    let mut cmd = keyvol();
    cmd.arg("flexvol");
    if let Some(v) = vault {
        cmd.env("KEYVOL_AZURE_CONNECT_TO", v.addr.to_string())
            .env("KEYVOL_AZURE_CA_FILE", &v.ca_file);
        if let Some(identity) = v.identity {
            cmd.env("KEYVOL_IMDS_ENDPOINT", format!("http://{identity}"));
        }
    }
    cmd
}

/// Runs a driver call and returns its reply, asserting kubelet's contract on the way: stdout is
/// one JSON object on one line, stderr is empty, and the exit status matches the status.
fn reply(cmd: &mut Command) -> Value {
    let out = run(cmd);
    let text = stdout(&out);
    assert!(
        out.stderr.is_empty(),
        "kubelet reads stderr as part of the reply; got {:?}",
        stderr(&out)
    );
    assert!(
        text.ends_with('\n') && text.matches('\n').count() == 1,
        "one line: {text:?}"
    );
    let value: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text:?}"));
    assert!(value.is_object(), "{text}");
    let status = value["status"].as_str().expect("status");
    let want_code = match status {
        "Success" | "Not supported" => 0,
        "Failure" => 1,
        other => panic!("unknown status {other:?}"),
    };
    assert_eq!(out.status.code(), Some(want_code), "{text}");
    value
}

fn message(v: &Value) -> &str {
    v["message"].as_str().unwrap_or("")
}

/// The options kubelet passes for a pod `default/app`, with the secretRef's keys when given.
fn kubelet_options(user: &[(&str, &str)], creds: Option<(&str, &str)>) -> String {
    let mut m = Map::new();
    for (k, v) in [
        ("kubernetes.io/fsType", ""),
        ("kubernetes.io/readwrite", "ro"),
        ("kubernetes.io/pvOrVolumeName", "secrets"),
        ("kubernetes.io/pod.name", "app"),
        ("kubernetes.io/pod.namespace", "default"),
        (
            "kubernetes.io/pod.uid",
            "0f1e2d3c-aaaa-bbbb-cccc-000000000001",
        ),
        ("kubernetes.io/serviceAccount.name", "default"),
    ] {
        m.insert(k.into(), json!(v));
    }
    if let Some((id, secret)) = creds {
        m.insert("kubernetes.io/secret/clientid".into(), json!(b64(id)));
        m.insert(
            "kubernetes.io/secret/clientsecret".into(),
            json!(b64(secret)),
        );
    }
    for (k, v) in user {
        m.insert(k.to_string(), json!(v));
    }
    Value::Object(m).to_string()
}

/// Service-principal options for the test vault and `objects` (names, types), plus `extra`.
fn sp_options(names: &str, types: &str, extra: &[(&str, &str)]) -> String {
    let mut user = vec![
        ("keyvaultname", VAULT),
        ("tenantid", TENANT),
        ("usepodidentity", "false"),
        ("keyvaultobjectnames", names),
        ("keyvaultobjecttypes", types),
    ];
    user.extend_from_slice(extra);
    kubelet_options(&user, Some((CLIENT_ID, CLIENT_SECRET)))
}

fn mount(vault: &DevVaultProc, target: &Path, options: &str) -> Value {
    reply(flexvol(Some(vault)).arg("mount").arg(target).arg(options))
}

/// True when the mount succeeded; without root, checks the driver's clear refusal instead (it
/// always mounts a tmpfs and never falls back to plain directories) and returns false.
fn mounted(v: &Value, target: &Target) -> bool {
    if is_root() {
        assert_eq!(v["status"], "Success", "{v}");
        assert!(target.is_mounted(), "a tmpfs is mounted at the target");
        true
    } else {
        assert_eq!(v["status"], "Failure", "{v}");
        assert!(
            message(v).contains("failed to mount tmpfs"),
            "{}",
            message(v)
        );
        assert!(!target.path.exists() || target.entries().is_empty());
        eprintln!("not root: the mounted-volume checks of this test are skipped");
        false
    }
}

fn bytes(target: &Target, rel: &str) -> Vec<u8> {
    std::fs::read(target.path.join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
}

fn mode(target: &Target, rel: &str) -> u32 {
    std::fs::metadata(target.path.join(rel))
        .expect("meta")
        .permissions()
        .mode()
        & 0o7777
}

/// Runs openssl on a file, asserting success, and returns its stdout.
fn openssl(args: &[&str], file: &Path) -> String {
    let out = Command::new("openssl")
        .args(args)
        .arg("-in")
        .arg(file)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?} {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A secret's value as the vault stores it, read through the data plane.
fn stored_secret(vault: &DevVaultProc, name: &str) -> String {
    let host = format!("{VAULT}.vault.azure.net");
    let resp = vault
        .client(&[&host])
        .get(format!("https://{host}/secrets/{name}?api-version=7.4"))
        .bearer_auth(vault.token())
        .send()
        .expect("get secret");
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().expect("json");
    body["value"].as_str().expect("value").to_owned()
}

#[test]
fn init_answers_success_with_attach_false() {
    let out = run(flexvol(None).arg("init"));
    assert_eq!(
        stdout(&out),
        "{\"status\":\"Success\",\"capabilities\":{\"attach\":false}}\n"
    );
    assert!(out.stderr.is_empty());
    assert!(out.status.success());
}

#[test]
fn every_other_kubelet_command_is_answered_not_supported() {
    for command in [
        "attach",
        "detach",
        "waitforattach",
        "isattached",
        "mountdevice",
        "unmountdevice",
        "getvolumename",
        "expandvolume",
        "expandfs",
        "help",
    ] {
        let v = reply(flexvol(None).args([command, "{}"]));
        assert_eq!(v["status"], "Not supported", "{command}: {v}");
        assert!(message(&v).contains(command), "{v}");
    }
}

#[test]
fn malformed_calls_fail_with_one_json_object() {
    let cases: [(&[&str], &str); 5] = [
        (&[], "no driver command given"),
        (&["mount"], "mount: missing the volume directory argument"),
        (
            &["mount", "/tmp/x"],
            "mount: missing the JSON options argument",
        ),
        (
            &["mount", "/tmp/x", "{not json"],
            "mount: the options argument is not valid JSON",
        ),
        (&["unmount", "relative/dir"], "is not an absolute path"),
    ];
    for (args, want) in cases {
        let v = reply(flexvol(None).args(args));
        assert_eq!(v["status"], "Failure", "{args:?}: {v}");
        assert!(message(&v).contains(want), "{args:?}: {v}");
    }
}

#[test]
fn the_installer_copies_the_binary_and_the_copy_named_kv_is_the_driver() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plugins = dir.path().join("volumeplugins");
    let out = run(keyvol()
        .args(["flexvol", "install", "--once"])
        .env("TARGET_DIR", &plugins));
    assert!(out.status.success(), "{}", stderr(&out));
    let kv = plugins.join("azure~kv").join("kv");
    assert_eq!(
        stdout(&out),
        format!(
            "installed the azure/kv FlexVolume driver at {}\n",
            kv.display()
        )
    );
    assert_eq!(
        std::fs::read(&kv).expect("installed"),
        std::fs::read(keyvol_bin()).expect("binary"),
        "the driver is the keyvol binary itself"
    );
    let mode = std::fs::metadata(&kv).expect("meta").permissions().mode() & 0o7777;
    assert_eq!(mode, 0o755);

    // Kubelet runs it by that name, with a bare environment.
    let mut as_kubelet = Command::new(&kv);
    as_kubelet.env_clear();
    let init = run(as_kubelet.arg("init"));
    assert_eq!(
        stdout(&init),
        "{\"status\":\"Success\",\"capabilities\":{\"attach\":false}}\n"
    );
    assert!(init.stderr.is_empty());
    let v = reply(Command::new(&kv).env_clear().args(["getvolumename", "{}"]));
    assert_eq!(v["status"], "Not supported");
    // Even what clap would answer with usage text is one JSON object as `kv`.
    for args in [&["--help"][..], &["--no-such-flag=s3cr3t", "init"][..]] {
        let v = reply(Command::new(&kv).env_clear().args(args));
        assert_eq!(v["status"], "Failure", "{args:?}: {v}");
        assert!(!message(&v).contains("s3cr3t"), "{v}");
    }

    // Installing again replaces the driver in place.
    let again = run(keyvol()
        .args(["flexvol", "install", "--once", "--target-dir"])
        .arg(&plugins));
    assert!(again.status.success(), "{}", stderr(&again));
    let names: Vec<String> = std::fs::read_dir(plugins.join("azure~kv"))
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["kv"], "no temporary files are left behind");
}

#[test]
fn a_service_principal_mount_writes_the_original_formats() {
    let vault = DevVaultProc::start(&flex_seed());
    let target = Target::new();
    let options = sp_options(
        "plain;multi;web;web-pem;web;rsa-key;ec-key",
        "secret;secret;secret;secret;cert;key;key",
        &[
            ("keyvaultobjectversions", &format!(";{PINNED};;;;;")),
            (
                "keyvaultobjectaliases",
                ";multi-old;web.pfx.b64;web.pem;web.der;rsa.pub;ec.pub",
            ),
            ("cloudname", "AzurePublicCloud"),
            ("resourcegroup", "ignored-since-v0.0.14"),
            ("subscriptionid", "00000000-0000-0000-0000-000000000000"),
        ],
    );
    let v = mount(&vault, &target.path, &options);
    if !mounted(&v, &target) {
        return;
    }
    let opts = target.mount_options().expect("mounted");
    for flag in ["nosuid", "nodev", "noexec"] {
        assert!(opts.contains(flag), "{opts}");
    }
    assert_eq!(bytes(&target, "plain"), b"plain-value");
    assert_eq!(bytes(&target, "multi-old"), b"multi-old", "pinned version");
    // A certificate's secret is written as stored: base64 PFX, or the PEM it was uploaded as.
    assert_eq!(
        bytes(&target, "web.pfx.b64"),
        stored_secret(&vault, "web").as_bytes()
    );
    assert_eq!(
        bytes(&target, "web.pem"),
        stored_secret(&vault, "web-pem").as_bytes()
    );
    assert!(String::from_utf8_lossy(&bytes(&target, "web.pem")).contains("-----BEGIN"));
    // The certificate is the leaf's DER, not PEM.
    assert_ne!(&bytes(&target, "web.der")[..5], b"-----");
    let subject = openssl(
        &["x509", "-inform", "DER", "-noout", "-subject"],
        &target.path.join("web.der"),
    );
    assert!(subject.contains("CN = web.example"), "{subject}");
    // Keys are public key PEM, RSA and EC.
    let rsa = openssl(
        &["pkey", "-pubin", "-noout", "-text"],
        &target.path.join("rsa.pub"),
    );
    assert!(rsa.contains("Public-Key: (2048 bit)"), "{rsa}");
    let ec = openssl(
        &["pkey", "-pubin", "-noout", "-text"],
        &target.path.join("ec.pub"),
    );
    assert!(ec.contains("prime256v1"), "{ec}");
    for f in [
        "plain",
        "multi-old",
        "web.pfx.b64",
        "web.pem",
        "web.der",
        "rsa.pub",
        "ec.pub",
    ] {
        assert_eq!(mode(&target, f), 0o644, "{f}");
    }
    assert!(
        !message(&v).contains("plain-value"),
        "the reply never holds a value"
    );
}

#[test]
fn the_csi_output_format_writes_the_providers_pem() {
    let vault = DevVaultProc::start(&flex_seed());
    let target = Target::new();
    let options = sp_options(
        "plain;web;web;rsa-key",
        "secret;secret;cert;key",
        &[
            ("keyvaultobjectaliases", ";web.pem;web.crt;rsa.pub"),
            ("outputformat", "csi"),
        ],
    );
    let v = mount(&vault, &target.path, &options);
    if !mounted(&v, &target) {
        return;
    }
    assert_eq!(bytes(&target, "plain"), b"plain-value");
    let bundle = String::from_utf8(bytes(&target, "web.pem")).expect("pem");
    assert!(
        bundle.starts_with("-----BEGIN PRIVATE KEY-----"),
        "the PFX is converted: {}",
        &bundle[..40]
    );
    assert!(bundle.contains("-----BEGIN CERTIFICATE-----"));
    let subject = openssl(
        &["x509", "-noout", "-subject"],
        &target.path.join("web.crt"),
    );
    assert!(subject.contains("CN = web.example"), "{subject}");
    assert!(
        String::from_utf8(bytes(&target, "rsa.pub"))
            .expect("pem")
            .starts_with("-----BEGIN PUBLIC KEY-----")
    );
}

#[test]
fn legacy_singular_options_still_mount() {
    let vault = DevVaultProc::start(&flex_seed());
    let target = Target::new();
    let options = sp_options(
        "",
        "",
        &[
            ("keyvaultobjectname", "multi"),
            ("keyvaultobjecttype", "secret"),
            ("keyvaultobjectversion", PINNED),
        ],
    );
    let v = mount(&vault, &target.path, &options);
    if !mounted(&v, &target) {
        return;
    }
    assert_eq!(bytes(&target, "multi"), b"multi-old");
}

#[test]
fn a_count_mismatch_fails_naming_the_option_and_mounts_nothing() {
    let vault = DevVaultProc::start(&flex_seed());
    let target = Target::new();
    for (extra, option) in [
        (
            ("keyvaultobjectversions", format!("{PINNED};")),
            "keyvaultobjectversions: has 2 entries but keyvaultobjectnames has 1",
        ),
        (
            ("keyvaultobjectaliases", "a;b".to_owned()),
            "keyvaultobjectaliases: has 2 entries but keyvaultobjectnames has 1",
        ),
        (
            ("keyvaultobjecttypes", "secret;secret".to_owned()),
            "keyvaultobjecttypes: has 2 entries but keyvaultobjectnames has 1",
        ),
    ] {
        let mut options: Map<String, Value> =
            serde_json::from_str(&sp_options("plain", "secret", &[])).expect("json");
        options.insert(extra.0.into(), json!(extra.1));
        let v = mount(&vault, &target.path, &Value::Object(options).to_string());
        assert_eq!(v["status"], "Failure");
        assert!(message(&v).starts_with(option), "{v}");
        assert!(!target.is_mounted());
        assert!(!target.path.exists(), "nothing is created");
    }
}

#[test]
fn each_missing_required_option_fails_naming_it() {
    let vault = DevVaultProc::start(&flex_seed());
    let target = Target::new();
    for key in [
        "keyvaultname",
        "tenantid",
        "keyvaultobjectnames",
        "keyvaultobjecttypes",
        "kubernetes.io/secret/clientid",
        "kubernetes.io/secret/clientsecret",
    ] {
        let mut options: Map<String, Value> =
            serde_json::from_str(&sp_options("plain", "secret", &[])).expect("json");
        options.remove(key);
        let v = mount(&vault, &target.path, &Value::Object(options).to_string());
        assert_eq!(v["status"], "Failure", "{key}");
        assert!(
            message(&v).starts_with(&format!("{key}: is required")),
            "{key}: {v}"
        );
        assert!(!target.path.exists(), "nothing is created");
    }
    // Pod identity needs the pod, which kubelet always sends.
    let mut options: Map<String, Value> = serde_json::from_str(&kubelet_options(
        &[
            ("keyvaultname", VAULT),
            ("tenantid", TENANT),
            ("usepodidentity", "true"),
            ("keyvaultobjectnames", "plain"),
            ("keyvaultobjecttypes", "secret"),
        ],
        None,
    ))
    .expect("json");
    options.remove("kubernetes.io/pod.namespace");
    let v = mount(&vault, &target.path, &Value::Object(options).to_string());
    assert!(
        message(&v).starts_with("kubernetes.io/pod.namespace: is required with usepodidentity"),
        "{v}"
    );
}

#[test]
fn a_wrong_client_secret_fails_as_an_authentication_error_without_the_secret() {
    let vault = DevVaultProc::start(&flex_seed());
    let target = Target::new();
    let wrong = "wrong-secret-d0-not-print";
    let options = kubelet_options(
        &[
            ("keyvaultname", VAULT),
            ("tenantid", TENANT),
            ("keyvaultobjectnames", "plain"),
            ("keyvaultobjecttypes", "secret"),
        ],
        Some((CLIENT_ID, wrong)),
    );
    let v = mount(&vault, &target.path, &options);
    assert_eq!(v["status"], "Failure", "{v}");
    let text = v.to_string();
    assert!(
        !text.contains(wrong) && !text.contains(&b64(wrong)),
        "{text}"
    );
    if is_root() {
        assert!(
            message(&v).contains(&format!(
                "failed to authenticate ServicePrincipal {CLIENT_ID}"
            )),
            "{v}"
        );
        assert!(
            !target.is_mounted(),
            "the tmpfs is unmounted again on failure"
        );
    }
}

#[test]
fn a_missing_object_fails_by_name_and_leaves_nothing_mounted() {
    let vault = DevVaultProc::start(&flex_seed());
    let target = Target::new();
    let v = mount(
        &vault,
        &target.path,
        &sp_options("plain;nope", "secret;secret", &[]),
    );
    assert_eq!(v["status"], "Failure", "{v}");
    if is_root() {
        assert!(
            message(&v).contains("failed to get secret/nope: not found"),
            "{v}"
        );
        assert!(!target.is_mounted());
    }
}

#[test]
fn mounting_a_mounted_volume_again_succeeds_without_fetching() {
    let vault = DevVaultProc::start(&flex_seed());
    let target = Target::new();
    let options = sp_options("plain", "secret", &[]);
    let v = mount(&vault, &target.path, &options);
    if !mounted(&v, &target) {
        return;
    }
    // With the vault gone, any fetch would fail.
    let (ca, addr) = (vault.ca_file.clone(), vault.addr);
    drop(vault);
    let v = reply(
        flexvol(None)
            .env("KEYVOL_AZURE_CONNECT_TO", addr.to_string())
            .env("KEYVOL_AZURE_CA_FILE", &ca)
            .arg("mount")
            .arg(&target.path)
            .arg(&options),
    );
    assert_eq!(v["status"], "Success", "{v}");
    assert!(message(&v).contains("already mounted"), "{v}");
    assert_eq!(bytes(&target, "plain"), b"plain-value");
}

#[test]
fn unmount_cleans_up_and_succeeds_when_there_is_nothing_to_do() {
    let vault = DevVaultProc::start(&flex_seed());
    let target = Target::new();
    let unmount = |path: &Path| reply(flexvol(None).arg("unmount").arg(path));
    // Nothing there yet.
    assert_eq!(unmount(&target.path)["status"], "Success");
    let v = mount(&vault, &target.path, &sp_options("plain", "secret", &[]));
    if mounted(&v, &target) {
        let v = unmount(&target.path);
        assert_eq!(v["status"], "Success", "{v}");
        assert!(!target.is_mounted());
        assert!(!target.path.exists(), "the volume directory is removed");
    }
    // Again, with nothing mounted and nothing there.
    assert_eq!(unmount(&target.path)["status"], "Success");
    // A path that is not a directory is left alone.
    let file: PathBuf = write(target.dir.path(), "not-a-dir", "keep");
    assert_eq!(unmount(&file)["status"], "Success");
    assert_eq!(std::fs::read_to_string(&file).expect("kept"), "keep");
    // An empty directory with nothing mounted is removed.
    std::fs::create_dir(&target.path).expect("mkdir");
    assert_eq!(unmount(&target.path)["status"], "Success");
    assert!(!target.path.exists());
}

#[test]
fn pod_identity_mounts_through_nmi_while_the_identity_is_being_assigned() {
    let vault = DevVaultProc::start_with(
        &flex_seed(),
        &["--identity-listen", "127.0.0.1:0", "--nmi-not-ready", "2"],
    );
    let identity = vault.identity.expect("identity listener");
    let target = Target::new();
    let options = kubelet_options(
        &[
            ("keyvaultname", VAULT),
            ("tenantid", TENANT),
            ("usepodidentity", "true"),
            ("nmiport", &identity.port().to_string()),
            ("keyvaultobjectnames", "plain"),
            ("keyvaultobjecttypes", "secret"),
        ],
        None,
    );
    let v = mount(&vault, &target.path, &options);
    if !mounted(&v, &target) {
        return;
    }
    assert_eq!(bytes(&target, "plain"), b"plain-value");
}

#[test]
fn vm_managed_identity_mounts_system_and_user_assigned() {
    let vault = DevVaultProc::start_with(&flex_seed(), &["--identity-listen", "127.0.0.1:0"]);
    for client in ["", "mi-user"] {
        let target = Target::new();
        let options = kubelet_options(
            &[
                ("keyvaultname", VAULT),
                ("tenantid", TENANT),
                ("usevmmanagedidentity", "true"),
                ("vmmanagedidentityclientid", client),
                ("keyvaultobjectnames", "plain"),
                ("keyvaultobjecttypes", "secret"),
            ],
            None,
        );
        let v = mount(&vault, &target.path, &options);
        if !mounted(&v, &target) {
            return;
        }
        assert_eq!(bytes(&target, "plain"), b"plain-value", "{client:?}");
    }
    // An identity the node does not have fails at once, by name.
    let target = Target::new();
    let options = kubelet_options(
        &[
            ("keyvaultname", VAULT),
            ("tenantid", TENANT),
            ("usevmmanagedidentity", "true"),
            ("vmmanagedidentityclientid", "mi-elsewhere"),
            ("keyvaultobjectnames", "plain"),
            ("keyvaultobjecttypes", "secret"),
        ],
        None,
    );
    let v = mount(&vault, &target.path, &options);
    assert_eq!(v["status"], "Failure");
    assert!(message(&v).contains("isn't assigned to this node"), "{v}");
}

#[test]
fn the_example_pod_mounts_as_written() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let text =
        std::fs::read_to_string(root.join("deploy/flexvolume/example-pod.yaml")).expect("example");
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text).expect("yaml");
    let secret = docs.iter().find(|d| d["kind"] == "Secret").expect("secret");
    let pod = docs.iter().find(|d| d["kind"] == "Pod").expect("pod");
    let flex = &pod["spec"]["volumes"][0]["flexVolume"];
    assert_eq!(flex["driver"], "azure/kv");
    assert_eq!(secret["type"], "azure/kv");
    assert_eq!(flex["secretRef"]["name"], secret["metadata"]["name"]);
    // What kubelet passes: the pod's options plus every secret key, base64-encoded.
    let mut options = flex["options"].as_object().expect("options").clone();
    for (k, v) in secret["stringData"].as_object().expect("stringData") {
        options.insert(
            format!("kubernetes.io/secret/{k}"),
            json!(b64(v.as_str().expect("string"))),
        );
    }
    for (k, v) in [
        ("kubernetes.io/pod.name", "nginx-flex-kv"),
        ("kubernetes.io/pod.namespace", "default"),
        ("kubernetes.io/readwrite", "ro"),
    ] {
        options.insert(k.into(), json!(v));
    }
    let seed =
        std::fs::read_to_string(root.join("examples/dev-vault-seed.yaml")).expect("example seed");
    let vault = DevVaultProc::start(&seed);
    let target = Target::new();
    let v = mount(&vault, &target.path, &Value::Object(options).to_string());
    if !mounted(&v, &target) {
        return;
    }
    assert_eq!(
        bytes(&target, "db-password"),
        b"correct-horse-battery-staple"
    );
    assert_eq!(bytes(&target, "api-key"), b"api-key-version-2");
}

#[test]
fn the_log_file_records_the_call_without_any_secret() {
    let vault = DevVaultProc::start(&flex_seed());
    let target = Target::new();
    let log = target.dir.path().join("driver.log");
    let v = reply(
        flexvol(Some(&vault))
            .env("KEYVOL_FLEXVOL_LOG_FILE", &log)
            .arg("mount")
            .arg(&target.path)
            .arg(sp_options("plain", "secret", &[])),
    );
    mounted(&v, &target);
    let text = std::fs::read_to_string(&log).expect("log written");
    assert!(text.contains("mounting"), "{text}");
    assert!(text.contains(VAULT), "{text}");
    for secret in [CLIENT_SECRET, &b64(CLIENT_SECRET), "plain-value"] {
        assert!(!text.contains(secret), "{secret:?} in log:\n{text}");
    }
}

/// Issue 13: a driver call killed mid-fetch left an empty tmpfs, and the next `mount` answered
/// "already mounted" — the pod started without its secrets.
#[test]
fn a_mount_killed_mid_fetch_is_fetched_again_by_the_next_call() {
    if !is_root() {
        eprintln!("skipped: needs root for tmpfs mounts");
        return;
    }
    let vault = DevVaultProc::start(&flex_seed());
    vault.set_faults(serde_json::json!([{ "route": "GET /secrets/*", "latencyMs": 4000 }]));
    let target = Target::new();
    let options = sp_options("plain", "secret", &[]);
    let mut child = flexvol(Some(&vault))
        .arg("mount")
        .arg(&target.path)
        .arg(&options)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    for _ in 0..400 {
        if target.is_mounted() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    assert!(target.is_mounted(), "the driver mounted its tmpfs");
    child.kill().expect("kill -9");
    let _ = child.wait();
    assert!(target.entries().is_empty(), "killed before writing");

    vault.clear_faults();
    let v = mount(&vault, &target.path, &options);
    assert_eq!(v["status"], "Success", "{v}");
    assert!(!message(&v).contains("already mounted"), "{v}");
    assert_eq!(bytes(&target, "plain"), b"plain-value");
}

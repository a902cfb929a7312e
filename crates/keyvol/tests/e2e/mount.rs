//! End-to-end tests of `keyvol demo`, `keyvol mount` and `keyvol unmount`, driving the real
//! binary against a real `keyvol dev-vault` process over HTTPS.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::util::*;

const VAULT: &str = "keyvol-e2e";
const PINNED: &str = "00112233445566778899aabbccddeeff";

fn e2e_seed() -> String {
    seed(&format!(
        "  - name: {VAULT}\n    secrets:\n      - name: plain\n        value: plain-value\n      - name: multi\n        versions:\n          - value: multi-old\n            version: {PINNED}\n          - value: multi-new\n      - name: other\n        value: other-value\n"
    ))
}

fn mount_cmd(
    vault: &DevVaultProc,
    target: &Target,
    class_file: &PathBuf,
    creds: &PathBuf,
) -> std::process::Command {
    let mut cmd = keyvol();
    cmd.arg("mount")
        .arg("--class")
        .arg(class_file)
        .arg("--target")
        .arg(&target.path)
        .arg("--secrets-file")
        .arg(creds);
    cmd.args(vault.azure_args()).args(target.backing_args());
    cmd
}

#[test]
fn mount_by_name_alias_nested_alias_and_version() {
    let vault = DevVaultProc::start(&e2e_seed());
    let target = Target::new();
    let class_file = write(
        target.dir.path(),
        "class.yaml",
        &class(
            VAULT,
            &[
                "objectName: plain\nobjectType: secret",
                "objectName: multi\nobjectType: secret\nobjectAlias: latest-multi",
                "objectName: multi\nobjectType: secret\nobjectVersion: 00112233445566778899aabbccddeeff\nobjectAlias: nested/deeper/old-multi\nfilePermission: \"0400\"",
            ],
        ),
    );
    let creds = creds_file(target.dir.path(), CLIENT_SECRET);
    let out = run(&mut mount_cmd(&vault, &target, &class_file, &creds));
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    assert_eq!(target.read("plain"), "plain-value");
    assert_eq!(target.read("latest-multi"), "multi-new");
    assert_eq!(target.read("nested/deeper/old-multi"), "multi-old");
    let mode = std::fs::metadata(target.path.join("nested/deeper/old-multi"))
        .expect("meta")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o400);
    let text = stdout(&out);
    assert!(
        text.contains(&format!("object secret/multi version {PINNED}")),
        "{text}"
    );
    assert!(!text.contains("plain-value") && !stderr(&out).contains("plain-value"));
}

#[test]
fn on_disk_layout_is_the_atomic_writer_layout() {
    let vault = DevVaultProc::start(&e2e_seed());
    let target = Target::new();
    let class_file = write(
        target.dir.path(),
        "class.yaml",
        &class(
            VAULT,
            &[
                "objectName: plain\nobjectType: secret",
                "objectName: other\nobjectType: secret\nobjectAlias: dir/other",
            ],
        ),
    );
    let creds = creds_file(target.dir.path(), CLIENT_SECRET);
    let out = run(&mut mount_cmd(&vault, &target, &class_file, &creds));
    assert!(out.status.success(), "stderr: {}", stderr(&out));

    let entries = target.entries();
    assert_eq!(entries.len(), 4, "{entries:?}");
    let version_dir = entries
        .iter()
        .find(|e| e.starts_with("..20"))
        .expect("timestamped dir")
        .clone();
    assert!(
        entries.contains(&"..data".to_string())
            && entries.contains(&"plain".to_string())
            && entries.contains(&"dir".to_string())
    );
    assert_eq!(
        std::fs::read_link(target.path.join("..data")).expect("link"),
        PathBuf::from(&version_dir)
    );
    assert_eq!(
        std::fs::read_link(target.path.join("plain")).expect("link"),
        PathBuf::from("..data/plain")
    );
    assert_eq!(
        std::fs::read_link(target.path.join("dir")).expect("link"),
        PathBuf::from("..data/dir")
    );
    assert!(
        std::fs::symlink_metadata(target.path.join(&version_dir).join("dir"))
            .expect("meta")
            .is_dir()
    );
    let mode = std::fs::metadata(target.path.join("plain"))
        .expect("meta")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o644, "the default mode is upstream's 0644");
    if is_root() {
        let opts = target
            .mount_options()
            .expect("a tmpfs is mounted at the target");
        for flag in ["nosuid", "nodev", "noexec"] {
            assert!(
                opts.split(',').any(|o| o == flag),
                "{flag} missing from {opts}"
            );
        }
    }
}

#[test]
fn second_mount_with_changed_values_swaps_atomically() {
    let vault = DevVaultProc::start(&e2e_seed());
    let target = Target::new();
    let class_file = write(
        target.dir.path(),
        "class.yaml",
        &class(
            VAULT,
            &[
                "objectName: plain\nobjectType: secret",
                "objectName: other\nobjectType: secret",
            ],
        ),
    );
    let creds = creds_file(target.dir.path(), CLIENT_SECRET);
    let out = run(&mut mount_cmd(&vault, &target, &class_file, &creds));
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    let first_version_dir = std::fs::read_link(target.path.join("..data")).expect("link");

    vault.set_secret(VAULT, "plain", "plain-rotated");
    vault.set_secret(VAULT, "other", "other-rotated");

    // A reader resolving ..data once must always see a matching pair: both old or both new.
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let stop = stop.clone();
        let root = target.path.clone();
        std::thread::spawn(move || {
            let mut seen = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let Ok(dir) = std::fs::read_link(root.join("..data")) else {
                    continue;
                };
                let a = std::fs::read_to_string(root.join(&dir).join("plain"));
                let b = std::fs::read_to_string(root.join(&dir).join("other"));
                if let (Ok(a), Ok(b)) = (a, b) {
                    let pair = (a.as_str(), b.as_str());
                    assert!(
                        pair == ("plain-value", "other-value")
                            || pair == ("plain-rotated", "other-rotated"),
                        "mixed or partial version seen: {pair:?}"
                    );
                    seen += 1;
                }
                // Reads through the visible names must be whole values too.
                if let Ok(v) = std::fs::read_to_string(root.join("plain")) {
                    assert!(
                        v == "plain-value" || v == "plain-rotated",
                        "partial read {v:?}"
                    );
                }
            }
            seen
        })
    };
    let out = run(&mut mount_cmd(&vault, &target, &class_file, &creds));
    stop.store(true, Ordering::Relaxed);
    let seen = reader.join().expect("reader never saw a mixed version");
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    assert!(seen > 0);
    assert_eq!(target.read("plain"), "plain-rotated");
    assert_eq!(target.read("other"), "other-rotated");
    let second_version_dir = std::fs::read_link(target.path.join("..data")).expect("link");
    assert_ne!(first_version_dir, second_version_dir);
    assert!(
        !target.path.join(&first_version_dir).exists(),
        "the old version is removed"
    );

    // A third mount with nothing changed leaves the files alone.
    let out = run(&mut mount_cmd(&vault, &target, &class_file, &creds));
    assert!(out.status.success());
    assert!(stdout(&out).contains("unchanged"), "{}", stdout(&out));
    assert_eq!(
        std::fs::read_link(target.path.join("..data")).expect("link"),
        second_version_dir
    );
}

#[test]
fn traversal_attempts_are_rejected_with_nothing_written() {
    let vault = DevVaultProc::start(&e2e_seed());
    let cases = [
        (
            "objectName: plain\nobjectType: secret\nobjectAlias: ../escape",
            "objects[0].objectAlias: file name must not contain '..'",
        ),
        (
            "objectName: plain\nobjectType: secret\nobjectAlias: /etc/escape",
            "objects[0].objectAlias: file name must be a relative path",
        ),
        (
            "objectName: plain\nobjectType: secret\nobjectAlias: a/../../escape",
            "objects[0].objectAlias: file name must not contain '..'",
        ),
        (
            "objectName: plain\nobjectType: secret\nobjectAlias: ..data",
            "objects[0].objectAlias: file name must not start with '..'",
        ),
    ];
    for (object, want) in cases {
        let target = Target::new();
        let class_file = write(
            target.dir.path(),
            "class.yaml",
            &class(VAULT, &["objectName: other\nobjectType: secret", object]),
        );
        let creds = creds_file(target.dir.path(), CLIENT_SECRET);
        let out = run(&mut mount_cmd(&vault, &target, &class_file, &creds));
        assert_eq!(
            out.status.code(),
            Some(2),
            "{object}: stderr {}",
            stderr(&out)
        );
        let err = stderr(&out).replace("objects[1]", "objects[0]");
        assert!(err.contains(want), "{object}: wanted {want:?} in {err}");
        assert!(!target.is_mounted(), "no tmpfs may be left behind");
        assert!(
            target.entries().is_empty(),
            "nothing may be written: {:?}",
            target.entries()
        );
        assert!(!target.dir.path().join("escape").exists());
    }
}

#[test]
fn malformed_class_gets_an_error_naming_the_field() {
    let target = Target::new();
    let creds = creds_file(target.dir.path(), CLIENT_SECRET);
    let good = class(VAULT, &["objectName: plain\nobjectType: secret"]);
    let cases = [
        (
            good.replace("  provider: azure\n", ""),
            "spec.provider: is required",
        ),
        (
            good.replace(
                "    keyvaultName:",
                "    usePodIdentity: false\n    keyvaultName:",
            ),
            "spec.parameters.usePodIdentity: must be a string",
        ),
        (
            good.replace("objectType: secret", "objectType: Secret"),
            "objects[0].objectType: \"Secret\" is not one of secret, key, cert",
        ),
        (
            good.replace(
                "secrets-store.csi.x-k8s.io/v1",
                "secrets-store.csi.x-k8s.io/v9",
            ),
            "apiVersion: ",
        ),
        (
            good.replace("keyvaultName: keyvol-e2e", "keyvaultName: x"),
            "keyvaultName: Invalid vault name",
        ),
    ];
    for (text, want) in cases {
        let class_file = write(target.dir.path(), "class.yaml", &text);
        let out = run(keyvol()
            .arg("mount")
            .arg("--class")
            .arg(&class_file)
            .arg("--target")
            .arg(&target.path)
            .arg("--secrets-file")
            .arg(&creds)
            .args(["--azure-connect-to", "127.0.0.1:9"])
            .args(target.backing_args()));
        assert_eq!(out.status.code(), Some(2), "{want}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(want),
            "wanted {want:?} in {}",
            stderr(&out)
        );
        assert!(!target.is_mounted());
    }
}

#[test]
fn wrong_client_secret_gets_a_clear_authentication_error_without_the_secret() {
    let vault = DevVaultProc::start(&e2e_seed());
    let target = Target::new();
    let class_file = write(
        target.dir.path(),
        "class.yaml",
        &class(VAULT, &["objectName: plain\nobjectType: secret"]),
    );
    let wrong = "not-the-right-secret-5f4dcc3b";
    let creds = creds_file(target.dir.path(), wrong);
    let out = run(&mut mount_cmd(&vault, &target, &class_file, &creds));
    assert_eq!(out.status.code(), Some(1), "stderr: {}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("failed to authenticate ServicePrincipal e2e-client"),
        "{err}"
    );
    assert!(err.contains("AADSTS7000215"), "{err}");
    assert!(
        !err.contains(wrong) && !stdout(&out).contains(wrong),
        "the secret leaked: {err}"
    );
    assert!(!err.contains(CLIENT_SECRET));
    assert!(!target.is_mounted());
    assert!(target.entries().is_empty(), "{:?}", target.entries());
}

#[test]
fn credentials_from_the_environment_are_used_and_never_echoed() {
    let vault = DevVaultProc::start(&e2e_seed());
    let target = Target::new();
    let class_file = write(
        target.dir.path(),
        "class.yaml",
        &class(VAULT, &["objectName: plain\nobjectType: secret"]),
    );
    let out = run(keyvol()
        .arg("mount")
        .arg("--class")
        .arg(&class_file)
        .arg("--target")
        .arg(&target.path)
        .env("AZURE_CLIENT_ID", CLIENT_ID)
        .env("AZURE_CLIENT_SECRET", CLIENT_SECRET)
        .args(["--v", "5"])
        .args(vault.azure_args())
        .args(target.backing_args()));
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    assert_eq!(target.read("plain"), "plain-value");
    for leak in [CLIENT_SECRET, "plain-value"] {
        assert!(
            !stderr(&out).contains(leak) && !stdout(&out).contains(leak),
            "{leak} leaked at --v 5"
        );
    }
}

#[test]
fn a_missing_object_fails_the_whole_mount() {
    let vault = DevVaultProc::start(&e2e_seed());
    let target = Target::new();
    let class_file = write(
        target.dir.path(),
        "class.yaml",
        &class(
            VAULT,
            &[
                "objectName: plain\nobjectType: secret",
                "objectName: nope\nobjectType: secret",
            ],
        ),
    );
    let creds = creds_file(target.dir.path(), CLIENT_SECRET);
    let out = run(&mut mount_cmd(&vault, &target, &class_file, &creds));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("failed to get secret/nope: not found (SecretNotFound"),
        "{}",
        stderr(&out)
    );
    assert!(!target.is_mounted());
    assert!(target.entries().is_empty());
}

#[test]
fn unmount_is_idempotent() {
    let target = Target::new();
    let out = run(keyvol().args(["unmount", "--target"]).arg(&target.path));
    assert!(out.status.success(), "{}", stderr(&out));
}

/// Key Vault serves a secret whose `exp` has passed (expiry restricts cryptographic operations,
/// not reads), so the provider mounts it, as upstream's does (issue 16: the dev vault used to
/// answer 403 SecretExpired).
#[test]
fn an_expired_secret_is_mounted_like_any_other() {
    let vault = DevVaultProc::start(&seed(&format!(
        "  - name: {VAULT}\n    secrets:\n      - name: expired\n        value: still-served\n        exp: 1000\n      - name: plain\n        value: plain-value\n"
    )));
    let target = Target::new();
    let class_file = write(
        target.dir.path(),
        "class.yaml",
        &class(
            VAULT,
            &[
                "objectName: expired\nobjectType: secret",
                "objectName: plain\nobjectType: secret",
            ],
        ),
    );
    let creds = creds_file(target.dir.path(), CLIENT_SECRET);
    let out = run(&mut mount_cmd(&vault, &target, &class_file, &creds));
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    assert_eq!(target.read("expired"), "still-served");
    assert_eq!(target.read("plain"), "plain-value");
}

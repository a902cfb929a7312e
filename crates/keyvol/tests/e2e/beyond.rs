//! What keyvol does beyond upstream (docs/beyond-upstream.md), through the real binary against
//! the dev vault: wildcard `objectName`s (listing, enabled objects only, re-listing on every
//! mount and rotation, the list permission, the per-node cap), and every new key's bad input
//! refused before any request.

use std::process::Output;
use std::time::Duration;

use keyvol_node::crd::SecretProviderClassPodStatus;

use crate::util::cluster::{Cluster, spc_object};
use crate::util::*;

const VAULT: &str = "keyvol-beyond";

/// Secrets `db-a`, `db-b` (disabled), `db-c` and `other`, a certificate `web`; `extra` is
/// appended to the vault's entry (e.g. access policies).
fn beyond_seed(extra: &str) -> String {
    seed(&format!(
        "  - name: {VAULT}\n{extra}    secrets:\n      - name: db-a\n        value: db-a-value\n      - name: db-b\n        value: db-b-value\n        enabled: false\n      - name: db-c\n        value: db-c-value\n      - name: other\n        value: other-value\n    certificates:\n      - name: web\n"
    ))
}

/// Runs `keyvol mount` of `class_text` with `flags`.
fn mount(vault: &DevVaultProc, target: &Target, class_text: &str, flags: &[&str]) -> Output {
    let class_file = write(target.dir.path(), "class.yaml", class_text);
    let creds = creds_file(target.dir.path(), CLIENT_SECRET);
    run(keyvol()
        .arg("mount")
        .arg("--class")
        .arg(&class_file)
        .arg("--target")
        .arg(&target.path)
        .arg("--secrets-file")
        .arg(&creds)
        .args(vault.azure_args())
        .args(target.backing_args())
        .args(flags))
}

/// The last line of stderr: the CLI's error.
fn last_line(out: &Output) -> String {
    stderr(out).lines().last().unwrap_or_default().to_owned()
}

/// The user's files in the target (the writer's `..` entries left out).
fn files(target: &Target) -> Vec<String> {
    target
        .entries()
        .into_iter()
        .filter(|e| !e.starts_with(".."))
        .collect()
}

#[test]
fn a_wildcard_mounts_every_enabled_match_and_the_next_mount_lists_again() {
    let vault = DevVaultProc::start(&beyond_seed(""));
    let target = Target::new();
    let text = class(
        VAULT,
        &[
            "objectName: db-*\nobjectType: secret\nfilePermission: \"0440\"",
            "objectName: other\nobjectType: secret\nobjectAlias: the-other",
        ],
    );
    let out = mount(&vault, &target, &text, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(files(&target), ["db-a", "db-c", "the-other"]);
    assert_eq!(target.read("db-a"), "db-a-value");
    assert_eq!(target.read("db-c"), "db-c-value");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(target.path.join("db-c"))
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o440, "the entry's filePermission");
    let text_out = stdout(&out);
    for id in ["secret/db-a", "secret/db-c", "secret/other"] {
        assert!(
            text_out.contains(&format!("object {id} version ")),
            "{text_out}"
        );
    }
    assert!(!text_out.contains("db-b"), "{text_out}");

    // Objects created, enabled or disabled since appear and disappear at the next mount.
    let _ = vault.set_secret(VAULT, "db-new", "db-new-value");
    vault.set_secret_enabled(VAULT, "db-a", false);
    vault.set_secret_enabled(VAULT, "db-b", true);
    let out = mount(&vault, &target, &text, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(files(&target), ["db-b", "db-c", "db-new", "the-other"]);
    assert_eq!(target.read("db-new"), "db-new-value");
    assert!(!stdout(&out).contains("secret/db-a "), "{}", stdout(&out));
}

#[test]
fn a_wildcard_needs_the_list_permission_and_says_so() {
    let policy = format!(
        "    accessPolicies:\n      - identity: {CLIENT_ID}\n        secrets: [get]\n        certificates: [get, list]\n"
    );
    let vault = DevVaultProc::start(&beyond_seed(&policy));
    let target = Target::new();
    // Named objects need only get.
    let out = mount(
        &vault,
        &target,
        &class(VAULT, &["objectName: db-a\nobjectType: secret"]),
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let target = Target::new();
    let out = mount(
        &vault,
        &target,
        &class(
            VAULT,
            &[
                "objectName: db-a\nobjectType: secret",
                "objectName: db-*\nobjectType: secret",
            ],
        ),
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let line = last_line(&out);
    assert!(
        line.contains("the list of secrets for objects[1].objectName \"db-*\" in https://keyvol-beyond.vault.azure.net/: forbidden (")
            && line.contains("a wildcard objectName needs the list permission on secrets"),
        "{line}"
    );
    assert!(!target.is_mounted(), "nothing mounted");
}

#[test]
fn a_wildcard_selecting_more_than_the_nodes_cap_fails_naming_the_entry() {
    let vault = DevVaultProc::start(&beyond_seed(""));
    let target = Target::new();
    let text = class(VAULT, &["objectName: \"*\"\nobjectType: secret"]);
    let out = mount(
        &vault,
        &target,
        &text,
        &["--azure-max-wildcard-objects", "3"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        last_line(&out).contains("objects[0].objectName: \"*\" selects 4 enabled secrets in https://keyvol-beyond.vault.azure.net/, more than the 3 one entry may select on this node (--azure-max-wildcard-objects); narrow the pattern or split it"),
        "{}",
        last_line(&out)
    );
    let out = mount(
        &vault,
        &target,
        &text,
        &["--azure-max-wildcard-objects", "4"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        files(&target),
        ["db-a", "db-c", "other", "web"],
        "web: the certificate's secret"
    );
    for bad in ["0", "x", "25001"] {
        let out = mount(
            &vault,
            &Target::new(),
            &text,
            &["--azure-max-wildcard-objects", bad],
        );
        assert_eq!(out.status.code(), Some(2), "{bad}: {}", stderr(&out));
    }
}

#[test]
fn bad_new_keys_fail_before_any_request() {
    let vault = DevVaultProc::start(&beyond_seed(""));
    let cases = [
        (
            "objectName: db-*\nobjectType: secret\nobjectAlias: x",
            "objects[0].objectAlias: is not allowed with a wildcard objectName",
        ),
        (
            "objectName: db-*\nobjectType: secret\nobjectVersion: 00112233445566778899aabbccddeeff",
            "objects[0].objectVersion: is not allowed with a wildcard objectName",
        ),
        (
            "objectName: db-*\nobjectType: secret\nobjectVersionHistory: 3",
            "objects[0].objectVersionHistory: is not allowed with a wildcard objectName",
        ),
        (
            "objectName: \"db/*\"\nobjectType: secret",
            "objects[0].objectName: \"db/*\" is not a Key Vault object name pattern",
        ),
    ];
    for (item, want) in cases {
        let target = Target::new();
        let out = mount(&vault, &target, &class(VAULT, &[item]), &[]);
        assert_eq!(out.status.code(), Some(2), "{item}: {}", stderr(&out));
        let line = last_line(&out);
        assert!(line.contains(want), "{item}: {line}");
        assert!(!target.path.exists() || files(&target).is_empty());
    }
    assert_eq!(vault.request_count(), 0, "refused before any request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rotation_loop_lists_again_and_the_pod_status_follows() {
    let c = Cluster::start(&["--rotation-loop-interval=1s"]).await;
    c.fake
        .insert(&spc_object(
            "wild",
            "azure",
            &["objectName: \"*\"\nobjectType: secret"],
        ))
        .expect("class");
    let target = c.target("wild");
    let mut node = c.client().await;
    node.node_publish_volume(publish_request(&target, "wild"))
        .await
        .expect("publish");
    let ids = |status: &SecretProviderClassPodStatus| -> Vec<String> {
        status.status.objects.iter().map(|o| o.id.clone()).collect()
    };
    let status: SecretProviderClassPodStatus = c
        .fake
        .get("default", "app-default-wild")
        .expect("read")
        .expect("status");
    assert_eq!(ids(&status), ["secret/api-key", "secret/db-password"]);

    let vault = crate::util::cluster::VAULT;
    tokio::task::block_in_place(|| {
        c.vault.set_secret(vault, "created-later", "later-value");
        c.vault.set_secret_enabled(vault, "api-key", false);
    });
    let mut rotated = false;
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if target.join("created-later").exists() && !target.join("api-key").exists() {
            rotated = true;
            break;
        }
    }
    assert!(rotated, "the loop listed the vault again");
    assert_eq!(
        std::fs::read_to_string(target.join("created-later")).expect("file"),
        "later-value"
    );
    let mut status_ids = Vec::new();
    for _ in 0..30 {
        let status: SecretProviderClassPodStatus = c
            .fake
            .get("default", "app-default-wild")
            .expect("read")
            .expect("status");
        status_ids = ids(&status);
        if status_ids == ["secret/created-later", "secret/db-password"] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status_ids, ["secret/created-later", "secret/db-password"]);
}

/// A JSON secret `conn`, a plain-text secret `plain`, and a base64-encoded JSON secret `b64`.
fn json_seed() -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(r#"{"token":"tok-value"}"#);
    seed(&format!(
        "  - name: {VAULT}\n    secrets:\n      - name: conn\n        value: '{{\"username\":\"app-user\",\"password\":\"pw-value\",\"port\":5432,\"hosts\":[\"h1\",\"h2\"],\"none\":null}}'\n      - name: plain\n        value: plain-text-value\n      - name: b64\n        value: {b64}\n"
    ))
}

#[test]
fn json_fields_are_extracted_into_files_of_their_own() {
    let vault = DevVaultProc::start(&json_seed());
    let target = Target::new();
    let text = class(
        VAULT,
        &[
            "objectName: conn\nobjectType: secret\nfilePermission: \"0400\"\njmesPath:\n  - path: username\n    objectAlias: db/user\n  - path: password\n    objectAlias: db/password\n  - path: port\n    objectAlias: db/port\n  - path: hosts\n    objectAlias: db/hosts.json\n  - path: \"{u: username, first: hosts[0]}\"\n    objectAlias: db/summary.json\n  - path: \"join(',', hosts)\"\n    objectAlias: db/hosts.txt",
            "objectName: b64\nobjectType: secret\nobjectEncoding: base64\njmesPath:\n  - path: token\n    objectAlias: token",
        ],
    );
    let out = mount(&vault, &target, &text, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(files(&target), ["b64", "conn", "db", "token"]);
    assert!(
        target
            .read("conn")
            .starts_with("{\"username\":\"app-user\""),
        "the object's own file as usual"
    );
    for (file, want) in [
        ("db/user", "app-user"),
        ("db/password", "pw-value"),
        ("db/port", "5432"),
        ("db/hosts.json", r#"["h1","h2"]"#),
        ("db/summary.json", r#"{"first":"h1","u":"app-user"}"#),
        ("db/hosts.txt", "h1,h2"),
        ("token", "tok-value"),
    ] {
        assert_eq!(target.read(file), want, "{file}");
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(target.path.join("db/password"))
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o400, "the object's filePermission");
    for secret in ["app-user", "pw-value", "tok-value"] {
        assert!(!stdout(&out).contains(secret) && !stderr(&out).contains(secret));
    }
}

#[test]
fn json_extraction_failures_name_the_entry_and_path_never_the_value() {
    let vault = DevVaultProc::start(&json_seed());
    let cases = [
        (
            "objectName: plain\nobjectType: secret\njmesPath:\n  - path: a\n    objectAlias: x",
            "failed to convert secret/plain: objects[1].jmesPath[0].path \"a\": the value is not JSON",
        ),
        (
            "objectName: conn\nobjectType: secret\nobjectAlias: c2\njmesPath:\n  - path: username\n    objectAlias: u\n  - path: none\n    objectAlias: x",
            "failed to convert secret/conn: objects[1].jmesPath[1].path \"none\": matches nothing in the value (the result is null)",
        ),
        (
            "objectName: conn\nobjectType: secret\nobjectAlias: c2\njmesPath:\n  - path: missing.field\n    objectAlias: x",
            "objects[1].jmesPath[0].path \"missing.field\": matches nothing",
        ),
        (
            "objectName: conn\nobjectType: secret\nobjectAlias: c2\njmesPath:\n  - path: length(port)\n    objectAlias: x",
            "objects[1].jmesPath[0].path \"length(port)\": failed: Runtime error: ",
        ),
    ];
    for (item, want) in cases {
        let target = Target::new();
        let text = class(VAULT, &["objectName: conn\nobjectType: secret", item]);
        let out = mount(&vault, &target, &text, &[]);
        assert_eq!(out.status.code(), Some(1), "{item}: {}", stderr(&out));
        let line = last_line(&out);
        assert!(line.contains(want), "{item}: {line}");
        for secret in ["app-user", "pw-value", "plain-text-value", "5432", "h1"] {
            assert!(
                !stderr(&out).contains(secret),
                "{secret} in {}",
                stderr(&out)
            );
        }
        assert!(!target.is_mounted(), "all or nothing");
        assert!(!target.path.join("conn").exists());
    }
}

#[test]
fn bad_jmes_path_entries_fail_before_any_request() {
    let vault = DevVaultProc::start(&json_seed());
    let cases = [
        (
            "objectName: conn\nobjectType: secret\njmesPath:\n  - path: a..b\n    objectAlias: x",
            "objects[0].jmesPath[0].path: is not a JMESPath expression: Parse error:",
        ),
        (
            "objectName: conn\nobjectType: secret\njmesPath:\n  - path: a\n    objectAlias: x\n  - path: b\n    objectAlias: x",
            "objects[0].jmesPath[1].objectAlias: file name \"x\" is also used by objects[0].jmesPath[0]",
        ),
        (
            "objectName: conn\nobjectType: secret\njmesPath:\n  - path: a\n    objectAlias: ../../etc/x",
            "objects[0].jmesPath[0].objectAlias: file name must not contain '..'",
        ),
        (
            "objectName: conn\nobjectType: secret\njmesPath:\n  - path: a",
            "objects[0].jmesPath[0].objectAlias: is required",
        ),
        (
            "objectName: conn\nobjectType: cert\njmesPath:\n  - path: a\n    objectAlias: x",
            "objects[0].jmesPath: is only supported for objectType: secret",
        ),
        (
            "objectName: conn\nobjectType: secret\njmesPath: username",
            "objects[0].jmesPath: must be a list of mappings",
        ),
        (
            "objectName: conn\nobjectType: secret\njmesPath:\n  - path: \"to_string(to_string(to_string(@)))\"\n    objectAlias: x",
            "objects[0].jmesPath[0].path: could produce a result up to 216 times the size of the value",
        ),
    ];
    for (item, want) in cases {
        let target = Target::new();
        let out = mount(&vault, &target, &class(VAULT, &[item]), &[]);
        assert_eq!(out.status.code(), Some(2), "{item}: {}", stderr(&out));
        let line = last_line(&out);
        assert!(line.contains(want), "{item}: {line}");
    }
    assert_eq!(vault.request_count(), 0, "refused before any request");
}

const SECOND: &str = "keyvol-second";

/// Two vaults: [`VAULT`] with `db-a`, `db-b` (disabled), `db-c`, `other` and the JSON secret
/// `conn`; [`SECOND`] with `other`, `s2-x`, `s2-y` (disabled) and `s2-z`.
fn two_vault_seed() -> String {
    seed(&format!(
        "  - name: {VAULT}\n    secrets:\n      - name: db-a\n        value: db-a-value\n      - name: db-b\n        value: db-b-value\n        enabled: false\n      - name: db-c\n        value: db-c-value\n      - name: other\n        value: other-main\n      - name: conn\n        value: '{{\"username\":\"app-user\",\"password\":\"pw-value\",\"port\":5432}}'\n  - name: {SECOND}\n    secrets:\n      - name: other\n        value: other-second\n      - name: s2-x\n        value: s2-x-value\n      - name: s2-y\n        value: s2-y-value\n        enabled: false\n      - name: s2-z\n        value: s2-z-value\n"
    ))
}

/// The object items of a class using wildcards, JSON fields and a second vault together.
fn all_features() -> Vec<String> {
    vec![
        "objectName: db-*\nobjectType: secret".into(),
        "objectName: conn\nobjectType: secret\njmesPath:\n  - path: username\n    objectAlias: conn-user\n  - path: \"{user: username, port: port}\"\n    objectAlias: conn.json".into(),
        "objectName: other\nobjectType: secret".into(),
        format!("objectName: other\nobjectType: secret\nobjectAlias: other-second\nkeyvaultName: {SECOND}"),
        format!("objectName: s2-*\nobjectType: secret\nkeyvaultName: {SECOND}\ntenantId: {TENANT}"),
    ]
}

/// The files and contents a mount of [`all_features`] must give.
const ALL_FILES: [(&str, &str); 9] = [
    (
        "conn",
        r#"{"username":"app-user","password":"pw-value","port":5432}"#,
    ),
    ("conn-user", "app-user"),
    ("conn.json", r#"{"port":5432,"user":"app-user"}"#),
    ("db-a", "db-a-value"),
    ("db-c", "db-c-value"),
    ("other", "other-main"),
    ("other-second", "other-second"),
    ("s2-x", "s2-x-value"),
    ("s2-z", "s2-z-value"),
];

/// The object ids such a mount records: `other`, from both vaults, qualified by vault.
const ALL_IDS: [&str; 7] = [
    "keyvol-beyond/secret/other",
    "keyvol-second/secret/other",
    "secret/conn",
    "secret/db-a",
    "secret/db-c",
    "secret/s2-x",
    "secret/s2-z",
];

fn check_all_files(read: impl Fn(&str) -> String, listed: Vec<String>) {
    let names: Vec<&str> = ALL_FILES.iter().map(|(f, _)| *f).collect();
    assert_eq!(listed, names, "only enabled matches; both vaults");
    for (file, want) in ALL_FILES {
        assert_eq!(read(file), want, "{file}");
    }
}

#[test]
fn one_class_with_wildcards_json_fields_and_a_second_vault_mounts() {
    let vault = DevVaultProc::start(&two_vault_seed());
    let target = Target::new();
    let items = all_features();
    let items: Vec<&str> = items.iter().map(String::as_str).collect();
    let out = mount(&vault, &target, &class(VAULT, &items), &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    check_all_files(|f| target.read(f), files(&target));
    let text = stdout(&out);
    let mut ids: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("object "))
        .filter_map(|l| l.split(" version ").next())
        .collect();
    ids.sort();
    assert_eq!(ids, ALL_IDS);
}

#[test]
fn an_objects_other_tenant_is_the_one_its_token_is_asked_of() {
    let vault = DevVaultProc::start(&two_vault_seed());
    let target = Target::new();
    let other_tenant = "99999999-2222-3333-4444-555555555555";
    let text = class(
        VAULT,
        &[
            "objectName: other\nobjectType: secret",
            &format!(
                "objectName: s2-x\nobjectType: secret\nkeyvaultName: {SECOND}\ntenantId: {other_tenant}"
            ),
        ],
    );
    let out = mount(&vault, &target, &text, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let line = last_line(&out);
    assert!(
        line.contains("AADSTS90002"),
        "the other tenant is unknown to the dev vault: {line}"
    );
    assert!(!target.is_mounted());
}

#[test]
fn bad_object_vaults_and_tenants_fail_before_any_request() {
    let vault = DevVaultProc::start(&two_vault_seed());
    let cases = [
        (
            "objectName: other\nobjectType: secret\nkeyvaultName: evil.example/x",
            "objects[0].keyvaultName: \"evil.example/x\" is not a vault name",
        ),
        (
            "objectName: other\nobjectType: secret\ntenantId: t2",
            "objects[0].tenantId: is only allowed with the object's own keyvaultName",
        ),
        (
            "objectName: other\nobjectType: secret\nkeyvaultName: kv-2\ntenantId: ../t",
            "objects[0].tenantId: \"../t\" is not a tenant",
        ),
    ];
    for (item, want) in cases {
        let target = Target::new();
        let out = mount(&vault, &target, &class(VAULT, &[item]), &[]);
        assert_eq!(out.status.code(), Some(2), "{item}: {}", stderr(&out));
        assert!(
            last_line(&out).contains(want),
            "{item}: {}",
            last_line(&out)
        );
    }
    // A wildcard of one vault selecting a name another entry writes is caught across vaults.
    let target = Target::new();
    let text = class(
        VAULT,
        &[
            "objectName: s2-x\nobjectType: secret",
            &format!("objectName: s2-*\nobjectType: secret\nkeyvaultName: {SECOND}"),
        ],
    );
    let out = mount(&vault, &target, &text, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        last_line(&out)
            .contains("objects[1]: file name \"s2-x\" (of secret/s2-x) is also used by objects[0]"),
        "{}",
        last_line(&out)
    );
    assert!(!target.is_mounted());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_class_with_every_feature_mounts_through_the_node_and_records_its_ids() {
    let c = Cluster::start_with_vault(DevVaultProc::start(&two_vault_seed()), &[]).await;
    let items = all_features();
    let items: Vec<&str> = items.iter().map(String::as_str).collect();
    let mut spc = spc_object("every", "azure", &items);
    spc["spec"]["parameters"]["keyvaultName"] = serde_json::json!(VAULT);
    c.fake.insert(&spc).expect("class");
    let target = c.target("every");
    let mut node = c.client().await;
    node.node_publish_volume(publish_request(&target, "every"))
        .await
        .expect("publish");
    let mut listed: Vec<String> = std::fs::read_dir(&target)
        .expect("target")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with(".."))
        .collect();
    listed.sort();
    check_all_files(
        |f| std::fs::read_to_string(target.join(f)).expect("file"),
        listed,
    );
    let status: SecretProviderClassPodStatus = c
        .fake
        .get("default", "app-default-every")
        .expect("read")
        .expect("status");
    let ids: Vec<&str> = status
        .status
        .objects
        .iter()
        .map(|o| o.id.as_str())
        .collect();
    assert_eq!(ids, ALL_IDS);
    let log = c.node().log();
    for secret in ["app-user", "pw-value", "db-a-value", "s2-x-value"] {
        assert!(!log.contains(secret), "a secret value reached the log");
    }
}

#[test]
fn objects_of_two_vaults_are_fetched_at_the_same_time() {
    // Every secret request (the challenge's 401 included) takes a second.
    let vault = DevVaultProc::start_with(
        &two_vault_seed(),
        &["--fault", "GET /secrets/*:latencyMs=1000"],
    );
    let timed = |items: &[&str]| {
        let target = Target::new();
        let started = std::time::Instant::now();
        let out = mount(&vault, &target, &class(VAULT, items), &[]);
        assert!(out.status.success(), "{}", stderr(&out));
        started.elapsed()
    };
    let second = format!("objectName: s2-x\nobjectType: secret\nkeyvaultName: {SECOND}");
    let one = timed(&["objectName: db-a\nobjectType: secret"]);
    let two = timed(&["objectName: db-a\nobjectType: secret", &second]);
    // One after the other, the second vault would add its own challenge and fetch (2 s).
    assert!(
        two < one + Duration::from_millis(1000),
        "one vault {one:?}, two vaults {two:?}"
    );
}

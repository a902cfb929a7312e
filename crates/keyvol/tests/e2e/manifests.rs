//! Checked-in manifests stay true: `deploy/kubernetes/crds.yaml` is exactly what `keyvol crd`
//! generates from the Rust types, and the examples parse as the classes they claim to be.

use crate::util::*;

#[test]
fn the_checked_in_crds_match_the_generator() {
    let out = run(keyvol().arg("crd"));
    assert!(out.status.success(), "{}", stderr(&out));
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/kubernetes/crds.yaml"
    ))
    .expect("crds.yaml");
    assert_eq!(
        stdout(&out),
        committed,
        "regenerate with: keyvol crd > deploy/kubernetes/crds.yaml"
    );
}

#[test]
fn the_deploy_manifest_runs_the_node_with_upstream_flags() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/kubernetes/keyvol.yaml"
    ))
    .expect("keyvol.yaml");
    for flag in [
        "--endpoint=unix:///csi/csi.sock",
        "--nodeid=$(KUBE_NODE_NAME)",
        "--plugin-registration-dir=/registration",
        "--health-addr=:9808",
        "--enable-secret-rotation=false",
    ] {
        assert!(text.contains(flag), "{flag}");
    }
    // Every flag in the manifest is one the binary accepts.
    let flags: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- --"))
        .map(|f| f.split('=').next().unwrap_or(f))
        .collect();
    let help = stdout(&run(keyvol().args(["node", "--help"])));
    for f in flags {
        assert!(
            help.contains(&format!("--{f}")),
            "keyvol node does not accept --{f}"
        );
    }
}

//! The developer tools binary `keyvol-dev`, driven as a person would: the README's demo, and the
//! dev vault's readiness banner.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};

fn keyvol_dev() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_keyvol-dev"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default());
    cmd
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("keyvol-dev runs")
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

#[test]
fn demo_mounts_the_example_class_and_exits_zero() {
    let out = run(keyvol_dev().arg("demo"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stderr: {stderr}");
    let text = String::from_utf8_lossy(&out.stdout);
    for want in [
        "db-password",
        "config/api-key",
        "config/api-key.previous",
        "greeting.txt",
        "..data -> ..",
        "cleaned up",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    assert!(
        !text.contains("correct-horse-battery-staple"),
        "the demo must not print secret values"
    );
    if is_root() {
        assert!(text.contains("on a tmpfs"), "{text}");
    }
}

#[test]
fn dev_vault_announces_where_it_listens_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = keyvol_dev()
        .args(["dev-vault", "--listen", "127.0.0.1:0", "--ca-file"])
        .arg(dir.path().join("ca.pem"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first = lines.next().expect("a line").expect("utf-8");
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        first.starts_with("listening on https://127.0.0.1:"),
        "{first}"
    );
    assert!(dir.path().join("ca.pem").is_file());
}

#[test]
fn the_production_binary_has_no_developer_tools() {
    // keyvol-dev's siblings: cargo builds both binaries into one directory.
    let keyvol = std::path::Path::new(env!("CARGO_BIN_EXE_keyvol-dev")).with_file_name("keyvol");
    if !keyvol.is_file() {
        eprintln!("skipped: {} not built", keyvol.display());
        return;
    }
    for tool in ["demo", "dev-vault", "bench"] {
        let out = run(Command::new(&keyvol).arg(tool));
        assert_eq!(out.status.code(), Some(2), "keyvol {tool} must not exist");
    }
}

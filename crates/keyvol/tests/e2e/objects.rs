//! Every object type of the Azure provider through the real `keyvol mount` against the dev
//! vault, each file checked with `openssl`: RSA and EC keys as `PUBLIC KEY` PEM, certificates as
//! the leaf PEM, PKCS#12 and PEM certificate secrets as key + chain (leaf → root), `objectFormat:
//! pfx`, separate `.crt`/`.key` files, and version history.

use std::path::Path;
use std::process::Command;

use crate::util::*;

const VAULT: &str = "keyvol-objects";

fn objects_seed() -> String {
    seed(&format!(
        "  - name: {VAULT}\n    keys:\n      - name: rsa\n        kty: RSA\n        keySize: 3072\n      - name: ec256\n        kty: EC\n        crv: P-256\n      - name: ec521\n        kty: EC\n        crv: P-521\n    certificates:\n      - name: web\n        subject: CN=web.example\n        dnsNames: [web.example]\n        chain: true\n      - name: webpem\n        subject: CN=pem.example\n        contentType: application/x-pem-file\n        chain: true\n    secrets:\n      - name: hist\n        value: h0\n"
    ))
}

fn openssl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl is installed");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn p(path: &Path) -> &str {
    path.to_str().expect("utf8")
}

fn split_pem(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut cur: Option<(String, String)> = None;
    for line in text.lines() {
        if let Some(tag) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        {
            cur = Some((tag.to_owned(), format!("{line}\n")));
        } else if let Some((tag, mut body)) = cur.take() {
            body.push_str(line);
            body.push('\n');
            if line.starts_with("-----END ") {
                out.push((tag, body));
            } else {
                cur = Some((tag, body));
            }
        }
    }
    out
}

#[test]
fn keys_certificates_and_certificate_secrets_are_written_as_upstream_and_openssl_reads_them() {
    let vault = DevVaultProc::start(&objects_seed());
    // Versions created in the same second have no order (Key Vault's `created` has 1 s
    // resolution), so space them out.
    for v in ["h1", "h2", "h3"] {
        std::thread::sleep(std::time::Duration::from_millis(1100));
        vault.set_secret(VAULT, "hist", v);
    }
    let target = Target::new();
    let class_file = write(
        target.dir.path(),
        "class.yaml",
        &class(
            VAULT,
            &[
                "objectName: rsa\nobjectType: key\nobjectAlias: keys/rsa.pem",
                "objectName: ec256\nobjectType: key\nobjectAlias: keys/ec256.pem",
                "objectName: ec521\nobjectType: key\nobjectAlias: keys/ec521.pem",
                "objectName: web\nobjectType: cert\nobjectAlias: web.crt.pem",
                "objectName: web\nobjectType: secret\nobjectAlias: web.pem",
                "objectName: web\nobjectType: secret\nobjectFormat: pfx\nobjectEncoding: base64\nobjectAlias: web.pfx",
                "objectName: webpem\nobjectType: secret\nobjectAlias: webpem.pem",
                "objectName: hist\nobjectType: secret\nobjectVersionHistory: 2",
            ],
        ),
    );
    let creds = creds_file(target.dir.path(), CLIENT_SECRET);
    let out = run(keyvol()
        .arg("mount")
        .arg("--class")
        .arg(&class_file)
        .arg("--target")
        .arg(&target.path)
        .arg("--secrets-file")
        .arg(&creds)
        .arg("--write-cert-and-key-in-separate-files=true")
        .args(vault.azure_args())
        .args(target.backing_args()));
    assert!(out.status.success(), "{}", stderr(&out));
    let t = |rel: &str| target.path.join(rel);

    // Keys: SPKI PUBLIC KEY PEM that openssl parses, with the right size / curve.
    let rsa = String::from_utf8(openssl(&[
        "pkey",
        "-pubin",
        "-in",
        p(&t("keys/rsa.pem")),
        "-noout",
        "-text",
    ]))
    .expect("utf8");
    assert!(rsa.contains("3072 bit"), "{rsa}");
    let ec = String::from_utf8(openssl(&[
        "pkey",
        "-pubin",
        "-in",
        p(&t("keys/ec256.pem")),
        "-noout",
        "-text",
    ]))
    .expect("utf8");
    assert!(ec.contains("prime256v1") || ec.contains("P-256"), "{ec}");
    let ec521 = String::from_utf8(openssl(&[
        "pkey",
        "-pubin",
        "-in",
        p(&t("keys/ec521.pem")),
        "-noout",
        "-text",
    ]))
    .expect("utf8");
    assert!(
        ec521.contains("secp521r1") || ec521.contains("P-521"),
        "{ec521}"
    );

    // cert: only the leaf certificate.
    let leaf_file = std::fs::read_to_string(t("web.crt.pem")).expect("cert");
    assert_eq!(split_pem(&leaf_file).len(), 1);
    let subject = String::from_utf8(openssl(&[
        "x509",
        "-in",
        p(&t("web.crt.pem")),
        "-noout",
        "-subject",
    ]))
    .expect("utf8");
    assert!(subject.contains("web.example"), "{subject}");

    // The certificate's secret (PKCS#12 in the vault): key first, then leaf → intermediate → root.
    for main in ["web.pem", "webpem.pem"] {
        let text = std::fs::read_to_string(t(main)).expect("secret");
        let blocks = split_pem(&text);
        let tags: Vec<&str> = blocks.iter().map(|(tag, _)| tag.as_str()).collect();
        assert_eq!(
            tags,
            ["PRIVATE KEY", "CERTIFICATE", "CERTIFICATE", "CERTIFICATE"],
            "{main}"
        );
        assert_eq!(
            openssl(&["pkey", "-in", p(&t(main)), "-pubout"]),
            openssl(&["x509", "-in", p(&t(main)), "-pubkey", "-noout"]),
            "{main}: the key matches the leaf"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        for (i, (_, pem)) in blocks.iter().enumerate().skip(1) {
            std::fs::write(dir.path().join(format!("{i}.pem")), pem).expect("write");
        }
        let ok = openssl(&[
            "verify",
            "-CAfile",
            p(&dir.path().join("3.pem")),
            "-untrusted",
            p(&dir.path().join("2.pem")),
            p(&dir.path().join("1.pem")),
        ]);
        assert!(
            String::from_utf8_lossy(&ok).contains("OK"),
            "{main}: the chain verifies in the written order"
        );
    }
    // Separate files for certificate-backed secrets, never empty, and none for the PFX form.
    assert!(
        std::fs::read_to_string(t("web.pem.crt"))
            .expect("crt")
            .matches("BEGIN CERTIFICATE")
            .count()
            == 3
    );
    assert!(
        std::fs::read_to_string(t("web.pem.key"))
            .expect("key")
            .contains("BEGIN PRIVATE KEY")
    );
    assert!(!t("web.pfx.crt").exists() && !t("web.pfx.key").exists());

    // objectFormat: pfx + objectEncoding: base64 is the binary PFX; it opens with an empty password.
    let opened = Command::new("openssl")
        .args([
            "pkcs12",
            "-in",
            p(&t("web.pfx")),
            "-passin",
            "pass:",
            "-noout",
        ])
        .output()
        .expect("openssl");
    let opened = if opened.status.success() {
        opened
    } else {
        Command::new("openssl")
            .args([
                "pkcs12",
                "-legacy",
                "-in",
                p(&t("web.pfx")),
                "-passin",
                "pass:",
                "-noout",
            ])
            .output()
            .expect("openssl")
    };
    assert!(
        opened.status.success(),
        "{}",
        String::from_utf8_lossy(&opened.stderr)
    );

    // Version history: exactly two, newest first.
    assert_eq!(target.read("hist/0"), "h3");
    assert_eq!(target.read("hist/1"), "h2");
    assert!(
        !t("hist/2").exists(),
        "exactly N versions (upstream wrote N+1)"
    );
}

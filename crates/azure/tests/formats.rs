//! Output formats of the Azure provider, checked with a tool no one here wrote: `openssl` parses
//! every PEM and PFX the provider produces, the private key matches its certificate, chains verify
//! in the written order, and public keys match the JWK they came from.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use keyvol_azure::format::{Fetched, FormatOptions, render};
use keyvol_azure::keyvault::{CertificateBundle, KeyBundle, SecretBundle};
use keyvol_azure::objects::parse_objects;
use keyvol_core::{RelPath, Sensitive};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, PublicKeyData};

fn openssl(args: &[&str]) -> std::process::Output {
    Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl is installed (the test command installs it)")
}

fn openssl_ok(args: &[&str]) -> Vec<u8> {
    let out = openssl(args);
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn object(yaml: &str) -> keyvol_azure::objects::KeyVaultObject {
    let text = format!(
        "array:\n  - |\n{}",
        yaml.lines()
            .map(|l| format!("    {l}\n"))
            .collect::<String>()
    );
    parse_objects(&text)
        .expect("valid object")
        .objects
        .remove(0)
}

fn cert_secret(value: String, content_type: &str) -> Fetched {
    Fetched::Secret(SecretBundle {
        value: Sensitive::new(value),
        id: "https://kv.vault.azure.net/secrets/c/0123".into(),
        content_type: Some(content_type.into()),
        kid: Some("https://kv.vault.azure.net/keys/c/0123".into()),
    })
}

fn write_all(dir: &Path, files: &[(RelPath, Vec<u8>)]) -> Vec<PathBuf> {
    files
        .iter()
        .map(|(p, b)| {
            let path = dir.join(p.as_str());
            std::fs::write(&path, b).expect("write");
            path
        })
        .collect()
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf8 path")
}

struct Chain {
    root: Vec<u8>,
    int: Vec<u8>,
    leaf: Vec<u8>,
    leaf_key: KeyPair,
}

fn chain() -> Chain {
    let root_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).expect("key");
    let mut p = CertificateParams::new(vec![]).expect("params");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name
        .push(rcgen::DnType::CommonName, "keyvol test root");
    let root = CertifiedIssuer::self_signed(p, root_key).expect("root");
    let int_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let mut p = CertificateParams::new(vec![]).expect("params");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name
        .push(rcgen::DnType::CommonName, "keyvol test intermediate");
    p.use_authority_key_identifier_extension = true;
    let int = CertifiedIssuer::signed_by(p, int_key, &root).expect("int");
    let leaf_key = KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).expect("key");
    let mut p = CertificateParams::new(vec!["app.example".into()]).expect("params");
    p.distinguished_name
        .push(rcgen::DnType::CommonName, "app.example");
    p.use_authority_key_identifier_extension = true;
    let leaf = p.signed_by(&leaf_key, &int).expect("leaf");
    Chain {
        root: root.der().to_vec(),
        int: int.der().to_vec(),
        leaf: leaf.der().to_vec(),
        leaf_key,
    }
}

/// A PFX as Key Vault stores certificate secrets: empty password, 3DES, key + certificates in
/// the given (possibly scrambled) order.
fn pfx(key: &KeyPair, certs: &[&[u8]]) -> Vec<u8> {
    let mut store = p12_keystore::KeyStore::new();
    let key = p12_keystore::PrivateKey::from_der(&key.serialize_der()).expect("pkcs8");
    let certs: Vec<_> = certs
        .iter()
        .map(|c| p12_keystore::Certificate::from_der(c).expect("cert"))
        .collect();
    store.add_entry(
        "c",
        p12_keystore::KeyStoreEntry::PrivateKeyChain(p12_keystore::PrivateKeyChain::new(
            vec![1u8, 2, 3],
            key,
            certs,
        )),
    );
    store
        .writer("")
        .encryption_algorithm(p12_keystore::EncryptionAlgorithm::PbeWithShaAnd3KeyTripleDesCbc)
        .write()
        .expect("pfx")
}

fn pem_blocks(text: &[u8]) -> Vec<(String, Vec<u8>)> {
    pem::parse_many(text)
        .expect("pem")
        .into_iter()
        .map(|p| (p.tag().to_owned(), p.into_contents()))
        .collect()
}

#[test]
fn pkcs12_secret_becomes_key_then_chain_leaf_to_root_and_verifies_with_openssl() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = chain();
    // Stored out of order: root, leaf, intermediate.
    let value = base64::engine::general_purpose::STANDARD
        .encode(pfx(&c.leaf_key, &[&c.root, &c.leaf, &c.int]));
    let o = object("objectName: c\nobjectType: secret\nobjectAlias: tls.pem");
    let opts = FormatOptions {
        construct_pem_chain: true,
        separate_cert_and_key: true,
    };
    let files = render(
        &o,
        &o.file,
        &cert_secret(value, "application/x-pkcs12"),
        opts,
    )
    .expect("renders");
    let names: Vec<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        names,
        ["tls.pem.crt", "tls.pem.key", "tls.pem"],
        "split files come before the main entry"
    );
    let paths = write_all(dir.path(), &files);
    let main = std::fs::read(&paths[2]).expect("read");
    let blocks = pem_blocks(&main);
    let tags: Vec<&str> = blocks.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        tags,
        ["PRIVATE KEY", "CERTIFICATE", "CERTIFICATE", "CERTIFICATE"]
    );
    assert_eq!(blocks[1].1, c.leaf);
    assert_eq!(blocks[2].1, c.int);
    assert_eq!(blocks[3].1, c.root);

    // The private key parses and matches the leaf.
    let key_pub = openssl_ok(&["pkey", "-in", s(&paths[2]), "-pubout"]);
    let cert_pub = openssl_ok(&["x509", "-in", s(&paths[2]), "-pubkey", "-noout"]);
    assert_eq!(
        key_pub, cert_pub,
        "the private key belongs to the first certificate"
    );
    assert_eq!(
        blocks[0].1,
        c.leaf_key.serialize_der(),
        "PKCS#8 as Go re-encodes it (same bytes for a clean RSA key)"
    );

    // The chain verifies in the written order.
    for (i, (_, der)) in blocks.iter().enumerate().skip(1) {
        std::fs::write(dir.path().join(format!("c{i}.der")), der).expect("write");
        openssl_ok(&[
            "x509",
            "-inform",
            "DER",
            "-in",
            s(&dir.path().join(format!("c{i}.der"))),
            "-out",
            s(&dir.path().join(format!("c{i}.pem"))),
        ]);
    }
    let out = openssl_ok(&[
        "verify",
        "-CAfile",
        s(&dir.path().join("c3.pem")),
        "-untrusted",
        s(&dir.path().join("c2.pem")),
        s(&dir.path().join("c1.pem")),
    ]);
    assert!(String::from_utf8_lossy(&out).contains("OK"));

    // The split files hold only certificates and only the key.
    let crt = pem_blocks(&std::fs::read(&paths[0]).expect("read"));
    assert!(crt.len() == 3 && crt.iter().all(|(t, _)| t == "CERTIFICATE"));
    let key = pem_blocks(&std::fs::read(&paths[1]).expect("read"));
    assert!(key.len() == 1 && key[0].0 == "PRIVATE KEY");
    openssl_ok(&["pkey", "-in", s(&paths[1]), "-noout"]);
}

#[test]
fn without_construct_pem_chain_the_stored_order_is_kept() {
    let c = chain();
    let value = base64::engine::general_purpose::STANDARD
        .encode(pfx(&c.leaf_key, &[&c.root, &c.leaf, &c.int]));
    let o = object("objectName: c\nobjectType: secret");
    let opts = FormatOptions {
        construct_pem_chain: false,
        separate_cert_and_key: false,
    };
    let files = render(
        &o,
        &o.file,
        &cert_secret(value, "application/x-pkcs12"),
        opts,
    )
    .expect("renders");
    let blocks = pem_blocks(&files[0].1);
    let certs: Vec<&Vec<u8>> = blocks
        .iter()
        .filter(|(t, _)| t == "CERTIFICATE")
        .map(|(_, d)| d)
        .collect();
    assert_eq!(certs.len(), 3);
    assert!(certs.contains(&&c.root) && certs.contains(&&c.int) && certs.contains(&&c.leaf));
}

#[test]
fn a_real_key_vault_pfx_converts_to_pem_openssl_accepts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fixture: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/kv-secret-pkcs12.json")).expect("fixture");
    let value = fixture["value"].as_str().expect("value").to_owned();
    let o = object("objectName: c\nobjectType: secret");
    let files = render(
        &o,
        &o.file,
        &cert_secret(value.clone(), "application/x-pkcs12"),
        FormatOptions::default(),
    )
    .expect("renders");
    let paths = write_all(dir.path(), &files);
    let key_pub = openssl_ok(&["pkey", "-in", s(&paths[0]), "-pubout"]);
    let cert_pub = openssl_ok(&["x509", "-in", s(&paths[0]), "-pubkey", "-noout"]);
    assert_eq!(key_pub, cert_pub);
    let subject = openssl_ok(&["x509", "-in", s(&paths[0]), "-noout", "-subject"]);
    assert!(String::from_utf8_lossy(&subject).contains("CN = xyz"));

    // objectFormat: pfx with objectEncoding: base64 writes the binary PFX, which opens with an
    // empty password.
    let o = object(
        "objectName: c\nobjectType: secret\nobjectFormat: pfx\nobjectEncoding: base64\nobjectAlias: c.pfx",
    );
    let files = render(
        &o,
        &o.file,
        &cert_secret(value, "application/x-pkcs12"),
        FormatOptions::default(),
    )
    .expect("renders");
    let paths = write_all(dir.path(), &files);
    let mut out = openssl(&["pkcs12", "-in", s(&paths[0]), "-passin", "pass:", "-noout"]);
    if !out.status.success() {
        // OpenSSL 3 keeps SHA-1/3DES PKCS#12 behind the legacy provider on some builds.
        out = openssl(&[
            "pkcs12",
            "-legacy",
            "-in",
            s(&paths[0]),
            "-passin",
            "pass:",
            "-noout",
        ]);
    }
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_real_key_vault_pem_secret_is_written_as_stored() {
    let fixture: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/kv-secret-pem.json")).expect("fixture");
    let value = fixture["value"].as_str().expect("value").to_owned();
    let o = object("objectName: c\nobjectType: secret");
    let files = render(
        &o,
        &o.file,
        &cert_secret(value.clone(), "application/x-pem-file"),
        FormatOptions::default(),
    )
    .expect("renders");
    assert_eq!(files[0].1, value.as_bytes());
    let dir = tempfile::tempdir().expect("tempdir");
    let paths = write_all(dir.path(), &files);
    assert_eq!(
        openssl_ok(&["pkey", "-in", s(&paths[0]), "-pubout"]),
        openssl_ok(&["x509", "-in", s(&paths[0]), "-pubkey", "-noout"])
    );
}

#[test]
fn public_keys_match_the_jwk_they_came_from() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases: [(&'static rcgen::SignatureAlgorithm, &str, &str, usize); 4] = [
        (&rcgen::PKCS_RSA_SHA256, "RSA", "", 0),
        (&rcgen::PKCS_ECDSA_P256_SHA256, "EC", "P-256", 32),
        (&rcgen::PKCS_ECDSA_P384_SHA384, "EC-HSM", "P-384", 48),
        (&rcgen::PKCS_ECDSA_P521_SHA512, "EC", "P-521", 66),
    ];
    for (alg, kty, crv, size) in cases {
        let key = KeyPair::generate_for(alg).expect("keygen");
        let spki = key.subject_public_key_info();
        let raw = key.public_key_raw().to_vec();
        let bundle = if kty == "RSA" {
            let parsed: pkcs1::RsaPublicKey<der::asn1::UintRef<'_>> =
                der::Decode::from_der(&raw).expect("pkcs1");
            KeyBundle {
                kid: "https://kv.vault.azure.net/keys/k/1".into(),
                kty: kty.into(),
                n: Some(parsed.modulus.as_bytes().to_vec()),
                e: Some(parsed.public_exponent.as_bytes().to_vec()),
                ..KeyBundle::default()
            }
        } else {
            KeyBundle {
                kid: "https://kv.vault.azure.net/keys/k/1".into(),
                kty: kty.into(),
                crv: Some(crv.into()),
                x: Some(raw[1..1 + size].to_vec()),
                y: Some(raw[1 + size..].to_vec()),
                ..KeyBundle::default()
            }
        };
        let o = object("objectName: k\nobjectType: key");
        let files =
            render(&o, &o.file, &Fetched::Key(bundle), FormatOptions::default()).expect("renders");
        let paths = write_all(dir.path(), &files);
        let der = openssl_ok(&["pkey", "-pubin", "-in", s(&paths[0]), "-outform", "DER"]);
        assert_eq!(der, spki, "{kty} {crv}: openssl reads back exactly the key");
    }
}

#[test]
fn cert_objects_are_the_leaf_certificate_pem() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = chain();
    let o = object("objectName: c\nobjectType: cert");
    let files = render(
        &o,
        &o.file,
        &Fetched::Cert(CertificateBundle {
            id: "https://kv/certificates/c/1".into(),
            cer: c.leaf.clone(),
        }),
        FormatOptions::default(),
    )
    .expect("renders");
    let paths = write_all(dir.path(), &files);
    let der = openssl_ok(&["x509", "-in", s(&paths[0]), "-outform", "DER"]);
    assert_eq!(der, c.leaf);
    assert_eq!(pem_blocks(&files[0].1).len(), 1, "no chain, no key");
}

#[test]
fn pfx_written_by_openssl_3_with_an_empty_password_opens_too() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = chain();
    let key_path = dir.path().join("k.pem");
    let cert_path = dir.path().join("c.pem");
    std::fs::write(&key_path, c.leaf_key.serialize_pem()).expect("write");
    std::fs::write(
        &cert_path,
        pem::encode(&pem::Pem::new("CERTIFICATE", c.leaf.clone())),
    )
    .expect("write");
    let pfx_path = dir.path().join("o.pfx");
    // OpenSSL 3's defaults: PBES2 / AES-256 / PBKDF2 and a SHA-256 MAC.
    openssl_ok(&[
        "pkcs12",
        "-export",
        "-inkey",
        s(&key_path),
        "-in",
        s(&cert_path),
        "-passout",
        "pass:",
        "-out",
        s(&pfx_path),
    ]);
    let value =
        base64::engine::general_purpose::STANDARD.encode(std::fs::read(&pfx_path).expect("read"));
    let o = object("objectName: c\nobjectType: secret");
    let files = render(
        &o,
        &o.file,
        &cert_secret(value, "application/x-pkcs12"),
        FormatOptions::default(),
    )
    .expect("renders");
    let blocks = pem_blocks(&files[0].1);
    assert_eq!(blocks[0].0, "PRIVATE KEY");
    assert_eq!(blocks[1].1, c.leaf);
}

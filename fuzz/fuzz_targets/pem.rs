//! What the vault returns for certificate-backed secrets, turned into files: PEM secrets
//! (`application/x-pem-file`, split into `.crt`/`.key` on request) and PKCS#12 secrets
//! (`application/x-pkcs12`, to PEM or kept as PFX) through `keyvol_azure::format::render`, and
//! the two steps inside the PKCS#12 conversion that see the bundle's contents:
//! `keyvol_azure::pfx_pem::normalize_pkcs8` (each private key) and
//! `keyvol_azure::chain::order_chain` (the certificates).
//!
//! The first byte picks the path and the output options; the rest is the input.
//!
//! Checked: no panic; errors are bounded and never repeat the secret's bytes; written PEM parses
//! and every private key in it is PKCS#8 as Go writes it (a fixpoint of `normalize_pkcs8`); a
//! normalised EC key carries the public point of its own scalar; an RSA key is kept as it
//! was; an ordered chain holds exactly the certificates it was given.
#![no_main]

use base64::Engine;
use der::Decode;
use keyvol_azure::chain::order_chain;
use keyvol_azure::format::{CONTENT_TYPE_PEM, CONTENT_TYPE_PFX, Fetched, FormatOptions, render};
use keyvol_azure::keyvault::SecretBundle;
use keyvol_azure::objects::{KeyVaultObject, ObjectEncoding, ObjectFormat, ObjectType};
use keyvol_azure::pfx_pem::normalize_pkcs8;
use keyvol_core::{RelPath, Sensitive};
use keyvol_fuzz::{assert_bounded, assert_no_echo, message};
use libfuzzer_sys::fuzz_target;
use pkcs8::PrivateKeyInfoRef;

const MAX_MESSAGE: usize = 1024;
const P256: der::oid::ObjectIdentifier =
    der::oid::ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const P384: der::oid::ObjectIdentifier = der::oid::ObjectIdentifier::new_unwrap("1.3.132.0.34");
const P521: der::oid::ObjectIdentifier = der::oid::ObjectIdentifier::new_unwrap("1.3.132.0.35");
const OBJECT_ID: &str = "secret/fuzz";

fuzz_target!(|data: &[u8]| {
    let Some((&mode, input)) = data.split_first() else {
        return;
    };
    match mode % 4 {
        0 => pem_secret(mode, input),
        1 => pfx_secret(mode, input),
        2 => normalize(input),
        _ => chain(input),
    }
});

fn object(mode: u8) -> KeyVaultObject {
    KeyVaultObject {
        name: "fuzz".into(),
        file: RelPath::new("fuzz").expect("a valid name"),
        object_type: ObjectType::Secret,
        version: String::new(),
        version_history: 0,
        format: if mode & 0x40 != 0 {
            ObjectFormat::Pfx
        } else {
            ObjectFormat::Pem
        },
        encoding: match (mode >> 4) % 4 {
            1 => ObjectEncoding::Base64,
            2 => ObjectEncoding::Hex,
            _ => ObjectEncoding::Utf8,
        },
        file_permission: None,
        extensions: Default::default(),
    }
}

fn options(mode: u8) -> FormatOptions {
    FormatOptions {
        construct_pem_chain: mode & 0x04 == 0,
        separate_cert_and_key: mode & 0x08 != 0,
    }
}

fn secret(value: String, content_type: &str) -> Fetched {
    Fetched::Secret(SecretBundle {
        value: Sensitive::new(value),
        id: "https://kv.vault.azure.net/secrets/fuzz/0123456789abcdef0123456789abcdef".into(),
        content_type: Some(content_type.into()),
        kid: Some("https://kv.vault.azure.net/keys/fuzz/0123456789abcdef0123456789abcdef".into()),
    })
}

/// A `application/x-pem-file` secret: the value is text (the vault's JSON carries a string).
fn pem_secret(mode: u8, input: &[u8]) {
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    let object = object(mode);
    match render(
        &object,
        &object.file,
        &secret(text.to_owned(), CONTENT_TYPE_PEM),
        options(mode),
    ) {
        Ok(files) => {
            for (path, bytes) in &files {
                assert!(!bytes.is_empty() || path == &object.file, "empty {path}");
                if path != &object.file {
                    // The split files are PEM this code wrote.
                    pem::parse_many(bytes).expect("a split file parses as PEM");
                }
            }
        }
        Err(e) => check_error(input, &message(&e)),
    }
}

/// A `application/x-pkcs12` secret: the vault's value is the PFX in base64.
fn pfx_secret(mode: u8, input: &[u8]) {
    let value = base64::engine::general_purpose::STANDARD.encode(input);
    let object = object(mode);
    match render(
        &object,
        &object.file,
        &secret(value.clone(), CONTENT_TYPE_PFX),
        options(mode),
    ) {
        Ok(files) => {
            if object.format == ObjectFormat::Pfx || object.encoding != ObjectEncoding::Utf8 {
                return;
            }
            for (_, bytes) in &files {
                let blocks = pem::parse_many(bytes).expect("written PEM parses");
                // Keys first, then certificates, as upstream writes the combined file.
                let first_cert = blocks
                    .iter()
                    .position(|b| b.tag() == "CERTIFICATE")
                    .unwrap_or(blocks.len());
                for (i, b) in blocks.iter().enumerate() {
                    match b.tag() {
                        "PRIVATE KEY" => {
                            assert!(i < first_cert, "a key after a certificate");
                            let again = normalize_pkcs8(b.contents()).expect("written key");
                            assert_eq!(again, b.contents(), "written key is not normalised");
                        }
                        "CERTIFICATE" => {}
                        other => panic!("unexpected block {other}"),
                    }
                }
            }
        }
        Err(e) => {
            let message = message(&e);
            check_error(input, &message);
            assert_no_echo("pfx secret", value.as_bytes(), &message, &[OBJECT_ID]);
        }
    }
}

fn check_error(input: &[u8], message: &str) {
    assert_bounded("format error", message, MAX_MESSAGE);
    assert_no_echo("format error", input, message, &[OBJECT_ID]);
}

/// One private key from a bundle.
fn normalize(input: &[u8]) {
    let out = match normalize_pkcs8(input) {
        Ok(out) => out,
        Err(message) => {
            check_error(input, &message);
            return;
        }
    };
    let info = PrivateKeyInfoRef::from_der(&out).expect("the result is PKCS#8");
    assert!(info.public_key.is_none(), "PKCS#8 v2 public key kept");
    assert_eq!(
        normalize_pkcs8(&out).as_deref(),
        Ok(out.as_slice()),
        "not a fixpoint"
    );
    let given = PrivateKeyInfoRef::from_der(input).expect("accepted input is PKCS#8");
    if info.algorithm.oid == pkcs1::ALGORITHM_OID {
        assert_eq!(info.private_key, given.private_key, "RSA key changed");
        assert_eq!(info.algorithm, pkcs1::ALGORITHM_ID);
        return;
    }
    let curve: der::oid::ObjectIdentifier = info
        .algorithm
        .parameters
        .expect("a named curve")
        .decode_as()
        .expect("a named curve");
    let inner = sec1::EcPrivateKey::from_der(info.private_key.as_bytes()).expect("SEC1");
    assert!(inner.parameters.is_none(), "curve repeated inside");
    let derived = match curve {
        c if c == P256 => p256::SecretKey::from_slice(inner.private_key)
            .map(|k| k.public_key().to_sec1_bytes().to_vec()),
        c if c == P384 => p384::SecretKey::from_slice(inner.private_key)
            .map(|k| k.public_key().to_sec1_bytes().to_vec()),
        c if c == P521 => p521::SecretKey::from_slice(inner.private_key)
            .map(|k| k.public_key().to_sec1_bytes().to_vec()),
        other => panic!("accepted curve {other}"),
    }
    .expect("the scalar is a valid private key");
    assert_eq!(
        inner.public_key,
        Some(derived.as_slice()),
        "the public point is not the scalar's"
    );
}

/// The certificates of a bundle: each one a big-endian u16 length and its DER.
fn chain(mut input: &[u8]) {
    let mut certs = Vec::new();
    while let [hi, lo, rest @ ..] = input {
        let len = usize::from(u16::from_be_bytes([*hi, *lo])).min(rest.len());
        certs.push(rest[..len].to_vec());
        input = &rest[len..];
    }
    match order_chain(certs.clone()) {
        Ok((ordered, _)) => {
            let mut a = ordered;
            let mut b = certs;
            a.sort();
            b.sort();
            assert_eq!(a, b, "the chain lost or gained certificates");
        }
        Err(e) => assert_bounded("chain error", &e.to_string(), MAX_MESSAGE),
    }
}

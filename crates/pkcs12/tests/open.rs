//! `keyvol_pkcs12::open` against PFX files from Key Vault and the Azure SDK recordings
//! (tests/fixtures, see the README there) and files written here with p12-keystore: both
//! encodings of "no password", real passwords, PBES1 and PBES2, MAC digests, files without a
//! MAC, and the limits.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use der::{Decode, Encode};
use keyvol_pkcs12::{Error, MAX_ENCRYPTED_ITEMS, MAX_ITERATIONS, MAX_PFX_LEN, open};
use p12_keystore::{
    EncryptionAlgorithm, KeyStore, KeyStoreEntry, MacAlgorithm, Pkcs12Writer, PrivateKeyChain,
};

fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let text = std::fs::read_to_string(path).expect("fixture");
    let compact: String = text.split_whitespace().collect();
    STANDARD.decode(compact).expect("base64")
}

/// A PFX exported by Key Vault: zero-length password, 3DES, SHA-1 MAC.
fn key_vault_export() -> Vec<u8> {
    fixture("keyvault-export-zero-length-password.pfx.b64")
}

/// A self-signed EC certificate and its PKCS#8 key.
struct Made {
    key: Vec<u8>,
    cert: Vec<u8>,
}

fn made(cn: &str) -> Made {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let cert = rcgen::CertificateParams::new(vec![cn.to_owned()])
        .expect("params")
        .self_signed(&key)
        .expect("cert");
    Made {
        key: key.serialize_der(),
        cert: cert.der().to_vec(),
    }
}

/// A key store holding one chain per `made`.
fn store(entries: &[Made]) -> KeyStore {
    let mut store = KeyStore::new();
    for (i, m) in entries.iter().enumerate() {
        let key = p12_keystore::PrivateKey::from_der(&m.key).expect("key");
        let cert = p12_keystore::Certificate::from_der(&m.cert).expect("cert");
        store.add_entry(
            &format!("k{i}"),
            KeyStoreEntry::PrivateKeyChain(PrivateKeyChain::new(
                vec![u8::try_from(i).expect("few")],
                key,
                vec![cert],
            )),
        );
    }
    store
}

/// Writes with low iteration counts so the tests stay fast.
fn write(writer: Pkcs12Writer<'_, '_>) -> Vec<u8> {
    writer
        .encryption_iterations(16)
        .mac_iterations(16)
        .write()
        .expect("pfx")
}

/// The same PFX with its MAC (and so its integrity) taken away, or its MAC iterations changed.
fn remac(pfx: &[u8], iterations: Option<i32>) -> Vec<u8> {
    let mut parsed = pkcs12::Pfx::from_der(pfx).expect("pfx");
    match iterations {
        None => parsed.mac_data = None,
        Some(n) => parsed.mac_data.as_mut().expect("mac").iterations = n,
    }
    parsed.to_der().expect("der")
}

#[test]
fn a_pfx_exported_by_key_vault_opens_with_the_zero_length_password() {
    let pfx = key_vault_export();
    assert!(
        p12_keystore::Pkcs12Archive::from_pkcs12(&pfx, "").is_err(),
        "p12-keystore alone cannot open it, which is why this crate exists"
    );
    let contents = open(&pfx, "").expect("opens");
    assert_eq!((contents.keys.len(), contents.certs.len()), (1, 1));
    rcgen::KeyPair::try_from(contents.keys[0].as_slice()).expect("the key is PKCS#8");
    assert_eq!(contents.certs[0][0], 0x30, "the certificate is DER");
}

#[test]
fn the_go_sdks_recorded_import_pfx_valid_until_2121_opens() {
    let contents = open(&fixture("go-sdk-import-no-password-2121.pfx.b64"), "").expect("opens");
    assert_eq!(contents.keys.len(), 1);
    assert!(!contents.certs.is_empty());
}

#[test]
fn rfc_7292s_terminated_empty_password_opens_with_3des_and_with_pbes2() {
    let m = made("empty.example");
    for algorithm in [
        EncryptionAlgorithm::PbeWithShaAnd3KeyTripleDesCbc,
        EncryptionAlgorithm::PbeWithHmacSha256AndAes256,
    ] {
        let pfx = write(
            store(std::slice::from_ref(&m))
                .writer("")
                .encryption_algorithm(algorithm),
        );
        let contents = open(&pfx, "").expect("opens");
        assert_eq!(contents.keys[0].as_slice(), m.key.as_slice());
        assert_eq!(contents.certs, vec![m.cert.clone()]);
    }
}

#[test]
fn a_password_protected_pfx_opens_with_its_password_only() {
    let m = made("secret.example");
    for algorithm in [
        EncryptionAlgorithm::PbeWithShaAnd3KeyTripleDesCbc,
        EncryptionAlgorithm::PbeWithShaAnd40BitRc4Cbc, // p12-keystore's name for RC2-40
        EncryptionAlgorithm::PbeWithHmacSha256AndAes256,
    ] {
        let pfx = write(
            store(std::slice::from_ref(&m))
                .writer("pfx-pässword")
                .encryption_algorithm(algorithm),
        );
        let contents = open(&pfx, "pfx-pässword").expect("opens");
        assert_eq!(contents.keys[0].as_slice(), m.key.as_slice());
        assert!(matches!(open(&pfx, ""), Err(Error::EmptyPasswordRefused)));
        assert!(matches!(open(&pfx, "wrong"), Err(Error::WrongPassword)));
    }
}

#[test]
fn every_sha2_mac_verifies() {
    let m = made("mac.example");
    for mac in [
        MacAlgorithm::HmacSha256,
        MacAlgorithm::HmacSha384,
        MacAlgorithm::HmacSha512,
    ] {
        let pfx = write(
            store(std::slice::from_ref(&m))
                .writer("")
                .mac_algorithm(mac),
        );
        assert_eq!(open(&pfx, "").expect("opens").certs, vec![m.cert.clone()]);
    }
}

#[test]
fn without_a_mac_each_empty_password_is_tried_on_the_contents() {
    let terminated = remac(&write(store(&[made("no-mac.example")]).writer("")), None);
    assert_eq!(open(&terminated, "").expect("terminated").keys.len(), 1);
    let zero_length = remac(&key_vault_export(), None);
    assert_eq!(open(&zero_length, "").expect("zero-length").keys.len(), 1);
    let protected = remac(&write(store(&[made("no-mac.example")]).writer("pw")), None);
    assert!(open(&protected, "wrong").is_err());
    assert_eq!(open(&protected, "pw").expect("pw").keys.len(), 1);
}

#[test]
fn iteration_counts_beyond_the_cap_are_refused_before_any_work() {
    let pfx = write(store(&[made("slow.example")]).writer(""));
    let over = i32::try_from(MAX_ITERATIONS).expect("fits") + 1;
    match open(&remac(&pfx, Some(over)), "") {
        Err(Error::Iterations { iterations }) => assert_eq!(iterations, i64::from(over)),
        other => panic!("expected the iteration cap, got {other:?}"),
    }
    assert!(matches!(
        open(&remac(&pfx, Some(0)), ""),
        Err(Error::Iterations { iterations: 0 })
    ));
}

#[test]
fn more_encrypted_items_than_the_cap_are_refused() {
    let many: Vec<Made> = (0..MAX_ENCRYPTED_ITEMS)
        .map(|i| made(&format!("k{i}.example")))
        .collect();
    // One shrouded key per entry plus the encrypted certificate safe: one over the cap.
    let pfx = write(store(&many).writer(""));
    assert!(matches!(open(&pfx, ""), Err(Error::TooManyEncryptedItems)));
    let fewer = write(store(&many[1..]).writer(""));
    assert_eq!(
        open(&fewer, "").expect("at the cap").keys.len(),
        many.len() - 1
    );
}

#[test]
fn oversized_and_malformed_input_is_refused() {
    assert!(matches!(
        open(&vec![0x30; MAX_PFX_LEN + 1], ""),
        Err(Error::TooLarge { len }) if len == MAX_PFX_LEN + 1
    ));
    assert!(matches!(
        open(b"not a pfx", ""),
        Err(Error::Malformed { part: "PFX", .. })
    ));
    let mut truncated = key_vault_export();
    truncated.truncate(truncated.len() / 2);
    assert!(matches!(open(&truncated, ""), Err(Error::Malformed { .. })));
}

#[test]
fn the_contents_debug_shows_counts_never_keys() {
    let contents = open(&key_vault_export(), "").expect("opens");
    assert_eq!(format!("{contents:?}"), "Contents { keys: 1, certs: 1 }");
}

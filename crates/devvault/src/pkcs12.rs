//! Opening PFX files whose "no password" is the zero-length password that Key Vault and Windows
//! write. RFC 7292 spells an empty password as a BMPString holding only its two-byte terminator,
//! which is all p12-keystore tries; a certificate exported from Key Vault derives its MAC and
//! encryption keys from zero bytes instead. [`crypto::CertMaterial::from_pfx`] falls back to this
//! reader when p12-keystore refuses an empty-password PFX.
//!
//! Covered: the password-integrity MAC with SHA-1 or SHA-2, and PBES1 bags encrypted with
//! SHA-1 and 3DES or 40-bit RC2 (what Key Vault and Windows export). Unencrypted key bags are
//! read as they are. PBES2 needs no fallback: its passwords are raw bytes, so p12-keystore
//! already opens those.
//!
//! [`crypto::CertMaterial::from_pfx`]: crate::crypto::CertMaterial::from_pfx

use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockCipherDecrypt, BlockModeDecrypt, KeyInit, KeyIvInit};
use cms::content_info::ContentInfo;
use cms::encrypted_data::EncryptedData;
use der::asn1::{ContextSpecific, OctetString};
use der::oid::ObjectIdentifier;
use der::{Decode, Encode};
use hmac::Mac;
use pkcs12::kdf::{Pkcs12KeyType, derive_key};

use crate::crypto::CryptoError;

/// The zero-length password.
const NO_PASSWORD: &[u8] = &[];

/// Highest iteration count accepted (real files use 2,000 to 100,000; this bounds the work an
/// upload can ask for).
const MAX_ITERATIONS: i32 = 1_000_000;

const DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
const ENCRYPTED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.6");
const SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
const SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
const SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");

/// Private keys (PKCS#8 DER) and certificates (DER) found in a PFX.
#[derive(Default)]
pub struct Contents {
    /// PKCS#8 private keys.
    pub keys: Vec<Vec<u8>>,
    /// X.509 certificates.
    pub certs: Vec<Vec<u8>>,
}

/// Opens a PFX protected by the zero-length password.
pub fn open_zero_length(pfx: &[u8]) -> Result<Contents, CryptoError> {
    let bad = |_| CryptoError::Pkcs12;
    let pfx = pkcs12::Pfx::from_der(pfx).map_err(bad)?;
    if pfx.auth_safe.content_type != DATA {
        return Err(CryptoError::Pkcs12);
    }
    let auth = OctetString::from_der(&pfx.auth_safe.content.to_der().map_err(bad)?)
        .map_err(bad)?
        .as_bytes()
        .to_vec();
    if let Some(mac) = &pfx.mac_data
        && !mac_matches(mac, &auth)?
    {
        return Err(CryptoError::Pkcs12);
    }
    let mut out = Contents::default();
    for safe in Vec::<ContentInfo>::from_der(&auth).map_err(bad)? {
        let content = safe.content.to_der().map_err(bad)?;
        let bags = if safe.content_type == DATA {
            OctetString::from_der(&content)
                .map_err(bad)?
                .as_bytes()
                .to_vec()
        } else if safe.content_type == ENCRYPTED_DATA {
            let enc = EncryptedData::from_der(&content).map_err(bad)?;
            let sealed = enc
                .enc_content_info
                .encrypted_content
                .as_ref()
                .ok_or(CryptoError::Pkcs12)?;
            pbe_decrypt(&enc.enc_content_info.content_enc_alg, sealed.as_bytes())?
        } else {
            continue;
        };
        for bag in Vec::<pkcs12::SafeBag>::from_der(&bags).map_err(bad)? {
            if bag.bag_id == pkcs12::PKCS_12_PKCS8_KEY_BAG_OID {
                let shrouded: ContextSpecific<pkcs12::pbe_params::EncryptedPrivateKeyInfo> =
                    ContextSpecific::from_der(&bag.bag_value).map_err(bad)?;
                out.keys.push(pbe_decrypt(
                    &shrouded.value.encryption_algorithm,
                    shrouded.value.encrypted_data.as_bytes(),
                )?);
            } else if bag.bag_id == pkcs12::PKCS_12_KEY_BAG_OID {
                let plain: ContextSpecific<der::asn1::Any> =
                    ContextSpecific::from_der(&bag.bag_value).map_err(bad)?;
                out.keys.push(plain.value.to_der().map_err(bad)?);
            } else if bag.bag_id == pkcs12::PKCS_12_CERT_BAG_OID {
                let cert: ContextSpecific<pkcs12::CertBag> =
                    ContextSpecific::from_der(&bag.bag_value).map_err(bad)?;
                if cert.value.cert_id == pkcs12::PKCS_12_X509_CERT_OID {
                    out.certs.push(cert.value.cert_value.as_bytes().to_vec());
                }
            }
        }
    }
    Ok(out)
}

fn mac_matches(mac: &pkcs12::MacData, data: &[u8]) -> Result<bool, CryptoError> {
    if !(1..=MAX_ITERATIONS).contains(&mac.iterations) {
        return Err(CryptoError::Pkcs12);
    }
    macro_rules! verify {
        ($digest:ty, $len:expr) => {{
            let key = derive_key::<$digest>(
                NO_PASSWORD,
                mac.mac_salt.as_bytes(),
                Pkcs12KeyType::Mac,
                mac.iterations,
                $len,
            );
            let mut h =
                hmac::Hmac::<$digest>::new_from_slice(&key).map_err(|_| CryptoError::Pkcs12)?;
            h.update(data);
            Ok(h.verify_slice(mac.mac.digest.as_bytes()).is_ok())
        }};
    }
    match mac.mac.algorithm.oid {
        SHA1 => verify!(sha1::Sha1, 20),
        SHA256 => verify!(sha2::Sha256, 32),
        SHA384 => verify!(sha2::Sha384, 48),
        SHA512 => verify!(sha2::Sha512, 64),
        _ => Err(CryptoError::Pkcs12),
    }
}

fn pbe_decrypt(alg: &spki::AlgorithmIdentifierOwned, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let params = alg
        .parameters
        .as_ref()
        .ok_or(CryptoError::Pkcs12)?
        .to_der()
        .map_err(|_| CryptoError::Pkcs12)?;
    let pbe =
        pkcs12::pbe_params::Pkcs12PbeParams::from_der(&params).map_err(|_| CryptoError::Pkcs12)?;
    if !(1..=MAX_ITERATIONS).contains(&pbe.iterations) {
        return Err(CryptoError::Pkcs12);
    }
    let salt = pbe.salt.as_bytes();
    if alg.oid == pkcs12::PKCS_12_PBE_WITH_SHAAND3_KEY_TRIPLE_DES_CBC {
        cbc_decrypt::<des::TdesEde3>(data, salt, pbe.iterations, 24)
    } else if alg.oid == pkcs12::PKCS_12_PBEWITH_SHAAND40_BIT_RC2_CBC {
        cbc_decrypt::<rc2::Rc2>(data, salt, pbe.iterations, 5)
    } else {
        Err(CryptoError::Pkcs12)
    }
}

fn cbc_decrypt<C: KeyInit + BlockCipherDecrypt>(
    data: &[u8],
    salt: &[u8],
    iterations: i32,
    key_len: usize,
) -> Result<Vec<u8>, CryptoError> {
    let key = derive_key::<sha1::Sha1>(
        NO_PASSWORD,
        salt,
        Pkcs12KeyType::EncryptionKey,
        iterations,
        key_len,
    );
    let iv = derive_key::<sha1::Sha1>(NO_PASSWORD, salt, Pkcs12KeyType::Iv, iterations, 8);
    cbc::Decryptor::<C>::new_from_slices(&key, &iv)
        .map_err(|_| CryptoError::Pkcs12)?
        .decrypt_padded_vec::<Pkcs7>(data)
        .map_err(|_| CryptoError::Pkcs12)
}

#[cfg(test)]
mod tests {
    use base64::Engine;

    use super::*;
    use crate::crypto::CertMaterial;

    /// The PFX secret value Key Vault returned in a recorded exchange.
    fn key_vault_pfx() -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/keyvault-recordings/cpp-certificates-DownloadImportPkcs.json");
        let text = std::fs::read_to_string(path).expect("recording");
        let rec: serde_json::Value = serde_json::from_str(&text).expect("json");
        let value = rec["Entries"]
            .as_array()
            .expect("entries")
            .iter()
            .find(|e| {
                e["RequestMethod"] == "GET"
                    && e["RequestUri"]
                        .as_str()
                        .is_some_and(|u| u.contains("/secrets/"))
            })
            .and_then(|e| e["ResponseBody"]["value"].as_str())
            .expect("secret value");
        base64::engine::general_purpose::STANDARD
            .decode(value)
            .expect("base64")
    }

    #[test]
    fn a_pfx_exported_by_key_vault_opens_with_the_zero_length_password() {
        let pfx = key_vault_pfx();
        assert!(
            p12_keystore::Pkcs12Archive::from_pkcs12(&pfx, "").is_err(),
            "p12-keystore alone cannot open it, which is why this module exists"
        );
        let contents = open_zero_length(&pfx).expect("opens");
        assert_eq!((contents.keys.len(), contents.certs.len()), (1, 1));
        let material = CertMaterial::from_pfx(&pfx, "").expect("from_pfx falls back");
        assert_eq!(material.chain, contents.certs);
    }

    #[test]
    fn a_pfx_with_a_real_password_is_not_opened_by_the_fallback() {
        let made = crate::crypto::self_signed(&crate::crypto::NewCertificate {
            subject: "CN=x".into(),
            dns_names: vec![],
            validity_months: 1,
            key: crate::crypto::KeySpec::Ec(crate::crypto::Curve::P256),
        })
        .expect("cert");
        let pfx = made.to_pfx().expect("pfx");
        assert!(
            open_zero_length(&pfx).is_err(),
            "RFC 7292's empty password is not zero-length"
        );
    }
}

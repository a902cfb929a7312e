//! Certificate-backed secrets stored as PKCS#12: opening the PFX with an empty password and
//! turning it into PEM — every private key first as PKCS#8 `PRIVATE KEY` re-encoded the way Go's
//! `x509.MarshalPKCS8PrivateKey` does, then the certificates, optionally ordered leaf → root.
//!
//! "No password" has two encodings in PKCS#12: the empty BMPString with its two-byte terminator
//! (RFC 7292, what OpenSSL writes) and a zero-length password (what Key Vault and Windows
//! write). Libraries that only try the first cannot open Key Vault's certificates, so this module
//! reads PFX itself: it tries both against the MAC, as Go's `x/crypto/pkcs12` does, and decrypts
//! with the one that verifies. Supported: PBES1 with SHA-1 and 3DES or RC2-40 (Key Vault,
//! Windows, legacy OpenSSL) and PBES2 (OpenSSL 3's default).

use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockCipherDecrypt, BlockModeDecrypt, KeyInit, KeyIvInit};
use cms::content_info::ContentInfo;
use cms::encrypted_data::EncryptedData;
use der::asn1::{AnyRef, ContextSpecific, OctetString, OctetStringRef};
use der::oid::ObjectIdentifier;
use der::{Decode, Encode};
use hmac::Mac;
use pkcs8::PrivateKeyInfoRef;
use pkcs12::kdf::{Pkcs12KeyType, derive_key};
use sha1::Sha1;

use crate::chain::{ChainOrder, order_chain};
use crate::pemfile::encode_pem;

/// OID of `id-ecPublicKey`.
const EC_PUBLIC_KEY: der::oid::ObjectIdentifier =
    der::oid::ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const P256: der::oid::ObjectIdentifier =
    der::oid::ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const P384: der::oid::ObjectIdentifier = der::oid::ObjectIdentifier::new_unwrap("1.3.132.0.34");
const P521: der::oid::ObjectIdentifier = der::oid::ObjectIdentifier::new_unwrap("1.3.132.0.35");

/// The PEM pieces of a certificate bundle.
#[derive(Debug, Clone, Default)]
pub struct PemParts {
    /// `PRIVATE KEY` blocks.
    pub keys: Vec<String>,
    /// `CERTIFICATE` blocks, in output order.
    pub certs: Vec<String>,
    /// How the chain was ordered.
    pub chain: Option<ChainOrder>,
}

impl PemParts {
    /// Keys then certificates, as upstream writes the combined file.
    pub fn combined(&self) -> String {
        let mut out = String::new();
        for k in &self.keys {
            out.push_str(k);
        }
        for c in &self.certs {
            out.push_str(c);
        }
        out
    }
}

/// Decodes a PFX with an empty password into PEM parts.
pub fn pfx_to_pem(pfx: &[u8], construct_chain: bool) -> Result<PemParts, String> {
    let contents = open_pfx(pfx)?;
    let mut parts = PemParts::default();
    for key in &contents.keys {
        let der = normalize_pkcs8(key)?;
        parts.keys.push(encode_pem("PRIVATE KEY", &der));
    }
    let certs = contents.certs;
    let certs = if construct_chain {
        let (ordered, how) = order_chain(certs).map_err(|e| e.to_string())?;
        parts.chain = Some(how);
        ordered
    } else {
        certs
    };
    parts.certs = certs.iter().map(|c| encode_pem("CERTIFICATE", c)).collect();
    Ok(parts)
}

/// Re-encodes a PKCS#8 private key as Go's `MarshalPKCS8PrivateKey` would: no attributes; RSA
/// with NULL parameters; EC with the named curve outside and, inside, a SEC1 key with the scalar
/// padded to the curve size, no parameters, and the public point.
pub fn normalize_pkcs8(der: &[u8]) -> Result<Vec<u8>, String> {
    let info = PrivateKeyInfoRef::from_der(der)
        .map_err(|_| "a private key in the bundle is not PKCS#8".to_owned())?;
    let bad = |what: &str| format!("a private key in the bundle is not a valid {what} key");
    if info.algorithm.oid == pkcs1::ALGORITHM_OID {
        pkcs1::RsaPrivateKeyRef::from_der(info.private_key.as_bytes()).map_err(|_| bad("RSA"))?;
        let out = PrivateKeyInfoRef {
            algorithm: pkcs1::ALGORITHM_ID,
            private_key: info.private_key,
            public_key: None,
        };
        return out.to_der().map_err(|_| bad("RSA"));
    }
    if info.algorithm.oid == EC_PUBLIC_KEY {
        let inner =
            sec1::EcPrivateKey::from_der(info.private_key.as_bytes()).map_err(|_| bad("EC"))?;
        let curve = match info
            .algorithm
            .parameters
            .map(|p| p.decode_as::<der::oid::ObjectIdentifier>())
        {
            Some(Ok(oid)) => oid,
            _ => inner
                .parameters
                .and_then(|p| p.named_curve())
                .ok_or_else(|| bad("EC"))?,
        };
        let (size, public) = match curve {
            c if c == P256 => (32, ec_public_p256(inner.private_key)),
            c if c == P384 => (48, ec_public_p384(inner.private_key)),
            c if c == P521 => (66, ec_public_p521(inner.private_key)),
            other => {
                return Err(format!(
                    "a private key in the bundle uses curve {other}, which is not supported"
                ));
            }
        };
        let public = match inner.public_key {
            Some(p) => p.to_vec(),
            None => public.ok_or_else(|| bad("EC"))?,
        };
        let scalar = inner.private_key;
        let first = scalar.iter().position(|b| *b != 0).unwrap_or(scalar.len());
        let trimmed = &scalar[first..];
        if trimmed.len() > size {
            return Err(bad("EC"));
        }
        let mut padded = vec![0u8; size - trimmed.len()];
        padded.extend_from_slice(trimmed);
        let sec1_der = sec1::EcPrivateKey {
            private_key: &padded,
            parameters: None,
            public_key: Some(&public),
        }
        .to_der()
        .map_err(|_| bad("EC"))?;
        let curve_der = curve.to_der().map_err(|_| bad("EC"))?;
        let out = PrivateKeyInfoRef {
            algorithm: spki::AlgorithmIdentifierRef {
                oid: EC_PUBLIC_KEY,
                parameters: Some(AnyRef::from_der(&curve_der).map_err(|_| bad("EC"))?),
            },
            private_key: OctetStringRef::new(&sec1_der).map_err(|_| bad("EC"))?,
            public_key: None,
        };
        return out.to_der().map_err(|_| bad("EC"));
    }
    Err(format!(
        "a private key in the bundle uses algorithm {}, which is not supported",
        info.algorithm.oid
    ))
}

/// The uncompressed public point for a private scalar.
macro_rules! ec_public_for {
    ($name:ident, $curve:ident) => {
        fn $name(scalar: &[u8]) -> Option<Vec<u8>> {
            let secret = $curve::SecretKey::from_slice(scalar).ok()?;
            // The NIST curves do not compress points, so this is the 04‖x‖y form.
            Some(secret.public_key().to_sec1_bytes().to_vec())
        }
    };
}
ec_public_for!(ec_public_p256, p256);
ec_public_for!(ec_public_p384, p384);
ec_public_for!(ec_public_p521, p521);

const ID_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
const ID_ENCRYPTED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.6");
const SHA1_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
const SHA256_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const SHA384_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
const SHA512_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");
const PBES2: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.5.13");
/// Upper bound on KDF iterations, so a hostile file cannot make keyvol spin.
const MAX_ITERATIONS: i32 = 10_000_000;

/// The keys (PKCS#8 DER) and certificates (DER) of a PFX, in bag order.
#[derive(Debug, Default)]
pub struct PfxContents {
    /// Private keys, PKCS#8.
    pub keys: Vec<Vec<u8>>,
    /// X.509 certificates.
    pub certs: Vec<Vec<u8>>,
}

/// Opens a PFX that has no password (either encoding of "none").
pub fn open_pfx(data: &[u8]) -> Result<PfxContents, String> {
    let bad = |what: &str| format!("the PKCS#12 bundle is malformed ({what})");
    let pfx = pkcs12::Pfx::from_der(data).map_err(|_| bad("not a PFX"))?;
    if pfx.auth_safe.content_type != ID_DATA {
        return Err("the PKCS#12 bundle uses public-key integrity, which is not supported".into());
    }
    let auth = OctetString::from_der(&pfx.auth_safe.content.to_der().map_err(|_| bad("content"))?)
        .map_err(|_| bad("content"))?
        .as_bytes()
        .to_vec();
    // RFC 7292's empty password (terminator only) first, then the zero-length one Key Vault uses.
    const CANDIDATES: [&[u8]; 2] = [&[0, 0], &[]];
    let password: &[u8] = match &pfx.mac_data {
        Some(mac) => CANDIDATES
            .into_iter()
            .find(|p| verify_mac(mac, p, &auth).unwrap_or(false))
            .ok_or_else(|| "the PKCS#12 bundle does not open with an empty password (is it password-protected?)".to_owned())?,
        None => &[0, 0],
    };
    let safes: Vec<ContentInfo> = Vec::from_der(&auth).map_err(|_| bad("authenticated safe"))?;
    let mut out = PfxContents::default();
    for safe in safes {
        let content = safe.content.to_der().map_err(|_| bad("safe"))?;
        let bags_der = if safe.content_type == ID_DATA {
            OctetString::from_der(&content)
                .map_err(|_| bad("safe"))?
                .as_bytes()
                .to_vec()
        } else if safe.content_type == ID_ENCRYPTED_DATA {
            let enc = EncryptedData::from_der(&content).map_err(|_| bad("encrypted safe"))?;
            let data = enc
                .enc_content_info
                .encrypted_content
                .as_ref()
                .map(|o| o.as_bytes().to_vec())
                .unwrap_or_default();
            decrypt(&enc.enc_content_info.content_enc_alg, &data, password)?
        } else {
            continue;
        };
        let bags: Vec<pkcs12::SafeBag> =
            Vec::from_der(&bags_der).map_err(|_| bad("safe contents"))?;
        for bag in bags {
            if bag.bag_id == pkcs12::PKCS_12_KEY_BAG_OID {
                let key: ContextSpecific<der::asn1::Any> =
                    ContextSpecific::from_der(&bag.bag_value).map_err(|_| bad("key bag"))?;
                out.keys
                    .push(key.value.to_der().map_err(|_| bad("key bag"))?);
            } else if bag.bag_id == pkcs12::PKCS_12_PKCS8_KEY_BAG_OID {
                let enc: ContextSpecific<pkcs12::pbe_params::EncryptedPrivateKeyInfo> =
                    ContextSpecific::from_der(&bag.bag_value)
                        .map_err(|_| bad("shrouded key bag"))?;
                out.keys.push(decrypt(
                    &enc.value.encryption_algorithm,
                    enc.value.encrypted_data.as_bytes(),
                    password,
                )?);
            } else if bag.bag_id == pkcs12::PKCS_12_CERT_BAG_OID {
                let cert: ContextSpecific<pkcs12::CertBag> =
                    ContextSpecific::from_der(&bag.bag_value)
                        .map_err(|_| bad("certificate bag"))?;
                if cert.value.cert_id == pkcs12::PKCS_12_X509_CERT_OID {
                    out.certs.push(cert.value.cert_value.as_bytes().to_vec());
                }
            }
        }
    }
    Ok(out)
}

fn verify_mac(mac: &pkcs12::MacData, password: &[u8], data: &[u8]) -> Result<bool, String> {
    if mac.iterations > MAX_ITERATIONS {
        return Err("PKCS#12 MAC iteration count is too high".into());
    }
    macro_rules! check {
        ($digest:ty, $len:expr) => {{
            let key = derive_key::<$digest>(
                password,
                mac.mac_salt.as_bytes(),
                Pkcs12KeyType::Mac,
                mac.iterations,
                $len,
            );
            let mut h = hmac::Hmac::<$digest>::new_from_slice(&key)
                .map_err(|_| "PKCS#12 MAC key is invalid".to_owned())?;
            h.update(data);
            Ok(h.verify_slice(mac.mac.digest.as_bytes()).is_ok())
        }};
    }
    match mac.mac.algorithm.oid {
        SHA1_OID => check!(Sha1, 20),
        SHA256_OID => check!(sha2::Sha256, 32),
        SHA384_OID => check!(sha2::Sha384, 48),
        SHA512_OID => check!(sha2::Sha512, 64),
        other => Err(format!("PKCS#12 MAC algorithm {other} is not supported")),
    }
}

fn decrypt(
    alg: &spki::AlgorithmIdentifierOwned,
    data: &[u8],
    password: &[u8],
) -> Result<Vec<u8>, String> {
    let params = alg
        .parameters
        .as_ref()
        .ok_or_else(|| "PKCS#12 encryption parameters are missing".to_owned())?;
    let params_der = params
        .to_der()
        .map_err(|_| "PKCS#12 encryption parameters are malformed".to_owned())?;
    if alg.oid == PBES2 {
        // PBES2 passwords are raw bytes, not BMPStrings: "no password" is zero-length.
        let pbes2 = pkcs5::pbes2::Parameters::from_der(&params_der)
            .map_err(|_| "PBES2 parameters are malformed".to_owned())?;
        return pbes2
            .decrypt([], data)
            .map(|v| v.to_vec())
            .map_err(|e| format!("PBES2 decryption failed: {e}"));
    }
    let pbe = pkcs12::pbe_params::Pkcs12PbeParams::from_der(&params_der)
        .map_err(|_| "PBE parameters are malformed".to_owned())?;
    if pbe.iterations > MAX_ITERATIONS {
        return Err("PKCS#12 iteration count is too high".into());
    }
    let salt = pbe.salt.as_bytes();
    if alg.oid == pkcs12::PKCS_12_PBE_WITH_SHAAND3_KEY_TRIPLE_DES_CBC {
        cbc_decrypt::<des::TdesEde3>(data, password, salt, pbe.iterations, 24)
    } else if alg.oid == pkcs12::PKCS_12_PBEWITH_SHAAND40_BIT_RC2_CBC {
        cbc_decrypt::<rc2::Rc2>(data, password, salt, pbe.iterations, 5)
    } else {
        Err(format!("PKCS#12 encryption {} is not supported", alg.oid))
    }
}

fn cbc_decrypt<C>(
    data: &[u8],
    password: &[u8],
    salt: &[u8],
    iterations: i32,
    key_len: usize,
) -> Result<Vec<u8>, String>
where
    C: KeyInit + BlockCipherDecrypt,
{
    let key = derive_key::<Sha1>(
        password,
        salt,
        Pkcs12KeyType::EncryptionKey,
        iterations,
        key_len,
    );
    let iv = derive_key::<Sha1>(password, salt, Pkcs12KeyType::Iv, iterations, 8);
    let cipher = cbc::Decryptor::<C>::new_from_slices(&key, &iv)
        .map_err(|_| "PKCS#12 key has the wrong length".to_owned())?;
    cipher
        .decrypt_padded_vec::<Pkcs7>(data)
        .map_err(|_| "PKCS#12 decryption failed (wrong password or corrupt data)".to_owned())
}

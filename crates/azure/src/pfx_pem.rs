//! Certificate-backed secrets stored as PKCS#12, as PEM: every private key first as PKCS#8
//! `PRIVATE KEY` re-encoded the way Go's `x509.MarshalPKCS8PrivateKey` does, then the
//! certificates, optionally ordered leaf → root. Opening the PFX (Key Vault's zero-length
//! password included) is `keyvol_pkcs12`'s.

use der::asn1::{AnyRef, OctetStringRef};
use der::{Decode, Encode};
use pkcs8::PrivateKeyInfoRef;

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
    let contents = keyvol_pkcs12::open(pfx, "").map_err(|e| e.to_string())?;
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
/// padded to the curve size, no parameters, and the public point computed from the scalar.
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
        let (size, public_of): (usize, PublicOf) = match curve {
            c if c == P256 => (32, ec_public_p256),
            c if c == P384 => (48, ec_public_p384),
            c if c == P521 => (66, ec_public_p521),
            other => {
                return Err(format!(
                    "a private key in the bundle uses curve {other}, which is not supported"
                ));
            }
        };
        let scalar = inner.private_key;
        let first = scalar.iter().position(|b| *b != 0).unwrap_or(scalar.len());
        let trimmed = &scalar[first..];
        if trimmed.len() > size {
            return Err(bad("EC"));
        }
        let mut padded = vec![0u8; size - trimmed.len()];
        padded.extend_from_slice(trimmed);
        // The public point is always the scalar's, as Go's parser computes it: a stored point
        // that belongs to another key is dropped (the written key would not match its
        // certificate), and a scalar that is no private key (zero, or not below the curve's
        // order) is refused.
        let public = public_of(&padded).ok_or_else(|| bad("EC"))?;
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

/// Computes a curve's public point from a scalar.
type PublicOf = fn(&[u8]) -> Option<Vec<u8>>;

/// The uncompressed public point for a private scalar of the curve's size; `None` when the scalar
/// is zero or not below the curve's order.
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A P-256 PKCS#8 key as rcgen writes it, with its SEC1 parts handed to `edit` first.
    fn p256_key(edit: impl FnOnce(&[u8], &[u8]) -> (Vec<u8>, Option<Vec<u8>>)) -> Vec<u8> {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("keygen");
        let der = key.serialize_der();
        let info = PrivateKeyInfoRef::from_der(&der).expect("pkcs8");
        let inner = sec1::EcPrivateKey::from_der(info.private_key.as_bytes()).expect("sec1");
        let public = inner.public_key.expect("rcgen writes the public key");
        let (scalar, public) = edit(inner.private_key, public);
        let sec1_der = sec1::EcPrivateKey {
            private_key: &scalar,
            parameters: inner.parameters,
            public_key: public.as_deref(),
        }
        .to_der()
        .expect("sec1");
        PrivateKeyInfoRef {
            algorithm: info.algorithm,
            private_key: OctetStringRef::new(&sec1_der).expect("octets"),
            public_key: None,
        }
        .to_der()
        .expect("pkcs8")
    }

    fn public_of(pkcs8: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let info = PrivateKeyInfoRef::from_der(pkcs8).expect("pkcs8");
        let inner = sec1::EcPrivateKey::from_der(info.private_key.as_bytes()).expect("sec1");
        (
            inner.private_key.to_vec(),
            inner.public_key.expect("public key").to_vec(),
        )
    }

    #[test]
    fn ec_keys_carry_the_public_point_of_their_own_scalar() {
        // Found by fuzz/fuzz_targets/pem.rs: a stored public point was written as it was, even
        // when it belonged to another key.
        let other = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("keygen");
        let wrong = other.public_key_raw().to_vec();
        let given = p256_key(|scalar, _| (scalar.to_vec(), Some(wrong.clone())));
        let (scalar, public) = public_of(&normalize_pkcs8(&given).expect("normalises"));
        let derived = p256::SecretKey::from_slice(&scalar)
            .expect("scalar")
            .public_key()
            .to_sec1_bytes()
            .to_vec();
        assert_ne!(public, wrong);
        assert_eq!(public, derived);

        // A key stored without its point gets its scalar's.
        let bare = p256_key(|scalar, _| (scalar.to_vec(), None));
        let (scalar, public) = public_of(&normalize_pkcs8(&bare).expect("normalises"));
        let derived = p256::SecretKey::from_slice(&scalar)
            .expect("scalar")
            .public_key()
            .to_sec1_bytes()
            .to_vec();
        assert_eq!(public, derived);
    }

    #[test]
    fn ec_scalars_that_are_no_private_key_are_refused() {
        // Zero, and the curve's order itself: with a stored point they used to pass.
        let order = hex::decode("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551")
            .expect("hex");
        for bad in [vec![0u8; 32], order] {
            let key = p256_key(|_, public| (bad.clone(), Some(public.to_vec())));
            assert_eq!(
                normalize_pkcs8(&key),
                Err("a private key in the bundle is not a valid EC key".to_owned())
            );
        }
    }
}

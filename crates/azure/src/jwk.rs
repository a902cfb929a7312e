//! Public keys from JWK members to the SubjectPublicKeyInfo `PUBLIC KEY` PEM that upstream's
//! provider writes for `objectType: key` (byte-identical to Go's `x509.MarshalPKIXPublicKey`).

use der::Encode;
use der::asn1::UintRef;
use spki::EncodePublicKey;

use crate::keyvault::KeyBundle;
use crate::pemfile::encode_pem;

/// Why a key could not be converted. Never holds key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwkError {
    /// `kty` other than RSA / EC (e.g. `oct`).
    #[error("key type '{0}' currently not supported")]
    KeyType(String),
    /// EC curve other than P-256/384/521 (e.g. `P-256K`).
    #[error("curve {0} is not supported")]
    Curve(String),
    /// A required member is missing.
    #[error("the key has no '{0}' member")]
    Missing(&'static str),
    /// The members do not form a valid key (e.g. the point is not on the curve).
    #[error("the key's members do not form a valid {0} public key")]
    Invalid(&'static str),
}

/// The `PUBLIC KEY` PEM of a key bundle.
pub fn public_key_pem(key: &KeyBundle) -> Result<Vec<u8>, JwkError> {
    let der = public_key_der(key)?;
    Ok(encode_pem("PUBLIC KEY", &der).into_bytes())
}

/// The SubjectPublicKeyInfo DER of a key bundle.
pub fn public_key_der(key: &KeyBundle) -> Result<Vec<u8>, JwkError> {
    match key.kty.as_str() {
        "RSA" | "RSA-HSM" => {
            // Big-endian unsigned integers; zero (or an empty member, which Go reads as zero) is
            // no modulus or exponent, and would be written as an invalid DER INTEGER.
            let n = trim_zeros(key.n.as_deref().ok_or(JwkError::Missing("n"))?);
            let e = trim_zeros(key.e.as_deref().ok_or(JwkError::Missing("e"))?);
            if n.is_empty() || e.is_empty() {
                return Err(JwkError::Invalid("RSA"));
            }
            let rsa = pkcs1::RsaPublicKey {
                modulus: UintRef::new(n).map_err(|_| JwkError::Invalid("RSA"))?,
                public_exponent: UintRef::new(e).map_err(|_| JwkError::Invalid("RSA"))?,
            };
            let inner = rsa.to_der().map_err(|_| JwkError::Invalid("RSA"))?;
            let spki = spki::SubjectPublicKeyInfoRef {
                algorithm: pkcs1::ALGORITHM_ID,
                subject_public_key: der::asn1::BitStringRef::from_bytes(&inner)
                    .map_err(|_| JwkError::Invalid("RSA"))?,
            };
            spki.to_der().map_err(|_| JwkError::Invalid("RSA"))
        }
        "EC" | "EC-HSM" => {
            let crv = key.crv.as_deref().ok_or(JwkError::Missing("crv"))?;
            let x = key.x.as_deref().ok_or(JwkError::Missing("x"))?;
            let y = key.y.as_deref().ok_or(JwkError::Missing("y"))?;
            let size = match crv {
                "P-256" => 32,
                "P-384" => 48,
                "P-521" => 66,
                other => return Err(JwkError::Curve(named(other))),
            };
            // Coordinates are fixed-size big-endian; pad short encodings as Go's big.Int does.
            let mut point = vec![0x04];
            point.extend(left_pad(x, size).ok_or(JwkError::Invalid("EC"))?);
            point.extend(left_pad(y, size).ok_or(JwkError::Invalid("EC"))?);
            let doc = match crv {
                "P-256" => p256::PublicKey::from_sec1_bytes(&point)
                    .map_err(|_| JwkError::Invalid("EC"))?
                    .to_public_key_der(),
                "P-384" => p384::PublicKey::from_sec1_bytes(&point)
                    .map_err(|_| JwkError::Invalid("EC"))?
                    .to_public_key_der(),
                _ => p521::PublicKey::from_sec1_bytes(&point)
                    .map_err(|_| JwkError::Invalid("EC"))?
                    .to_public_key_der(),
            };
            doc.map(|d| d.as_bytes().to_vec())
                .map_err(|_| JwkError::Invalid("EC"))
        }
        other => Err(JwkError::KeyType(named(other))),
    }
}

/// Longest `kty` or `crv` repeated in a message.
const MAX_NAMED: usize = 64;

/// A `kty` or `crv` value for a message: cut after [`MAX_NAMED`] characters, control characters
/// escaped, so whatever the answer holds, the message stays one short line.
fn named(value: &str) -> String {
    let mut out: String = value
        .chars()
        .take(MAX_NAMED)
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() {
                c.escape_debug().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect();
    if value.chars().nth(MAX_NAMED).is_some() {
        out.push('…');
    }
    out
}

/// `bytes` without leading zero bytes.
fn trim_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

fn left_pad(bytes: &[u8], size: usize) -> Option<Vec<u8>> {
    let trimmed = trim_zeros(bytes);
    if trimmed.len() > size {
        return None;
    }
    let mut out = vec![0u8; size - trimmed.len()];
    out.extend_from_slice(trimmed);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spki_of(alg: &'static rcgen::SignatureAlgorithm) -> (Vec<u8>, Vec<u8>) {
        let key = rcgen::KeyPair::generate_for(alg).expect("keygen");
        (
            rcgen::PublicKeyData::subject_public_key_info(&key),
            key.public_key_raw().to_vec(),
        )
    }

    #[test]
    fn ec_keys_round_trip_byte_exact() {
        for (alg, crv, size) in [
            (&rcgen::PKCS_ECDSA_P256_SHA256, "P-256", 32),
            (&rcgen::PKCS_ECDSA_P384_SHA384, "P-384", 48),
        ] {
            let (spki, raw) = spki_of(alg);
            assert_eq!(raw[0], 4);
            let bundle = KeyBundle {
                kty: "EC".into(),
                crv: Some(crv.into()),
                x: Some(raw[1..1 + size].to_vec()),
                y: Some(raw[1 + size..].to_vec()),
                ..KeyBundle::default()
            };
            assert_eq!(public_key_der(&bundle).expect("converts"), spki, "{crv}");
        }
    }

    #[test]
    fn rsa_keys_round_trip_byte_exact() {
        let (spki, raw) = spki_of(&rcgen::PKCS_RSA_SHA256);
        // raw is the PKCS#1 RSAPublicKey; pull n and e out of it.
        let parsed: pkcs1::RsaPublicKey<UintRef<'_>> = der::Decode::from_der(&raw).expect("pkcs1");
        let bundle = KeyBundle {
            kty: "RSA-HSM".into(),
            n: Some(parsed.modulus.as_bytes().to_vec()),
            e: Some(parsed.public_exponent.as_bytes().to_vec()),
            ..KeyBundle::default()
        };
        assert_eq!(public_key_der(&bundle).expect("converts"), spki);
        let pem = String::from_utf8(public_key_pem(&bundle).expect("pem")).expect("utf8");
        assert!(
            pem.starts_with("-----BEGIN PUBLIC KEY-----\n")
                && pem.ends_with("-----END PUBLIC KEY-----\n")
        );
    }

    #[test]
    fn rsa_members_that_are_empty_or_zero_are_invalid() {
        // Found by fuzz/fuzz_targets/jwk.rs: an empty `n` or `e` became a zero-length INTEGER,
        // a PEM that no parser reads; all-zero members became a modulus or exponent of 0.
        let (_, raw) = spki_of(&rcgen::PKCS_RSA_SHA256);
        let parsed: pkcs1::RsaPublicKey<UintRef<'_>> = der::Decode::from_der(&raw).expect("pkcs1");
        let n = parsed.modulus.as_bytes().to_vec();
        for (n, e) in [
            (vec![], vec![1, 0, 1]),
            (n.clone(), vec![]),
            (vec![0; 256], vec![1, 0, 1]),
            (n.clone(), vec![0]),
        ] {
            let bundle = KeyBundle {
                kty: "RSA".into(),
                n: Some(n),
                e: Some(e),
                ..KeyBundle::default()
            };
            assert_eq!(public_key_der(&bundle), Err(JwkError::Invalid("RSA")));
        }
        // Leading zeros are only padding.
        let mut padded = vec![0, 0];
        padded.extend_from_slice(&n);
        let bundle = |n: Vec<u8>| KeyBundle {
            kty: "RSA".into(),
            n: Some(n),
            e: Some(vec![0, 1, 0, 1]),
            ..KeyBundle::default()
        };
        assert_eq!(public_key_der(&bundle(padded)), public_key_der(&bundle(n)));
    }

    #[test]
    fn long_or_odd_types_and_curves_are_named_in_one_short_line() {
        // Found by fuzz/fuzz_targets/jwk.rs: the answer's `kty` was repeated whole.
        let k = KeyBundle {
            kty: format!("RSA\n{}", "x".repeat(100_000)),
            ..KeyBundle::default()
        };
        let message = public_key_der(&k).expect_err("unknown type").to_string();
        assert!(message.len() < 200, "{} bytes", message.len());
        assert!(message.starts_with("key type 'RSA\\nxxx"), "{message}");
        assert!(
            message.ends_with("x…' currently not supported"),
            "{message}"
        );
        let k = KeyBundle {
            kty: "EC".into(),
            crv: Some("P".repeat(10_000)),
            x: Some(vec![1]),
            y: Some(vec![2]),
            ..KeyBundle::default()
        };
        let message = public_key_der(&k).expect_err("unknown curve").to_string();
        assert!(message.len() < 200, "{} bytes", message.len());
    }

    #[test]
    fn unsupported_curves_and_types_are_named() {
        let k = KeyBundle {
            kty: "EC".into(),
            crv: Some("P-256K".into()),
            x: Some(vec![1]),
            y: Some(vec![2]),
            ..KeyBundle::default()
        };
        assert_eq!(public_key_der(&k), Err(JwkError::Curve("P-256K".into())));
        let k = KeyBundle {
            kty: "oct".into(),
            ..KeyBundle::default()
        };
        assert_eq!(
            public_key_der(&k).map_err(|e| e.to_string()),
            Err("key type 'oct' currently not supported".into())
        );
        let k = KeyBundle {
            kty: "EC".into(),
            crv: Some("P-256".into()),
            x: Some(vec![1; 32]),
            y: Some(vec![2; 32]),
            ..KeyBundle::default()
        };
        assert_eq!(public_key_der(&k), Err(JwkError::Invalid("EC")));
    }
}

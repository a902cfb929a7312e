//! Integrity: the password MAC over the authenticated safe (RFC 7292 section 5 and appendix B),
//! HMAC with SHA-1 or SHA-2 keyed by the PKCS#12 key derivation.

use const_oid::db::rfc5912::{ID_SHA_1, ID_SHA_256, ID_SHA_384, ID_SHA_512};
use hmac::{KeyInit, Mac};
use pkcs12::kdf::{Pkcs12KeyType, derive_key};
use zeroize::Zeroizing;

use crate::Error;
use crate::pbe::checked_iterations;

/// True when `password` (BMP form) verifies the MAC over `data`.
pub(crate) fn verify(mac: &pkcs12::MacData, password: &[u8], data: &[u8]) -> Result<bool, Error> {
    let iterations = checked_iterations(mac.iterations.into())?;
    macro_rules! verify_with {
        ($digest:ty) => {{
            let key = Zeroizing::new(derive_key::<$digest>(
                password,
                mac.mac_salt.as_bytes(),
                Pkcs12KeyType::Mac,
                iterations,
                <$digest as hmac::digest::OutputSizeUser>::output_size(),
            ));
            let mut h =
                hmac::Hmac::<$digest>::new_from_slice(&key).map_err(|_| Error::UnsupportedMac {
                    oid: mac.mac.algorithm.oid,
                })?;
            h.update(data);
            Ok(h.verify_slice(mac.mac.digest.as_bytes()).is_ok())
        }};
    }
    match mac.mac.algorithm.oid {
        ID_SHA_1 => verify_with!(sha1::Sha1),
        ID_SHA_256 => verify_with!(sha2::Sha256),
        ID_SHA_384 => verify_with!(sha2::Sha384),
        ID_SHA_512 => verify_with!(sha2::Sha512),
        oid => Err(Error::UnsupportedMac { oid }),
    }
}

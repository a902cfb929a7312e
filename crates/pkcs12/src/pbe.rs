//! Privacy: decrypting encrypted safes and shrouded keys. PBES1 with SHA-1 and 3DES or 40-bit
//! RC2 (RFC 7292 appendix C, keys from the PKCS#12 key derivation over the BMP password) and
//! PBES2 with PBKDF2 (RFC 8018, keys from the UTF-8 password), each bounded by
//! [`MAX_ITERATIONS`].

use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockCipherDecrypt, BlockModeDecrypt, KeyInit, KeyIvInit};
use der::{Decode, Encode};
use pkcs12::kdf::{Pkcs12KeyType, derive_key};
use zeroize::Zeroizing;

use crate::password::Password;
use crate::{Error, MAX_ITERATIONS};

/// Checks an iteration count against [`MAX_ITERATIONS`] and returns it as the key derivation
/// takes it.
pub(crate) fn checked_iterations(iterations: i64) -> Result<i32, Error> {
    if (1..=i64::from(MAX_ITERATIONS)).contains(&iterations) {
        i32::try_from(iterations).map_err(|_| Error::Iterations { iterations })
    } else {
        Err(Error::Iterations { iterations })
    }
}

/// Decrypts `data`, encrypted as `alg` says, with `password`.
pub(crate) fn decrypt(
    alg: &spki::AlgorithmIdentifierOwned,
    data: &[u8],
    password: &Password<'_>,
) -> Result<Zeroizing<Vec<u8>>, Error> {
    let params = alg
        .parameters
        .as_ref()
        .ok_or(Error::Malformed {
            part: "encryption parameters",
            source: None,
        })?
        .to_der()
        .map_err(Error::malformed("encryption parameters"))?;
    if alg.oid == pkcs5::pbes2::PBES2_OID {
        return pbes2(&params, data, password);
    }
    let pbe = pkcs12::pbe_params::Pkcs12PbeParams::from_der(&params)
        .map_err(Error::malformed("PBE parameters"))?;
    let iterations = checked_iterations(pbe.iterations.into())?;
    let salt = pbe.salt.as_bytes();
    let password = password.bmp();
    if alg.oid == pkcs12::PKCS_12_PBE_WITH_SHAAND3_KEY_TRIPLE_DES_CBC {
        cbc_decrypt::<des::TdesEde3>(data, password, salt, iterations, 24)
    } else if alg.oid == pkcs12::PKCS_12_PBEWITH_SHAAND40_BIT_RC2_CBC {
        cbc_decrypt::<rc2::Rc2>(data, password, salt, iterations, 5)
    } else {
        Err(Error::UnsupportedEncryption { oid: alg.oid })
    }
}

/// PBES2: PBKDF2 (scrypt is refused) and the scheme pkcs5 knows.
fn pbes2(params: &[u8], data: &[u8], password: &Password<'_>) -> Result<Zeroizing<Vec<u8>>, Error> {
    let params =
        pkcs5::pbes2::Parameters::from_der(params).map_err(Error::malformed("PBES2 parameters"))?;
    match params.kdf.pbkdf2() {
        Some(kdf) => {
            checked_iterations(kdf.iteration_count.into())?;
        }
        None => {
            return Err(Error::UnsupportedEncryption {
                oid: params.kdf.oid(),
            });
        }
    }
    params
        .decrypt(password.utf8(), data)
        .map(Zeroizing::new)
        .map_err(|_| Error::Decrypt)
}

/// PBES1: key and IV from the PKCS#12 key derivation with SHA-1, then CBC with PKCS#7 padding.
fn cbc_decrypt<C: KeyInit + BlockCipherDecrypt>(
    data: &[u8],
    password: &[u8],
    salt: &[u8],
    iterations: i32,
    key_len: usize,
) -> Result<Zeroizing<Vec<u8>>, Error> {
    let derive = |kind, len| {
        Zeroizing::new(derive_key::<sha1::Sha1>(
            password, salt, kind, iterations, len,
        ))
    };
    let key = derive(Pkcs12KeyType::EncryptionKey, key_len);
    let iv = derive(Pkcs12KeyType::Iv, 8);
    cbc::Decryptor::<C>::new_from_slices(&key, &iv)
        .map_err(|_| Error::Decrypt)?
        .decrypt_padded_vec::<Pkcs7>(data)
        .map(Zeroizing::new)
        .map_err(|_| Error::Decrypt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iteration_counts_outside_one_to_the_cap_are_refused() {
        assert_eq!(checked_iterations(1).ok(), Some(1));
        assert_eq!(checked_iterations(2048).ok(), Some(2048));
        assert!(checked_iterations(i64::from(MAX_ITERATIONS)).is_ok());
        for bad in [0, -1, i64::from(MAX_ITERATIONS) + 1, i64::MAX] {
            assert!(
                matches!(checked_iterations(bad), Err(Error::Iterations { iterations }) if iterations == bad),
                "{bad}"
            );
        }
    }
}

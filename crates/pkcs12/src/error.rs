//! Why a PFX could not be read: one variant per failure, each naming what failed. Messages never
//! hold the file's bytes or the password.

use der::oid::ObjectIdentifier;

use crate::{MAX_ENCRYPTED_ITEMS, MAX_ITERATIONS, MAX_PFX_LEN};

/// Why [`crate::open`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file is larger than [`MAX_PFX_LEN`].
    #[error("the PKCS#12 bundle is {len} bytes, more than the {MAX_PFX_LEN} read")]
    TooLarge {
        /// The file's size.
        len: usize,
    },
    /// A structure does not parse.
    #[error("the PKCS#12 bundle is malformed ({part})")]
    Malformed {
        /// Which structure.
        part: &'static str,
        /// The DER error, when there is one.
        #[source]
        source: Option<der::Error>,
    },
    /// The file is signed with a key pair instead of a password MAC.
    #[error("the PKCS#12 bundle uses public-key integrity, which is not supported")]
    PublicKeyIntegrity,
    /// No encoding of the empty password verifies the MAC.
    #[error("the PKCS#12 bundle does not open with an empty password (is it password-protected?)")]
    EmptyPasswordRefused,
    /// The password given does not verify the MAC (or, without a MAC, decrypt the contents).
    #[error("the PKCS#12 bundle does not open with the password given")]
    WrongPassword,
    /// A key derivation asks for more than [`MAX_ITERATIONS`] iterations (or for none).
    #[error(
        "the PKCS#12 bundle asks for {iterations} key-derivation iterations; 1 to {MAX_ITERATIONS} are accepted"
    )]
    Iterations {
        /// The count the file gives.
        iterations: i64,
    },
    /// More encrypted safes and shrouded keys than [`MAX_ENCRYPTED_ITEMS`].
    #[error("the PKCS#12 bundle holds more than {MAX_ENCRYPTED_ITEMS} encrypted items")]
    TooManyEncryptedItems,
    /// The MAC uses a digest other than SHA-1 or SHA-2.
    #[error("PKCS#12 MAC algorithm {oid} is not supported")]
    UnsupportedMac {
        /// The digest's OID.
        oid: ObjectIdentifier,
    },
    /// Contents encrypted with a scheme this reader does not have (or PBES2 with scrypt).
    #[error("PKCS#12 encryption {oid} is not supported")]
    UnsupportedEncryption {
        /// The scheme's (or key derivation's) OID.
        oid: ObjectIdentifier,
    },
    /// Decryption failed: the password is wrong or the data corrupt.
    #[error("failed to decrypt the PKCS#12 bundle (wrong password or corrupt data)")]
    Decrypt,
}

impl Error {
    /// A `map_err` adapter for a DER failure in `part`.
    pub(crate) fn malformed(part: &'static str) -> impl Fn(der::Error) -> Self {
        move |source| Error::Malformed {
            part,
            source: Some(source),
        }
    }

    /// True for failures a wrong password can cause when there is no MAC to tell: bad padding,
    /// or plaintext that is not DER.
    pub(crate) fn may_be_wrong_password(&self) -> bool {
        matches!(self, Error::Decrypt | Error::Malformed { .. })
    }
}

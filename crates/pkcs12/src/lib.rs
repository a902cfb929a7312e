//! keyvol-pkcs12: reading PKCS#12 (PFX) files, Azure Key Vault's included.
//!
//! "No password" has two encodings in PKCS#12: the empty BMPString with its two-byte terminator
//! (RFC 7292, what OpenSSL writes) and a zero-length password (what Key Vault and Windows write).
//! Libraries that only try the first (p12-keystore among them) cannot open the certificates Key
//! Vault exports. [`open`] tries both against the MAC, as Go's `x/crypto/pkcs12` does, and
//! decrypts with the one that verifies.
//!
//! Where to start: [`open`] takes the file and a password (`""` for none) and returns the
//! [`Contents`]: the private keys (PKCS#8 DER) and the X.509 certificates (DER), in the order
//! the file holds them. Everything that can go wrong is an [`Error`] variant.
//!
//! Supported:
//! - integrity: the password MAC with SHA-1, SHA-256, SHA-384 or SHA-512 (public-key integrity
//!   is refused); files without a MAC are read too;
//! - privacy: PBES1 `pbeWithSHAAnd3-KeyTripleDES-CBC` and `pbeWithSHAAnd40BitRC2-CBC` (Key
//!   Vault, Windows, legacy OpenSSL) and PBES2 with PBKDF2 and AES-CBC or AES-GCM (OpenSSL 3's
//!   default); scrypt is refused, since no PKCS#12 writer we know uses it and its cost is not
//!   bounded by an iteration count;
//! - bags: certificate bags (X.509), key bags and shrouded key bags; other bags are skipped.
//!
//! Every input is bounded: the file's size ([`MAX_PFX_LEN`]), the iterations of every key
//! derivation ([`MAX_ITERATIONS`]) and the number of things to decrypt
//! ([`MAX_ENCRYPTED_ITEMS`]), so a hostile file cannot make its reader spin.
//!
//! Inside: `password` (the byte forms a password takes), `mac` (integrity), `pbe` (decryption)
//! and [`error`].

pub mod error;
mod mac;
mod password;
mod pbe;

use cms::content_info::ContentInfo;
use cms::encrypted_data::EncryptedData;
use const_oid::db::rfc5911::{ID_DATA, ID_ENCRYPTED_DATA};
use der::asn1::{ContextSpecific, OctetString};
use der::{Decode, Encode};
use zeroize::Zeroizing;

pub use error::Error;
use password::Password;

/// The largest file read, in bytes. Key Vault keeps a certificate's PFX as a secret of at most
/// 25,600 base64 characters (about 19 KB); real files with long chains stay well under this.
pub const MAX_PFX_LEN: usize = 256 * 1024;

/// The most iterations one key derivation (MAC key, PBES1 key or IV, PBKDF2) may ask for. Real
/// files use 2,000 (Windows, Key Vault) to a few hundred thousand (PBKDF2 as OWASP recommends);
/// one million is far above them and still bounds the work a file can ask for to well under a
/// second per derivation.
pub const MAX_ITERATIONS: u32 = 1_000_000;

/// The most encrypted safes and shrouded keys one file may hold. Real files hold one encrypted
/// safe (the certificates) and one shrouded key per private key; with [`MAX_ITERATIONS`] this
/// bounds the whole file's decryption work.
pub const MAX_ENCRYPTED_ITEMS: usize = 16;

/// What a PFX holds, in the order its bags hold it.
#[derive(Default)]
pub struct Contents {
    /// Private keys, PKCS#8 DER; zeroed when dropped.
    pub keys: Vec<Zeroizing<Vec<u8>>>,
    /// X.509 certificates, DER.
    pub certs: Vec<Vec<u8>>,
}

/// Counts only: the keys are secret.
impl std::fmt::Debug for Contents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Contents")
            .field("keys", &self.keys.len())
            .field("certs", &self.certs.len())
            .finish()
    }
}

/// Opens a PFX with `password`; an empty password is tried in both encodings, the terminated
/// empty BMPString first, then the zero-length one.
///
/// With a MAC, the password that verifies it decrypts the contents; without one, each candidate
/// is tried on the contents in turn.
pub fn open(pfx: &[u8], password: &str) -> Result<Contents, Error> {
    if pfx.len() > MAX_PFX_LEN {
        return Err(Error::TooLarge { len: pfx.len() });
    }
    let pfx = pkcs12::Pfx::from_der(pfx).map_err(Error::malformed("PFX"))?;
    if pfx.auth_safe.content_type != ID_DATA {
        return Err(Error::PublicKeyIntegrity);
    }
    let auth = octets(&pfx.auth_safe.content, "authenticated safe")?;
    let candidates = Password::candidates(password);
    match &pfx.mac_data {
        Some(mac) => {
            for candidate in &candidates {
                if mac::verify(mac, candidate.bmp(), &auth)? {
                    return read_safes(&auth, candidate);
                }
            }
            Err(if password.is_empty() {
                Error::EmptyPasswordRefused
            } else {
                Error::WrongPassword
            })
        }
        None => {
            let mut first = None;
            for candidate in &candidates {
                match read_safes(&auth, candidate) {
                    Ok(contents) => return Ok(contents),
                    Err(e) if e.may_be_wrong_password() => {
                        first.get_or_insert(e);
                    }
                    Err(e) => return Err(e),
                }
            }
            Err(first.unwrap_or(Error::WrongPassword))
        }
    }
}

/// The bytes of an `OCTET STRING` held in an `ANY`.
fn octets(any: &der::asn1::Any, part: &'static str) -> Result<Vec<u8>, Error> {
    let der = any.to_der().map_err(Error::malformed(part))?;
    Ok(OctetString::from_der(&der)
        .map_err(Error::malformed(part))?
        .as_bytes()
        .to_vec())
}

/// Reads every safe of the authenticated safe, decrypting with `password`.
fn read_safes(auth: &[u8], password: &Password<'_>) -> Result<Contents, Error> {
    let safes: Vec<ContentInfo> =
        Vec::from_der(auth).map_err(Error::malformed("authenticated safe"))?;
    let mut budget = Budget(MAX_ENCRYPTED_ITEMS);
    let mut out = Contents::default();
    for safe in safes {
        let bags = if safe.content_type == ID_DATA {
            Zeroizing::new(octets(&safe.content, "safe")?)
        } else if safe.content_type == ID_ENCRYPTED_DATA {
            budget.spend()?;
            let der = safe
                .content
                .to_der()
                .map_err(Error::malformed("encrypted safe"))?;
            let enc = EncryptedData::from_der(&der).map_err(Error::malformed("encrypted safe"))?;
            let sealed =
                enc.enc_content_info
                    .encrypted_content
                    .as_ref()
                    .ok_or(Error::Malformed {
                        part: "encrypted safe",
                        source: None,
                    })?;
            pbe::decrypt(
                &enc.enc_content_info.content_enc_alg,
                sealed.as_bytes(),
                password,
            )?
        } else {
            // Enveloped (public-key) safes and anything newer: nothing this reader can use.
            continue;
        };
        let bags: Vec<pkcs12::SafeBag> =
            Vec::from_der(&bags).map_err(Error::malformed("safe contents"))?;
        for bag in bags {
            read_bag(&bag, password, &mut budget, &mut out)?;
        }
    }
    Ok(out)
}

/// Adds what one bag holds to `out`.
fn read_bag(
    bag: &pkcs12::SafeBag,
    password: &Password<'_>,
    budget: &mut Budget,
    out: &mut Contents,
) -> Result<(), Error> {
    if bag.bag_id == pkcs12::PKCS_12_KEY_BAG_OID {
        let key: ContextSpecific<der::asn1::Any> =
            ContextSpecific::from_der(&bag.bag_value).map_err(Error::malformed("key bag"))?;
        let der = key.value.to_der().map_err(Error::malformed("key bag"))?;
        out.keys.push(Zeroizing::new(der));
    } else if bag.bag_id == pkcs12::PKCS_12_PKCS8_KEY_BAG_OID {
        budget.spend()?;
        let shrouded: ContextSpecific<pkcs12::pbe_params::EncryptedPrivateKeyInfo> =
            ContextSpecific::from_der(&bag.bag_value)
                .map_err(Error::malformed("shrouded key bag"))?;
        out.keys.push(pbe::decrypt(
            &shrouded.value.encryption_algorithm,
            shrouded.value.encrypted_data.as_bytes(),
            password,
        )?);
    } else if bag.bag_id == pkcs12::PKCS_12_CERT_BAG_OID {
        let cert: ContextSpecific<pkcs12::CertBag> = ContextSpecific::from_der(&bag.bag_value)
            .map_err(Error::malformed("certificate bag"))?;
        if cert.value.cert_id == pkcs12::PKCS_12_X509_CERT_OID {
            out.certs.push(cert.value.cert_value.as_bytes().to_vec());
        }
    }
    Ok(())
}

/// What is left of [`MAX_ENCRYPTED_ITEMS`] while one file is read.
struct Budget(usize);

impl Budget {
    /// Counts one more thing to decrypt.
    fn spend(&mut self) -> Result<(), Error> {
        self.0 = self.0.checked_sub(1).ok_or(Error::TooManyEncryptedItems)?;
        Ok(())
    }
}

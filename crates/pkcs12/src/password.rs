//! The byte forms a password takes in PKCS#12. The MAC and PBES1 derive keys from a BMPString
//! (big-endian UTF-16 with a two-byte terminator); PBES2 derives them from the password's UTF-8
//! bytes. "No password" is ambiguous in the first form: RFC 7292 and OpenSSL use the terminator
//! alone, Key Vault and Windows use zero bytes.

use zeroize::Zeroizing;

/// One way of writing the password.
pub(crate) struct Password<'a> {
    bmp: Zeroizing<Vec<u8>>,
    utf8: &'a [u8],
}

impl<'a> Password<'a> {
    /// The forms to try, in order. For an empty password, the terminated empty BMPString first
    /// and then the zero-length one, as Go's `x/crypto/pkcs12` tries them; otherwise the one
    /// BMPString.
    pub(crate) fn candidates(password: &'a str) -> Vec<Self> {
        let utf8 = password.as_bytes();
        let terminated = Password {
            bmp: bmp_string(password),
            utf8,
        };
        if password.is_empty() {
            vec![
                terminated,
                Password {
                    bmp: Zeroizing::new(Vec::new()),
                    utf8,
                },
            ]
        } else {
            vec![terminated]
        }
    }

    /// The form the MAC and PBES1 use.
    pub(crate) fn bmp(&self) -> &[u8] {
        &self.bmp
    }

    /// The form PBES2 uses (zero bytes for no password, whichever BMP form verified the MAC).
    pub(crate) fn utf8(&self) -> &[u8] {
        self.utf8
    }
}

/// Big-endian UTF-16 with the two-byte terminator.
fn bmp_string(password: &str) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(password.len() * 2 + 2));
    for unit in password.encode_utf16() {
        out.extend_from_slice(&unit.to_be_bytes());
    }
    out.extend_from_slice(&[0, 0]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_password_is_tried_terminated_then_zero_length() {
        let forms: Vec<Vec<u8>> = Password::candidates("")
            .iter()
            .map(|p| p.bmp().to_vec())
            .collect();
        assert_eq!(forms, vec![vec![0, 0], vec![]]);
    }

    #[test]
    fn a_password_is_big_endian_utf16_with_a_terminator() {
        let forms = Password::candidates("aé");
        assert_eq!(forms.len(), 1);
        assert_eq!(forms[0].bmp(), &[0, b'a', 0, 0xe9, 0, 0]);
        assert_eq!(forms[0].utf8(), "aé".as_bytes());
    }
}

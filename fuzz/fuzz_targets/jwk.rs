//! Keys as the vault returns them (`GET /keys/{name}`: a JSON key bundle with JWK members in
//! base64url), read as the provider reads them (`keyvol_azure::rest::key_bundle`), then written as the `PUBLIC KEY` PEM by
//! `keyvol_azure::jwk::public_key_pem`.
//!
//! Checked: no panic; errors are bounded; a written key is one `PUBLIC KEY` block holding a
//! SubjectPublicKeyInfo with exactly the members the vault gave: for RSA, the modulus and
//! exponent (without leading zeros), neither of them zero; for EC, the point on the named curve.
#![no_main]

use der::Decode;
use der::asn1::UintRef;
use keyvol_azure::jwk::public_key_pem;
use keyvol_fuzz::assert_bounded;
use libfuzzer_sys::fuzz_target;
use spki::SubjectPublicKeyInfoRef;

const MAX_MESSAGE: usize = 1024;

fuzz_target!(|data: &[u8]| {
    let key = match keyvol_azure::rest::key_bundle("key/fuzz", data) {
        Ok(key) => key,
        Err(e) => {
            assert_bounded("bundle error", &keyvol_core::report::chain(&e), MAX_MESSAGE);
            return;
        }
    };
    let pem_bytes = match public_key_pem(&key) {
        Ok(pem_bytes) => pem_bytes,
        Err(e) => {
            assert_bounded("jwk error", &e.to_string(), MAX_MESSAGE);
            return;
        }
    };
    let block = pem::parse(&pem_bytes).expect("one PEM block");
    assert_eq!(block.tag(), "PUBLIC KEY");
    let spki = SubjectPublicKeyInfoRef::from_der(block.contents()).expect("SPKI");
    let bits = spki.subject_public_key.as_bytes().expect("whole bytes");
    if key.kty.starts_with("RSA") {
        assert_eq!(spki.algorithm, pkcs1::ALGORITHM_ID);
        let rsa = pkcs1::RsaPublicKey::<UintRef<'_>>::from_der(bits).expect("PKCS#1");
        let n = trim(key.n.as_deref().unwrap_or_default());
        let e = trim(key.e.as_deref().unwrap_or_default());
        assert!(
            !n.is_empty() && !e.is_empty(),
            "an RSA key with a zero member"
        );
        assert_eq!(rsa.modulus.as_bytes(), n);
        assert_eq!(rsa.public_exponent.as_bytes(), e);
    } else {
        let size = match key.crv.as_deref() {
            Some("P-256") => 32,
            Some("P-384") => 48,
            Some("P-521") => 66,
            other => panic!("written with curve {other:?}"),
        };
        let mut point = vec![4u8];
        for c in [&key.x, &key.y] {
            let c = trim(c.as_deref().unwrap_or_default());
            point.extend(std::iter::repeat_n(0, size - c.len()));
            point.extend_from_slice(c);
        }
        assert_eq!(bits, point.as_slice(), "another point was written");
    }
});

fn trim(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

//! Key and certificate material: generating RSA and EC keys, their public JWKs, self-signed and
//! chained certificates, reading PFX and PEM imports, and writing the PFX or PEM value of a
//! certificate's backing secret.
//!
//! Everything runs on aws-lc-rs (through rcgen) and pure-Rust parsers and encoders (x509-parser,
//! keyvol-pkcs12 to read PFX, p12-keystore to write it, the RustCrypto DER encoders).
//! Private keys are kept as PKCS#8 DER. Errors name what could not be read, never the bytes.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use const_oid::ObjectIdentifier;
use const_oid::db::rfc5912::{
    ANY_EXTENDED_KEY_USAGE, ID_KP_CLIENT_AUTH, ID_KP_CODE_SIGNING, ID_KP_EMAIL_PROTECTION,
    ID_KP_OCSP_SIGNING, ID_KP_SERVER_AUTH, ID_KP_TIME_STAMPING, SECP_256_R_1, SECP_384_R_1,
    SECP_521_R_1,
};
use der::Encode;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, PublicKeyData, SerialNumber,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
use x509_parser::public_key::PublicKey;
use x509_parser::x509::SubjectPublicKeyInfo;

/// Why key or certificate material could not be made or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// An RSA size other than 2048, 3072 or 4096.
    #[error("unsupported RSA key size {0}; the dev vault makes 2048, 3072 and 4096-bit keys")]
    KeySize(u32),
    /// A curve other than P-256, P-384 or P-521.
    #[error("unsupported curve {0:?}; the dev vault makes P-256, P-384 and P-521 keys")]
    Curve(String),
    /// A key type other than RSA or EC.
    #[error("unsupported key type {0:?}; the dev vault makes RSA and EC keys")]
    KeyType(String),
    /// The key generator failed.
    #[error("failed to generate a key")]
    Generate,
    /// A private key that is not PKCS#8, PKCS#1 or SEC1 DER of a supported type.
    #[error("the private key could not be read")]
    PrivateKey,
    /// A certificate that is not X.509 DER.
    #[error("a certificate could not be read")]
    Certificate,
    /// PFX content that does not parse or decrypt with the password given.
    #[error(
        "the specified PKCS#12 X.509 certificate content can not be read; check that it is valid PKCS#12 and that the password is right"
    )]
    Pkcs12,
    /// PEM or PFX content with no private key.
    #[error("the certificate content has no private key")]
    NoPrivateKey,
    /// PEM or PFX content with no certificate.
    #[error("the certificate content has no certificate")]
    NoCertificate,
    /// No certificate carries the private key's public key.
    #[error("no certificate in the content matches its private key")]
    NoMatchingCertificate,
    /// rcgen refused the parameters.
    #[error("failed to build a certificate: {0}")]
    Build(String),
    /// p12-keystore refused to write.
    #[error("failed to write PKCS#12 content")]
    WritePkcs12,
    /// A subject that is not `CN=…[, O=…]` and friends.
    #[error("invalid subject {0:?}; use attributes such as CN=name, O=org, OU=unit, C=XX")]
    Subject(String),
}

/// Content type of a PFX secret.
pub const CONTENT_TYPE_PKCS12: &str = "application/x-pkcs12";
/// Content type of a PEM secret.
pub const CONTENT_TYPE_PEM: &str = "application/x-pem-file";

/// An elliptic curve the dev vault makes keys on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Curve {
    /// NIST P-256.
    P256,
    /// NIST P-384.
    P384,
    /// NIST P-521.
    P521,
}

impl Curve {
    /// Key Vault's name for the curve.
    pub fn name(self) -> &'static str {
        match self {
            Curve::P256 => "P-256",
            Curve::P384 => "P-384",
            Curve::P521 => "P-521",
        }
    }

    /// Parses Key Vault's curve name. `P-256K` is refused: aws-lc-rs has no secp256k1 signer, and
    /// the Secrets Store CSI provider cannot use such keys anyway.
    pub fn parse(name: &str) -> Result<Self, CryptoError> {
        match name {
            "P-256" => Ok(Curve::P256),
            "P-384" => Ok(Curve::P384),
            "P-521" => Ok(Curve::P521),
            other => Err(CryptoError::Curve(other.to_owned())),
        }
    }

    fn coordinate_len(self) -> usize {
        match self {
            Curve::P256 => 32,
            Curve::P384 => 48,
            Curve::P521 => 66,
        }
    }

    fn algorithm(self) -> &'static rcgen::SignatureAlgorithm {
        match self {
            Curve::P256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            Curve::P384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            Curve::P521 => &rcgen::PKCS_ECDSA_P521_SHA512,
        }
    }

    /// The curve's named-curve OID.
    fn oid(self) -> ObjectIdentifier {
        match self {
            Curve::P256 => SECP_256_R_1,
            Curve::P384 => SECP_384_R_1,
            Curve::P521 => SECP_521_R_1,
        }
    }

    /// The curve named by a dotted OID.
    fn from_oid(oid: &str) -> Option<Self> {
        [Curve::P256, Curve::P384, Curve::P521]
            .into_iter()
            .find(|c| c.oid().to_string() == oid)
    }
}

/// What kind of key to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySpec {
    /// RSA with this many bits.
    Rsa(u32),
    /// EC on this curve.
    Ec(Curve),
}

impl KeySpec {
    /// Reads Key Vault's `kty` / `key_size` / `crv` (HSM types are served as software keys).
    /// Defaults as the service's: RSA 2048, curve P-256.
    pub fn parse(kty: &str, key_size: Option<u32>, crv: Option<&str>) -> Result<Self, CryptoError> {
        match kty {
            "RSA" | "RSA-HSM" => {
                let bits = key_size.unwrap_or(2048);
                match bits {
                    2048 | 3072 | 4096 => Ok(KeySpec::Rsa(bits)),
                    other => Err(CryptoError::KeySize(other)),
                }
            }
            "EC" | "EC-HSM" => Ok(KeySpec::Ec(Curve::parse(crv.unwrap_or("P-256"))?)),
            other => Err(CryptoError::KeyType(other.to_owned())),
        }
    }

    /// Generates a key pair; returns its PKCS#8 DER.
    pub fn generate(self) -> Result<Vec<u8>, CryptoError> {
        let pair = match self {
            KeySpec::Rsa(bits) => {
                let size = match bits {
                    2048 => rcgen::RsaKeySize::_2048,
                    3072 => rcgen::RsaKeySize::_3072,
                    4096 => rcgen::RsaKeySize::_4096,
                    other => return Err(CryptoError::KeySize(other)),
                };
                KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, size)
            }
            KeySpec::Ec(curve) => KeyPair::generate_for(curve.algorithm()),
        }
        .map_err(|_| CryptoError::Generate)?;
        Ok(pair.serialize_der())
    }
}

/// The operations Key Vault permits on a new RSA key by default.
pub const RSA_DEFAULT_OPS: &[&str] = &[
    "encrypt",
    "decrypt",
    "sign",
    "verify",
    "wrapKey",
    "unwrapKey",
];

/// The operations Key Vault permits on a new EC key by default.
pub const EC_DEFAULT_OPS: &[&str] = &["sign", "verify"];

/// The public members of a JSON Web Key, binary members base64url without padding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicJwk {
    /// `RSA` or `EC`.
    pub kty: String,
    /// RSA modulus.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub n: Option<String>,
    /// RSA public exponent.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub e: Option<String>,
    /// EC curve.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub crv: Option<String>,
    /// EC x coordinate.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub x: Option<String>,
    /// EC y coordinate.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub y: Option<String>,
}

impl PublicJwk {
    /// RSA key size in bits, from the modulus.
    pub fn rsa_bits(&self) -> Option<u32> {
        let n = URL_SAFE_NO_PAD.decode(self.n.as_deref()?).ok()?;
        u32::try_from(n.len() * 8).ok()
    }

    /// Default operations Key Vault permits on a key of this type.
    pub fn default_ops(&self) -> Vec<String> {
        let ops = if self.kty == "RSA" {
            RSA_DEFAULT_OPS
        } else {
            EC_DEFAULT_OPS
        };
        ops.iter().map(|s| (*s).to_owned()).collect()
    }
}

/// The public JWK of a SubjectPublicKeyInfo (DER).
pub fn jwk_from_spki(spki: &[u8]) -> Result<PublicJwk, CryptoError> {
    let (_, info) = SubjectPublicKeyInfo::from_der(spki).map_err(|_| CryptoError::PrivateKey)?;
    match info.parsed().map_err(|_| CryptoError::PrivateKey)? {
        PublicKey::RSA(rsa) => Ok(PublicJwk {
            kty: "RSA".into(),
            n: Some(URL_SAFE_NO_PAD.encode(strip_leading_zeros(rsa.modulus))),
            e: Some(URL_SAFE_NO_PAD.encode(strip_leading_zeros(rsa.exponent))),
            crv: None,
            x: None,
            y: None,
        }),
        PublicKey::EC(point) => {
            let oid = info
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string())
                .unwrap_or_default();
            let curve = Curve::from_oid(&oid).ok_or(CryptoError::Curve(oid))?;
            let data = point.data();
            let len = curve.coordinate_len();
            if data.len() != 1 + 2 * len || data[0] != 4 {
                return Err(CryptoError::PrivateKey);
            }
            Ok(PublicJwk {
                kty: "EC".into(),
                n: None,
                e: None,
                crv: Some(curve.name().into()),
                x: Some(URL_SAFE_NO_PAD.encode(&data[1..=len])),
                y: Some(URL_SAFE_NO_PAD.encode(&data[1 + len..])),
            })
        }
        _ => Err(CryptoError::KeyType("unknown".into())),
    }
}

fn strip_leading_zeros(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|&x| x != 0)
        .unwrap_or(b.len().saturating_sub(1));
    &b[start..]
}

/// A signing key pair from PKCS#8 DER.
pub fn key_pair(pkcs8: &[u8]) -> Result<KeyPair, CryptoError> {
    KeyPair::try_from(pkcs8).map_err(|_| CryptoError::PrivateKey)
}

/// The public JWK of a PKCS#8 private key.
pub fn jwk_from_pkcs8(pkcs8: &[u8]) -> Result<PublicJwk, CryptoError> {
    jwk_from_spki(&key_pair(pkcs8)?.subject_public_key_info())
}

/// Any private key DER (PKCS#8, PKCS#1 RSA, SEC1 EC) as PKCS#8 DER.
pub fn to_pkcs8(key: &PrivateKeyDer<'_>) -> Result<Vec<u8>, CryptoError> {
    use aws_lc_rs::encoding::AsDer;
    match key {
        PrivateKeyDer::Pkcs8(k) => {
            key_pair(k.secret_pkcs8_der())?;
            Ok(k.secret_pkcs8_der().to_vec())
        }
        PrivateKeyDer::Pkcs1(k) => {
            let pair = aws_lc_rs::rsa::KeyPair::from_der(k.secret_pkcs1_der())
                .map_err(|_| CryptoError::PrivateKey)?;
            let der = pair.as_der().map_err(|_| CryptoError::PrivateKey)?;
            Ok(der.as_ref().to_vec())
        }
        PrivateKeyDer::Sec1(k) => {
            for alg in [
                &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
                &aws_lc_rs::signature::ECDSA_P384_SHA384_ASN1_SIGNING,
                &aws_lc_rs::signature::ECDSA_P521_SHA512_ASN1_SIGNING,
            ] {
                if let Ok(pair) = aws_lc_rs::signature::EcdsaKeyPair::from_private_key_der(
                    alg,
                    k.secret_sec1_der(),
                ) && let Ok(doc) = pair.to_pkcs8v1()
                {
                    return Ok(doc.as_ref().to_vec());
                }
            }
            Err(CryptoError::PrivateKey)
        }
        _ => Err(CryptoError::PrivateKey),
    }
}

/// The private members of an imported JSON Web Key (`PUT /keys/{name}`), base64url.
#[derive(Default, Deserialize)]
pub struct PrivateJwk {
    /// `RSA`, `RSA-HSM`, `EC` or `EC-HSM`.
    pub kty: Option<String>,
    /// RSA modulus.
    pub n: Option<String>,
    /// RSA public exponent.
    pub e: Option<String>,
    /// Private exponent (RSA) or scalar (EC).
    pub d: Option<String>,
    /// RSA first prime.
    pub p: Option<String>,
    /// RSA second prime.
    pub q: Option<String>,
    /// RSA first CRT exponent.
    pub dp: Option<String>,
    /// RSA second CRT exponent.
    pub dq: Option<String>,
    /// RSA CRT coefficient.
    pub qi: Option<String>,
    /// EC curve.
    pub crv: Option<String>,
    /// EC x.
    pub x: Option<String>,
    /// EC y.
    pub y: Option<String>,
    /// Permitted operations.
    pub key_ops: Option<Vec<String>>,
}

impl std::fmt::Debug for PrivateJwk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrivateJwk")
            .field("kty", &self.kty)
            .finish_non_exhaustive()
    }
}

/// PKCS#8 DER from an imported JWK's private members; the public members must match them.
pub fn pkcs8_from_jwk(jwk: &PrivateJwk) -> Result<Vec<u8>, CryptoError> {
    let field = |v: &Option<String>| -> Result<Vec<u8>, CryptoError> {
        let text = v.as_deref().ok_or(CryptoError::NoPrivateKey)?;
        URL_SAFE_NO_PAD
            .decode(text.trim_end_matches('='))
            .map_err(|_| CryptoError::PrivateKey)
    };
    let kty = jwk.kty.as_deref().unwrap_or_default();
    let pkcs8 = match kty {
        "RSA" | "RSA-HSM" => {
            let [n, e, d, p, q, dp, dq, qi] = [
                &jwk.n, &jwk.e, &jwk.d, &jwk.p, &jwk.q, &jwk.dp, &jwk.dq, &jwk.qi,
            ]
            .map(field);
            let (n, e, d, p, q, dp, dq, qi) = (n?, e?, d?, p?, q?, dp?, dq?, qi?);
            fn uint(b: &[u8]) -> Result<pkcs1::UintRef<'_>, CryptoError> {
                pkcs1::UintRef::new(b).map_err(|_| CryptoError::PrivateKey)
            }
            let pkcs1 = pkcs1::RsaPrivateKeyRef {
                modulus: uint(&n)?,
                public_exponent: uint(&e)?,
                private_exponent: uint(&d)?,
                prime1: uint(&p)?,
                prime2: uint(&q)?,
                exponent1: uint(&dp)?,
                exponent2: uint(&dq)?,
                coefficient: uint(&qi)?,
                other_prime_infos: None,
            }
            .to_der()
            .map_err(|_| CryptoError::PrivateKey)?;
            to_pkcs8(&PrivateKeyDer::Pkcs1(pkcs1.into()))?
        }
        "EC" | "EC-HSM" => {
            let curve = Curve::parse(jwk.crv.as_deref().unwrap_or_default())?;
            let len = curve.coordinate_len();
            let pad = |mut b: Vec<u8>| -> Result<Vec<u8>, CryptoError> {
                if b.len() > len {
                    return Err(CryptoError::PrivateKey);
                }
                let mut out = vec![0; len - b.len()];
                out.append(&mut b);
                Ok(out)
            };
            let d = pad(field(&jwk.d)?)?;
            // The uncompressed point, 04 ‖ x ‖ y.
            let mut point = vec![4];
            point.extend(pad(field(&jwk.x)?)?);
            point.extend(pad(field(&jwk.y)?)?);
            let sec1 = sec1::EcPrivateKey {
                private_key: &d,
                parameters: Some(sec1::EcParameters::NamedCurve(curve.oid())),
                public_key: Some(&point),
            }
            .to_der()
            .map_err(|_| CryptoError::PrivateKey)?;
            to_pkcs8(&PrivateKeyDer::Sec1(sec1.into()))?
        }
        other => return Err(CryptoError::KeyType(other.to_owned())),
    };
    // The private key must belong to the public members given with it.
    let public = jwk_from_pkcs8(&pkcs8)?;
    let given = |v: &Option<String>| v.as_deref().map(|s| s.trim_end_matches('=').to_owned());
    let matches = if public.kty == "RSA" {
        public.n == given(&jwk.n) && public.e == given(&jwk.e)
    } else {
        public.x == given(&jwk.x) && public.y == given(&jwk.y)
    };
    if !matches {
        return Err(CryptoError::PrivateKey);
    }
    Ok(pkcs8)
}

/// A private key PEM (`PRIVATE KEY`, `RSA PRIVATE KEY` or `EC PRIVATE KEY`) as PKCS#8 DER.
pub fn pkcs8_from_pem(pem: &str) -> Result<Vec<u8>, CryptoError> {
    let key =
        PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|_| CryptoError::NoPrivateKey)?;
    to_pkcs8(&key)
}

/// base64url(SHA-1(DER)), unpadded: a certificate's `x5t`.
pub fn x5t(der: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, der);
    URL_SAFE_NO_PAD.encode(digest.as_ref())
}

/// Standard base64.
pub fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// PEM armour with 64-character lines and `\n` endings.
pub fn pem_block(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// What the vault reports about a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// Subject in RFC 4514 form, e.g. `CN=example`.
    pub subject: String,
    /// Not before, Unix seconds.
    pub nbf: i64,
    /// Not after, Unix seconds.
    pub exp: i64,
    /// DNS names in the SAN extension.
    pub dns_names: Vec<String>,
    /// Extended key usages, as OIDs (empty when the extension is absent).
    pub ekus: Vec<String>,
    /// Key usages, named as Key Vault names them (empty when the extension is absent).
    pub key_usage: Vec<String>,
    /// The basic-constraints CA flag.
    pub ca: bool,
}

impl CertInfo {
    /// Validity in months as Key Vault reports it for imported certificates: 365-day years of
    /// twelve months, rounded (a recorded 36,500-day certificate reports 1200).
    pub fn validity_months(&self) -> i64 {
        const MONTH_SECS: f64 = 365.0 / 12.0 * 86_400.0;
        #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
        let months = ((self.exp - self.nbf) as f64 / MONTH_SECS).round() as i64;
        months.max(1)
    }
}

/// Reads subject, validity and DNS names from a DER certificate.
pub fn cert_info(der: &[u8]) -> Result<CertInfo, CryptoError> {
    let (_, cert) = X509Certificate::from_der(der).map_err(|_| CryptoError::Certificate)?;
    let mut dns_names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            if let GeneralName::DNSName(d) = name {
                dns_names.push((*d).to_owned());
            }
        }
    }
    let mut ekus = Vec::new();
    if let Ok(Some(eku)) = cert.extended_key_usage() {
        let e = eku.value;
        for (set, oid) in [
            (e.server_auth, ID_KP_SERVER_AUTH),
            (e.client_auth, ID_KP_CLIENT_AUTH),
            (e.code_signing, ID_KP_CODE_SIGNING),
            (e.email_protection, ID_KP_EMAIL_PROTECTION),
            (e.time_stamping, ID_KP_TIME_STAMPING),
            (e.ocsp_signing, ID_KP_OCSP_SIGNING),
            (e.any, ANY_EXTENDED_KEY_USAGE),
        ] {
            if set {
                ekus.push(oid.to_string());
            }
        }
        ekus.extend(e.other.iter().map(|o| o.to_id_string()));
    }
    let mut key_usage = Vec::new();
    if let Ok(Some(ku)) = cert.key_usage() {
        let k = ku.value;
        for (set, name) in [
            (k.digital_signature(), "digitalSignature"),
            (k.non_repudiation(), "nonRepudiation"),
            (k.key_encipherment(), "keyEncipherment"),
            (k.data_encipherment(), "dataEncipherment"),
            (k.key_agreement(), "keyAgreement"),
            (k.key_cert_sign(), "keyCertSign"),
            (k.crl_sign(), "cRLSign"),
            (k.encipher_only(), "encipherOnly"),
            (k.decipher_only(), "decipherOnly"),
        ] {
            if set {
                key_usage.push(name.to_owned());
            }
        }
    }
    let ca = matches!(cert.basic_constraints(), Ok(Some(bc)) if bc.value.ca);
    Ok(CertInfo {
        subject: cert.subject().to_string(),
        nbf: cert.validity().not_before.timestamp(),
        exp: cert.validity().not_after.timestamp(),
        dns_names,
        ekus,
        key_usage,
        ca,
    })
}

/// A certificate with its private key: the leaf first, then the rest of the chain toward the root.
#[derive(Clone, PartialEq, Eq)]
pub struct CertMaterial {
    /// The leaf's private key, PKCS#8 DER.
    pub key_pkcs8: Vec<u8>,
    /// DER certificates, leaf first.
    pub chain: Vec<Vec<u8>>,
}

impl std::fmt::Debug for CertMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertMaterial")
            .field("certificates", &self.chain.len())
            .finish_non_exhaustive()
    }
}

impl CertMaterial {
    /// The leaf certificate's DER.
    pub fn leaf(&self) -> &[u8] {
        self.chain.first().map(Vec::as_slice).unwrap_or_default()
    }

    /// Builds from a key and certificates in any order: the certificate carrying the key's public
    /// key becomes the leaf, then issuers follow by name, then whatever is left.
    pub fn assemble(key_pkcs8: Vec<u8>, certs: Vec<Vec<u8>>) -> Result<Self, CryptoError> {
        if certs.is_empty() {
            return Err(CryptoError::NoCertificate);
        }
        let public = key_pair(&key_pkcs8)?.subject_public_key_info();
        let mut parsed = Vec::new();
        for der in &certs {
            let (_, c) = X509Certificate::from_der(der).map_err(|_| CryptoError::Certificate)?;
            parsed.push((
                c.subject().as_raw().to_vec(),
                c.issuer().as_raw().to_vec(),
                c.public_key().raw.to_vec(),
            ));
        }
        let leaf = parsed
            .iter()
            .position(|(_, _, spki)| *spki == public)
            .ok_or(CryptoError::NoMatchingCertificate)?;
        let mut order = vec![leaf];
        let mut current = leaf;
        loop {
            let (subject, issuer, _) = &parsed[current];
            if subject == issuer {
                break;
            }
            match (0..parsed.len()).find(|i| !order.contains(i) && parsed[*i].0 == *issuer) {
                Some(next) => {
                    order.push(next);
                    current = next;
                }
                None => break,
            }
        }
        for i in 0..parsed.len() {
            if !order.contains(&i) {
                order.push(i);
            }
        }
        Ok(Self {
            key_pkcs8,
            chain: order.into_iter().map(|i| certs[i].clone()).collect(),
        })
    }

    /// Reads a PFX with `password`; an empty one is tried both ways PKCS#12 spells "none" (the
    /// terminated empty BMPString, and Key Vault's zero-length password), see `keyvol_pkcs12`.
    pub fn from_pfx(pfx: &[u8], password: &str) -> Result<Self, CryptoError> {
        let contents = keyvol_pkcs12::open(pfx, password).map_err(|_| CryptoError::Pkcs12)?;
        let key = contents
            .keys
            .first()
            .ok_or(CryptoError::NoPrivateKey)?
            .to_vec();
        Self::assemble(key, contents.certs)
    }

    /// Reads PEM text holding one private key and one or more certificates, in any order.
    pub fn from_pem(pem: &str) -> Result<Self, CryptoError> {
        let key = pkcs8_from_pem(pem)?;
        let mut certs = Vec::new();
        for c in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            certs.push(c.map_err(|_| CryptoError::Certificate)?.to_vec());
        }
        Self::assemble(key, certs)
    }

    /// A PFX with an empty password holding the key and the whole chain, written the way Key Vault
    /// exports them (3DES, HMAC-SHA1), which every PKCS#12 reader understands.
    pub fn to_pfx(&self) -> Result<Vec<u8>, CryptoError> {
        use p12_keystore::{
            EncryptionAlgorithm, KeyStore, KeyStoreEntry, MacAlgorithm, PrivateKeyChain,
        };
        let key = p12_keystore::PrivateKey::from_der(&self.key_pkcs8)
            .map_err(|_| CryptoError::PrivateKey)?;
        let certs = self
            .chain
            .iter()
            .map(|d| p12_keystore::Certificate::from_der(d).map_err(|_| CryptoError::Certificate))
            .collect::<Result<Vec<_>, _>>()?;
        let digest =
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, self.leaf());
        let chain = PrivateKeyChain::new(digest.as_ref().to_vec(), key, certs);
        let mut store = KeyStore::new();
        store.add_entry("1", KeyStoreEntry::PrivateKeyChain(chain));
        store
            .writer("")
            .encryption_algorithm(EncryptionAlgorithm::PbeWithShaAnd3KeyTripleDesCbc)
            .mac_algorithm(MacAlgorithm::HmacSha1)
            .encryption_iterations(2048)
            .mac_iterations(2048)
            .write()
            .map_err(|_| CryptoError::WritePkcs12)
    }

    /// PEM text: the PKCS#8 `PRIVATE KEY` first, then the certificates leaf first.
    pub fn to_pem(&self) -> String {
        let mut out = pem_block("PRIVATE KEY", &self.key_pkcs8);
        for c in &self.chain {
            out.push_str(&pem_block("CERTIFICATE", c));
        }
        out
    }

    /// The value of the backing secret for `content_type` (PEM text, or base64 of the PFX).
    pub fn secret_value(&self, content_type: &str) -> Result<String, CryptoError> {
        if content_type == CONTENT_TYPE_PEM {
            Ok(self.to_pem())
        } else {
            Ok(b64(&self.to_pfx()?))
        }
    }
}

/// What a new certificate should look like.
#[derive(Debug, Clone)]
pub struct NewCertificate {
    /// Subject, e.g. `CN=example.com`.
    pub subject: String,
    /// DNS names for the SAN extension.
    pub dns_names: Vec<String>,
    /// Validity in months.
    pub validity_months: u32,
    /// Key to make.
    pub key: KeySpec,
}

/// Makes a self-signed certificate (Key Vault's `Self` issuer).
pub fn self_signed(req: &NewCertificate) -> Result<CertMaterial, CryptoError> {
    let key = key_pair(&req.key.generate()?)?;
    let params = leaf_params(req)?;
    let cert = params
        .self_signed(&key)
        .map_err(|e| CryptoError::Build(e.to_string()))?;
    Ok(CertMaterial {
        key_pkcs8: key.serialize_der(),
        chain: vec![cert.der().to_vec()],
    })
}

/// Makes a leaf issued by a fresh intermediate under a fresh root: a three-certificate chain, for
/// seeds and tests that need one.
pub fn with_chain(req: &NewCertificate) -> Result<CertMaterial, CryptoError> {
    let build = |e: rcgen::Error| CryptoError::Build(e.to_string());
    let now = unix_now();
    let ca_params = |cn: &str| -> Result<CertificateParams, CryptoError> {
        let mut p = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, cn);
        dn.push(DnType::OrganizationName, "keyvol dev-vault");
        p.distinguished_name = dn;
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        p.not_before = at(now - 3600)?;
        p.not_after = at(add_months(now, req.validity_months.saturating_add(12)))?;
        p.serial_number = Some(random_serial());
        Ok(p)
    };
    let root_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(build)?;
    let root =
        CertifiedIssuer::self_signed(ca_params("keyvol seed root CA")?, root_key).map_err(build)?;
    let int_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(build)?;
    let mut int_params = ca_params("keyvol seed intermediate CA")?;
    int_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    int_params.use_authority_key_identifier_extension = true;
    let intermediate = CertifiedIssuer::signed_by(int_params, int_key, &root).map_err(build)?;
    let key = key_pair(&req.key.generate()?)?;
    let mut params = leaf_params(req)?;
    params.use_authority_key_identifier_extension = true;
    let leaf = params.signed_by(&key, &intermediate).map_err(build)?;
    Ok(CertMaterial {
        key_pkcs8: key.serialize_der(),
        chain: vec![
            leaf.der().to_vec(),
            intermediate.der().to_vec(),
            root.der().to_vec(),
        ],
    })
}

/// A PKCS#10 request (DER) for `req` signed with the PKCS#8 key: the `csr` of a create operation.
pub fn csr(req: &NewCertificate, key_pkcs8: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let key = key_pair(key_pkcs8)?;
    let mut params = CertificateParams::new(req.dns_names.clone())
        .map_err(|e| CryptoError::Build(e.to_string()))?;
    params.distinguished_name = parse_subject(&req.subject)?;
    let request = params
        .serialize_request(&key)
        .map_err(|e| CryptoError::Build(e.to_string()))?;
    Ok(request.der().to_vec())
}

fn leaf_params(req: &NewCertificate) -> Result<CertificateParams, CryptoError> {
    let mut params = CertificateParams::new(req.dns_names.clone())
        .map_err(|e| CryptoError::Build(e.to_string()))?;
    params.distinguished_name = parse_subject(&req.subject)?;
    let now = unix_now();
    // Key Vault back-dates new certificates a few minutes to absorb clock skew.
    params.not_before = at(now - 600)?;
    params.not_after = at(add_months(now, req.validity_months))?;
    params.serial_number = Some(random_serial());
    params.key_usages = match req.key {
        KeySpec::Rsa(_) => vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ],
        KeySpec::Ec(_) => vec![KeyUsagePurpose::DigitalSignature],
    };
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    Ok(params)
}

/// Parses `CN=a, O=b` (commas or semicolons) into a distinguished name.
pub fn parse_subject(subject: &str) -> Result<DistinguishedName, CryptoError> {
    let mut dn = DistinguishedName::new();
    for part in subject
        .split([',', ';'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let Some((k, v)) = part.split_once('=') else {
            return Err(CryptoError::Subject(subject.to_owned()));
        };
        let ty = match k.trim().to_ascii_uppercase().as_str() {
            "CN" => DnType::CommonName,
            "O" => DnType::OrganizationName,
            "OU" => DnType::OrganizationalUnitName,
            "C" => DnType::CountryName,
            "ST" | "S" => DnType::StateOrProvinceName,
            "L" => DnType::LocalityName,
            _ => return Err(CryptoError::Subject(subject.to_owned())),
        };
        dn.push(ty, v.trim());
    }
    if dn.iter().next().is_none() {
        return Err(CryptoError::Subject(subject.to_owned()));
    }
    Ok(dn)
}

fn random_serial() -> SerialNumber {
    use rand::Rng;
    let mut bytes: [u8; 16] = rand::rng().random();
    bytes[0] &= 0x7f;
    SerialNumber::from_slice(&bytes)
}

fn at(unix: i64) -> Result<time::OffsetDateTime, CryptoError> {
    time::OffsetDateTime::from_unix_timestamp(unix).map_err(|e| CryptoError::Build(e.to_string()))
}

/// `unix` plus `months` calendar months (the day clamped to 28 so every month has it).
pub fn add_months(unix: i64, months: u32) -> i64 {
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp(unix) else {
        return unix;
    };
    let total = i64::from(t.year()) * 12 + i64::from(u8::from(t.month())) - 1 + i64::from(months);
    let year = i32::try_from(total.div_euclid(12))
        .unwrap_or(9999)
        .min(9999);
    let month = u8::try_from(total.rem_euclid(12) + 1).unwrap_or(1);
    let Ok(month) = time::Month::try_from(month) else {
        return unix;
    };
    let day = t.day().min(28);
    match time::Date::from_calendar_date(year, month, day) {
        Ok(d) => d.with_time(t.time()).assume_utc().unix_timestamp(),
        Err(_) => unix,
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(key: KeySpec) -> NewCertificate {
        NewCertificate {
            subject: "CN=app.example, O=keyvol".into(),
            dns_names: vec!["app.example".into()],
            validity_months: 12,
            key,
        }
    }

    #[test]
    fn rsa_and_ec_keys_have_jwks_of_the_right_size() {
        let rsa = jwk_from_pkcs8(&KeySpec::Rsa(3072).generate().expect("rsa")).expect("jwk");
        assert_eq!(rsa.kty, "RSA");
        assert_eq!(rsa.rsa_bits(), Some(3072));
        assert_eq!(rsa.e.as_deref(), Some("AQAB"));
        for (curve, len) in [(Curve::P256, 32), (Curve::P384, 48), (Curve::P521, 66)] {
            let jwk = jwk_from_pkcs8(&KeySpec::Ec(curve).generate().expect("ec")).expect("jwk");
            assert_eq!(jwk.crv.as_deref(), Some(curve.name()));
            let x = URL_SAFE_NO_PAD.decode(jwk.x.expect("x")).expect("b64url");
            assert_eq!(x.len(), len);
        }
    }

    #[test]
    fn unsupported_key_requests_are_refused_by_name() {
        assert_eq!(
            KeySpec::parse("EC", None, Some("P-256K")),
            Err(CryptoError::Curve("P-256K".into()))
        );
        assert_eq!(
            KeySpec::parse("RSA", Some(1024), None),
            Err(CryptoError::KeySize(1024))
        );
        assert_eq!(
            KeySpec::parse("oct", None, None),
            Err(CryptoError::KeyType("oct".into()))
        );
        assert_eq!(
            KeySpec::parse("RSA-HSM", None, None),
            Ok(KeySpec::Rsa(2048))
        );
    }

    #[test]
    fn a_chained_certificate_survives_pfx_and_pem_round_trips_in_order() {
        let made = with_chain(&req(KeySpec::Ec(Curve::P256))).expect("chain");
        assert_eq!(made.chain.len(), 3);
        let pfx = made.to_pfx().expect("pfx");
        assert_eq!(CertMaterial::from_pfx(&pfx, "").expect("read pfx"), made);
        let pem = made.to_pem();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{pem}");
        assert_eq!(pem.matches("BEGIN CERTIFICATE").count(), 3);
        assert_eq!(CertMaterial::from_pem(&pem).expect("read pem"), made);
        // Shuffled input comes back leaf first, then issuer order.
        let shuffled = CertMaterial::assemble(
            made.key_pkcs8.clone(),
            vec![
                made.chain[2].clone(),
                made.chain[0].clone(),
                made.chain[1].clone(),
            ],
        )
        .expect("assemble");
        assert_eq!(shuffled, made);
    }

    #[test]
    fn a_pfx_with_the_wrong_password_is_refused() {
        let made = self_signed(&req(KeySpec::Rsa(2048))).expect("cert");
        let pfx = made.to_pfx().expect("pfx");
        assert_eq!(
            CertMaterial::from_pfx(&pfx, "not-the-password"),
            Err(CryptoError::Pkcs12)
        );
    }

    #[test]
    fn certificate_facts_come_from_the_der() {
        let made = self_signed(&req(KeySpec::Rsa(2048))).expect("cert");
        let info = cert_info(made.leaf()).expect("info");
        assert_eq!(info.subject, "CN=app.example, O=keyvol");
        assert_eq!(info.dns_names, vec!["app.example".to_owned()]);
        assert_eq!(info.validity_months(), 12);
        assert_eq!(x5t(made.leaf()).len(), 27);
        assert_eq!(info.key_usage, vec!["digitalSignature", "keyEncipherment"]);
        assert_eq!(info.ekus, vec!["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"]);
        assert!(!info.ca);
    }

    #[test]
    fn a_signing_request_is_made_for_the_certificate_key() {
        let r = req(KeySpec::Rsa(2048));
        let made = self_signed(&r).expect("cert");
        let der = csr(&r, &made.key_pkcs8).expect("csr");
        assert_eq!(der[0], 0x30, "DER SEQUENCE");
    }

    /// The private JWK of a P-384 key, as a client exporting it would write it.
    fn private_jwk(pkcs8: &[u8]) -> PrivateJwk {
        private_ec_jwk(pkcs8, &aws_lc_rs::signature::ECDSA_P384_SHA384_ASN1_SIGNING)
    }

    /// The private JWK of an EC key on `alg`'s curve.
    fn private_ec_jwk(
        pkcs8: &[u8],
        alg: &'static aws_lc_rs::signature::EcdsaSigningAlgorithm,
    ) -> PrivateJwk {
        use aws_lc_rs::encoding::AsBigEndian;
        let public = jwk_from_pkcs8(pkcs8).expect("jwk");
        let ec = aws_lc_rs::signature::EcdsaKeyPair::from_pkcs8(alg, pkcs8).expect("ec");
        let d: aws_lc_rs::encoding::EcPrivateKeyBin<'_> =
            ec.private_key().as_be_bytes().expect("d");
        PrivateJwk {
            kty: Some("EC".into()),
            crv: public.crv,
            x: public.x,
            y: public.y,
            d: Some(URL_SAFE_NO_PAD.encode(d.as_ref())),
            ..PrivateJwk::default()
        }
    }

    #[test]
    fn an_ec_jwk_with_private_members_imports_and_a_mismatched_one_does_not() {
        let pkcs8 = KeySpec::Ec(Curve::P384).generate().expect("ec");
        let jwk = private_jwk(&pkcs8);
        let imported = pkcs8_from_jwk(&jwk).expect("import");
        assert_eq!(
            jwk_from_pkcs8(&imported).expect("jwk"),
            jwk_from_pkcs8(&pkcs8).expect("jwk")
        );
        let other = private_jwk(&KeySpec::Ec(Curve::P384).generate().expect("ec"));
        let mixed = PrivateJwk {
            d: other.d,
            ..private_jwk(&pkcs8)
        };
        assert!(pkcs8_from_jwk(&mixed).is_err());
        let public_only = PrivateJwk {
            d: None,
            ..private_jwk(&pkcs8)
        };
        assert_eq!(pkcs8_from_jwk(&public_only), Err(CryptoError::NoPrivateKey));
    }

    /// The private JWK of an RSA key, every member read back from its PKCS#1 structure.
    fn private_rsa_jwk(pkcs8: &[u8]) -> PrivateJwk {
        use der::Decode;
        let info = pkcs8::PrivateKeyInfoRef::from_der(pkcs8).expect("pkcs8");
        let rsa = pkcs1::RsaPrivateKeyRef::from_der(info.private_key.as_bytes()).expect("pkcs1");
        let b64 = |u: pkcs1::UintRef<'_>| Some(URL_SAFE_NO_PAD.encode(u.as_bytes()));
        PrivateJwk {
            kty: Some("RSA".into()),
            n: b64(rsa.modulus),
            e: b64(rsa.public_exponent),
            d: b64(rsa.private_exponent),
            p: b64(rsa.prime1),
            q: b64(rsa.prime2),
            dp: b64(rsa.exponent1),
            dq: b64(rsa.exponent2),
            qi: b64(rsa.coefficient),
            ..PrivateJwk::default()
        }
    }

    #[test]
    fn jwk_imports_rebuild_the_exact_pkcs8_of_the_key() {
        let rsa = KeySpec::Rsa(2048).generate().expect("rsa");
        assert_eq!(
            pkcs8_from_jwk(&private_rsa_jwk(&rsa)).expect("rsa import"),
            rsa
        );
        for curve in [Curve::P256, Curve::P384, Curve::P521] {
            let ec = KeySpec::Ec(curve).generate().expect("ec");
            let alg = match curve {
                Curve::P256 => &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
                Curve::P384 => &aws_lc_rs::signature::ECDSA_P384_SHA384_ASN1_SIGNING,
                Curve::P521 => &aws_lc_rs::signature::ECDSA_P521_SHA512_ASN1_SIGNING,
            };
            let jwk = private_ec_jwk(&ec, alg);
            assert_eq!(pkcs8_from_jwk(&jwk).expect("ec import"), ec, "{curve:?}");
        }
    }

    #[test]
    fn curves_are_found_by_their_dotted_oids() {
        assert_eq!(Curve::from_oid("1.2.840.10045.3.1.7"), Some(Curve::P256));
        assert_eq!(Curve::from_oid("1.3.132.0.34"), Some(Curve::P384));
        assert_eq!(Curve::from_oid("1.3.132.0.35"), Some(Curve::P521));
        assert_eq!(Curve::from_oid("1.3.132.0.10"), None, "secp256k1");
    }

    #[test]
    fn pkcs1_and_sec1_keys_become_pkcs8() {
        let ec = KeySpec::Ec(Curve::P384).generate().expect("ec");
        let pair = aws_lc_rs::signature::EcdsaKeyPair::from_pkcs8(
            &aws_lc_rs::signature::ECDSA_P384_SHA384_ASN1_SIGNING,
            &ec,
        )
        .expect("pair");
        use aws_lc_rs::encoding::AsDer;
        let sec1 = pair.private_key().as_der().expect("sec1");
        let pem = pem_block("EC PRIVATE KEY", sec1.as_ref());
        let back = pkcs8_from_pem(&pem).expect("pkcs8");
        assert_eq!(
            jwk_from_pkcs8(&back).expect("jwk"),
            jwk_from_pkcs8(&ec).expect("jwk")
        );
    }
}

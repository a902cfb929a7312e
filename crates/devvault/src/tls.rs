//! The dev vault's TLS identity: a CA generated at start and a server certificate it signs for
//! every name the dev vault answers to.
//!
//! Clients trust the CA's PEM (written to a file) the way they would trust a private CA in front
//! of Azure Stack or a TLS-inspecting proxy; nothing is made insecure to talk to the dev vault.
//! With a data directory the CA (certificate and key) is kept and reused, so clients that trust
//! it once keep trusting the dev vault across restarts; the server certificate is issued anew at
//! every start, for the names of that start.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};

/// Why the TLS identity could not be created.
#[derive(Debug, thiserror::Error)]
#[error("failed to create the dev vault's TLS identity: {0}")]
pub struct TlsError(String);

/// A CA: its certificate and key, both PEM. The key is the dev vault's own, never a user secret.
#[derive(Clone)]
pub struct CaKeys {
    /// The CA certificate.
    pub cert_pem: String,
    /// The CA's private key (PKCS#8).
    pub key_pem: String,
}

/// A CA and the server certificate it issued.
pub struct TlsIdentity {
    /// The CA certificate, PEM. This is what clients trust.
    pub ca_pem: String,
    /// The CA (to keep it in a data directory).
    pub ca: CaKeys,
    /// The rustls server configuration presenting the server certificate.
    pub server_config: Arc<rustls::ServerConfig>,
}

fn ca_params() -> CertificateParams {
    let mut ca_params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "keyvol dev-vault CA");
    dn.push(DnType::OrganizationName, "keyvol");
    ca_params.distinguished_name = dn;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca_params
}

/// Creates a CA and a server certificate for `dns_names` (wildcards allowed) plus loopback IPs.
pub fn generate(dns_names: &[String]) -> Result<TlsIdentity, TlsError> {
    generate_with(dns_names, None)
}

/// Like [`generate`], reusing `ca` when given.
pub fn generate_with(dns_names: &[String], ca: Option<&CaKeys>) -> Result<TlsIdentity, TlsError> {
    let err = |e: rcgen::Error| TlsError(e.to_string());
    let (ca_der, ca_keys, issuer) = match ca {
        Some(keys) => {
            let key = KeyPair::from_pem(&keys.key_pem).map_err(err)?;
            let der = rustls::pki_types::CertificateDer::from_pem_slice(keys.cert_pem.as_bytes())
                .map_err(|e| TlsError(e.to_string()))?;
            (der, keys.clone(), Issuer::new(ca_params(), key))
        }
        None => {
            let ca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(err)?;
            let key_pem = ca_key.serialize_pem();
            let ca = CertifiedIssuer::self_signed(ca_params(), ca_key).map_err(err)?;
            let keys = CaKeys {
                cert_pem: ca.pem(),
                key_pem,
            };
            let der = ca.der().clone();
            let key = KeyPair::from_pem(&keys.key_pem).map_err(err)?;
            (der, keys, Issuer::new(ca_params(), key))
        }
    };

    let server_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(err)?;
    let mut params = CertificateParams::new(dns_names.to_vec()).map_err(err)?;
    params
        .subject_alt_names
        .push(SanType::IpAddress([127, 0, 0, 1].into()));
    params
        .subject_alt_names
        .push(SanType::IpAddress(std::net::Ipv6Addr::LOCALHOST.into()));
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "keyvol dev-vault");
    params.distinguished_name = dn;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    let server_cert = params.signed_by(&server_key, &issuer).map_err(err)?;

    let chain = vec![server_cert.der().clone(), ca_der];
    let key = rustls::pki_types::PrivateKeyDer::try_from(server_key.serialize_der())
        .map_err(|e| TlsError(e.to_string()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| TlsError(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsIdentity {
        ca_pem: ca_keys.cert_pem.clone(),
        ca: ca_keys,
        server_config: Arc::new(config),
    })
}

//! Certificate chain ordering for PEM output: leaf first, then each issuer up to the root, linked
//! by authority and subject key identifiers — upstream's `constructPEMChain` — falling back to the
//! order the vault stored when the links do not cover every certificate.

use x509_parser::extensions::ParsedExtension;

/// Why a chain could not be ordered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    /// A certificate is not valid DER X.509.
    #[error("certificate {0} in the bundle is not valid X.509")]
    Parse(usize),
    /// The issuer links form a loop.
    #[error("constructing chain resulted in cycle")]
    Cycle,
}

/// How a chain came out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainOrder {
    /// Ordered leaf → root by key identifiers.
    Linked,
    /// Links were incomplete; the stored order was kept.
    Stored,
}

struct Ids {
    ski: Option<Vec<u8>>,
    aki: Option<Vec<u8>>,
}

fn ids(der: &[u8], index: usize) -> Result<Ids, ChainError> {
    let (_, cert) =
        x509_parser::parse_x509_certificate(der).map_err(|_| ChainError::Parse(index))?;
    let mut out = Ids {
        ski: None,
        aki: None,
    };
    for ext in cert.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(k) => out.ski = Some(k.0.to_vec()),
            ParsedExtension::AuthorityKeyIdentifier(a) => {
                out.aki = a.key_identifier.as_ref().map(|k| k.0.to_vec())
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Orders DER certificates leaf → root. Returns the order used.
pub fn order_chain(certs: Vec<Vec<u8>>) -> Result<(Vec<Vec<u8>>, ChainOrder), ChainError> {
    if certs.len() < 2 {
        return Ok((certs, ChainOrder::Linked));
    }
    let ids: Vec<Ids> = certs
        .iter()
        .enumerate()
        .map(|(i, c)| ids(c, i))
        .collect::<Result<_, _>>()?;
    // parent[i] = the certificate whose subject key id is i's authority key id.
    let parent: Vec<Option<usize>> = ids
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let aki = c.aki.as_ref()?;
            ids.iter()
                .enumerate()
                .position(|(j, p)| j != i && p.ski.as_ref() == Some(aki))
        })
        .collect();
    let is_parent: Vec<bool> = (0..certs.len())
        .map(|j| parent.contains(&Some(j)))
        .collect();
    let Some(leaf) = (0..certs.len()).find(|i| !is_parent[*i]) else {
        // Every certificate issues another one: the links loop.
        return Err(ChainError::Cycle);
    };
    let mut order = vec![leaf];
    let mut cur = leaf;
    while let Some(p) = parent[cur] {
        if order.contains(&p) {
            return Err(ChainError::Cycle);
        }
        order.push(p);
        cur = p;
    }
    if order.len() != certs.len() {
        return Ok((certs, ChainOrder::Stored));
    }
    let mut slots: Vec<Option<Vec<u8>>> = certs.into_iter().map(Some).collect();
    let ordered = order.into_iter().filter_map(|i| slots[i].take()).collect();
    Ok((ordered, ChainOrder::Linked))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

    /// root, intermediate, leaf DERs plus the leaf key, built with rcgen.
    pub(crate) fn three_level_chain() -> (Vec<u8>, Vec<u8>, Vec<u8>, KeyPair) {
        let root_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
        let mut root_params = CertificateParams::new(vec![]).expect("params");
        root_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        root_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "root");
        let root = CertifiedIssuer::self_signed(root_params, root_key).expect("root");

        let int_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
        let mut int_params = CertificateParams::new(vec![]).expect("params");
        int_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        int_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "intermediate");
        int_params.use_authority_key_identifier_extension = true;
        let int = CertifiedIssuer::signed_by(int_params, int_key, &root).expect("intermediate");

        let leaf_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
        let mut leaf_params = CertificateParams::new(vec!["leaf.example".into()]).expect("params");
        leaf_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "leaf");
        leaf_params.use_authority_key_identifier_extension = true;
        let leaf = leaf_params.signed_by(&leaf_key, &int).expect("leaf");
        (
            root.der().to_vec(),
            int.der().to_vec(),
            leaf.der().to_vec(),
            leaf_key,
        )
    }

    #[test]
    fn out_of_order_chains_come_out_leaf_to_root() {
        let (root, int, leaf, _) = three_level_chain();
        let (ordered, how) =
            order_chain(vec![root.clone(), leaf.clone(), int.clone()]).expect("orders");
        assert_eq!(how, ChainOrder::Linked);
        assert_eq!(ordered, vec![leaf, int, root]);
    }

    #[test]
    fn incomplete_chains_keep_the_stored_order() {
        let (root, _int, leaf, _) = three_level_chain();
        // Without the intermediate, the leaf's issuer is missing.
        let (ordered, how) = order_chain(vec![root.clone(), leaf.clone()]).expect("orders");
        assert_eq!(how, ChainOrder::Stored);
        assert_eq!(ordered, vec![root, leaf]);
    }

    #[test]
    fn garbage_is_reported_by_index() {
        let (root, _, _, _) = three_level_chain();
        assert_eq!(
            order_chain(vec![root, vec![1, 2, 3]]).err(),
            Some(ChainError::Parse(1))
        );
    }
}

//! Certificate policies: the policy document stored with each certificate, built from its
//! material for imports and read from the request for creates.

use serde_json::{Value, json};

use crate::crypto::{self, CONTENT_TYPE_PEM, CONTENT_TYPE_PKCS12, CertMaterial, KeySpec};

/// Validity of created certificates when the policy names none (the service's default).
pub const DEFAULT_VALIDITY_MONTHS: u32 = 12;

/// What a create request asks for.
#[derive(Debug, Clone)]
pub struct CreateRequest {
    /// The certificate to make.
    pub cert: crypto::NewCertificate,
    /// The backing secret's content type.
    pub content_type: String,
    /// Issuer name (`Self`, or anything else: the dev vault self-signs for every issuer).
    pub issuer: String,
}

/// Reads a create policy. Errors are the `BadParameter` message.
pub fn parse_create(policy: &Value) -> Result<CreateRequest, String> {
    let key_props = policy.get("key_props").cloned().unwrap_or(Value::Null);
    let kty = key_props
        .get("kty")
        .and_then(Value::as_str)
        .unwrap_or("RSA");
    let key_size = key_props
        .get("key_size")
        .and_then(Value::as_u64)
        .and_then(|v| u32::try_from(v).ok());
    let crv = key_props.get("crv").and_then(Value::as_str);
    let key = KeySpec::parse(kty, key_size, crv).map_err(|e| e.to_string())?;
    let x509 = policy.get("x509_props").cloned().unwrap_or(Value::Null);
    let subject = x509
        .get("subject")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let dns_names: Vec<String> = x509
        .pointer("/sans/dns_names")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if subject.is_empty() && dns_names.is_empty() {
        return Err(
            "Either a subject or a subject alternative name must be specified in the policy."
                .into(),
        );
    }
    let subject = if subject.is_empty() {
        format!(
            "CN={}",
            dns_names
                .first()
                .map(String::as_str)
                .unwrap_or("certificate")
        )
    } else {
        subject
    };
    crypto::parse_subject(&subject).map_err(|e| e.to_string())?;
    let validity_months = x509
        .get("validity_months")
        .and_then(Value::as_u64)
        .and_then(|v| u32::try_from(v).ok())
        .unwrap_or(DEFAULT_VALIDITY_MONTHS);
    if validity_months == 0 {
        return Err("validity_months must be positive.".into());
    }
    let content_type = content_type_of(policy)?;
    let issuer = policy
        .pointer("/issuer/name")
        .and_then(Value::as_str)
        .unwrap_or("Self")
        .to_owned();
    Ok(CreateRequest {
        cert: crypto::NewCertificate {
            subject,
            dns_names,
            validity_months,
            key,
        },
        content_type,
        issuer,
    })
}

/// The secret content type a policy asks for (PFX when it names none).
pub fn content_type_of(policy: &Value) -> Result<String, String> {
    match policy
        .pointer("/secret_props/contentType")
        .and_then(Value::as_str)
    {
        None => Ok(CONTENT_TYPE_PKCS12.to_owned()),
        Some(ct @ (CONTENT_TYPE_PKCS12 | CONTENT_TYPE_PEM)) => Ok(ct.to_owned()),
        Some(other) => Err(format!(
            "The content type '{other}' is not supported; use application/x-pkcs12 or application/x-pem-file."
        )),
    }
}

/// The policy document for a certificate made from `material`, as the service reports it.
pub fn describe(
    material: &CertMaterial,
    content_type: &str,
    issuer: &str,
    now: i64,
) -> Result<Value, crypto::CryptoError> {
    let info = crypto::cert_info(material.leaf())?;
    let jwk = crypto::jwk_from_pkcs8(&material.key_pkcs8)?;
    let mut key_props = json!({ "exportable": true, "kty": jwk.kty, "reuse_key": false });
    if jwk.kty == "RSA" {
        key_props["key_size"] = json!(jwk.rsa_bits());
    } else {
        key_props["crv"] = json!(jwk.crv);
    }
    // The usages and CA flag the certificate itself carries, as the service reports for imports.
    let mut x509 = json!({
        "subject": info.subject,
        "ekus": info.ekus,
        "key_usage": info.key_usage,
        "validity_months": info.validity_months(),
        "basic_constraints": { "ca": info.ca },
    });
    if !info.dns_names.is_empty() {
        x509["sans"] = json!({ "dns_names": info.dns_names });
    }
    // Imported certificates are not renewed by the vault, so it only e-mails contacts.
    let action = if issuer == "Unknown" {
        "EmailContacts"
    } else {
        "AutoRenew"
    };
    Ok(json!({
        "key_props": key_props,
        "secret_props": { "contentType": content_type },
        "x509_props": x509,
        "lifetime_actions": [
            { "trigger": { "lifetime_percentage": 80 }, "action": { "action_type": action } }
        ],
        "issuer": { "name": issuer },
        "attributes": { "enabled": true, "created": now, "updated": now },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_create_policy_is_read_with_the_services_defaults() {
        let req = parse_create(&json!({"x509_props": {"subject": "CN=a"}})).expect("policy");
        assert_eq!(req.cert.key, KeySpec::Rsa(2048));
        assert_eq!(req.content_type, CONTENT_TYPE_PKCS12);
        assert_eq!(req.cert.validity_months, 12);
        assert_eq!(req.issuer, "Self");
        let ec = parse_create(&json!({
            "key_props": {"kty": "EC", "crv": "P-384"},
            "secret_props": {"contentType": "application/x-pem-file"},
            "x509_props": {"sans": {"dns_names": ["a.example"]}, "validity_months": 3},
        }))
        .expect("policy");
        assert_eq!(ec.cert.subject, "CN=a.example");
        assert_eq!(ec.content_type, CONTENT_TYPE_PEM);
        assert!(parse_create(&json!({})).is_err());
        assert!(
            parse_create(&json!({"x509_props": {"subject": "CN=a"}, "secret_props": {"contentType": "text/plain"}}))
                .is_err()
        );
    }
}

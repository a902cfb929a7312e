//! The identity endpoints against an in-process dev vault: federated client assertions, the
//! discovery documents, IMDS and NMI on the plain-HTTP identity listener, and the tokens each
//! hands out being accepted (or refused) by the vault.

use crate::common::{Harness, TENANT, V};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

fn seed(issuer_pem: &str) -> String {
    format!(
        r#"
tenantId: {TENANT}
clients:
  - clientId: test-client
    clientSecret: test-client-secret
  - clientId: workload-app
    federatedCredentials:
      - issuer: https://oidc.cluster.test
        subject: system:serviceaccount:apps:web
oidcIssuers:
  - issuer: https://oidc.cluster.test
    publicKeyPem: |
      {}
managedIdentities:
  - clientId: vm-system
    objectId: 0000-sys
    systemAssigned: true
  - clientId: vm-user
    objectId: 0000-user
    resourceId: /subscriptions/s/resourceGroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/vm-user
podIdentities:
  - namespace: apps
    podName: web-0
    clientId: vm-user
vaults:
  - name: kv1
    accessPolicies:
      - identity: workload-app
        secrets: [get]
      - identity: 0000-user
        secrets: [get]
    secrets:
      - name: plain
        value: hello
"#,
        issuer_pem.trim().replace('\n', "\n      ")
    )
}

fn signer() -> (String, EncodingKey) {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let enc = EncodingKey::from_ec_pem(key.serialize_pem().as_bytes()).expect("encoding key");
    (key.public_key_pem(), enc)
}

fn service_account_token(enc: &EncodingKey, sub: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs();
    jsonwebtoken::encode(
        &Header::new(Algorithm::ES256),
        &json!({
            "iss": "https://oidc.cluster.test",
            "sub": sub,
            "aud": ["api://AzureADTokenExchange"],
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
        }),
        enc,
    )
    .expect("sign")
}

async fn assertion_token(h: &Harness, client_id: &str, assertion: &str) -> (u16, Value) {
    let resp = h
        .token_request(&[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion),
            ("scope", "https://vault.azure.net/.default"),
        ])
        .await;
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("json"))
}

#[tokio::test]
async fn a_federated_service_account_token_buys_a_vault_token_and_a_mismatch_gets_aadsts70021() {
    let (pem, enc) = signer();
    let h = Harness::start(&seed(&pem)).await;
    let (s, body) = assertion_token(
        &h,
        "workload-app",
        &service_account_token(&enc, "system:serviceaccount:apps:web"),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert!(body["expires_in"].is_i64(), "v2.0 numbers are numbers");
    let token = body["access_token"].as_str().expect("token");
    assert_eq!(
        h.get("kv1", &format!("/secrets/plain?{V}"), token).await.1["value"],
        "hello"
    );
    let (s, body) = assertion_token(
        &h,
        "workload-app",
        &service_account_token(&enc, "system:serviceaccount:apps:other"),
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(body["error"], "invalid_client");
    assert_eq!(body["error_codes"], json!([70021]));
    assert!(
        body["error_description"]
            .as_str()
            .expect("description")
            .starts_with("AADSTS70021: No matching federated identity record found")
    );
    let (_, forger) = signer();
    let (s, body) = assertion_token(
        &h,
        "workload-app",
        &service_account_token(&forger, "system:serviceaccount:apps:web"),
    )
    .await;
    assert_eq!((s, &body["error"]), (400, &json!("invalid_client")));
}

#[tokio::test]
async fn discovery_documents_point_back_at_the_host_the_client_used() {
    let (pem, _) = signer();
    let h = Harness::start(&seed(&pem)).await;
    let base = format!("https://login.microsoftonline.com:{}", h.port);
    let doc: Value = h
        .get_json(&format!(
            "{base}/{TENANT}/v2.0/.well-known/openid-configuration"
        ))
        .await;
    assert_eq!(
        doc["token_endpoint"],
        format!("{base}/{TENANT}/oauth2/v2.0/token")
    );
    assert_eq!(doc["issuer"], format!("{base}/{TENANT}/v2.0"));
    let keys: Value = h
        .client
        .get(doc["jwks_uri"].as_str().expect("jwks_uri"))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(keys["keys"][0]["kty"], "EC");
    let resp = h
        .client
        .get(format!(
            "{base}/not-a-tenant/v2.0/.well-known/openid-configuration"
        ))
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status(), 400);
    let inst: Value = h.get_json(&format!("{base}/common/discovery/instance?api-version=1.1&authorization_endpoint={base}/{TENANT}/oauth2/v2.0/authorize")).await;
    assert_eq!(
        inst["tenant_discovery_endpoint"],
        format!("{base}/{TENANT}/v2.0/.well-known/openid-configuration")
    );
    assert_eq!(inst["api-version"], "1.1");
}

async fn start_with_identity(pem: &str, not_ready: u64) -> (Harness, String) {
    let h = Harness::start_with(&seed(pem), |c| {
        c.identity_listen = Some(([127, 0, 0, 1], 0).into());
        c.nmi_not_ready = not_ready;
    })
    .await;
    let base = format!(
        "http://{}",
        h.vault.identity_addr().expect("identity listener")
    );
    (h, base)
}

#[tokio::test]
async fn imds_needs_the_metadata_header_and_picks_identities_like_the_real_one() {
    let (pem, _) = signer();
    let (h, base) = start_with_identity(&pem, 0).await;
    let http = reqwest::Client::new();
    let url = format!(
        "{base}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://vault.azure.net"
    );
    let resp = http.get(&url).send().await.expect("imds");
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(
        body,
        json!({"error": "invalid_request", "error_description": "Required metadata header not specified"})
    );
    let body: Value = http
        .get(&url)
        .header("Metadata", "true")
        .send()
        .await
        .expect("imds")
        .json()
        .await
        .expect("json");
    assert_eq!(body["client_id"], "vm-system", "system-assigned by default");
    for field in ["expires_in", "expires_on", "ext_expires_in", "not_before"] {
        assert!(body[field].is_string(), "{field} is a string");
    }
    let resp = http
        .get(format!("{url}&client_id=vm-user"))
        .header("Metadata", "true")
        .send()
        .await
        .expect("imds");
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["client_id"], "vm-user");
    let user_token = body["access_token"].as_str().expect("token").to_owned();
    // The policy names vm-user by object id; the system identity has none.
    assert_eq!(
        h.get("kv1", &format!("/secrets/plain?{V}"), &user_token)
            .await
            .0,
        200
    );
    // IMDS answers on the HTTPS listener too, for clients that only speak TLS.
    let over_tls = h
        .client
        .get(format!(
            "https://127.0.0.1:{}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://vault.azure.net",
            h.port
        ))
        .header("Metadata", "true")
        .send()
        .await
        .expect("imds over tls");
    assert_eq!(over_tls.status(), 200);
    let resp = http
        .get(format!("{url}&client_id=unknown"))
        .header("Metadata", "true")
        .send()
        .await
        .expect("imds");
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn nmi_answers_pods_with_string_numbers_and_plain_text_errors() {
    let (pem, _) = signer();
    let (h, base) = start_with_identity(&pem, 2).await;
    let http = reqwest::Client::new();
    let url = format!("{base}/host/token/?resource=https://vault.azure.net");
    let resp = http.get(&url).send().await.expect("nmi");
    assert_eq!(resp.status(), 400);
    assert_eq!(
        resp.text().await.expect("text"),
        "missing 'podname' and 'podns' from request header\n"
    );
    let ask = || {
        http.get(&url)
            .header("podname", "web-0")
            .header("podns", "apps")
            .send()
    };
    for _ in 0..2 {
        assert_eq!(
            ask().await.expect("nmi").status(),
            404,
            "identity not assigned yet"
        );
    }
    let resp = ask().await.expect("nmi");
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["clientid"], "vm-user");
    assert!(body["token"]["expires_on"].is_string());
    let token = body["token"]["access_token"].as_str().expect("token");
    assert_eq!(
        h.get("kv1", &format!("/secrets/plain?{V}"), token).await.0,
        200
    );
    let resp = http
        .get(&url)
        .header("podname", "other")
        .header("podns", "apps")
        .send()
        .await
        .expect("nmi");
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn tokens_for_another_audience_or_from_another_vault_are_refused() {
    let (pem, _) = signer();
    let h = Harness::start(&seed(&pem)).await;
    let resp = h
        .token_request(&[
            ("grant_type", "client_credentials"),
            ("client_id", "test-client"),
            ("client_secret", "test-client-secret"),
            ("scope", "https://management.azure.com/.default"),
        ])
        .await;
    let body: Value = resp.json().await.expect("json");
    let arm = body["access_token"].as_str().expect("token");
    let (s, headers, _) = h
        .call(
            reqwest::Method::GET,
            "kv1",
            &format!("/secrets/plain?{V}"),
            Some(arm),
            None,
        )
        .await;
    assert_eq!(s, 401);
    assert!(
        headers["www-authenticate"]
            .to_str()
            .expect("header")
            .contains("error=\"invalid_token\"")
    );
    let other = Harness::start(&seed(&pem)).await;
    let foreign = other.token().await;
    assert_eq!(
        h.get("kv1", &format!("/secrets/plain?{V}"), &foreign)
            .await
            .0,
        401
    );
    let resp = h
        .token_request(&[
            ("grant_type", "client_credentials"),
            ("client_id", "test-client"),
            ("client_secret", "wrong"),
            ("scope", "https://vault.azure.net/.default"),
        ])
        .await;
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["error_codes"], json!([7000215]));
    assert!(
        !body.to_string().contains("wrong"),
        "secrets are never echoed"
    );
}

/// An app registered with a certificate (`clients[].certificates`), as `CertificateCredential`
/// signs in: an RS256 assertion naming the certificate by `x5t`, addressed to the token endpoint
/// on the host the client used.
#[tokio::test]
async fn a_certificate_assertion_buys_a_vault_token_and_an_unregistered_certificate_gets_aadsts700027()
 {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use keyvol_devvault::crypto::{self, KeySpec, NewCertificate};

    let make = || {
        crypto::self_signed(&NewCertificate {
            subject: "CN=cert-app".into(),
            dns_names: vec![],
            validity_months: 1,
            key: KeySpec::Rsa(2048),
        })
        .expect("cert")
    };
    let (registered, stranger) = (make(), make());
    let seed = format!(
        "tenantId: {TENANT}\nclients:\n  - clientId: cert-app\n    certificates:\n      - |\n        {}\nvaults:\n  - name: kv1\n    secrets:\n      - name: plain\n        value: hello\n",
        crypto::pem_block("CERTIFICATE", registered.leaf())
            .trim()
            .replace('\n', "\n        ")
    );
    let h = Harness::start(&seed).await;
    let endpoint = format!(
        "https://login.microsoftonline.com:{}/{TENANT}/oauth2/v2.0/token",
        h.port
    );
    let assertion = |m: &crypto::CertMaterial, aud: &str| {
        let sha1 = sha1_of(m.leaf());
        let mut header = Header::new(Algorithm::RS256);
        header.x5t = Some(URL_SAFE_NO_PAD.encode(sha1));
        let key = crypto::pem_block("PRIVATE KEY", &m.key_pkcs8);
        let now = keyvol_devvault::store::unix_now();
        jsonwebtoken::encode(
            &header,
            &json!({"aud": aud, "iss": "cert-app", "sub": "cert-app", "jti": "a1b2",
                    "iat": now, "nbf": now, "exp": now + 600}),
            &EncodingKey::from_rsa_pem(key.as_bytes()).expect("key"),
        )
        .expect("sign")
    };
    let (s, body) = assertion_token(&h, "cert-app", &assertion(&registered, &endpoint)).await;
    assert_eq!(s, 200, "{body}");
    let token = body["access_token"].as_str().expect("token");
    assert_eq!(
        h.get("kv1", &format!("/secrets/plain?{V}"), token).await.1["value"],
        "hello"
    );

    let (s, body) = assertion_token(&h, "cert-app", &assertion(&stranger, &endpoint)).await;
    assert_eq!((s, &body["error"]), (400, &json!("invalid_client")));
    assert_eq!(body["error_codes"], json!([700027]));
    let thumbprint = hex::encode_upper(sha1_of(stranger.leaf()));
    let description = body["error_description"].as_str().expect("description");
    assert!(
        description.starts_with("AADSTS700027:") && description.contains(&thumbprint),
        "{description}"
    );

    // The audience names the token endpoint on the host the client reached, not another one.
    let elsewhere = format!("https://login.example.test/{TENANT}/oauth2/v2.0/token");
    let (s, body) = assertion_token(&h, "cert-app", &assertion(&registered, &elsewhere)).await;
    assert_eq!((s, &body["error_codes"]), (400, &json!([700023])));
}

fn sha1_of(der: &[u8]) -> Vec<u8> {
    use sha1::Digest;
    sha1::Sha1::digest(der).to_vec()
}

//! Replays real recorded exchanges with Azure (tests/fixtures/keyvault-recordings) against the dev
//! vault: each recorded request is sent as recorded (recorded version ids mapped to the dev
//! vault's), and each recorded response's status must match and every field of its body must be
//! in the dev vault's body with the same JSON type. The README there lists the few entries
//! skipped and why.

use std::collections::HashMap;
use std::path::PathBuf;

use crate::common::Harness;
use reqwest::Method;
use serde_json::{Value, json};

fn recording(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/keyvault-recordings")
        .join(name);
    let text = std::fs::read_to_string(&path).expect("recording");
    serde_json::from_str(&text).expect("recording JSON")
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Every member of `recorded` is in `ours` with the same JSON type, recursively.
fn same_shape(recorded: &Value, ours: &Value, at: &str, problems: &mut Vec<String>) {
    if kind(recorded) != kind(ours) {
        problems.push(format!(
            "{at}: recorded {} but dev vault {}",
            kind(recorded),
            kind(ours)
        ));
        return;
    }
    match (recorded, ours) {
        (Value::Object(r), Value::Object(o)) => {
            for (k, rv) in r {
                match o.get(k) {
                    Some(ov) => same_shape(rv, ov, &format!("{at}.{k}"), problems),
                    None => problems.push(format!("{at}.{k}: missing")),
                }
            }
        }
        (Value::Array(r), Value::Array(o)) => {
            if let (Some(rv), Some(ov)) = (r.first(), o.first()) {
                same_shape(rv, ov, &format!("{at}[0]"), problems);
            }
        }
        _ => {}
    }
}

fn is_version(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Learns recorded version id -> dev vault version id from two bodies.
fn learn(recorded: &Value, ours: &Value, map: &mut HashMap<String, String>) {
    for pointer in ["/id", "/kid", "/sid", "/key/kid"] {
        if let (Some(r), Some(o)) = (
            recorded.pointer(pointer).and_then(Value::as_str),
            ours.pointer(pointer).and_then(Value::as_str),
        ) {
            let (r, o) = (
                r.rsplit('/').next().unwrap_or_default(),
                o.rsplit('/').next().unwrap_or_default(),
            );
            if is_version(r) && is_version(o) {
                map.insert(r.to_owned(), o.to_owned());
            }
        }
    }
}

/// Headers every recorded Key Vault answer carries that the dev vault must carry too.
const KV_HEADERS: &[&str] = &[
    "cache-control",
    "pragma",
    "expires",
    "x-content-type-options",
    "x-ms-keyvault-region",
    "x-ms-keyvault-service-version",
    "x-ms-request-id",
    "strict-transport-security",
];

async fn replay(h: &Harness, file: &str) {
    let rec = recording(file);
    let token = h.token().await;
    let mut versions: HashMap<String, String> = HashMap::new();
    let mut compared = 0;
    for (i, entry) in rec["Entries"]
        .as_array()
        .expect("entries")
        .iter()
        .enumerate()
    {
        let uri = url::Url::parse(entry["RequestUri"].as_str().expect("uri")).expect("url");
        let recorded_status = entry["StatusCode"].as_u64().expect("status");
        let recorded_body = &entry["ResponseBody"];
        let method =
            Method::from_bytes(entry["RequestMethod"].as_str().expect("method").as_bytes())
                .expect("method");
        let path = uri.path();
        if recorded_status == 404 && path.starts_with("/deleted") {
            continue;
        }
        if path.ends_with("/pending") && recorded_body["status"] == "inProgress" {
            continue;
        }
        let vault = uri
            .host_str()
            .and_then(|h| h.split('.').next())
            .expect("vault")
            .to_ascii_lowercase();
        let mut pq = path
            .split('/')
            .map(|seg| versions.get(seg).cloned().unwrap_or_else(|| seg.to_owned()))
            .collect::<Vec<_>>()
            .join("/");
        if let Some(q) = uri.query() {
            pq.push('?');
            pq.push_str(q);
        }
        let mut body = entry["RequestBody"].clone();
        if body["crv"] == "P-256K" {
            body["crv"] = json!("P-256");
        }
        let body = (!body.is_null()).then_some(body);
        let auth = (recorded_status != 401).then_some(token.as_str());
        let (status, headers, ours) = h.call(method.clone(), &vault, &pq, auth, body).await;
        let what = format!("{file} entry {i}: {method} {pq}");
        assert_eq!(u64::from(status), recorded_status, "{what}: {ours}");
        let mut problems = Vec::new();
        same_shape(recorded_body, &ours, "body", &mut problems);
        assert!(problems.is_empty(), "{what}: {problems:#?}");
        let recorded_headers = entry["ResponseHeaders"].as_object().expect("headers");
        for name in KV_HEADERS {
            if recorded_headers
                .keys()
                .any(|k| k.eq_ignore_ascii_case(name))
            {
                assert!(headers.contains_key(*name), "{what}: header {name} missing");
            }
        }
        if recorded_status == 401 {
            assert!(headers.contains_key("www-authenticate"), "{what}");
        }
        learn(recorded_body, &ours, &mut versions);
        compared += 1;
    }
    assert!(compared > 0, "{file}: nothing compared");
}

const SEED: &str = seed_with_test_client!(
    r#"vaults:
  - name: Sanitized
  - name: REDACTED
"#
);

#[tokio::test]
async fn secret_crud_recorded_by_the_go_sdk_replays_with_the_same_shapes() {
    let h = Harness::start(SEED).await;
    replay(&h, "go-azsecrets-TestCRUD.json").await;
}

#[tokio::test]
async fn secret_version_listing_recorded_by_the_go_sdk_replays_with_the_same_shapes() {
    let h = Harness::start(SEED).await;
    replay(&h, "go-azsecrets-TestListSecretVersions.json").await;
}

#[tokio::test]
async fn out_content_type_on_a_plain_secret_is_refused_as_recorded() {
    let h = Harness::start(SEED).await;
    replay(&h, "go-azsecrets-TestGetSecretWithOutContentType.json").await;
}

#[tokio::test]
async fn rsa_key_crud_recorded_by_the_go_sdk_replays_with_the_same_shapes() {
    let h = Harness::start(SEED).await;
    replay(&h, "go-azkeys-TestCRUD-RSA.json").await;
}

#[tokio::test]
async fn ec_key_crud_recorded_by_the_go_sdk_replays_with_the_same_shapes() {
    let h = Harness::start(SEED).await;
    replay(&h, "go-azkeys-TestCRUD-EC.json").await;
}

#[tokio::test]
async fn pem_certificate_create_download_and_import_recorded_by_the_cpp_sdk_replays() {
    let h = Harness::start(SEED).await;
    replay(&h, "cpp-certificates-DownloadImportPem.json").await;
}

#[tokio::test]
async fn pfx_certificate_create_download_and_import_recorded_by_the_cpp_sdk_replays() {
    let h = Harness::start(SEED).await;
    replay(&h, "cpp-certificates-DownloadImportPkcs.json").await;
}

#[tokio::test]
async fn a_pfx_import_recorded_by_the_go_sdk_replays_with_the_same_shapes() {
    let h = Harness::start(SEED).await;
    replay(&h, "go-azcertificates-TestImportCertificate.json").await;
}

#[tokio::test]
async fn the_recorded_imds_answer_has_the_same_fields_and_string_numbers() {
    let rec = recording("go-azidentity-TestManagedIdentityCredential_IMDSLive-client_ID.json");
    let entry = &rec["Entries"][0];
    // The recorded host is masked as `Sanitized.254.169.254`, which is no URL host: keep the
    // path and query only.
    let recorded_uri = entry["RequestUri"].as_str().expect("uri");
    let path_and_query = &recorded_uri[recorded_uri.find("/metadata/").expect("path")..];
    let uri = url::Url::parse(&format!("http://imds.invalid{path_and_query}")).expect("url");
    let client_id = uri
        .query_pairs()
        .find(|(k, _)| k == "client_id")
        .map(|(_, v)| v.into_owned())
        .expect("client_id");
    let seed = format!("{SEED}managedIdentities:\n  - clientId: {client_id}\n");
    let h = Harness::start_with(&seed, |c| {
        c.identity_listen = Some(([127, 0, 0, 1], 0).into());
    })
    .await;
    let url = format!(
        "http://{}{}?{}",
        h.vault.identity_addr().expect("identity"),
        uri.path(),
        uri.query().expect("query")
    );
    let resp = reqwest::Client::new()
        .get(url)
        .header("Metadata", "true")
        .send()
        .await
        .expect("imds");
    assert_eq!(
        u64::from(resp.status().as_u16()),
        entry["StatusCode"].as_u64().expect("status")
    );
    let ours: Value = resp.json().await.expect("json");
    let mut problems = Vec::new();
    same_shape(&entry["ResponseBody"], &ours, "body", &mut problems);
    assert!(problems.is_empty(), "{problems:#?}");
}

#[tokio::test]
async fn the_recorded_openid_configuration_and_assertion_token_answer_have_the_same_shapes() {
    let rec = recording(
        "go-azidentity-TestClientAssertionCredential_Live-instance_discovery_disabled.json",
    );
    let entries = rec["Entries"].as_array().expect("entries");
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let seed = format!(
        "clients:\n  - clientId: fed-app\n    federatedCredentials:\n      - issuer: https://issuer.test\n        subject: sub-1\noidcIssuers:\n  - issuer: https://issuer.test\n    publicKeyPem: |\n      {}\nvaults:\n  - name: kv1\n",
        key.public_key_pem().trim().replace('\n', "\n      ")
    );
    // The tenant comes from the flag, overriding the seed's default.
    let h = Harness::start_with(&seed, |c| c.tenant = Some("fake-tenant".into())).await;
    let base = format!("https://login.microsoftonline.com:{}", h.port);

    let doc: Value = h
        .get_json(&format!(
            "{base}/fake-tenant/v2.0/.well-known/openid-configuration"
        ))
        .await;
    let mut problems = Vec::new();
    same_shape(&entries[0]["ResponseBody"], &doc, "openid", &mut problems);

    let now = common_now();
    let assertion = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256),
        &json!({"iss": "https://issuer.test", "sub": "sub-1", "aud": "api://AzureADTokenExchange", "exp": now + 600, "nbf": now}),
        &jsonwebtoken::EncodingKey::from_ec_pem(key.serialize_pem().as_bytes()).expect("key"),
    )
    .expect("sign");
    let resp = h
        .client
        .post(format!("{base}/fake-tenant/oauth2/v2.0/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "fed-app"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion.as_str()),
            ("scope", "https://vault.azure.net/.default"),
        ])
        .send()
        .await
        .expect("token");
    assert_eq!(resp.status(), 200);
    let token: Value = resp.json().await.expect("json");
    same_shape(&entries[1]["ResponseBody"], &token, "token", &mut problems);
    assert!(problems.is_empty(), "{problems:#?}");
}

fn common_now() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("time")
            .as_secs(),
    )
    .expect("secs")
}

#[tokio::test]
async fn an_imported_certificate_reports_the_usages_and_validity_the_service_reported() {
    let rec = recording("go-azcertificates-TestImportCertificate.json");
    let entry = rec["Entries"]
        .as_array()
        .expect("entries")
        .iter()
        .find(|e| e["StatusCode"] == 200 && e["RequestMethod"] == "POST")
        .expect("import");
    let h = Harness::start(SEED).await;
    let token = h.token().await;
    let (status, _, ours) = h
        .call(
            Method::POST,
            "sanitized",
            "/certificates/replayed/import?api-version=7.5",
            Some(&token),
            Some(entry["RequestBody"].clone()),
        )
        .await;
    assert_eq!(status, 200, "{ours}");
    // The same certificate, hence the same thumbprint and the same facts read from it.
    assert_eq!(ours["x5t"], entry["ResponseBody"]["x5t"]);
    assert_eq!(ours["attributes"]["enabled"], false);
    let recorded = &entry["ResponseBody"]["policy"]["x509_props"];
    let ours = &ours["policy"]["x509_props"];
    for field in ["ekus", "key_usage", "validity_months", "basic_constraints"] {
        assert_eq!(ours[field], recorded[field], "x509_props.{field}");
    }
}

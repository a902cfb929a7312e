//! The Key Vault data plane over real HTTPS against an in-process dev vault: reads, paging,
//! writes, keys, certificates, errors, policies, soft delete and multi-vault routing.

use crate::common::{Harness, V, version_of};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use keyvol_devvault::crypto::{self, CertMaterial, Curve, KeySpec, NewCertificate};
use reqwest::Method;
use serde_json::{Value, json};

const SEED: &str = seed_with_test_client!(
    r#"  - clientId: reader
    clientSecret: reader-secret
vaults:
  - name: kv1
    accessPolicies:
      - identity: test-client
        secrets: [all]
        keys: [all]
        certificates: [all]
      - identity: reader
        secrets: [get]
    secrets:
      - name: plain
        contentType: text/plain
        value: hello
      - name: disabled
        value: hidden
        enabled: false
      - name: expired
        value: stale
        exp: 1000
  - name: kv2
    secrets:
      - name: plain
        value: from-kv2
"#
);

#[tokio::test]
async fn the_latest_secret_is_served_with_and_without_the_trailing_slash_and_by_version() {
    let h = Harness::start(SEED).await;
    let t = h.token().await;
    let (s1, b1) = h.get("kv1", &format!("/secrets/plain?{V}"), &t).await;
    let (s2, b2) = h.get("kv1", &format!("/secrets/plain/?{V}"), &t).await;
    assert_eq!((s1, s2), (200, 200));
    assert_eq!(b1, b2);
    assert_eq!(b1["value"], "hello");
    assert_eq!(b1["contentType"], "text/plain");
    let version = version_of(&b1["id"]);
    assert_eq!(version.len(), 32);
    assert!(b1["id"].as_str().expect("id").starts_with(&format!(
        "https://kv1.vault.azure.net:{}/secrets/plain/",
        h.port
    )));
    assert!(b1["attributes"]["created"].is_i64());
    assert_eq!(b1["attributes"]["recoveryLevel"], "Recoverable+Purgeable");
    assert!(b1.get("tags").is_none(), "no tags member without tags");
    let (s3, b3) = h
        .get("kv1", &format!("/secrets/plain/{version}?{V}"), &t)
        .await;
    assert_eq!((s3, &b3["value"]), (200, &json!("hello")));
}

#[tokio::test]
async fn vaults_are_chosen_by_the_host_name() {
    let h = Harness::start(SEED).await;
    let t = h.token().await;
    assert_eq!(
        h.get("kv1", &format!("/secrets/plain?{V}"), &t).await.1["value"],
        "hello"
    );
    assert_eq!(
        h.get("kv2", &format!("/secrets/plain?{V}"), &t).await.1["value"],
        "from-kv2"
    );
}

#[tokio::test]
async fn version_lists_page_through_next_links_without_values() {
    let h = Harness::start(SEED).await;
    let t = h.token().await;
    let mut made = Vec::new();
    for i in 0..5 {
        let (s, b) = h
            .send(
                Method::PUT,
                "/secrets/paged",
                &t,
                Some(json!({"value": format!("v{i}"), "tags": {"n": i.to_string()}})),
            )
            .await;
        assert_eq!(s, 200);
        assert_eq!(b["value"], format!("v{i}"));
        made.push(version_of(&b["id"]));
    }
    let mut seen = Vec::new();
    let mut url = format!(
        "{}/secrets/paged/versions?{V}&maxresults=2",
        h.vault_url("kv1")
    );
    let mut pages = 0;
    loop {
        let resp = h.get_with(&url, &t).await;
        assert_eq!(resp.status(), 200);
        let page: Value = resp.json().await.expect("json");
        pages += 1;
        for item in page["value"].as_array().expect("value") {
            assert!(item.get("value").is_none(), "list items carry no value");
            seen.push(version_of(&item["id"]));
        }
        match page["nextLink"].as_str() {
            Some(next) => url = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    made.sort();
    assert_eq!(seen, made, "every version once, ordered by version id");
    let (s, b) = h
        .get(
            "kv1",
            &format!("/secrets/paged/versions?{V}&maxresults=26"),
            &t,
        )
        .await;
    assert_eq!((s, &b["error"]["code"]), (400, &json!("BadParameter")));
}

const LISTED: &str = seed_with_test_client!(
    r#"  - clientId: reader
    clientSecret: reader-secret
vaults:
  - name: kv1
    accessPolicies:
      - identity: test-client
        secrets: [all]
        keys: [all]
        certificates: [all]
      - identity: reader
        secrets: [get]
        keys: [list]
    secrets:
      - name: s-a
        value: a
      - name: s-b
        value: b
        enabled: false
      - name: s-c
        versions:
          - value: old
          - value: new-disabled
            enabled: false
      - name: s-d
        versions:
          - value: old-disabled
            enabled: false
          - value: new
      - name: s-e
        value: e
    keys:
      - name: k-a
      - name: k-b
        enabled: false
    certificates:
      - name: c-a
"#
);

/// Every item of a list route, following `nextLink`s; also the number of pages.
async fn list_all(h: &Harness, first: &str, token: &str) -> (Vec<Value>, usize) {
    let mut url = first.to_owned();
    let (mut items, mut pages) = (Vec::new(), 0);
    loop {
        let resp = h.get_with(&url, token).await;
        assert_eq!(resp.status(), 200, "{url}");
        let page: Value = resp.json().await.expect("json");
        pages += 1;
        items.extend(page["value"].as_array().expect("value").iter().cloned());
        match page["nextLink"].as_str() {
            Some(next) => {
                assert!(next.starts_with(&h.vault_url("kv1")), "absolute: {next}");
                url = next.to_owned();
            }
            None => {
                assert!(page["nextLink"].is_null(), "the last page says null");
                return (items, pages);
            }
        }
    }
}

#[tokio::test]
async fn object_lists_page_through_next_links_with_each_objects_current_attributes() {
    let h = Harness::start(LISTED).await;
    let t = h.token().await;
    let base = h.vault_url("kv1");
    let (items, pages) = list_all(&h, &format!("{base}/secrets?{V}&maxresults=2"), &t).await;
    // Five secrets plus the certificate's managed one, two per page.
    assert_eq!(pages, 3);
    let listed: Vec<(String, bool)> = items
        .iter()
        .map(|i| {
            assert!(i.get("value").is_none(), "list items carry no value");
            let id = i["id"].as_str().expect("id");
            let name = id
                .strip_prefix(&format!("{base}/secrets/"))
                .expect("unversioned id");
            assert!(!name.contains('/'), "no version in a list item: {id}");
            (
                name.to_owned(),
                i["attributes"]["enabled"].as_bool().expect("enabled"),
            )
        })
        .collect();
    let want: Vec<(String, bool)> = [
        ("c-a", true),
        ("s-a", true),
        ("s-b", false),
        ("s-c", false),
        ("s-d", true),
        ("s-e", true),
    ]
    .iter()
    .map(|(n, e)| ((*n).to_owned(), *e))
    .collect();
    assert_eq!(listed, want, "the current version's enabled attribute");
    let managed = items
        .iter()
        .find(|i| i["id"].as_str().is_some_and(|id| id.ends_with("/c-a")));
    assert_eq!(managed.expect("c-a")["managed"], json!(true));

    let (keys, pages) = list_all(&h, &format!("{base}/keys?{V}&maxresults=1"), &t).await;
    assert_eq!(pages, 3);
    let keys: Vec<(&str, bool)> = keys
        .iter()
        .map(|k| {
            (
                k["kid"]
                    .as_str()
                    .expect("kid")
                    .rsplit('/')
                    .next()
                    .expect("name"),
                k["attributes"]["enabled"].as_bool().expect("enabled"),
            )
        })
        .collect();
    assert_eq!(keys, [("c-a", true), ("k-a", true), ("k-b", false)]);
    let (certs, pages) = list_all(&h, &format!("{base}/certificates?{V}"), &t).await;
    assert_eq!((certs.len(), pages), (1, 1));
    assert_eq!(certs[0]["id"], json!(format!("{base}/certificates/c-a")));

    // Without maxresults a page holds up to 25; out of range is refused, as the service does.
    let (s, page) = h.get("kv1", &format!("/secrets?{V}"), &t).await;
    assert_eq!((s, page["value"].as_array().map(Vec::len)), (200, Some(6)));
    for bad in ["0", "26", "x"] {
        let (s, b) = h
            .get("kv1", &format!("/secrets?{V}&maxresults={bad}"), &t)
            .await;
        assert_eq!(
            (s, &b["error"]["code"]),
            (400, &json!("BadParameter")),
            "{bad}"
        );
    }

    // Listing needs the list permission: get alone is refused with AccessDenied.
    let reader = h.token_for("reader", "reader-secret").await;
    let (s, b) = h.get("kv1", &format!("/secrets?{V}"), &reader).await;
    assert_eq!(
        (s, &b["error"]["innererror"]["code"]),
        (403, &json!("AccessDenied"))
    );
    assert!(
        b["error"]["message"]
            .as_str()
            .expect("message")
            .contains("list"),
        "{b}"
    );
    let (s, _) = h.get("kv1", &format!("/keys?{V}"), &reader).await;
    assert_eq!(s, 200, "list on keys without get");
}

#[tokio::test]
async fn requests_without_a_token_get_the_challenge_naming_tenant_and_resource() {
    let h = Harness::start(SEED).await;
    let (s, headers, b) = h
        .call(
            Method::GET,
            "kv1",
            &format!("/secrets/plain/?{V}"),
            None,
            None,
        )
        .await;
    assert_eq!(s, 401);
    assert_eq!(b["error"]["code"], "Unauthorized");
    let challenge = headers["www-authenticate"].to_str().expect("header");
    assert_eq!(
        challenge,
        format!(
            "Bearer authorization=\"https://login.microsoftonline.com/{}\", resource=\"https://vault.azure.net:{}\"",
            crate::common::TENANT,
            h.port
        )
    );
}

#[tokio::test]
async fn errors_carry_the_services_statuses_and_codes() {
    let h = Harness::start(SEED).await;
    let t = h.token().await;
    let (s, b) = h.get("kv1", &format!("/secrets/nope?{V}"), &t).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (404, Some("SecretNotFound"))
    );
    assert!(
        b["error"]["message"]
            .as_str()
            .expect("msg")
            .starts_with("A secret with (name/id) nope was not found in this key vault.")
    );
    let (s, b) = h.get("kv1", &format!("/secrets/disabled?{V}"), &t).await;
    assert_eq!(s, 403);
    assert_eq!(b["error"]["code"], "Forbidden");
    assert_eq!(b["error"]["innererror"]["code"], "SecretDisabled");
    assert_eq!(
        b["error"]["message"],
        "Operation get is not allowed on a disabled secret."
    );
    let (s, b) = h.get("kv1", "/secrets/plain", &t).await;
    assert_eq!((s, &b["error"]["code"]), (400, &json!("BadParameter")));
    let (s, b) = h.get("kv1", "/secrets/plain?api-version=9.9", &t).await;
    assert_eq!((s, &b["error"]["code"]), (400, &json!("BadParameter")));
    for v in [
        "7.0",
        "7.6",
        "2016-10-01",
        "2025-07-01",
        "2026-04-01",
        "7.6-preview.2",
    ] {
        let (s, _) = h
            .get("kv1", &format!("/secrets/plain?api-version={v}"), &t)
            .await;
        assert_eq!(s, 200, "api-version {v}");
    }
}

#[tokio::test]
async fn access_policies_deny_what_they_do_not_grant() {
    let h = Harness::start(SEED).await;
    let reader = h.token_for("reader", "reader-secret").await;
    assert_eq!(
        h.get("kv1", &format!("/secrets/plain?{V}"), &reader)
            .await
            .0,
        200
    );
    let (s, b) = h.get("kv1", &format!("/secrets?{V}"), &reader).await;
    assert_eq!(s, 403);
    assert_eq!(b["error"]["innererror"]["code"], "AccessDenied");
    let msg = b["error"]["message"].as_str().expect("message");
    assert!(
        msg.contains("appid=reader;")
            && msg.contains("does not have secrets list permission on key vault 'kv1;"),
        "{msg}"
    );
    let (s, b) = h
        .send(
            Method::PUT,
            "/secrets/new",
            &reader,
            Some(json!({"value": "x"})),
        )
        .await;
    assert_eq!(
        (s, &b["error"]["innererror"]["code"]),
        (403, &json!("AccessDenied"))
    );
    // kv2 has no policies: everyone may do everything.
    assert_eq!(h.get("kv2", &format!("/secrets?{V}"), &reader).await.0, 200);
}

#[tokio::test]
async fn keys_are_created_with_the_asked_size_or_curve_and_only_public_members() {
    let h = Harness::start(SEED).await;
    let t = h.token().await;
    for bits in [2048usize, 3072, 4096] {
        let body = json!({"kty": "RSA", "key_size": bits, "attributes": {"exp": 4102444800i64}, "tags": {"k": "v"}});
        let (s, b) = h
            .send(
                Method::POST,
                &format!("/keys/rsa{bits}/create"),
                &t,
                Some(body),
            )
            .await;
        assert_eq!(s, 200, "{b}");
        let n = URL_SAFE_NO_PAD
            .decode(b["key"]["n"].as_str().expect("n"))
            .expect("base64url n");
        assert_eq!(n.len() * 8, bits);
        assert_eq!(b["key"]["e"], "AQAB");
        assert!(b["key"].get("d").is_none());
        assert_eq!(b["attributes"]["exp"], 4102444800i64);
        assert_eq!(b["tags"]["k"], "v");
    }
    for (crv, len) in [("P-256", 32), ("P-384", 48), ("P-521", 66)] {
        let (s, b) = h
            .send(
                Method::POST,
                &format!("/keys/ec-{}/create", &crv[2..]),
                &t,
                Some(json!({"kty": "EC", "crv": crv})),
            )
            .await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(b["key"]["crv"], crv);
        assert_eq!(b["key"]["key_ops"], json!(["sign", "verify"]));
        let x = URL_SAFE_NO_PAD
            .decode(b["key"]["x"].as_str().expect("x"))
            .expect("x");
        assert_eq!(x.len(), len);
        let (s, got) = h
            .get(
                "kv1",
                &format!("/keys/ec-{}/?{V}", &crv[2..]),
                &h.token().await,
            )
            .await;
        assert_eq!((s, &got["key"]["x"]), (200, &b["key"]["x"]));
    }
    let (s, b) = h
        .send(
            Method::POST,
            "/keys/k1/create",
            &t,
            Some(json!({"kty": "EC", "crv": "P-256K"})),
        )
        .await;
    assert_eq!((s, &b["error"]["code"]), (400, &json!("BadParameter")));
    let (s, b) = h.get("kv1", &format!("/keys/none?{V}"), &t).await;
    assert_eq!((s, &b["error"]["code"]), (404, &json!("KeyNotFound")));
}

fn chained() -> CertMaterial {
    crypto::with_chain(&NewCertificate {
        subject: "CN=imported.example".into(),
        dns_names: vec!["imported.example".into()],
        validity_months: 24,
        key: KeySpec::Ec(Curve::P384),
    })
    .expect("chain")
}

fn pfx_with_password(m: &CertMaterial, password: &str) -> Vec<u8> {
    use p12_keystore::{KeyStore, KeyStoreEntry, PrivateKeyChain};
    let key = p12_keystore::PrivateKey::from_der(&m.key_pkcs8).expect("key");
    let certs = m
        .chain
        .iter()
        .map(|d| p12_keystore::Certificate::from_der(d).expect("cert"))
        .collect::<Vec<_>>();
    let mut store = KeyStore::new();
    store.add_entry(
        "k",
        KeyStoreEntry::PrivateKeyChain(PrivateKeyChain::new(b"id".to_vec(), key, certs)),
    );
    store.writer(password).write().expect("pfx")
}

#[tokio::test]
async fn an_imported_pfx_becomes_a_certificate_a_managed_key_and_a_managed_pfx_secret() {
    let h = Harness::start(SEED).await;
    let t = h.token().await;
    let m = chained();
    let pfx = pfx_with_password(&m, "s3cret");
    let (s, cert) = h
        .send(
            Method::POST,
            "/certificates/web/import",
            &t,
            Some(json!({"value": STANDARD.encode(&pfx), "pwd": "s3cret"})),
        )
        .await;
    assert_eq!(s, 200, "{cert}");
    let version = version_of(&cert["id"]);
    assert_eq!(version_of(&cert["kid"]), version);
    assert_eq!(version_of(&cert["sid"]), version);
    assert_eq!(
        STANDARD
            .decode(cert["cer"].as_str().expect("cer"))
            .expect("b64"),
        m.chain[0]
    );
    assert_eq!(cert["x5t"], crypto::x5t(&m.chain[0]));
    assert_eq!(cert["policy"]["issuer"]["name"], "Unknown");
    assert_eq!(
        cert["policy"]["secret_props"]["contentType"],
        "application/x-pkcs12"
    );
    let (s, secret) = h
        .get("kv1", &format!("/secrets/web/{version}?{V}"), &t)
        .await;
    assert_eq!(s, 200);
    assert_eq!(secret["managed"], true);
    assert_eq!(secret["kid"], cert["kid"]);
    assert_eq!(secret["contentType"], "application/x-pkcs12");
    let back = CertMaterial::from_pfx(
        &STANDARD
            .decode(secret["value"].as_str().expect("value"))
            .expect("b64"),
        "",
    )
    .expect("secret is a PFX with an empty password");
    assert_eq!(back, m, "key and whole chain, leaf first");
    let (s, pem) = h
        .get(
            "kv1",
            "/secrets/web?api-version=2025-07-01&outContentType=application/x-pem-file",
            &t,
        )
        .await;
    assert_eq!(s, 200, "{pem}");
    assert_eq!(pem["contentType"], "application/x-pem-file");
    assert_eq!(
        pem["value"].as_str().expect("pem"),
        m.to_pem(),
        "PFX converted to PEM"
    );
    let (s, key) = h.get("kv1", &format!("/keys/web?{V}"), &t).await;
    assert_eq!((s, &key["managed"]), (200, &json!(true)));
    assert_eq!(key["key"]["crv"], "P-384");
    let (s, b) = h
        .send(
            Method::POST,
            "/certificates/bad/import",
            &t,
            Some(json!({"value": STANDARD.encode(&pfx), "pwd": "wrong"})),
        )
        .await;
    assert_eq!((s, &b["error"]["code"]), (400, &json!("BadParameter")));
}

#[tokio::test]
async fn an_imported_pem_with_a_chain_backs_a_pem_secret_key_first_then_leaf_first() {
    let h = Harness::start(SEED).await;
    let t = h.token().await;
    let m = chained();
    // Certificates first and the key last: the vault reorders.
    let mut pem = String::new();
    for c in m.chain.iter().rev() {
        pem.push_str(&crypto::pem_block("CERTIFICATE", c));
    }
    pem.push_str(&crypto::pem_block("PRIVATE KEY", &m.key_pkcs8));
    let policy = json!({"secret_props": {"contentType": "application/x-pem-file"}});
    for (name, value) in [("raw-pem", pem.clone()), ("b64-pem", STANDARD.encode(&pem))] {
        let (s, cert) = h
            .send(
                Method::POST,
                &format!("/certificates/{name}/import"),
                &t,
                Some(json!({"value": value, "policy": policy})),
            )
            .await;
        assert_eq!(s, 200, "{cert}");
        let (s, secret) = h.get("kv1", &format!("/secrets/{name}?{V}"), &t).await;
        assert_eq!(s, 200);
        assert_eq!(secret["contentType"], "application/x-pem-file");
        assert_eq!(secret["value"].as_str().expect("value"), m.to_pem());
    }
}

#[tokio::test]
async fn creating_a_certificate_answers_202_and_the_first_poll_completes_it() {
    let h = Harness::start(SEED).await;
    let t = h.token().await;
    let (s, headers, op) = h
        .call(
            Method::POST,
            "kv1",
            &format!("/certificates/made/create?{V}"),
            Some(&t),
            Some(json!({"policy": {
                "key_props": {"kty": "EC", "crv": "P-256"},
                "secret_props": {"contentType": "application/x-pem-file"},
                "x509_props": {"subject": "CN=made", "sans": {"dns_names": ["made.example"]}, "validity_months": 6},
                "issuer": {"name": "Self"}
            }})),
        )
        .await;
    assert_eq!(s, 202, "{op}");
    assert_eq!(op["status"], "inProgress");
    assert_eq!(headers["retry-after"], "10");
    assert!(
        headers["location"]
            .to_str()
            .expect("location")
            .contains("/certificates/made/pending?api-version=7.4&request_id=")
    );
    let (s, done) = h
        .get("kv1", &format!("/certificates/made/pending?{V}"), &t)
        .await;
    assert_eq!(s, 200);
    assert_eq!(done["status"], "completed");
    assert!(
        done["target"]
            .as_str()
            .expect("target")
            .ends_with("/certificates/made")
    );
    let (s, cert) = h.get("kv1", &format!("/certificates/made?{V}"), &t).await;
    assert_eq!(s, 200);
    assert_eq!(cert["policy"]["x509_props"]["subject"], "CN=made");
    assert_eq!(cert["policy"]["x509_props"]["validity_months"], 6);
    let (_, secret) = h.get("kv1", &format!("/secrets/made?{V}"), &t).await;
    let pem = secret["value"].as_str().expect("pem");
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
    assert_eq!(
        CertMaterial::from_pem(pem).expect("pem").chain[0],
        STANDARD
            .decode(cert["cer"].as_str().expect("cer"))
            .expect("b64")
    );
    let (s, policy) = h
        .get("kv1", &format!("/certificates/made/policy?{V}"), &t)
        .await;
    assert_eq!((s, &policy["key_props"]["crv"]), (200, &json!("P-256")));
}

#[tokio::test]
async fn patching_attributes_disables_and_retags_and_certificates_carry_it_to_their_secret() {
    let h = Harness::start(SEED).await;
    let t = h.token().await;
    let change = json!({"attributes": {"enabled": false, "nbf": 1000, "exp": 4102444800i64}, "tags": {"t": "1"}});
    let (s, b) = h
        .send(Method::PATCH, "/secrets/plain/", &t, Some(change))
        .await;
    assert_eq!(s, 200);
    assert!(b.get("value").is_none(), "PATCH answers without the value");
    assert_eq!(b["tags"]["t"], "1");
    assert_eq!(b["attributes"]["nbf"], 1000);
    assert_eq!(
        h.get("kv1", &format!("/secrets/plain?{V}"), &t).await.0,
        403
    );
    let version = version_of(&b["id"]);
    h.send(
        Method::PATCH,
        &format!("/secrets/plain/{version}"),
        &t,
        Some(json!({"attributes": {"enabled": true}})),
    )
    .await;
    assert_eq!(
        h.get("kv1", &format!("/secrets/plain?{V}"), &t).await.0,
        200
    );

    let pem = chained().to_pem();
    h.send(
        Method::POST,
        "/certificates/c1/import",
        &t,
        Some(json!({"value": pem})),
    )
    .await;
    let (s, b) = h
        .send(
            Method::PATCH,
            "/certificates/c1/",
            &t,
            Some(json!({"attributes": {"enabled": false}})),
        )
        .await;
    assert_eq!((s, &b["attributes"]["enabled"]), (200, &json!(false)));
    let (s, b) = h.get("kv1", &format!("/secrets/c1?{V}"), &t).await;
    assert_eq!(
        (s, &b["error"]["innererror"]["code"]),
        (403, &json!("SecretDisabled"))
    );
    let (s, b) = h.get("kv1", &format!("/certificates/c1?{V}"), &t).await;
    assert_eq!(
        (s, &b["error"]["innererror"]["code"]),
        (403, &json!("CertificateDisabled"))
    );
}

#[tokio::test]
async fn deleted_objects_are_recoverable_block_their_name_and_purge_frees_it() {
    let h = Harness::start(SEED).await;
    let t = h.token().await;
    let (s, d) = h.send(Method::DELETE, "/secrets/plain", &t, None).await;
    assert_eq!(s, 200);
    assert!(
        d["recoveryId"]
            .as_str()
            .expect("recoveryId")
            .ends_with("/deletedsecrets/plain")
    );
    assert!(d["deletedDate"].is_i64() && d["scheduledPurgeDate"].is_i64());
    assert!(d.get("value").is_none());
    assert_eq!(
        h.get("kv1", &format!("/secrets/plain?{V}"), &t).await.0,
        404
    );
    assert_eq!(
        h.get("kv1", &format!("/deletedsecrets/plain?{V}"), &t)
            .await
            .0,
        200
    );
    let reuse = || {
        h.send(
            Method::PUT,
            "/secrets/plain",
            &t,
            Some(json!({"value": "again"})),
        )
    };
    let (s, b) = reuse().await;
    assert_eq!((s, &b["error"]["code"]), (409, &json!("Conflict")));
    let (s, _) = h
        .send(Method::POST, "/deletedsecrets/plain/recover", &t, None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        h.get("kv1", &format!("/secrets/plain?{V}"), &t).await.1["value"],
        "hello"
    );
    h.send(Method::DELETE, "/secrets/plain", &t, None).await;
    let (s, _) = h
        .send(Method::DELETE, "/deletedsecrets/plain", &t, None)
        .await;
    assert_eq!(s, 204);
    let (s, b) = h
        .get("kv1", &format!("/deletedsecrets/plain?{V}"), &t)
        .await;
    assert_eq!(
        (s, &b["error"]["message"]),
        (404, &json!("Deleted Secret not found: plain"))
    );
    assert_eq!(reuse().await.0, 200, "a purged name is free again");
}

#[tokio::test]
async fn deleting_a_certificate_takes_its_key_and_secret_with_it() {
    let h = Harness::start(SEED).await;
    let t = h.token().await;
    h.send(
        Method::POST,
        "/certificates/gone/import",
        &t,
        Some(json!({"value": chained().to_pem()})),
    )
    .await;
    let (s, _) = h.send(Method::DELETE, "/certificates/gone", &t, None).await;
    assert_eq!(s, 200);
    for path in ["/certificates/gone", "/keys/gone", "/secrets/gone"] {
        let (s, b) = h.get("kv1", &format!("{path}?{V}"), &t).await;
        assert_eq!(s, 404, "{path}: {b}");
    }
    let (s, b) = h.get("kv1", &format!("/certificates/gone?{V}"), &t).await;
    assert_eq!(
        (s, &b["error"]["code"]),
        (404, &json!("CertificateNotFound"))
    );
}

#[tokio::test]
async fn a_configured_dns_suffix_serves_vaults_and_names_itself_in_the_challenge() {
    let h = Harness::start_with(SEED, |c| c.vault_suffix = "vault.usgovcloudapi.net".into()).await;
    let url = format!(
        "https://kv1.vault.usgovcloudapi.net:{}/secrets/plain?{V}",
        h.port
    );
    let resp = h.client.get(&url).send().await.expect("challenge");
    assert_eq!(resp.status(), 401);
    let challenge = resp.headers()["www-authenticate"]
        .to_str()
        .expect("header")
        .to_owned();
    assert!(
        challenge.ends_with(&format!(
            "resource=\"https://vault.usgovcloudapi.net:{}\"",
            h.port
        )),
        "{challenge}"
    );
    // A token for the public cloud's resource is the wrong audience here.
    let public = h.token().await;
    let resp = h.get_with(&url, &public).await;
    assert_eq!(resp.status(), 401);
    let token_resp: Value = h
        .client
        .post(format!(
            "https://login.microsoftonline.com:{}/{}/oauth2/v2.0/token",
            h.port,
            crate::common::TENANT
        ))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", crate::common::CLIENT_ID),
            ("client_secret", crate::common::CLIENT_SECRET),
            ("scope", "https://vault.usgovcloudapi.net/.default"),
        ])
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("json");
    let gov = token_resp["access_token"].as_str().expect("token");
    let body: Value = h.get_with(&url, gov).await.json().await.expect("json");
    assert_eq!(body["value"], "hello");
}

#[tokio::test]
async fn an_imported_jwk_keeps_its_operations_and_its_private_members_stay_inside() {
    use aws_lc_rs::encoding::{AsBigEndian, EcPrivateKeyBin};
    let h = Harness::start(SEED).await;
    let t = h.token().await;
    let pkcs8 = KeySpec::Ec(Curve::P256).generate().expect("key");
    let public = crypto::jwk_from_pkcs8(&pkcs8).expect("jwk");
    let pair = aws_lc_rs::signature::EcdsaKeyPair::from_pkcs8(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        &pkcs8,
    )
    .expect("pair");
    let d: EcPrivateKeyBin<'_> = pair.private_key().as_be_bytes().expect("d");
    let (s, b) = h
        .send(
            Method::PUT,
            "/keys/imported",
            &t,
            Some(json!({"key": {
                "kty": "EC", "crv": "P-256", "x": public.x, "y": public.y,
                "d": URL_SAFE_NO_PAD.encode(d.as_ref()), "key_ops": ["sign"]
            }})),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["key"]["key_ops"], json!(["sign"]));
    assert_eq!(b["key"]["x"], json!(public.x));
    assert!(b["key"].get("d").is_none());
    let (s, b) = h
        .send(
            Method::PUT,
            "/keys/public-only",
            &t,
            Some(json!({"key": {"kty": "EC", "crv": "P-256", "x": public.x, "y": public.y}})),
        )
        .await;
    assert_eq!((s, &b["error"]["code"]), (400, &json!("BadParameter")));
}

/// Key Vault applies `exp` and `nbf` to cryptographic operations only; reads answer 200 with the
/// value (issue 16).
#[tokio::test]
async fn expired_and_not_yet_valid_objects_are_served_with_their_values() {
    let h = Harness::start(SEED).await;
    let t = h.token().await;
    let (s, b) = h.get("kv1", &format!("/secrets/expired?{V}"), &t).await;
    assert_eq!((s, &b["value"]), (200, &json!("stale")));
    assert_eq!(b["attributes"]["exp"], 1000);
    let future = keyvol_devvault::store::unix_now() + 86_400;
    let (s, _) = h
        .send(
            Method::PUT,
            "/secrets/later",
            &t,
            Some(json!({"value": "soon", "attributes": {"nbf": future}})),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        h.get("kv1", &format!("/secrets/later?{V}"), &t).await.1["value"],
        "soon"
    );
    let (s, _) = h
        .send(
            Method::POST,
            "/keys/old-key/create",
            &t,
            Some(json!({"kty": "EC", "attributes": {"exp": 1000}})),
        )
        .await;
    assert_eq!(s, 200);
    let (s, b) = h.get("kv1", &format!("/keys/old-key?{V}"), &t).await;
    assert_eq!((s, &b["attributes"]["exp"]), (200, &json!(1000)));
}

/// Every route that takes an object name answers 400 BadParameter for a name outside
/// `0-9a-zA-Z-`, as the service does, instead of 404 (issue 16).
#[tokio::test]
async fn an_invalid_name_is_a_bad_parameter_on_every_named_route() {
    let h = Harness::start(SEED).await;
    let t = h.token().await;
    let body = Some(json!({}));
    let mut routes = Vec::new();
    for kind in ["secrets", "keys", "certificates"] {
        routes.extend([
            (Method::GET, format!("/{kind}/bad_name")),
            (Method::GET, format!("/{kind}/bad_name/")),
            (
                Method::GET,
                format!("/{kind}/bad_name/00112233445566778899aabbccddeeff"),
            ),
            (Method::GET, format!("/{kind}/bad_name/versions")),
            (Method::PATCH, format!("/{kind}/bad_name/")),
            (
                Method::PATCH,
                format!("/{kind}/bad_name/00112233445566778899aabbccddeeff"),
            ),
            (Method::DELETE, format!("/{kind}/bad_name")),
            (Method::GET, format!("/deleted{kind}/bad_name")),
            (Method::DELETE, format!("/deleted{kind}/bad_name")),
            (Method::POST, format!("/deleted{kind}/bad_name/recover")),
        ]);
    }
    routes.extend([
        (Method::PUT, "/secrets/bad_name".to_owned()),
        (Method::PUT, "/keys/bad_name".to_owned()),
        (Method::POST, "/keys/bad_name/create".to_owned()),
        (Method::POST, "/certificates/bad_name/import".to_owned()),
        (Method::POST, "/certificates/bad_name/create".to_owned()),
        (Method::GET, "/certificates/bad_name/pending".to_owned()),
        (Method::GET, "/certificates/bad_name/policy".to_owned()),
    ]);
    for (method, path) in routes {
        let (s, b) = h.send(method.clone(), &path, &t, body.clone()).await;
        assert_eq!(
            (s, &b["error"]["code"], &b["error"]["message"]),
            (
                400,
                &json!("BadParameter"),
                &json!("The request URI contains an invalid name: bad_name")
            ),
            "{method} {path}"
        );
    }
    // 128 characters is one too many.
    let long = "a".repeat(128);
    let (s, b) = h.get("kv1", &format!("/secrets/{long}?{V}"), &t).await;
    assert_eq!((s, &b["error"]["code"]), (400, &json!("BadParameter")));
}

/// Values over 25,600 characters answer 400 BadParameter / SecretTooLarge; content types over
/// 255 characters answer 400 BadParameter, on set and on update (issue 16).
#[tokio::test]
async fn secret_values_and_content_types_are_held_to_the_services_limits() {
    let h = Harness::start(SEED).await;
    let t = h.token().await;
    let put = |body: Value| {
        let h = &h;
        let t = &t;
        async move {
            let (s, b) = h.send(Method::PUT, "/secrets/sized", t, Some(body)).await;
            (s, b)
        }
    };
    let (s, _) = put(json!({"value": "x".repeat(25_600)})).await;
    assert_eq!(s, 200, "exactly the limit is accepted");
    for size in [25_601, 300 * 1024] {
        let (s, b) = put(json!({"value": "x".repeat(size)})).await;
        assert_eq!(
            (s, &b["error"]["code"], &b["error"]["innererror"]["code"]),
            (400, &json!("BadParameter"), &json!("SecretTooLarge")),
            "{size}"
        );
        assert_eq!(
            b["error"]["message"],
            "Secret is beyond the maximum permitted length of 25600 characters."
        );
    }
    let (s, _) = put(json!({"value": "v", "contentType": "c".repeat(255)})).await;
    assert_eq!(s, 200);
    let (s, b) = put(json!({"value": "v", "contentType": "c".repeat(256)})).await;
    assert_eq!((s, &b["error"]["code"]), (400, &json!("BadParameter")));
    assert!(b["error"].get("innererror").is_none());
    let (s, b) = h
        .send(
            Method::PATCH,
            "/secrets/sized/",
            &t,
            Some(json!({"contentType": "c".repeat(256)})),
        )
        .await;
    assert_eq!((s, &b["error"]["code"]), (400, &json!("BadParameter")));
    let (_, b) = h.get("kv1", &format!("/secrets/sized?{V}"), &t).await;
    assert_eq!(
        b["contentType"],
        "c".repeat(255),
        "the refused update changed nothing"
    );
}

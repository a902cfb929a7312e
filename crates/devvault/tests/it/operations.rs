//! Operating a dev vault: fault rules set at start and through the admin API (429 bursts with
//! Retry-After, injected errors, latency, dropped connections), the request counters, and the
//! file-backed store keeping objects, the CA and tokens across restarts.

use std::time::{Duration, Instant};

use crate::common::{Harness, V};
use keyvol_devvault::faults::FaultRule;
use reqwest::Method;
use serde_json::{Value, json};

const SEED: &str = seed_with_test_client!(
    r#"vaults:
  - name: kv1
    secrets:
      - name: plain
        value: hello
"#
);

#[tokio::test]
async fn a_429_burst_set_through_the_admin_api_answers_exactly_its_count_with_retry_after() {
    let h = Harness::start(SEED).await;
    let t = h.token().await;
    h.admin(
        Method::PUT,
        "faults",
        Some(json!({"rules": [{"route": "GET /secrets/*", "throttleCount": 2, "retryAfterSecs": 3}]})),
    )
    .await;
    for _ in 0..2 {
        let (s, headers, b) = h
            .call(
                Method::GET,
                "kv1",
                &format!("/secrets/plain?{V}"),
                Some(&t),
                None,
            )
            .await;
        assert_eq!(s, 429);
        assert_eq!(headers["retry-after"], "3");
        assert_eq!(b["error"]["code"], "Throttled");
    }
    assert_eq!(
        h.get("kv1", &format!("/secrets/plain?{V}"), &t).await.0,
        200
    );
    let rules = h.admin(Method::GET, "faults", None).await;
    assert_eq!(rules["rules"][0]["throttleCount"], 0);
}

#[tokio::test]
async fn counters_report_requests_by_route_status_and_identity() {
    let h = Harness::start(SEED).await;
    let t = h.token().await;
    h.get("kv1", &format!("/secrets/plain?{V}"), &t).await;
    h.get("kv1", &format!("/secrets/plain/?{V}"), &t).await;
    h.get("kv1", &format!("/secrets/missing?{V}"), &t).await;
    h.call(
        Method::GET,
        "kv1",
        &format!("/secrets/plain?{V}"),
        None,
        None,
    )
    .await;
    let c = h.admin(Method::GET, "counters", None).await;
    assert_eq!(c["byRoute"]["GET /secrets/{name}"], 3);
    assert_eq!(c["byRoute"]["GET /secrets/{name}/"], 1);
    assert_eq!(c["byRoute"]["POST /{tenant}/oauth2/v2.0/token"], 1);
    assert_eq!(
        c["byIdentity"]["test-client"], 4,
        "token + three authorised reads"
    );
    assert_eq!(c["byIdentity"]["-"], 1, "the unauthenticated read");
    assert_eq!(c["byStatus"]["404"], 1);
    assert_eq!(c["byStatus"]["401"], 1);
    assert_eq!(c["total"], 5);
    assert_eq!(h.vault.counters().count_route("GET /secrets/{name}"), 3);
    h.admin(Method::DELETE, "counters", None).await;
    assert_eq!(h.admin(Method::GET, "counters", None).await["total"], 0);
}

#[tokio::test]
async fn rules_given_at_start_add_latency_fail_requests_and_drop_connections() {
    let h = Harness::start_with(SEED, |c| {
        c.faults = vec![
            FaultRule::parse_spec("GET /keys/*:errorRate=1,errorStatus=500").expect("rule"),
            FaultRule::parse_spec("GET /certificates/*:dropRate=1").expect("rule"),
            FaultRule::parse_spec("GET /secrets/*:latencyMs=300").expect("rule"),
        ];
    })
    .await;
    let t = h.token().await;
    let started = Instant::now();
    assert_eq!(
        h.get("kv1", &format!("/secrets/plain?{V}"), &t).await.0,
        200
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
    let (s, b) = h.get("kv1", &format!("/keys/any?{V}"), &t).await;
    assert_eq!(
        (s, &b["error"]["code"]),
        (500, &json!("InternalServerError"))
    );
    let dropped = async {
        let resp = h
            .client
            .get(format!("{}/certificates/any?{V}", h.vault_url("kv1")))
            .bearer_auth(&t)
            .send()
            .await?;
        resp.bytes().await
    }
    .await;
    assert!(dropped.is_err(), "the connection is dropped mid-answer");
    let c = h.admin(Method::GET, "counters", None).await;
    assert_eq!(
        c["byStatus"]["0"], 1,
        "dropped connections count as status 0"
    );
    h.admin(Method::DELETE, "faults", None).await;
    assert_eq!(h.get("kv1", &format!("/keys/any?{V}"), &t).await.0, 404);
}

#[tokio::test]
async fn bad_rules_are_refused_by_the_admin_api() {
    let h = Harness::start(SEED).await;
    let resp = h
        .client
        .put(format!("https://127.0.0.1:{}/_admin/faults", h.port))
        .json(&json!({"rules": [{"route": "*", "errorRate": 3}]}))
        .send()
        .await
        .expect("admin");
    assert_eq!(resp.status(), 400);
    let no_admin = Harness::start_with(SEED, |c| c.admin = false).await;
    let resp = no_admin
        .client
        .get(format!(
            "https://127.0.0.1:{}/_admin/counters",
            no_admin.port
        ))
        .send()
        .await
        .expect("admin");
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn a_data_directory_keeps_objects_the_ca_and_tokens_across_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_owned();
    let first = Harness::start_with(SEED, |c| c.data_dir = Some(data.clone())).await;
    let t = first.token().await;
    let (s, _) = first
        .send(
            Method::PUT,
            "/secrets/kept",
            &t,
            Some(json!({"value": "across restarts"})),
        )
        .await;
    assert_eq!(s, 200);
    first
        .send(
            Method::POST,
            "/keys/kept-key/create",
            &t,
            Some(json!({"kty": "EC"})),
        )
        .await;
    let (_, key_before) = first.get("kv1", &format!("/keys/kept-key?{V}"), &t).await;
    let ca = first.vault.ca_pem().to_owned();
    first.vault.shutdown().await;

    let second = Harness::start_with(SEED, |c| c.data_dir = Some(data.clone())).await;
    assert_eq!(
        second.vault.ca_pem(),
        ca,
        "clients keep trusting the same CA"
    );
    let (s, b) = second.get("kv1", &format!("/secrets/kept?{V}"), &t).await;
    assert_eq!(s, 200, "the old token still verifies: {b}");
    assert_eq!(b["value"], "across restarts");
    let (_, key_after) = second.get("kv1", &format!("/keys/kept-key?{V}"), &t).await;
    assert_eq!(
        (&key_after["key"]["x"], &key_after["key"]["y"]),
        (&key_before["key"]["x"], &key_before["key"]["y"])
    );
    let (_, seeded): (u16, Value) = second
        .get("kv1", &format!("/secrets/plain/versions?{V}"), &t)
        .await;
    assert_eq!(
        seeded["value"].as_array().map(Vec::len),
        Some(1),
        "the seed does not refill a stored vault"
    );
}

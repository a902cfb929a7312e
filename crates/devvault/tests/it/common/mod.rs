//! Test harness: an in-process dev vault on 127.0.0.1:0 and an HTTPS client that trusts its CA and
//! resolves the Azure host names to it.
#![allow(dead_code)]

use std::net::SocketAddr;

use keyvol_devvault::{DevVault, DevVaultConfig, RunningDevVault, Seed};
use serde_json::Value;

/// The api-version the tests speak, unless they test api-versions.
pub const V: &str = "api-version=7.4";

/// Tenant of the test seeds.
pub const TENANT: &str = "11111111-2222-3333-4444-555555555555";
/// Client of the test seeds.
pub const CLIENT_ID: &str = "test-client";
/// Its secret.
pub const CLIENT_SECRET: &str = "test-client-secret";

/// A seed: the test tenant and client ([`TENANT`], [`CLIENT_ID`], [`CLIENT_SECRET`]) followed
/// by `$rest` (more clients, then `vaults:`), as one `&'static str`.
#[allow(unused_macros)] // not every test file has a seed of this shape
macro_rules! seed_with_test_client {
    ($rest:literal) => {
        concat!(
            "tenantId: 11111111-2222-3333-4444-555555555555\n",
            "clients:\n",
            "  - clientId: test-client\n",
            "    clientSecret: test-client-secret\n",
            $rest
        )
    };
}

/// A running dev vault and a client for it.
pub struct Harness {
    pub vault: RunningDevVault,
    pub client: reqwest::Client,
    pub port: u16,
}

/// Names the client resolves to the dev vault.
pub const HOSTS: &[&str] = &[
    "login.microsoftonline.com",
    "kv1.vault.azure.net",
    "kv2.vault.azure.net",
    "sanitized.vault.azure.net",
    "redacted.vault.azure.net",
    "kv1.vault.usgovcloudapi.net",
];

pub fn client_for(addr: SocketAddr, ca_pem: &str) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .tls_certs_only(reqwest::Certificate::from_pem_bundle(ca_pem.as_bytes()).expect("pem"));
    for h in HOSTS {
        b = b.resolve(h, addr);
    }
    b.build().expect("client")
}

impl Harness {
    /// Starts a dev vault with `seed`, after `tweak` adjusts the config.
    pub async fn start_with(seed: &str, tweak: impl FnOnce(&mut DevVaultConfig)) -> Self {
        let mut config = DevVaultConfig::new(Seed::from_yaml(seed).expect("seed"));
        tweak(&mut config);
        let vault = DevVault::start(config).await.expect("dev vault starts");
        let client = client_for(vault.addr(), vault.ca_pem());
        let port = vault.addr().port();
        Self {
            vault,
            client,
            port,
        }
    }

    pub async fn start(seed: &str) -> Self {
        Self::start_with(seed, |_| {}).await
    }

    /// `https://<vault>.vault.azure.net:<port>`.
    pub fn vault_url(&self, vault: &str) -> String {
        format!("https://{vault}.vault.azure.net:{}", self.port)
    }

    /// Posts `form` to the v2.0 token endpoint of the test tenant.
    pub async fn token_request(&self, form: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .post(format!(
                "https://login.microsoftonline.com:{}/{TENANT}/oauth2/v2.0/token",
                self.port
            ))
            .form(form)
            .send()
            .await
            .expect("token request")
    }

    /// A v2.0 client-secret token for the vault resource.
    pub async fn token_for(&self, client_id: &str, secret: &str) -> String {
        let resp = self
            .token_request(&[
                ("grant_type", "client_credentials"),
                ("client_id", client_id),
                ("client_secret", secret),
                ("scope", "https://vault.azure.net/.default"),
            ])
            .await;
        assert_eq!(resp.status(), 200, "token for {client_id}");
        let body: Value = resp.json().await.expect("json");
        body["access_token"].as_str().expect("token").to_owned()
    }

    pub async fn token(&self) -> String {
        self.token_for(CLIENT_ID, CLIENT_SECRET).await
    }

    /// Sends a request to a vault path with a token; returns status, headers and JSON body.
    pub async fn call(
        &self,
        method: reqwest::Method,
        vault: &str,
        path_and_query: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let url = format!("{}{path_and_query}", self.vault_url(vault));
        let mut req = self.client.request(method, url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("body");
        let json = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, headers, json)
    }

    /// [`Harness::call`] on vault `kv1` at api-version [`V`] with a token, when the headers do
    /// not matter; `path` has no query.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let pq = format!("{path}?{V}");
        let (s, _, b) = self.call(method, "kv1", &pq, Some(token), body).await;
        (s, b)
    }

    pub async fn get(&self, vault: &str, pq: &str, token: &str) -> (u16, Value) {
        let (s, _, b) = self
            .call(reqwest::Method::GET, vault, pq, Some(token), None)
            .await;
        (s, b)
    }

    /// `GET url` (a whole URL, such as a `nextLink`) with a bearer token.
    pub async fn get_with(&self, url: &str, token: &str) -> reqwest::Response {
        self.client
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    /// `GET url` without a token; the body as JSON.
    pub async fn get_json(&self, url: &str) -> Value {
        let resp = self.client.get(url).send().await.expect("request");
        resp.json().await.expect("json")
    }

    /// The admin API on the HTTPS listener.
    pub async fn admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("https://127.0.0.1:{}/_admin/{path}", self.port);
        let mut req = self.client.request(method, url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("admin");
        assert!(
            resp.status().is_success(),
            "admin {path}: {}",
            resp.status()
        );
        resp.json().await.unwrap_or(Value::Null)
    }
}

/// The version id at the end of an object id.
pub fn version_of(id: &Value) -> String {
    id.as_str()
        .and_then(|s| s.rsplit('/').next())
        .expect("id")
        .to_owned()
}

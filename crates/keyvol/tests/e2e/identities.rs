//! Every identity mode of the Azure provider, through the real `keyvol mount` against the dev
//! vault's identity endpoints: service principal (elsewhere), workload identity (a signed
//! service-account token exchanged as a client assertion), VM managed identity through IMDS
//! (system- and user-assigned), AAD Pod Identity through NMI (with the identity assigned late),
//! and TLS trust from SSL_CERT_FILE.

use crate::util::*;

const VAULT: &str = "keyvol-ids";
const ISSUER: &str = "https://oidc.keyvol.test";

fn seed_with_identities(issuer_pem: &str) -> String {
    let pem_yaml: String = issuer_pem.lines().map(|l| format!("      {l}\n")).collect();
    format!(
        "tenantId: {TENANT}\nclients:\n  - clientId: {CLIENT_ID}\n    clientSecret: {CLIENT_SECRET}\n  - clientId: wi-app\n    federatedCredentials:\n      - issuer: {ISSUER}\n        subject: system:serviceaccount:default:app\noidcIssuers:\n  - issuer: {ISSUER}\n    publicKeyPem: |\n{pem_yaml}managedIdentities:\n  - clientId: mi-system\n    systemAssigned: true\n  - clientId: mi-user\npodIdentities:\n  - namespace: default\n    podName: app\n    clientId: mi-user\nvaults:\n  - name: {VAULT}\n    secrets:\n      - name: plain\n        value: plain-value\n"
    )
}

fn class_with(params: &str) -> String {
    format!(
        "apiVersion: secrets-store.csi.x-k8s.io/v1\nkind: SecretProviderClass\nmetadata:\n  name: ids\n  namespace: default\nspec:\n  provider: azure\n  parameters:\n    keyvaultName: {VAULT}\n    tenantId: {TENANT}\n{params}    objects: |\n      array:\n        - |\n          objectName: plain\n          objectType: secret\n"
    )
}

/// A service-account token as kubelet would project it, signed by the test issuer.
fn sa_token(key: &rcgen::KeyPair, subject: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs();
    let claims = serde_json::json!({
        "iss": ISSUER,
        "sub": subject,
        "aud": ["api://AzureADTokenExchange"],
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
    });
    let enc = jsonwebtoken::EncodingKey::from_ec_pem(key.serialize_pem().as_bytes()).expect("key");
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256),
        &claims,
        &enc,
    )
    .expect("jwt")
}

struct Env {
    vault: DevVaultProc,
    key: rcgen::KeyPair,
}

fn env(extra: &[&str]) -> Env {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let mut args = vec!["--identity-listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let vault = DevVaultProc::start_with(&seed_with_identities(&key.public_key_pem()), &args);
    Env { vault, key }
}

fn mount(env: &Env, target: &Target, params: &str, extra: &[String]) -> std::process::Output {
    let class = write(target.dir.path(), "class.yaml", &class_with(params));
    let identity = env.vault.identity.expect("identity listener");
    run(keyvol()
        .arg("mount")
        .arg("--class")
        .arg(&class)
        .arg("--target")
        .arg(&target.path)
        .args(["--pod-name", "app", "--namespace", "default"])
        .arg(format!("--imds-endpoint=http://{identity}"))
        .arg(format!("--nmi-port={}", identity.port()))
        .args(env.vault.azure_args())
        .args(target.backing_args())
        .args(extra))
}

#[test]
fn workload_identity_exchanges_the_service_account_token() {
    let env = env(&[]);
    let target = Target::new();
    let token = write(
        target.dir.path(),
        "token",
        &sa_token(&env.key, "system:serviceaccount:default:app"),
    );
    let out = mount(
        &env,
        &target,
        "    clientID: wi-app\n",
        &[
            "--service-account-token-file".into(),
            token.display().to_string(),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(target.read("plain"), "plain-value");

    // A token for another service account matches no federated credential.
    let target = Target::new();
    let token = write(
        target.dir.path(),
        "token",
        &sa_token(&env.key, "system:serviceaccount:default:other"),
    );
    let out = mount(
        &env,
        &target,
        "    clientID: wi-app\n",
        &[
            "--service-account-token-file".into(),
            token.display().to_string(),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("AADSTS70021"), "{}", stderr(&out));
    assert!(
        !stderr(&out).contains(&sa_token(&env.key, "system:serviceaccount:default:other")[..40]),
        "the token leaked"
    );

    // Without a token the mount fails before any network call, naming what is missing.
    let target = Target::new();
    let out = mount(&env, &target, "    clientID: wi-app\n", &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("service account tokens not found"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn vm_managed_identity_uses_imds_system_and_user_assigned() {
    let env = env(&[]);
    for params in [
        "    useVMManagedIdentity: \"true\"\n",
        "    useVMManagedIdentity: \"true\"\n    userAssignedIdentityID: mi-user\n",
    ] {
        let target = Target::new();
        let out = mount(&env, &target, params, &[]);
        assert!(out.status.success(), "{params}: {}", stderr(&out));
        assert_eq!(target.read("plain"), "plain-value");
    }
    let target = Target::new();
    let out = mount(
        &env,
        &target,
        "    useVMManagedIdentity: \"true\"\n    userAssignedIdentityID: not-assigned\n",
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("IMDS answered 400"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn pod_identity_uses_nmi_and_waits_while_the_identity_is_assigned() {
    let env = env(&["--nmi-not-ready", "2"]);
    let target = Target::new();
    let out = mount(&env, &target, "    usePodIdentity: \"true\"\n", &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(target.read("plain"), "plain-value");
}

#[test]
fn ssl_cert_file_is_trusted_like_the_system_store() {
    let env = env(&[]);
    let target = Target::new();
    let class = write(target.dir.path(), "class.yaml", &class_with(""));
    let creds = creds_file(target.dir.path(), CLIENT_SECRET);
    let out = run(keyvol()
        .arg("mount")
        .arg("--class")
        .arg(&class)
        .arg("--target")
        .arg(&target.path)
        .arg("--secrets-file")
        .arg(&creds)
        .args(["--azure-connect-to", &env.vault.addr.to_string()])
        .env("SSL_CERT_FILE", &env.vault.ca_file)
        .args(target.backing_args()));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(target.read("plain"), "plain-value");

    // And without any trust in the dev vault's CA, TLS fails clearly.
    let target = Target::new();
    let class = write(target.dir.path(), "class.yaml", &class_with(""));
    let creds = creds_file(target.dir.path(), CLIENT_SECRET);
    let out = run(keyvol()
        .arg("mount")
        .arg("--class")
        .arg(&class)
        .arg("--target")
        .arg(&target.path)
        .arg("--secrets-file")
        .arg(&creds)
        .args([
            "--azure-connect-to",
            &env.vault.addr.to_string(),
            "--azure-mount-timeout",
            "5s",
        ])
        .args(target.backing_args()));
    assert_ne!(out.status.code(), Some(0));
}

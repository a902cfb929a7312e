//! Validated FlexVolume options as the Azure provider's request: the SecretProviderClass
//! parameters a CSI mount would carry (`keyvaultName`, `tenantId`, `cloudName`, identity flags,
//! an `objects` list) and the nodePublishSecretRef keys (`clientid`, `clientsecret`), so both
//! drivers authenticate and fetch through exactly the same code.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use keyvol_azure::format::FormatOptions;
use keyvol_azure::params::{POD_NAME, POD_NAMESPACE};
use keyvol_azure::{AzureProviderConfig, HttpConfig};
use keyvol_core::provider::DEFAULT_FILE_MODE;
use keyvol_core::{MountRequest, Sensitive};
use serde_json::json;

use crate::options::{FlexOptions, Identity};

/// Stands in for the pod name or namespace when kubelet did not send them and the identity does
/// not need them (the provider only uses them in log lines then).
const UNKNOWN_POD: &str = "unknown";

/// Node-wide settings that no volume option carries: kubelet passes the driver nothing but the
/// call, so these come from the driver's environment (see the binary's `flexvol` flags).
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Trust anchors and the optional redirect of Azure host names (for the dev vault).
    pub http: HttpConfig,
    /// IMDS base URL for VM managed identities.
    pub imds_endpoint: String,
    /// Deadline of one mount's fetch, retries included.
    pub mount_timeout: Duration,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            http: HttpConfig::default(),
            imds_endpoint: keyvol_azure::identity::DEFAULT_IMDS_ENDPOINT.into(),
            mount_timeout: keyvol_azure::provider::DEFAULT_MOUNT_TIMEOUT,
        }
    }
}

/// The provider configuration for one mount: the node's settings plus the volume's `nmiport`.
/// PEM options are the CSI provider's defaults, so `outputformat: csi` matches it byte for byte.
pub fn provider_config(options: &FlexOptions, node: &NodeConfig) -> AzureProviderConfig {
    AzureProviderConfig {
        http: node.http.clone(),
        mount_timeout: node.mount_timeout,
        format: FormatOptions::default(),
        nmi_port: options.nmi_port,
        imds_endpoint: node.imds_endpoint.clone(),
        ..AzureProviderConfig::default()
    }
}

/// The `objects` parameter for `options`, as JSON (which is YAML): no option value can change
/// its structure, whatever characters it holds.
fn objects_parameter(options: &FlexOptions) -> String {
    let items: Vec<String> = options
        .objects
        .iter()
        .map(|o| {
            yaml_safe(
                json!({
                    "objectName": o.name,
                    "objectType": o.object_type.as_str(),
                    "objectVersion": o.version,
                    "objectAlias": o.file.as_str(),
                })
                .to_string(),
            )
        })
        .collect();
    yaml_safe(json!({ "array": items }).to_string())
}

/// Characters JSON may hold raw but a YAML parser refuses or reads as something else: DEL and the
/// C1 controls (not printable in YAML), U+FFFE and U+FFFF (not characters), and NEL, the line
/// and paragraph separators and the byte-order mark (line breaks and a BOM to YAML 1.1).
fn yaml_unsafe(c: char) -> bool {
    matches!(
        c,
        '\u{7f}'..='\u{9f}' | '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}'
    )
}

/// `json` with every [`yaml_unsafe`] character written as a `\uXXXX` escape, which JSON and
/// YAML read alike. Raw characters only occur inside JSON strings, so the value is unchanged.
fn yaml_safe(json: String) -> String {
    if !json.chars().any(yaml_unsafe) {
        return json;
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if yaml_unsafe(c) {
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

/// The provider request for `options`, writing into `target`. Consumes the options so the
/// client secret moves into the request instead of being copied.
pub fn mount_request(options: FlexOptions, target: &Path) -> MountRequest {
    let mut attributes: BTreeMap<String, String> = BTreeMap::new();
    let mut set = |k: &str, v: &str| {
        attributes.insert(k.to_owned(), v.to_owned());
    };
    set("keyvaultName", &options.vault_name);
    set("tenantId", &options.tenant_id);
    set("cloudName", &options.cloud.name);
    set("objects", &objects_parameter(&options));
    set(POD_NAME, options.pod_name.as_deref().unwrap_or(UNKNOWN_POD));
    set(
        POD_NAMESPACE,
        options.pod_namespace.as_deref().unwrap_or(UNKNOWN_POD),
    );
    let mut secrets = BTreeMap::new();
    match options.identity {
        Identity::PodIdentity => set("usePodIdentity", "true"),
        Identity::VmManagedIdentity { client_id } => {
            set("useVMManagedIdentity", "true");
            if let Some(id) = client_id {
                set("userAssignedIdentityID", &id);
            }
        }
        Identity::ServicePrincipal {
            client_id,
            client_secret,
        } => {
            secrets.insert("clientid".to_owned(), Sensitive::new(client_id));
            secrets.insert("clientsecret".to_owned(), client_secret);
        }
    }
    MountRequest {
        attributes,
        secrets,
        default_mode: DEFAULT_FILE_MODE,
        target_path: target.display().to_string(),
        current_versions: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use keyvol_azure::objects::ObjectType;
    use keyvol_azure::params::{AzureParams, IdentityMode};

    use super::*;

    fn options(extra: &[(&str, &str)]) -> FlexOptions {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let mut m: BTreeMap<String, String> = [
            ("keyvaultname", "kv-one".to_owned()),
            ("keyvaultobjectnames", "a;b;c".to_owned()),
            ("keyvaultobjecttypes", "secret;key;cert".to_owned()),
            (
                "keyvaultobjectversions",
                ";0123456789abcdef0123456789abcdef;".to_owned(),
            ),
            ("keyvaultobjectaliases", "a.txt;;dir/c.der".to_owned()),
            ("tenantid", "tenant-1".to_owned()),
            ("cloudname", "AzureUSGovernment".to_owned()),
            ("kubernetes.io/secret/clientid", b64("app-id")),
            ("kubernetes.io/secret/clientsecret", b64("app-secret")),
            ("kubernetes.io/pod.name", "web".to_owned()),
            ("kubernetes.io/pod.namespace", "apps".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        for (k, v) in extra {
            m.insert(k.to_string(), v.to_string());
        }
        FlexOptions::parse(&m).expect("valid options")
    }

    fn parse(req: &MountRequest) -> AzureParams {
        AzureParams::parse(&req.attributes, "AzurePublicCloud", None)
            .expect("the provider accepts it")
    }

    #[test]
    fn aliases_with_characters_yaml_refuses_raw_reach_the_provider_unchanged() {
        // Found by fuzz/fuzz_targets/flexvol_options.rs: an alias holding DEL or a C1 control
        // passed the FlexVolume checks, and then the provider refused the objects list it
        // became ("unexpected character") — or read NEL and U+2028 as line breaks.
        let aliases = [
            "del\u{7f}x",
            "c1\u{80}\u{9f}x",
            "nel\u{85}x",
            "ls\u{2028}ps\u{2029}x",
            "bom\u{feff}x",
            "nc\u{fffe}\u{ffff}x",
            "tab\tesc\u{1b}x",
        ];
        let names: Vec<String> = (0..aliases.len()).map(|i| format!("s{i}")).collect();
        let req = mount_request(
            options(&[
                ("keyvaultobjectnames", &names.join(";")),
                (
                    "keyvaultobjecttypes",
                    &vec!["secret"; aliases.len()].join(";"),
                ),
                ("keyvaultobjectversions", ""),
                ("keyvaultobjectaliases", &aliases.join(";")),
            ]),
            Path::new("/mnt/v"),
        );
        let files: Vec<String> = parse(&req)
            .objects
            .iter()
            .map(|o| o.file.as_str().to_owned())
            .collect();
        assert_eq!(files, aliases);
    }

    #[test]
    fn the_provider_reads_back_every_object_exactly() {
        let req = mount_request(options(&[]), Path::new("/mnt/v"));
        let p = parse(&req);
        assert_eq!(p.vault_name, "kv-one");
        assert_eq!(p.tenant_id, "tenant-1");
        assert_eq!(p.cloud.name, "AzureUSGovernmentCloud");
        assert_eq!(
            (p.pod_name.as_str(), p.pod_namespace.as_str()),
            ("web", "apps")
        );
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
        let got: Vec<(&str, ObjectType, &str, &str)> = p
            .objects
            .iter()
            .map(|o| {
                (
                    o.name.as_str(),
                    o.object_type,
                    o.version.as_str(),
                    o.file.as_str(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("a", ObjectType::Secret, "", "a.txt"),
                (
                    "b",
                    ObjectType::Key,
                    "0123456789abcdef0123456789abcdef",
                    "b"
                ),
                ("c", ObjectType::Cert, "", "dir/c.der"),
            ]
        );
        assert_eq!(req.default_mode, 0o644);
        assert_eq!(req.target_path, "/mnt/v");
    }

    #[test]
    fn a_service_principal_travels_as_the_secret_refs_keys() {
        let req = mount_request(options(&[]), Path::new("/mnt/v"));
        assert_eq!(parse(&req).identity, IdentityMode::ServicePrincipal);
        let keys: Vec<&str> = req.secrets.keys().map(String::as_str).collect();
        assert_eq!(keys, ["clientid", "clientsecret"]);
        assert_eq!(req.secrets["clientid"].expose(), "app-id");
        assert_eq!(req.secrets["clientsecret"].expose(), "app-secret");
        assert!(
            req.attributes.values().all(|v| !v.contains("app-secret")),
            "the secret is only in secrets"
        );
    }

    #[test]
    fn pod_identity_maps_to_use_pod_identity_with_the_pod_and_nmi_port() {
        let o = options(&[("usepodidentity", "true"), ("nmiport", "2580")]);
        let config = provider_config(&o, &NodeConfig::default());
        assert_eq!(config.nmi_port, 2580);
        let req = mount_request(o, Path::new("/mnt/v"));
        let p = parse(&req);
        assert_eq!(p.identity, IdentityMode::PodIdentity);
        assert_eq!(
            (p.pod_name.as_str(), p.pod_namespace.as_str()),
            ("web", "apps")
        );
        assert!(
            req.secrets.is_empty(),
            "no credentials travel with pod identity"
        );
    }

    #[test]
    fn vm_managed_identity_maps_to_system_or_user_assigned() {
        let req = mount_request(
            options(&[("usevmmanagedidentity", "true")]),
            Path::new("/mnt/v"),
        );
        assert_eq!(
            parse(&req).identity,
            IdentityMode::VmManagedIdentity {
                user_assigned_client_id: None
            }
        );
        assert!(req.secrets.is_empty());
        let req = mount_request(
            options(&[
                ("usevmmanagedidentity", "true"),
                ("vmmanagedidentityclientid", "mi-user"),
            ]),
            Path::new("/mnt/v"),
        );
        assert_eq!(
            parse(&req).identity,
            IdentityMode::VmManagedIdentity {
                user_assigned_client_id: Some("mi-user".into())
            }
        );
    }

    #[test]
    fn the_default_nmi_port_and_node_settings_reach_the_provider() {
        let node = NodeConfig {
            imds_endpoint: "http://127.0.0.1:9".into(),
            mount_timeout: Duration::from_secs(7),
            ..NodeConfig::default()
        };
        let config = provider_config(&options(&[]), &node);
        assert_eq!(config.nmi_port, 2579);
        assert_eq!(config.imds_endpoint, "http://127.0.0.1:9");
        assert_eq!(config.mount_timeout, Duration::from_secs(7));
        assert_eq!(config.format, FormatOptions::default());
    }

    #[test]
    fn missing_pod_info_is_filled_when_the_identity_does_not_need_it() {
        let mut o = options(&[]);
        o.pod_name = None;
        o.pod_namespace = None;
        let p = parse(&mount_request(o, Path::new("/mnt/v")));
        assert_eq!(p.pod_name, "unknown");
    }
}

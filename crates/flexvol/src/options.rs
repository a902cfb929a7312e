//! The `azure/kv` volume options — every option the original driver read, and the keys kubelet
//! adds — parsed into typed, validated values before anything is mounted or fetched.
//!
//! Option keys are matched case-insensitively (the original wanted exact lower case and reported
//! a camel-cased key as missing). Lists are `;`-separated. Where the original silently ignored a
//! list whose length did not match `keyvaultobjectnames` (versions, aliases), this is an error
//! naming the option. Errors name option keys and list positions, never credential values.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine;
use keyvol_azure::cloud::Cloud;
use keyvol_azure::objects::ObjectType;
use keyvol_azure::objects::{
    MAX_OBJECT_NAME, OBJECT_VERSION_LEN, is_object_name, is_object_version, key_shown, shown,
};
use keyvol_core::{RelPath, Sensitive};

/// Option keys, lower case as pod specs written for the original driver spell them.
pub mod key {
    /// Vault name.
    pub const KEYVAULT_NAME: &str = "keyvaultname";
    /// Object names, `;`-separated.
    pub const OBJECT_NAMES: &str = "keyvaultobjectnames";
    /// Legacy single object name, read when [`OBJECT_NAMES`] is empty.
    pub const OBJECT_NAME: &str = "keyvaultobjectname";
    /// Object types (`secret`, `key`, `cert`), `;`-separated.
    pub const OBJECT_TYPES: &str = "keyvaultobjecttypes";
    /// Legacy single object type.
    pub const OBJECT_TYPE: &str = "keyvaultobjecttype";
    /// Object versions, `;`-separated; empty entries mean the newest.
    pub const OBJECT_VERSIONS: &str = "keyvaultobjectversions";
    /// Legacy single object version.
    pub const OBJECT_VERSION: &str = "keyvaultobjectversion";
    /// File names, `;`-separated; empty entries mean the object name.
    pub const OBJECT_ALIASES: &str = "keyvaultobjectaliases";
    /// Directory (tenant) id.
    pub const TENANT_ID: &str = "tenantid";
    /// Cloud name (go-autorest names).
    pub const CLOUD_NAME: &str = "cloudname";
    /// Use AAD Pod Identity through the node's NMI.
    pub const USE_POD_IDENTITY: &str = "usepodidentity";
    /// Use the node's managed identity through IMDS.
    pub const USE_VM_MANAGED_IDENTITY: &str = "usevmmanagedidentity";
    /// Client id of a user-assigned managed identity.
    pub const VM_MANAGED_IDENTITY_CLIENT_ID: &str = "vmmanagedidentityclientid";
    /// NMI port on the node.
    pub const NMI_PORT: &str = "nmiport";
    /// Resource group: read by drivers before v0.0.14 to look the vault up through ARM; ignored.
    pub const RESOURCE_GROUP: &str = "resourcegroup";
    /// Subscription: as [`RESOURCE_GROUP`]; ignored.
    pub const SUBSCRIPTION_ID: &str = "subscriptionid";
    /// keyvol's own: `flexvol` (default, the original's formats) or `csi` (the CSI provider's).
    pub const OUTPUT_FORMAT: &str = "outputformat";
    /// The secretRef's `clientid`, base64, as kubelet passes it.
    pub const SECRET_CLIENT_ID: &str = "kubernetes.io/secret/clientid";
    /// The secretRef's `clientsecret`, base64.
    pub const SECRET_CLIENT_SECRET: &str = "kubernetes.io/secret/clientsecret";
    /// The pod's name, added by kubelet.
    pub const POD_NAME: &str = "kubernetes.io/pod.name";
    /// The pod's namespace, added by kubelet.
    pub const POD_NAMESPACE: &str = "kubernetes.io/pod.namespace";
    /// Prefix of every key kubelet adds (fsType, readwrite, pod uid, service account, secrets…).
    pub const KUBELET_PREFIX: &str = "kubernetes.io/";
}

/// Options this driver knows besides the `kubernetes.io/` ones.
const KNOWN: [&str; 17] = [
    key::KEYVAULT_NAME,
    key::OBJECT_NAMES,
    key::OBJECT_NAME,
    key::OBJECT_TYPES,
    key::OBJECT_TYPE,
    key::OBJECT_VERSIONS,
    key::OBJECT_VERSION,
    key::OBJECT_ALIASES,
    key::TENANT_ID,
    key::CLOUD_NAME,
    key::USE_POD_IDENTITY,
    key::USE_VM_MANAGED_IDENTITY,
    key::VM_MANAGED_IDENTITY_CLIENT_ID,
    key::NMI_PORT,
    key::RESOURCE_GROUP,
    key::SUBSCRIPTION_ID,
    key::OUTPUT_FORMAT,
];

/// Longest accepted tenant (a GUID, or a verified domain name).
const MAX_TENANT: usize = 253;

/// Why the options are unusable. Each variant names the option.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionsError {
    /// A required option is absent or empty.
    #[error("{option}: is required{hint}")]
    Missing {
        /// The option key.
        option: &'static str,
        /// What to set, starting with a separator (may be empty).
        hint: &'static str,
    },
    /// An option's value breaks a rule.
    #[error("{option}: {reason}")]
    Invalid {
        /// The option key.
        option: &'static str,
        /// What is wrong (names positions, never credential values).
        reason: String,
    },
    /// A list does not have one entry per object.
    #[error(
        "{option}: has {got} entries but {names_option} has {want}; give one entry per object (an empty entry between ';' keeps the default)"
    )]
    CountMismatch {
        /// The list option.
        option: &'static str,
        /// Its entry count.
        got: usize,
        /// The names option in use.
        names_option: &'static str,
        /// The number of objects.
        want: usize,
    },
    /// The same option came twice, spelled in different case.
    #[error("option {first} is given twice (also as {second})")]
    Duplicate {
        /// One spelling.
        first: String,
        /// The other.
        second: String,
    },
}

/// Which identity fetches the objects. The original's order of precedence: pod identity, then
/// the VM's managed identity, then a service principal.
pub enum Identity {
    /// A service principal from the volume's secretRef.
    ServicePrincipal {
        /// Application (client) id.
        client_id: String,
        /// Its secret.
        client_secret: Sensitive<String>,
    },
    /// AAD Pod Identity through NMI on the node.
    PodIdentity,
    /// The node's managed identity through IMDS.
    VmManagedIdentity {
        /// Client id of a user-assigned identity; `None` means system-assigned.
        client_id: Option<String>,
    },
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Identity::ServicePrincipal { client_id, .. } => f
                .debug_struct("ServicePrincipal")
                .field("client_id", client_id)
                .finish_non_exhaustive(),
            Identity::PodIdentity => f.write_str("PodIdentity"),
            Identity::VmManagedIdentity { client_id } => f
                .debug_struct("VmManagedIdentity")
                .field("client_id", client_id)
                .finish(),
        }
    }
}

impl Identity {
    /// Log-safe name of the mode.
    pub fn mode(&self) -> &'static str {
        match self {
            Identity::ServicePrincipal { .. } => "service principal",
            Identity::PodIdentity => "pod identity",
            Identity::VmManagedIdentity { client_id: None } => {
                "system-assigned VM managed identity"
            }
            Identity::VmManagedIdentity { client_id: Some(_) } => {
                "user-assigned VM managed identity"
            }
        }
    }
}

/// How files are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// The original driver's bytes: secrets as stored, certificates as DER, keys as public key
    /// PEM (see `original`). The default, so existing applications keep working.
    Flexvol,
    /// Exactly what the CSI driver's Azure provider writes (PEM conversions).
    Csi,
}

/// One object to mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlexObject {
    /// Key Vault object name.
    pub name: String,
    /// Its type.
    pub object_type: ObjectType,
    /// Version; empty means the newest.
    pub version: String,
    /// File name in the volume: the alias, or the name.
    pub file: RelPath,
}

/// Everything one `mount` needs, validated.
#[derive(Debug)]
pub struct FlexOptions {
    /// `keyvaultname`.
    pub vault_name: String,
    /// `tenantid`.
    pub tenant_id: String,
    /// `cloudname`, resolved.
    pub cloud: Cloud,
    /// The identity.
    pub identity: Identity,
    /// `nmiport` (used with pod identity).
    pub nmi_port: u16,
    /// The objects, in option order.
    pub objects: Vec<FlexObject>,
    /// `outputformat`.
    pub output: OutputFormat,
    /// `kubernetes.io/pod.name`, when kubelet sent it.
    pub pod_name: Option<String>,
    /// `kubernetes.io/pod.namespace`, when kubelet sent it.
    pub pod_namespace: Option<String>,
    /// Options this driver does not know (ignored, as the original did).
    pub ignored: Vec<String>,
}

/// The options map with keys folded to lower case.
struct Folded<'a> {
    map: BTreeMap<String, (&'a str, &'a str)>,
}

impl<'a> Folded<'a> {
    fn new(options: &'a BTreeMap<String, String>) -> Result<Self, OptionsError> {
        let mut map = BTreeMap::new();
        for (k, v) in options {
            if let Some((first, _)) = map.insert(k.to_ascii_lowercase(), (k.as_str(), v.as_str())) {
                return Err(OptionsError::Duplicate {
                    first: key_shown(first),
                    second: key_shown(k),
                });
            }
        }
        Ok(Self { map })
    }

    /// The trimmed value, or "" when absent.
    fn get(&self, key: &str) -> &'a str {
        self.map.get(key).map(|(_, v)| v.trim()).unwrap_or("")
    }

    /// The raw value, when present.
    fn raw(&self, key: &str) -> Option<&'a str> {
        self.map.get(key).map(|(_, v)| *v)
    }
}

fn invalid(option: &'static str, reason: impl Into<String>) -> OptionsError {
    OptionsError::Invalid {
        option,
        reason: reason.into(),
    }
}

/// Go's `strconv.ParseBool` (what the original's binary used), with empty meaning false.
fn parse_bool(o: &Folded<'_>, option: &'static str) -> Result<bool, OptionsError> {
    match o.get(option) {
        "" | "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        other => Err(invalid(
            option,
            format!("{} is not a boolean (true or false)", shown(other)),
        )),
    }
}

/// A `;`-separated list, each entry trimmed; an empty option is an empty list. The legacy
/// singular option is read when the plural one is empty. Returns the key in use.
fn list(
    o: &Folded<'_>,
    plural: &'static str,
    singular: Option<&'static str>,
) -> (Vec<String>, &'static str) {
    let split = |s: &str| -> Vec<String> { s.split(';').map(|e| e.trim().to_owned()).collect() };
    match (o.get(plural), singular) {
        ("", Some(single)) if !o.get(single).is_empty() => (split(o.get(single)), single),
        ("", _) => (Vec::new(), plural),
        (text, _) => (split(text), plural),
    }
}

/// Decodes a secretRef value as kubelet passes it: standard base64, with any whitespace or
/// newlines in it dropped first (as the original did before `base64 -d`).
fn secret_ref(o: &Folded<'_>, option: &'static str) -> Result<Sensitive<String>, OptionsError> {
    let raw = o.raw(option).unwrap_or("");
    let compact = Sensitive::new(
        raw.chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect::<String>(),
    );
    if compact.expose().is_empty() {
        return Err(OptionsError::Missing {
            option,
            hint: " for a service principal: set secretRef to a Secret of type azure/kv holding clientid and clientsecret, or set usepodidentity or usevmmanagedidentity",
        });
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(compact.expose())
        .map_err(|_| {
            invalid(
                option,
                "is not base64 (kubelet passes secretRef values base64-encoded)",
            )
        })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let mut bytes = e.into_bytes();
        bytes.fill(0);
        invalid(option, "is not UTF-8 text once decoded")
    })?;
    let value = Sensitive::new(text);
    if value.expose().trim().is_empty() {
        return Err(invalid(option, "is empty once decoded"));
    }
    Ok(value)
}

impl FlexOptions {
    /// Parses and validates the options map kubelet passed to `mount`.
    pub fn parse(options: &BTreeMap<String, String>) -> Result<Self, OptionsError> {
        let o = Folded::new(options)?;

        let vault_name = o.get(key::KEYVAULT_NAME).to_owned();
        if vault_name.is_empty() {
            return Err(OptionsError::Missing {
                option: key::KEYVAULT_NAME,
                hint: "",
            });
        }
        if !(3..=24).contains(&vault_name.len())
            || !vault_name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(invalid(
                key::KEYVAULT_NAME,
                format!(
                    "{} is not a vault name (3 to 24 of 0-9, a-z, A-Z and -)",
                    shown(&vault_name)
                ),
            ));
        }

        let tenant_id = o.get(key::TENANT_ID).to_owned();
        if tenant_id.is_empty() {
            return Err(OptionsError::Missing {
                option: key::TENANT_ID,
                hint: " (the directory id of the vault's tenant)",
            });
        }
        if tenant_id.len() > MAX_TENANT
            || !tenant_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        {
            return Err(invalid(
                key::TENANT_ID,
                format!(
                    "{} is not a tenant id (a GUID or a domain name)",
                    shown(&tenant_id)
                ),
            ));
        }

        let cloud_name = o.get(key::CLOUD_NAME);
        let cloud = if cloud_name.eq_ignore_ascii_case("AzureStackCloud") {
            return Err(invalid(
                key::CLOUD_NAME,
                "AzureStackCloud needs a cloud environment file, which the FlexVolume driver cannot be given; use the CSI driver",
            ));
        } else {
            Cloud::by_name(cloud_name).ok_or_else(|| {
                invalid(
                    key::CLOUD_NAME,
                    format!("{} is not one of AzurePublicCloud, AzureUSGovernmentCloud, AzureChinaCloud, AzureGermanCloud", shown(cloud_name)),
                )
            })?
        };

        let nmi_port = match o.get(key::NMI_PORT) {
            "" => keyvol_azure::identity::DEFAULT_NMI_PORT,
            text => match text.parse::<u16>() {
                Ok(p) if p != 0 => p,
                _ => {
                    return Err(invalid(
                        key::NMI_PORT,
                        format!("{} is not a port number (1 to 65535)", shown(text)),
                    ));
                }
            },
        };

        let output = match o.get(key::OUTPUT_FORMAT).to_ascii_lowercase().as_str() {
            "" | "flexvol" => OutputFormat::Flexvol,
            "csi" => OutputFormat::Csi,
            _ => {
                return Err(invalid(
                    key::OUTPUT_FORMAT,
                    format!(
                        "{} is not one of flexvol (the original driver's formats, default) or csi (the CSI provider's PEM formats)",
                        shown(o.get(key::OUTPUT_FORMAT))
                    ),
                ));
            }
        };

        let non_empty = |k: &str| Some(o.get(k).to_owned()).filter(|s| !s.is_empty());
        let pod_name = non_empty(key::POD_NAME);
        let pod_namespace = non_empty(key::POD_NAMESPACE);

        let objects = parse_objects(&o)?;

        let use_pod_identity = parse_bool(&o, key::USE_POD_IDENTITY)?;
        let use_vm_identity = parse_bool(&o, key::USE_VM_MANAGED_IDENTITY)?;
        let identity = if use_pod_identity {
            if pod_name.is_none() {
                return Err(OptionsError::Missing {
                    option: key::POD_NAME,
                    hint: " with usepodidentity (kubelet sends it with every mount)",
                });
            }
            if pod_namespace.is_none() {
                return Err(OptionsError::Missing {
                    option: key::POD_NAMESPACE,
                    hint: " with usepodidentity (kubelet sends it with every mount)",
                });
            }
            Identity::PodIdentity
        } else if use_vm_identity {
            Identity::VmManagedIdentity {
                client_id: non_empty(key::VM_MANAGED_IDENTITY_CLIENT_ID),
            }
        } else {
            let client_id = secret_ref(&o, key::SECRET_CLIENT_ID)?;
            let client_secret = secret_ref(&o, key::SECRET_CLIENT_SECRET)?;
            Identity::ServicePrincipal {
                client_id: client_id.expose().trim().to_owned(),
                client_secret,
            }
        };

        let ignored = options
            .keys()
            .filter(|k| {
                let lower = k.to_ascii_lowercase();
                !lower.starts_with(key::KUBELET_PREFIX) && !KNOWN.contains(&lower.as_str())
            })
            .cloned()
            .collect();

        Ok(Self {
            vault_name,
            tenant_id,
            cloud,
            identity,
            nmi_port,
            objects,
            output,
            pod_name,
            pod_namespace,
            ignored,
        })
    }
}

/// The objects from the names, types, versions and aliases lists.
fn parse_objects(o: &Folded<'_>) -> Result<Vec<FlexObject>, OptionsError> {
    let (names, names_key) = list(o, key::OBJECT_NAMES, Some(key::OBJECT_NAME));
    if names.is_empty() {
        return Err(OptionsError::Missing {
            option: key::OBJECT_NAMES,
            hint: " (the objects to mount, separated by ';')",
        });
    }
    let count = names.len();
    let (types, types_key) = list(o, key::OBJECT_TYPES, Some(key::OBJECT_TYPE));
    if types.is_empty() {
        return Err(OptionsError::Missing {
            option: key::OBJECT_TYPES,
            hint: " (secret, key or cert for each object, separated by ';')",
        });
    }
    let (versions, versions_key) = list(o, key::OBJECT_VERSIONS, Some(key::OBJECT_VERSION));
    let (aliases, aliases_key) = list(o, key::OBJECT_ALIASES, None);
    for (entries, option) in [
        (&types, types_key),
        (&versions, versions_key),
        (&aliases, aliases_key),
    ] {
        if !entries.is_empty() && entries.len() != count {
            return Err(OptionsError::CountMismatch {
                option,
                got: entries.len(),
                names_option: names_key,
                want: count,
            });
        }
    }

    let mut objects = Vec::with_capacity(count);
    for (i, name) in names.iter().enumerate() {
        let entry = i + 1;
        if name.is_empty() {
            return Err(invalid(
                names_key,
                format!("entry {entry} of {count} is empty"),
            ));
        }
        if !is_object_name(name) {
            return Err(invalid(
                names_key,
                format!(
                    "entry {entry} ({}) is not a Key Vault object name (1 to {MAX_OBJECT_NAME} of 0-9, a-z, A-Z and -)",
                    shown(name)
                ),
            ));
        }
        let object_type = match types[i].as_str() {
            "secret" => ObjectType::Secret,
            "key" => ObjectType::Key,
            "cert" => ObjectType::Cert,
            other => {
                return Err(invalid(
                    types_key,
                    format!(
                        "entry {entry} ({}) is not one of secret, key, cert (the value is case-sensitive)",
                        shown(other)
                    ),
                ));
            }
        };
        let version = versions.get(i).cloned().unwrap_or_default();
        if !is_object_version(&version) {
            return Err(invalid(
                versions_key,
                format!(
                    "entry {entry} ({}) is not an object version ({OBJECT_VERSION_LEN} hexadecimal digits, or empty for the newest)",
                    shown(&version)
                ),
            ));
        }
        let (file_text, file_key) = match aliases.get(i).filter(|a| !a.is_empty()) {
            Some(alias) => (alias.as_str(), aliases_key),
            None => (name.as_str(), names_key),
        };
        let file = RelPath::new(file_text).map_err(|e| {
            invalid(
                file_key,
                format!("entry {entry} ({}): {e}", shown(file_text)),
            )
        })?;
        objects.push(FlexObject {
            name: name.clone(),
            object_type,
            version,
            file,
        });
    }
    check_files(
        &objects,
        if aliases.is_empty() {
            names_key
        } else {
            aliases_key
        },
    )?;
    Ok(objects)
}

/// Every object needs its own file, and no file may have to be a directory of another. The
/// original wrote them in turn, the last one winning.
fn check_files(objects: &[FlexObject], option: &'static str) -> Result<(), OptionsError> {
    for (i, a) in objects.iter().enumerate() {
        for (j, b) in objects.iter().enumerate().skip(i + 1) {
            if a.file == b.file {
                return Err(invalid(
                    option,
                    format!(
                        "entries {} and {} both write the file {}; give them different aliases",
                        i + 1,
                        j + 1,
                        shown(a.file.as_str())
                    ),
                ));
            }
            for (x, y, xi, yi) in [(a, b, i, j), (b, a, j, i)] {
                if y.file
                    .as_str()
                    .starts_with(&format!("{}/", x.file.as_str()))
                {
                    return Err(invalid(
                        option,
                        format!(
                            "entry {} writes {}, which needs entry {}'s file {} to be a directory",
                            yi + 1,
                            shown(y.file.as_str()),
                            xi + 1,
                            shown(x.file.as_str())
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    /// A service-principal mount of one secret, plus `extra` (an empty value removes a key).
    fn opts(extra: &[(&str, &str)]) -> BTreeMap<String, String> {
        let mut m: BTreeMap<String, String> = [
            ("keyvaultname", "kv-one".to_owned()),
            ("keyvaultobjectnames", "s1".to_owned()),
            ("keyvaultobjecttypes", "secret".to_owned()),
            ("tenantid", "tenant-1".to_owned()),
            ("kubernetes.io/secret/clientid", b64("app-id")),
            ("kubernetes.io/secret/clientsecret", b64("app-secret")),
            ("kubernetes.io/pod.name", "web".to_owned()),
            ("kubernetes.io/pod.namespace", "apps".to_owned()),
            ("kubernetes.io/fsType", String::new()),
            ("kubernetes.io/readwrite", "ro".to_owned()),
            ("kubernetes.io/pvOrVolumeName", "secrets".to_owned()),
            ("kubernetes.io/pod.uid", "uid-1".to_owned()),
            ("kubernetes.io/serviceAccount.name", "default".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        for (k, v) in extra {
            if v.is_empty() {
                m.remove(*k);
            } else {
                m.insert(k.to_string(), v.to_string());
            }
        }
        m
    }

    fn parse(extra: &[(&str, &str)]) -> Result<FlexOptions, OptionsError> {
        FlexOptions::parse(&opts(extra))
    }

    fn err(extra: &[(&str, &str)]) -> String {
        parse(extra).expect_err("invalid").to_string()
    }

    #[test]
    fn a_service_principal_mount_with_kubelets_keys_parses() {
        let o = parse(&[]).expect("parses");
        assert_eq!(o.vault_name, "kv-one");
        assert_eq!(o.tenant_id, "tenant-1");
        assert_eq!(o.cloud.name, "AzurePublicCloud");
        assert_eq!(o.nmi_port, 2579);
        assert_eq!(o.output, OutputFormat::Flexvol);
        assert_eq!(o.pod_name.as_deref(), Some("web"));
        assert_eq!(o.pod_namespace.as_deref(), Some("apps"));
        assert!(o.ignored.is_empty(), "{:?}", o.ignored);
        let Identity::ServicePrincipal {
            client_id,
            client_secret,
        } = &o.identity
        else {
            panic!("{:?}", o.identity);
        };
        assert_eq!(client_id, "app-id");
        assert_eq!(client_secret.expose(), "app-secret");
        assert_eq!(
            o.objects,
            [FlexObject {
                name: "s1".into(),
                object_type: ObjectType::Secret,
                version: String::new(),
                file: RelPath::new("s1").expect("path"),
            }]
        );
    }

    #[test]
    fn lists_pair_names_types_versions_and_aliases_by_position() {
        let o = parse(&[
            ("keyvaultobjectnames", "a; b ;c"),
            ("keyvaultobjecttypes", "secret;key;cert"),
            (
                "keyvaultobjectversions",
                "0123456789abcdef0123456789abcdef;;",
            ),
            ("keyvaultobjectaliases", "a.txt;;certs/c.der"),
        ])
        .expect("parses");
        let got: Vec<(&str, ObjectType, &str, &str)> = o
            .objects
            .iter()
            .map(|x| {
                (
                    x.name.as_str(),
                    x.object_type,
                    x.version.as_str(),
                    x.file.as_str(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    "a",
                    ObjectType::Secret,
                    "0123456789abcdef0123456789abcdef",
                    "a.txt"
                ),
                ("b", ObjectType::Key, "", "b"),
                ("c", ObjectType::Cert, "", "certs/c.der"),
            ]
        );
    }

    #[test]
    fn the_seed_readmes_empty_aliases_and_versions_mean_defaults() {
        let o = parse(&[
            ("keyvaultobjectnames", "a;b"),
            ("keyvaultobjecttypes", "secret;secret"),
            ("keyvaultobjectaliases", " "),
        ])
        .expect("parses");
        assert_eq!(o.objects.len(), 2);
        let mut m = opts(&[]);
        m.insert("keyvaultobjectversions".into(), String::new());
        m.insert("keyvaultobjectaliases".into(), String::new());
        assert!(FlexOptions::parse(&m).is_ok());
    }

    #[test]
    fn legacy_singular_options_are_used_when_the_plurals_are_empty() {
        let o = parse(&[
            ("keyvaultobjectnames", ""),
            ("keyvaultobjecttypes", ""),
            ("keyvaultobjectname", "old"),
            ("keyvaultobjecttype", "cert"),
            ("keyvaultobjectversion", "77777777777777777777777777777777"),
        ])
        .expect("parses");
        assert_eq!(o.objects.len(), 1);
        assert_eq!(
            (
                o.objects[0].name.as_str(),
                o.objects[0].object_type,
                o.objects[0].version.as_str()
            ),
            ("old", ObjectType::Cert, "77777777777777777777777777777777")
        );
        // The plural wins when both are set.
        let o = parse(&[("keyvaultobjectname", "ignored")]).expect("parses");
        assert_eq!(o.objects[0].name, "s1");
    }

    #[test]
    fn count_mismatches_are_errors_naming_the_option() {
        assert_eq!(
            err(&[
                ("keyvaultobjectnames", "a;b;c"),
                ("keyvaultobjecttypes", "secret;secret")
            ]),
            "keyvaultobjecttypes: has 2 entries but keyvaultobjectnames has 3; give one entry per object (an empty entry between ';' keeps the default)"
        );
        assert!(
            err(&[("keyvaultobjectversions", "v1;v2")])
                .starts_with("keyvaultobjectversions: has 2 entries but keyvaultobjectnames has 1")
        );
        assert!(
            err(&[("keyvaultobjectaliases", "x;y")])
                .starts_with("keyvaultobjectaliases: has 2 entries but keyvaultobjectnames has 1")
        );
        assert!(
            err(&[
                ("keyvaultobjectnames", ""),
                ("keyvaultobjectname", "a;b"),
                ("keyvaultobjecttypes", ""),
                ("keyvaultobjecttype", "secret"),
            ])
            .starts_with("keyvaultobjecttype: has 1 entries but keyvaultobjectname has 2")
        );
    }

    #[test]
    fn missing_required_options_are_named() {
        let cases = [
            ("keyvaultname", "keyvaultname: is required"),
            (
                "tenantid",
                "tenantid: is required (the directory id of the vault's tenant)",
            ),
            (
                "keyvaultobjectnames",
                "keyvaultobjectnames: is required (the objects to mount, separated by ';')",
            ),
            (
                "keyvaultobjecttypes",
                "keyvaultobjecttypes: is required (secret, key or cert for each object, separated by ';')",
            ),
        ];
        for (k, want) in cases {
            assert_eq!(err(&[(k, "")]), want);
        }
        assert!(
            err(&[("kubernetes.io/secret/clientid", "")])
                .starts_with("kubernetes.io/secret/clientid: is required for a service principal")
        );
        assert!(
            err(&[("kubernetes.io/secret/clientsecret", "")]).starts_with(
                "kubernetes.io/secret/clientsecret: is required for a service principal"
            )
        );
    }

    #[test]
    fn bad_values_are_named_and_never_echo_credentials() {
        let cases: [(&[(&str, &str)], &str); 12] = [
            (
                &[("keyvaultname", "a_b")],
                "keyvaultname: \"a_b\" is not a vault name (3 to 24 of 0-9, a-z, A-Z and -)",
            ),
            (
                &[("keyvaultname", "a-vault-name-that-is-too-long")],
                "keyvaultname: \"a-vault-name-that-is-too-long\" is not a vault name (3 to 24 of 0-9, a-z, A-Z and -)",
            ),
            (
                &[("keyvaultobjecttypes", "Secret")],
                "keyvaultobjecttypes: entry 1 (\"Secret\") is not one of secret, key, cert (the value is case-sensitive)",
            ),
            (
                &[
                    ("keyvaultobjectnames", "a;;b"),
                    ("keyvaultobjecttypes", "secret;secret;secret"),
                ],
                "keyvaultobjectnames: entry 2 of 3 is empty",
            ),
            (
                &[("keyvaultobjectnames", "x/y")],
                "keyvaultobjectnames: entry 1 (\"x/y\") is not a Key Vault object name (1 to 127 of 0-9, a-z, A-Z and -)",
            ),
            (
                &[("keyvaultobjectaliases", "../escape")],
                "keyvaultobjectaliases: entry 1 (\"../escape\"): file name must not contain '..'",
            ),
            (
                &[("keyvaultobjectversions", "v1/../x")],
                "keyvaultobjectversions: entry 1 (\"v1/../x\") is not an object version (32 hexadecimal digits, or empty for the newest)",
            ),
            (
                &[("keyvaultobjectversions", "0123456789abcdef0123456789abcdez")],
                "keyvaultobjectversions: entry 1 (\"0123456789abcdef0123456789abcdez\") is not an object version (32 hexadecimal digits, or empty for the newest)",
            ),
            (
                &[("keyvaultobjectnames", "s\u{1b}[2J1")],
                "keyvaultobjectnames: entry 1 (\"s\\u{1b}[2J1\") is not a Key Vault object name (1 to 127 of 0-9, a-z, A-Z and -)",
            ),
            (
                &[("keyvaultobjectnames", "%2e%2e")],
                "keyvaultobjectnames: entry 1 (\"%2e%2e\") is not a Key Vault object name (1 to 127 of 0-9, a-z, A-Z and -)",
            ),
            (
                &[("nmiport", "70000")],
                "nmiport: \"70000\" is not a port number (1 to 65535)",
            ),
            (
                &[("usepodidentity", "yes")],
                "usepodidentity: \"yes\" is not a boolean (true or false)",
            ),
        ];
        for (extra, want) in cases {
            assert_eq!(err(extra), want);
        }
        assert!(err(&[("cloudname", "Mars")]).starts_with("cloudname: \"Mars\" is not one of"));
        assert!(
            err(&[("cloudname", "AzureStackCloud")])
                .starts_with("cloudname: AzureStackCloud needs")
        );
        assert!(err(&[("outputformat", "pem")]).starts_with("outputformat: \"pem\" is not one of"));
        assert!(
            err(&[("tenantid", "t/../x")]).starts_with("tenantid: \"t/../x\" is not a tenant id")
        );

        let e = err(&[("kubernetes.io/secret/clientsecret", "not*base64!")]);
        assert_eq!(
            e,
            "kubernetes.io/secret/clientsecret: is not base64 (kubelet passes secretRef values base64-encoded)"
        );
        assert!(!e.contains("not*base64!"));
        assert_eq!(
            err(&[("kubernetes.io/secret/clientsecret", &b64("   \n"))]),
            "kubernetes.io/secret/clientsecret: is empty once decoded"
        );
    }

    #[test]
    fn duplicate_files_are_refused() {
        assert_eq!(
            err(&[
                ("keyvaultobjectnames", "a;b"),
                ("keyvaultobjecttypes", "secret;secret"),
                ("keyvaultobjectaliases", "same;same"),
            ]),
            "keyvaultobjectaliases: entries 1 and 2 both write the file \"same\"; give them different aliases"
        );
        assert_eq!(
            err(&[
                ("keyvaultobjectnames", "a;b"),
                ("keyvaultobjecttypes", "secret;secret"),
                ("keyvaultobjectaliases", "d/x;d"),
            ]),
            "keyvaultobjectaliases: entry 1 writes \"d/x\", which needs entry 2's file \"d\" to be a directory"
        );
        assert_eq!(
            err(&[
                ("keyvaultobjectnames", "a;a"),
                ("keyvaultobjecttypes", "secret;key")
            ]),
            "keyvaultobjectnames: entries 1 and 2 both write the file \"a\"; give them different aliases"
        );
    }

    #[test]
    fn secret_ref_values_lose_whitespace_before_decoding() {
        let wrapped = format!("{}\n {}", &b64("app-secret")[..6], &b64("app-secret")[6..]);
        let o = parse(&[("kubernetes.io/secret/clientsecret", &wrapped)]).expect("parses");
        let Identity::ServicePrincipal { client_secret, .. } = &o.identity else {
            panic!("mode");
        };
        assert_eq!(client_secret.expose(), "app-secret");
    }

    #[test]
    fn identity_precedence_is_the_originals() {
        let o = parse(&[
            ("usepodidentity", "true"),
            ("usevmmanagedidentity", "true"),
            ("kubernetes.io/secret/clientid", ""),
            ("kubernetes.io/secret/clientsecret", ""),
        ])
        .expect("parses");
        assert!(matches!(o.identity, Identity::PodIdentity));
        let o = parse(&[
            ("usevmmanagedidentity", "True"),
            ("vmmanagedidentityclientid", "mi-user"),
            ("kubernetes.io/secret/clientid", ""),
            ("kubernetes.io/secret/clientsecret", ""),
        ])
        .expect("parses");
        assert!(
            matches!(&o.identity, Identity::VmManagedIdentity { client_id: Some(c) } if c == "mi-user")
        );
        let o = parse(&[("usevmmanagedidentity", "true")]).expect("parses");
        assert!(matches!(
            o.identity,
            Identity::VmManagedIdentity { client_id: None }
        ));
        assert_eq!(o.identity.mode(), "system-assigned VM managed identity");
        assert_eq!(
            err(&[("usepodidentity", "true"), ("kubernetes.io/pod.name", "")]),
            "kubernetes.io/pod.name: is required with usepodidentity (kubelet sends it with every mount)"
        );
        assert!(
            err(&[
                ("usepodidentity", "true"),
                ("kubernetes.io/pod.namespace", "")
            ])
            .starts_with("kubernetes.io/pod.namespace: is required with usepodidentity")
        );
    }

    #[test]
    fn ignored_and_unknown_options_are_accepted() {
        let o = parse(&[
            ("resourcegroup", "rg"),
            ("subscriptionid", "sub"),
            ("nmiport", "2580"),
            ("cloudname", "azurechinacloud"),
            ("keyvaultobjectalias", "typo"),
            ("kubernetes.io/mounterArgs.FsGroup", "2000"),
        ])
        .expect("parses");
        assert_eq!(o.ignored, ["keyvaultobjectalias"]);
        assert_eq!(o.nmi_port, 2580);
        assert_eq!(o.cloud.name, "AzureChinaCloud");
    }

    #[test]
    fn option_keys_match_in_any_case_but_only_once() {
        let mut m = opts(&[("keyvaultname", "")]);
        m.insert("keyVaultName".into(), "kv-two".into());
        assert_eq!(FlexOptions::parse(&m).expect("parses").vault_name, "kv-two");
        m.insert("KEYVAULTNAME".into(), "kv-three".into());
        assert_eq!(
            FlexOptions::parse(&m).expect_err("twice").to_string(),
            "option KEYVAULTNAME is given twice (also as keyVaultName)"
        );
    }

    #[test]
    fn messages_stay_short_whatever_the_values() {
        // Found by fuzz/fuzz_targets/flexvol_options.rs: refused values were quoted whole, so a
        // long option made a message as long (kubelet logs it and shows it in the pod's events).
        let long = "x".repeat(5000);
        let dirs = format!("{}/f", "d".repeat(250)).repeat(10);
        let cases: Vec<Vec<(&str, String)>> = vec![
            vec![("keyvaultname", long.clone())],
            vec![("tenantid", format!("{long}/"))],
            vec![("cloudname", long.clone())],
            vec![("nmiport", long.clone())],
            vec![("outputformat", long.clone())],
            vec![("usepodidentity", long.clone())],
            vec![("keyvaultobjecttypes", long.clone())],
            vec![("keyvaultobjectaliases", format!("{long}/../x"))],
            vec![
                ("keyvaultobjectnames", "a;b".into()),
                ("keyvaultobjecttypes", "secret;secret".into()),
                ("keyvaultobjectaliases", format!("{dirs};{dirs}")),
            ],
            vec![
                ("keyvaultobjectnames", "a;b".into()),
                ("keyvaultobjecttypes", "secret;secret".into()),
                ("keyvaultobjectaliases", format!("{dirs}/g;{dirs}")),
            ],
        ];
        for case in cases {
            let extra: Vec<(&str, &str)> = case.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let e = err(&extra);
            assert!(e.len() < 500, "{} bytes for {:?}", e.len(), case[0].0);
            assert!(e.contains('…'), "{e}");
        }
        let mut m = opts(&[]);
        m.insert(format!("{long}A"), "1".into());
        m.insert(format!("{long}a"), "2".into());
        let e = FlexOptions::parse(&m).expect_err("twice").to_string();
        assert!(e.len() < 500, "{} bytes", e.len());
    }

    #[test]
    fn the_output_format_option_selects_csi() {
        assert_eq!(
            parse(&[("outputformat", "CSI")]).expect("parses").output,
            OutputFormat::Csi
        );
        assert_eq!(
            parse(&[("outputformat", "flexvol")])
                .expect("parses")
                .output,
            OutputFormat::Flexvol
        );
    }
}

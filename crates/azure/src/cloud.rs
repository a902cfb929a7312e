//! Azure clouds: the authority host, Key Vault DNS suffix and token resource of each, and custom
//! (Azure Stack) clouds read from a JSON file, without touching the process environment.
//!
//! A class names the custom-cloud file (`cloudEnvFileName`), so reading it is security code: it
//! is read only from the directory the operator names (`--cloud-env-dir`; none means custom
//! clouds are off), never through a link or `..` out of it, only if it is a regular file, and at
//! most [`MAX_CLOUD_ENV_FILE_BYTES`] of it. Every way of naming something outside the directory
//! gets the same message whether or not it exists, and no message holds the file's content.

use std::fs::File;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{Mode, OFlags};
use serde::Deserialize;

/// Largest cloud environment file read. Azure Stack Hub's are under 2 KiB; anything larger is
/// not one (and `/dev/zero` never ends).
pub const MAX_CLOUD_ENV_FILE_BYTES: u64 = 64 * 1024;

/// Why a `cloudEnvFileName` cannot be used. Messages name the file as the class gave it and the
/// operator's directory, never the file's content.
#[derive(Debug, thiserror::Error)]
pub enum CloudFileError {
    /// The operator did not name a directory: custom clouds are off.
    #[error(
        "custom clouds are disabled on this node: the operator has not set --cloud-env-dir (set it to the directory holding the cloud environment files, e.g. /etc/kubernetes, and mount that directory into the keyvol pod)"
    )]
    NoDirectory,
    /// The operator's directory cannot be resolved.
    #[error("the cloud environment directory {dir} (--cloud-env-dir) cannot be used")]
    Directory {
        /// The directory as configured.
        dir: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The name does not lead to a file inside the directory: outside it (whether or not such
    /// a path exists), through `..` or a link out of it, or not there at all.
    #[error("{name:?} is not a readable file inside the cloud environment directory {dir}")]
    NotInside {
        /// The name, as the class gave it.
        name: String,
        /// The directory as configured.
        dir: PathBuf,
    },
    /// The name leads to a device, FIFO, socket or directory inside the directory.
    #[error("{name:?} is not a regular file")]
    NotRegular {
        /// The name, as the class gave it.
        name: String,
    },
    /// The file is larger than [`MAX_CLOUD_ENV_FILE_BYTES`].
    #[error("{name:?} is larger than {} KiB", MAX_CLOUD_ENV_FILE_BYTES / 1024)]
    TooLarge {
        /// The name, as the class gave it.
        name: String,
    },
    /// Reading the opened file failed.
    #[error("failed to read {name:?}")]
    Read {
        /// The name, as the class gave it.
        name: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The content is not JSON, or a field has the wrong type (the position only: the content
    /// is never repeated).
    #[error(
        "{name:?} is not a cloud environment file: invalid JSON at line {line}, column {column}"
    )]
    Syntax {
        /// The name, as the class gave it.
        name: String,
        /// Line of the error.
        line: usize,
        /// Column of the error.
        column: usize,
    },
    /// A required field is absent.
    #[error("{name:?} is not a cloud environment file: {field} is missing")]
    MissingField {
        /// The name, as the class gave it.
        name: String,
        /// The JSON field.
        field: &'static str,
    },
}

/// Endpoints of one cloud.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cloud {
    /// Canonical name, e.g. `AzurePublicCloud`.
    pub name: String,
    /// Entra ID authority, e.g. `https://login.microsoftonline.com/`.
    pub authority_host: String,
    /// Vault host suffix, e.g. `vault.azure.net`.
    pub vault_dns_suffix: String,
    /// Token resource for Key Vault, e.g. `https://vault.azure.net`.
    pub vault_resource: String,
    /// True when `vault_resource` is the one Microsoft documents for the cloud (the built-in
    /// clouds), so requests may carry a token for it before the vault's challenge is known; a
    /// custom cloud's comes from an operator's file and the vault's challenge is learned instead.
    pub vault_resource_documented: bool,
}

impl Cloud {
    fn builtin(name: &str, authority: &str, suffix: &str) -> Self {
        Self {
            name: name.into(),
            authority_host: authority.into(),
            vault_dns_suffix: suffix.into(),
            vault_resource: format!("https://{suffix}"),
            vault_resource_documented: true,
        }
    }

    /// The token scope for this cloud's vaults when it is known without asking a vault: the
    /// built-in clouds' documented Key Vault resource. `None` for a custom cloud (see
    /// [`crate::challenge`]).
    pub fn vault_scope(&self) -> Option<String> {
        self.vault_resource_documented
            .then(|| crate::challenge::scope_of_resource(&self.vault_resource))
    }

    /// URL of vault `name` in this cloud: `https://<name>.<suffix>/`.
    pub fn vault_url(&self, vault_name: &str) -> String {
        format!("https://{vault_name}.{}/", self.vault_dns_suffix)
    }

    /// Looks a cloud up by name, case-insensitively, with go-autorest's aliases.
    /// `AzureStackCloud` needs a file and is not found here.
    pub fn by_name(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "" | "azurepubliccloud" | "azurecloud" => Some(Self::builtin(
                "AzurePublicCloud",
                "https://login.microsoftonline.com/",
                "vault.azure.net",
            )),
            "azureusgovernmentcloud" | "azureusgovernment" => Some(Self::builtin(
                "AzureUSGovernmentCloud",
                "https://login.microsoftonline.us/",
                "vault.usgovcloudapi.net",
            )),
            "azurechinacloud" => Some(Self::builtin(
                "AzureChinaCloud",
                "https://login.chinacloudapi.cn/",
                "vault.azure.cn",
            )),
            "azuregermancloud" => Some(Self::builtin(
                "AzureGermanCloud",
                "https://login.microsoftonline.de/",
                "vault.microsoftazure.de",
            )),
            _ => None,
        }
    }

    /// Reads a custom cloud (the `cloudEnvFileName` JSON of Azure Stack Hub) named `name`
    /// inside `dir` (`--cloud-env-dir`; `None` means custom clouds are off). A relative name is
    /// resolved inside `dir`; an absolute one must lie inside it.
    pub fn from_env_file(dir: Option<&Path>, name: &str) -> Result<Self, CloudFileError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct EnvFile {
            name: Option<String>,
            active_directory_endpoint: Option<String>,
            key_vault_endpoint: Option<String>,
            #[serde(rename = "keyVaultDNSSuffix")]
            key_vault_dns_suffix: Option<String>,
        }
        let dir = dir.ok_or(CloudFileError::NoDirectory)?;
        let mut file = open_inside(dir, name)?;
        let meta = file.metadata().map_err(|source| CloudFileError::Read {
            name: name.to_owned(),
            source,
        })?;
        if !meta.is_file() {
            return Err(CloudFileError::NotRegular {
                name: name.to_owned(),
            });
        }
        let mut bytes = Vec::new();
        (&mut file)
            .take(MAX_CLOUD_ENV_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|source| CloudFileError::Read {
                name: name.to_owned(),
                source,
            })?;
        if bytes.len() as u64 > MAX_CLOUD_ENV_FILE_BYTES {
            return Err(CloudFileError::TooLarge {
                name: name.to_owned(),
            });
        }
        // serde_json's own recursion limit (128) bounds nesting; its messages can quote the
        // content, so only the position is kept.
        let env: EnvFile = serde_json::from_slice(&bytes).map_err(|e| CloudFileError::Syntax {
            name: name.to_owned(),
            line: e.line(),
            column: e.column(),
        })?;
        let missing = |field| CloudFileError::MissingField {
            name: name.to_owned(),
            field,
        };
        let authority = env
            .active_directory_endpoint
            .ok_or_else(|| missing("activeDirectoryEndpoint"))?;
        let resource = env
            .key_vault_endpoint
            .ok_or_else(|| missing("keyVaultEndpoint"))?;
        let suffix = env
            .key_vault_dns_suffix
            .ok_or_else(|| missing("keyVaultDNSSuffix"))?;
        Ok(Self {
            name: env.name.unwrap_or_else(|| "AzureStackCloud".into()),
            authority_host: authority,
            vault_dns_suffix: suffix.trim_start_matches('.').to_owned(),
            vault_resource: resource.trim_end_matches('/').to_owned(),
            vault_resource_documented: false,
        })
    }

    /// Every built-in cloud.
    pub fn builtins() -> Vec<Self> {
        [
            "AzurePublicCloud",
            "AzureUSGovernmentCloud",
            "AzureChinaCloud",
            "AzureGermanCloud",
        ]
        .iter()
        .filter_map(|n| Self::by_name(n))
        .collect()
    }
}

/// Opens `name` for reading if it is inside `dir`: no `..`, no link followed out of `dir`, the
/// last component opened without following a link, and without blocking on a FIFO. Every way of
/// failing before the file is known to be inside `dir` is the same [`CloudFileError::NotInside`],
/// so the answer never tells whether something outside exists.
fn open_inside(dir: &Path, name: &str) -> Result<File, CloudFileError> {
    let not_inside = || CloudFileError::NotInside {
        name: name.to_owned(),
        dir: dir.to_owned(),
    };
    let root = dir
        .canonicalize()
        .map_err(|source| CloudFileError::Directory {
            dir: dir.to_owned(),
            source,
        })?;
    let path = Path::new(name);
    let relative = if path.is_absolute() {
        path.strip_prefix(dir)
            .or_else(|_| path.strip_prefix(&root))
            .map_err(|_| not_inside())?
    } else {
        path
    };
    if name.contains('\0')
        || relative.as_os_str().is_empty()
        || !relative
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(not_inside());
    }
    // Links inside the directory are followed (a ConfigMap volume is made of them); where they
    // lead must still be inside it.
    let real = root
        .join(relative)
        .canonicalize()
        .map_err(|_| not_inside())?;
    if !real.starts_with(&root) {
        return Err(not_inside());
    }
    let fd = rustix::fs::open(
        &real,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|_| not_inside())?;
    let file = File::from(fd);
    // A directory on the way swapped for a link between the check and the open would lead
    // elsewhere: check what was opened. (Without /proc the check above stands alone.)
    if let Ok(opened) = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))
        && !opened.starts_with(&root)
    {
        return Err(not_inside());
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_case_insensitive_with_aliases() {
        assert_eq!(
            Cloud::by_name("azurecloud").map(|c| c.vault_dns_suffix),
            Some("vault.azure.net".into())
        );
        assert_eq!(
            Cloud::by_name("AZUREUSGOVERNMENT").map(|c| c.name),
            Some("AzureUSGovernmentCloud".into())
        );
        assert_eq!(
            Cloud::by_name("AzureChinaCloud").map(|c| c.vault_resource),
            Some("https://vault.azure.cn".into())
        );
        assert!(Cloud::by_name("AzureStackCloud").is_none());
        assert_eq!(
            Cloud::by_name("AzureUSGovernment").and_then(|c| c.vault_scope()),
            Some("https://vault.usgovcloudapi.net/.default".into())
        );
        assert_eq!(
            Cloud::by_name("").map(|c| c.vault_url("kv")),
            Some("https://kv.vault.azure.net/".into())
        );
    }

    const STACK: &str = r#"{"name":"AzureStackCloud","activeDirectoryEndpoint":"https://login.stack.local/","keyVaultEndpoint":"https://vault.stack.local/","keyVaultDNSSuffix":"vault.stack.local"}"#;

    fn read(dir: Option<&Path>, name: &str) -> Result<Cloud, String> {
        Cloud::from_env_file(dir, name).map_err(|e| keyvol_core::report::chain(&e))
    }

    #[test]
    fn custom_cloud_file_is_read_without_environment_variables() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("env.json");
        std::fs::write(&path, STACK).expect("write");
        let cloud = read(Some(dir.path()), "env.json").expect("reads");
        assert_eq!(cloud.vault_url("kv"), "https://kv.vault.stack.local/");
        assert_eq!(cloud.vault_resource, "https://vault.stack.local");
        assert_eq!(
            cloud.vault_scope(),
            None,
            "learned from the vault's challenge"
        );
        let absolute = path.display().to_string();
        assert_eq!(read(Some(dir.path()), &absolute), Ok(cloud.clone()));
        std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
        std::fs::write(dir.path().join("sub/env.json"), STACK).expect("write");
        assert_eq!(read(Some(dir.path()), "sub/env.json"), Ok(cloud));
    }

    #[test]
    fn without_a_directory_custom_clouds_are_off_and_the_operator_is_told_why() {
        let err = read(None, "/etc/kubernetes/azurestackcloud.json").expect_err("off");
        assert!(err.contains("set --cloud-env-dir"), "{err}");
    }

    #[test]
    fn outside_paths_get_one_message_whether_they_exist_or_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let elsewhere = tempfile::tempdir().expect("tempdir");
        std::fs::write(elsewhere.path().join("real.json"), STACK).expect("write");
        std::os::unix::fs::symlink(
            elsewhere.path().join("real.json"),
            dir.path().join("out.json"),
        )
        .expect("symlink");
        std::os::unix::fs::symlink(
            elsewhere.path().join("nothing.json"),
            dir.path().join("dangling.json"),
        )
        .expect("symlink");
        let d = dir.path().display().to_string();
        let e = elsewhere.path().display().to_string();
        let message = |name: &str| {
            format!("{name:?} is not a readable file inside the cloud environment directory {d}")
        };
        for name in [
            format!("{e}/real.json"),
            format!("{e}/nothing.json"),
            format!(
                "{d}/../{}/real.json",
                elsewhere
                    .path()
                    .file_name()
                    .and_then(|n| n.to_str())
                    .expect("name")
            ),
            "../real.json".to_owned(),
            "out.json".to_owned(),
            "dangling.json".to_owned(),
            "missing.json".to_owned(),
            "/dev/zero".to_owned(),
            "../../../../../../../dev/zero".to_owned(),
            String::new(),
        ] {
            assert_eq!(read(Some(dir.path()), &name), Err(message(&name)), "{name}");
        }
    }

    #[test]
    fn only_small_regular_files_are_read_and_their_content_is_never_echoed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        std::fs::create_dir(d.join("sub")).expect("mkdir");
        assert_eq!(
            read(Some(d), "sub"),
            Err("\"sub\" is not a regular file".into())
        );
        let fifo = d.join("fifo");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .expect("mkfifo");
        let started = std::time::Instant::now();
        assert_eq!(
            read(Some(d), "fifo"),
            Err("\"fifo\" is not a regular file".into())
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(1),
            "did not block"
        );
        let big = File::create(d.join("big.json")).expect("create");
        big.set_len(1 << 30).expect("sparse");
        assert_eq!(
            read(Some(d), "big.json"),
            Err("\"big.json\" is larger than 64 KiB".into())
        );
        let secretish = "s3cr3t-c0ntent-7f";
        std::fs::write(
            d.join("bad.json"),
            format!(r#"{{"name": 5, "x": "{secretish}"}}"#),
        )
        .expect("write");
        let err = read(Some(d), "bad.json").expect_err("type");
        assert_eq!(
            err,
            "\"bad.json\" is not a cloud environment file: invalid JSON at line 1, column 10"
        );
        std::fs::write(d.join("text.json"), secretish).expect("write");
        assert!(
            !read(Some(d), "text.json")
                .expect_err("syntax")
                .contains(secretish)
        );
        std::fs::write(
            d.join("partial.json"),
            r#"{"activeDirectoryEndpoint":"https://a/"}"#,
        )
        .expect("write");
        assert_eq!(
            read(Some(d), "partial.json"),
            Err(
                "\"partial.json\" is not a cloud environment file: keyVaultEndpoint is missing"
                    .into()
            )
        );
    }
}

//! Azure clouds: the authority host, Key Vault DNS suffix and token resource of each, and custom
//! (Azure Stack) clouds read from a JSON file, without touching the process environment.

use std::path::Path;

use serde::Deserialize;

use crate::error::AzureError;

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
}

impl Cloud {
    fn builtin(name: &str, authority: &str, suffix: &str) -> Self {
        Self {
            name: name.into(),
            authority_host: authority.into(),
            vault_dns_suffix: suffix.into(),
            vault_resource: format!("https://{suffix}"),
        }
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

    /// Reads a custom cloud (the `cloudEnvFileName` JSON of Azure Stack Hub).
    pub fn from_env_file(path: &Path) -> Result<Self, AzureError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct EnvFile {
            name: Option<String>,
            active_directory_endpoint: String,
            key_vault_endpoint: String,
            #[serde(rename = "keyVaultDNSSuffix")]
            key_vault_dns_suffix: String,
        }
        let invalid = |reason: String| AzureError::InvalidParameter {
            field: "cloudEnvFileName".into(),
            reason,
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| invalid(format!("failed to read {}: {e}", path.display())))?;
        let env: EnvFile = serde_json::from_str(&text).map_err(|e| {
            invalid(format!(
                "{} is not a cloud environment file: {e}",
                path.display()
            ))
        })?;
        Ok(Self {
            name: env.name.unwrap_or_else(|| "AzureStackCloud".into()),
            authority_host: env.active_directory_endpoint,
            vault_dns_suffix: env.key_vault_dns_suffix.trim_start_matches('.').to_owned(),
            vault_resource: env.key_vault_endpoint.trim_end_matches('/').to_owned(),
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
            Cloud::by_name("").map(|c| c.vault_url("kv")),
            Some("https://kv.vault.azure.net/".into())
        );
    }

    #[test]
    fn custom_cloud_file_is_read_without_environment_variables() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("env.json");
        std::fs::write(
            &path,
            r#"{"name":"AzureStackCloud","activeDirectoryEndpoint":"https://login.stack.local/","keyVaultEndpoint":"https://vault.stack.local/","keyVaultDNSSuffix":"vault.stack.local"}"#,
        )
        .expect("write");
        let cloud = Cloud::from_env_file(&path).expect("reads");
        assert_eq!(cloud.vault_url("kv"), "https://kv.vault.stack.local/");
        assert_eq!(cloud.vault_resource, "https://vault.stack.local");
    }
}

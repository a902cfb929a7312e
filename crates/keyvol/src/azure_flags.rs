//! Command-line flags that configure the built-in Azure provider, shared by every subcommand
//! that fetches from Key Vault.

use std::net::SocketAddr;
use std::path::PathBuf;

use keyvol_azure::{AzureProviderConfig, ConnectTo, HttpConfig};

/// Azure provider flags.
#[derive(clap::Args, Debug, Clone)]
pub struct AzureFlags {
    /// Cloud used when a class names none (upstream's --cloud-name).
    #[arg(long = "cloud-name", default_value = "AzurePublicCloud")]
    pub cloud_name: String,
    /// Extra CA certificates (PEM) to trust besides the system store; repeatable.
    /// SSL_CERT_FILE and SSL_CERT_DIR are honoured as well.
    #[arg(long = "azure-ca-file", value_name = "PEM")]
    pub ca_files: Vec<PathBuf>,
    /// Send every Azure Key Vault and Entra ID host name to this address (TLS still checks the
    /// real names). For the dev vault: --azure-connect-to 127.0.0.1:8443.
    #[arg(long = "azure-connect-to", value_name = "ADDR:PORT")]
    pub connect_to: Option<SocketAddr>,
    /// Most Key Vault requests in flight to one vault from this process (all mounts together);
    /// each mount sends all its objects at once within it. The rate per vault is capped
    /// separately at Key Vault's documented 4,000 requests per 10 s.
    #[arg(long = "azure-fetch-concurrency", default_value_t = keyvol_azure::provider::DEFAULT_FETCH_CONCURRENCY)]
    pub fetch_concurrency: usize,
    /// Deadline of one mount, retries included (e.g. 30s, 2m).
    #[arg(long = "azure-mount-timeout", value_parser = humantime::parse_duration, default_value = "100s")]
    pub mount_timeout: std::time::Duration,
    /// Order PEM certificate chains leaf → intermediates → root (upstream's --construct-pem-chain).
    #[arg(long = "construct-pem-chain", default_value_t = true)]
    pub construct_pem_chain: bool,
    /// Also write `<file>.crt` and `<file>.key` for certificate-backed secrets (upstream's flag).
    #[arg(long = "write-cert-and-key-in-separate-files")]
    pub write_cert_and_key_in_separate_files: bool,
    /// Port of AAD Pod Identity's NMI on this node.
    #[arg(long = "nmi-port", default_value_t = keyvol_azure::identity::DEFAULT_NMI_PORT)]
    pub nmi_port: u16,
    /// How long one fetch of an object version serves every volume asking for it with the same
    /// identity (node-wide sharing). `keyvol node` uses --rotation-poll-interval when rotation is
    /// on and this is 0.
    #[arg(long = "azure-fetch-share-window", value_parser = humantime::parse_duration, default_value = "0s")]
    pub share_window: std::time::Duration,
    /// Base URL of the instance metadata service (managed identity).
    #[arg(long = "imds-endpoint", default_value = keyvol_azure::identity::DEFAULT_IMDS_ENDPOINT)]
    pub imds_endpoint: String,
    /// The only directory a class's cloudEnvFileName (AzureStackCloud) may name a file in, e.g.
    /// /etc/kubernetes (mount it into the pod). Empty: custom clouds are off.
    #[arg(long = "cloud-env-dir", value_name = "DIR")]
    pub cloud_env_dir: Option<PathBuf>,
    /// Most objects one wildcard objectName (`*`, `?`) may select; a mount whose pattern
    /// selects more fails with an error naming the entry.
    #[arg(long = "azure-max-wildcard-objects", value_name = "N", default_value_t = keyvol_azure::provider::DEFAULT_MAX_WILDCARD_OBJECTS, value_parser = wildcard_cap)]
    pub max_wildcard_objects: usize,
    /// Drop an identity's credential, token and Key Vault clients once no mount has used them
    /// for this long (at least 1s); the next mount with that identity fetches a new token.
    #[arg(long = "azure-identity-idle", value_name = "DURATION", value_parser = identity_idle, default_value = "10m")]
    pub identity_idle: std::time::Duration,
}

/// `--azure-identity-idle`: a duration of at least a second.
fn identity_idle(text: &str) -> Result<std::time::Duration, String> {
    let d = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if d < keyvol_azure::provider::MIN_IDENTITY_IDLE {
        return Err("must be at least 1s".into());
    }
    Ok(d)
}

/// `--azure-max-wildcard-objects`: 1 to 25,000 (as many as keyvol lists of one kind).
fn wildcard_cap(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if (1..=keyvol_azure::provider::MAX_LISTED_OBJECTS).contains(&n) => Ok(n),
        _ => Err(format!(
            "must be a whole number from 1 to {}",
            keyvol_azure::provider::MAX_LISTED_OBJECTS
        )),
    }
}

impl AzureFlags {
    /// The provider configuration these flags describe.
    pub fn config(&self) -> AzureProviderConfig {
        AzureProviderConfig {
            default_cloud: self.cloud_name.clone(),
            http: HttpConfig {
                ca_files: self.ca_files.clone(),
                ca_pems: Vec::new(),
                connect_to: self.connect_to.map(ConnectTo::all_azure),
                try_timeout: None,
            },
            fetch_concurrency: self.fetch_concurrency,
            mount_timeout: self.mount_timeout,
            format: keyvol_azure::format::FormatOptions {
                construct_pem_chain: self.construct_pem_chain,
                separate_cert_and_key: self.write_cert_and_key_in_separate_files,
            },
            nmi_port: self.nmi_port,
            imds_endpoint: self.imds_endpoint.clone(),
            share_window: self.share_window,
            cloud_env_dir: self
                .cloud_env_dir
                .clone()
                .filter(|d| !d.as_os_str().is_empty()),
            observer: None,
            max_wildcard_objects: self.max_wildcard_objects,
            identity_idle: self.identity_idle,
        }
    }
}

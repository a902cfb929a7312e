//! The dev vault's command line (`keyvol-dev dev-vault`), as a library so that tests start an
//! in-process dev vault from exactly the flags a person would type: [`DevVaultArgs`] parses
//! them, [`DevVaultArgs::config`] turns them into a [`DevVaultConfig`], and [`banner`] is the
//! readiness text printed on stdout (its first line is a stable contract).

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::faults::{FaultError, FaultRule};
use crate::seed::SeedError;
use crate::server::{DEFAULT_AUTHORITY, DEFAULT_VAULT_SUFFIX, RunningDevVault};
use crate::{DevVaultConfig, Seed};

/// The seed `keyvol-dev demo` and a bare `keyvol-dev dev-vault` start with.
pub const EXAMPLE_SEED: &str = include_str!("../../../examples/dev-vault-seed.yaml");

/// Largest seed file read, bytes: seeds are hand-written YAML.
const MAX_SEED_BYTES: u64 = 16 * 1024 * 1024;

/// Arguments of `keyvol-dev dev-vault`.
#[derive(clap::Parser, Debug, Clone)]
#[command(name = "dev-vault")]
pub struct DevVaultArgs {
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8443")]
    pub listen: SocketAddr,
    /// Seed file (YAML); the built-in example seed when absent.
    #[arg(long, value_name = "FILE")]
    pub seed: Option<PathBuf>,
    /// Where to write the CA certificate clients must trust.
    #[arg(long, value_name = "FILE", default_value = "keyvol-dev-vault-ca.pem")]
    pub ca_file: PathBuf,
    /// DNS suffix vaults are served under (`<vault>.<suffix>`).
    #[arg(long, default_value = DEFAULT_VAULT_SUFFIX)]
    pub vault_suffix: String,
    /// Authority URL named in the 401 challenge.
    #[arg(long, default_value = DEFAULT_AUTHORITY)]
    pub authority: String,
    /// Token resource the 401 challenge names and tokens must be for [default:
    /// https://<vault-suffix>]; another https URL plays a vault whose resource is not its
    /// cloud's usual one.
    #[arg(long, value_name = "URL")]
    pub resource: Option<String>,
    /// Extra host names for the server certificate; repeatable.
    #[arg(long = "host")]
    pub extra_hosts: Vec<String>,
    /// Tenant id named in challenges and tokens (overrides the seed's `tenantId`).
    #[arg(long)]
    pub tenant: Option<String>,
    /// Keep vaults, the CA and the token key in DIR (a redb file) so they survive restarts.
    /// The seed fills only vaults the directory does not hold yet.
    #[arg(long = "data", value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Also serve IMDS and the AAD Pod Identity NMI endpoint over plain HTTP here
    /// (NMI's own port is 2579; port 0 picks a free one).
    #[arg(long, value_name = "ADDR")]
    pub identity_listen: Option<SocketAddr>,
    /// A fault rule, `ROUTE:key=value,...` (keys latencyMs, errorRate, errorStatus, dropRate,
    /// throttleCount, throttleRate, retryAfterSecs); repeatable. Example:
    /// `--fault 'GET /secrets/*:latencyMs=50,errorRate=0.1'`.
    #[arg(long = "fault", value_name = "SPEC")]
    pub faults: Vec<String>,
    /// NMI answers 404 to this many calls first, as while an identity is being assigned.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub nmi_not_ready: u64,
    /// Do not serve the admin API (`/_admin/...`: counters and fault rules).
    #[arg(long)]
    pub no_admin: bool,
}

/// Why the flags do not make a configuration.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The seed file could not be read.
    #[error("failed to read seed {path}")]
    ReadSeed {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The seed file is larger than any hand-written seed.
    #[error("seed {path} is larger than {MAX_SEED_BYTES} bytes")]
    SeedTooLarge {
        /// The file.
        path: PathBuf,
    },
    /// The seed is not valid.
    #[error("invalid seed")]
    Seed(#[from] SeedError),
    /// A `--fault` rule is not valid.
    #[error("invalid --fault rule")]
    Fault(#[from] FaultError),
}

impl DevVaultArgs {
    /// The configuration these flags describe (reads the seed file).
    pub fn config(&self) -> Result<DevVaultConfig, CliError> {
        let text = match &self.seed {
            Some(path) => read_seed(path)?,
            None => EXAMPLE_SEED.to_owned(),
        };
        let seed = Seed::from_yaml(&text)?;
        let faults = self
            .faults
            .iter()
            .map(|spec| FaultRule::parse_spec(spec))
            .collect::<Result<Vec<_>, _>>()?;
        let mut config = DevVaultConfig::new(seed);
        config.listen = self.listen;
        config.vault_suffix.clone_from(&self.vault_suffix);
        config.authority.clone_from(&self.authority);
        config.resource.clone_from(&self.resource);
        config.extra_hosts.clone_from(&self.extra_hosts);
        config.ca_file = Some(self.ca_file.clone());
        config.tenant.clone_from(&self.tenant);
        config.data_dir.clone_from(&self.data);
        config.identity_listen = self.identity_listen;
        config.faults = faults;
        config.nmi_not_ready = self.nmi_not_ready;
        config.admin = !self.no_admin;
        Ok(config)
    }
}

fn read_seed(path: &std::path::Path) -> Result<String, CliError> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|source| CliError::ReadSeed {
        path: path.to_path_buf(),
        source,
    })?;
    let mut text = String::new();
    file.take(MAX_SEED_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|source| CliError::ReadSeed {
            path: path.to_path_buf(),
            source,
        })?;
    if text.len() as u64 > MAX_SEED_BYTES {
        return Err(CliError::SeedTooLarge {
            path: path.to_path_buf(),
        });
    }
    Ok(text)
}

/// The readiness text: `listening on https://ADDR` first (a stable contract), then the CA file,
/// tenant, each vault's URL, the identity listener and the admin API when served.
pub fn banner(args: &DevVaultArgs, config: &DevVaultConfig, running: &RunningDevVault) -> String {
    let mut banner = format!(
        "listening on https://{}\nca-file {}\ntenant {}\n",
        running.addr(),
        args.ca_file.display(),
        running.tenant()
    );
    for vault in &config.seed.vaults {
        banner.push_str(&format!(
            "vault https://{}.{}/\n",
            vault.name, args.vault_suffix
        ));
    }
    if let Some(identity) = running.identity_addr() {
        banner.push_str(&format!("identity http://{identity}\n"));
    }
    if !args.no_admin {
        banner.push_str(&format!("admin https://{}/_admin/\n", running.addr()));
    }
    banner
}

//! `keyvol dev-vault`: runs the local Key Vault, Entra ID, IMDS and NMI stand-in until
//! interrupted. docs/dev-vault.md is the user guide.

use std::net::SocketAddr;
use std::path::PathBuf;

use keyvol_devvault::faults::FaultRule;
use keyvol_devvault::{DevVault, DevVaultConfig, Seed};

use crate::exit::Failure;

/// The seed `keyvol demo` and a bare `keyvol dev-vault` start with.
pub const EXAMPLE_SEED: &str = include_str!("../../../examples/dev-vault-seed.yaml");

/// Arguments of `keyvol dev-vault`.
#[derive(clap::Args, Debug)]
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
    #[arg(long, default_value = keyvol_devvault::server::DEFAULT_VAULT_SUFFIX)]
    pub vault_suffix: String,
    /// Authority URL named in the 401 challenge.
    #[arg(long, default_value = keyvol_devvault::server::DEFAULT_AUTHORITY)]
    pub authority: String,
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

/// `keyvol dev-vault`.
pub async fn run(args: DevVaultArgs) -> Result<(), Failure> {
    let text = match &args.seed {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| Failure::input(format!("failed to read seed {}: {e}", path.display())))?,
        None => EXAMPLE_SEED.to_owned(),
    };
    let seed = Seed::from_yaml(&text).map_err(|e| Failure::chain(&e, true))?;
    let vaults: Vec<String> = seed.vaults.iter().map(|v| v.name.clone()).collect();
    let faults = args
        .faults
        .iter()
        .map(|spec| FaultRule::parse_spec(spec))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Failure::chain(&e, true))?;
    let mut config = DevVaultConfig::new(seed);
    config.listen = args.listen;
    config.vault_suffix = args.vault_suffix.clone();
    config.authority = args.authority.clone();
    config.extra_hosts = args.extra_hosts.clone();
    config.ca_file = Some(args.ca_file.clone());
    config.tenant = args.tenant.clone();
    config.data_dir = args.data.clone();
    config.identity_listen = args.identity_listen;
    config.faults = faults;
    config.nmi_not_ready = args.nmi_not_ready;
    config.admin = !args.no_admin;
    let running = DevVault::start(config)
        .await
        .map_err(|e| Failure::chain(&e, false))?;
    // Readiness lines on stdout. A reader that stops reading must not kill the server, so write
    // errors are ignored instead of panicking like println! does.
    let mut banner = format!(
        "listening on https://{}\nca-file {}\ntenant {}\n",
        running.addr(),
        args.ca_file.display(),
        running.tenant()
    );
    for v in &vaults {
        banner.push_str(&format!("vault https://{v}.{}/\n", args.vault_suffix));
    }
    if let Some(identity) = running.identity_addr() {
        banner.push_str(&format!("identity http://{identity}\n"));
    }
    if !args.no_admin {
        banner.push_str(&format!("admin https://{}/_admin/\n", running.addr()));
    }
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(banner.as_bytes());
        let _ = out.flush();
    }
    tracing::info!(addr = %running.addr(), "dev vault ready");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| Failure::internal(format!("failed to watch SIGTERM: {e}")))?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    running.shutdown().await;
    Ok(())
}

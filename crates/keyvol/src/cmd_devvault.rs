//! `keyvol dev-vault`: runs the local Key Vault and Entra ID stand-in until interrupted.

use std::net::SocketAddr;
use std::path::PathBuf;

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
    let mut config = DevVaultConfig::new(seed);
    config.listen = args.listen;
    config.vault_suffix = args.vault_suffix.clone();
    config.authority = args.authority.clone();
    config.extra_hosts = args.extra_hosts.clone();
    config.ca_file = Some(args.ca_file.clone());
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

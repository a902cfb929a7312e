//! `keyvol-dev dev-vault`: runs the local Key Vault, Entra ID, IMDS and NMI stand-in until
//! interrupted. The flags and their meaning live in `keyvol_devvault::cli`; docs/dev-vault.md is
//! the user guide.

use keyvol_cli::Failure;
use keyvol_devvault::DevVault;
use keyvol_devvault::cli::{CliError, DevVaultArgs, banner};

/// `keyvol-dev dev-vault`.
pub async fn run(args: DevVaultArgs) -> Result<(), Failure> {
    let config = args
        .config()
        .map_err(|e| Failure::chain(&e, !matches!(e, CliError::ReadSeed { .. })))?;
    let running = DevVault::start(config.clone())
        .await
        .map_err(|e| Failure::chain(&e, false))?;
    // Readiness lines on stdout. A reader that stops reading must not kill the server, so write
    // errors are ignored instead of panicking like println! does.
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(banner(&args, &config, &running).as_bytes());
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

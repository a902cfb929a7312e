//! The `keyvol` binary — what runs on nodes and ships in the image: parses the command line,
//! sets up logging and the runtime, and hands each subcommand to the crate that implements it.
//! Only `main` decides exit codes. The developer tools (demo, dev vault, benchmarks) are the
//! separate `keyvol-dev` binary, so nothing of them is linked here.

mod azure_flags;
mod cmd_flexvol;
mod cmd_mount;
mod cmd_node;

use clap::{Parser, Subcommand};

/// Secrets, keys and certificates from a key management system as a Kubernetes volume.
/// Name in error lines.
const PROGRAM: &str = "keyvol";

#[derive(Parser)]
#[command(name = "keyvol", version, about, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    log: keyvol_cli::logging::LogArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Fetch what a SecretProviderClass names into a directory, once, without a cluster.
    Mount(Box<cmd_mount::MountArgs>),
    /// Unmount and remove a directory written by `keyvol mount`.
    Unmount(cmd_mount::UnmountArgs),
    /// The CSI node plugin secrets-store.csi.k8s.io (the DaemonSet process).
    Node(Box<cmd_node::NodeArgs>),
    /// Serve the Azure provider over the secrets-store provider gRPC protocol.
    Provider(Box<cmd_node::ProviderArgs>),
    /// Print the SecretProviderClass and SecretProviderClassPodStatus CRDs (YAML).
    Crd,
    /// The FlexVolume driver azure/kv (kubelet's init, mount and unmount calls) and its installer.
    Flexvol(cmd_flexvol::FlexvolArgs),
}

fn main() -> std::process::ExitCode {
    // Installed as `<plugin dir>/azure~kv/kv`, this binary is run by kubelet as `kv <command> …`:
    // a FlexVolume call, whose reply is one JSON object whatever the arguments.
    if cmd_flexvol::invoked_as_driver() {
        return cmd_flexvol::main_as_driver();
    }
    // `keyvol flexvol …` owns its output the same way, whatever its arguments.
    if cmd_flexvol::invoked_as_subcommand() {
        return cmd_flexvol::main_as_subcommand();
    }
    let cli: Cli = match keyvol_cli::run::parse() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    // FlexVolume calls own stdout, stderr and the exit status (kubelet parses both streams as
    // the reply), so they start before logging does.
    let command = match cli.command {
        Command::Flexvol(args) => return cmd_flexvol::main(args),
        other => other,
    };
    keyvol_cli::run::run(PROGRAM, cli.log, async move {
        match command {
            Command::Mount(args) => cmd_mount::run(*args).await,
            Command::Unmount(args) => cmd_mount::run_unmount(args),
            Command::Node(args) => cmd_node::run(*args).await,
            Command::Provider(args) => cmd_node::run_provider_cmd(*args).await,
            Command::Crd => cmd_node::run_crd(),
            // Answered above, before logging starts.
            Command::Flexvol(_) => Ok(()),
        }
    })
}

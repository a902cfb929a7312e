//! The `keyvol` binary: parses the command line, sets up logging and the runtime, and hands each
//! subcommand to the crate that implements it. Only `main` decides exit codes.

mod azure_flags;
mod cmd_bench;
mod cmd_demo;
mod cmd_devvault;
mod cmd_flexvol;
mod cmd_mount;
mod cmd_node;
mod exit;
mod logging;

use clap::{ArgAction, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::exit::Failure;

/// Secrets, keys and certificates from a key management system as a Kubernetes volume.
#[derive(Parser)]
#[command(name = "keyvol", version, about, propagate_version = true)]
struct Cli {
    /// Log verbosity, klog-style: 0 warnings and errors, 2 info, 4 debug, 5 trace.
    #[arg(short = 'v', long = "v", global = true, default_value_t = 0)]
    verbosity: u8,
    /// Log as JSON lines (keys ts, level, msg, then fields) instead of text.
    #[arg(long, global = true)]
    log_format_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a local Key Vault and Entra ID stand-in, mount the example class from it, show the result.
    Demo(cmd_demo::DemoArgs),
    /// Fetch what a SecretProviderClass names into a directory, once, without a cluster.
    Mount(cmd_mount::MountArgs),
    /// Unmount and remove a directory written by `keyvol mount`.
    Unmount(cmd_mount::UnmountArgs),
    /// Serve a local stand-in for Azure Key Vault and Entra ID over HTTPS.
    DevVault(cmd_devvault::DevVaultArgs),
    /// The CSI node plugin secrets-store.csi.k8s.io (the DaemonSet process).
    Node(Box<cmd_node::NodeArgs>),
    /// Serve the Azure provider over the secrets-store provider gRPC protocol.
    Provider(Box<cmd_node::ProviderArgs>),
    /// Print the SecretProviderClass and SecretProviderClassPodStatus CRDs (YAML).
    Crd,
    /// Measure mount latency, vault requests, bursts and memory against the dev vault.
    Bench(cmd_bench::BenchArgs),
    /// The FlexVolume driver azure/kv (kubelet's init, mount and unmount calls) and its installer.
    Flexvol(cmd_flexvol::FlexvolArgs),
}

/// The command line with Go's flag conventions, which upstream's binaries (and so the charts
/// and manifests written for them) rely on: every boolean flag takes `--flag`, `--flag=true` or
/// `--flag=false`, and a flag given twice keeps its last value. Applied once here to every
/// subcommand, so a new boolean flag cannot miss it.
fn go_style(command: clap::Command) -> clap::Command {
    command
        .args_override_self(true)
        .mut_args(go_bool)
        .mut_subcommands(go_style)
}

fn go_bool(arg: clap::Arg) -> clap::Arg {
    if !matches!(arg.get_action(), ArgAction::SetTrue) {
        return arg;
    }
    let default_true = arg
        .get_default_values()
        .first()
        .is_some_and(|v| v == "true");
    arg.action(ArgAction::Set)
        .num_args(0..=1)
        .require_equals(true)
        .default_missing_value("true")
        .default_value(if default_true { "true" } else { "false" })
        .value_parser(clap::value_parser!(bool))
}

/// Parses the command line; `Err` carries clap's message (help and version included) and the
/// exit status it asks for.
fn parse_cli() -> Result<Cli, clap::Error> {
    let matches = go_style(Cli::command()).try_get_matches()?;
    Cli::from_arg_matches(&matches)
}

fn main() -> std::process::ExitCode {
    // Installed as `<plugin dir>/azure~kv/kv`, this binary is run by kubelet as `kv <command> …`:
    // a FlexVolume call, whose reply is one JSON object whatever the arguments.
    if cmd_flexvol::invoked_as_driver() {
        return cmd_flexvol::main_as_driver();
    }
    let cli = match parse_cli() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout with status 0, usage errors to stderr with 2.
            let _ = e.print();
            return std::process::ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    // FlexVolume calls own stdout, stderr and the exit status (kubelet parses both streams as
    // the reply), so they start before logging does.
    if let Command::Flexvol(args) = cli.command {
        return cmd_flexvol::main(args);
    }
    logging::init(cli.verbosity, cli.log_format_json);
    // One crypto provider for the whole process (aws-lc-rs); a second call is harmless.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return exit::report(Failure::internal(format!(
                "failed to start the async runtime: {e}"
            )));
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Demo(args) => cmd_demo::run(args).await,
            Command::Mount(args) => cmd_mount::run(args).await,
            Command::Unmount(args) => cmd_mount::run_unmount(args),
            Command::DevVault(args) => cmd_devvault::run(args).await,
            Command::Node(args) => cmd_node::run(*args).await,
            Command::Provider(args) => cmd_node::run_provider_cmd(*args).await,
            Command::Crd => cmd_node::run_crd(),
            Command::Bench(args) => cmd_bench::run(args).await,
            // Answered above, before logging starts.
            Command::Flexvol(_) => Ok(()),
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(failure) => exit::report(failure),
    }
}

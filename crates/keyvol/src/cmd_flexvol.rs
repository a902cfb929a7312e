//! `keyvol flexvol`: the FlexVolume driver `azure/kv` (kubelet's `init`, `mount`, `unmount`
//! calls, each answered with exactly one JSON object on stdout) and `keyvol flexvol install`,
//! which copies this binary into kubelet's plugin directory as `azure~kv/kv`.
//!
//! Kubelet runs the installed copy as `kv <command> …` with no other arguments, so `main` sends
//! every process started under that name here before parsing keyvol's own command line, and the
//! node-wide settings come from the environment. Kubelet reads stdout and stderr together as the
//! reply, so driver calls never write anything else to either: logs go to `--log-file` or
//! nowhere, and even a panic ends as a `Failure` reply.

use std::io::Write;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use keyvol_azure::{ConnectTo, HttpConfig};
use keyvol_flexvol::install::{DRIVER_FILE, install};
use keyvol_flexvol::{DriverStatus, NodeConfig};

/// Arguments of `keyvol flexvol`.
#[derive(clap::Args, Debug)]
#[command(disable_help_subcommand = true)]
pub struct FlexvolArgs {
    /// Node-wide settings.
    #[command(flatten)]
    pub node: NodeFlags,
    /// A driver call, or `install`.
    #[command(subcommand)]
    pub command: Option<FlexvolCommand>,
}

/// Node-wide driver settings. Kubelet passes the driver none, so each also reads an environment
/// variable (set in kubelet's environment, or by a test).
#[derive(clap::Args, Debug)]
pub struct NodeFlags {
    /// Extra CA certificates (PEM) to trust for Azure endpoints (comma-separated in the
    /// environment). SSL_CERT_FILE and SSL_CERT_DIR are honoured as well.
    #[arg(
        long = "azure-ca-file",
        env = "KEYVOL_AZURE_CA_FILE",
        value_name = "PEM",
        value_delimiter = ','
    )]
    pub ca_files: Vec<PathBuf>,
    /// Send every Azure Key Vault and Entra ID host name to this address; TLS still checks the
    /// real names. For the dev vault.
    #[arg(
        long = "azure-connect-to",
        env = "KEYVOL_AZURE_CONNECT_TO",
        value_name = "ADDR:PORT"
    )]
    pub connect_to: Option<SocketAddr>,
    /// Base URL of the instance metadata service (usevmmanagedidentity).
    #[arg(
        long = "imds-endpoint",
        env = "KEYVOL_IMDS_ENDPOINT",
        default_value = keyvol_azure::identity::DEFAULT_IMDS_ENDPOINT
    )]
    pub imds_endpoint: String,
    /// Deadline of one mount's fetch, retries included. Below kubelet's patience for a volume.
    #[arg(
        long = "azure-mount-timeout",
        env = "KEYVOL_AZURE_MOUNT_TIMEOUT",
        value_parser = humantime::parse_duration,
        default_value = "100s"
    )]
    pub mount_timeout: Duration,
    /// Append the driver's logs (info level, never secrets) to this file. Without it driver calls
    /// log nothing: kubelet parses stderr together with stdout as the JSON reply.
    #[arg(
        long = "log-file",
        env = "KEYVOL_FLEXVOL_LOG_FILE",
        value_name = "FILE"
    )]
    pub log_file: Option<PathBuf>,
}

impl NodeFlags {
    fn node_config(&self) -> NodeConfig {
        NodeConfig {
            http: HttpConfig {
                ca_files: self.ca_files.clone(),
                ca_pems: Vec::new(),
                connect_to: self.connect_to.map(ConnectTo::all_azure),
                try_timeout: None,
            },
            imds_endpoint: self.imds_endpoint.clone(),
            mount_timeout: self.mount_timeout,
        }
    }
}

/// What `keyvol flexvol` does.
#[derive(clap::Subcommand, Debug)]
pub enum FlexvolCommand {
    /// Copy this binary to DIR/azure~kv/kv (atomically, mode 0755), then keep running until
    /// SIGTERM so a DaemonSet pod stays up. DIR is kubelet's --volume-plugin-dir.
    Install(InstallArgs),
    /// A driver call as kubelet makes it: `init`, `mount <dir> <json options>`, `unmount <dir>`;
    /// any other command is answered "Not supported".
    #[command(external_subcommand)]
    Call(Vec<String>),
}

/// Arguments of `keyvol flexvol install`.
#[derive(clap::Args, Debug)]
pub struct InstallArgs {
    /// Kubelet's FlexVolume plugin directory (its --volume-plugin-dir).
    #[arg(long, env = "TARGET_DIR", value_name = "DIR")]
    pub target_dir: PathBuf,
    /// Exit after installing instead of waiting for SIGTERM.
    #[arg(long)]
    pub once: bool,
}

/// The command line of the installed driver, `kv <command> …`.
#[derive(clap::Parser, Debug)]
#[command(
    name = "kv",
    disable_help_subcommand = true,
    disable_version_flag = true
)]
struct DriverCli {
    #[command(flatten)]
    node: NodeFlags,
    #[command(subcommand)]
    command: Option<FlexvolCommand>,
}

/// True when this process was started as the installed driver (`…/azure~kv/kv`).
pub fn invoked_as_driver() -> bool {
    std::env::args_os()
        .next()
        .is_some_and(|argv0| Path::new(&argv0).file_name() == Some(DRIVER_FILE.as_ref()))
}

/// True when the command line is `keyvol flexvol …`: it is parsed by [`main_as_subcommand`]
/// before keyvol's own command line, so that even arguments keyvol's parser would refuse (not
/// UTF-8, unknown flags) are answered with one JSON object, as kubelet expects.
pub fn invoked_as_subcommand() -> bool {
    std::env::args_os().nth(1).is_some_and(|a| a == "flexvol")
}

/// Runs `keyvol flexvol …` (driver calls and `install`).
pub fn main_as_subcommand() -> ExitCode {
    // "keyvol flexvol" stands in for the program name, so usage text reads as typed.
    let args: Vec<std::ffi::OsString> = std::iter::once("keyvol flexvol".into())
        .chain(std::env::args_os().skip(2))
        .collect();
    // `install` is an ordinary command: its usage errors and help are text on stderr/stdout.
    if args.get(1).is_some_and(|a| a == "install") {
        return match DriverCli::try_parse_from(&args) {
            Ok(cli) => main(FlexvolArgs {
                node: cli.node,
                command: cli.command,
            }),
            Err(e) => {
                let _ = e.print();
                ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2))
            }
        };
    }
    driver_main(args)
}

/// Runs the process as the installed driver: `kv <command> …`.
pub fn main_as_driver() -> ExitCode {
    driver_main(std::env::args_os().collect())
}

/// A driver call's command line (program name first): every outcome, a parse failure
/// included, is one JSON reply.
fn driver_main(args: Vec<std::ffi::OsString>) -> ExitCode {
    match DriverCli::try_parse_from(args) {
        Ok(cli) => main(FlexvolArgs {
            node: cli.node,
            command: cli.command,
        }),
        // Only the kind: clap's full message quotes the offending argument.
        Err(e) => {
            let kind = e.kind().to_string();
            let why = if kind.is_empty() { "help asked" } else { &kind };
            reply(&DriverStatus::failure(format!(
                "invalid driver arguments ({why}); usage: kv init | kv mount <dir> <json options> | kv unmount <dir>"
            )))
        }
    }
}

/// Runs `keyvol flexvol …`; owns stdout, stderr and the exit status.
pub fn main(args: FlexvolArgs) -> ExitCode {
    match args.command {
        Some(FlexvolCommand::Install(install_args)) => run_install(install_args),
        Some(FlexvolCommand::Call(call)) => run_call(&args.node, call),
        None => run_call(&args.node, Vec::new()),
    }
}

/// One driver call: exactly one JSON line on stdout, nothing on stderr, exit 0 or 1.
fn run_call(flags: &NodeFlags, call: Vec<String>) -> ExitCode {
    init_file_logging(flags.log_file.as_deref());
    // The default hook prints to stderr, which kubelet would read as part of the reply.
    std::panic::set_hook(Box::new(|info| tracing::error!("panic: {info}")));
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let node = flags.node_config();
    let status = std::panic::catch_unwind(AssertUnwindSafe(|| {
        match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime.block_on(keyvol_flexvol::run(&call, &node)),
            Err(e) => DriverStatus::failure(format!("failed to start the async runtime: {e}")),
        }
    }))
    .unwrap_or_else(|_| {
        DriverStatus::failure(
            "the driver failed unexpectedly (a keyvol bug; --log-file records it)",
        )
    });
    reply(&status)
}

/// Prints the reply and picks the exit status.
fn reply(status: &DriverStatus) -> ExitCode {
    let mut out = std::io::stdout().lock();
    // Nothing useful can be done if kubelet stopped reading.
    let _ = out.write_all(status.to_line().as_bytes());
    let _ = out.flush();
    ExitCode::from(status.exit_code())
}

/// Logs to `path` (appended), or nowhere. Never to stderr.
fn init_file_logging(path: Option<&Path>) {
    if let Some(path) = path {
        keyvol_cli::logging::init_file(path);
    }
}

/// `keyvol flexvol install`: an ordinary command (logs and errors on stderr).
fn run_install(args: InstallArgs) -> ExitCode {
    let fail = |message: String| {
        eprintln!("keyvol: error: {message}");
        ExitCode::from(1)
    };
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => return fail(format!("failed to find the running executable: {e}")),
    };
    match install(&exe, &args.target_dir) {
        Ok(path) => println!(
            "installed the azure/kv FlexVolume driver at {}",
            path.display()
        ),
        Err(e) => return fail(keyvol_core::report::chain(&e)),
    }
    if args.once {
        return ExitCode::SUCCESS;
    }
    println!("installed; waiting for SIGTERM");
    let _ = std::io::stdout().flush();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(format!("failed to start the async runtime: {e}")),
    };
    runtime.block_on(async {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => return fail(format!("failed to watch SIGTERM: {e}")),
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        ExitCode::SUCCESS
    })
}

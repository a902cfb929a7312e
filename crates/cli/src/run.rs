//! How a binary runs one command: the command line parsed with Go's conventions, logging set
//! up, the one rustls crypto provider (aws-lc-rs) installed, a multi-threaded runtime started,
//! and the command's result turned into the exit status — the same for both binaries.

use std::future::Future;
use std::process::ExitCode;

use crate::exit::{Failure, report};
use crate::{flags, logging};

/// Parses the process's command line for `P` with [`flags::go_style`]. On `Err` the caller
/// returns the exit code: clap has printed help, the version (status 0) or a usage error (2).
pub fn parse<P: clap::Parser>() -> Result<P, ExitCode> {
    let parsed = flags::go_style(P::command())
        .try_get_matches()
        .and_then(|matches| P::from_arg_matches(&matches));
    parsed.map_err(|e| {
        let _ = e.print();
        ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2))
    })
}

/// Runs `command` to completion on a fresh multi-threaded runtime after setting up logging
/// and TLS, and maps its outcome to the exit status, printing a failure as
/// `<program>: error: …`.
pub fn run<F>(program: &str, log: logging::LogArgs, command: F) -> ExitCode
where
    F: Future<Output = Result<(), Failure>>,
{
    logging::init(log.verbosity, log.log_format_json);
    // One crypto provider for the whole process; a second call is harmless.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return report(
                program,
                Failure::internal(format!("failed to start the async runtime: {e}")),
            );
        }
    };
    match runtime.block_on(command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => report(program, failure),
    }
}

//! keyvol-cli: the edge both binaries share — the production `keyvol` and the developer tools'
//! `keyvol-dev`. Nothing here knows a subcommand.
//!
//! - [`logging`]: klog-style `-v`, plain text or `--log-format-json` lines on stderr.
//! - [`flags`]: Go's flag conventions for every boolean flag (`--flag=true|false`) and for
//!   repeated flags, applied to a whole clap command tree.
//! - [`exit`]: [`Failure`], the one way a command fails, rendered once as the CLI's last line
//!   with an exit status by class.
//! - [`run`]: parse, set up logging, TLS and the runtime, run one command, exit.

pub mod exit;
pub mod flags;
pub mod logging;
pub mod run;

pub use exit::{Failure, report};

//! How a failed command ends: one `<binary>: error: …` line on stderr with the whole cause chain,
//! and an exit status by class (1 runtime failure, 2 invalid input).

use std::process::ExitCode;

use keyvol_core::ProviderErrorKind;
use keyvol_core::volume::PublishError;

/// A command's failure, rendered once at the edge.
#[derive(Debug)]
pub struct Failure {
    message: String,
    invalid_input: bool,
}

impl Failure {
    /// Bad input (class, flags, files).
    pub fn input(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            invalid_input: true,
        }
    }

    /// Anything else.
    pub fn internal(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            invalid_input: false,
        }
    }

    /// From an error with a source chain, rendered by `keyvol_core::report::chain`.
    pub fn chain(err: &(dyn std::error::Error + 'static), invalid_input: bool) -> Self {
        Self {
            message: keyvol_core::report::chain(err),
            invalid_input,
        }
    }
}

impl From<PublishError> for Failure {
    fn from(e: PublishError) -> Self {
        let invalid = matches!(&e, PublishError::Provider(p) if p.kind == ProviderErrorKind::InvalidArgument)
            || e.is_invalid_input();
        Failure::chain(&e, invalid)
    }
}

/// Prints the failure as `<program>: error: …` and picks the exit status.
pub fn report(program: &str, failure: Failure) -> ExitCode {
    eprintln!("{program}: error: {}", failure.message);
    if failure.invalid_input {
        ExitCode::from(2)
    } else {
        ExitCode::from(1)
    }
}

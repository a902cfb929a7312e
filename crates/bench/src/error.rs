//! Why a benchmark run failed. One enum for the harness: every variant names what failed and
//! carries its context; the source chain is rendered once, by the CLI.

use std::path::PathBuf;
use std::time::Duration;

/// A failed benchmark run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The settings make no sense (e.g. no samples).
    #[error("invalid benchmark settings: {0}")]
    Settings(String),
    /// The working directory could not be created.
    #[error("failed to create the benchmark's working directory")]
    WorkDir(#[source] std::io::Error),
    /// A file could not be written.
    #[error("failed to write {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The benchmark's seed was refused by the dev vault.
    #[error("failed to build the dev vault seed")]
    Seed(#[from] keyvol_devvault::seed::SeedError),
    /// The dev vault did not start.
    #[error("failed to start the dev vault")]
    DevVault(#[from] keyvol_devvault::DevVaultError),
    /// The added-latency rule was refused.
    #[error("failed to set the dev vault's added latency")]
    Fault(#[from] keyvol_devvault::faults::FaultError),
    /// The fake Kubernetes API failed.
    #[error("the fake Kubernetes API failed")]
    FakeKube(#[from] keyvol_fakekube::FakeError),
    /// A daemon could not be started.
    #[error("failed to start keyvol {daemon} ({binary})")]
    Spawn {
        /// `node` or `provider`.
        daemon: &'static str,
        /// The binary.
        binary: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A daemon exited while the benchmark needed it.
    #[error("keyvol {daemon} exited unexpectedly ({status})")]
    DaemonExited {
        /// `node` or `provider`.
        daemon: &'static str,
        /// Its exit status.
        status: String,
    },
    /// A daemon's socket did not answer in time.
    #[error("keyvol {daemon} did not serve {socket} within {waited:?}")]
    DaemonNotReady {
        /// `node` or `provider`.
        daemon: &'static str,
        /// The socket.
        socket: PathBuf,
        /// How long the harness waited.
        waited: Duration,
    },
    /// Dialling a daemon's socket failed.
    #[error("failed to connect to {socket}")]
    Connect {
        /// The socket.
        socket: PathBuf,
        /// The cause.
        #[source]
        source: keyvol_proto::uds::UdsError,
    },
    /// A gRPC call the measurement depends on failed.
    #[error("{call} failed: {code:?}: {message}")]
    Call {
        /// The call (`NodePublishVolume`, `Mount`, …).
        call: &'static str,
        /// The gRPC code.
        code: keyvol_proto::tonic::Code,
        /// The status message.
        message: String,
    },
    /// The answer to a call was not what the benchmark asked for.
    #[error("{call} returned {got} files, expected {expected}")]
    WrongAnswer {
        /// The call.
        call: &'static str,
        /// Files expected.
        expected: usize,
        /// Files returned.
        got: usize,
    },
    /// More service principals were needed than were seeded.
    #[error("the identity pool of {size} service principals is used up")]
    IdentitiesExhausted {
        /// Seeded identities.
        size: usize,
    },
    /// `/proc/<pid>/status` could not be read.
    #[error("failed to read {path}")]
    ReadProc {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// `/proc/<pid>/status` lacked `VmRSS` or `VmHWM`.
    #[error("{path} has no VmRSS/VmHWM lines")]
    ProcFormat {
        /// The file.
        path: PathBuf,
    },
    /// The report could not be serialised.
    #[error("failed to serialise the report")]
    Json(#[from] serde_json::Error),
    /// A smoke run saw failures (bursts with errors, failed requests).
    #[error("the smoke run saw failures: {0}")]
    SmokeFailures(String),
}

impl BenchError {
    /// A failed gRPC call.
    pub fn call(call: &'static str, status: &keyvol_proto::tonic::Status) -> Self {
        BenchError::Call {
            call,
            code: status.code(),
            message: status.message().to_owned(),
        }
    }
}

//! The daemons under measurement, `keyvol node` and `keyvol provider`, as child processes of the
//! harness: started with a clean environment, ready once their socket answers, stopped with
//! SIGTERM (SIGKILL after a grace period) — and killed and reaped when dropped, on any path.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::BenchError;
use crate::resident::Resident;

/// How long a daemon may take to serve its socket (a debug build under load is slow to start).
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How often readiness and exit are polled.
const POLL: Duration = Duration::from_millis(20);
/// How long a daemon gets to exit after SIGTERM.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// A running daemon.
pub struct Daemon {
    name: &'static str,
    child: Option<Child>,
    pid: u32,
    socket: PathBuf,
}

impl Daemon {
    /// Starts `binary args…` and waits until `socket` accepts a gRPC connection.
    pub async fn start(
        name: &'static str,
        binary: &Path,
        args: Vec<OsString>,
        socket: PathBuf,
    ) -> Result<Self, BenchError> {
        // A socket left by an earlier process would look like readiness.
        let _ = std::fs::remove_file(&socket);
        let child = Command::new(binary)
            .args(args)
            // Nothing from the harness's environment (SSL_CERT_FILE, KUBECONFIG, RUST_LOG…)
            // reaches the daemon: every setting is a flag.
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|source| BenchError::Spawn {
                daemon: name,
                binary: binary.to_path_buf(),
                source,
            })?;
        let mut daemon = Self {
            name,
            pid: child.id(),
            child: Some(child),
            socket,
        };
        daemon.wait_ready().await?;
        Ok(daemon)
    }

    async fn wait_ready(&mut self) -> Result<(), BenchError> {
        let started = Instant::now();
        loop {
            self.check_running()?;
            if self.socket.exists() && keyvol_proto::uds::connect(&self.socket).await.is_ok() {
                return Ok(());
            }
            if started.elapsed() > READY_TIMEOUT {
                return Err(BenchError::DaemonNotReady {
                    daemon: self.name,
                    socket: self.socket.clone(),
                    waited: READY_TIMEOUT,
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Fails if the process has exited.
    pub fn check_running(&mut self) -> Result<(), BenchError> {
        let exited = match self.child.as_mut() {
            Some(child) => child.try_wait().ok().flatten(),
            None => None,
        };
        match exited {
            Some(status) => Err(BenchError::DaemonExited {
                daemon: self.name,
                status: status.to_string(),
            }),
            None if self.child.is_none() => Err(BenchError::DaemonExited {
                daemon: self.name,
                status: "stopped".into(),
            }),
            None => Ok(()),
        }
    }

    /// The socket it serves.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Its resident set now.
    pub fn resident(&mut self) -> Result<Resident, BenchError> {
        self.check_running()?;
        Resident::of_pid(self.pid)
    }

    /// Resets the peak of its resident set (`VmHWM`) to the current size by writing `5` to
    /// `/proc/<pid>/clear_refs` (root, Linux 4.0 and later); false when that is refused.
    pub fn reset_peak(&mut self) -> Result<bool, BenchError> {
        self.check_running()?;
        Ok(std::fs::write(format!("/proc/{}/clear_refs", self.pid), "5").is_ok())
    }

    /// SIGTERM, then SIGKILL if it has not exited within the grace period; always reaped.
    pub async fn stop(mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Some(pid) = i32::try_from(self.pid)
            .ok()
            .and_then(rustix::process::Pid::from_raw)
        {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            tokio::time::sleep(POLL).await;
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

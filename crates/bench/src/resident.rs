//! Resident memory of a process, from `/proc/<pid>/status`: `VmRSS` (resident now) and `VmHWM`
//! (the high-water mark of the resident set since the process started), in KiB as the kernel
//! reports them.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::BenchError;

/// Resident set of one process at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resident {
    /// `VmRSS`, KiB.
    pub rss_kib: u64,
    /// `VmHWM`, KiB.
    pub hwm_kib: u64,
}

impl Resident {
    /// Reads `/proc/<pid>/status`.
    pub fn of_pid(pid: u32) -> Result<Self, BenchError> {
        let path = PathBuf::from(format!("/proc/{pid}/status"));
        let text = std::fs::read_to_string(&path).map_err(|source| BenchError::ReadProc {
            path: path.clone(),
            source,
        })?;
        Self::parse(&text).ok_or(BenchError::ProcFormat { path })
    }

    /// Parses the text of a `status` file; `None` when either field is missing.
    pub fn parse(status: &str) -> Option<Self> {
        Some(Self {
            rss_kib: field_kib(status, "VmRSS:")?,
            hwm_kib: field_kib(status, "VmHWM:")?,
        })
    }
}

/// The value of a `Name:   1234 kB` line.
fn field_kib(status: &str, name: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?;
        let mut words = rest.split_whitespace();
        let value = words.next()?.parse().ok()?;
        (words.next() == Some("kB")).then_some(value)
    })
}

/// KiB as MiB, for tables.
pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_rss_and_vm_hwm_are_read_from_a_status_file() {
        let text = "Name:\tkeyvol\nUmask:\t0022\nVmPeak:\t  901234 kB\nVmHWM:\t   23456 kB\nVmRSS:\t   20480 kB\nThreads:\t5\n";
        assert_eq!(
            Resident::parse(text),
            Some(Resident {
                rss_kib: 20480,
                hwm_kib: 23456
            })
        );
        assert_eq!(Resident::parse("VmRSS:\t1 kB\n"), None);
        assert_eq!(Resident::parse("VmRSS:\tlots kB\nVmHWM:\t1 kB\n"), None);
        assert_eq!(mib(20480), 20.0);
    }

    #[test]
    fn this_process_has_a_resident_set() {
        let me = Resident::of_pid(std::process::id()).expect("own status");
        assert!(me.rss_kib > 0 && me.hwm_kib >= me.rss_kib);
    }
}

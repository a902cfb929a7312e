//! The machine a run measured: CPU model and count, memory, kernel, OS, whether it ran as root,
//! and the load average before the run started (other work on the machine) and after it.
//! Everything comes from `/proc` and `/etc/os-release`; a file that cannot be read leaves its
//! field empty rather than failing the run.

use serde::{Deserialize, Serialize};

/// A description of the machine.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Machine {
    /// `model name` of the first CPU in `/proc/cpuinfo`.
    pub cpu_model: String,
    /// CPUs this process may run on.
    pub cpus: usize,
    /// `MemTotal`, KiB.
    pub memory_kib: u64,
    /// Kernel release.
    pub kernel: String,
    /// `PRETTY_NAME` from `/etc/os-release`.
    pub os: String,
    /// Effective user is root (tmpfs mounts possible).
    pub root: bool,
    /// 1-, 5- and 15-minute load averages just before the run: work other than the benchmark.
    pub load_before: [f64; 3],
    /// Load averages just after the run (the benchmark's own work included).
    pub load_after: [f64; 3],
}

impl Machine {
    /// Reads what it can.
    pub fn probe() -> Self {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        Self {
            cpu_model: cpu_model(&read("/proc/cpuinfo")),
            cpus: std::thread::available_parallelism()
                .map(usize::from)
                .unwrap_or(0),
            memory_kib: mem_total_kib(&read("/proc/meminfo")),
            kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
            os: os_name(&read("/etc/os-release")),
            root: rustix::process::geteuid().is_root(),
            load_before: load_average(&read("/proc/loadavg")),
            load_after: [0.0; 3],
        }
    }

    /// Records the load average at the end of the run.
    pub fn finish(&mut self) {
        self.load_after =
            load_average(&std::fs::read_to_string("/proc/loadavg").unwrap_or_default());
    }

    /// One line for people: "2 × AMD EPYC …, 23.5 GiB, Linux 6.1 (Debian 12), load 0.71 before".
    pub fn describe(&self) -> String {
        let model = if self.cpu_model.is_empty() {
            "unknown CPU"
        } else {
            &self.cpu_model
        };
        format!(
            "{} × {model}, {:.1} GiB memory, Linux {}{}",
            self.cpus,
            self.memory_kib as f64 / (1024.0 * 1024.0),
            self.kernel,
            if self.os.is_empty() {
                String::new()
            } else {
                format!(" ({})", self.os)
            },
        )
    }
}

fn cpu_model(cpuinfo: &str) -> String {
    cpuinfo
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == "model name").then(|| v.trim().to_owned())
        })
        .unwrap_or_default()
}

fn mem_total_kib(meminfo: &str) -> u64 {
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn os_name(os_release: &str) -> String {
    os_release
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim().trim_matches('"').to_owned())
        .unwrap_or_default()
}

fn load_average(loadavg: &str) -> [f64; 3] {
    let mut out = [0.0; 3];
    for (slot, word) in out.iter_mut().zip(loadavg.split_whitespace()) {
        *slot = word.parse().unwrap_or(0.0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_files_are_read_into_the_description() {
        assert_eq!(
            cpu_model("processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t: x\n"),
            "AMD EPYC 7B13"
        );
        assert_eq!(
            mem_total_kib("MemTotal:       24684000 kB\nMemFree: 1 kB\n"),
            24_684_000
        );
        assert_eq!(
            os_name("NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n"),
            "Debian GNU/Linux 12 (bookworm)"
        );
        assert_eq!(
            load_average("0.71 1.29 1.46 2/300 4242\n"),
            [0.71, 1.29, 1.46]
        );
        assert_eq!(load_average(""), [0.0; 3]);
        let m = Machine {
            cpu_model: "Test CPU".into(),
            cpus: 2,
            memory_kib: 2 * 1024 * 1024,
            kernel: "6.1.0".into(),
            os: "Debian".into(),
            ..Machine::default()
        };
        assert_eq!(
            m.describe(),
            "2 × Test CPU, 2.0 GiB memory, Linux 6.1.0 (Debian)"
        );
    }
}

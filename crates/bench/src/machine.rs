//! The machine a run measured: CPU model and count, memory, kernel, OS, whether it ran as root,
//! the load average before and after the run, and the share of the machine's CPU time that
//! other work used during the run (all CPU time counted in `/proc/stat`, less the harness's and
//! its reaped daemons' own from `/proc/self/stat`). Everything comes from `/proc` and
//! `/etc/os-release`; a file that cannot be read leaves its field empty rather than failing the
//! run.

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
    /// Percent of the machine's CPU time (all CPUs) used during the run by anything other than
    /// the harness and its daemons.
    pub other_cpu_percent: Option<f64>,
}

/// CPU time counters at one moment, in clock ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuSnapshot {
    /// All CPUs, every state.
    total: u64,
    /// All CPUs, busy (everything but idle and iowait).
    busy: u64,
    /// This process and its reaped children, user and system.
    own: u64,
}

impl CpuSnapshot {
    /// Reads `/proc/stat` and `/proc/self/stat`.
    pub fn take() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let own = std::fs::read_to_string("/proc/self/stat").ok()?;
        Self::parse(&stat, &own)
    }

    fn parse(proc_stat: &str, self_stat: &str) -> Option<Self> {
        let line = proc_stat.lines().find(|l| l.starts_with("cpu "))?;
        let v: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .map(|f| f.parse().unwrap_or(0))
            .collect();
        // user nice system idle iowait irq softirq steal (guest time is already in user).
        let total: u64 = v.iter().take(8).sum();
        let idle = v.get(3)? + v.get(4).copied().unwrap_or(0);
        // Fields after the command name: state is field 3, utime..cstime are fields 14-17.
        let rest = self_stat.rsplit_once(')')?.1;
        let f: Vec<u64> = rest
            .split_whitespace()
            .map(|x| x.parse().unwrap_or(0))
            .collect();
        let own = f.get(11)? + f.get(12)? + f.get(13)? + f.get(14)?;
        Some(Self {
            total,
            busy: total.saturating_sub(idle),
            own,
        })
    }

    /// Percent of all CPU time between `self` and `later` used by others.
    pub fn other_percent(&self, later: &CpuSnapshot) -> Option<f64> {
        let total = later.total.checked_sub(self.total)?;
        if total == 0 {
            return None;
        }
        let busy = later.busy.saturating_sub(self.busy);
        let own = later.own.saturating_sub(self.own);
        Some(busy.saturating_sub(own) as f64 * 100.0 / total as f64)
    }
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
            other_cpu_percent: None,
        }
    }

    /// Records the load average at the end of the run and the other work since `start`.
    pub fn finish(&mut self, start: Option<CpuSnapshot>) {
        self.load_after =
            load_average(&std::fs::read_to_string("/proc/loadavg").unwrap_or_default());
        self.other_cpu_percent = start
            .zip(CpuSnapshot::take())
            .and_then(|(a, b)| a.other_percent(&b));
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
    fn other_work_is_busy_time_less_our_own() {
        let stat =
            |user: u64, idle: u64| format!("cpu  {user} 0 0 {idle} 0 0 0 0 0 0\ncpu0 1 2 3\n");
        let own = |t: u64| format!("42 (keyvol-dev bench) S 1 2 3 4 5 6 7 8 9 10 {t} 0 0 0 20 0\n");
        let a = CpuSnapshot::parse(&stat(100, 1000), &own(10)).expect("before");
        let b = CpuSnapshot::parse(&stat(400, 1700), &own(110)).expect("after");
        // 1000 ticks passed, 300 busy, 100 of them ours: 200 others = 20 %.
        assert_eq!(a.other_percent(&b), Some(20.0));
        assert_eq!(a.other_percent(&a), None);
        assert!(CpuSnapshot::parse("nothing", &own(1)).is_none());
        assert!(CpuSnapshot::parse(&stat(1, 1), "no parenthesis").is_none());
    }

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

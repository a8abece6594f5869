//! Run metadata for reports: where and on what a measurement was taken.

use serde::Serialize;
use std::process::Command;

/// Host and build facts recorded in every JSON report.
#[derive(Debug, Clone, Serialize)]
pub struct RunMeta {
    /// `git rev-parse HEAD` of the working directory, if it is a git checkout.
    pub git_commit: Option<String>,
    /// `model name` from /proc/cpuinfo.
    pub cpu_model: Option<String>,
    /// Kernel release (/proc/sys/kernel/osrelease).
    pub kernel: Option<String>,
    /// Online CPUs.
    pub cores: usize,
    /// Tool version.
    pub tool_version: &'static str,
    /// Seconds since the epoch at start.
    pub started_unix_s: u64,
}

impl RunMeta {
    /// Collects what is available; missing facts are `None`.
    pub fn collect() -> Self {
        let git_commit = Command::new("git")
            .args(["rev-parse", "HEAD"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        });
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .ok()
            .map(|s| s.trim().to_string());
        Self {
            git_commit,
            cpu_model,
            kernel,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            tool_version: env!("CARGO_PKG_VERSION"),
            started_unix_s: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        }
    }
}

/// Parses a CPU list such as `0,2-4` into CPU ids.
pub fn parse_cpus(s: &str) -> Result<Vec<usize>, String> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let a: usize = a.parse().map_err(|_| format!("bad cpu range {part}"))?;
                let b: usize = b.parse().map_err(|_| format!("bad cpu range {part}"))?;
                if a > b {
                    return Err(format!("bad cpu range {part}"));
                }
                out.extend(a..=b);
            }
            None => out.push(part.parse().map_err(|_| format!("bad cpu {part}"))?),
        }
    }
    Ok(out)
}

/// Pins the calling thread to `cpus[index % len]`; no-op for an empty list.
pub fn pin(cpus: &[usize], index: usize) {
    if !cpus.is_empty() {
        let id = cpus[index % cpus.len()];
        if !core_affinity::set_for_current(core_affinity::CoreId { id }) {
            eprintln!("warning: could not pin a thread to cpu {id}");
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn cpu_lists() {
        assert_eq!(super::parse_cpus("0,2-4").expect("ok"), vec![0, 2, 3, 4]);
        assert!(super::parse_cpus("3-1").is_err());
        assert!(super::parse_cpus("").expect("ok").is_empty());
    }
}

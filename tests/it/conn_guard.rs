//! Proof that test clients reach the brokers only through Sluice.
//!
//! A background thread samples the established TCP connections of this network namespace
//! (`/proc/net/tcp` and `/proc/net/tcp6`, as `ss -tn` does) every few milliseconds and records each one
//! whose remote port is a broker's CLIENT port, with the process that owns the socket (found through
//! `/proc/<pid>/fd`, as `ss -p` does). [`ConnGuard::finish`] then tells which processes connected.
//! [`Report::assert_only`] passes when every such connection belonged to Sluice and at least one was
//! seen, so the check can fail: a client that bypassed the gateway shows up under its own pid.
//!
//! Harness probes (readiness checks run directly against the brokers) register their pids with
//! [`exempt_pid`] and are left out.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

const SAMPLE_EVERY: Duration = Duration::from_millis(25);

static EXEMPT: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// Leaves connections of `pid` (a harness probe) out of every guard's report.
pub fn exempt_pid(pid: u32) {
    EXEMPT.lock().unwrap_or_else(|p| p.into_inner()).push(pid);
}

fn exempt_pids() -> HashSet<u32> {
    EXEMPT
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .copied()
        .collect()
}

/// One connection to a broker CLIENT port.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Conn {
    /// Owning process; `None` when the socket was gone before its owner was found.
    pub pid: Option<u32>,
    /// The owner's command name (`/proc/<pid>/comm`).
    pub comm: String,
    pub local: String,
    pub remote_port: u16,
}

/// A running sampler; see the module docs.
pub struct ConnGuard {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Vec<Conn>>>,
    ports: Vec<u16>,
}

/// What a guard saw.
#[derive(Debug)]
pub struct Report {
    pub ports: Vec<u16>,
    /// Every distinct connection to a watched port, harness probes left out.
    pub conns: Vec<Conn>,
}

impl ConnGuard {
    /// Starts sampling connections to `broker_client_ports`.
    pub fn start(broker_client_ports: &[u16]) -> ConnGuard {
        let stop = Arc::new(AtomicBool::new(false));
        let ports: HashSet<u16> = broker_client_ports.iter().copied().collect();
        let stop2 = Arc::clone(&stop);
        let thread = thread::Builder::new()
            .name("conn-guard".into())
            .spawn(move || sample_loop(&ports, &stop2))
            .expect("spawn conn-guard thread");
        ConnGuard {
            stop,
            thread: Some(thread),
            ports: broker_client_ports.to_vec(),
        }
    }

    /// Stops sampling (after one last sample) and returns what was seen.
    pub fn finish(mut self) -> Report {
        self.stop.store(true, Ordering::SeqCst);
        let seen = self
            .thread
            .take()
            .expect("guard thread")
            .join()
            .expect("conn-guard thread panicked");
        let exempt = exempt_pids();
        let conns = seen
            .into_iter()
            .filter(|c| !c.pid.is_some_and(|p| exempt.contains(&p)))
            .collect();
        Report {
            ports: self.ports.clone(),
            conns,
        }
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Report {
    /// Connections per owning pid.
    pub fn by_pid(&self) -> BTreeMap<Option<u32>, Vec<&Conn>> {
        let mut m: BTreeMap<Option<u32>, Vec<&Conn>> = BTreeMap::new();
        for c in &self.conns {
            m.entry(c.pid).or_default().push(c);
        }
        m
    }

    /// Asserts that every connection to a broker CLIENT port was owned by `sluice_pid`, and that at
    /// least one was seen. Connections whose owner could not be found (closed within one sample)
    /// are tolerated but counted in the message.
    pub fn assert_only(&self, sluice_pid: u32) {
        match self.check_only(sluice_pid) {
            Ok(summary) => eprintln!("[it] conn-guard: {summary}"),
            Err(e) => panic!("{e}"),
        }
    }

    /// [`Report::assert_only`] without the panic.
    pub fn check_only(&self, sluice_pid: u32) -> Result<String, String> {
        let by_pid = self.by_pid();
        let unknown = by_pid.get(&None).map_or(0, Vec::len);
        let intruders: Vec<&Conn> = self
            .conns
            .iter()
            .filter(|c| c.pid.is_some_and(|p| p != sluice_pid))
            .collect();
        if !intruders.is_empty() {
            return Err(format!(
                "connections to broker CLIENT ports {:?} that bypassed Sluice (pid {sluice_pid}):\n{}",
                self.ports,
                intruders
                    .iter()
                    .map(|c| format!("  {c}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            ));
        }
        let own = by_pid.get(&Some(sluice_pid)).map_or(0, Vec::len);
        if own == 0 {
            return Err(format!(
                "no connection from Sluice (pid {sluice_pid}) to broker CLIENT ports {:?} was seen: \
                 the guard saw nothing, so it proves nothing ({unknown} connection(s) of unknown owner)",
                self.ports
            ));
        }
        Ok(format!(
            "{own} connection(s) to broker client ports {:?}, all from pid {sluice_pid}; {unknown} of unknown owner",
            self.ports
        ))
    }

    /// The pids (other than harness probes) that connected to broker CLIENT ports.
    pub fn pids(&self) -> BTreeSet<u32> {
        self.conns.iter().filter_map(|c| c.pid).collect()
    }
}

impl std::fmt::Display for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.pid {
            Some(p) => write!(f, "pid {p} ({})", self.comm)?,
            None => write!(f, "unknown owner")?,
        }
        write!(f, ": {} -> 127.0.0.1:{}", self.local, self.remote_port)
    }
}

/// `/proc/net/tcp{,6}` address (`0100007F:1F90`, or 32 hex digits for IPv6) as `ip:port`.
fn decode_addr(hex: &str) -> String {
    let Some((ip, port)) = hex.split_once(':') else {
        return hex.to_string();
    };
    let port = u16::from_str_radix(port, 16).unwrap_or(0);
    // Both are arrays of little-endian 32-bit words; IPv4 (or IPv4-mapped IPv6) is the last word.
    let word = &ip[ip.len().saturating_sub(8)..];
    let v4 = u32::from_str_radix(word, 16).map(|w| std::net::Ipv4Addr::from(w.swap_bytes()));
    match v4 {
        Ok(a) if ip.len() == 8 || ip.starts_with("0000000000000000FFFF0000") => {
            format!("{a}:{port}")
        }
        _ => format!("[{ip}]:{port}"),
    }
}

/// One socket from /proc/net/tcp*: (inode, local address, remote port).
type Socket = (u64, String, u16);

fn sample_loop(ports: &HashSet<u16>, stop: &AtomicBool) -> Vec<Conn> {
    // inode -> connection (with its owner once found)
    let mut seen: HashMap<u64, Conn> = HashMap::new();
    let mut last_owner: Option<u32> = None;
    loop {
        let done = stop.load(Ordering::SeqCst);
        let socks = established_to(ports);
        let new: Vec<&Socket> = socks.iter().filter(|s| !seen.contains_key(&s.0)).collect();
        if !new.is_empty() {
            let wanted: HashSet<u64> = new.iter().map(|s| s.0).collect();
            // Most connections belong to the process that owned the previous ones: look there first.
            let mut owners = last_owner
                .map(|p| owners_in(&[p], &wanted))
                .unwrap_or_default();
            if owners.len() < wanted.len() {
                owners.extend(owners_in(&all_pids(), &wanted));
            }
            for (inode, local, port) in new {
                let pid = owners.get(inode).copied();
                if pid.is_some() {
                    last_owner = pid;
                }
                let comm = pid
                    .and_then(|p| fs::read_to_string(format!("/proc/{p}/comm")).ok())
                    .map(|s| s.trim().to_string())
                    .unwrap_or_default();
                seen.insert(
                    *inode,
                    Conn {
                        pid,
                        comm,
                        local: local.clone(),
                        remote_port: *port,
                    },
                );
            }
        }
        if done {
            break;
        }
        thread::sleep(SAMPLE_EVERY);
    }
    let mut v: Vec<Conn> = seen.into_values().collect();
    v.sort();
    v
}

/// Established sockets whose remote port is in `ports`.
fn established_to(ports: &HashSet<u16>) -> Vec<Socket> {
    let mut out = Vec::new();
    for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = fs::read_to_string(file) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // sl local rem st tx:rx tr:when retrnsmt uid timeout inode
            if f.len() < 10 || f[3] != "01" {
                continue;
            }
            let Some(port) = f[2]
                .rsplit(':')
                .next()
                .and_then(|p| u16::from_str_radix(p, 16).ok())
            else {
                continue;
            };
            if !ports.contains(&port) {
                continue;
            }
            let Ok(inode) = f[9].parse::<u64>() else {
                continue;
            };
            if inode == 0 {
                continue;
            }
            out.push((inode, decode_addr(f[1]), port));
        }
    }
    out
}

fn all_pids() -> Vec<u32> {
    fs::read_dir("/proc")
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Which of `pids` own the sockets `inodes` (via the `socket:[inode]` links in /proc/<pid>/fd).
fn owners_in(pids: &[u32], inodes: &HashSet<u64>) -> HashMap<u64, u32> {
    let mut out = HashMap::new();
    for &pid in pids {
        let Ok(rd) = fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for e in rd.flatten() {
            let Ok(target) = fs::read_link(e.path()) else {
                continue;
            };
            let t = target.to_string_lossy();
            if let Some(inode) = t
                .strip_prefix("socket:[")
                .and_then(|s| s.strip_suffix(']'))
                .and_then(|s| s.parse::<u64>().ok())
            {
                if inodes.contains(&inode) {
                    out.insert(inode, pid);
                }
            }
        }
        if out.len() == inodes.len() {
            break;
        }
    }
    out
}

//! Configuration: parsed from TOML, then proven.
//!
//! Control plane. [`RawConfig`] mirrors the file (serde, `deny_unknown_fields`); [`Config::from_raw`]
//! runs one validation pass and reports *every* error with its dotted path, so an operator fixes a file
//! in one round. Nothing listens before a config has been validated.
//!
//! Every key is documented with its unit (in the name: `_ms`, `_bytes`) and default, and is
//! classed live or restart-only in [`reload`] (which also diffs two configs for a reload).

pub mod policy;
pub mod reload;
pub mod topics;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::protocol::frame::DEFAULT_MAX_FRAME_BYTES;

/// One validation failure: the dotted path of the key and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Dotted path, e.g. `upstream.bootstrap_servers[1]`.
    pub path: String,
    /// Why the value is refused.
    pub reason: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.reason)
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown keys / wrong types.
    #[error("cannot parse config file {path}: {message}")]
    Parse { path: String, message: String },
    /// The file parsed but some values are invalid; every error is listed.
    #[error("invalid config ({} error(s)):\n{}", .0.len(), .0.iter().map(|e| format!("  {e}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<FieldError>),
}

/// The file as written. See README.md for the meaning of every key.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub runtime: RawRuntime,
    pub listener: Option<RawListener>,
    pub upstream: Option<RawUpstream>,
    #[serde(default)]
    pub limits: RawLimits,
    #[serde(default)]
    pub shutdown: RawShutdown,
    #[serde(default)]
    pub log: RawLog,
    /// The admin HTTP listener; absent means none.
    pub admin: Option<RawAdmin>,
    /// Traffic policy rules.
    #[serde(default)]
    pub policy: policy::RawPolicy,
}

/// `[admin]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    /// `ip:port` of the admin HTTP listener. Default `127.0.0.1:9190` (loopback only).
    pub listen: Option<String>,
    /// Bearer token required on every admin endpoint but /healthz and /readyz.
    pub bearer_token: Option<String>,
    /// File holding the bearer token (first line, surrounding whitespace trimmed); read at start
    /// and at each reload.
    pub bearer_token_file: Option<String>,
}

/// `[runtime]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRuntime {
    /// Number of shards (one glommio executor each). Default: one per CPU the process may run on.
    pub shards: Option<usize>,
    /// CPUs to pin shards to, in shard order. Default: the first `shards` CPUs the process may run on.
    pub cpus: Option<Vec<usize>>,
    /// How long an idle shard busy-polls before it sleeps in the kernel. Trades CPU for wake-up
    /// latency. Default 0 (sleep at once).
    pub spin_before_park_us: Option<u64>,
}

/// `[listener]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawListener {
    /// IP address every listener binds. Default `0.0.0.0`.
    pub bind_address: Option<String>,
    /// Host name or IP that clients are told (Metadata, FindCoordinator, ...). Required.
    pub advertised_host: Option<String>,
    /// Port of the bootstrap listener. Required.
    pub bootstrap_port: Option<u16>,
    /// Port-per-broker, offset form: node id N is served on `broker_port_base + N`.
    pub broker_port_base: Option<u16>,
    /// Port-per-broker, explicit form: node id (as a string key) to port.
    pub broker_ports: Option<BTreeMap<String, u16>>,
}

/// `[upstream]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUpstream {
    /// `host:port` of upstream brokers used to bootstrap; tried in order with failover. Required.
    pub bootstrap_servers: Option<Vec<String>>,
    /// Timeout of one upstream TCP connect. Default 5000 ms.
    pub connect_timeout_ms: Option<u64>,
    /// First delay before reconnecting to a broker that refused a connection. Default 50 ms.
    pub reconnect_backoff_ms: Option<u64>,
    /// Ceiling of the exponential reconnect backoff. Default 2000 ms.
    pub reconnect_backoff_max_ms: Option<u64>,
    /// Idle upstream connections kept per broker per shard for reuse. Default 8.
    pub pool_max_idle_per_broker: Option<usize>,
    /// Idle pooled connections older than this are closed. Default 60000 ms.
    pub pool_idle_timeout_ms: Option<u64>,
}

/// `[limits]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    /// Largest frame accepted from a client or a broker. Default 104857600 (100 MiB, the broker's
    /// `socket.request.max.bytes`).
    pub max_frame_bytes: Option<usize>,
    /// Requests one client connection may have in flight before Sluice stops reading from it. Default 1024.
    pub max_in_flight_per_connection: Option<usize>,
    /// Client connections one shard accepts; further connections are closed at accept. Default 10000.
    pub max_connections_per_shard: Option<usize>,
    /// A client that sends no complete request within this time after connecting is closed. Default 30000 ms.
    pub first_request_timeout_ms: Option<u64>,
    /// A client connection idle (no request, nothing in flight) this long is closed, as the broker's
    /// `connections.max.idle.ms`. Default 600000 ms.
    pub client_idle_timeout_ms: Option<u64>,
}

/// `[shutdown]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawShutdown {
    /// After SIGTERM/SIGINT, how long in-flight requests may take to finish. Default 10000 ms.
    pub drain_timeout_ms: Option<u64>,
}

/// `[log]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLog {
    /// tracing filter directive, e.g. `info` or `sluice=debug`. Default `info`; `RUST_LOG` overrides.
    pub level: Option<String>,
    /// `human` (default) or `json`.
    pub format: Option<String>,
}

/// How node ids map to gateway ports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrokerPorts {
    /// `port = base + node_id`.
    Offset { base: u16 },
    /// Explicit node id to port map; nodes not in it get no gateway address.
    Map(BTreeMap<i32, u16>),
}

impl BrokerPorts {
    /// The gateway port serving `node_id`, or `None` when it has none.
    pub fn port_for(&self, node_id: i32) -> Option<u16> {
        match self {
            BrokerPorts::Offset { base } => {
                let p = i64::from(*base) + i64::from(node_id);
                if node_id >= 0 && p <= i64::from(u16::MAX) {
                    u16::try_from(p).ok()
                } else {
                    None
                }
            }
            BrokerPorts::Map(m) => m.get(&node_id).copied(),
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Human,
    Json,
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub shards: usize,
    pub cpus: Vec<usize>,
    pub spin_before_park: Duration,
    pub bind_address: IpAddr,
    pub advertised_host: String,
    pub bootstrap_port: u16,
    pub broker_ports: BrokerPorts,
    pub bootstrap_servers: Vec<String>,
    pub connect_timeout: Duration,
    pub reconnect_backoff: Duration,
    pub reconnect_backoff_max: Duration,
    pub pool_max_idle_per_broker: usize,
    pub pool_idle_timeout: Duration,
    pub max_frame_bytes: usize,
    pub max_in_flight_per_connection: usize,
    pub max_connections_per_shard: usize,
    pub first_request_timeout: Duration,
    pub client_idle_timeout: Duration,
    pub drain_timeout: Duration,
    pub log_level: String,
    pub log_format: LogFormat,
    /// The admin listener, when `[admin]` is present.
    pub admin: Option<AdminConfig>,
    /// Policy rules, compiled.
    pub policy: std::sync::Arc<crate::policy::Policy>,
    /// Policy rules as written (for GET /config and reload diffs).
    pub policy_source: policy::RawPolicy,
}

/// A validated `[admin]` section.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminConfig {
    /// Where the admin HTTP listener binds.
    pub listen: SocketAddr,
    /// The bearer token (inline or read from the file); never logged or shown.
    pub bearer_token: Option<String>,
    /// Where the token was read from, if from a file.
    pub bearer_token_file: Option<String>,
}

impl std::fmt::Debug for AdminConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminConfig")
            .field("listen", &self.listen)
            .field(
                "bearer_token",
                &self.bearer_token.as_ref().map(|_| "<redacted>"),
            )
            .field("bearer_token_file", &self.bearer_token_file)
            .finish()
    }
}

impl Config {
    /// Reads, parses and validates `path`.
    ///
    /// # Errors
    /// [`ConfigError`] naming the file, or every invalid field with its dotted path.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses and validates TOML text; `origin` names it in errors.
    ///
    /// # Errors
    /// As [`Config::load`].
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.to_string(),
            message: redact_secrets(&e.to_string()),
        })?;
        Self::from_raw(raw, available_cpus())
    }

    /// Validates a parsed file. `cpus_available` are the CPUs the process may run on.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] with every error found.
    pub fn from_raw(raw: RawConfig, cpus_available: Vec<usize>) -> Result<Config, ConfigError> {
        let mut errs = Vec::new();
        let mut err = |path: &str, reason: String| {
            errs.push(FieldError {
                path: path.to_string(),
                reason,
            })
        };

        // [runtime]
        let shards = match raw.runtime.shards {
            Some(0) => {
                err("runtime.shards", "must be at least 1".into());
                1
            }
            Some(n) => n,
            None => match &raw.runtime.cpus {
                Some(c) if !c.is_empty() => c.len(),
                _ => cpus_available.len().max(1),
            },
        };
        let cpus = match &raw.runtime.cpus {
            Some(list) => {
                if list.len() != shards {
                    err(
                        "runtime.cpus",
                        format!("lists {} CPUs but runtime.shards is {shards}", list.len()),
                    );
                }
                let mut seen = std::collections::BTreeSet::new();
                for (i, c) in list.iter().enumerate() {
                    if !cpus_available.contains(c) {
                        err(
                            &format!("runtime.cpus[{i}]"),
                            format!("CPU {c} is not available to this process (available: {cpus_available:?})"),
                        );
                    }
                    if !seen.insert(*c) {
                        err(
                            &format!("runtime.cpus[{i}]"),
                            format!("CPU {c} is listed twice"),
                        );
                    }
                }
                list.clone()
            }
            None => {
                if shards > cpus_available.len() {
                    // More shards than CPUs: wrap around (two shards share a CPU). Allowed but
                    // rarely wise; pinning still keeps each shard on one CPU.
                    (0..shards)
                        .map(|i| {
                            cpus_available
                                .get(i % cpus_available.len().max(1))
                                .copied()
                                .unwrap_or(0)
                        })
                        .collect()
                } else {
                    cpus_available.iter().take(shards).copied().collect()
                }
            }
        };

        // [listener]
        let (bind_address, advertised_host, bootstrap_port, broker_ports) = match raw.listener {
            None => {
                err("listener", "section is required".into());
                (
                    IpAddr::from([0, 0, 0, 0]),
                    String::new(),
                    0,
                    BrokerPorts::Offset { base: 0 },
                )
            }
            Some(l) => {
                let bind = match l.bind_address.as_deref() {
                    None => IpAddr::from([0, 0, 0, 0]),
                    Some(s) => match s.parse::<IpAddr>() {
                        Ok(ip) => ip,
                        Err(_) => {
                            err(
                                "listener.bind_address",
                                format!("{s:?} is not an IP address"),
                            );
                            IpAddr::from([0, 0, 0, 0])
                        }
                    },
                };
                let adv = match l.advertised_host {
                    None => {
                        err(
                            "listener.advertised_host",
                            "is required (the host clients are told)".into(),
                        );
                        String::new()
                    }
                    Some(h) if h.trim().is_empty() || h.contains(char::is_whitespace) => {
                        err(
                            "listener.advertised_host",
                            format!("{h:?} is not a host name"),
                        );
                        h
                    }
                    Some(h) => h,
                };
                let bport = match l.bootstrap_port {
                    None => {
                        err("listener.bootstrap_port", "is required".into());
                        0
                    }
                    Some(0) => {
                        err(
                            "listener.bootstrap_port",
                            "must not be 0 (every shard binds the same port)".into(),
                        );
                        0
                    }
                    Some(p) => p,
                };
                let bp = match (l.broker_port_base, l.broker_ports) {
                    (Some(_), Some(_)) => {
                        err(
                            "listener.broker_ports",
                            "set either listener.broker_port_base or listener.broker_ports, not both".into(),
                        );
                        BrokerPorts::Offset { base: 0 }
                    }
                    (None, None) => {
                        err(
                            "listener.broker_port_base",
                            "one of listener.broker_port_base or listener.broker_ports is required"
                                .into(),
                        );
                        BrokerPorts::Offset { base: 0 }
                    }
                    (Some(0), None) => {
                        err("listener.broker_port_base", "must not be 0".into());
                        BrokerPorts::Offset { base: 0 }
                    }
                    (Some(base), None) => {
                        if base == bport {
                            err(
                                "listener.broker_port_base",
                                "equals listener.bootstrap_port (node id 0 would collide)".into(),
                            );
                        }
                        BrokerPorts::Offset { base }
                    }
                    (None, Some(map)) => {
                        let mut out = BTreeMap::new();
                        let mut ports = std::collections::BTreeSet::new();
                        for (k, p) in map {
                            let path = format!("listener.broker_ports.{k}");
                            match k.parse::<i32>() {
                                Ok(id) if id >= 0 => {
                                    if p == 0 || p == bport {
                                        err(&path, format!("port {p} is 0 or the bootstrap port"));
                                    } else if !ports.insert(p) {
                                        err(&path, format!("port {p} is used by another node id"));
                                    }
                                    out.insert(id, p);
                                }
                                _ => err(
                                    &path,
                                    format!("{k:?} is not a node id (non-negative integer)"),
                                ),
                            }
                        }
                        BrokerPorts::Map(out)
                    }
                };
                (bind, adv, bport, bp)
            }
        };

        // [upstream]
        let mut bootstrap_servers = Vec::new();
        let (mut connect_ms, mut backoff_ms, mut backoff_max_ms, mut pool_idle, mut pool_idle_ms) =
            (5000, 50, 2000, 8, 60_000);
        match raw.upstream {
            None => err("upstream", "section is required".into()),
            Some(u) => {
                match u.bootstrap_servers {
                    None => err("upstream.bootstrap_servers", "is required".into()),
                    Some(v) if v.is_empty() => err(
                        "upstream.bootstrap_servers",
                        "must list at least one host:port".into(),
                    ),
                    Some(v) => {
                        for (i, s) in v.iter().enumerate() {
                            if let Err(reason) = check_host_port(s) {
                                err(&format!("upstream.bootstrap_servers[{i}]"), reason);
                            }
                        }
                        bootstrap_servers = v;
                    }
                }
                connect_ms = u.connect_timeout_ms.unwrap_or(connect_ms);
                if connect_ms == 0 {
                    err(
                        "upstream.connect_timeout_ms",
                        "must be greater than 0".into(),
                    );
                }
                backoff_ms = u.reconnect_backoff_ms.unwrap_or(backoff_ms);
                backoff_max_ms = u
                    .reconnect_backoff_max_ms
                    .unwrap_or(backoff_max_ms.max(backoff_ms));
                if backoff_max_ms < backoff_ms {
                    err(
                        "upstream.reconnect_backoff_max_ms",
                        format!("{backoff_max_ms} is less than upstream.reconnect_backoff_ms ({backoff_ms})"),
                    );
                }
                pool_idle = u.pool_max_idle_per_broker.unwrap_or(pool_idle);
                pool_idle_ms = u.pool_idle_timeout_ms.unwrap_or(pool_idle_ms);
            }
        }

        // [limits]
        let max_frame_bytes = raw
            .limits
            .max_frame_bytes
            .unwrap_or(DEFAULT_MAX_FRAME_BYTES);
        if max_frame_bytes < 1024 || max_frame_bytes > i32::MAX as usize {
            err(
                "limits.max_frame_bytes",
                format!("{max_frame_bytes} is outside 1024..={}", i32::MAX),
            );
        }
        let max_in_flight = raw.limits.max_in_flight_per_connection.unwrap_or(1024);
        if max_in_flight == 0 {
            err(
                "limits.max_in_flight_per_connection",
                "must be at least 1".into(),
            );
        }
        let max_conns = raw.limits.max_connections_per_shard.unwrap_or(10_000);
        if max_conns == 0 {
            err(
                "limits.max_connections_per_shard",
                "must be at least 1".into(),
            );
        }
        let first_ms = raw.limits.first_request_timeout_ms.unwrap_or(30_000);
        if first_ms == 0 {
            err(
                "limits.first_request_timeout_ms",
                "must be greater than 0".into(),
            );
        }
        let idle_ms = raw.limits.client_idle_timeout_ms.unwrap_or(600_000);
        if idle_ms == 0 {
            err(
                "limits.client_idle_timeout_ms",
                "must be greater than 0".into(),
            );
        }

        // [shutdown], [log]
        let drain_ms = raw.shutdown.drain_timeout_ms.unwrap_or(10_000);
        let log_level = raw.log.level.unwrap_or_else(|| "info".into());
        if tracing_subscriber::EnvFilter::try_new(&log_level).is_err() {
            err(
                "log.level",
                format!("{log_level:?} is not a tracing filter directive"),
            );
        }
        let log_format = match raw.log.format.as_deref() {
            None | Some("human") => LogFormat::Human,
            Some("json") => LogFormat::Json,
            Some(other) => {
                err(
                    "log.format",
                    format!("{other:?} is not one of \"human\", \"json\""),
                );
                LogFormat::Human
            }
        };

        // [admin]
        let admin = raw.admin.map(|a| {
            let listen = match a
                .listen
                .as_deref()
                .unwrap_or("127.0.0.1:9190")
                .parse::<SocketAddr>()
            {
                Ok(sa) => sa,
                Err(_) => {
                    err(
                        "admin.listen",
                        format!("{:?} is not ip:port", a.listen.unwrap_or_default()),
                    );
                    SocketAddr::from(([127, 0, 0, 1], 9190))
                }
            };
            let bearer_token = match (a.bearer_token, &a.bearer_token_file) {
                (Some(_), Some(_)) => {
                    err(
                        "admin.bearer_token_file",
                        "set either admin.bearer_token or admin.bearer_token_file, not both".into(),
                    );
                    None
                }
                (Some(t), None) => Some(t),
                (None, Some(file)) => match std::fs::read_to_string(file) {
                    Ok(text) => Some(text.lines().next().unwrap_or("").trim().to_string()),
                    Err(e) => {
                        err(
                            "admin.bearer_token_file",
                            format!("cannot read {file}: {e}"),
                        );
                        None
                    }
                },
                (None, None) => None,
            };
            if bearer_token.as_deref().is_some_and(|t| t.len() < 16) {
                err("admin.bearer_token", "is shorter than 16 characters".into());
            }
            AdminConfig {
                listen,
                bearer_token,
                bearer_token_file: a.bearer_token_file,
            }
        });

        let spin_us = raw.runtime.spin_before_park_us.unwrap_or(0);
        if spin_us > 1_000_000 {
            err(
                "runtime.spin_before_park_us",
                format!("{spin_us} is above 1000000 (one second of spinning per park)"),
            );
        }
        // [policy] (last: it takes the error list itself)
        let compiled_policy = policy::compile(&raw.policy, &mut errs);
        if !errs.is_empty() {
            return Err(ConfigError::Invalid(errs));
        }
        Ok(Config {
            shards,
            cpus,
            spin_before_park: Duration::from_micros(spin_us),
            bind_address,
            advertised_host,
            bootstrap_port,
            broker_ports,
            bootstrap_servers,
            connect_timeout: Duration::from_millis(connect_ms),
            reconnect_backoff: Duration::from_millis(backoff_ms),
            reconnect_backoff_max: Duration::from_millis(backoff_max_ms),
            pool_max_idle_per_broker: pool_idle,
            pool_idle_timeout: Duration::from_millis(pool_idle_ms),
            max_frame_bytes,
            max_in_flight_per_connection: max_in_flight,
            max_connections_per_shard: max_conns,
            first_request_timeout: Duration::from_millis(first_ms),
            client_idle_timeout: Duration::from_millis(idle_ms),
            drain_timeout: Duration::from_millis(drain_ms),
            log_level,
            log_format,
            admin,
            policy: std::sync::Arc::new(compiled_policy),
            policy_source: raw.policy,
        })
    }

    /// The address the bootstrap listener binds.
    pub fn bootstrap_bind(&self) -> SocketAddr {
        SocketAddr::new(self.bind_address, self.bootstrap_port)
    }
}

/// TOML parse errors quote the offending line: never let one carry the admin token into a log
/// or an HTTP answer.
fn redact_secrets(message: &str) -> String {
    message
        .lines()
        .map(|l| match l.find("bearer_token") {
            Some(i) if l.contains('=') => format!("{}bearer_token = <redacted>", &l[..i]),
            _ => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Checks `host:port` syntax without resolving (resolution happens off the shard at connect time).
fn check_host_port(s: &str) -> Result<(), String> {
    if s.parse::<SocketAddr>().is_ok() {
        return Ok(());
    }
    let Some((host, port)) = s.rsplit_once(':') else {
        return Err(format!("{s:?} is not host:port"));
    };
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(format!("{s:?} has no valid host"));
    }
    match port.parse::<u16>() {
        Ok(0) | Err(_) => Err(format!("{s:?} has no valid port (1..=65535)")),
        Ok(_) => Ok(()),
    }
}

/// Resolves `host:port` (blocking: call off the shard, or for literal IPs only).
pub fn resolve(s: &str) -> std::io::Result<Vec<SocketAddr>> {
    Ok(s.to_socket_addrs()?.collect())
}

/// CPUs this process may run on (its affinity mask), in ascending order.
pub fn available_cpus() -> Vec<usize> {
    match core_affinity::get_core_ids() {
        Some(ids) if !ids.is_empty() => ids.into_iter().map(|c| c.id).collect(),
        _ => (0..std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[runtime]
shards = 2
[listener]
bind_address = "127.0.0.1"
advertised_host = "127.0.0.1"
bootstrap_port = 9192
broker_port_base = 9200
[upstream]
bootstrap_servers = ["127.0.0.1:9092", "localhost:9093"]
"#;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: "t".into(),
            message: e.to_string(),
        })?;
        Config::from_raw(raw, vec![0, 1])
    }

    fn paths(e: ConfigError) -> Vec<String> {
        match e {
            ConfigError::Invalid(v) => v.into_iter().map(|f| f.path).collect(),
            other => panic!("expected Invalid, got {other}"),
        }
    }

    #[test]
    fn parse_errors_never_quote_the_admin_token() {
        let text = format!("{GOOD}\n[admin]\nbearer_token = \"s3cr3t-s3cr3t-s3cr3t\" x\n");
        let e = Config::parse(&text, "t").expect_err("bad TOML").to_string();
        assert!(!e.contains("s3cr3t"), "{e}");
        assert!(e.contains("bearer_token = <redacted>"), "{e}");
    }

    #[test]
    fn good_config_has_defaults() {
        let c = parse(GOOD).expect("valid");
        assert_eq!(c.shards, 2);
        assert_eq!(c.cpus, vec![0, 1]);
        assert_eq!(c.max_frame_bytes, DEFAULT_MAX_FRAME_BYTES);
        assert_eq!(c.broker_ports.port_for(3), Some(9203));
        assert_eq!(c.broker_ports.port_for(-1), None);
        assert_eq!(c.drain_timeout, Duration::from_secs(10));
    }

    #[test]
    fn every_error_is_reported_with_its_path() {
        let text = r#"
[runtime]
shards = 0
[listener]
bind_address = "nope"
advertised_host = "h"
bootstrap_port = 0
[upstream]
bootstrap_servers = ["127.0.0.1:9092", "no-port", "h:0"]
reconnect_backoff_ms = 500
reconnect_backoff_max_ms = 100
[limits]
max_frame_bytes = 10
[log]
format = "xml"
"#;
        let p = paths(parse(text).expect_err("invalid"));
        for want in [
            "runtime.shards",
            "listener.bind_address",
            "listener.bootstrap_port",
            "listener.broker_port_base",
            "upstream.bootstrap_servers[1]",
            "upstream.bootstrap_servers[2]",
            "upstream.reconnect_backoff_max_ms",
            "limits.max_frame_bytes",
            "log.format",
        ] {
            assert!(p.iter().any(|x| x == want), "missing {want} in {p:?}");
        }
    }

    #[test]
    fn unknown_keys_are_refused() {
        let text = format!("{GOOD}\n[limits]\nmax_frame_size = 5\n");
        match parse(&text) {
            Err(ConfigError::Parse { message, .. }) => assert!(message.contains("max_frame_size")),
            other => panic!("expected parse error, got {other:?}"),
        }
    }

    #[test]
    fn explicit_broker_port_map() {
        let text = GOOD.replace(
            "broker_port_base = 9200",
            "broker_ports = { \"1\" = 9301, \"2\" = 9302 }",
        );
        let c = parse(&text).expect("valid");
        assert_eq!(c.broker_ports.port_for(2), Some(9302));
        assert_eq!(c.broker_ports.port_for(3), None);
        let bad = GOOD.replace(
            "broker_port_base = 9200",
            "broker_ports = { \"x\" = 9301, \"2\" = 9192 }",
        );
        let p = paths(parse(&bad).expect_err("invalid"));
        assert!(p.contains(&"listener.broker_ports.x".to_string()), "{p:?}");
        assert!(p.contains(&"listener.broker_ports.2".to_string()), "{p:?}");
    }

    #[test]
    fn cpus_must_be_available() {
        let text = GOOD.replace("shards = 2", "shards = 2\ncpus = [0, 7]");
        let p = paths(parse(&text).expect_err("invalid"));
        assert_eq!(p, vec!["runtime.cpus[1]".to_string()]);
    }
}

//! Executors, signals and cross-shard channels: the only module that starts glommio executors
//! or names its channel mesh. Control plane.
//!
//! [`run`] binds the admin listener (if configured), starts one control executor (reloads,
//! scrapes, admin HTTP; unpinned, off the data path) and one `LocalExecutor` per shard, pinned to
//! its CPU, all joined by a full channel mesh ([`control`]), and waits. SIGHUP reloads the config
//! file. SIGTERM or SIGINT starts a graceful drain: /readyz turns not-ready, every shard stops
//! accepting, lets in-flight requests finish for up to `shutdown.drain_timeout_ms`, then closes
//! what is left. A second SIGTERM/SIGINT exits at once.

pub mod alloc;
pub mod control;
pub mod event;

use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use futures_lite::future::or;
use glommio::channels::channel_mesh::MeshBuilder;
use glommio::{LocalExecutorBuilder, Placement};

use crate::config::Config;
use crate::proxy::shard::{Shard, TopologyUpdate};
use control::{ControlMsg, ControlPlane, ProcessState, SetLogLevel};

/// Why the gateway could not run.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// An executor could not be created (io_uring unavailable, RLIMIT_MEMLOCK too low, ...).
    #[error("cannot start shard {shard} on CPU {cpu}: {reason}")]
    Executor {
        shard: usize,
        cpu: usize,
        reason: String,
    },
    /// The admin listener could not be bound.
    #[error("admin.listen: cannot listen on {addr}: {reason}")]
    AdminBind { addr: String, reason: String },
    /// The control executor could not be started.
    #[error("cannot start the control executor: {0}")]
    Control(String),
    /// A listener could not be bound.
    #[error("shard {shard} cannot listen on {addr}: {reason}")]
    Bind {
        shard: usize,
        addr: String,
        reason: String,
    },
    /// A port is held by another socket (possibly another Sluice, which `SO_REUSEPORT` would let
    /// share it).
    #[error("{key}: cannot listen on {addr}: {reason} (is another Sluice running?)")]
    PortInUse {
        key: &'static str,
        addr: String,
        reason: String,
    },
    /// Installing the signal handlers failed.
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
    /// A shard thread panicked.
    #[error("shard {0} panicked")]
    Panicked(usize),
}

enum ShardEvent {
    Listening,
    Exited(usize, Result<(), RuntimeError>),
}

/// io_uring registered-buffer memory of the control executor, bytes.
const CONTROL_IO_MEMORY: usize = 256 * 1024;

/// How often a shard checks the process-wide stop flag (control plane, off the data path).
const STOP_POLL: Duration = Duration::from_millis(50);

/// Runs the gateway until SIGTERM/SIGINT and a graceful drain. `config_path` is read again on
/// each reload; `set_log_level` changes the log filter at runtime.
///
/// # Errors
/// [`RuntimeError`] when the admin listener, the control executor or a shard cannot start or
/// bind; the other shards are stopped first.
pub fn run(
    config: Config,
    config_path: PathBuf,
    set_log_level: SetLogLevel,
) -> Result<(), RuntimeError> {
    let config = Arc::new(config);
    let state = Arc::new(ProcessState::default());
    install_signals(state.clone())?;

    // The admin listener first: a bad address stops start-up before any shard listens.
    let admin = match &config.admin {
        Some(a) => {
            let l = crate::admin::bind(a.listen).map_err(|e| RuntimeError::AdminBind {
                addr: a.listen.to_string(),
                reason: e.to_string(),
            })?;
            let bound = l
                .local_addr()
                .map_or_else(|_| a.listen.to_string(), |x| x.to_string());
            tracing::info!(listen = %bound, token = a.bearer_token.is_some(), "admin listening on {bound}");
            Some(l)
        }
        None => None,
    };

    // Shards bind with SO_REUSEPORT, which would silently share the port with another process
    // doing the same (a second Sluice): an exclusive probe first.
    let bootstrap = std::net::SocketAddr::new(config.bind_address, config.bootstrap_port);
    control::test_bind(bootstrap).map_err(|e| RuntimeError::PortInUse {
        key: "listener.bootstrap_port",
        addr: bootstrap.to_string(),
        reason: e.to_string(),
    })?;

    let mesh: MeshBuilder<ControlMsg, _> = MeshBuilder::full(config.shards + 1, 1024);
    {
        let (cfg, mesh, state) = (config.clone(), mesh.clone(), state.clone());
        LocalExecutorBuilder::new(Placement::Unbound)
            .name("sluice-control")
            // Admin HTTP and control messages only: a small registered-buffer area instead of
            // glommio's 10 MiB default (that was most of the control executor's RSS).
            .io_memory(CONTROL_IO_MEMORY)
            .spawn(move || async move {
                let Ok((senders, receivers)) = mesh.join().await else {
                    tracing::error!("control executor cannot join the cross-shard channel mesh");
                    return;
                };
                let cp =
                    ControlPlane::start(senders, receivers, cfg, config_path, state, set_log_level);
                glommio::spawn_local(cp.clone().watch_sighup()).detach();
                if let Some(l) = admin {
                    glommio::spawn_local(crate::admin::serve(l, cp.clone())).detach();
                }
                // Serves until the process exits (after the shards have drained).
                std::future::pending::<()>().await;
            })
            .map_err(|e| RuntimeError::Control(e.to_string()))?;
    }

    let (tx, rx) = mpsc::channel::<ShardEvent>();
    let mut handles = Vec::new();
    for shard_id in 0..config.shards {
        let cpu = config.cpus.get(shard_id).copied().unwrap_or(0);
        let (cfg, mesh, shard_state, tx) =
            (config.clone(), mesh.clone(), state.clone(), tx.clone());
        let mut builder = LocalExecutorBuilder::new(Placement::Fixed(cpu))
            .name(&format!("sluice-shard-{shard_id}"));
        if !config.spin_before_park.is_zero() {
            builder = builder.spin_before_park(config.spin_before_park);
        }
        let handle = builder
            .spawn(move || async move {
                let res = shard_main(shard_id, cfg, mesh, shard_state, tx.clone()).await;
                let _ = tx.send(ShardEvent::Exited(shard_id, res));
            })
            .map_err(|e| RuntimeError::Executor {
                shard: shard_id,
                cpu,
                reason: e.to_string(),
            });
        match handle {
            Ok(h) => handles.push((shard_id, h)),
            Err(e) => {
                state.stop.store(true, Ordering::SeqCst);
                // Shards already started wait for the mesh; closing it is not possible, so
                // exit the process with the error after logging.
                tracing::error!(error = %e, "shard failed to start");
                return Err(e);
            }
        }
    }
    drop(tx);

    let mut first_error = None;
    let mut listening = 0;
    let mut exited = 0;
    while exited < config.shards {
        match rx.recv() {
            Ok(ShardEvent::Listening) => {
                listening += 1;
                state.listening_shards.store(listening, Ordering::SeqCst);
                if listening == config.shards {
                    tracing::info!(shards = config.shards, bootstrap = %config.bootstrap_bind(),
                        advertised_host = %config.advertised_host, "sluice ready");
                }
            }
            Ok(ShardEvent::Exited(id, res)) => {
                exited += 1;
                if let Err(e) = res {
                    tracing::error!(shard = id, error = %e, "shard failed; stopping all shards");
                    state.stop.store(true, Ordering::SeqCst);
                    first_error.get_or_insert(e);
                }
            }
            Err(_) => break,
        }
    }
    for (id, h) in handles {
        if h.join().is_err() {
            first_error.get_or_insert(RuntimeError::Panicked(id));
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => {
            tracing::info!("sluice stopped");
            Ok(())
        }
    }
}

fn install_signals(state: Arc<ProcessState>) -> Result<(), RuntimeError> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP])
        .map_err(RuntimeError::Signals)?;
    std::thread::Builder::new()
        .name("sluice-signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                if sig == SIGHUP {
                    tracing::info!("SIGHUP: reloading the config file");
                    state.reload_requests.fetch_add(1, Ordering::SeqCst);
                    continue;
                }
                if state.stop.swap(true, Ordering::SeqCst) {
                    tracing::warn!(signal = sig, "second signal: exiting without drain");
                    std::process::exit(130);
                }
                tracing::info!(signal = sig, "shutdown requested: draining");
            }
        })
        .map_err(RuntimeError::Signals)?;
    Ok(())
}

async fn shard_main(
    shard_id: usize,
    cfg: Arc<Config>,
    mesh: MeshBuilder<ControlMsg, glommio::channels::channel_mesh::Full>,
    state: Arc<ProcessState>,
    events: mpsc::Sender<ShardEvent>,
) -> Result<(), RuntimeError> {
    let config = Rc::new((*cfg).clone());
    let shard = Shard::new(shard_id, config.clone());

    // Cross-shard channels first: every shard must join before any can send.
    let (senders, mut receivers) = mesh.join().await.map_err(|_| RuntimeError::Executor {
        shard: shard_id,
        cpu: config.cpus.get(shard_id).copied().unwrap_or(0),
        reason: "cannot join the cross-shard channel mesh".into(),
    })?;
    let senders = Rc::new(senders);
    {
        let senders = senders.clone();
        shard.set_broadcast(Box::new(move |u: TopologyUpdate| {
            let senders = senders.clone();
            glommio::spawn_local(async move {
                for peer in 0..senders.nr_consumers() {
                    if peer != senders.peer_id() {
                        let _ = senders.send_to(peer, ControlMsg::Topology(u.clone())).await;
                    }
                }
            })
            .detach();
        }));
    }
    control::serve_shard(&shard, &senders, &mut receivers);
    glommio::spawn_local(control::quota_loop(shard.clone(), senders.clone())).detach();

    let addr = config.bootstrap_bind();
    shard.bind_bootstrap().map_err(|e| RuntimeError::Bind {
        shard: shard_id,
        addr: addr.to_string(),
        reason: e.to_string(),
    })?;
    // Explicitly mapped node ports are known up front: listen on them now.
    if let crate::config::BrokerPorts::Map(m) = &config.broker_ports {
        for (node_id, port) in m {
            shard.ensure_node_listener(*node_id, *port);
        }
    }
    let _ = events.send(ShardEvent::Listening);
    tracing::info!(shard = shard_id, listen = %addr, "shard listening");
    glommio::spawn_local(crate::upstream::discovery::discover_at_start(shard.clone())).detach();
    {
        let shard = shard.clone();
        glommio::spawn_local(async move {
            loop {
                glommio::timer::sleep(shard.pool.idle_timeout().max(Duration::from_secs(1))).await;
                shard.pool.sweep();
            }
        })
        .detach();
    }
    // Freed memory goes back to the OS even when the shard has gone quiet (see alloc).
    glommio::spawn_local(async {
        loop {
            glommio::timer::sleep(alloc::COLLECT_EVERY).await;
            alloc::collect_freed();
        }
    })
    .detach();

    while !state.stop.load(Ordering::SeqCst) {
        glommio::timer::sleep(STOP_POLL).await;
    }
    shard.shutdown.set();
    shard.close_listeners();
    shard.pool.clear();
    let config = shard.config();
    let open = shard.active_connections();
    tracing::info!(
        shard = shard_id,
        open_connections = open,
        drain_timeout_ms = config.drain_timeout.as_millis() as u64,
        "draining"
    );
    let drained = or(
        async {
            shard.wait_idle().await;
            true
        },
        async {
            glommio::timer::sleep(config.drain_timeout).await;
            false
        },
    )
    .await;
    if !drained {
        tracing::warn!(
            shard = shard_id,
            open_connections = shard.active_connections(),
            "drain timeout: closing remaining connections"
        );
    }
    senders.close();
    Ok(())
}

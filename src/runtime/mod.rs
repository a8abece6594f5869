//! Executors, signals and cross-shard channels: the only module that starts glommio executors
//! or names its channel mesh. Control plane.
//!
//! [`run`] starts one `LocalExecutor` per shard, pinned to its CPU, wires a full channel mesh
//! between shards for topology updates, and waits. SIGTERM or SIGINT starts a graceful drain:
//! every shard stops accepting, lets in-flight requests finish for up to
//! `shutdown.drain_timeout_ms`, then closes what is left. A second signal exits at once.

pub mod event;

use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use futures_lite::future::or;
use glommio::channels::channel_mesh::MeshBuilder;
use glommio::{LocalExecutorBuilder, Placement};

use crate::config::Config;
use crate::proxy::listener::{self, Target};
use crate::proxy::shard::{Shard, TopologyUpdate};

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
    /// A listener could not be bound.
    #[error("shard {shard} cannot listen on {addr}: {reason}")]
    Bind {
        shard: usize,
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

/// Messages between shards (control plane).
type ControlMsg = TopologyUpdate;

/// How often a shard checks the process-wide stop flag (control plane, off the data path).
const STOP_POLL: Duration = Duration::from_millis(50);

/// Runs the gateway until SIGTERM/SIGINT and a graceful drain.
///
/// # Errors
/// [`RuntimeError`] when a shard cannot start or bind; the other shards are stopped first.
pub fn run(config: Config) -> Result<(), RuntimeError> {
    let config = Arc::new(config);
    let stop = Arc::new(AtomicBool::new(false));
    install_signals(stop.clone())?;

    let mesh: MeshBuilder<ControlMsg, _> = MeshBuilder::full(config.shards, 1024);
    let (tx, rx) = mpsc::channel::<ShardEvent>();
    let mut handles = Vec::new();
    for shard_id in 0..config.shards {
        let cpu = config.cpus.get(shard_id).copied().unwrap_or(0);
        let (cfg, mesh, shard_stop, tx) = (config.clone(), mesh.clone(), stop.clone(), tx.clone());
        let mut builder = LocalExecutorBuilder::new(Placement::Fixed(cpu))
            .name(&format!("sluice-shard-{shard_id}"));
        if !config.spin_before_park.is_zero() {
            builder = builder.spin_before_park(config.spin_before_park);
        }
        let handle = builder
            .spawn(move || async move {
                let res = shard_main(shard_id, cfg, mesh, shard_stop, tx.clone()).await;
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
                stop.store(true, Ordering::SeqCst);
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
                if listening == config.shards {
                    tracing::info!(shards = config.shards, bootstrap = %config.bootstrap_bind(),
                        advertised_host = %config.advertised_host, "sluice ready");
                }
            }
            Ok(ShardEvent::Exited(id, res)) => {
                exited += 1;
                if let Err(e) = res {
                    tracing::error!(shard = id, error = %e, "shard failed; stopping all shards");
                    stop.store(true, Ordering::SeqCst);
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

fn install_signals(stop: Arc<AtomicBool>) -> Result<(), RuntimeError> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals =
        signal_hook::iterator::Signals::new([SIGTERM, SIGINT]).map_err(RuntimeError::Signals)?;
    std::thread::Builder::new()
        .name("sluice-signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                if stop.swap(true, Ordering::SeqCst) {
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
    stop: Arc<AtomicBool>,
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
                        let _ = senders.send_to(peer, u.clone()).await;
                    }
                }
            })
            .detach();
        }));
    }
    for (_, stream) in receivers.streams() {
        let shard = shard.clone();
        glommio::spawn_local(async move {
            while let Some(u) = stream.recv().await {
                shard.apply_update(&u);
            }
        })
        .detach();
    }

    let addr = config.bootstrap_bind();
    let l = listener::bind(addr).map_err(|e| RuntimeError::Bind {
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
    glommio::spawn_local(listener::accept_loop(shard.clone(), l, Target::Bootstrap)).detach();
    let _ = events.send(ShardEvent::Listening);
    tracing::info!(shard = shard_id, listen = %addr, "shard listening");
    glommio::spawn_local(crate::upstream::discovery::discover_at_start(shard.clone())).detach();
    {
        let shard = shard.clone();
        glommio::spawn_local(async move {
            loop {
                glommio::timer::sleep(shard.config.pool_idle_timeout.max(Duration::from_secs(1)))
                    .await;
                shard.pool.sweep();
            }
        })
        .detach();
    }

    while !stop.load(Ordering::SeqCst) {
        glommio::timer::sleep(STOP_POLL).await;
    }
    shard.shutdown.set();
    shard.pool.clear();
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

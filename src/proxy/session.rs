//! One client connection: the request pump (client to broker) and the response pump (broker to
//! client), sharing the connection's in-flight queue.
//!
//! Both pumps work on frames in place in their read buffer: the unchanged bytes of consecutive
//! frames are written in one write, with no copy. Only responses whose api key and version need a
//! rewrite ([`versions::response_needs_rewrite`]) are split off and handed to
//! [`rewrite::rewrite_response`].
//!
//! A session ends when either side closes or misbehaves; it logs one line saying which side
//! (downstream = client, upstream = broker, gateway = Sluice) and why, and closes only its own
//! connections. Network input never panics.

use std::cell::Cell;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{BufMut, BytesMut};
use futures_lite::future::or;
use futures_lite::AsyncWriteExt;
use glommio::net::TcpStream;

use crate::metrics::{Direction, ShardMetrics};
use crate::protocol::frame::{peek_frame_len as frame_len, FrameError};
use crate::protocol::header::{self, HeaderError};
use crate::protocol::produce::{self, ProduceScanError};
use crate::protocol::rewrite::{self, node_endpoints, RewriteError, Rewritten};
use crate::protocol::topics;
use crate::protocol::versions;
use crate::proxy::dispose::{api_versions_restrictions, dispose, Disposition, PolicyCtx};
use crate::proxy::inflight::{InFlight, InFlightQueue};
use crate::proxy::io::{self as pio, Half, ReadBuf, ReadOutcome};
use crate::proxy::listener::Target;
use crate::proxy::quotas::{charge_quotas, charge_topic_quotas, SessionIdentity};
use crate::proxy::shard::Shard;
use crate::proxy::sockopt;
use crate::quota::Kind;
use crate::runtime::event::Notify;
use crate::upstream::connect::ConnectError;
use crate::upstream::reuse::{Credential, Usage};

/// Read room of a connection before its first complete request, bytes.
const FIRST_REQUEST_ROOM: usize = 4 * 1024;
const API_KEY_PRODUCE: i16 = 0;
const API_KEY_FETCH: i16 = 1;
const API_KEY_SASL_HANDSHAKE: i16 = 17;
const API_KEY_API_VERSIONS: i16 = 18;
const API_KEY_SASL_AUTHENTICATE: i16 = 36;

/// Why a session ended abnormally.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The client sent a frame with a negative or oversized size.
    #[error("bad frame from client: {0}")]
    ClientFrame(FrameError),
    /// The client sent a request header that cannot be read.
    #[error("bad request header from client: {0}")]
    ClientHeader(HeaderError),
    /// The client used a version of an api key whose responses Sluice must decode, outside the
    /// versions Sluice advertised in ApiVersions.
    #[error("client sent api key {api_key} version {api_version}, which Sluice cannot decode (it advertises {min}..={max})")]
    UnsupportedVersion {
        api_key: i16,
        api_version: i16,
        min: i16,
        max: i16,
    },
    /// Reading from or writing to the client failed.
    #[error("client i/o: {0}")]
    ClientIo(io::Error),
    /// The client connected but sent no complete request in time.
    #[error("no complete request within {0:?} of connecting")]
    FirstRequestTimeout(Duration),
    /// The client sent nothing for too long with nothing in flight.
    #[error("idle for {0:?}")]
    IdleTimeout(Duration),
    /// The client closed in the middle of a frame.
    #[error("client closed mid-frame ({have} byte(s) of an incomplete frame received)")]
    ClientTruncated { have: usize },
    /// The client closed with requests still in flight (their responses are dropped).
    #[error("client closed with {0} request(s) in flight")]
    ClientClosedInFlight(usize),
    /// No upstream connection could be made.
    #[error("upstream connect: {0}")]
    UpstreamConnect(ConnectError),
    /// The node id of this port is unknown to the shard, even after asking a broker.
    #[error("node id {0} is not in the cluster's metadata")]
    UnknownNode(i32),
    /// Reading from or writing to the broker failed.
    #[error("upstream i/o: {0}")]
    UpstreamIo(io::Error),
    /// The broker closed the connection while requests were in flight.
    #[error("broker closed the connection with {0} request(s) in flight")]
    UpstreamClosed(usize),
    /// The broker sent bytes while no request was in flight.
    #[error("broker sent {0} byte(s) with no request in flight")]
    UpstreamUnsolicited(usize),
    /// The broker sent a frame with a negative or oversized size.
    #[error("bad frame from broker: {0}")]
    UpstreamFrame(FrameError),
    /// The broker's response header cannot be read.
    #[error("bad response header from broker: {0}")]
    UpstreamHeader(HeaderError),
    /// The broker answered a correlation id other than the one at the head of the queue.
    #[error("broker answered correlation id {got}, expected {expected}")]
    UpstreamCorrelation { expected: i32, got: i32 },
    /// A rewritten response no longer fits a Kafka frame.
    #[error("rewritten response of {0} bytes does not fit a frame")]
    ResponseTooLarge(usize),
    /// A response that must be rewritten could not be.
    #[error("cannot rewrite response: {0}")]
    Rewrite(RewriteError),
    /// A Produce request a policy must inspect is malformed.
    #[error("malformed Produce request: {0}")]
    BadProduce(ProduceScanError),
    /// A policy rejected a request that cannot carry an error (Produce with acks=0, a forbidden
    /// api key): as a broker does for such a request, the connection is closed.
    #[error("policy {rule}: {reason}; connection closed")]
    PolicyViolation { rule: String, reason: String },
    /// A rejection response could not be built.
    #[error("cannot build a policy rejection: {0}")]
    PolicyResponse(String),
    /// A request a policy must inspect cannot be decoded.
    #[error("malformed request: {0}")]
    BadRequest(String),
}

impl SessionError {
    /// Which side caused it: `downstream` (client), `upstream` (broker) or `gateway` (Sluice).
    pub fn side(&self) -> &'static str {
        use SessionError::*;
        match self {
            ClientFrame(_)
            | ClientHeader(_)
            | UnsupportedVersion { .. }
            | ClientIo(_)
            | FirstRequestTimeout(_)
            | IdleTimeout(_)
            | ClientTruncated { .. }
            | ClientClosedInFlight(_)
            | BadProduce(_)
            | BadRequest(_)
            | PolicyViolation { .. } => "downstream",
            UpstreamConnect(_)
            | UnknownNode(_)
            | UpstreamIo(_)
            | UpstreamClosed(_)
            | UpstreamUnsolicited(_)
            | UpstreamFrame(_)
            | UpstreamHeader(_)
            | UpstreamCorrelation { .. } => "upstream",
            Rewrite(_) | ResponseTooLarge(_) | PolicyResponse(_) => "gateway",
        }
    }

    /// A fixed snake_case name of the variant, for the `reason` label of metrics.
    pub fn kind(&self) -> &'static str {
        use SessionError::*;
        match self {
            ClientFrame(_) => "client_frame",
            ClientHeader(_) => "client_header",
            UnsupportedVersion { .. } => "unsupported_version",
            ClientIo(_) => "client_io",
            FirstRequestTimeout(_) => "first_request_timeout",
            IdleTimeout(_) => "idle_timeout",
            ClientTruncated { .. } => "client_truncated",
            ClientClosedInFlight(_) => "client_closed_in_flight",
            UpstreamConnect(_) => "upstream_connect",
            UnknownNode(_) => "unknown_node",
            UpstreamIo(_) => "upstream_io",
            UpstreamClosed(_) => "upstream_closed",
            UpstreamUnsolicited(_) => "upstream_unsolicited",
            UpstreamFrame(_) => "upstream_frame",
            UpstreamHeader(_) => "upstream_header",
            UpstreamCorrelation { .. } => "upstream_correlation",
            ResponseTooLarge(_) => "response_too_large",
            Rewrite(_) => "rewrite",
            BadProduce(_) => "bad_produce",
            PolicyViolation { .. } => "policy_violation",
            PolicyResponse(_) => "policy_response",
            BadRequest(_) => "bad_request",
        }
    }

    /// Whether the client may simply retry (reconnect and resend): true for broker
    /// unavailability, false for protocol violations that will recur.
    pub fn retriable(&self) -> bool {
        use SessionError::*;
        matches!(
            self,
            UpstreamConnect(_)
                | UnknownNode(_)
                | UpstreamIo(_)
                | UpstreamClosed(_)
                | IdleTimeout(_)
                | ClientIo(_)
        )
    }
}

/// How the request side ended without error.
enum RequestEnd {
    /// The client closed its side; nothing is in flight.
    ClientClosed,
    /// Shutdown: stopped reading, in-flight requests finished.
    Drained,
}

/// How many more bytes the partial frame at the start of `buf` needs (a read-size hint).
fn bytes_wanted(buf: &[u8]) -> usize {
    match buf.get(..4) {
        Some(s) => {
            let size = i32::from_be_bytes([s[0], s[1], s[2], s[3]]).max(0) as usize;
            (4 + size).saturating_sub(buf.len())
        }
        None => 4 - buf.len(),
    }
}

/// Serves one client connection until it closes, fails, or the shard drains.
pub async fn run(
    shard: Rc<Shard>,
    client: TcpStream,
    target: Target,
    conn_id: u64,
    peer: Option<SocketAddr>,
) {
    if let Err(e) = client.set_nodelay(true) {
        tracing::debug!(shard = shard.id, conn_id, error = %e, "cannot set TCP_NODELAY");
    }
    tracing::debug!(
        shard = shard.id,
        conn_id,
        ?peer,
        ?target,
        "connection accepted"
    );
    match serve(&shard, client, target, conn_id, peer).await {
        Ok(()) => tracing::debug!(shard = shard.id, conn_id, ?peer, "connection closed"),
        Err(e) => {
            shard.metrics.error(e.side(), e.kind());
            // Clients vanishing and brokers closing idle connections are routine; the rest is
            // worth an operator's look, within a log budget per side and reason (a hostile
            // client can repeat any of them at will; the metric above counts every one).
            let quiet = matches!(
                e,
                SessionError::ClientIo(_) | SessionError::ClientClosedInFlight(_)
            );
            let suppressed = if quiet {
                None
            } else {
                shard.log_budget.admit((e.side(), e.kind()), Instant::now())
            };
            match suppressed {
                None => {
                    tracing::debug!(shard = shard.id, conn_id, ?peer, ?target, side = e.side(), retriable = e.retriable(), reason = %e, "connection closed")
                }
                Some(suppressed) if matches!(e, SessionError::UpstreamClosed(0)) => {
                    tracing::info!(shard = shard.id, conn_id, ?peer, ?target, side = e.side(), retriable = e.retriable(), reason = %e, suppressed, "connection closed")
                }
                Some(suppressed) => {
                    tracing::warn!(shard = shard.id, conn_id, ?peer, ?target, side = e.side(), retriable = e.retriable(), reason = %e, suppressed, "connection closed")
                }
            }
        }
    }
}

async fn serve(
    shard: &Rc<Shard>,
    client: TcpStream,
    target: Target,
    conn_id: u64,
    peer: Option<SocketAddr>,
) -> Result<(), SessionError> {
    let cfg = shard.config();
    let (mut client_r, mut client_w) = pio::split(client);
    let mut cbuf = ReadBuf::new();

    // 1. Wait for the first complete request before touching any broker: a client that
    //    connects and sends nothing costs no upstream connection. The timeout is a deadline
    //    from accept: a client trickling bytes does not restart it.
    let first_request_deadline = Instant::now() + cfg.first_request_timeout;
    loop {
        if frame_len(&cbuf, cfg.max_frame_bytes)
            .map_err(SessionError::ClientFrame)?
            .is_some()
        {
            break;
        }
        // Before a first request, room grows 4 KiB at a time with the bytes that arrive: a
        // connection that sent only a size prefix costs 4 KiB, not a 64 KiB read buffer.
        let want = bytes_wanted(&cbuf).min(cbuf.len().max(FIRST_REQUEST_ROOM));
        match pio::read_into(
            &mut client_r,
            &mut cbuf,
            want,
            shard.shutdown.wait(),
            glommio::timer::sleep(first_request_deadline.saturating_duration_since(Instant::now())),
        )
        .await
        .map_err(SessionError::ClientIo)?
        {
            ReadOutcome::Data(n) => shard.metrics.bytes(Direction::DownstreamIn, n),
            ReadOutcome::Eof if !cbuf.is_empty() => {
                return Err(SessionError::ClientTruncated { have: cbuf.len() })
            }
            ReadOutcome::Eof | ReadOutcome::Stopped => return Ok(()),
            ReadOutcome::TimedOut => {
                return Err(SessionError::FirstRequestTimeout(cfg.first_request_timeout))
            }
        }
    }

    // 2. Upstream connection: pooled if a clean one is idle, else a new one.
    let (upstream, upstream_addr, usage) = match connect_upstream(shard, target).await {
        Ok(u) => u,
        Err(e) => {
            // Look like the unreachable broker: a reset, which clients retry, rather than an
            // orderly close before any answer (franz-go reads that as a TLS/SASL mismatch).
            if let Err(err) = sockopt::reset_on_close(pio::raw_fd(&client_w)) {
                tracing::debug!(shard = shard.id, conn_id, error = %err, "cannot set SO_LINGER");
            }
            return Err(e);
        }
    };
    tracing::debug!(shard = shard.id, conn_id, upstream = %upstream_addr, "upstream attached");
    shard.session_attached(conn_id, &upstream_addr);
    let (mut up_r, mut up_w) = pio::split(upstream);
    let mut ubuf = ReadBuf::new();
    let queue = InFlightQueue::default();
    let ident = SessionIdentity::new(peer.map(|p| p.ip()));
    let written_all_at = Cell::new(None);
    let writing_since = Cell::new(None);
    let went_idle = Notify::default();
    let ctx = Pumps {
        shard,
        queue: &queue,
        ident: &ident,
        usage: &usage,
        written_all_at: &written_all_at,
        writing_since: &writing_since,
        went_idle: &went_idle,
    };

    // 3. Pump both ways until the request side ends (then everything in flight has been answered)
    //    or either side fails.
    let requests = async {
        let end = request_pump(&ctx, &mut client_r, &mut up_w, &mut cbuf, conn_id).await?;
        // Every response answered *and written* (the last may still be on its way to the
        // client when the queue empties).
        while !(queue.is_empty() && written_all_at.get().is_some()) {
            went_idle.notified().await;
        }
        Ok::<RequestEnd, SessionError>(end)
    };
    let responses = async {
        response_pump(&ctx, &mut up_r, &mut client_w, &mut ubuf).await?;
        Ok::<RequestEnd, SessionError>(RequestEnd::Drained)
    };
    let end = or(requests, responses).await?;

    // 4. A clean end leaves a reusable upstream connection, unless it may carry an identity
    //    (see crate::upstream::reuse); otherwise it is closed with its client.
    if let (RequestEnd::ClientClosed, true) = (&end, ubuf.is_empty() && queue.is_empty()) {
        if !shard.shutdown.is_set() {
            match usage.poolable() {
                Ok(proof) => {
                    if let Some(stream) = pio::unsplit(up_r, up_w) {
                        shard.pool.put(proof, &upstream_addr, stream);
                    }
                }
                Err(why) => {
                    shard.metrics.not_pooled(why);
                    tracing::debug!(shard = shard.id, conn_id, upstream = %upstream_addr,
                        reason = why.label(), "upstream connection closed, not pooled");
                }
            }
        }
    }
    let _ = client_w.close().await;
    Ok(())
}

/// The upstream connection of a new session, its address, and what is known of its use: a pooled
/// one if a live one is idle (it keeps its proof of carrying no identity), else a new one. The
/// client has not authenticated yet (its first request is not even forwarded), so only
/// connections that carry no credential are candidates.
async fn connect_upstream(
    shard: &Rc<Shard>,
    target: Target,
) -> Result<(TcpStream, String, Usage), SessionError> {
    match target {
        Target::Bootstrap => {
            let candidates = shard.any_broker_candidates();
            for a in &candidates {
                if let Some((s, proof)) = shard.pool.take(&Credential::Unauthenticated, a) {
                    return Ok((s, a.clone(), Usage::resumed(proof)));
                }
            }
            let (s, a) = shard
                .connector
                .connect_any(&candidates)
                .await
                .map_err(SessionError::UpstreamConnect)?;
            Ok((s, a, Usage::default()))
        }
        Target::Node(node_id) => {
            let mut addr = shard.topology.borrow().get(node_id).map(str::to_string);
            if addr.is_none() {
                crate::upstream::discovery::refresh(shard).await;
                addr = shard.topology.borrow().get(node_id).map(str::to_string);
            }
            let addr = addr.ok_or(SessionError::UnknownNode(node_id))?;
            if let Some((s, proof)) = shard.pool.take(&Credential::Unauthenticated, &addr) {
                return Ok((s, addr, Usage::resumed(proof)));
            }
            let s = shard
                .connector
                .connect(&addr)
                .await
                .map_err(SessionError::UpstreamConnect)?;
            Ok((s, addr, Usage::default()))
        }
    }
}

/// What both pumps of one session share.
struct Pumps<'a> {
    shard: &'a Rc<Shard>,
    queue: &'a InFlightQueue,
    ident: &'a SessionIdentity,
    /// What the client did on its upstream connection: whether it may be pooled afterwards.
    usage: &'a Usage,
    /// Since when every response has been written to the client with nothing in flight (set by
    /// the response pump when it goes idle, cleared while it has responses to handle): the
    /// start of the client's idle time.
    written_all_at: &'a Cell<Option<Instant>>,
    /// Since when a write to the client is in progress (`None`: no write under way).
    writing_since: &'a Cell<Option<Instant>>,
    /// Notified when the in-flight queue empties and when `written_all_at` is set (the response
    /// pump went idle): the moments the idle timer may have to start.
    went_idle: &'a Notify,
}

async fn request_pump(
    ctx: &Pumps<'_>,
    client_r: &mut Half,
    up_w: &mut Half,
    cbuf: &mut ReadBuf,
    conn_id: u64,
) -> Result<RequestEnd, SessionError> {
    let Pumps {
        shard,
        queue,
        ident,
        usage,
        written_all_at,
        writing_since,
        went_idle,
    } = *ctx;
    let metrics = &shard.metrics;
    let mut policy_ctx = PolicyCtx::new(shard, conn_id, ident.source);
    // Frames already buffered before the first read (the first request) arrived about now.
    let mut read_at = Instant::now();
    loop {
        // The config in force for this step (a reload swaps it between steps).
        let cfg = shard.config();
        // Forward every complete frame in the buffer; consecutive forwarded frames in one write.
        let mut run = 0usize;
        while let Some(len) =
            frame_len(&cbuf[run..], cfg.max_frame_bytes).map_err(SessionError::ClientFrame)?
        {
            let payload = &cbuf[run + 4..run + len];
            let (peek, disp) = dispose(payload, &cfg.policy, &mut policy_ctx)?;
            metrics.request(peek.api_key, peek.api_version);
            usage.request(peek.api_key, peek.body_offset.is_some());
            ident.remember(peek.client_id(payload));
            // Every request counts against request-rate quotas (KIP-124, counted: see
            // QuotaRule::requests_per_s), connection set-up excepted; a breach is answered
            // with throttle_time_ms where the response has one, and the connection is muted.
            let mut throttle_ms = 0;
            if !matches!(
                peek.api_key,
                API_KEY_API_VERSIONS | API_KEY_SASL_HANDSHAKE | API_KEY_SASL_AUTHENTICATE
            ) && cfg.policy.has_request_quota()
            {
                let d = charge_quotas(shard, &cfg.policy, ident, Kind::Requests, 1);
                if !d.is_zero() {
                    throttle_ms = ident.mute(d);
                }
            }
            // Produce bytes count against quotas on the way in (KIP-13): a breach is forwarded
            // all the same, answered with throttle_time_ms, and the client is muted for the
            // delay (KIP-219).
            if peek.api_key == API_KEY_PRODUCE
                && !cfg.policy.quota.is_empty()
                && !matches!(disp, Disposition::Local(_))
            {
                let d = charge_quotas(shard, &cfg.policy, ident, Kind::ProduceBytes, len);
                if !d.is_zero() {
                    throttle_ms = throttle_ms.max(ident.mute(d));
                }
            }
            // Per-topic produce quotas: each topic's record bytes, read in place.
            if peek.api_key == API_KEY_PRODUCE
                && cfg.policy.has_topic_quota(Kind::ProduceBytes)
                && !matches!(disp, Disposition::Local(_))
            {
                if let Some(Ok(topics)) = peek
                    .body_offset
                    .map(|body| produce::topic_bytes(payload, body, peek.api_version))
                {
                    let d =
                        charge_topic_quotas(shard, &cfg.policy, ident, Kind::ProduceBytes, &topics);
                    if !d.is_zero() {
                        throttle_ms = throttle_ms.max(ident.mute(d));
                    }
                }
            }
            match disp {
                Disposition::Forward { expects_response } => {
                    if expects_response {
                        queue.push(in_flight(&peek, read_at, None, throttle_ms));
                    }
                    run += len;
                }
                Disposition::Rewritten {
                    payload: p,
                    expects_response,
                } => {
                    write_run(up_w, cbuf, &mut run, queue, metrics).await?;
                    cbuf.advance(len);
                    if expects_response {
                        queue.push(in_flight(&peek, read_at, None, throttle_ms));
                    }
                    let size = crate::protocol::frame::size_prefix(p.len());
                    let mut frame = BytesMut::with_capacity(4 + p.len());
                    frame.put_slice(&size);
                    frame.put_slice(&p);
                    up_w.write_all(&frame)
                        .await
                        .map_err(SessionError::UpstreamIo)?;
                    queue.stamp_sent(Instant::now());
                    metrics.bytes(Direction::UpstreamOut, frame.len());
                }
                Disposition::Local(resp) => {
                    write_run(up_w, cbuf, &mut run, queue, metrics).await?;
                    cbuf.advance(len);
                    tracing::debug!(
                        shard = shard.id,
                        conn_id,
                        api_key = peek.api_key,
                        api_version = peek.api_version,
                        correlation_id = peek.correlation_id,
                        "answered locally"
                    );
                    queue.push(in_flight(&peek, read_at, Some(resp), 0));
                }
            }
            if queue.len() >= cfg.max_in_flight_per_connection {
                // Backpressure: stop reading until responses drain.
                write_run(up_w, cbuf, &mut run, queue, metrics).await?;
                queue.wait_below(cfg.max_in_flight_per_connection).await;
            }
        }
        write_run(up_w, cbuf, &mut run, queue, metrics).await?;

        // A throttled client is muted: nothing more is read from it until the delay has passed
        // (responses still flow). A drain ends the wait.
        if let Some(until) = ident.muted_until.take() {
            let now = Instant::now();
            if until > now {
                or(glommio::timer::sleep(until - now), shard.shutdown.wait()).await;
            }
        }

        // Idle (the broker's connections.max.idle.ms): no progress either way for the timeout,
        // while Sluice is not waiting for the broker. It is measured from the later of this
        // read's start (after any mute) and the session's last progress toward the client: the
        // start of a write still under way (a client that stopped reading), else the moment
        // every response was written. While a request is with the broker no timer runs: the
        // response pump notifies `went_idle` when its queue empties and when it goes idle, so a
        // busy pipelined connection costs no timer and no extra wake-up per response.
        let read_started = Instant::now();
        let idle = async {
            loop {
                let since = match writing_since.get() {
                    Some(at) => Some(at),
                    None if queue.is_empty() => written_all_at.get(),
                    None => None,
                };
                match since {
                    Some(at) => {
                        let left = cfg
                            .client_idle_timeout
                            .saturating_sub(at.max(read_started).elapsed());
                        if left.is_zero() {
                            break;
                        }
                        glommio::timer::sleep(left).await;
                    }
                    None => went_idle.notified().await,
                }
            }
        };
        match pio::read_into(
            client_r,
            cbuf,
            bytes_wanted(cbuf),
            shard.shutdown.wait(),
            idle,
        )
        .await
        .map_err(SessionError::ClientIo)?
        {
            ReadOutcome::Data(n) => {
                read_at = Instant::now();
                metrics.bytes(Direction::DownstreamIn, n);
            }
            ReadOutcome::Eof if !cbuf.is_empty() => {
                return Err(SessionError::ClientTruncated { have: cbuf.len() })
            }
            ReadOutcome::Eof => return Ok(RequestEnd::ClientClosed),
            ReadOutcome::Stopped => return Ok(RequestEnd::Drained),
            ReadOutcome::TimedOut => {
                return Err(SessionError::IdleTimeout(cfg.client_idle_timeout))
            }
        }
    }
}

/// Charges the record bytes of each topic of a Fetch response (v4-v12, read in place) to the
/// per-topic quotas, under the names clients see (aliases; hidden topics are not charged).
fn charge_fetch_topics(
    shard: &Shard,
    cfg: &crate::config::Config,
    ident: &SessionIdentity,
    payload: &[u8],
    body: usize,
    api_version: i16,
) -> Duration {
    use crate::protocol::topics::{ClientName, TopicMapper};
    let Ok(topics) = crate::protocol::fetch::topic_bytes(payload, body, api_version) else {
        return Duration::ZERO;
    };
    let named: Vec<(String, usize)> = topics
        .into_iter()
        .filter_map(|(name, bytes)| match cfg.policy.topics.client(name) {
            ClientName::Same => Some((name.to_string(), bytes)),
            ClientName::Renamed(c) | ClientName::Unknown(c) => Some((c, bytes)),
            ClientName::Hidden => None,
        })
        .collect();
    charge_topic_quotas(shard, &cfg.policy, ident, Kind::FetchBytes, &named)
}

/// The in-flight entry of a request received at `received_at`: forwarded (`local` `None`) or
/// answered by Sluice with `local`; `throttle_ms` is the quota delay its response must carry.
fn in_flight(
    peek: &header::RequestHeaderPeek,
    received_at: Instant,
    local: Option<bytes::Bytes>,
    throttle_ms: i32,
) -> InFlight {
    InFlight {
        correlation_id: peek.correlation_id,
        api_key: peek.api_key,
        api_version: peek.api_version,
        local,
        received_at,
        sent_at: None,
        throttle_ms,
    }
}

/// Writes the first `run` bytes of `buf` upstream, drops them from `buf`, and marks the requests
/// they carried as sent.
async fn write_run(
    w: &mut Half,
    buf: &mut ReadBuf,
    run: &mut usize,
    queue: &InFlightQueue,
    metrics: &ShardMetrics,
) -> Result<(), SessionError> {
    if *run > 0 {
        w.write_all(&buf[..*run])
            .await
            .map_err(SessionError::UpstreamIo)?;
        queue.stamp_sent(Instant::now());
        metrics.bytes(Direction::UpstreamOut, *run);
        buf.advance(*run);
        *run = 0;
    }
    Ok(())
}

/// Requests answered in the current batch of responses, waiting for the write to the client to
/// finish before their latency is recorded: (api key, received at, upstream round trip).
#[derive(Default)]
struct Answered(Vec<(i16, Instant, Option<Duration>)>);

impl Answered {
    fn push(&mut self, e: &InFlight, read_at: Instant) {
        let upstream = e
            .local
            .is_none()
            .then(|| read_at.saturating_duration_since(e.sent_at.unwrap_or(e.received_at)));
        self.0.push((e.api_key, e.received_at, upstream));
    }

    /// Records every pending latency, the responses now written.
    fn flush(&mut self, metrics: &ShardMetrics) {
        if self.0.is_empty() {
            return;
        }
        let now = Instant::now();
        for (api_key, received_at, upstream) in self.0.drain(..) {
            let total = now.saturating_duration_since(received_at);
            match upstream {
                Some(up) => metrics.latency(api_key, total.saturating_sub(up), up),
                None => metrics.local_latency(api_key, total),
            }
        }
    }
}

async fn response_pump(
    ctx: &Pumps<'_>,
    up_r: &mut Half,
    client_w: &mut Half,
    ubuf: &mut ReadBuf,
) -> Result<(), SessionError> {
    let Pumps {
        shard,
        queue,
        ident,
        usage,
        written_all_at,
        writing_since,
        went_idle,
    } = *ctx;
    let metrics = &shard.metrics;
    let mut answered = Answered::default();
    let mut read_at = Instant::now();
    loop {
        let max = shard.config().max_frame_bytes;
        if queue.is_empty() {
            // Every response is written: the client's idle time starts (see request_pump).
            if written_all_at.get().is_none() {
                written_all_at.set(Some(Instant::now()));
                went_idle.notify();
            }
            // Idle: keep watching the broker, so that its close reaches the client at once (as
            // it would without a gateway), not with the client's next request.
            let outcome =
                pio::read_into(up_r, ubuf, 4, queue.wait_nonempty(), std::future::pending())
                    .await
                    .map_err(SessionError::UpstreamIo)?;
            match outcome {
                ReadOutcome::Eof => return Err(SessionError::UpstreamClosed(0)),
                ReadOutcome::Data(_) if queue.is_empty() => {
                    return Err(SessionError::UpstreamUnsolicited(ubuf.len()))
                }
                ReadOutcome::Data(n) => {
                    read_at = Instant::now();
                    metrics.bytes(Direction::UpstreamIn, n);
                }
                _ => {}
            }
        }
        written_all_at.set(None);
        let mut run = 0usize;
        while let Some((corr, api_key, api_version, local)) = queue.head() {
            if local {
                write_client(client_w, ubuf, &mut run, metrics, writing_since).await?;
                if let Some(e) = pop(queue, went_idle) {
                    metrics.response(e.api_key, e.api_version);
                    answered.push(&e, read_at);
                    if let Some(resp) = &e.local {
                        writing(writing_since, write_payload(client_w, &[resp], metrics)).await?;
                    }
                }
                continue;
            }
            let Some(len) = frame_len(&ubuf[run..], max).map_err(SessionError::UpstreamFrame)?
            else {
                break;
            };
            let got = header::response_correlation_id(&ubuf[run + 4..run + len])
                .map_err(SessionError::UpstreamHeader)?;
            if got != corr {
                return Err(SessionError::UpstreamCorrelation {
                    expected: corr,
                    got,
                });
            }
            usage.answered(api_key);
            let mut throttle_ms = 0;
            if let Some(e) = pop(queue, went_idle) {
                metrics.response(api_key, api_version);
                answered.push(&e, read_at);
                throttle_ms = e.throttle_ms;
            }
            let cfg = shard.config();
            // Produce and Fetch responses are walked once (where a walk is needed at all) for
            // throttle_time_ms and KIP-951 node endpoints. A response that cannot be walked is an
            // error only where it must be rewritten.
            let needs_rewrite = versions::response_needs_rewrite(api_key, api_version);
            let walked = match walk_response(
                api_key,
                api_version,
                needs_rewrite,
                &ubuf[run + 4..run + len],
            ) {
                Ok(w) => w,
                Err(e) if needs_rewrite => return Err(e),
                Err(_) => None,
            };
            // Request-rate quotas throttle any api key: the delay rides on the response where
            // it has a throttle_time_ms (raised in place); the connection is muted regardless.
            if walked.is_some() || throttle_ms > 0 {
                let payload = &mut ubuf[run + 4..run + len];
                if let Some(w) = &walked {
                    if let Some(ms) = w
                        .throttle_at
                        .and_then(|at| header::throttle_time_at(payload, at))
                    {
                        metrics.broker_throttle(api_key, ms);
                    }
                    // Fetch bytes count against quotas on the way out; the delay rides on this
                    // response, and the client is muted for it (KIP-219).
                    if api_key == API_KEY_FETCH && !cfg.policy.quota.is_empty() {
                        let d = charge_quotas(shard, &cfg.policy, ident, Kind::FetchBytes, len);
                        if !d.is_zero() {
                            throttle_ms = throttle_ms.max(ident.mute(d));
                        }
                        if cfg.policy.has_topic_quota(Kind::FetchBytes) {
                            let d = charge_fetch_topics(
                                shard,
                                &cfg,
                                ident,
                                payload,
                                w.body,
                                api_version,
                            );
                            if !d.is_zero() {
                                throttle_ms = throttle_ms.max(ident.mute(d));
                            }
                        }
                    }
                }
                if throttle_ms > 0 {
                    match &walked {
                        Some(w) => {
                            if let Some(at) = w.throttle_at {
                                header::raise_throttle_time_at(payload, at, throttle_ms);
                            }
                        }
                        None => {
                            if let Ok(body) =
                                header::response_body_offset(payload, api_key, api_version)
                            {
                                header::raise_throttle_time_ms(
                                    payload,
                                    api_key,
                                    api_version,
                                    body,
                                    throttle_ms,
                                );
                            }
                        }
                    }
                }
            }
            let address = needs_rewrite && walked.as_ref().is_none_or(|w| w.node_endpoints);
            // Topic names clients see otherwise (aliases, hidden topics): found in place first.
            let names = !cfg.policy.topics.is_empty()
                && topics::maps(api_key)
                && topics::response_mentions(
                    api_key,
                    api_version,
                    &ubuf[run + 4..run + len],
                    &cfg.policy.topics,
                )
                .map_err(SessionError::Rewrite)?;
            if address || names {
                write_client(client_w, ubuf, &mut run, metrics, writing_since).await?;
                let frame = ubuf.take_frame(len);
                let payload = frame.slice(4..);
                let mut out = Rewritten::Unchanged;
                if address {
                    let mut map = shard.address_map();
                    out =
                        rewrite::rewrite_response(api_key, api_version, payload.clone(), &mut map)
                            .map_err(SessionError::Rewrite)?;
                    map.finish();
                }
                if api_key == API_KEY_API_VERSIONS {
                    // Api keys a policy forbids this client, and with a topic map the keys whose
                    // topic names Sluice does not map, are not advertised to it; versions a policy
                    // cannot check are capped.
                    let (hidden, caps) = api_versions_restrictions(shard, ident);
                    let topic_map = !cfg.policy.topics.is_empty();
                    if !hidden.is_empty() || !caps.is_empty() || topic_map {
                        let offered = |k: i16| {
                            if hidden.contains(&k) {
                                return None;
                            }
                            let r = if topic_map {
                                topics::offered_versions(k)?
                            } else {
                                i16::MIN..=i16::MAX
                            };
                            let max = caps
                                .iter()
                                .filter(|(key, _)| *key == k)
                                .fold(*r.end(), |m, (_, cap)| m.min(*cap));
                            Some(*r.start()..=max)
                        };
                        let current = out.clone().into_payload(payload.clone());
                        if let Some(p) =
                            rewrite::api_versions_restrict(&current, api_version, &offered)
                                .map_err(SessionError::Rewrite)?
                        {
                            out = Rewritten::Replaced(p);
                        }
                    }
                }
                if names {
                    let current = out.clone().into_payload(payload.clone());
                    if let Some(p) =
                        topics::rewrite_response(api_key, api_version, &current, &cfg.policy.topics)
                            .map_err(SessionError::Rewrite)?
                    {
                        out = Rewritten::Replaced(p);
                    }
                }
                match out {
                    Rewritten::Unchanged => {
                        writing(writing_since, client_w.write_all(&frame))
                            .await
                            .map_err(SessionError::ClientIo)?;
                        metrics.bytes(Direction::DownstreamOut, frame.len());
                    }
                    Rewritten::Replaced(p) => {
                        writing(writing_since, write_payload(client_w, &[&p], metrics)).await?
                    }
                    Rewritten::Spliced { prefix, tail } => {
                        // Only KIP-951 node endpoints are spliced: a leader moved.
                        tracing::info!(
                            shard = shard.id,
                            api_key,
                            api_version,
                            correlation_id = corr,
                            "KIP-951 node endpoints rewritten (leader moved)"
                        );
                        writing(
                            writing_since,
                            write_payload(client_w, &[&prefix, &tail], metrics),
                        )
                        .await?
                    }
                }
            } else {
                run += len;
            }
        }
        write_client(client_w, ubuf, &mut run, metrics, writing_since).await?;
        answered.flush(metrics);
        if queue.is_empty() {
            continue;
        }
        // The broker's frame size was checked against the frame limit when its first four bytes
        // arrived: room for the whole frame at once.
        ubuf.reserve(bytes_wanted(ubuf));
        match pio::read_into(
            up_r,
            ubuf,
            bytes_wanted(ubuf),
            std::future::pending(),
            std::future::pending(),
        )
        .await
        .map_err(SessionError::UpstreamIo)?
        {
            ReadOutcome::Data(n) => {
                read_at = Instant::now();
                metrics.bytes(Direction::UpstreamIn, n);
            }
            _ => return Err(SessionError::UpstreamClosed(queue.len())),
        }
    }
}

/// What one walk of a Produce or Fetch response tells the response pump.
struct Walked {
    /// Offset of the body in the payload.
    body: usize,
    /// Offset of `throttle_time_ms`, where the version has one and the walk found it.
    throttle_at: Option<usize>,
    /// Whether the KIP-951 `node_endpoints` tagged field is present (a leader moved).
    node_endpoints: bool,
}

/// For Produce and Fetch responses (`None` for other api keys): where `throttle_time_ms` is and
/// whether KIP-951 `node_endpoints` are present, from at most one walk over the frame in place,
/// with no allocation and no split. Produce is always walked (its throttle time follows the
/// partitions): v9+ to its top-level tagged fields, older versions to the throttle time. Fetch
/// is walked only where it can carry node endpoints (`needs_rewrite`: v16+); otherwise its
/// throttle time, first in the body, is read in O(1).
///
/// # Errors
/// [`SessionError::Rewrite`] when the response cannot be walked.
fn walk_response(
    api_key: i16,
    api_version: i16,
    needs_rewrite: bool,
    payload: &[u8],
) -> Result<Option<Walked>, SessionError> {
    if !matches!(api_key, API_KEY_PRODUCE | API_KEY_FETCH) {
        return Ok(None);
    }
    let malformed = |source| {
        SessionError::Rewrite(RewriteError::Malformed {
            api_key,
            api_version,
            source,
        })
    };
    let body = header::response_body_offset(payload, api_key, api_version).map_err(|source| {
        SessionError::Rewrite(RewriteError::Header {
            api_key,
            api_version,
            source,
        })
    })?;
    let scan = if api_key == API_KEY_PRODUCE || needs_rewrite {
        node_endpoints::scan(api_key, api_version, payload, body).map_err(malformed)?
    } else {
        None
    };
    let walked = match scan {
        Some(scan) => Walked {
            body,
            throttle_at: match api_key {
                // A version newer than Sluice knows may lay its fields out otherwise.
                API_KEY_PRODUCE if node_endpoints::PRODUCE_VERSIONS.contains(&api_version) => {
                    scan.throttle_at
                }
                API_KEY_PRODUCE => None,
                _ => header::throttle_time_offset(payload, api_key, api_version, body),
            },
            node_endpoints: scan.has_node_endpoints,
        },
        None => Walked {
            body,
            throttle_at: header::throttle_time_offset(payload, api_key, api_version, body),
            node_endpoints: false,
        },
    };
    Ok(Some(walked))
}

/// Writes the first `run` bytes of `buf` to the client and drops them from `buf`; `writing` holds
/// the write's start while it is under way (for the idle timer).
async fn write_client(
    w: &mut Half,
    buf: &mut ReadBuf,
    run: &mut usize,
    metrics: &ShardMetrics,
    writing: &Cell<Option<Instant>>,
) -> Result<(), SessionError> {
    if *run > 0 {
        self::writing(writing, w.write_all(&buf[..*run]))
            .await
            .map_err(SessionError::ClientIo)?;
        metrics.bytes(Direction::DownstreamOut, *run);
        buf.advance(*run);
        *run = 0;
    }
    Ok(())
}

/// Runs `write`, a write to the client, with `since` holding its start while it is under way (the
/// idle timer's sign of a client that stopped reading).
async fn writing<T>(since: &Cell<Option<Instant>>, write: impl Future<Output = T>) -> T {
    since.set(Some(Instant::now()));
    let out = write.await;
    since.set(None);
    out
}

/// Takes the head of the in-flight queue; when that empties the queue, tells the request pump
/// (`went_idle`): its idle timer may have to start once the response is written.
fn pop(queue: &InFlightQueue, went_idle: &Notify) -> Option<InFlight> {
    let e = queue.pop();
    if queue.is_empty() {
        went_idle.notify();
    }
    e
}

/// Writes a frame made of `parts` (size prefix computed here). Small frames are gathered into one
/// write; large ones are written part by part.
async fn write_payload(
    w: &mut Half,
    parts: &[&[u8]],
    metrics: &ShardMetrics,
) -> Result<(), SessionError> {
    let total: usize = parts.iter().map(|p| p.len()).sum();
    let size = i32::try_from(total).map_err(|_| SessionError::ResponseTooLarge(total))?;
    metrics.bytes(Direction::DownstreamOut, 4 + total);
    if total <= 64 * 1024 {
        let mut out = BytesMut::with_capacity(4 + total);
        out.put_i32(size);
        for p in parts {
            out.extend_from_slice(p);
        }
        w.write_all(&out).await.map_err(SessionError::ClientIo)
    } else {
        w.write_all(&size.to_be_bytes())
            .await
            .map_err(SessionError::ClientIo)?;
        for p in parts {
            w.write_all(p).await.map_err(SessionError::ClientIo)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_len_checks_size_before_completion() {
        assert_eq!(frame_len(&[0, 0], 100), Ok(None));
        assert_eq!(frame_len(&[0, 0, 0, 2, 1], 100), Ok(None));
        assert_eq!(frame_len(&[0, 0, 0, 2, 1, 2, 3], 100), Ok(Some(6)));
        assert_eq!(
            frame_len(&[0xff, 0xff, 0xff, 0xff], 100),
            Err(FrameError::Negative(-1))
        );
        assert_eq!(
            frame_len(&[0, 0, 1, 0], 100),
            Err(FrameError::TooLarge {
                size: 256,
                max: 100
            })
        );
        assert_eq!(bytes_wanted(&[0, 0, 0, 10, 1]), 9);
        assert_eq!(bytes_wanted(&[0]), 3);
    }
}

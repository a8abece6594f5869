//! `sluice-mock-broker`: an in-memory Kafka broker *sink* for benchmarks. Never proof of
//! correctness: no replication, no persistence, no transactions, no consumer groups, leadership
//! not enforced. See README.md for what it implements and its limits.

use anyhow::{bail, Result};
use bytes::{Bytes, BytesMut};
use clap::Parser;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, BrokerId, FetchRequest, FetchResponse, FindCoordinatorRequest,
    FindCoordinatorResponse, MetadataRequest, MetadataResponse, ProduceRequest, ProduceResponse,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;
use sluice_loadtest::batch::{encode_batch, set_base_offset, BatchIter, BatchSpec};
use sluice_loadtest::meta::{parse_cpus, pin};
use sluice_loadtest::wire::{decode_request, encode_response, peek_request, read_frame};
use std::collections::{HashMap, VecDeque};
use std::io::{BufReader, BufWriter, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Api keys and versions this mock implements (and advertises; nothing else).
const SUPPORTED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 12),
    (ApiKey::Fetch, 4, 12),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::FindCoordinator, 0, 3),
    (ApiKey::ApiVersions, 0, 3),
];

const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const CORRUPT_MESSAGE: i16 = 2;
const UNSUPPORTED_VERSION: i16 = 35;

#[derive(Parser, Debug)]
#[command(
    name = "sluice-mock-broker",
    about = "In-memory Kafka broker sink for benchmarks"
)]
struct Args {
    /// Host to bind.
    #[arg(long, default_value = "127.0.0.1")]
    bind: String,
    /// Host advertised in Metadata/FindCoordinator (defaults to --bind).
    #[arg(long)]
    advertised_host: Option<String>,
    /// Listener ports, one broker node id per port (0 = ephemeral).
    #[arg(long, value_delimiter = ',', default_value = "19092")]
    ports: Vec<u16>,
    /// Ports advertised in Metadata/FindCoordinator instead of the listening ones, one per
    /// `--ports` entry (e.g. the ports of a TCP proxy in front of this broker).
    #[arg(long, value_delimiter = ',')]
    advertised_ports: Option<Vec<u16>>,
    /// Node id of the first port; the next ports get the following ids.
    #[arg(long, default_value_t = 1)]
    node_id_base: i32,
    /// Partitions of every (auto-existing) topic; leaders spread round-robin over the nodes.
    #[arg(long, default_value_t = 8)]
    partitions: i32,
    /// Delay before answering each Produce (µs), simulating a broker's append/replication time.
    #[arg(long, default_value_t = 0)]
    produce_delay_us: u64,
    /// Total bytes of stored batches over all partitions (MiB); 0 stores nothing (offsets still
    /// advance; fetches then serve synthetic batches).
    #[arg(long, default_value_t = 64)]
    log_cap_mib: usize,
    /// Serve Fetch with synthetic batches (never waits) instead of the stored log.
    #[arg(long)]
    synthetic_fetch: bool,
    /// Serve Fetch of this topic only with synthetic batches (a fetch-ceiling topic next to
    /// stored and long-poll topics on the same broker).
    #[arg(long)]
    synthetic_fetch_topic: Option<String>,
    /// Records per synthetic batch.
    #[arg(long, default_value_t = 100)]
    synthetic_records: usize,
    /// Value bytes per synthetic record.
    #[arg(long, default_value_t = 100)]
    synthetic_value_bytes: usize,
    /// Pin connection threads round-robin to these CPUs (e.g. `2,3` or `2-3`).
    #[arg(long)]
    cpus: Option<String>,
}

#[derive(Default)]
struct PartLog {
    batches: VecDeque<(i64, i64, Bytes)>, // base offset, next offset, batch
    log_start: i64,
    next_offset: i64,
}

#[derive(Default)]
struct State {
    logs: HashMap<(StrBytes, i32), PartLog>,
    total_bytes: usize,
    /// Per topic: wakes the single-topic Fetches waiting on it (an append to another topic does
    /// not wake them, so long polls on idle topics cost nothing while others are produced to).
    topic_waiters: HashMap<StrBytes, Arc<Condvar>>,
    /// Multi-topic Fetches waiting on `Broker::appended` (an append notifies only when there
    /// is one: a `notify_all` is a futex syscall even with nobody waiting).
    multi_waiting: usize,
}

struct Broker {
    nodes: Vec<(i32, u16)>,
    host: StrBytes,
    partitions: i32,
    produce_delay: Duration,
    cap_bytes: usize,
    synthetic: Option<(Bytes, i64)>, // template batch, records per batch
    /// Every topic is served synthetic (else only `synthetic_topic`).
    synthetic_all: bool,
    synthetic_topic: Option<StrBytes>,
    state: Mutex<State>,
    /// Wakes multi-topic Fetches on any append.
    appended: Condvar,
    cpus: Vec<usize>,
    conns: AtomicUsize,
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.partitions < 1 || args.ports.is_empty() {
        bail!("need at least one port and one partition");
    }
    let cpus = match &args.cpus {
        Some(s) => parse_cpus(s).map_err(anyhow::Error::msg)?,
        None => Vec::new(),
    };
    let mut listeners = Vec::new();
    let mut nodes = Vec::new();
    for (i, port) in args.ports.iter().enumerate() {
        let l = TcpListener::bind((args.bind.as_str(), *port))?;
        nodes.push((args.node_id_base + i as i32, l.local_addr()?.port()));
        listeners.push(l);
    }
    let advertised = advertised_nodes(&nodes, args.advertised_ports.as_deref())?;
    let synthetic_all = args.synthetic_fetch || args.log_cap_mib == 0;
    let synthetic = (synthetic_all || args.synthetic_fetch_topic.is_some()).then(|| {
        let spec = BatchSpec {
            records: args.synthetic_records.max(1),
            value_bytes: args.synthetic_value_bytes,
            key_bytes: 0,
            timestamp_ms: now_ms(),
        };
        (encode_batch(&spec, 0), spec.records as i64)
    });
    let host = args
        .advertised_host
        .clone()
        .unwrap_or_else(|| args.bind.clone());
    let broker = Arc::new(Broker {
        nodes: advertised.clone(),
        host: StrBytes::from_string(host.clone()),
        partitions: args.partitions,
        produce_delay: Duration::from_micros(args.produce_delay_us),
        cap_bytes: args.log_cap_mib * 1024 * 1024,
        synthetic,
        synthetic_all,
        synthetic_topic: args
            .synthetic_fetch_topic
            .clone()
            .map(StrBytes::from_string),
        state: Mutex::new(State::default()),
        appended: Condvar::new(),
        cpus,
        conns: AtomicUsize::new(0),
    });
    let addrs: Vec<String> = nodes
        .iter()
        .map(|(id, port)| format!("{host}:{port} (node {id})"))
        .collect();
    println!("listening on {}", addrs.join(", "));
    if args.advertised_ports.is_some() {
        let adv: Vec<String> = advertised
            .iter()
            .map(|(id, port)| format!("{host}:{port} (node {id})"))
            .collect();
        println!("advertising {}", adv.join(", "));
    }
    let mut handles = Vec::new();
    for (l, (node_id, _)) in listeners.into_iter().zip(nodes) {
        let b = broker.clone();
        handles.push(std::thread::spawn(move || accept_loop(l, node_id, b)));
    }
    for h in handles {
        let _ = h.join();
    }
    Ok(())
}

/// The (node id, port) pairs to advertise: the listening ports, or `advertised` (one per node).
fn advertised_nodes(nodes: &[(i32, u16)], advertised: Option<&[u16]>) -> Result<Vec<(i32, u16)>> {
    match advertised {
        None => Ok(nodes.to_vec()),
        Some(ports) if ports.len() != nodes.len() => bail!(
            "--advertised-ports has {} ports, --ports has {}",
            ports.len(),
            nodes.len()
        ),
        Some(ports) if ports.contains(&0) => bail!("--advertised-ports cannot contain 0"),
        Some(ports) => Ok(nodes
            .iter()
            .zip(ports)
            .map(|((id, _), port)| (*id, *port))
            .collect()),
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn accept_loop(l: TcpListener, node_id: i32, broker: Arc<Broker>) {
    for stream in l.incoming() {
        let Ok(stream) = stream else { continue };
        let b = broker.clone();
        std::thread::spawn(move || {
            let idx = b.conns.fetch_add(1, Ordering::Relaxed);
            pin(&b.cpus, idx);
            let peer = stream
                .peer_addr()
                .map(|a| a.to_string())
                .unwrap_or_default();
            if let Err(e) = serve(stream, node_id, &b) {
                eprintln!("connection {peer} (node {node_id}) closed: {e:#}");
            }
        });
    }
}

fn serve(stream: TcpStream, node_id: i32, broker: &Broker) -> Result<()> {
    stream.set_nodelay(true)?;
    let mut reader = BufReader::with_capacity(256 * 1024, stream.try_clone()?);
    let mut writer = BufWriter::with_capacity(256 * 1024, stream);
    while let Some(frame) = read_frame(&mut reader)? {
        let (key, version, corr) = peek_request(&frame)?;
        let response = handle(broker, node_id, key, version, corr, frame)?;
        if let Some(r) = response {
            writer.write_all(&r)?;
        }
        // Pipelined requests: flush once nothing more is buffered.
        if reader.buffer().is_empty() {
            writer.flush()?;
        }
    }
    writer.flush()?;
    Ok(())
}

fn supported(key: ApiKey, version: i16) -> bool {
    SUPPORTED
        .iter()
        .any(|(k, lo, hi)| *k == key && (*lo..=*hi).contains(&version))
}

fn handle(
    b: &Broker,
    node_id: i32,
    key: i16,
    version: i16,
    corr: i32,
    frame: Bytes,
) -> Result<Option<BytesMut>> {
    let Ok(api) = ApiKey::try_from(key) else {
        bail!("unknown api key {key}");
    };
    if api == ApiKey::ApiVersions {
        return api_versions(version, corr).map(Some);
    }
    if !supported(api, version) {
        bail!("{api:?} v{version} is not implemented (not advertised)");
    }
    match api {
        ApiKey::Metadata => {
            let (_, req): (_, MetadataRequest) = decode_request(frame, version)?;
            metadata(b, version, corr, req).map(Some)
        }
        ApiKey::FindCoordinator => {
            let (_, _req): (_, FindCoordinatorRequest) = decode_request(frame, version)?;
            let (id, port) = b.nodes[0];
            let resp = FindCoordinatorResponse::default()
                .with_node_id(BrokerId(id))
                .with_host(b.host.clone())
                .with_port(i32::from(port));
            encode_response(version, corr, &resp).map(Some)
        }
        ApiKey::Produce => {
            let (_, req): (_, ProduceRequest) = decode_request(frame, version)?;
            produce(b, version, corr, req)
        }
        ApiKey::Fetch => {
            let (_, req): (_, FetchRequest) = decode_request(frame, version)?;
            fetch(b, version, corr, req).map(Some)
        }
        _ => bail!("{api:?} is not implemented (node {node_id})"),
    }
}

fn api_versions(version: i16, corr: i32) -> Result<BytesMut> {
    let keys = SUPPORTED
        .iter()
        .map(|(k, lo, hi)| {
            ApiVersion::default()
                .with_api_key(*k as i16)
                .with_min_version(*lo)
                .with_max_version(*hi)
        })
        .collect();
    let mut resp = ApiVersionsResponse::default().with_api_keys(keys);
    let mut v = version;
    if !(0..=3).contains(&version) {
        // As the broker does: answer v0 with UNSUPPORTED_VERSION, the client retries lower.
        resp.error_code = UNSUPPORTED_VERSION;
        v = 0;
    }
    encode_response(v, corr, &resp)
}

fn leader_of(b: &Broker, partition: i32) -> i32 {
    b.nodes[partition as usize % b.nodes.len()].0
}

fn metadata(b: &Broker, version: i16, corr: i32, req: MetadataRequest) -> Result<BytesMut> {
    let names: Vec<TopicName> = match req.topics {
        Some(ts) if !ts.is_empty() => ts.into_iter().filter_map(|t| t.name).collect(),
        // v1+: an empty list asks for no topics (null asks for all); v0: empty means all.
        Some(_) if version >= 1 => Vec::new(),
        _ => {
            // All topics: those that have been produced to or fetched from.
            let st = b.state.lock().expect("state lock");
            let mut names: Vec<StrBytes> = st.logs.keys().map(|(t, _)| t.clone()).collect();
            names.sort();
            names.dedup();
            names.into_iter().map(TopicName).collect()
        }
    };
    let topics = names
        .into_iter()
        .map(|name| {
            let partitions = (0..b.partitions)
                .map(|p| {
                    let leader = BrokerId(leader_of(b, p));
                    MetadataResponsePartition::default()
                        .with_partition_index(p)
                        .with_leader_id(leader)
                        .with_leader_epoch(0)
                        .with_replica_nodes(vec![leader])
                        .with_isr_nodes(vec![leader])
                })
                .collect();
            MetadataResponseTopic::default()
                .with_name(Some(name))
                .with_partitions(partitions)
        })
        .collect();
    let brokers = b
        .nodes
        .iter()
        .map(|(id, port)| {
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(*id))
                .with_host(b.host.clone())
                .with_port(i32::from(*port))
        })
        .collect();
    let resp = MetadataResponse::default()
        .with_brokers(brokers)
        .with_cluster_id(Some(StrBytes::from_static_str("sluice-mock")))
        .with_controller_id(BrokerId(b.nodes[0].0))
        .with_topics(topics);
    encode_response(version, corr, &resp)
}

fn produce(b: &Broker, version: i16, corr: i32, req: ProduceRequest) -> Result<Option<BytesMut>> {
    let mut responses = Vec::with_capacity(req.topic_data.len());
    let mut wake = Vec::new();
    let multi_waiting;
    {
        let mut st = b.state.lock().expect("state lock");
        for topic in req.topic_data {
            if let Some(cv) = st.topic_waiters.get(&topic.name.0) {
                wake.push(cv.clone());
            }
            let mut parts = Vec::with_capacity(topic.partition_data.len());
            for pd in topic.partition_data {
                let mut r = PartitionProduceResponse::default().with_index(pd.index);
                if pd.index < 0 || pd.index >= b.partitions {
                    r.error_code = UNKNOWN_TOPIC_OR_PARTITION;
                } else {
                    match append(b, &mut st, &topic.name.0, pd.index, pd.records) {
                        Some((base, start)) => {
                            r.base_offset = base;
                            r.log_start_offset = start;
                        }
                        None => r.error_code = CORRUPT_MESSAGE,
                    }
                }
                parts.push(r);
            }
            responses.push(
                TopicProduceResponse::default()
                    .with_name(topic.name)
                    .with_partition_responses(parts),
            );
        }
        multi_waiting = st.multi_waiting > 0;
    }
    if multi_waiting {
        b.appended.notify_all();
    }
    for cv in wake {
        cv.notify_all();
    }
    if !b.produce_delay.is_zero() {
        std::thread::sleep(b.produce_delay);
    }
    if req.acks == 0 {
        return Ok(None);
    }
    let resp = ProduceResponse::default().with_responses(responses);
    encode_response(version, corr, &resp).map(Some)
}

/// Appends the batches of one partition; returns (base offset, log start) or None if malformed.
fn append(
    b: &Broker,
    st: &mut State,
    topic: &StrBytes,
    partition: i32,
    records: Option<Bytes>,
) -> Option<(i64, i64)> {
    let records = records?;
    let headers: Vec<_> = BatchIter::new(&records).collect();
    if headers.is_empty() || headers.iter().map(|h| h.total_len).sum::<usize>() != records.len() {
        return None;
    }
    let log = st.logs.entry((topic.clone(), partition)).or_default();
    let base = log.next_offset;
    let mut pos = 0;
    let mut added = 0;
    for h in headers {
        let start = log.next_offset;
        let next = start + i64::from(h.last_offset_delta) + 1;
        if b.cap_bytes > 0 {
            let mut copy = BytesMut::from(&records[pos..pos + h.total_len]);
            set_base_offset(&mut copy, start);
            log.batches.push_back((start, next, copy.freeze()));
            added += h.total_len;
        }
        log.next_offset = next;
        pos += h.total_len;
    }
    st.total_bytes += added;
    // Bounded memory: evict this partition's oldest batches while over the cap (keeping the
    // newest batch), so the total stays near the cap.
    let log = st.logs.get_mut(&(topic.clone(), partition))?;
    while st.total_bytes > b.cap_bytes && log.batches.len() > 1 {
        if let Some((_, next, old)) = log.batches.pop_front() {
            st.total_bytes -= old.len();
            log.log_start = next;
        }
    }
    if b.cap_bytes == 0 {
        log.log_start = log.next_offset;
    }
    Some((base, log.log_start))
}

fn fetch(b: &Broker, version: i16, corr: i32, req: FetchRequest) -> Result<BytesMut> {
    let deadline = Instant::now() + Duration::from_millis(req.max_wait_ms.max(0) as u64);
    let max_bytes = if req.max_bytes > 0 {
        req.max_bytes as usize
    } else {
        usize::MAX
    };
    let mut st = b.state.lock().expect("state lock");
    // A single-topic Fetch waits on its topic's condition variable, others on any append.
    let waiter = match req.topics.as_slice() {
        [t] => Some(
            st.topic_waiters
                .entry(t.topic.0.clone())
                .or_insert_with(|| Arc::new(Condvar::new()))
                .clone(),
        ),
        _ => None,
    };
    loop {
        let mut total = 0usize;
        let mut topics = Vec::with_capacity(req.topics.len());
        for t in &req.topics {
            let mut parts = Vec::with_capacity(t.partitions.len());
            for p in &t.partitions {
                let mut pd = PartitionData::default()
                    .with_partition_index(p.partition)
                    .with_last_stable_offset(-1)
                    .with_preferred_read_replica(BrokerId(-1));
                if p.partition < 0 || p.partition >= b.partitions {
                    pd.error_code = UNKNOWN_TOPIC_OR_PARTITION;
                    pd.high_watermark = -1;
                    parts.push(pd);
                    continue;
                }
                let limit =
                    (p.partition_max_bytes.max(1) as usize).min(max_bytes - total.min(max_bytes));
                let synth = b
                    .synthetic
                    .as_ref()
                    .filter(|_| b.synthetic_all || b.synthetic_topic.as_ref() == Some(&t.topic.0));
                let data = match synth {
                    Some((tpl, n)) => {
                        pd.high_watermark = p.fetch_offset + *n * 1_000_000;
                        synthetic(tpl, *n, p.fetch_offset, limit, total == 0)
                    }
                    None => {
                        let key = (t.topic.0.clone(), p.partition);
                        match st.logs.get(&key) {
                            Some(log) => {
                                pd.high_watermark = log.next_offset;
                                pd.log_start_offset = log.log_start;
                                stored(log, p.fetch_offset, limit, total == 0)
                            }
                            None => BytesMut::new(),
                        }
                    }
                };
                total += data.len();
                pd.last_stable_offset = pd.high_watermark;
                pd.records = Some(data.freeze());
                parts.push(pd);
            }
            topics.push(
                FetchableTopicResponse::default()
                    .with_topic(t.topic.clone())
                    .with_partitions(parts),
            );
        }
        let now = Instant::now();
        if total >= req.min_bytes.max(0) as usize && total > 0 || now >= deadline {
            drop(st);
            let resp = FetchResponse::default().with_responses(topics);
            return encode_response(version, corr, &resp);
        }
        match waiter.as_deref() {
            Some(cv) => st = cv.wait_timeout(st, deadline - now).expect("state lock").0,
            None => {
                st.multi_waiting += 1;
                st = b
                    .appended
                    .wait_timeout(st, deadline - now)
                    .expect("state lock")
                    .0;
                st.multi_waiting -= 1;
            }
        }
    }
}

/// Stored batches from `offset` (or from the log start if it was evicted), up to `limit` bytes
/// (at least one batch when `first`, as the broker does).
fn stored(log: &PartLog, offset: i64, limit: usize, first: bool) -> BytesMut {
    let mut out = BytesMut::new();
    let from = offset.max(log.log_start);
    let idx = log.batches.partition_point(|(_, next, _)| *next <= from);
    for (_, _, batch) in log.batches.iter().skip(idx) {
        if out.len() + batch.len() > limit && !(first && out.is_empty()) {
            break;
        }
        out.extend_from_slice(batch);
    }
    out
}

fn synthetic(tpl: &Bytes, n: i64, offset: i64, limit: usize, first: bool) -> BytesMut {
    let mut out = BytesMut::new();
    let mut base = offset.max(0);
    while out.len() + tpl.len() <= limit || (first && out.is_empty()) {
        let start = out.len();
        out.extend_from_slice(tpl);
        set_base_offset(&mut out[start..], base);
        base += n;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::advertised_nodes;

    #[test]
    fn advertised_ports_replace_listening_ports_in_order() {
        let nodes = [(1, 40001), (2, 40002)];
        assert_eq!(advertised_nodes(&nodes, None).unwrap(), nodes.to_vec());
        assert_eq!(
            advertised_nodes(&nodes, Some(&[9101, 9102])).unwrap(),
            vec![(1, 9101), (2, 9102)]
        );
        assert!(advertised_nodes(&nodes, Some(&[9101])).is_err());
        assert!(advertised_nodes(&nodes, Some(&[9101, 0])).is_err());
    }
}

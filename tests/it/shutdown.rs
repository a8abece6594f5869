//! Graceful shutdown against the real cluster: SIGTERM while a long-poll Fetch is in flight. Sluice
//! stops accepting at once and reports not-ready, still delivers the Fetch response, then closes
//! and exits 0 within the drain timeout.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, FetchRequest, MetadataRequest, MetadataResponse, RequestHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use super::cluster::shared;
use super::sluice::Sluice;
use super::{signal, unique_name};

const FETCH_MAX_WAIT_MS: i32 = 3000;

fn frame<R: Encodable>(api_key: ApiKey, version: i16, corr: i32, req: &R) -> Vec<u8> {
    let header = RequestHeader::default()
        .with_request_api_key(api_key as i16)
        .with_request_api_version(version)
        .with_correlation_id(corr)
        .with_client_id(Some(StrBytes::from_static_str("it-shutdown")));
    let mut body = BytesMut::new();
    header
        .encode(&mut body, api_key.request_header_version(version))
        .expect("encode header");
    req.encode(&mut body, version).expect("encode request");
    let mut out = (body.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(&body);
    out
}

/// Reads one response; returns (correlation id, body after a response header of `header_version`).
fn read_response(s: &mut TcpStream, header_version: i16) -> Option<(i32, BytesMut)> {
    let mut size = [0u8; 4];
    s.read_exact(&mut size).ok()?;
    let mut p = vec![0u8; i32::from_be_bytes(size) as usize];
    s.read_exact(&mut p).ok()?;
    let mut b = BytesMut::from(&p[..]);
    let corr = b.get_i32();
    if header_version >= 1 {
        // Empty tagged-field section, as brokers send it.
        assert_eq!(b.get_u8(), 0, "response header tagged fields");
    }
    Some((corr, b))
}

/// Partition 0's leader of `topic`, creating the topic through auto-creation if needed.
fn leader_of(addr: &str, topic: &str) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut corr = 100;
    loop {
        let mut s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).ok();
        let req = MetadataRequest::default()
            .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(
                TopicName(StrBytes::from_string(topic.to_string())),
            ))]))
            .with_allow_auto_topic_creation(true);
        corr += 1;
        s.write_all(&frame(ApiKey::Metadata, 12, corr, &req))
            .expect("write");
        let (got, mut body) = read_response(&mut s, 1).expect("metadata response");
        assert_eq!(got, corr);
        let resp = MetadataResponse::decode(&mut body, 12).expect("decode metadata");
        let leader = resp
            .topics
            .first()
            .and_then(|t| t.partitions.iter().find(|p| p.partition_index == 0))
            .map(|p| p.leader_id.0)
            .filter(|l| *l >= 0);
        if let Some(l) = leader {
            return l;
        }
        assert!(Instant::now() < deadline, "topic {topic} got no leader");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn sigterm_drains_in_flight_fetch_and_exits_zero() {
    let cluster = shared();
    let mut sluice = Sluice::start(&cluster, 2);
    let topic = unique_name("it-drain");
    let leader = leader_of(&sluice.bootstrap(), &topic);
    let leader_addr = format!("127.0.0.1:{}", sluice.broker_port(leader as u32));

    // A long-poll Fetch on the empty partition: the broker holds it for FETCH_MAX_WAIT_MS.
    let mut s = TcpStream::connect(&leader_addr).expect("connect to the leader's gateway port");
    s.set_read_timeout(Some(Duration::from_secs(20))).ok();
    let fetch = FetchRequest::default()
        .with_replica_id(kafka_protocol::messages::BrokerId(-1))
        .with_max_wait_ms(FETCH_MAX_WAIT_MS)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_string(topic.clone())))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(0)
                .with_partition_max_bytes(1 << 20)])]);
    let sent = Instant::now();
    s.write_all(&frame(ApiKey::Fetch, 12, 7, &fetch))
        .expect("write fetch");
    // Let the request reach the broker, then ask Sluice to stop while it is in flight.
    std::thread::sleep(Duration::from_millis(300));
    let pid = sluice.pid();
    signal(pid, "TERM").expect("SIGTERM");

    // Stops accepting at once (the stop flag is polled every 50 ms): new connections are refused
    // while the Fetch is still in flight.
    let refused_by = Instant::now() + Duration::from_secs(2);
    while TcpStream::connect(sluice.bootstrap()).is_ok() {
        assert!(
            Instant::now() < refused_by,
            "still accepting 2 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // While the drain waits for the Fetch, the admin listener still answers: alive, not ready.
    let (status, body) = sluice.admin("GET", "/readyz", "", None);
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("draining"), "{body}");
    assert_eq!(sluice.admin("GET", "/healthz", "", None).0, 200);
    assert!(
        sent.elapsed() < Duration::from_millis(FETCH_MAX_WAIT_MS as u64),
        "too slow to check"
    );

    // The in-flight Fetch is answered (after the broker's long poll), then the connection closes.
    let (corr, _) = read_response(&mut s, 1).expect("in-flight fetch answered during drain");
    assert_eq!(corr, 7);
    let held = sent.elapsed();
    assert!(
        held >= Duration::from_millis(FETCH_MAX_WAIT_MS as u64 / 2),
        "the broker's long poll was cut short ({held:?}): the response did not come from the broker"
    );
    let mut b = [0u8; 1];
    assert!(
        matches!(s.read(&mut b), Ok(0) | Err(_)),
        "connection closed after the drain"
    );

    let status = sluice
        .wait_exit(Duration::from_secs(15))
        .expect("sluice exits within the drain timeout");
    assert!(status.success(), "sluice exit status {status}");
    let log = std::fs::read_to_string(sluice.log_path()).unwrap_or_default();
    assert!(log.contains("draining"), "drain logged");
    assert!(log.contains("sluice stopped"), "clean stop logged");
}

//! Protocol hot-path benchmarks, each against a baseline:
//! - frame split of a 64 KiB buffer of 1 KiB frames (zero-copy `split_to`) vs copying each frame
//!   out into its own `Vec`;
//! - request header peek vs kafka-protocol's full `RequestHeader` decode;
//! - Metadata response rewrite (walk + decode + re-encode) of a 3-broker, 50-topic response;
//! - KIP-951 scan of a ~1 MiB Fetch v16 response without `node_endpoints` (the common case:
//!   `Unchanged`, no allocation) vs a full kafka-protocol decode + encode of the same response.
//!
//! Run: `cargo bench --bench protocol`.

use bytes::{Bytes, BytesMut};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{
    ApiKey, BrokerId, FetchResponse, MetadataResponse, RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use sluice::protocol::frame::{encode_frame, FrameDecoder};
use sluice::protocol::header::peek_request_header;
use sluice::protocol::rewrite::{rewrite_response, AddressMap};

struct Map;

impl AddressMap for Map {
    fn map_broker(&mut self, node_id: i32, _host: &str, _port: i32) -> Option<(String, i32)> {
        Some(("sluice.local".to_string(), 19_000 + node_id))
    }
}

fn response<T: Encodable>(key: ApiKey, version: i16, body: &T) -> Bytes {
    let mut out = BytesMut::new();
    ResponseHeader::default()
        .with_correlation_id(1)
        .encode(&mut out, key.response_header_version(version))
        .expect("header encodes");
    body.encode(&mut out, version).expect("body encodes");
    out.freeze()
}

fn frames(c: &mut Criterion) {
    let mut wire = Vec::new();
    while wire.len() + 1024 <= 64 * 1024 {
        wire.extend_from_slice(&encode_frame(&[7u8; 1020]));
    }
    let wire = Bytes::from(wire);
    let mut g = c.benchmark_group("frame_split_64KiB_of_1KiB");
    g.throughput(Throughput::Bytes(wire.len() as u64));
    g.bench_function("sluice_zero_copy", |b| {
        b.iter(|| {
            let mut buf = BytesMut::from(&wire[..]);
            let mut d = FrameDecoder::default();
            let mut n = 0;
            while let Ok(Some(f)) = d.decode(&mut buf) {
                n += f.len();
            }
            black_box(n)
        })
    });
    g.bench_function("baseline_copy_out", |b| {
        b.iter(|| {
            let buf = BytesMut::from(&wire[..]);
            let mut pos = 0;
            let mut out = Vec::new();
            while pos + 4 <= buf.len() {
                let size = i32::from_be_bytes([buf[pos], buf[pos + 1], buf[pos + 2], buf[pos + 3]])
                    as usize;
                out.push(buf[pos..pos + 4 + size].to_vec());
                pos += 4 + size;
            }
            black_box(out.len())
        })
    });
    g.finish();
}

fn header(c: &mut Criterion) {
    let mut wire = BytesMut::new();
    kafka_protocol::protocol::encode_request_header_into_buffer(
        &mut wire,
        &RequestHeader::default()
            .with_request_api_key(0)
            .with_request_api_version(11)
            .with_correlation_id(42)
            .with_client_id(Some(StrBytes::from_static_str("producer-1"))),
    )
    .expect("header encodes");
    wire.extend_from_slice(&[0u8; 64]);
    let wire = wire.freeze();
    let mut g = c.benchmark_group("request_header");
    g.bench_function("sluice_peek", |b| {
        b.iter(|| black_box(peek_request_header(black_box(&wire)).map(|p| p.correlation_id)))
    });
    g.bench_function("kafka_protocol_decode", |b| {
        b.iter(|| {
            let mut buf = black_box(wire.clone());
            black_box(
                kafka_protocol::protocol::decode_request_header_from_buffer(&mut buf)
                    .map(|h| h.correlation_id),
            )
        })
    });
    g.finish();
}

fn metadata(c: &mut Criterion) {
    let brokers = (0..3)
        .map(|i| {
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(i))
                .with_host(StrBytes::from_static_str("broker.internal.example"))
                .with_port(9092)
        })
        .collect();
    let topics = (0..50)
        .map(|t| {
            MetadataResponseTopic::default()
                .with_name(Some(TopicName(StrBytes::from_string(format!("topic-{t}")))))
                .with_partitions(
                    (0..6)
                        .map(|p| {
                            MetadataResponsePartition::default()
                                .with_partition_index(p)
                                .with_leader_id(BrokerId(p % 3))
                                .with_replica_nodes(vec![BrokerId(0), BrokerId(1), BrokerId(2)])
                                .with_isr_nodes(vec![BrokerId(0), BrokerId(1), BrokerId(2)])
                        })
                        .collect(),
                )
        })
        .collect();
    let m = MetadataResponse::default()
        .with_brokers(brokers)
        .with_topics(topics);
    let payload = response(ApiKey::Metadata, 12, &m);
    let mut g = c.benchmark_group("metadata_rewrite_v12_50_topics");
    g.throughput(Throughput::Bytes(payload.len() as u64));
    g.bench_function("sluice_rewrite", |b| {
        b.iter(|| black_box(rewrite_response(3, 12, payload.clone(), &mut Map).is_ok()))
    });
    g.finish();
}

fn fetch(c: &mut Criterion) {
    // ~1 MiB: 8 topics x 8 partitions x 16 KiB record blobs
    let topics = (0..8)
        .map(|_| {
            FetchableTopicResponse::default().with_partitions(
                (0..8)
                    .map(|p| {
                        PartitionData::default()
                            .with_partition_index(p)
                            .with_high_watermark(1000)
                            .with_aborted_transactions(Some(vec![]))
                            .with_records(Some(Bytes::from(vec![0x5a; 16 * 1024])))
                    })
                    .collect(),
            )
        })
        .collect();
    let r = FetchResponse::default().with_responses(topics);
    let payload = response(ApiKey::Fetch, 16, &r);
    let mut g = c.benchmark_group("fetch_v16_1MiB_no_node_endpoints");
    g.throughput(Throughput::Bytes(payload.len() as u64));
    g.bench_function("sluice_kip951_scan", |b| {
        b.iter(|| black_box(rewrite_response(1, 16, payload.clone(), &mut Map).is_ok()))
    });
    g.bench_function("kafka_protocol_decode_encode", |b| {
        b.iter(|| {
            let mut body = payload.slice(5..);
            let m = FetchResponse::decode(&mut body, 16).expect("decodes");
            let mut out = BytesMut::with_capacity(payload.len());
            m.encode(&mut out, 16).expect("encodes");
            black_box(out.len())
        })
    });
    g.finish();
}

criterion_group!(benches, frames, header, metadata, fetch);
criterion_main!(benches);

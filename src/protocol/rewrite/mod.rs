//! Targeted response rewrites: every broker address a response carries becomes an address of
//! Sluice, or the client would connect to the broker directly and bypass the gateway.
//!
//! Which responses carry addresses (Kafka protocol guide; message definitions in Apache Kafka's
//! `clients/src/main/resources/common/message/*.json`):
//! - Metadata `brokers` (all versions): [`metadata`];
//! - FindCoordinator: v0-v3 a single `node_id/host/port`, v4+ the `coordinators` array (KIP-699):
//!   [`find_coordinator`];
//! - DescribeCluster `brokers` (KIP-700; v1+ `endpoint_type`, KIP-919): [`describe_cluster`];
//! - Produce v10+ and Fetch v16+ `node_endpoints`, a top-level tagged field (KIP-951):
//!   [`node_endpoints`], which finds it without decoding or copying records;
//! - ShareFetch and ShareAcknowledge `node_endpoints` (KIP-932), a regular field: [`share`].
//!
//! Two responses carry addresses that have no gateway counterpart, and are withheld instead:
//! - DescribeQuorum v2+ `nodes[].listeners`, the KRaft controllers' endpoints (KIP-853):
//!   [`describe_quorum`];
//! - DescribeConfigs values of a broker's address configs (`listeners`, `advertised.listeners`,
//!   `controller.quorum.*`, ...), answered as sensitive: [`describe_configs`].
//!
//! ApiVersions carries no address, but is rewritten so that a client only uses versions Sluice can
//! decode ([`api_versions`]).
//!
//! The response header (correlation id, and the tagged fields of header v1) is preserved byte for
//! byte. Cold paths (all but Produce/Fetch) decode and re-encode the body with kafka-protocol
//! after a bounds-checking walk ([`super::wire`]) has proven that every array count in the body is
//! backed by bytes, so a hostile count cannot make the decoder allocate without bound. Network input
//! never panics: every failure is a [`RewriteError`].

pub mod api_versions;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_quorum;
pub mod find_coordinator;
pub mod metadata;
pub mod node_endpoints;
pub mod share;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use super::header::{response_body_offset, HeaderError};
use super::versions::{decodable_versions, keys};
use super::wire::{walk_body, Cursor, Schema, WireError};

pub use api_versions::{
    api_versions_error, api_versions_unsupported, hide_api_keys as api_versions_hide,
    restrict_api_keys as api_versions_restrict,
};

/// Maps an upstream broker endpoint to the client-facing endpoint of Sluice; implementors record
/// the upstream address (topology discovery).
pub trait AddressMap {
    /// The gateway `(host, port)` that clients must use for broker `node_id`, which the upstream
    /// advertised as `upstream_host:upstream_port`.
    ///
    /// `None`: this node id has no gateway address (then the broker entry is dropped from
    /// Metadata/DescribeCluster/node_endpoints, and FindCoordinator answers
    /// COORDINATOR_NOT_AVAILABLE for that coordinator). Never leak the upstream address.
    fn map_broker(
        &mut self,
        node_id: i32,
        upstream_host: &str,
        upstream_port: i32,
    ) -> Option<(String, i32)>;
}

/// The outcome of a rewrite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rewritten {
    /// forward the original frame bytes
    Unchanged,
    /// new response payload (WITHOUT size prefix; correlation id and header preserved)
    Replaced(Bytes),
    /// payload = prefix ++ tail: prefix is a zero-copy slice of the original payload (records
    /// untouched), tail is re-encoded. Frame it with [`super::frame::size_prefix`] of
    /// `prefix.len() + tail.len()`.
    Spliced {
        /// zero-copy slice of the original payload, header included
        prefix: Bytes,
        /// re-encoded end of the payload
        tail: Bytes,
    },
}

impl Rewritten {
    /// The payload as one buffer (copies for [`Rewritten::Spliced`]); `original` is the payload
    /// that was given to [`rewrite_response`]. Meant for tests and cold paths.
    pub fn into_payload(self, original: Bytes) -> Bytes {
        match self {
            Rewritten::Unchanged => original,
            Rewritten::Replaced(p) => p,
            Rewritten::Spliced { prefix, tail } => {
                let mut out = BytesMut::with_capacity(prefix.len() + tail.len());
                out.put_slice(&prefix);
                out.put_slice(&tail);
                out.freeze()
            }
        }
    }
}

/// Why a response could not be rewritten. The response must then not be forwarded (it may hold an
/// upstream address): the caller closes the client connection. Not retryable: the same bytes fail
/// the same way.
#[derive(Debug, thiserror::Error)]
pub enum RewriteError {
    /// Sluice cannot decode this version of a response it must rewrite.
    #[error("api key {api_key} version {api_version}: Sluice cannot decode this version")]
    UnsupportedVersion {
        /// api key
        api_key: i16,
        /// version
        api_version: i16,
    },
    /// The response header could not be read.
    #[error("api key {api_key} version {api_version}: response header: {source}")]
    Header {
        /// api key
        api_key: i16,
        /// version
        api_version: i16,
        /// what failed
        #[source]
        source: HeaderError,
    },
    /// The response body is truncated or malformed (found by Sluice's own walk).
    #[error("api key {api_key} version {api_version}: malformed response body: {source}")]
    Malformed {
        /// api key
        api_key: i16,
        /// version
        api_version: i16,
        /// what failed, with the offset in the body
        #[source]
        source: WireError,
    },
    /// kafka-protocol refused to decode the body.
    #[error("api key {api_key} version {api_version}: decode failed: {message}")]
    Decode {
        /// api key
        api_key: i16,
        /// version
        api_version: i16,
        /// kafka-protocol's message
        message: String,
    },
    /// kafka-protocol refused to encode the rewritten body.
    #[error("api key {api_key} version {api_version}: encode failed: {message}")]
    Encode {
        /// api key
        api_key: i16,
        /// version
        api_version: i16,
        /// kafka-protocol's message
        message: String,
    },
}

/// `payload` is a whole response payload (no size prefix) including the response header.
/// Dispatches by api key; `api_key`/`api_version` are those of the request it answers.
///
/// Keys that carry no address (and Produce below v10, Fetch below v16, DescribeQuorum below v2) give
/// [`Rewritten::Unchanged`]. For keys that must be rewritten, a version outside
/// [`decodable_versions`] is [`RewriteError::UnsupportedVersion`].
pub fn rewrite_response(
    api_key: i16,
    api_version: i16,
    payload: Bytes,
    map: &mut dyn AddressMap,
) -> Result<Rewritten, RewriteError> {
    let Some(range) = decodable_versions(api_key) else {
        return Ok(Rewritten::Unchanged);
    };
    let ctx = Ctx {
        api_key,
        api_version,
    };
    match api_key {
        keys::PRODUCE if (0..10).contains(&api_version) => return Ok(Rewritten::Unchanged),
        keys::FETCH if (0..16).contains(&api_version) => return Ok(Rewritten::Unchanged),
        keys::DESCRIBE_QUORUM if (0..2).contains(&api_version) => return Ok(Rewritten::Unchanged),
        _ => {}
    }
    if !range.contains(&api_version) {
        return Err(RewriteError::UnsupportedVersion {
            api_key,
            api_version,
        });
    }
    let body_offset = response_body_offset(&payload, api_key, api_version).map_err(|source| {
        RewriteError::Header {
            api_key,
            api_version,
            source,
        }
    })?;
    match api_key {
        keys::METADATA => metadata::rewrite(&ctx, payload, body_offset, map),
        keys::FIND_COORDINATOR => find_coordinator::rewrite(&ctx, payload, body_offset, map),
        keys::DESCRIBE_CLUSTER => describe_cluster::rewrite(&ctx, payload, body_offset, map),
        keys::API_VERSIONS => api_versions::rewrite(&ctx, payload, body_offset),
        keys::DESCRIBE_CONFIGS => describe_configs::rewrite(&ctx, payload, body_offset),
        keys::DESCRIBE_QUORUM => describe_quorum::rewrite(&ctx, payload, body_offset),
        keys::PRODUCE | keys::FETCH => node_endpoints::rewrite(&ctx, payload, body_offset, map),
        keys::SHARE_FETCH | keys::SHARE_ACKNOWLEDGE => {
            share::rewrite(&ctx, payload, body_offset, map)
        }
        _ => Ok(Rewritten::Unchanged),
    }
}

/// Api key and version of the response being rewritten, for error reports.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ctx {
    pub(crate) api_key: i16,
    pub(crate) api_version: i16,
}

impl Ctx {
    pub(crate) fn malformed(&self, source: WireError) -> RewriteError {
        RewriteError::Malformed {
            api_key: self.api_key,
            api_version: self.api_version,
            source,
        }
    }

    fn decode_err(&self, e: impl std::fmt::Display) -> RewriteError {
        RewriteError::Decode {
            api_key: self.api_key,
            api_version: self.api_version,
            message: e.to_string(),
        }
    }

    fn encode_err(&self, e: impl std::fmt::Display) -> RewriteError {
        RewriteError::Encode {
            api_key: self.api_key,
            api_version: self.api_version,
            message: e.to_string(),
        }
    }

    /// Walks the body with `schema` (bounds every array count), then decodes it with
    /// kafka-protocol.
    pub(crate) fn decode<T: Decodable>(
        &self,
        payload: &Bytes,
        body_offset: usize,
        schema: &Schema,
    ) -> Result<T, RewriteError> {
        let mut c = Cursor::at(payload, body_offset);
        walk_body(&mut c, schema, self.api_version).map_err(|e| self.malformed(e))?;
        if body_offset > payload.len() {
            return Err(self.malformed(WireError::Truncated(payload.len())));
        }
        let mut body = payload.slice(body_offset..);
        T::decode(&mut body, self.api_version).map_err(|e| self.decode_err(e))
    }

    /// Encodes `msg` behind the original response header (`payload[..body_offset]`).
    pub(crate) fn encode<T: Encodable>(
        &self,
        payload: &Bytes,
        body_offset: usize,
        msg: &T,
    ) -> Result<Bytes, RewriteError> {
        let header = payload
            .get(..body_offset)
            .ok_or_else(|| self.malformed(WireError::Truncated(payload.len())))?;
        let size = msg
            .compute_size(self.api_version)
            .map_err(|e| self.encode_err(e))?;
        let mut out = BytesMut::with_capacity(body_offset + size);
        out.put_slice(header);
        msg.encode(&mut out, self.api_version)
            .map_err(|e| self.encode_err(e))?;
        Ok(out.freeze())
    }
}

/// Asks `map` for the gateway address of a broker; `None` when it has none.
pub(crate) fn map_endpoint(
    map: &mut dyn AddressMap,
    node_id: i32,
    host: &StrBytes,
    port: i32,
) -> Option<(StrBytes, i32)> {
    map.map_broker(node_id, host.as_str(), port)
        .map(|(h, p)| (StrBytes::from_string(h), p))
}

/// Decodes a response whose addresses are one broker list, rewrites that list with `map`, and
/// re-encodes it behind the original header; `Unchanged` when the list is empty. `list` picks the
/// list out of the message, `endpoint` the fields out of an entry.
pub(crate) fn rewrite_broker_list<M: Decodable + Encodable, T>(
    ctx: &Ctx,
    payload: &Bytes,
    body_offset: usize,
    schema: &Schema,
    map: &mut dyn AddressMap,
    list: fn(&mut M) -> &mut Vec<T>,
    endpoint: EndpointOf<T>,
) -> Result<Rewritten, RewriteError> {
    let mut msg: M = ctx.decode(payload, body_offset, schema)?;
    let entries = list(&mut msg);
    if entries.is_empty() {
        return Ok(Rewritten::Unchanged);
    }
    map_entries(map, entries, endpoint);
    ctx.encode(payload, body_offset, &msg)
        .map(Rewritten::Replaced)
}

/// The endpoint fields of one broker entry of a response: node id, host, port.
pub(crate) type EndpointOf<T> = fn(&mut T) -> (i32, &mut StrBytes, &mut i32);

/// Rewrites every broker entry of `entries` in place through `map`; entries without a gateway
/// address are dropped (never leaked). Shared by every response that lists brokers.
pub(crate) fn map_entries<T>(
    map: &mut dyn AddressMap,
    entries: &mut Vec<T>,
    endpoint: EndpointOf<T>,
) {
    entries.retain_mut(|e| {
        let (node_id, host, port) = endpoint(e);
        match map_endpoint(map, node_id, host, *port) {
            Some((h, p)) => {
                *host = h;
                *port = p;
                true
            }
            None => false,
        }
    });
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod test_util {
    //! Shared helpers for the rewrite tests.
    use super::*;
    use kafka_protocol::messages::{ApiKey, ResponseHeader};

    pub(crate) const UPSTREAM: &str = "upstream-broker.internal";
    pub(crate) const GATEWAY: &str = "sluice.gateway";
    /// node id that the test map has no address for
    pub(crate) const UNMAPPED: i32 = 666;

    /// Maps node `n` to `sluice.gateway:(19000 + n)` (wrapping), except [`UNMAPPED`]; records what it
    /// saw.
    #[derive(Debug, Default)]
    pub(crate) struct TestMap {
        pub(crate) seen: Vec<(i32, String, i32)>,
    }

    impl TestMap {
        pub(crate) fn expect(node_id: i32) -> Option<(String, i32)> {
            (node_id != UNMAPPED).then(|| (GATEWAY.to_string(), 19_000i32.wrapping_add(node_id)))
        }
    }

    impl AddressMap for TestMap {
        fn map_broker(&mut self, node_id: i32, host: &str, port: i32) -> Option<(String, i32)> {
            self.seen.push((node_id, host.to_string(), port));
            Self::expect(node_id)
        }
    }

    /// Response payload: header of the right version (with an unknown header tagged field when
    /// flexible) + body.
    pub(crate) fn response<T: Encodable>(key: ApiKey, version: i16, corr: i32, body: &T) -> Bytes {
        let hv = key.response_header_version(version);
        let mut h = ResponseHeader::default().with_correlation_id(corr);
        if hv >= 1 {
            h = h.with_unknown_tagged_field(7, Bytes::from_static(b"hdr"));
        }
        let mut out = BytesMut::new();
        h.encode(&mut out, hv).unwrap();
        body.encode(&mut out, version).unwrap();
        out.freeze()
    }

    /// Decodes a payload produced by [`response`] (or a rewrite of it); checks the header bytes are
    /// those of `original`.
    pub(crate) fn decode<T: Decodable>(
        key: ApiKey,
        version: i16,
        original: &Bytes,
        payload: &Bytes,
    ) -> T {
        let off = response_body_offset(payload, key as i16, version).unwrap();
        assert_eq!(&payload[..off], &original[..off], "response header changed");
        let mut body = payload.slice(off..);
        T::decode(&mut body, version).unwrap()
    }

    pub(crate) fn contains(hay: &[u8], needle: &str) -> bool {
        hay.windows(needle.len()).any(|w| w == needle.as_bytes())
    }

    /// Every truncation of `payload` is an error or Unchanged, never a panic.
    pub(crate) fn truncations_never_panic(key: i16, version: i16, payload: &Bytes) {
        for cut in 0..payload.len() {
            let mut m = TestMap::default();
            let r = rewrite_response(key, version, payload.slice(..cut), &mut m);
            if let Ok(Rewritten::Replaced(p)) = &r {
                assert!(!contains(p, UPSTREAM));
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod split_reads {
    //! A response arrives in reads of any size: walked frame by frame in place as the session does
    //! ([`peek_frame_len`]), every response that must be rewritten comes out the same whatever the
    //! read boundaries are.
    use super::test_util::*;
    use super::*;
    use crate::protocol::frame::{encode_frame, peek_frame_len};
    use kafka_protocol::messages::describe_configs_response::{
        DescribeConfigsResourceResult, DescribeConfigsResult,
    };
    use kafka_protocol::messages::describe_quorum_response::{Listener, Node};
    use kafka_protocol::messages::find_coordinator_response::Coordinator;
    use kafka_protocol::messages::metadata_response::MetadataResponseBroker;
    use kafka_protocol::messages::{
        ApiKey, BrokerId, DescribeConfigsResponse, DescribeQuorumResponse, FindCoordinatorResponse,
        MetadataResponse,
    };

    fn host() -> StrBytes {
        StrBytes::from_static_str(UPSTREAM)
    }

    /// (api key, version, payload) of responses that each rewriter changes.
    fn responses() -> Vec<(i16, i16, Bytes)> {
        let metadata =
            MetadataResponse::default().with_brokers(vec![MetadataResponseBroker::default()
                .with_node_id(BrokerId(1))
                .with_host(host())
                .with_port(9092)]);
        let coordinator =
            FindCoordinatorResponse::default().with_coordinators(vec![Coordinator::default()
                .with_key(StrBytes::from_static_str("g"))
                .with_node_id(BrokerId(2))
                .with_host(host())
                .with_port(9092)]);
        let quorum = DescribeQuorumResponse::default().with_nodes(vec![Node::default()
            .with_node_id(BrokerId(1))
            .with_listeners(vec![Listener::default().with_host(host()).with_port(9093)])]);
        let configs =
            DescribeConfigsResponse::default().with_results(vec![DescribeConfigsResult::default()
                .with_resource_type(4)
                .with_resource_name(StrBytes::from_static_str("1"))
                .with_configs(vec![DescribeConfigsResourceResult::default()
                    .with_name(StrBytes::from_static_str("listeners"))
                    .with_value(Some(StrBytes::from_static_str(UPSTREAM)))])]);
        vec![
            (3, 12, response(ApiKey::Metadata, 12, 1, &metadata)),
            (10, 4, response(ApiKey::FindCoordinator, 4, 2, &coordinator)),
            (55, 2, response(ApiKey::DescribeQuorum, 2, 3, &quorum)),
            (32, 4, response(ApiKey::DescribeConfigs, 4, 4, &configs)),
        ]
    }

    /// Reads `wire` in two chunks cut at `cut`, walking whole frames in place after each read.
    fn frames_read_with_cut(wire: &[u8], cut: usize) -> Vec<Bytes> {
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for chunk in [&wire[..cut], &wire[cut..]] {
            buf.extend_from_slice(chunk);
            while let Some(len) = peek_frame_len(&buf, 1 << 20).unwrap() {
                out.push(buf.split_to(len).freeze());
            }
        }
        assert!(buf.is_empty(), "bytes left over");
        out
    }

    #[test]
    fn every_read_boundary_gives_the_same_rewrites() {
        let responses = responses();
        let wire: Vec<u8> = responses
            .iter()
            .flat_map(|(_, _, p)| encode_frame(p).to_vec())
            .collect();
        let rewrite = |i: usize, payload: Bytes| {
            let (key, v, _) = &responses[i];
            let out = rewrite_response(*key, *v, payload.clone(), &mut TestMap::default()).unwrap();
            assert_ne!(
                out,
                Rewritten::Unchanged,
                "api key {key}: nothing rewritten"
            );
            out.into_payload(payload)
        };
        let want: Vec<Bytes> = (0..responses.len())
            .map(|i| rewrite(i, responses[i].2.clone()))
            .collect();
        for w in &want {
            assert!(!contains(w, UPSTREAM), "upstream address leaked");
        }
        for cut in 0..=wire.len() {
            let frames = frames_read_with_cut(&wire, cut);
            assert_eq!(frames.len(), responses.len(), "cut {cut}");
            for (i, f) in frames.into_iter().enumerate() {
                assert_eq!(rewrite(i, f.slice(4..)), want[i], "cut {cut}, frame {i}");
            }
        }
    }
}

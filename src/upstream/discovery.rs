//! Topology discovery: a Metadata request (no topics) to a bootstrap broker, whose `brokers`
//! teach the shard every node id and open its port-per-broker listeners.
//!
//! Run at shard start (so node ports answer before any client asks) and whenever a connection
//! arrives on a node port the shard does not know yet.

use std::rc::Rc;

use bytes::{BufMut, BytesMut};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use kafka_protocol::messages::{ApiKey, MetadataRequest, RequestHeader};
use kafka_protocol::protocol::{Encodable, StrBytes};

use crate::protocol::rewrite;
use crate::proxy::shard::Shard;
use crate::upstream::reuse::Usage;

/// Metadata version used for discovery (flexible, supported by Kafka 2.8+ and 4.x).
const METADATA_VERSION: i16 = 12;

/// Why discovery failed.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("connect: {0}")]
    Connect(#[from] crate::upstream::connect::ConnectError),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("encode: {0}")]
    Encode(String),
    #[error("bad response: {0}")]
    Response(String),
}

/// Encodes a Metadata v12 request for brokers only (empty topic list), with its size prefix.
pub fn metadata_request(correlation_id: i32) -> Result<BytesMut, DiscoveryError> {
    let header = RequestHeader::default()
        .with_request_api_key(ApiKey::Metadata as i16)
        .with_request_api_version(METADATA_VERSION)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("sluice-discovery")));
    let req = MetadataRequest::default()
        .with_topics(Some(Vec::new()))
        .with_allow_auto_topic_creation(false);
    let mut body = BytesMut::new();
    header
        .encode(
            &mut body,
            ApiKey::Metadata.request_header_version(METADATA_VERSION),
        )
        .map_err(|e| DiscoveryError::Encode(e.to_string()))?;
    req.encode(&mut body, METADATA_VERSION)
        .map_err(|e| DiscoveryError::Encode(e.to_string()))?;
    let mut out = BytesMut::with_capacity(4 + body.len());
    out.put_i32(
        i32::try_from(body.len())
            .map_err(|_| DiscoveryError::Encode("request too large".into()))?,
    );
    out.extend_from_slice(&body);
    Ok(out)
}

/// Asks one reachable broker for the broker list and records it in the shard. Returns the number
/// of brokers learned.
///
/// # Errors
/// [`DiscoveryError`] when no broker answers or the answer cannot be read.
pub async fn discover(shard: &Rc<Shard>) -> Result<usize, DiscoveryError> {
    let candidates = shard.any_broker_candidates();
    let (mut stream, addr) = shard.connector.connect_any(&candidates).await?;
    let corr = 1;
    stream.write_all(&metadata_request(corr)?).await?;
    let mut size = [0u8; 4];
    stream.read_exact(&mut size).await?;
    let size = i32::from_be_bytes(size);
    if size < 0 || size as usize > shard.config().max_frame_bytes {
        return Err(DiscoveryError::Response(format!("frame size {size}")));
    }
    let mut payload = vec![0u8; size as usize];
    stream.read_exact(&mut payload).await?;
    let payload = bytes::Bytes::from(payload);
    let got = crate::protocol::header::response_correlation_id(&payload)
        .map_err(|e| DiscoveryError::Response(e.to_string()))?;
    if got != corr {
        return Err(DiscoveryError::Response(format!(
            "correlation id {got}, expected {corr}"
        )));
    }
    let mut map = shard.address_map();
    rewrite::rewrite_response(ApiKey::Metadata as i16, METADATA_VERSION, payload, &mut map)
        .map_err(|e| DiscoveryError::Response(e.to_string()))?;
    let n = map.finish();
    // The connection carried one Metadata request, answered without authentication.
    let usage = Usage::default();
    usage.request(ApiKey::Metadata as i16, true);
    usage.answered(ApiKey::Metadata as i16);
    if let Ok(proof) = usage.poolable() {
        shard.pool.put(proof, &addr, stream);
    }
    Ok(n)
}

/// [`discover`], logging instead of failing.
pub async fn refresh(shard: &Rc<Shard>) {
    match discover(shard).await {
        Ok(n) => tracing::debug!(shard = shard.id, brokers = n, "topology refreshed"),
        Err(e) => tracing::warn!(shard = shard.id, error = %e, "topology discovery failed"),
    }
}

/// At shard start: discover until it works once (backing off), or until shutdown.
pub async fn discover_at_start(shard: Rc<Shard>) {
    let mut delay = shard.config().reconnect_backoff;
    loop {
        if shard.shutdown.is_set() {
            return;
        }
        match discover(&shard).await {
            Ok(n) => {
                tracing::info!(shard = shard.id, brokers = n, "upstream cluster discovered");
                return;
            }
            Err(e) => {
                tracing::warn!(shard = shard.id, error = %e, retry_in_ms = delay.as_millis() as u64,
                    "upstream discovery failed; will retry");
            }
        }
        glommio::timer::sleep(delay).await;
        delay = (delay * 2).min(shard.config().reconnect_backoff_max.max(delay));
    }
}

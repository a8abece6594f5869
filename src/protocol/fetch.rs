//! Fetch responses for per-topic quotas (api key 1, v4-v12, the versions that name topics): each
//! topic with the bytes of its records, read in place without copying or decoding records.
//! Sans-io.

use super::wire::{Cursor, WireError};

/// Why a Fetch response could not be read for its topics.
#[derive(Debug, thiserror::Error)]
pub enum FetchScanError {
    /// The body does not hold what its version says.
    #[error("malformed Fetch response: {0}")]
    Wire(#[from] WireError),
    /// A version that names no topics (v13+) or that Sluice does not read (below v4).
    #[error("Fetch v{0} responses do not name topics Sluice can read")]
    NoTopicNames(i16),
}

/// Last Fetch version whose responses name topics (v13+ carry topic ids, KIP-516).
pub const LAST_VERSION_WITH_NAMES: i16 = 12;

/// Each topic of a Fetch response body (`payload[body..]`, version `version`, v4-v12) with the
/// bytes of its records, in response order.
///
/// # Errors
/// [`FetchScanError`] for a body that does not hold what its version says, or a version outside
/// v4-v12.
pub fn topic_bytes(
    payload: &[u8],
    body: usize,
    version: i16,
) -> Result<Vec<(&str, usize)>, FetchScanError> {
    if !(4..=LAST_VERSION_WITH_NAMES).contains(&version) {
        return Err(FetchScanError::NoTopicNames(version));
    }
    let flexible = version >= 12;
    let mut c = Cursor::at(payload, body);
    c.skip(4)?; // throttle_time_ms
    if version >= 7 {
        c.skip(2 + 4)?; // error_code, session_id
    }
    let topics = c.count(flexible, 2)?.unwrap_or(0);
    let mut out = Vec::with_capacity(topics);
    for _ in 0..topics {
        let name = c.str(flexible)?;
        let mut bytes = 0;
        let partitions = c.count(flexible, 30)?.unwrap_or(0);
        for _ in 0..partitions {
            // partition_index, error_code, high_watermark, last_stable_offset
            c.skip(4 + 2 + 8 + 8)?;
            if version >= 5 {
                c.skip(8)?; // log_start_offset
            }
            let aborted = c.count(flexible, 16)?.unwrap_or(0);
            for _ in 0..aborted {
                c.skip(8 + 8)?; // producer_id, first_offset
                if flexible {
                    c.skip_tagged()?;
                }
            }
            if version >= 11 {
                c.skip(4)?; // preferred_read_replica
            }
            if let Some((s, e)) = c.bytes_range(flexible)? {
                bytes += e - s;
            }
            if flexible {
                c.skip_tagged()?;
            }
        }
        if flexible {
            c.skip_tagged()?;
        }
        out.push((name, bytes));
    }
    if flexible {
        c.skip_tagged()?; // the body's own tagged fields
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use bytes::{Bytes, BytesMut};
    use kafka_protocol::messages::fetch_response::{
        AbortedTransaction, FetchableTopicResponse, PartitionData,
    };
    use kafka_protocol::messages::{FetchResponse, TopicName};
    use kafka_protocol::protocol::{Encodable, StrBytes};

    fn topic(name: &str, records: &[usize]) -> FetchableTopicResponse {
        FetchableTopicResponse::default()
            .with_topic(TopicName(StrBytes::from_string(name.to_string())))
            .with_partitions(
                records
                    .iter()
                    .map(|n| {
                        PartitionData::default()
                            .with_aborted_transactions(Some(vec![AbortedTransaction::default()]))
                            .with_records(Some(Bytes::from(vec![7u8; *n])))
                    })
                    .collect(),
            )
    }

    #[test]
    fn bytes_per_topic_in_every_version_and_truncations_fail() {
        for v in 4..=12 {
            let msg = FetchResponse::default().with_responses(vec![
                topic("a", &[100, 20]),
                topic("b", &[0]),
                topic("c", &[5]),
            ]);
            let mut out = BytesMut::new();
            msg.encode(&mut out, v).unwrap();
            let got = topic_bytes(&out, 0, v).unwrap();
            assert_eq!(got, vec![("a", 120), ("b", 0), ("c", 5)], "v{v}");
            for cut in 0..out.len() {
                assert!(topic_bytes(&out[..cut], 0, v).is_err(), "v{v} cut {cut}");
            }
        }
        assert!(topic_bytes(&[], 0, 13).is_err());
    }
}

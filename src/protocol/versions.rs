//! Which api keys and versions Sluice decodes, and which responses it must rewrite.
//!
//! Sluice forwards every frame opaque unless something declared interest in its api key and
//! version. The interest declared here is address rewriting (see [`super::rewrite`]): a response
//! that can carry a broker address must be rewritten, so Sluice can only let a client use versions
//! it can decode; [`super::rewrite::rewrite_response`] caps the ApiVersions response to
//! [`decodable_versions`].

use std::ops::RangeInclusive;

use kafka_protocol::messages::{
    ApiVersionsResponse, DescribeClusterResponse, DescribeConfigsResponse, DescribeQuorumResponse,
    FetchResponse, FindCoordinatorResponse, MetadataResponse, ProduceResponse,
    ShareAcknowledgeResponse, ShareFetchResponse,
};
use kafka_protocol::protocol::Message;

/// Api key numbers (Kafka protocol guide, "Api Keys").
pub mod keys {
    /// Produce
    pub const PRODUCE: i16 = 0;
    /// Fetch
    pub const FETCH: i16 = 1;
    /// Metadata
    pub const METADATA: i16 = 3;
    /// FindCoordinator
    pub const FIND_COORDINATOR: i16 = 10;
    /// ApiVersions
    pub const API_VERSIONS: i16 = 18;
    /// DescribeConfigs
    pub const DESCRIBE_CONFIGS: i16 = 32;
    /// DescribeQuorum (KIP-595)
    pub const DESCRIBE_QUORUM: i16 = 55;
    /// DescribeCluster (KIP-700)
    pub const DESCRIBE_CLUSTER: i16 = 60;
    /// ShareFetch (KIP-932)
    pub const SHARE_FETCH: i16 = 78;
    /// ShareAcknowledge (KIP-932)
    pub const SHARE_ACKNOWLEDGE: i16 = 79;
}

/// First Produce response version carrying KIP-951 `node_endpoints`.
pub const PRODUCE_NODE_ENDPOINTS_MIN: i16 = 10;
/// First Fetch response version carrying KIP-951 `node_endpoints`.
pub const FETCH_NODE_ENDPOINTS_MIN: i16 = 16;
/// First DescribeQuorum response version carrying controller endpoints (`nodes`, KIP-853).
pub const DESCRIBE_QUORUM_NODES_MIN: i16 = 2;

/// Versions the KIP-951 scanner knows the layout of: Produce responses.
const PRODUCE_SCANNER: RangeInclusive<i16> = 3..=13;
/// Versions the KIP-951 scanner knows the layout of: Fetch responses.
const FETCH_SCANNER: RangeInclusive<i16> = 4..=18;

const fn range<M: Message>() -> RangeInclusive<i16> {
    M::VERSIONS.min..=M::VERSIONS.max
}

fn intersect(a: RangeInclusive<i16>, b: RangeInclusive<i16>) -> RangeInclusive<i16> {
    (*a.start()).max(*b.start())..=(*a.end()).min(*b.end())
}

/// For each api key Sluice DECODES (its responses are rewritten), the versions it can decode;
/// `None` for opaque keys, which pass through at whatever versions the broker supports.
///
/// Metadata (3) 0..=13, FindCoordinator (10) 0..=6, DescribeCluster (60) 0..=2, ApiVersions (18)
/// 0..=4, DescribeConfigs (32) 1..=4, DescribeQuorum (55) 0..=2, ShareFetch (78) and
/// ShareAcknowledge (79) 1..=1: kafka-protocol's ranges. Produce (0) 3..=13 and Fetch (1) 4..=18:
/// the versions whose layout the KIP-951 scanner knows.
pub fn decodable_versions(api_key: i16) -> Option<RangeInclusive<i16>> {
    match api_key {
        keys::PRODUCE => Some(intersect(PRODUCE_SCANNER, range::<ProduceResponse>())),
        keys::FETCH => Some(intersect(FETCH_SCANNER, range::<FetchResponse>())),
        keys::METADATA => Some(range::<MetadataResponse>()),
        keys::FIND_COORDINATOR => Some(range::<FindCoordinatorResponse>()),
        keys::API_VERSIONS => Some(range::<ApiVersionsResponse>()),
        keys::DESCRIBE_CLUSTER => Some(range::<DescribeClusterResponse>()),
        keys::DESCRIBE_CONFIGS => Some(range::<DescribeConfigsResponse>()),
        keys::DESCRIBE_QUORUM => Some(range::<DescribeQuorumResponse>()),
        keys::SHARE_FETCH => Some(range::<ShareFetchResponse>()),
        keys::SHARE_ACKNOWLEDGE => Some(range::<ShareAcknowledgeResponse>()),
        _ => None,
    }
}

/// `true` when a response of this key/version must be given to
/// [`super::rewrite::rewrite_response`]: Metadata, FindCoordinator, DescribeCluster, ApiVersions,
/// DescribeConfigs (all versions), Produce v10+, Fetch v16+ (KIP-951), DescribeQuorum v2+ (KIP-853),
/// ShareFetch, ShareAcknowledge (KIP-932).
///
/// A version outside [`decodable_versions`] still answers `true` for those keys: the rewrite then
/// fails with [`super::rewrite::RewriteError::UnsupportedVersion`], and the caller closes the
/// connection rather than leak an upstream address.
pub fn response_needs_rewrite(api_key: i16, api_version: i16) -> bool {
    match api_key {
        keys::METADATA
        | keys::FIND_COORDINATOR
        | keys::DESCRIBE_CLUSTER
        | keys::API_VERSIONS
        | keys::DESCRIBE_CONFIGS
        | keys::SHARE_FETCH
        | keys::SHARE_ACKNOWLEDGE => true,
        keys::PRODUCE => api_version >= PRODUCE_NODE_ENDPOINTS_MIN,
        keys::FETCH => api_version >= FETCH_NODE_ENDPOINTS_MIN,
        keys::DESCRIBE_QUORUM => api_version >= DESCRIBE_QUORUM_NODES_MIN,
        _ => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(decodable_versions(3), Some(0..=13));
        assert_eq!(decodable_versions(10), Some(0..=6));
        assert_eq!(decodable_versions(60), Some(0..=2));
        assert_eq!(decodable_versions(18), Some(0..=4));
        assert_eq!(decodable_versions(0), Some(3..=13));
        assert_eq!(decodable_versions(1), Some(4..=18));
        assert_eq!(decodable_versions(78), Some(1..=1));
        assert_eq!(decodable_versions(79), Some(1..=1));
        assert_eq!(decodable_versions(32), Some(1..=4));
        assert_eq!(decodable_versions(55), Some(0..=2));
        assert_eq!(decodable_versions(2), None);
        assert_eq!(decodable_versions(-1), None);
        assert_eq!(decodable_versions(1000), None);
    }

    #[test]
    fn needs_rewrite() {
        assert!(!response_needs_rewrite(0, 9));
        assert!(response_needs_rewrite(0, 10));
        assert!(!response_needs_rewrite(1, 15));
        assert!(response_needs_rewrite(1, 16));
        assert!(response_needs_rewrite(3, 0));
        assert!(response_needs_rewrite(18, 0));
        assert!(response_needs_rewrite(32, 1));
        assert!(!response_needs_rewrite(55, 1));
        assert!(response_needs_rewrite(55, 2));
        assert!(!response_needs_rewrite(2, 5));
        assert!(!response_needs_rewrite(12345, 0));
    }
}

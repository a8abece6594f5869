//! Numbers the Kafka protocol defines once and several messages share: error codes (Kafka
//! protocol guide, "Error Codes") and config resource types (`ConfigResource.Type`, KIP-133).

/// `UNKNOWN_TOPIC_OR_PARTITION`: the broker does not host this topic-partition.
pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
/// `TOPIC_AUTHORIZATION_FAILED`: the client may not access the topic (as the broker's
/// authorizer answers, KIP-11).
pub const TOPIC_AUTHORIZATION_FAILED: i16 = 29;
/// `POLICY_VIOLATION`: the request parameters do not satisfy the configured policy.
pub const POLICY_VIOLATION: i16 = 44;

/// Config resource type of a topic.
pub const RESOURCE_TOPIC: i8 = 2;
/// Config resource type of a broker.
pub const RESOURCE_BROKER: i8 = 4;

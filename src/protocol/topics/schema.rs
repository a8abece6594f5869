//! Body walk schemas ([`Schema`]) of the requests and responses that name topics, for the
//! bounds-checking walk ([`walk_body`](crate::protocol::wire::walk_body)) that must accept a body
//! before kafka-protocol decodes it.
//!
//! Layouts follow Apache Kafka's message JSON definitions as generated into kafka-protocol 0.18
//! (`src/messages/*.rs`): field version ranges, the first flexible version (KIP-482), and every
//! tagged field kafka-protocol decodes, declared with its type so that its content is walked too.
//! Each schema is exact for the versions [`VERSIONS`] lists for its api key.

use crate::protocol::wire::{
    always, since, Field, Schema, Struct, Tagged, Ty, BOOL, I16, I32, I64, I8, UUID,
};

/// Field present in versions `min..=max`.
const fn between(min: i16, max: i16, ty: Ty) -> Field {
    Field { ty, min, max }
}

const fn plain(fields: &'static [Field]) -> Struct {
    Struct {
        fields,
        tagged: &[],
    }
}

/// (api_key, min, max): the versions both schemas of an api key are exact for.
pub(crate) const VERSIONS: &[(i16, i16, i16)] = &[
    (0, 3, 12),
    (1, 4, 12),
    (2, 1, 10),
    (3, 0, 13),
    (8, 2, 9),
    (9, 1, 9),
    (19, 2, 7),
    (20, 1, 6),
    (23, 2, 4),
    (32, 1, 4),
    (75, 0, 0),
];

/// Walk schema of the request body of `api_key` (see [`VERSIONS`] for the versions it is exact
/// for).
pub(crate) fn request(api_key: i16) -> Option<&'static Schema> {
    Some(match api_key {
        0 => &PRODUCE_REQUEST,
        1 => &FETCH_REQUEST,
        2 => &LIST_OFFSETS_REQUEST,
        3 => &METADATA_REQUEST,
        8 => &OFFSET_COMMIT_REQUEST,
        9 => &OFFSET_FETCH_REQUEST,
        19 => &CREATE_TOPICS_REQUEST,
        20 => &DELETE_TOPICS_REQUEST,
        23 => &OFFSET_FOR_LEADER_EPOCH_REQUEST,
        32 => &DESCRIBE_CONFIGS_REQUEST,
        75 => &DESCRIBE_TOPIC_PARTITIONS_REQUEST,
        _ => return None,
    })
}

/// Walk schema of the response body of `api_key` (see [`VERSIONS`] for the versions it is exact
/// for).
pub(crate) fn response(api_key: i16) -> Option<&'static Schema> {
    Some(match api_key {
        0 => &PRODUCE_RESPONSE,
        1 => &FETCH_RESPONSE,
        2 => &LIST_OFFSETS_RESPONSE,
        3 => &crate::protocol::rewrite::metadata::SCHEMA,
        8 => &OFFSET_COMMIT_RESPONSE,
        9 => &OFFSET_FETCH_RESPONSE,
        19 => &CREATE_TOPICS_RESPONSE,
        20 => &DELETE_TOPICS_RESPONSE,
        23 => &OFFSET_FOR_LEADER_EPOCH_RESPONSE,
        32 => &DESCRIBE_CONFIGS_RESPONSE,
        75 => &DESCRIBE_TOPIC_PARTITIONS_RESPONSE,
        _ => return None,
    })
}

// ---- Produce (0) ----

static PRODUCE_REQ_PARTITION: Struct = plain(&[
    always(I32),       // index
    always(Ty::Bytes), // records
]);

static PRODUCE_REQ_TOPIC: Struct = plain(&[
    between(0, 12, Ty::Name),                  // name
    since(13, UUID),                           // topic_id
    always(Ty::Array(&PRODUCE_REQ_PARTITION)), // partition_data
]);

static PRODUCE_REQ_ROOT: Struct = plain(&[
    always(Ty::Str),                       // transactional_id
    always(I16),                           // acks
    always(I32),                           // timeout_ms
    always(Ty::Array(&PRODUCE_REQ_TOPIC)), // topic_data
]);

/// ProduceRequest v3-v12 (flexible from v9).
pub(crate) static PRODUCE_REQUEST: Schema = Schema {
    root: &PRODUCE_REQ_ROOT,
    flexible_from: 9,
};

/// LeaderIdAndEpoch of Produce (v10+) and Fetch (v12+) responses.
static LEADER_ID_AND_EPOCH: Struct = plain(&[always(I32), always(I32)]); // leader_id, leader_epoch

/// NodeEndpoint of Produce (v10+) and Fetch (v16+) responses.
static NODE_ENDPOINT: Struct = plain(&[
    always(I32),     // node_id
    always(Ty::Str), // host
    always(I32),     // port
    always(Ty::Str), // rack
]);

static PRODUCE_BATCH_ERROR: Struct = plain(&[
    always(I32),     // batch_index
    always(Ty::Str), // batch_index_error_message
]);

static PRODUCE_RESP_PARTITION: Struct = Struct {
    fields: &[
        always(I32),                               // index
        always(I16),                               // error_code
        always(I64),                               // base_offset
        always(I64),                               // log_append_time_ms
        since(5, I64),                             // log_start_offset
        since(8, Ty::Array(&PRODUCE_BATCH_ERROR)), // record_errors
        since(8, Ty::Str),                         // error_message
    ],
    tagged: &[Tagged {
        tag: 0,
        ty: Ty::Struct(&LEADER_ID_AND_EPOCH),
    }], // current_leader (v10+)
};

static PRODUCE_RESP_TOPIC: Struct = plain(&[
    between(0, 12, Ty::Name),                   // name
    since(13, UUID),                            // topic_id
    always(Ty::Array(&PRODUCE_RESP_PARTITION)), // partition_responses
]);

static PRODUCE_RESP_ROOT: Struct = Struct {
    fields: &[
        always(Ty::Array(&PRODUCE_RESP_TOPIC)), // responses
        always(I32),                            // throttle_time_ms
    ],
    tagged: &[Tagged {
        tag: 0,
        ty: Ty::Array(&NODE_ENDPOINT),
    }], // node_endpoints (v10+)
};

/// ProduceResponse v3-v12 (flexible from v9).
pub(crate) static PRODUCE_RESPONSE: Schema = Schema {
    root: &PRODUCE_RESP_ROOT,
    flexible_from: 9,
};

// ---- Fetch (1) ----

static FETCH_REQ_PARTITION: Struct = Struct {
    fields: &[
        always(I32),    // partition
        since(9, I32),  // current_leader_epoch
        always(I64),    // fetch_offset
        since(12, I32), // last_fetched_epoch
        since(5, I64),  // log_start_offset
        always(I32),    // partition_max_bytes
    ],
    tagged: &[
        Tagged { tag: 0, ty: UUID }, // replica_directory_id (v17+)
        Tagged { tag: 1, ty: I64 },  // high_watermark (v18+)
    ],
};

static FETCH_REQ_TOPIC: Struct = plain(&[
    between(0, 12, Ty::Name),                // topic
    since(13, UUID),                         // topic_id
    always(Ty::Array(&FETCH_REQ_PARTITION)), // partitions
]);

static FETCH_FORGOTTEN: Struct = plain(&[
    between(7, 12, Ty::Name),     // topic
    since(13, UUID),              // topic_id
    since(7, Ty::ScalarArray(4)), // partitions
]);

static FETCH_REPLICA_STATE: Struct = plain(&[always(I32), always(I64)]); // replica_id, replica_epoch

static FETCH_REQ_ROOT: Struct = Struct {
    fields: &[
        between(0, 14, I32),                   // replica_id
        always(I32),                           // max_wait_ms
        always(I32),                           // min_bytes
        since(3, I32),                         // max_bytes
        since(4, I8),                          // isolation_level
        since(7, I32),                         // session_id
        since(7, I32),                         // session_epoch
        always(Ty::Array(&FETCH_REQ_TOPIC)),   // topics
        since(7, Ty::Array(&FETCH_FORGOTTEN)), // forgotten_topics_data
        since(11, Ty::Str),                    // rack_id
    ],
    tagged: &[
        Tagged {
            tag: 0,
            ty: Ty::Str,
        }, // cluster_id (v12+)
        Tagged {
            tag: 1,
            ty: Ty::Struct(&FETCH_REPLICA_STATE),
        }, // replica_state (v15+)
    ],
};

/// FetchRequest v4-v12 (flexible from v12).
pub(crate) static FETCH_REQUEST: Schema = Schema {
    root: &FETCH_REQ_ROOT,
    flexible_from: 12,
};

static FETCH_ABORTED: Struct = plain(&[always(I64), always(I64)]); // producer_id, first_offset

static FETCH_EPOCH_END_OFFSET: Struct = plain(&[always(I32), always(I64)]); // epoch, end_offset

static FETCH_SNAPSHOT_ID: Struct = plain(&[always(I64), always(I32)]); // end_offset, epoch

static FETCH_RESP_PARTITION: Struct = Struct {
    fields: &[
        always(I32),                       // partition_index
        always(I16),                       // error_code
        always(I64),                       // high_watermark
        always(I64),                       // last_stable_offset
        since(5, I64),                     // log_start_offset
        always(Ty::Array(&FETCH_ABORTED)), // aborted_transactions (nullable)
        since(11, I32),                    // preferred_read_replica
        always(Ty::Bytes),                 // records
    ],
    tagged: &[
        Tagged {
            tag: 0,
            ty: Ty::Struct(&FETCH_EPOCH_END_OFFSET),
        }, // diverging_epoch
        Tagged {
            tag: 1,
            ty: Ty::Struct(&LEADER_ID_AND_EPOCH),
        }, // current_leader
        Tagged {
            tag: 2,
            ty: Ty::Struct(&FETCH_SNAPSHOT_ID),
        }, // snapshot_id
    ],
};

static FETCH_RESP_TOPIC: Struct = plain(&[
    between(0, 12, Ty::Name),                 // topic
    since(13, UUID),                          // topic_id
    always(Ty::Array(&FETCH_RESP_PARTITION)), // partitions
]);

static FETCH_RESP_ROOT: Struct = Struct {
    fields: &[
        since(1, I32),                        // throttle_time_ms
        since(7, I16),                        // error_code
        since(7, I32),                        // session_id
        always(Ty::Array(&FETCH_RESP_TOPIC)), // responses
    ],
    tagged: &[Tagged {
        tag: 0,
        ty: Ty::Array(&NODE_ENDPOINT),
    }], // node_endpoints (v16+)
};

/// FetchResponse v4-v12 (flexible from v12).
pub(crate) static FETCH_RESPONSE: Schema = Schema {
    root: &FETCH_RESP_ROOT,
    flexible_from: 12,
};

// ---- ListOffsets (2) ----

static LIST_OFFSETS_REQ_PARTITION: Struct = plain(&[
    always(I32),   // partition_index
    since(4, I32), // current_leader_epoch
    always(I64),   // timestamp
]);

static LIST_OFFSETS_REQ_TOPIC: Struct = plain(&[
    always(Ty::Name),                               // name
    always(Ty::Array(&LIST_OFFSETS_REQ_PARTITION)), // partitions
]);

static LIST_OFFSETS_REQ_ROOT: Struct = plain(&[
    always(I32),                                // replica_id
    since(2, I8),                               // isolation_level
    always(Ty::Array(&LIST_OFFSETS_REQ_TOPIC)), // topics
    since(10, I32),                             // timeout_ms
]);

/// ListOffsetsRequest v1-v10 (flexible from v6).
pub(crate) static LIST_OFFSETS_REQUEST: Schema = Schema {
    root: &LIST_OFFSETS_REQ_ROOT,
    flexible_from: 6,
};

static LIST_OFFSETS_RESP_PARTITION: Struct = plain(&[
    always(I32),   // partition_index
    always(I16),   // error_code
    since(1, I64), // timestamp
    since(1, I64), // offset
    since(4, I32), // leader_epoch
]);

static LIST_OFFSETS_RESP_TOPIC: Struct = plain(&[
    always(Ty::Name),                                // name
    always(Ty::Array(&LIST_OFFSETS_RESP_PARTITION)), // partitions
]);

static LIST_OFFSETS_RESP_ROOT: Struct = plain(&[
    since(2, I32),                               // throttle_time_ms
    always(Ty::Array(&LIST_OFFSETS_RESP_TOPIC)), // topics
]);

/// ListOffsetsResponse v1-v10 (flexible from v6).
pub(crate) static LIST_OFFSETS_RESPONSE: Schema = Schema {
    root: &LIST_OFFSETS_RESP_ROOT,
    flexible_from: 6,
};

// ---- Metadata (3) request; the response is `rewrite::metadata::SCHEMA` ----

static METADATA_REQ_TOPIC: Struct = plain(&[
    since(10, UUID),  // topic_id
    always(Ty::Name), // name (nullable from v10)
]);

static METADATA_REQ_ROOT: Struct = plain(&[
    always(Ty::Array(&METADATA_REQ_TOPIC)), // topics (nullable from v1)
    since(4, BOOL),                         // allow_auto_topic_creation
    between(8, 10, BOOL),                   // include_cluster_authorized_operations
    since(8, BOOL),                         // include_topic_authorized_operations
]);

/// MetadataRequest v0-v13 (flexible from v9).
pub(crate) static METADATA_REQUEST: Schema = Schema {
    root: &METADATA_REQ_ROOT,
    flexible_from: 9,
};

// ---- OffsetCommit (8) ----

static OFFSET_COMMIT_REQ_PARTITION: Struct = plain(&[
    always(I32),     // partition_index
    always(I64),     // committed_offset
    since(6, I32),   // committed_leader_epoch
    always(Ty::Str), // committed_metadata
]);

static OFFSET_COMMIT_REQ_TOPIC: Struct = plain(&[
    always(Ty::Name),                                // name
    always(Ty::Array(&OFFSET_COMMIT_REQ_PARTITION)), // partitions
]);

static OFFSET_COMMIT_REQ_ROOT: Struct = plain(&[
    always(Ty::Str),                             // group_id
    since(1, I32),                               // generation_id_or_member_epoch
    since(1, Ty::Str),                           // member_id
    since(7, Ty::Str),                           // group_instance_id
    between(2, 4, I64),                          // retention_time_ms
    always(Ty::Array(&OFFSET_COMMIT_REQ_TOPIC)), // topics
]);

/// OffsetCommitRequest v2-v9 (flexible from v8).
pub(crate) static OFFSET_COMMIT_REQUEST: Schema = Schema {
    root: &OFFSET_COMMIT_REQ_ROOT,
    flexible_from: 8,
};

static OFFSET_COMMIT_RESP_PARTITION: Struct = plain(&[always(I32), always(I16)]); // partition_index, error_code

static OFFSET_COMMIT_RESP_TOPIC: Struct = plain(&[
    between(0, 9, Ty::Name),                          // name
    since(10, UUID),                                  // topic_id
    always(Ty::Array(&OFFSET_COMMIT_RESP_PARTITION)), // partitions
]);

static OFFSET_COMMIT_RESP_ROOT: Struct = plain(&[
    since(3, I32),                                // throttle_time_ms
    always(Ty::Array(&OFFSET_COMMIT_RESP_TOPIC)), // topics
]);

/// OffsetCommitResponse v2-v9 (flexible from v8).
pub(crate) static OFFSET_COMMIT_RESPONSE: Schema = Schema {
    root: &OFFSET_COMMIT_RESP_ROOT,
    flexible_from: 8,
};

// ---- OffsetFetch (9) ----

/// A topic and partition indexes: OffsetFetchRequestTopic (v0-v7) and OffsetFetchRequestTopics
/// (v8+, whose topic_id no version of kafka-protocol 0.18 encodes).
static OFFSET_FETCH_REQ_TOPIC: Struct = plain(&[
    always(Ty::Name),           // name
    always(Ty::ScalarArray(4)), // partition_indexes
]);

static OFFSET_FETCH_REQ_GROUP: Struct = plain(&[
    always(Ty::Str),                            // group_id
    since(9, Ty::Str),                          // member_id
    since(9, I32),                              // member_epoch
    always(Ty::Array(&OFFSET_FETCH_REQ_TOPIC)), // topics (nullable)
]);

static OFFSET_FETCH_REQ_ROOT: Struct = plain(&[
    between(0, 7, Ty::Str),                            // group_id
    between(0, 7, Ty::Array(&OFFSET_FETCH_REQ_TOPIC)), // topics (nullable from v2)
    since(8, Ty::Array(&OFFSET_FETCH_REQ_GROUP)),      // groups
    since(7, BOOL),                                    // require_stable
]);

/// OffsetFetchRequest v1-v9 (flexible from v6).
pub(crate) static OFFSET_FETCH_REQUEST: Schema = Schema {
    root: &OFFSET_FETCH_REQ_ROOT,
    flexible_from: 6,
};

/// OffsetFetchResponsePartition (v0-v7) and OffsetFetchResponsePartitions (v8+, where
/// committed_leader_epoch is always present).
static OFFSET_FETCH_RESP_PARTITION: Struct = plain(&[
    always(I32),     // partition_index
    always(I64),     // committed_offset
    since(5, I32),   // committed_leader_epoch
    always(Ty::Str), // metadata
    always(I16),     // error_code
]);

static OFFSET_FETCH_RESP_TOPIC: Struct = plain(&[
    between(0, 9, Ty::Name),                         // name
    since(10, UUID),                                 // topic_id (v8+ struct only)
    always(Ty::Array(&OFFSET_FETCH_RESP_PARTITION)), // partitions
]);

static OFFSET_FETCH_RESP_GROUP: Struct = plain(&[
    always(Ty::Str),                             // group_id
    always(Ty::Array(&OFFSET_FETCH_RESP_TOPIC)), // topics
    always(I16),                                 // error_code
]);

static OFFSET_FETCH_RESP_ROOT: Struct = plain(&[
    since(3, I32),                                      // throttle_time_ms
    between(0, 7, Ty::Array(&OFFSET_FETCH_RESP_TOPIC)), // topics
    between(2, 7, I16),                                 // error_code
    since(8, Ty::Array(&OFFSET_FETCH_RESP_GROUP)),      // groups
]);

/// OffsetFetchResponse v1-v9 (flexible from v6).
pub(crate) static OFFSET_FETCH_RESPONSE: Schema = Schema {
    root: &OFFSET_FETCH_RESP_ROOT,
    flexible_from: 6,
};

// ---- CreateTopics (19) ----

static CREATE_TOPICS_ASSIGNMENT: Struct = plain(&[
    always(I32),                // partition_index
    always(Ty::ScalarArray(4)), // broker_ids
]);

static CREATE_TOPICS_REQ_CONFIG: Struct = plain(&[always(Ty::Str), always(Ty::Str)]); // name, value

static CREATE_TOPICS_REQ_TOPIC: Struct = plain(&[
    always(Ty::Name),                             // name
    always(I32),                                  // num_partitions
    always(I16),                                  // replication_factor
    always(Ty::Array(&CREATE_TOPICS_ASSIGNMENT)), // assignments
    always(Ty::Array(&CREATE_TOPICS_REQ_CONFIG)), // configs
]);

static CREATE_TOPICS_REQ_ROOT: Struct = plain(&[
    always(Ty::Array(&CREATE_TOPICS_REQ_TOPIC)), // topics
    always(I32),                                 // timeout_ms
    since(1, BOOL),                              // validate_only
]);

/// CreateTopicsRequest v2-v7 (flexible from v5).
pub(crate) static CREATE_TOPICS_REQUEST: Schema = Schema {
    root: &CREATE_TOPICS_REQ_ROOT,
    flexible_from: 5,
};

static CREATE_TOPICS_RESP_CONFIG: Struct = plain(&[
    always(Ty::Str), // name
    always(Ty::Str), // value
    always(BOOL),    // read_only
    always(I8),      // config_source
    always(BOOL),    // is_sensitive
]);

static CREATE_TOPICS_RESP_TOPIC: Struct = Struct {
    fields: &[
        always(Ty::Name),                                // name
        since(7, UUID),                                  // topic_id
        always(I16),                                     // error_code
        since(1, Ty::Str),                               // error_message
        since(5, I32),                                   // num_partitions
        since(5, I16),                                   // replication_factor
        since(5, Ty::Array(&CREATE_TOPICS_RESP_CONFIG)), // configs (nullable)
    ],
    tagged: &[Tagged { tag: 0, ty: I16 }], // topic_config_error_code (v5+)
};

static CREATE_TOPICS_RESP_ROOT: Struct = plain(&[
    since(2, I32),                                // throttle_time_ms
    always(Ty::Array(&CREATE_TOPICS_RESP_TOPIC)), // topics
]);

/// CreateTopicsResponse v2-v7 (flexible from v5).
pub(crate) static CREATE_TOPICS_RESPONSE: Schema = Schema {
    root: &CREATE_TOPICS_RESP_ROOT,
    flexible_from: 5,
};

// ---- DeleteTopics (20) ----

static DELETE_TOPICS_STATE: Struct = plain(&[always(Ty::Name), always(UUID)]); // name (nullable), topic_id

static DELETE_TOPICS_REQ_ROOT: Struct = plain(&[
    since(6, Ty::Array(&DELETE_TOPICS_STATE)), // topics
    between(0, 5, Ty::NameArray),              // topic_names
    always(I32),                               // timeout_ms
]);

/// DeleteTopicsRequest v1-v6 (flexible from v4).
pub(crate) static DELETE_TOPICS_REQUEST: Schema = Schema {
    root: &DELETE_TOPICS_REQ_ROOT,
    flexible_from: 4,
};

static DELETE_TOPICS_RESULT: Struct = plain(&[
    always(Ty::Name),  // name (nullable from v6)
    since(6, UUID),    // topic_id
    always(I16),       // error_code
    since(5, Ty::Str), // error_message
]);

static DELETE_TOPICS_RESP_ROOT: Struct = plain(&[
    since(1, I32),                            // throttle_time_ms
    always(Ty::Array(&DELETE_TOPICS_RESULT)), // responses
]);

/// DeleteTopicsResponse v1-v6 (flexible from v4).
pub(crate) static DELETE_TOPICS_RESPONSE: Schema = Schema {
    root: &DELETE_TOPICS_RESP_ROOT,
    flexible_from: 4,
};

// ---- OffsetForLeaderEpoch (23) ----

static OFFSET_FOR_LEADER_REQ_PARTITION: Struct = plain(&[
    always(I32),   // partition
    since(2, I32), // current_leader_epoch
    always(I32),   // leader_epoch
]);

static OFFSET_FOR_LEADER_REQ_TOPIC: Struct = plain(&[
    always(Ty::Name),                                    // topic
    always(Ty::Array(&OFFSET_FOR_LEADER_REQ_PARTITION)), // partitions
]);

static OFFSET_FOR_LEADER_REQ_ROOT: Struct = plain(&[
    since(3, I32),                                   // replica_id
    always(Ty::Array(&OFFSET_FOR_LEADER_REQ_TOPIC)), // topics
]);

/// OffsetForLeaderEpochRequest v2-v4 (flexible from v4).
pub(crate) static OFFSET_FOR_LEADER_EPOCH_REQUEST: Schema = Schema {
    root: &OFFSET_FOR_LEADER_REQ_ROOT,
    flexible_from: 4,
};

static OFFSET_FOR_LEADER_RESP_PARTITION: Struct = plain(&[
    always(I16),   // error_code
    always(I32),   // partition
    since(1, I32), // leader_epoch
    always(I64),   // end_offset
]);

static OFFSET_FOR_LEADER_RESP_TOPIC: Struct = plain(&[
    always(Ty::Name),                                     // topic
    always(Ty::Array(&OFFSET_FOR_LEADER_RESP_PARTITION)), // partitions
]);

static OFFSET_FOR_LEADER_RESP_ROOT: Struct = plain(&[
    since(2, I32),                                    // throttle_time_ms
    always(Ty::Array(&OFFSET_FOR_LEADER_RESP_TOPIC)), // topics
]);

/// OffsetForLeaderEpochResponse v2-v4 (flexible from v4).
pub(crate) static OFFSET_FOR_LEADER_EPOCH_RESPONSE: Schema = Schema {
    root: &OFFSET_FOR_LEADER_RESP_ROOT,
    flexible_from: 4,
};

// ---- DescribeConfigs (32) ----

static DESCRIBE_CONFIGS_RESOURCE: Struct = plain(&[
    always(I8),           // resource_type
    always(Ty::Name),     // resource_name
    always(Ty::StrArray), // configuration_keys (nullable)
]);

static DESCRIBE_CONFIGS_REQ_ROOT: Struct = plain(&[
    always(Ty::Array(&DESCRIBE_CONFIGS_RESOURCE)), // resources
    since(1, BOOL),                                // include_synonyms
    since(3, BOOL),                                // include_documentation
]);

/// DescribeConfigsRequest v1-v4 (flexible from v4).
pub(crate) static DESCRIBE_CONFIGS_REQUEST: Schema = Schema {
    root: &DESCRIBE_CONFIGS_REQ_ROOT,
    flexible_from: 4,
};

static DESCRIBE_CONFIGS_SYNONYM: Struct = plain(&[
    always(Ty::Str), // name
    always(Ty::Str), // value
    always(I8),      // source
]);

static DESCRIBE_CONFIGS_ENTRY: Struct = plain(&[
    always(Ty::Str),                                // name
    always(Ty::Str),                                // value
    always(BOOL),                                   // read_only
    between(0, 0, BOOL),                            // is_default
    since(1, I8),                                   // config_source
    always(BOOL),                                   // is_sensitive
    since(1, Ty::Array(&DESCRIBE_CONFIGS_SYNONYM)), // synonyms
    since(3, I8),                                   // config_type
    since(3, Ty::Str),                              // documentation
]);

static DESCRIBE_CONFIGS_RESULT: Struct = plain(&[
    always(I16),                                // error_code
    always(Ty::Str),                            // error_message
    always(I8),                                 // resource_type
    always(Ty::Name),                           // resource_name
    always(Ty::Array(&DESCRIBE_CONFIGS_ENTRY)), // configs
]);

static DESCRIBE_CONFIGS_RESP_ROOT: Struct = plain(&[
    always(I32),                                 // throttle_time_ms
    always(Ty::Array(&DESCRIBE_CONFIGS_RESULT)), // results
]);

/// DescribeConfigsResponse v1-v4 (flexible from v4).
pub(crate) static DESCRIBE_CONFIGS_RESPONSE: Schema = Schema {
    root: &DESCRIBE_CONFIGS_RESP_ROOT,
    flexible_from: 4,
};

// ---- DescribeTopicPartitions (75) ----

static DTP_CURSOR: Struct = plain(&[always(Ty::Name), always(I32)]); // topic_name, partition_index

static DTP_REQ_TOPIC: Struct = plain(&[always(Ty::Name)]); // name

static DTP_REQ_ROOT: Struct = plain(&[
    always(Ty::Array(&DTP_REQ_TOPIC)),  // topics
    always(I32),                        // response_partition_limit
    always(Ty::OptStruct(&DTP_CURSOR)), // cursor
]);

/// DescribeTopicPartitionsRequest v0 (flexible from v0).
pub(crate) static DESCRIBE_TOPIC_PARTITIONS_REQUEST: Schema = Schema {
    root: &DTP_REQ_ROOT,
    flexible_from: 0,
};

static DTP_RESP_PARTITION: Struct = plain(&[
    always(I16),                // error_code
    always(I32),                // partition_index
    always(I32),                // leader_id
    always(I32),                // leader_epoch
    always(Ty::ScalarArray(4)), // replica_nodes
    always(Ty::ScalarArray(4)), // isr_nodes
    always(Ty::ScalarArray(4)), // eligible_leader_replicas (nullable)
    always(Ty::ScalarArray(4)), // last_known_elr (nullable)
    always(Ty::ScalarArray(4)), // offline_replicas
]);

static DTP_RESP_TOPIC: Struct = plain(&[
    always(I16),                            // error_code
    always(Ty::Name),                       // name (nullable)
    always(UUID),                           // topic_id
    always(BOOL),                           // is_internal
    always(Ty::Array(&DTP_RESP_PARTITION)), // partitions
    always(I32),                            // topic_authorized_operations
]);

static DTP_RESP_ROOT: Struct = plain(&[
    always(I32),                        // throttle_time_ms
    always(Ty::Array(&DTP_RESP_TOPIC)), // topics
    always(Ty::OptStruct(&DTP_CURSOR)), // next_cursor
]);

/// DescribeTopicPartitionsResponse v0 (flexible from v0).
pub(crate) static DESCRIBE_TOPIC_PARTITIONS_RESPONSE: Schema = Schema {
    root: &DTP_RESP_ROOT,
    flexible_from: 0,
};

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::protocol::wire::{walk_body, Cursor};
    use bytes::{Bytes, BytesMut};
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
    use std::ops::RangeInclusive;

    fn versions(api_key: i16) -> RangeInclusive<i16> {
        let (_, lo, hi) = VERSIONS.iter().find(|(k, _, _)| *k == api_key).unwrap();
        *lo..=*hi
    }

    /// Encodes `m` at `v`; the walk must consume exactly all bytes and fail on every strict prefix,
    /// and kafka-protocol must decode exactly those bytes too.
    fn check<M: Encodable + Decodable>(schema: &Schema, what: &str, v: i16, m: &M) {
        let mut buf = BytesMut::new();
        m.encode(&mut buf, v)
            .unwrap_or_else(|e| panic!("{what} v{v}: encode: {e}"));
        let wire = buf.freeze();
        let mut c = Cursor::new(&wire);
        walk_body(&mut c, schema, v).unwrap_or_else(|e| panic!("{what} v{v}: walk: {e}"));
        assert_eq!(c.pos(), wire.len(), "{what} v{v}: walk stopped early");
        let mut rest = wire.clone();
        M::decode(&mut rest, v).unwrap_or_else(|e| panic!("{what} v{v}: decode: {e}"));
        assert!(
            rest.is_empty(),
            "{what} v{v}: decoder left {} bytes",
            rest.len()
        );
        for n in 0..wire.len() {
            let r = walk_body(&mut Cursor::new(&wire[..n]), schema, v);
            assert!(
                r.is_err(),
                "{what} v{v}: prefix of {n}/{} bytes accepted",
                wire.len()
            );
        }
    }

    fn when<T>(x: T, ok: bool, f: impl FnOnce(T) -> T) -> T {
        if ok {
            f(x)
        } else {
            x
        }
    }

    fn s(x: &'static str) -> StrBytes {
        StrBytes::from_static_str(x)
    }

    fn topic() -> TopicName {
        TopicName(s("orders"))
    }

    /// A non-nil UUID (the `uuid` crate is not a direct dependency, so its type is not named):
    /// the topic_id of a DeleteTopicState v6 decoded from a null name and 16 bytes of 7.
    macro_rules! uuid {
        () => {{
            let mut wire = vec![0u8];
            wire.extend_from_slice(&[7; 16]);
            wire.push(0);
            delete_topics_request::DeleteTopicState::decode(&mut Bytes::from(wire), 6)
                .unwrap()
                .topic_id
        }};
    }

    fn unknown() -> Bytes {
        Bytes::from_static(b"xyz")
    }

    const UNKNOWN_TAG: i32 = 99;

    #[test]
    fn produce_request_all_versions() {
        use produce_request::*;
        for v in versions(0) {
            let p = PartitionProduceData::default()
                .with_index(3)
                .with_records(Some(Bytes::from_static(b"record batch")));
            let t = TopicProduceData::default()
                .with_name(topic())
                .with_topic_id(uuid!())
                .with_partition_data(vec![p.clone(), p]);
            let m = ProduceRequest::default()
                .with_transactional_id(Some(TransactionalId(s("tx"))))
                .with_acks(-1)
                .with_timeout_ms(1000)
                .with_topic_data(vec![t])
                .with_unknown_tagged_field(UNKNOWN_TAG, unknown());
            check(request(0).unwrap(), "ProduceRequest", v, &m);
        }
    }

    #[test]
    fn produce_response_all_versions() {
        use produce_response::*;
        for v in versions(0) {
            let err = BatchIndexAndErrorMessage::default()
                .with_batch_index(2)
                .with_batch_index_error_message(Some(s("bad")));
            let leader = LeaderIdAndEpoch::default()
                .with_leader_id(BrokerId(2))
                .with_leader_epoch(7);
            let p = PartitionProduceResponse::default()
                .with_index(1)
                .with_error_code(6)
                .with_base_offset(100)
                .with_log_append_time_ms(5)
                .with_log_start_offset(3)
                .with_error_message(Some(s("not leader")));
            let p = when(p, v >= 8, |p| p.with_record_errors(vec![err]));
            let p = when(p, v >= 10, |p| p.with_current_leader(leader));
            let t = TopicProduceResponse::default()
                .with_name(topic())
                .with_partition_responses(vec![p]);
            let m = ProduceResponse::default()
                .with_responses(vec![t])
                .with_throttle_time_ms(9)
                .with_unknown_tagged_field(UNKNOWN_TAG, unknown());
            let m = when(m, v >= 10, |m| {
                m.with_node_endpoints(vec![NodeEndpoint::default()
                    .with_node_id(BrokerId(2))
                    .with_host(s("broker-2"))
                    .with_port(9092)
                    .with_rack(Some(s("rack")))])
            });
            check(response(0).unwrap(), "ProduceResponse", v, &m);
        }
    }

    #[test]
    fn fetch_request_all_versions() {
        use fetch_request::*;
        for v in versions(1) {
            let p = FetchPartition::default()
                .with_partition(4)
                .with_current_leader_epoch(2)
                .with_fetch_offset(50)
                .with_log_start_offset(1)
                .with_partition_max_bytes(1 << 20);
            let p = when(p, v >= 12, |p| p.with_last_fetched_epoch(2));
            let t = FetchTopic::default()
                .with_topic(topic())
                .with_partitions(vec![p]);
            let forgotten = ForgottenTopic::default()
                .with_topic(topic())
                .with_partitions(vec![1, 2]);
            let m = FetchRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_max_wait_ms(500)
                .with_min_bytes(1)
                .with_max_bytes(1 << 24)
                .with_isolation_level(1)
                .with_session_id(0)
                .with_session_epoch(-1)
                .with_topics(vec![t])
                .with_rack_id(s("rack"))
                .with_cluster_id(Some(s("cluster")))
                .with_unknown_tagged_field(UNKNOWN_TAG, unknown());
            let m = when(m, v >= 7, |m| {
                m.with_session_id(12)
                    .with_forgotten_topics_data(vec![forgotten])
            });
            check(request(1).unwrap(), "FetchRequest", v, &m);
        }
    }

    #[test]
    fn fetch_response_all_versions() {
        use fetch_response::*;
        for v in versions(1) {
            let aborted = AbortedTransaction::default()
                .with_producer_id(ProducerId(8))
                .with_first_offset(40);
            let p = PartitionData::default()
                .with_partition_index(4)
                .with_error_code(0)
                .with_high_watermark(60)
                .with_last_stable_offset(55)
                .with_log_start_offset(1)
                .with_aborted_transactions(Some(vec![aborted]))
                .with_records(Some(Bytes::from_static(b"record batch")));
            let p = when(p, v >= 11, |p| p.with_preferred_read_replica(BrokerId(3)));
            let p = when(p, v >= 12, |p| {
                p.with_diverging_epoch(EpochEndOffset::default().with_epoch(3).with_end_offset(30))
                    .with_current_leader(
                        LeaderIdAndEpoch::default()
                            .with_leader_id(BrokerId(2))
                            .with_leader_epoch(4),
                    )
                    .with_snapshot_id(SnapshotId::default().with_end_offset(20).with_epoch(2))
            });
            let t = FetchableTopicResponse::default()
                .with_topic(topic())
                .with_partitions(vec![p]);
            let m = FetchResponse::default()
                .with_throttle_time_ms(9)
                .with_responses(vec![t])
                .with_unknown_tagged_field(UNKNOWN_TAG, unknown());
            let m = when(m, v >= 7, |m| m.with_error_code(0).with_session_id(12));
            check(response(1).unwrap(), "FetchResponse", v, &m);
        }
    }

    #[test]
    fn list_offsets_all_versions() {
        for v in versions(2) {
            use list_offsets_request::*;
            let p = ListOffsetsPartition::default()
                .with_partition_index(1)
                .with_current_leader_epoch(4)
                .with_timestamp(-1);
            let t = ListOffsetsTopic::default()
                .with_name(topic())
                .with_partitions(vec![p]);
            let m = ListOffsetsRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_topics(vec![t])
                .with_timeout_ms(1000)
                .with_unknown_tagged_field(UNKNOWN_TAG, unknown());
            let m = when(m, v >= 2, |m| m.with_isolation_level(1));
            check(request(2).unwrap(), "ListOffsetsRequest", v, &m);

            use list_offsets_response::*;
            let p = ListOffsetsPartitionResponse::default()
                .with_partition_index(1)
                .with_error_code(0)
                .with_timestamp(5)
                .with_offset(77);
            let p = when(p, v >= 4, |p| p.with_leader_epoch(4));
            let t = ListOffsetsTopicResponse::default()
                .with_name(topic())
                .with_partitions(vec![p]);
            let m = ListOffsetsResponse::default()
                .with_throttle_time_ms(9)
                .with_topics(vec![t])
                .with_unknown_tagged_field(UNKNOWN_TAG, unknown());
            check(response(2).unwrap(), "ListOffsetsResponse", v, &m);
        }
    }

    #[test]
    fn metadata_request_all_versions() {
        use metadata_request::*;
        for v in versions(3) {
            let t = MetadataRequestTopic::default()
                .with_topic_id(uuid!())
                .with_name(Some(topic()));
            let m = MetadataRequest::default()
                .with_topics(Some(vec![t]))
                .with_unknown_tagged_field(UNKNOWN_TAG, unknown());
            let m = when(m, (8..=10).contains(&v), |m| {
                m.with_include_cluster_authorized_operations(true)
            });
            let m = when(m, v >= 8, |m| {
                m.with_include_topic_authorized_operations(true)
            });
            check(request(3).unwrap(), "MetadataRequest", v, &m);
        }
    }

    #[test]
    fn metadata_response_all_versions() {
        use metadata_response::*;
        for v in versions(3) {
            let p = MetadataResponsePartition::default()
                .with_partition_index(3)
                .with_leader_id(BrokerId(1))
                .with_leader_epoch(5)
                .with_replica_nodes(vec![BrokerId(1), BrokerId(2)])
                .with_isr_nodes(vec![BrokerId(1)])
                .with_offline_replicas(vec![BrokerId(2)]);
            let t = MetadataResponseTopic::default()
                .with_name(Some(topic()))
                .with_topic_id(uuid!())
                .with_is_internal(true)
                .with_partitions(vec![p]);
            let t = when(t, v >= 8, |t| t.with_topic_authorized_operations(42));
            let b = MetadataResponseBroker::default()
                .with_node_id(BrokerId(1))
                .with_host(s("broker-1"))
                .with_port(9092)
                .with_rack(Some(s("rack")));
            let m = MetadataResponse::default()
                .with_throttle_time_ms(9)
                .with_brokers(vec![b])
                .with_cluster_id(Some(s("cluster")))
                .with_controller_id(BrokerId(1))
                .with_topics(vec![t])
                .with_error_code(0)
                .with_unknown_tagged_field(UNKNOWN_TAG, unknown());
            let m = when(m, (8..=10).contains(&v), |m| {
                m.with_cluster_authorized_operations(7)
            });
            check(response(3).unwrap(), "MetadataResponse", v, &m);
        }
    }

    #[test]
    fn offset_commit_all_versions() {
        for v in versions(8) {
            use offset_commit_request::*;
            let p = OffsetCommitRequestPartition::default()
                .with_partition_index(1)
                .with_committed_offset(10)
                .with_committed_leader_epoch(3)
                .with_committed_metadata(Some(s("meta")));
            let t = OffsetCommitRequestTopic::default()
                .with_name(topic())
                .with_partitions(vec![p]);
            let m = OffsetCommitRequest::default()
                .with_group_id(GroupId(s("group")))
                .with_generation_id_or_member_epoch(5)
                .with_member_id(s("member"))
                .with_retention_time_ms(60_000)
                .with_topics(vec![t])
                .with_unknown_tagged_field(UNKNOWN_TAG, unknown());
            let m = when(m, v >= 7, |m| m.with_group_instance_id(Some(s("instance"))));
            check(request(8).unwrap(), "OffsetCommitRequest", v, &m);

            use offset_commit_response::*;
            let p = OffsetCommitResponsePartition::default()
                .with_partition_index(1)
                .with_error_code(0);
            let t = OffsetCommitResponseTopic::default()
                .with_name(topic())
                .with_partitions(vec![p]);
            let m = OffsetCommitResponse::default()
                .with_throttle_time_ms(9)
                .with_topics(vec![t])
                .with_unknown_tagged_field(UNKNOWN_TAG, unknown());
            check(response(8).unwrap(), "OffsetCommitResponse", v, &m);
        }
    }

    #[test]
    fn offset_fetch_request_all_versions() {
        use offset_fetch_request::*;
        for v in versions(9) {
            let m = OffsetFetchRequest::default().with_unknown_tagged_field(UNKNOWN_TAG, unknown());
            let m = if v <= 7 {
                m.with_group_id(GroupId(s("group"))).with_topics(Some(vec![
                    OffsetFetchRequestTopic::default()
                        .with_name(topic())
                        .with_partition_indexes(vec![0, 1]),
                ]))
            } else {
                let t = OffsetFetchRequestTopics::default()
                    .with_name(topic())
                    .with_partition_indexes(vec![0, 1]);
                let g = OffsetFetchRequestGroup::default()
                    .with_group_id(GroupId(s("group")))
                    .with_member_id(Some(s("member")))
                    .with_member_epoch(4)
                    .with_topics(Some(vec![t]));
                m.with_groups(vec![g])
            };
            let m = when(m, v >= 7, |m| m.with_require_stable(true));
            check(request(9).unwrap(), "OffsetFetchRequest", v, &m);
        }
    }

    #[test]
    fn offset_fetch_response_all_versions() {
        use offset_fetch_response::*;
        for v in versions(9) {
            let m = OffsetFetchResponse::default()
                .with_throttle_time_ms(9)
                .with_unknown_tagged_field(UNKNOWN_TAG, unknown());
            let m = if v <= 7 {
                let p = OffsetFetchResponsePartition::default()
                    .with_partition_index(1)
                    .with_committed_offset(10)
                    .with_committed_leader_epoch(3)
                    .with_metadata(Some(s("meta")))
                    .with_error_code(0);
                let t = OffsetFetchResponseTopic::default()
                    .with_name(topic())
                    .with_partitions(vec![p]);
                m.with_topics(vec![t]).with_error_code(0)
            } else {
                let p = OffsetFetchResponsePartitions::default()
                    .with_partition_index(1)
                    .with_committed_offset(10)
                    .with_committed_leader_epoch(3)
                    .with_metadata(Some(s("meta")))
                    .with_error_code(0);
                let t = OffsetFetchResponseTopics::default()
                    .with_name(topic())
                    .with_partitions(vec![p]);
                let g = OffsetFetchResponseGroup::default()
                    .with_group_id(GroupId(s("group")))
                    .with_topics(vec![t])
                    .with_error_code(0);
                m.with_groups(vec![g])
            };
            check(response(9).unwrap(), "OffsetFetchResponse", v, &m);
        }
    }

    #[test]
    fn create_topics_all_versions() {
        for v in versions(19) {
            use create_topics_request::*;
            let a = CreatableReplicaAssignment::default()
                .with_partition_index(0)
                .with_broker_ids(vec![BrokerId(1), BrokerId(2)]);
            let c = CreatableTopicConfig::default()
                .with_name(s("cleanup.policy"))
                .with_value(Some(s("compact")));
            let t = CreatableTopic::default()
                .with_name(topic())
                .with_num_partitions(-1)
                .with_replication_factor(-1)
                .with_assignments(vec![a])
                .with_configs(vec![c]);
            let m = CreateTopicsRequest::default()
                .with_topics(vec![t])
                .with_timeout_ms(1000)
                .with_validate_only(true)
                .with_unknown_tagged_field(UNKNOWN_TAG, unknown());
            check(request(19).unwrap(), "CreateTopicsRequest", v, &m);

            use create_topics_response::*;
            let t = CreatableTopicResult::default()
                .with_name(topic())
                .with_topic_id(uuid!())
                .with_error_code(0)
                .with_error_message(Some(s("ok")));
            let t = when(t, v >= 5, |t| {
                t.with_topic_config_error_code(29)
                    .with_num_partitions(3)
                    .with_replication_factor(2)
                    .with_configs(Some(vec![CreatableTopicConfigs::default()
                        .with_name(s("cleanup.policy"))
                        .with_value(Some(s("compact")))
                        .with_read_only(true)
                        .with_config_source(5)
                        .with_is_sensitive(true)]))
            });
            let m = CreateTopicsResponse::default()
                .with_throttle_time_ms(9)
                .with_topics(vec![t])
                .with_unknown_tagged_field(UNKNOWN_TAG, unknown());
            check(response(19).unwrap(), "CreateTopicsResponse", v, &m);
        }
    }

    #[test]
    fn delete_topics_all_versions() {
        for v in versions(20) {
            use delete_topics_request::*;
            let m = DeleteTopicsRequest::default()
                .with_timeout_ms(1000)
                .with_unknown_tagged_field(UNKNOWN_TAG, unknown());
            let m = if v >= 6 {
                m.with_topics(vec![DeleteTopicState::default()
                    .with_name(Some(topic()))
                    .with_topic_id(uuid!())])
            } else {
                m.with_topic_names(vec![topic(), TopicName(s("payments"))])
            };
            check(request(20).unwrap(), "DeleteTopicsRequest", v, &m);

            use delete_topics_response::*;
            let r = DeletableTopicResult::default()
                .with_name(Some(topic()))
                .with_topic_id(uuid!())
                .with_error_code(0)
                .with_error_message(Some(s("ok")));
            let m = DeleteTopicsResponse::default()
                .with_throttle_time_ms(9)
                .with_responses(vec![r])
                .with_unknown_tagged_field(UNKNOWN_TAG, unknown());
            check(response(20).unwrap(), "DeleteTopicsResponse", v, &m);
        }
    }

    #[test]
    fn offset_for_leader_epoch_all_versions() {
        for v in versions(23) {
            use offset_for_leader_epoch_request::*;
            let p = OffsetForLeaderPartition::default()
                .with_partition(1)
                .with_current_leader_epoch(3)
                .with_leader_epoch(2);
            let t = OffsetForLeaderTopic::default()
                .with_topic(topic())
                .with_partitions(vec![p]);
            let m = OffsetForLeaderEpochRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_topics(vec![t])
                .with_unknown_tagged_field(UNKNOWN_TAG, unknown());
            check(request(23).unwrap(), "OffsetForLeaderEpochRequest", v, &m);

            use offset_for_leader_epoch_response::*;
            let p = EpochEndOffset::default()
                .with_error_code(0)
                .with_partition(1)
                .with_leader_epoch(2)
                .with_end_offset(40);
            let t = OffsetForLeaderTopicResult::default()
                .with_topic(topic())
                .with_partitions(vec![p]);
            let m = OffsetForLeaderEpochResponse::default()
                .with_throttle_time_ms(9)
                .with_topics(vec![t])
                .with_unknown_tagged_field(UNKNOWN_TAG, unknown());
            check(response(23).unwrap(), "OffsetForLeaderEpochResponse", v, &m);
        }
    }

    #[test]
    fn describe_configs_all_versions() {
        for v in versions(32) {
            use describe_configs_request::*;
            let r = DescribeConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(s("orders"))
                .with_configuration_keys(Some(vec![s("retention.ms"), s("cleanup.policy")]));
            let m = DescribeConfigsRequest::default()
                .with_resources(vec![r])
                .with_include_synonyms(true)
                .with_unknown_tagged_field(UNKNOWN_TAG, unknown());
            let m = when(m, v >= 3, |m| m.with_include_documentation(true));
            check(request(32).unwrap(), "DescribeConfigsRequest", v, &m);

            use describe_configs_response::*;
            let syn = DescribeConfigsSynonym::default()
                .with_name(s("log.retention.ms"))
                .with_value(Some(s("1000")))
                .with_source(5);
            let c = DescribeConfigsResourceResult::default()
                .with_name(s("retention.ms"))
                .with_value(Some(s("1000")))
                .with_read_only(true)
                .with_config_source(1)
                .with_is_sensitive(true)
                .with_synonyms(vec![syn])
                .with_config_type(5)
                .with_documentation(Some(s("doc")));
            let r = DescribeConfigsResult::default()
                .with_error_code(0)
                .with_error_message(Some(s("ok")))
                .with_resource_type(2)
                .with_resource_name(s("orders"))
                .with_configs(vec![c]);
            let m = DescribeConfigsResponse::default()
                .with_throttle_time_ms(9)
                .with_results(vec![r])
                .with_unknown_tagged_field(UNKNOWN_TAG, unknown());
            check(response(32).unwrap(), "DescribeConfigsResponse", v, &m);
        }
    }

    #[test]
    fn describe_topic_partitions_all_versions() {
        for v in versions(75) {
            use describe_topic_partitions_request as req;
            let cursor = req::Cursor::default()
                .with_topic_name(topic())
                .with_partition_index(2);
            let m = DescribeTopicPartitionsRequest::default()
                .with_topics(vec![req::TopicRequest::default().with_name(topic())])
                .with_response_partition_limit(100)
                .with_cursor(Some(cursor))
                .with_unknown_tagged_field(UNKNOWN_TAG, unknown());
            check(
                request(75).unwrap(),
                "DescribeTopicPartitionsRequest",
                v,
                &m,
            );
            // null cursor: marker only
            let m = m.with_cursor(None);
            check(
                request(75).unwrap(),
                "DescribeTopicPartitionsRequest",
                v,
                &m,
            );

            use describe_topic_partitions_response as resp;
            let p = resp::DescribeTopicPartitionsResponsePartition::default()
                .with_partition_index(1)
                .with_leader_id(BrokerId(1))
                .with_leader_epoch(3)
                .with_replica_nodes(vec![BrokerId(1), BrokerId(2)])
                .with_isr_nodes(vec![BrokerId(1)])
                .with_eligible_leader_replicas(Some(vec![BrokerId(2)]))
                .with_last_known_elr(Some(vec![BrokerId(2)]))
                .with_offline_replicas(vec![BrokerId(3)]);
            let t = resp::DescribeTopicPartitionsResponseTopic::default()
                .with_name(Some(topic()))
                .with_topic_id(uuid!())
                .with_is_internal(true)
                .with_partitions(vec![p])
                .with_topic_authorized_operations(42);
            let cursor = resp::Cursor::default()
                .with_topic_name(topic())
                .with_partition_index(2);
            let m = DescribeTopicPartitionsResponse::default()
                .with_throttle_time_ms(9)
                .with_topics(vec![t])
                .with_next_cursor(Some(cursor))
                .with_unknown_tagged_field(UNKNOWN_TAG, unknown());
            check(
                response(75).unwrap(),
                "DescribeTopicPartitionsResponse",
                v,
                &m,
            );
        }
    }

    /// Per api key and direction: the oldest version and the size of the fixed-width fields before
    /// the first top-level array (all zero bytes are valid for them: empty strings, zero numbers).
    const HOSTILE: &[(i16, bool, i16, usize)] = &[
        (0, true, 3, 8),   // transactional_id, acks, timeout_ms
        (0, false, 3, 0),  // responses
        (1, true, 4, 17),  // replica_id .. isolation_level
        (1, false, 4, 4),  // throttle_time_ms
        (2, true, 1, 4),   // replica_id
        (2, false, 1, 0),  // topics
        (3, true, 0, 0),   // topics
        (8, true, 2, 18),  // group_id, generation, member_id, retention_time_ms
        (8, false, 2, 0),  // topics
        (9, true, 1, 2),   // group_id
        (9, false, 1, 0),  // topics
        (19, true, 2, 0),  // topics
        (19, false, 2, 4), // throttle_time_ms
        (20, true, 1, 0),  // topic_names (array of strings)
        (20, false, 1, 4), // throttle_time_ms
        (23, true, 2, 0),  // topics
        (23, false, 2, 4), // throttle_time_ms
        (32, true, 1, 0),  // resources
        (32, false, 1, 4), // throttle_time_ms
        (75, true, 0, 0),  // topics (flexible)
        (75, false, 0, 4), // throttle_time_ms (flexible)
    ];

    #[test]
    fn hostile_top_level_counts_fail() {
        for &(key, is_request, v, prefix) in HOSTILE {
            let schema = if is_request {
                request(key)
            } else {
                response(key)
            }
            .unwrap();
            let mut wire = vec![0u8; prefix];
            if v >= schema.flexible_from {
                wire.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x07]); // uvarint 2^31 - 1
            } else {
                wire.extend_from_slice(&i32::MAX.to_be_bytes());
            }
            wire.extend_from_slice(&[0; 32]);
            let r = walk_body(&mut Cursor::new(&wire), schema, v);
            assert!(r.is_err(), "api key {key} request {is_request} v{v}: {r:?}");
        }
    }

    #[test]
    fn every_versioned_key_has_both_schemas() {
        for &(key, lo, hi) in VERSIONS {
            assert!(lo <= hi);
            assert!(request(key).is_some() && response(key).is_some(), "{key}");
        }
        assert!(request(4).is_none() && response(4).is_none());
    }
}

//! CreateTopics requests for policies (api key 19, v2-v7, KIP-4): the topics a request asks for,
//! decoded with kafka-protocol (admin traffic, rare), and the error response that rejects them.
//! Sans-io.

use bytes::Bytes;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::{ApiKey, CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::protocol::StrBytes;

use super::wire::decode_walked;

/// One topic a CreateTopics request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    pub name: String,
    /// -1: the broker's default.
    pub num_partitions: i32,
    /// -1: the broker's default.
    pub replication_factor: i16,
    /// Topic configs as given (`retention.ms` = `"86400000"`); `None` values are kept as `None`.
    pub configs: Vec<(String, Option<String>)>,
}

/// The topics of a CreateTopics request body (`payload[body..]`, version `version`).
///
/// # Errors
/// kafka-protocol's decode error, as text.
pub fn topics(payload: &[u8], body: usize, version: i16) -> Result<Vec<TopicSpec>, String> {
    let schema = super::topics::schema::request(19).ok_or("no CreateTopics schema")?;
    let req: CreateTopicsRequest = decode_walked(payload, body, version, schema)?;
    Ok(req
        .topics
        .iter()
        .map(|t| TopicSpec {
            name: t.name.0.to_string(),
            num_partitions: t.num_partitions,
            replication_factor: t.replication_factor,
            configs: t
                .configs
                .iter()
                .map(|c| (c.name.to_string(), c.value.as_ref().map(|v| v.to_string())))
                .collect(),
        })
        .collect())
}

/// A CreateTopics response payload (no size prefix) answering every topic of the request with
/// `error_code` and its message (`errors[i]` for topic `i`), in the request's version.
///
/// # Errors
/// When the response cannot be encoded.
pub fn error_response(
    specs: &[TopicSpec],
    version: i16,
    correlation_id: i32,
    error_code: i16,
    messages: &[String],
    bound: &super::answer::AnswerBound,
) -> Result<Bytes, String> {
    let topics = specs
        .iter()
        .zip(messages)
        .map(|(t, m)| {
            CreatableTopicResult::default()
                .with_name(kafka_protocol::messages::TopicName(StrBytes::from_string(
                    t.name.clone(),
                )))
                .with_error_code(error_code)
                .with_error_message(bound.message(m))
                .with_num_partitions(-1)
                .with_replication_factor(-1)
                .with_configs(None)
        })
        .collect();
    let resp = CreateTopicsResponse::default().with_topics(topics);
    super::produce::local_response(ApiKey::CreateTopics, version, correlation_id, &resp, bound)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
    use kafka_protocol::messages::{RequestHeader, ResponseHeader, TopicName};
    use kafka_protocol::protocol::Decodable;
    use kafka_protocol::protocol::{Encodable, Message};

    #[test]
    fn a_hostile_topic_count_is_an_error_before_any_allocation() {
        // topics: int32 count 2^31-1 (v2) / compact count 2^28 (v5), then nothing
        assert!(topics(&[0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0], 0, 2).is_err());
        assert!(topics(&[0x80, 0x80, 0x80, 0x80, 0x01, 0, 0, 0, 0, 0], 0, 5).is_err());
    }

    #[test]
    fn reads_topics_and_answers_every_version() {
        for v in CreateTopicsRequest::VERSIONS.min..=CreateTopicsRequest::VERSIONS.max {
            let req = CreateTopicsRequest::default().with_topics(vec![CreatableTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("orders")))
                .with_num_partitions(12)
                .with_replication_factor(3)
                .with_configs(vec![CreatableTopicConfig::default()
                    .with_name(StrBytes::from_static_str("retention.ms"))
                    .with_value(Some(StrBytes::from_static_str("1000")))])]);
            let mut p = BytesMut::new();
            RequestHeader::default()
                .with_request_api_key(19)
                .with_request_api_version(v)
                .with_correlation_id(4)
                .encode(&mut p, ApiKey::CreateTopics.request_header_version(v))
                .unwrap();
            let body = p.len();
            req.encode(&mut p, v).unwrap();
            let t = topics(&p, body, v).unwrap();
            assert_eq!(t[0].name, "orders");
            assert_eq!(t[0].num_partitions, 12);
            assert_eq!(
                t[0].configs,
                vec![("retention.ms".into(), Some("1000".into()))]
            );
            let out = error_response(
                &t,
                v,
                4,
                44,
                &["no".into()],
                &crate::protocol::answer::AnswerBound::for_request(1 << 20, 100 << 20),
            )
            .unwrap();
            let mut b = out.clone();
            let h = ResponseHeader::decode(&mut b, ApiKey::CreateTopics.response_header_version(v))
                .unwrap();
            assert_eq!(h.correlation_id, 4);
            let r = CreateTopicsResponse::decode(&mut b, v).unwrap();
            assert_eq!(r.topics[0].error_code, 44, "v{v}");
            assert_eq!(r.topics[0].error_message.as_deref(), Some("no"));
            assert!(topics(&p[..p.len() - 3], body, v).is_err());
        }
    }
}

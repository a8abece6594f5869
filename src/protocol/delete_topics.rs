//! DeleteTopics requests (api key 20, KIP-4) for policies: the topics a request deletes, decoded
//! with kafka-protocol (admin traffic, rare, and only when a read-only rule applies to the
//! client), and the error response that answers a rejected request. Sans-io.
//!
//! Layout (Kafka protocol guide): v1-v5 `topic_names: [string], timeout_ms`; v6+ (KIP-516)
//! `topics: [name nullable string, topic_id uuid], timeout_ms`, a topic named by id only having a
//! null name. Response: `throttle_time_ms, responses: [name, topic_id (v6+), error_code,
//! error_message (v5+)]`; flexible from v4.

use bytes::Bytes;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{ApiKey, DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::wire::decode_walked;

/// DeleteTopics api key.
pub const DELETE_TOPICS: i16 = 20;

/// Highest DeleteTopics version that names every topic (v6 may name a topic by id only).
pub const NAMES_ONLY_MAX: i16 = 5;

/// The topic names of a DeleteTopics request body (`payload[body..]`, version `version`, 1..=5;
/// v6 as long as every topic has a name).
///
/// # Errors
/// kafka-protocol's decode error, as text; a topic named by id only (v6+).
pub fn topics(payload: &[u8], body: usize, version: i16) -> Result<Vec<String>, String> {
    let schema = super::topics::schema::request(DELETE_TOPICS).ok_or("no DeleteTopics schema")?;
    let req: DeleteTopicsRequest = decode_walked(payload, body, version, schema)?;
    if version <= NAMES_ONLY_MAX {
        return Ok(req.topic_names.iter().map(|n| n.0.to_string()).collect());
    }
    req.topics
        .iter()
        .map(|t| {
            t.name
                .as_ref()
                .map(|n| n.0.to_string())
                .ok_or_else(|| format!("topic id {} has no name", t.topic_id))
        })
        .collect()
}

/// A DeleteTopics response payload (no size prefix) answering every topic of `names` with
/// `per_topic(name)` (error code, message: v5+ carries it), in the request's version.
///
/// # Errors
/// When the response cannot be encoded.
pub fn error_response(
    names: &[String],
    version: i16,
    correlation_id: i32,
    per_topic: impl Fn(&str) -> (i16, String),
    bound: &super::answer::AnswerBound,
) -> Result<Bytes, String> {
    let responses = names
        .iter()
        .map(|n| {
            let (code, message) = per_topic(n);
            DeletableTopicResult::default()
                .with_name(Some(TopicName(StrBytes::from_string(n.clone()))))
                .with_error_code(code)
                .with_error_message(bound.message(&message))
        })
        .collect();
    let resp = DeleteTopicsResponse::default().with_responses(responses);
    super::produce::local_response(ApiKey::DeleteTopics, version, correlation_id, &resp, bound)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
    use kafka_protocol::messages::{RequestHeader, ResponseHeader};
    use kafka_protocol::protocol::Decodable;

    #[test]
    fn a_hostile_topic_count_is_an_error_before_any_allocation() {
        // topic_names: int32 count 2^31-1 (v1) / compact count 2^28 (v4), then nothing
        assert!(topics(&[0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0], 0, 1).is_err());
        assert!(topics(&[0x80, 0x80, 0x80, 0x80, 0x01, 0, 0, 0, 0, 0], 0, 4).is_err());
    }
    use kafka_protocol::protocol::{Encodable, Message};

    fn framed(v: i16, req: &DeleteTopicsRequest) -> (BytesMut, usize) {
        let mut p = BytesMut::new();
        RequestHeader::default()
            .with_request_api_key(DELETE_TOPICS)
            .with_request_api_version(v)
            .with_correlation_id(6)
            .encode(&mut p, ApiKey::DeleteTopics.request_header_version(v))
            .unwrap();
        let body = p.len();
        req.encode(&mut p, v).unwrap();
        (p, body)
    }

    #[test]
    fn reads_names_and_answers_every_version() {
        let name = |s: &'static str| TopicName(StrBytes::from_static_str(s));
        for v in DeleteTopicsRequest::VERSIONS.min..=DeleteTopicsRequest::VERSIONS.max {
            let req = if v <= NAMES_ONLY_MAX {
                DeleteTopicsRequest::default().with_topic_names(vec![name("audit"), name("x")])
            } else {
                DeleteTopicsRequest::default().with_topics(vec![
                    DeleteTopicState::default().with_name(Some(name("audit"))),
                    DeleteTopicState::default().with_name(Some(name("x"))),
                ])
            };
            let (p, body) = framed(v, &req);
            let t = topics(&p, body, v).unwrap();
            assert_eq!(t, vec!["audit".to_string(), "x".to_string()], "v{v}");
            let out = error_response(
                &t,
                v,
                6,
                |n| {
                    if n == "audit" {
                        (29, "read-only".into())
                    } else {
                        (44, "not deleted".into())
                    }
                },
                &crate::protocol::answer::AnswerBound::for_request(1 << 20, 100 << 20),
            )
            .unwrap();
            let mut b = out.clone();
            let h = ResponseHeader::decode(&mut b, ApiKey::DeleteTopics.response_header_version(v))
                .unwrap();
            assert_eq!(h.correlation_id, 6);
            let r = DeleteTopicsResponse::decode(&mut b, v).unwrap();
            assert_eq!(r.responses[0].error_code, 29, "v{v}");
            assert_eq!(r.responses[1].error_code, 44);
            if v >= 5 {
                assert_eq!(r.responses[1].error_message.as_deref(), Some("not deleted"));
            }
            assert!(topics(&p[..p.len() - 2], body, v).is_err());
        }
        // v6 by topic id only: no name to check.
        let req = DeleteTopicsRequest::default().with_topics(vec![DeleteTopicState::default()]);
        let (p, body) = framed(6, &req);
        assert!(topics(&p, body, 6).is_err());
    }
}

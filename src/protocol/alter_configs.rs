//! AlterConfigs (api key 33, KIP-133) and IncrementalAlterConfigs (api key 44, KIP-339) requests
//! for policies: the config changes a request asks for, decoded with kafka-protocol (admin
//! traffic, rare, and only when a topic-config rule applies to the client), and the error
//! response that answers every resource of a rejected request. Sans-io.
//!
//! Layout (Kafka protocol guide): `resources: [resource_type int8, resource_name string,
//! configs: [name string, (IncrementalAlterConfigs: config_operation int8), value nullable
//! string]], validate_only bool`; flexible from AlterConfigs v2 and IncrementalAlterConfigs v1.
//! The responses: `throttle_time_ms, responses: [error_code, error_message, resource_type,
//! resource_name]`.

use bytes::Bytes;
use kafka_protocol::messages::{
    alter_configs_response, incremental_alter_configs_response, AlterConfigsRequest,
    AlterConfigsResponse, ApiKey, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::wire::{always, decode_walked, Schema, Struct, Ty, BOOL, I8};

pub use super::codes::RESOURCE_TOPIC;

/// AlterConfigs api key.
pub const ALTER_CONFIGS: i16 = 33;
/// IncrementalAlterConfigs api key.
pub const INCREMENTAL_ALTER_CONFIGS: i16 = 44;

static ALTER_CONFIG: Struct = Struct {
    fields: &[always(Ty::Str), always(Ty::Str)], // name, value (nullable)
    tagged: &[],
};

static ALTER_RESOURCE: Struct = Struct {
    // resource_type, resource_name, configs
    fields: &[
        always(I8),
        always(Ty::Str),
        always(Ty::Array(&ALTER_CONFIG)),
    ],
    tagged: &[],
};

static ALTER_ROOT: Struct = Struct {
    fields: &[always(Ty::Array(&ALTER_RESOURCE)), always(BOOL)], // resources, validate_only
    tagged: &[],
};

/// Body layout of AlterConfigsRequest v0-v2 (flexible from v2), walked before decoding.
static ALTER_CONFIGS_SCHEMA: Schema = Schema {
    root: &ALTER_ROOT,
    flexible_from: 2,
};

static INCREMENTAL_CONFIG: Struct = Struct {
    // name, config_operation, value (nullable)
    fields: &[always(Ty::Str), always(I8), always(Ty::Str)],
    tagged: &[],
};

static INCREMENTAL_RESOURCE: Struct = Struct {
    // resource_type, resource_name, configs
    fields: &[
        always(I8),
        always(Ty::Str),
        always(Ty::Array(&INCREMENTAL_CONFIG)),
    ],
    tagged: &[],
};

static INCREMENTAL_ROOT: Struct = Struct {
    fields: &[always(Ty::Array(&INCREMENTAL_RESOURCE)), always(BOOL)], // resources, validate_only
    tagged: &[],
};

/// Body layout of IncrementalAlterConfigsRequest v0-v1 (flexible from v1), walked before
/// decoding.
static INCREMENTAL_SCHEMA: Schema = Schema {
    root: &INCREMENTAL_ROOT,
    flexible_from: 1,
};

/// What a change does to one config (IncrementalAlterConfigs `config_operation`, KIP-339;
/// AlterConfigs only sets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigOp {
    /// 0: set the value.
    Set,
    /// 1: revert to the default.
    Delete,
    /// 2: add to a list config.
    Append,
    /// 3: remove from a list config.
    Subtract,
    /// An operation code Kafka does not define (the broker rejects it).
    Other(i8),
}

impl ConfigOp {
    fn from_code(c: i8) -> ConfigOp {
        match c {
            0 => ConfigOp::Set,
            1 => ConfigOp::Delete,
            2 => ConfigOp::Append,
            3 => ConfigOp::Subtract,
            c => ConfigOp::Other(c),
        }
    }

    /// Whether the change gives the config a new value (set or append), which policies check.
    pub fn sets_value(self) -> bool {
        matches!(self, ConfigOp::Set | ConfigOp::Append)
    }
}

/// One config change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigChange {
    pub name: String,
    pub op: ConfigOp,
    /// The value as given (`None`: null).
    pub value: Option<String>,
}

/// One resource of a request and the changes asked for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceChanges {
    /// 2: topic, 4: broker, 8: broker logger (`ConfigResource.Type`).
    pub resource_type: i8,
    pub resource_name: String,
    pub configs: Vec<ConfigChange>,
}

fn text(s: &StrBytes) -> String {
    s.to_string()
}

/// The resources of an AlterConfigs (`api_key` 33) or IncrementalAlterConfigs (44) request body
/// (`payload[body..]`, version `version`).
///
/// # Errors
/// kafka-protocol's decode error, as text; an api key other than 33 or 44.
pub fn resources(
    api_key: i16,
    payload: &[u8],
    body: usize,
    version: i16,
) -> Result<Vec<ResourceChanges>, String> {
    match api_key {
        ALTER_CONFIGS => {
            let req: AlterConfigsRequest =
                decode_walked(payload, body, version, &ALTER_CONFIGS_SCHEMA)?;
            Ok(req
                .resources
                .iter()
                .map(|r| ResourceChanges {
                    resource_type: r.resource_type,
                    resource_name: text(&r.resource_name),
                    configs: r
                        .configs
                        .iter()
                        .map(|c| ConfigChange {
                            name: text(&c.name),
                            op: ConfigOp::Set,
                            value: c.value.as_ref().map(text),
                        })
                        .collect(),
                })
                .collect())
        }
        INCREMENTAL_ALTER_CONFIGS => {
            let req: IncrementalAlterConfigsRequest =
                decode_walked(payload, body, version, &INCREMENTAL_SCHEMA)?;
            Ok(req
                .resources
                .iter()
                .map(|r| ResourceChanges {
                    resource_type: r.resource_type,
                    resource_name: text(&r.resource_name),
                    configs: r
                        .configs
                        .iter()
                        .map(|c| ConfigChange {
                            name: text(&c.name),
                            op: ConfigOp::from_code(c.config_operation),
                            value: c.value.as_ref().map(text),
                        })
                        .collect(),
                })
                .collect())
        }
        k => Err(format!(
            "api key {k} is not AlterConfigs or IncrementalAlterConfigs"
        )),
    }
}

/// A response payload (no size prefix) of `api_key` (33 or 44) answering every resource of the
/// request with `error_code` and its message (`messages[i]` for resource `i`), in the request's
/// version.
///
/// # Errors
/// When the response cannot be encoded; an api key other than 33 or 44.
pub fn error_response(
    api_key: i16,
    resources: &[ResourceChanges],
    version: i16,
    correlation_id: i32,
    error_code: i16,
    messages: &[String],
    bound: &super::answer::AnswerBound,
) -> Result<Bytes, String> {
    let each = resources.iter().zip(messages);
    match api_key {
        ALTER_CONFIGS => {
            let responses = each
                .map(|(r, m)| {
                    alter_configs_response::AlterConfigsResourceResponse::default()
                        .with_error_code(error_code)
                        .with_error_message(bound.message(m))
                        .with_resource_type(r.resource_type)
                        .with_resource_name(StrBytes::from_string(r.resource_name.clone()))
                })
                .collect();
            let resp = AlterConfigsResponse::default().with_responses(responses);
            super::produce::local_response(
                ApiKey::AlterConfigs,
                version,
                correlation_id,
                &resp,
                bound,
            )
        }
        INCREMENTAL_ALTER_CONFIGS => {
            let responses = each
                .map(|(r, m)| {
                    incremental_alter_configs_response::AlterConfigsResourceResponse::default()
                        .with_error_code(error_code)
                        .with_error_message(bound.message(m))
                        .with_resource_type(r.resource_type)
                        .with_resource_name(StrBytes::from_string(r.resource_name.clone()))
                })
                .collect();
            let resp = IncrementalAlterConfigsResponse::default().with_responses(responses);
            super::produce::local_response(
                ApiKey::IncrementalAlterConfigs,
                version,
                correlation_id,
                &resp,
                bound,
            )
        }
        k => Err(format!(
            "api key {k} is not AlterConfigs or IncrementalAlterConfigs"
        )),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::messages::{alter_configs_request, incremental_alter_configs_request};
    use kafka_protocol::messages::{RequestHeader, ResponseHeader};
    use kafka_protocol::protocol::Decodable;

    #[test]
    fn a_hostile_resource_count_is_an_error_before_any_allocation() {
        // resources: int32 count 2^31-1 (v0) / compact count 2^28 (flexible), then nothing
        let classic = [0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0];
        let compact = [0x80, 0x80, 0x80, 0x80, 0x01, 0, 0, 0, 0, 0];
        assert!(resources(ALTER_CONFIGS, &classic, 0, 0).is_err());
        assert!(resources(ALTER_CONFIGS, &compact, 0, 2).is_err());
        assert!(resources(INCREMENTAL_ALTER_CONFIGS, &classic, 0, 0).is_err());
        assert!(resources(INCREMENTAL_ALTER_CONFIGS, &compact, 0, 1).is_err());
    }
    use kafka_protocol::protocol::{Encodable, Message};

    fn framed<T: Encodable>(key: ApiKey, v: i16, req: &T) -> (BytesMut, usize) {
        let mut p = BytesMut::new();
        RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(v)
            .with_correlation_id(9)
            .encode(&mut p, key.request_header_version(v))
            .unwrap();
        let body = p.len();
        req.encode(&mut p, v).unwrap();
        (p, body)
    }

    #[test]
    fn incremental_alter_configs_every_version() {
        for v in IncrementalAlterConfigsRequest::VERSIONS.min
            ..=IncrementalAlterConfigsRequest::VERSIONS.max
        {
            let req = IncrementalAlterConfigsRequest::default().with_resources(vec![
                incremental_alter_configs_request::AlterConfigsResource::default()
                    .with_resource_type(RESOURCE_TOPIC)
                    .with_resource_name(StrBytes::from_static_str("orders"))
                    .with_configs(vec![
                        incremental_alter_configs_request::AlterableConfig::default()
                            .with_name(StrBytes::from_static_str("retention.ms"))
                            .with_config_operation(0)
                            .with_value(Some(StrBytes::from_static_str("1000"))),
                        incremental_alter_configs_request::AlterableConfig::default()
                            .with_name(StrBytes::from_static_str("cleanup.policy"))
                            .with_config_operation(1)
                            .with_value(None),
                    ]),
                incremental_alter_configs_request::AlterConfigsResource::default()
                    .with_resource_type(4)
                    .with_resource_name(StrBytes::from_static_str("1")),
            ]);
            let (p, body) = framed(ApiKey::IncrementalAlterConfigs, v, &req);
            let r = resources(INCREMENTAL_ALTER_CONFIGS, &p, body, v).unwrap();
            assert_eq!(r.len(), 2);
            assert_eq!(r[0].resource_name, "orders");
            assert_eq!(
                r[0].configs[0],
                ConfigChange {
                    name: "retention.ms".into(),
                    op: ConfigOp::Set,
                    value: Some("1000".into())
                }
            );
            assert_eq!(r[0].configs[1].op, ConfigOp::Delete);
            assert!(!r[0].configs[1].op.sets_value());
            assert_eq!(r[1].resource_type, 4);

            let out = error_response(
                INCREMENTAL_ALTER_CONFIGS,
                &r,
                v,
                9,
                44,
                &["bad".into(), "not applied".into()],
                &crate::protocol::answer::AnswerBound::for_request(1 << 20, 100 << 20),
            )
            .unwrap();
            let mut b = out.clone();
            let h = ResponseHeader::decode(
                &mut b,
                ApiKey::IncrementalAlterConfigs.response_header_version(v),
            )
            .unwrap();
            assert_eq!(h.correlation_id, 9);
            let resp = IncrementalAlterConfigsResponse::decode(&mut b, v).unwrap();
            assert_eq!(resp.responses.len(), 2);
            assert_eq!(resp.responses[0].error_code, 44, "v{v}");
            assert_eq!(resp.responses[0].error_message.as_deref(), Some("bad"));
            assert_eq!(resp.responses[0].resource_name.as_str(), "orders");
            assert_eq!(resp.responses[1].resource_type, 4);
            assert!(resources(INCREMENTAL_ALTER_CONFIGS, &p[..p.len() - 2], body, v).is_err());
        }
    }

    #[test]
    fn alter_configs_every_version() {
        for v in AlterConfigsRequest::VERSIONS.min..=AlterConfigsRequest::VERSIONS.max {
            let req = AlterConfigsRequest::default().with_resources(vec![
                alter_configs_request::AlterConfigsResource::default()
                    .with_resource_type(RESOURCE_TOPIC)
                    .with_resource_name(StrBytes::from_static_str("orders"))
                    .with_configs(vec![alter_configs_request::AlterableConfig::default()
                        .with_name(StrBytes::from_static_str("cleanup.policy"))
                        .with_value(Some(StrBytes::from_static_str("compact")))]),
            ]);
            let (p, body) = framed(ApiKey::AlterConfigs, v, &req);
            let r = resources(ALTER_CONFIGS, &p, body, v).unwrap();
            assert_eq!(r[0].configs[0].op, ConfigOp::Set);
            assert_eq!(r[0].configs[0].value.as_deref(), Some("compact"));
            let out = error_response(
                ALTER_CONFIGS,
                &r,
                v,
                9,
                44,
                &["no".into()],
                &crate::protocol::answer::AnswerBound::for_request(1 << 20, 100 << 20),
            )
            .unwrap();
            let mut b = out.clone();
            ResponseHeader::decode(&mut b, ApiKey::AlterConfigs.response_header_version(v))
                .unwrap();
            let resp = AlterConfigsResponse::decode(&mut b, v).unwrap();
            assert_eq!(resp.responses[0].error_code, 44, "v{v}");
            assert_eq!(resp.responses[0].error_message.as_deref(), Some("no"));
        }
        assert!(resources(3, &[], 0, 0).is_err());
    }
}

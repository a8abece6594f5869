//! DescribeConfigs response (api key 32): a broker resource's configs include the broker's own
//! endpoints (`listeners`, `advertised.listeners`), the controllers' (`controller.quorum.voters`,
//! `controller.quorum.bootstrap.servers`) and, on brokers older than Kafka 3.0, `host.name`,
//! `port` and their `advertised.` forms. Their values are withheld the way Kafka withholds a
//! password (Kafka protocol guide, DescribeConfigs; KIP-226): `value` null and `is_sensitive`
//! true, and every synonym's `value` null. Any config whose name ends in `bootstrap.servers` is
//! withheld too (the clients that broker plugins such as remote log metadata embed). Other resources (topics, broker loggers,
//! client metrics, groups) and every other config pass unchanged; a response with nothing to
//! withhold (the common case: topic configs) is forwarded as the same bytes. DescribeConfigs is a
//! cold path (admin tools), so it is decoded whole.

use bytes::Bytes;
use kafka_protocol::messages::describe_configs_response::DescribeConfigsResourceResult;
use kafka_protocol::messages::DescribeConfigsResponse;

use super::{Ctx, RewriteError, Rewritten};
use crate::protocol::codes::RESOURCE_BROKER;
use crate::protocol::topics::schema::DESCRIBE_CONFIGS_RESPONSE;

/// Broker config names whose values hold a broker's or a controller's address.
const ADDRESS_CONFIGS: &[&str] = &[
    "listeners",
    "advertised.listeners",
    "controller.quorum.voters",
    "controller.quorum.bootstrap.servers",
    "host.name",
    "port",
    "advertised.host.name",
    "advertised.port",
];

/// Whether broker config `name` can hold an upstream address.
pub fn names_an_address(name: &str) -> bool {
    ADDRESS_CONFIGS.contains(&name) || name.ends_with("bootstrap.servers")
}

/// Withholds the value of `entry` and of its synonyms; `true` if anything was there to withhold.
fn withhold(entry: &mut DescribeConfigsResourceResult) -> bool {
    let mut changed = entry.value.take().is_some() || !entry.is_sensitive;
    entry.is_sensitive = true;
    for s in &mut entry.synonyms {
        changed |= s.value.take().is_some();
    }
    changed
}

pub(super) fn rewrite(
    ctx: &Ctx,
    payload: Bytes,
    body_offset: usize,
) -> Result<Rewritten, RewriteError> {
    let mut msg: DescribeConfigsResponse =
        ctx.decode(&payload, body_offset, &DESCRIBE_CONFIGS_RESPONSE)?;
    let mut changed = false;
    for result in msg
        .results
        .iter_mut()
        .filter(|r| r.resource_type == RESOURCE_BROKER)
    {
        for entry in &mut result.configs {
            if names_an_address(entry.name.as_str()) {
                changed |= withhold(entry);
            }
        }
    }
    if !changed {
        return Ok(Rewritten::Unchanged);
    }
    ctx.encode(&payload, body_offset, &msg)
        .map(Rewritten::Replaced)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::test_util::*;
    use super::super::*;
    use super::*;
    use kafka_protocol::messages::describe_configs_response::{
        DescribeConfigsResult, DescribeConfigsSynonym,
    };
    use kafka_protocol::messages::ApiKey;
    use kafka_protocol::protocol::{Message, StrBytes};

    const LISTENERS: &str = "PLAINTEXT://upstream-broker.internal:9092";

    fn entry(v: i16, name: &'static str, value: &str) -> DescribeConfigsResourceResult {
        let mut e = DescribeConfigsResourceResult::default()
            .with_name(StrBytes::from_static_str(name))
            .with_value(Some(StrBytes::from_string(value.to_string())))
            .with_config_source(1)
            .with_synonyms(vec![DescribeConfigsSynonym::default()
                .with_name(StrBytes::from_static_str(name))
                .with_value(Some(StrBytes::from_string(value.to_string())))
                .with_source(4)]);
        if v >= 3 {
            e = e.with_config_type(2);
        }
        e
    }

    fn result(v: i16, resource_type: i8, name: &'static str) -> DescribeConfigsResult {
        DescribeConfigsResult::default()
            .with_resource_type(resource_type)
            .with_resource_name(StrBytes::from_static_str(name))
            .with_configs(vec![
                entry(v, "listeners", LISTENERS),
                entry(v, "advertised.listeners", LISTENERS),
                entry(
                    v,
                    "controller.quorum.bootstrap.servers",
                    "upstream-broker.internal:9093",
                ),
                entry(v, "num.network.threads", "3"),
            ])
    }

    #[test]
    fn a_brokers_address_configs_are_withheld_and_nothing_else() {
        for v in DescribeConfigsResponse::VERSIONS.min..=DescribeConfigsResponse::VERSIONS.max {
            let orig = DescribeConfigsResponse::default().with_results(vec![
                result(v, RESOURCE_BROKER, "1"),
                // A topic that happens to have a config of the same name keeps it.
                result(v, 2, "orders"),
            ]);
            let payload = response(ApiKey::DescribeConfigs, v, 9, &orig);
            let Rewritten::Replaced(out) =
                rewrite_response(32, v, payload.clone(), &mut TestMap::default()).unwrap()
            else {
                panic!("v{v}: expected Replaced")
            };
            let got: DescribeConfigsResponse = decode(ApiKey::DescribeConfigs, v, &payload, &out);
            let mut want = orig.clone();
            for e in &mut want.results[0].configs[..3] {
                e.value = None;
                e.is_sensitive = true;
                for s in &mut e.synonyms {
                    s.value = None;
                }
            }
            assert_eq!(got, want, "v{v}");
            assert_eq!(
                got.results[1].configs[0].value.as_deref(),
                Some(LISTENERS),
                "v{v}: a topic's config was touched"
            );
            truncations_never_panic(32, v, &payload);
        }
    }

    #[test]
    fn topic_configs_are_forwarded_untouched() {
        for v in 1..=4 {
            let orig = DescribeConfigsResponse::default().with_results(vec![result(v, 2, "t")]);
            let payload = response(ApiKey::DescribeConfigs, v, 9, &orig);
            let out = rewrite_response(32, v, payload, &mut TestMap::default()).unwrap();
            assert_eq!(out, Rewritten::Unchanged, "v{v}");
        }
    }

    #[test]
    fn address_config_names() {
        for name in [
            "listeners",
            "advertised.listeners",
            "controller.quorum.voters",
            "port",
        ] {
            assert!(names_an_address(name), "{name}");
        }
        assert!(names_an_address(
            "remote.log.metadata.common.client.bootstrap.servers"
        ));
        for name in [
            "listener.security.protocol.map",
            "inter.broker.listener.name",
            "num.io.threads",
        ] {
            assert!(!names_an_address(name), "{name}");
        }
    }
}

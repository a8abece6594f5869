//! ApiVersions response (api key 18, KIP-35; flexible from v3, KIP-511, but always with response
//! header v0): for each api key Sluice decodes ([`decodable_versions`]) the advertised range is
//! intersected with Sluice's, and the key is dropped when they do not overlap; every other key (even
//! numbers neither Sluice nor kafka-protocol knows) passes through as the broker sent it, as do
//! throttle time, features and tagged fields. A response with a non-zero error code passes through
//! untouched.
//!
//! [`api_versions_unsupported`] builds the answer the broker itself gives to an ApiVersions request
//! of a version it does not know: v0 layout, UNSUPPORTED_VERSION, and the ApiVersions range, so the
//! client retries with a version from that range.

use std::ops::RangeInclusive;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::ApiVersionsResponse;

use super::{Ctx, RewriteError, Rewritten};
use crate::protocol::versions::{decodable_versions, keys};
use crate::protocol::wire::{
    always, since, Cursor, Schema, Struct, Tagged, Ty, BOOL, I16, I32, I64,
};

/// Kafka error code UNSUPPORTED_VERSION.
pub const UNSUPPORTED_VERSION: i16 = 35;

static API_VERSION: Struct = Struct {
    fields: &[always(I16), always(I16), always(I16)], // api_key, min_version, max_version
    tagged: &[],
};

static FEATURE: Struct = Struct {
    fields: &[always(Ty::Str), always(I16), always(I16)], // name, min/max (level)
    tagged: &[],
};

static ROOT: Struct = Struct {
    fields: &[
        always(I16),                     // error_code
        always(Ty::Array(&API_VERSION)), // api_keys
        since(1, I32),                   // throttle_time_ms
    ],
    tagged: &[
        Tagged {
            tag: 0,
            ty: Ty::Array(&FEATURE),
        }, // supported_features
        Tagged { tag: 1, ty: I64 }, // finalized_features_epoch
        Tagged {
            tag: 2,
            ty: Ty::Array(&FEATURE),
        }, // finalized_features
        Tagged { tag: 3, ty: BOOL }, // zk_migration_ready
    ],
};

/// Body layout of ApiVersionsResponse v0-v4 (flexible from v3).
pub(crate) static SCHEMA: Schema = Schema {
    root: &ROOT,
    flexible_from: 3,
};

pub(super) fn rewrite(
    ctx: &Ctx,
    payload: Bytes,
    body_offset: usize,
) -> Result<Rewritten, RewriteError> {
    let ours = |k: i16| Some(decodable_versions(k).unwrap_or(i16::MIN..=i16::MAX));
    Ok(match restrict(ctx, &payload, body_offset, &ours)? {
        Some(p) => Rewritten::Replaced(p),
        None => Rewritten::Unchanged,
    })
}

/// Removes `hidden` api keys from an ApiVersions response payload (a policy forbids them for this
/// client, so it is told the gateway does not support them). `Ok(None)` when nothing changes
/// (none listed, or an error response).
///
/// # Errors
/// [`RewriteError`] for a response that cannot be decoded or re-encoded.
pub fn hide_api_keys(
    payload: &Bytes,
    api_version: i16,
    hidden: &[i16],
) -> Result<Option<Bytes>, RewriteError> {
    if hidden.is_empty() {
        return Ok(None);
    }
    restrict_api_keys(payload, api_version, &|k| {
        (!hidden.contains(&k)).then_some(i16::MIN..=i16::MAX)
    })
}

/// Restricts an ApiVersions response payload to what this client is offered: each api key's
/// range is intersected with `offered(api_key)`, and a key is removed where that is `None` or
/// the intersection is empty. `Ok(None)` when nothing changes (or an error response).
///
/// # Errors
/// [`RewriteError`] for a response that cannot be decoded or re-encoded.
pub fn restrict_api_keys(
    payload: &Bytes,
    api_version: i16,
    offered: &dyn Fn(i16) -> Option<RangeInclusive<i16>>,
) -> Result<Option<Bytes>, RewriteError> {
    let ctx = Ctx {
        api_key: keys::API_VERSIONS,
        api_version,
    };
    // response header v0, always (KIP-511)
    restrict(&ctx, payload, 4, offered)
}

/// [`restrict_api_keys`] of the body at `body_offset`.
fn restrict(
    ctx: &Ctx,
    payload: &Bytes,
    body_offset: usize,
    offered: &dyn Fn(i16) -> Option<RangeInclusive<i16>>,
) -> Result<Option<Bytes>, RewriteError> {
    // error_code is the first body field in every version; on error the body may even be in the
    // v0 layout whatever the request version was, so do not decode it.
    let error = Cursor::at(payload, body_offset)
        .i16()
        .map_err(|e| ctx.malformed(e))?;
    if error != 0 {
        return Ok(None);
    }
    let mut msg: ApiVersionsResponse = ctx.decode(payload, body_offset, &SCHEMA)?;
    let mut changed = false;
    msg.api_keys.retain_mut(|k| {
        let Some(r) = offered(k.api_key) else {
            changed = true;
            return false;
        };
        let min = k.min_version.max(*r.start());
        let max = k.max_version.min(*r.end());
        if (min, max) != (k.min_version, k.max_version) {
            changed = true;
        }
        k.min_version = min;
        k.max_version = max;
        min <= max || {
            changed = true;
            false
        }
    });
    if !changed {
        return Ok(None);
    }
    ctx.encode(payload, body_offset, &msg).map(Some)
}

/// Local answer to an ApiVersions request from a client a policy refuses (a client id rule):
/// an ApiVersionsResponse of the request's `version` (header v0, KIP-511) with `error_code`
/// (`POLICY_VIOLATION`, 44) and no api keys. The Java client logs "Received error
/// POLICY_VIOLATION from node ... Disconnecting." and disconnects. Returns the payload without
/// size prefix.
///
/// # Errors
/// When the response cannot be encoded (a version kafka-protocol does not know).
pub fn api_versions_error(
    correlation_id: i32,
    version: i16,
    error_code: i16,
) -> Result<Bytes, String> {
    use kafka_protocol::protocol::Encodable;
    let mut out = BytesMut::new();
    out.put_i32(correlation_id); // response header v0, always
    ApiVersionsResponse::default()
        .with_error_code(error_code)
        .encode(&mut out, version)
        .map_err(|e| e.to_string())?;
    Ok(out.freeze())
}

/// Local answer to an ApiVersions request whose version Sluice cannot decode: an
/// ApiVersionsResponse v0 (header v0) with error UNSUPPORTED_VERSION (35) and
/// `api_keys = [ApiVersions 0..=max]`, as the broker does (KIP-511), so clients retry with a lower
/// version. Returns the payload without size prefix (16 bytes).
pub fn api_versions_unsupported(correlation_id: i32) -> Bytes {
    let range = decodable_versions(keys::API_VERSIONS).unwrap_or(0..=0);
    let mut out = BytesMut::with_capacity(16);
    out.put_i32(correlation_id); // response header v0
    out.put_i16(UNSUPPORTED_VERSION); // error_code
    out.put_i32(1); // api_keys: classic array of one
    out.put_i16(keys::API_VERSIONS);
    out.put_i16(*range.start());
    out.put_i16(*range.end());
    out.freeze()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::test_util::*;
    use super::super::*;
    use super::UNSUPPORTED_VERSION;
    use crate::protocol::versions::decodable_versions;
    use kafka_protocol::messages::api_versions_response::{ApiVersion, SupportedFeatureKey};
    use kafka_protocol::messages::{ApiKey, ApiVersionsResponse};
    use kafka_protocol::protocol::{Decodable, Message, StrBytes};

    fn key(k: i16, min: i16, max: i16) -> ApiVersion {
        ApiVersion::default()
            .with_api_key(k)
            .with_min_version(min)
            .with_max_version(max)
    }

    #[test]
    fn hidden_keys_are_removed() {
        for v in ApiVersionsResponse::VERSIONS.min..=ApiVersionsResponse::VERSIONS.max {
            let orig = ApiVersionsResponse::default().with_api_keys(vec![
                key(0, 3, 13),
                key(20, 0, 6),
                key(18, 0, 4),
            ]);
            let payload = response(ApiKey::ApiVersions, v, 3, &orig);
            let out = super::hide_api_keys(&payload, v, &[20])
                .unwrap()
                .expect("changed");
            let got: ApiVersionsResponse = decode(ApiKey::ApiVersions, v, &payload, &out);
            let ks: Vec<i16> = got.api_keys.iter().map(|k| k.api_key).collect();
            assert_eq!(ks, vec![0, 18], "v{v}");
            assert!(super::hide_api_keys(&payload, v, &[77]).unwrap().is_none());
            assert!(super::hide_api_keys(&payload, v, &[]).unwrap().is_none());
        }
    }

    /// `restrict_api_keys` with `hidden` keys removed and `(key, max)` caps.
    fn restrict_api_keys(
        payload: &Bytes,
        v: i16,
        hidden: &[i16],
        caps: &[(i16, i16)],
    ) -> Result<Option<Bytes>, RewriteError> {
        super::restrict_api_keys(payload, v, &|k| {
            if hidden.contains(&k) {
                return None;
            }
            let max = caps
                .iter()
                .filter(|(key, _)| *key == k)
                .fold(i16::MAX, |m, (_, cap)| m.min(*cap));
            Some(i16::MIN..=max)
        })
    }

    #[test]
    fn caps_lower_max_versions() {
        for v in ApiVersionsResponse::VERSIONS.min..=ApiVersionsResponse::VERSIONS.max {
            let orig = ApiVersionsResponse::default().with_api_keys(vec![
                key(0, 3, 13),
                key(20, 0, 6),
                key(18, 0, 4),
            ]);
            let payload = response(ApiKey::ApiVersions, v, 3, &orig);
            let out = restrict_api_keys(&payload, v, &[20], &[(0, 12)])
                .unwrap()
                .expect("changed");
            let got: ApiVersionsResponse = decode(ApiKey::ApiVersions, v, &payload, &out);
            assert_eq!(got.api_keys, vec![key(0, 3, 12), key(18, 0, 4)], "v{v}");
            // A cap below the min removes the key; a cap above the max changes nothing.
            let out = restrict_api_keys(&payload, v, &[], &[(0, 2)])
                .unwrap()
                .expect("changed");
            let got: ApiVersionsResponse = decode(ApiKey::ApiVersions, v, &payload, &out);
            assert_eq!(got.api_keys, vec![key(20, 0, 6), key(18, 0, 4)], "v{v}");
            assert!(restrict_api_keys(&payload, v, &[], &[(0, 13)])
                .unwrap()
                .is_none());
        }
    }

    #[test]
    fn error_answer_in_every_version() {
        for v in ApiVersionsResponse::VERSIONS.min..=ApiVersionsResponse::VERSIONS.max {
            let p = super::api_versions_error(5, v, 44).unwrap();
            assert_eq!(crate::protocol::header::response_correlation_id(&p), Ok(5));
            let mut body = p.slice(4..);
            let m = ApiVersionsResponse::decode(&mut body, v).unwrap();
            assert_eq!(m.error_code, 44, "v{v}");
            assert!(m.api_keys.is_empty());
            assert!(body.is_empty());
        }
    }

    #[test]
    fn all_versions_cap_and_pass_through() {
        for v in ApiVersionsResponse::VERSIONS.min..=ApiVersionsResponse::VERSIONS.max {
            let mut orig = ApiVersionsResponse::default().with_api_keys(vec![
                key(0, 0, 20),   // Produce: capped to 3..=13
                key(1, 0, 17),   // Fetch: min raised to 4
                key(2, 0, 9),    // ListOffsets: opaque
                key(3, 0, 13),   // Metadata: unchanged
                key(78, 5, 9),   // ShareFetch: no overlap with 1..=1, dropped
                key(4242, 1, 2), // unknown number: passes through
            ]);
            if v >= 1 {
                orig = orig.with_throttle_time_ms(12);
            }
            if v >= 3 {
                orig = orig
                    .with_supported_features(vec![SupportedFeatureKey::default()
                        .with_name(StrBytes::from_static_str("metadata.version"))
                        .with_min_version(1)
                        .with_max_version(20)])
                    .with_finalized_features_epoch(7)
                    .with_unknown_tagged_field(9, Bytes::from_static(b"zz"));
            }
            let payload = response(ApiKey::ApiVersions, v, 3, &orig);
            let Rewritten::Replaced(out) =
                rewrite_response(18, v, payload.clone(), &mut TestMap::default()).unwrap()
            else {
                panic!("expected Replaced")
            };
            let got: ApiVersionsResponse = decode(ApiKey::ApiVersions, v, &payload, &out);
            let mut want = orig.clone();
            want.api_keys = vec![
                key(0, 3, 13),
                key(1, 4, 17),
                key(2, 0, 9),
                key(3, 0, 13),
                key(4242, 1, 2),
            ];
            assert_eq!(got, want, "v{v}");
            truncations_never_panic(18, v, &payload);
        }
    }

    #[test]
    fn within_range_is_unchanged() {
        let orig = ApiVersionsResponse::default().with_api_keys(vec![key(3, 0, 12), key(2, 0, 9)]);
        let payload = response(ApiKey::ApiVersions, 3, 1, &orig);
        let r = rewrite_response(18, 3, payload, &mut TestMap::default()).unwrap();
        assert_eq!(r, Rewritten::Unchanged);
    }

    #[test]
    fn error_passes_through() {
        // broker's own UNSUPPORTED_VERSION answer (v0 layout) to a v4 request
        let payload = api_versions_unsupported(77);
        let r = rewrite_response(18, 4, payload, &mut TestMap::default()).unwrap();
        assert_eq!(r, Rewritten::Unchanged);
    }

    #[test]
    fn unsupported_answer_decodes_as_v0() {
        let p = api_versions_unsupported(77);
        assert_eq!(crate::protocol::header::response_correlation_id(&p), Ok(77));
        let mut body = p.slice(4..);
        let m = ApiVersionsResponse::decode(&mut body, 0).unwrap();
        assert_eq!(m.error_code, UNSUPPORTED_VERSION);
        let r = decodable_versions(18).unwrap();
        assert_eq!(m.api_keys, vec![key(18, *r.start(), *r.end())]);
        assert!(body.is_empty());
    }
}

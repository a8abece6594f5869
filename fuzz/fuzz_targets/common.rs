//! Shared by the rewrite targets: an address map that records nothing and maps every node but 13,
//! and the run of one decoding rewrite.
#![allow(dead_code)]

use bytes::Bytes;
use kafka_protocol::protocol::Decodable;
use sluice::protocol::header::response_body_offset;
use sluice::protocol::rewrite::{rewrite_response, AddressMap, Rewritten};

pub const GATEWAY: &str = "gw.sluice";

pub struct Map;

impl AddressMap for Map {
    fn map_broker(&mut self, node_id: i32, _host: &str, _port: i32) -> Option<(String, i32)> {
        (node_id != 13).then(|| (GATEWAY.to_string(), 9000))
    }
}

/// Rewrites the response in `data` (version: its first byte modulo `versions`; payload: the rest)
/// as api key `api_key`. When the rewrite replaced the payload, returns the version and the new
/// body decoded as `M`, which must work (panics otherwise: a rewrite that emits what it cannot
/// read back is a bug), with the header kept. `None`: unchanged or refused.
pub fn replaced<M: Decodable>(data: &[u8], api_key: i16, versions: u8) -> Option<(i16, M)> {
    let (&v, payload) = data.split_first()?;
    let v = (v % versions) as i16;
    let payload = Bytes::copy_from_slice(payload);
    let Ok(Rewritten::Replaced(out)) = rewrite_response(api_key, v, payload, &mut Map) else {
        return None;
    };
    let off = response_body_offset(&out, api_key, v).expect("header kept");
    let m = M::decode(&mut out.slice(off..), v).expect("re-encoded body decodes");
    Some((v, m))
}

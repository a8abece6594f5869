//! Shared by the rewrite targets: an address map that records nothing and maps every node but 13.
#![allow(dead_code)]

use sluice::protocol::rewrite::AddressMap;

pub const GATEWAY: &str = "gw.sluice";

pub struct Map;

impl AddressMap for Map {
    fn map_broker(&mut self, node_id: i32, _host: &str, _port: i32) -> Option<(String, i32)> {
        (node_id != 13).then(|| (GATEWAY.to_string(), 9000))
    }
}

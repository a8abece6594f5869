//! Node id to upstream address, as learned from the broker responses this shard has seen.

use std::collections::BTreeMap;

/// Upstream address (`host:port`) of each node id known to a shard.
#[derive(Debug, Default)]
pub struct Topology {
    nodes: BTreeMap<i32, String>,
}

impl Topology {
    /// Records `node_id` at `addr`. Returns true when this is new or changed information.
    pub fn learn(&mut self, node_id: i32, addr: &str) -> bool {
        match self.nodes.get(&node_id) {
            Some(a) if a == addr => false,
            _ => {
                self.nodes.insert(node_id, addr.to_string());
                true
            }
        }
    }

    /// The upstream address of `node_id`, if known.
    pub fn get(&self, node_id: i32) -> Option<&str> {
        self.nodes.get(&node_id).map(String::as_str)
    }

    /// All known nodes, by node id.
    pub fn nodes(&self) -> impl Iterator<Item = (i32, &str)> {
        self.nodes.iter().map(|(k, v)| (*k, v.as_str()))
    }

    /// Number of known nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether no node is known.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
}

/// Formats a broker endpoint as `host:port`, bracketing IPv6 literals.
pub fn host_port(host: &str, port: i32) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learn_reports_changes_only() {
        let mut t = Topology::default();
        assert!(t.learn(1, "a:1"));
        assert!(!t.learn(1, "a:1"));
        assert!(t.learn(1, "a:2"));
        assert_eq!(t.get(1), Some("a:2"));
        assert_eq!(t.get(2), None);
        assert_eq!(host_port("::1", 9), "[::1]:9");
        assert_eq!(host_port("h", 9), "h:9");
    }
}

//! Load tooling for Sluice: a Kafka load generator (`sluice-load`) and an in-memory mock broker
//! (`sluice-mock-broker`). Both speak Kafka over plain blocking std sockets, one thread per
//! connection (see README.md for why that is good enough for microsecond latencies).

pub mod batch;
pub mod latency;
pub mod meta;
pub mod wire;

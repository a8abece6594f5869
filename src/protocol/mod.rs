//! Sans-io Kafka protocol handling for the **data plane**: framing, header peeks and targeted
//! response rewrites. Nothing in here does I/O or names a runtime (no glommio): every function takes
//! bytes and returns bytes or a small error, so it is tested and fuzzed without sockets, and the
//! proxy session drives it from whatever executor it runs on.
//!
//! # Decode on declared interest
//!
//! Sluice forwards frames opaque. For every frame it reads only what routing needs:
//!
//! 1. [`frame::FrameDecoder`] splits whole frames off the read buffer as [`bytes::Bytes`] (zero
//!    copy, size validated before any allocation);
//! 2. [`header::peek_request_header`] reads api key, version, correlation id and client id in
//!    place; [`header::produce_acks`] reads the two bytes that say whether a Produce gets a
//!    response at all;
//! 3. only when something declared interest in a response's api key and version does Sluice look
//!    at its body. The one interest declared here is address rewriting:
//!    [`versions::response_needs_rewrite`] says which responses can carry broker addresses, and
//!    [`rewrite::rewrite_response`] rewrites exactly those, decoding no more than it must (Produce
//!    and Fetch responses are walked, not decoded, and their records are never touched).
//!
//! Because a client may only use versions Sluice can decode, [`rewrite::rewrite_response`] also
//! caps the ApiVersions response to [`versions::decodable_versions`], and
//! [`rewrite::api_versions_unsupported`] answers an ApiVersions request of a version Sluice does not
//! know, as the broker would.
//!
//! # Errors and hostile input
//!
//! Network input never panics. Framing errors ([`frame::FrameError`]), header errors
//! ([`header::HeaderError`]) and rewrite errors ([`rewrite::RewriteError`]) say what failed; none of
//! them is retryable on the same bytes, and all of them mean the connection is closed. Array counts
//! read from the wire are checked against the bytes present before anything is allocated for them
//! (see [`WireError`]), so a frame can never make Sluice allocate more than a small multiple of its
//! own size.

pub mod alter_configs;
pub mod answer;
pub mod codes;
pub mod create_topics;
pub mod delete_records;
pub mod delete_topics;
pub mod fetch;
pub mod frame;
pub mod header;
pub mod produce;
pub mod rewrite;
#[cfg(test)]
pub(crate) mod testing;
pub mod topics;
pub mod versions;
mod wire;

pub use wire::WireError;

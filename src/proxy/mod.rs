//! The data plane of one shard: listeners ([`listener`]) and the admission of what they accept
//! ([`admission`]), per-shard state ([`shard`]), one session
//! per client connection ([`session`]; what to do with each request: [`dispose`], safeguards:
//! [`safeguards`], quota charging: [`quotas`]) with its in-flight queue ([`inflight`]), and the split
//! stream halves it pumps bytes through ([`io`]).

pub mod admission;
mod dispose;
pub mod inflight;
pub mod io;
pub mod listener;
mod quotas;
mod safeguards;
pub mod session;
pub mod shard;
pub mod sockopt;

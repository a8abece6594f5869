//! Quota glue of one client connection: who it is for quota keys (client id, source address),
//! its quota keys built once per client id and policy, charging them, and muting the connection
//! for the delay a breach earns (KIP-13 byte rates, KIP-124 request rates counted, KIP-219
//! `throttle_time_ms` then mute). The buckets and shares themselves are [`crate::quota`].

use std::cell::{Cell, RefCell};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::policy::{Identity, Policy};
use crate::proxy::shard::Shard;
use crate::quota::{self, Kind};

/// Who a connection is, for quotas (shared by both pumps), and until when it is muted.
pub(super) struct SessionIdentity {
    /// The client id of the latest request (clients keep one per connection).
    pub(super) client_id: RefCell<Option<String>>,
    /// The client's address.
    pub(super) source: Option<IpAddr>,
    /// A quota delay not yet waited out by the request pump.
    pub(super) muted_until: Cell<Option<Instant>>,
    quota_keys: RefCell<QuotaKeys>,
}

/// The longest quota delay Sluice asks a client to wait (as the broker bounds its own).
const MAX_THROTTLE: Duration = Duration::from_secs(10);

impl SessionIdentity {
    /// A connection from `source` that has sent no request yet.
    pub(super) fn new(source: Option<IpAddr>) -> Self {
        SessionIdentity {
            client_id: RefCell::new(None),
            source,
            muted_until: Cell::new(None),
            quota_keys: RefCell::new(QuotaKeys::default()),
        }
    }

    /// Records the client id of a request (allocates only when it changes).
    pub(super) fn remember(&self, client_id: Option<&[u8]>) {
        let id = client_id.and_then(|b| std::str::from_utf8(b).ok());
        let mut cur = self.client_id.borrow_mut();
        if cur.as_deref() != id {
            *cur = id.map(str::to_string);
        }
    }

    /// Mutes the connection for `d` (capped), keeping the later of two mutes; returns the delay
    /// in milliseconds for `throttle_time_ms`.
    pub(super) fn mute(&self, d: Duration) -> i32 {
        let d = d.min(MAX_THROTTLE);
        let until = Instant::now() + d;
        if self.muted_until.get().is_none_or(|u| u < until) {
            self.muted_until.set(Some(until));
        }
        i32::try_from(d.as_millis()).unwrap_or(i32::MAX).max(1)
    }
}

/// The quota keys of one connection, built once per client id and policy (a reload makes a new
/// policy), so charging a request allocates nothing: (limit per second, key) per applying rule.
#[derive(Default)]
struct QuotaKeys {
    policy: usize,
    client_id: Option<String>,
    produce: Vec<(f64, quota::table::Key)>,
    fetch: Vec<(f64, quota::table::Key)>,
    requests: Vec<(f64, quota::table::Key)>,
}

/// Charges `units` to every quota rule that applies to the connection and limits `kind`; returns
/// the longest delay.
pub(super) fn charge_quotas(
    shard: &Shard,
    policy: &std::sync::Arc<Policy>,
    ident: &SessionIdentity,
    kind: Kind,
    units: usize,
) -> Duration {
    let client_id = ident.client_id.borrow();
    let mut keys = ident.quota_keys.borrow_mut();
    let policy_id = std::sync::Arc::as_ptr(policy) as usize;
    if keys.policy != policy_id || keys.client_id != *client_id {
        let id = Identity {
            client_id: client_id.as_deref(),
            source: ident.source,
        };
        let build = |k: Kind| {
            policy
                .quotas(&id)
                .filter(|rule| !rule.per_topic())
                .filter_map(|rule| {
                    let limit = rule.rate(k)?;
                    Some((limit, (rule.name.clone(), rule.key_of(&id), k)))
                })
                .collect()
        };
        *keys = QuotaKeys {
            policy: policy_id,
            client_id: client_id.clone(),
            produce: build(Kind::ProduceBytes),
            fetch: build(Kind::FetchBytes),
            requests: build(Kind::Requests),
        };
    }
    let list = match kind {
        Kind::ProduceBytes => &keys.produce,
        Kind::FetchBytes => &keys.fetch,
        Kind::Requests => &keys.requests,
        // Checked at accept (crate::proxy::admission), never per request.
        Kind::Connections => return Duration::ZERO,
    };
    let now = shard.quotas.now();
    let mut worst = Duration::ZERO;
    for (limit, key) in list {
        let d = shard.quotas.take(key, *limit, units, now);
        if !d.is_zero() {
            shard
                .metrics
                .throttle(&key.0, kind.label(), d.min(MAX_THROTTLE));
        }
        worst = worst.max(d);
    }
    worst
}

/// Charges the bytes of each topic of a request or response (`topics`: client-facing name and
/// bytes) to every per-topic quota rule in scope that limits `kind` and that topic; returns the
/// longest delay. Keys are built per call (rule name and topic): per-topic rules cost an
/// allocation per topic and request, which rules keyed by client or source do not.
pub(super) fn charge_topic_quotas<S: AsRef<str>>(
    shard: &Shard,
    policy: &Policy,
    ident: &SessionIdentity,
    kind: Kind,
    topics: &[(S, usize)],
) -> Duration {
    let client_id = ident.client_id.borrow();
    let id = Identity {
        client_id: client_id.as_deref(),
        source: ident.source,
    };
    let now = shard.quotas.now();
    let mut worst = Duration::ZERO;
    for rule in policy.quotas(&id).filter(|r| r.per_topic()) {
        let Some(limit) = rule.rate(kind) else {
            continue;
        };
        for (topic, bytes) in topics.iter().filter(|(t, _)| rule.limits_topic(t.as_ref())) {
            let key = (rule.name.clone(), topic.as_ref().to_string(), kind);
            let d = shard.quotas.take(&key, limit, *bytes, now);
            if !d.is_zero() {
                shard
                    .metrics
                    .throttle(&rule.name, kind.label(), d.min(MAX_THROTTLE));
            }
            worst = worst.max(d);
        }
    }
    worst
}

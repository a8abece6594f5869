//! Whether an upstream connection may serve another client after its own client is gone.
//!
//! Authentication in Kafka is per connection: a connection on which a client ran SaslHandshake /
//! SaslAuthenticate (KIP-43, KIP-152) carries that client's principal for the rest of its life,
//! and KIP-368 re-authentication keeps it so. Such a connection must never reach the pool, or the
//! next client of that broker on the shard would act as the first principal without presenting a
//! credential (and a client that does bring one fails its own handshake with
//! ILLEGAL_SASL_STATE, error 34).
//!
//! The rule is kept per session by [`Usage`], fed by both pumps:
//! - any SaslHandshake (api key 17) or SaslAuthenticate (api key 36) request the client sends
//!   marks the connection [`NotPooled::Sasl`], before the request goes upstream;
//! - a connection is pooled only once the broker has *answered* a request other than ApiVersions
//!   and SASL on it without any SASL exchange: a broker listener with SASL enabled closes a
//!   connection that sends anything else before authenticating, so such an answer proves the
//!   connection unauthenticated. A connection that only saw ApiVersions is closed
//!   ([`NotPooled::Unverified`]): on a SASL listener the broker's authenticator has moved past
//!   its first state and would refuse the next client's ApiVersions.
//!
//! Data plane, per session, `!Send`.

use std::cell::Cell;

pub use crate::metrics::NotPooled;

/// Whom an upstream connection speaks for: with the broker address, the key of the pool
/// ([`crate::upstream::pool::Pool`]). A pooled connection is only ever found under the credential
/// it carries.
///
/// Sluice authenticates no upstream connection itself yet, so the one credential is
/// [`Credential::Unauthenticated`]: a client's session attaches to its upstream connection before
/// the client authenticates, and a connection on which a client authenticated is never pooled.
/// Auth mediation (Sluice's own service account or per-principal credentials) adds variants.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Credential {
    /// No SASL exchange ran on the connection, and the broker answered a request on it.
    Unauthenticated,
}

/// Proof that a connection may serve another client, under [`Poolable::credential`]. Only
/// [`Usage::poolable`] makes one, and [`crate::upstream::pool::Pool::put`] takes nothing else:
/// a connection reaches the pool only through the rule of this module.
#[derive(Debug, PartialEq, Eq)]
pub struct Poolable {
    credential: Credential,
}

impl Poolable {
    /// The credential the connection carries.
    pub fn credential(&self) -> &Credential {
        &self.credential
    }
}

const API_KEY_SASL_HANDSHAKE: i16 = 17;
const API_KEY_API_VERSIONS: i16 = 18;
const API_KEY_SASL_AUTHENTICATE: i16 = 36;

/// What one client did on its upstream connection. See the module docs.
#[derive(Debug, Default)]
pub struct Usage {
    sasl: Cell<bool>,
    opaque: Cell<bool>,
    answered_unauthenticated: Cell<bool>,
}

impl Usage {
    /// The usage of a connection taken from the pool: already proven to carry no identity, so
    /// a client that only sends ApiVersions on it (a health check) does not make it unverified.
    pub fn resumed(proof: Poolable) -> Self {
        let Poolable { credential } = proof;
        match credential {
            Credential::Unauthenticated => Usage {
                sasl: Cell::new(false),
                opaque: Cell::new(false),
                answered_unauthenticated: Cell::new(true),
            },
        }
    }

    /// A request of `api_key` read from the client, called before it is forwarded; `known` is
    /// whether Sluice knows the api key and version (can find the request's body). A request
    /// Sluice cannot read could be anything, a legacy SASL packet included: the connection is
    /// no longer poolable.
    pub fn request(&self, api_key: i16, known: bool) {
        if matches!(api_key, API_KEY_SASL_HANDSHAKE | API_KEY_SASL_AUTHENTICATE) {
            self.sasl.set(true);
        }
        if !known {
            self.opaque.set(true);
        }
    }

    /// The broker's response to a request of `api_key` on this connection.
    pub fn answered(&self, api_key: i16) {
        if !matches!(
            api_key,
            API_KEY_SASL_HANDSHAKE | API_KEY_API_VERSIONS | API_KEY_SASL_AUTHENTICATE
        ) {
            self.answered_unauthenticated.set(true);
        }
    }

    /// Whether the connection may go back to the pool once its client has ended cleanly, and
    /// under which credential.
    ///
    /// # Errors
    /// [`NotPooled`] says why it must be closed instead.
    pub fn poolable(&self) -> Result<Poolable, NotPooled> {
        if self.sasl.get() {
            Err(NotPooled::Sasl)
        } else if self.opaque.get() || !self.answered_unauthenticated.get() {
            Err(NotPooled::Unverified)
        } else {
            Ok(Poolable {
                credential: Credential::Unauthenticated,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_traffic_is_poolable() {
        let u = Usage::default();
        u.request(18, true);
        u.answered(18);
        u.request(3, true);
        u.answered(3);
        assert_eq!(
            u.poolable().map(|p| p.credential().clone()),
            Ok(Credential::Unauthenticated)
        );
    }

    #[test]
    fn any_sasl_request_taints_for_good() {
        for key in [17, 36] {
            let u = Usage::default();
            u.request(18, true);
            u.answered(18);
            u.request(key, true);
            u.request(3, true);
            u.answered(3);
            assert_eq!(u.poolable(), Err(NotPooled::Sasl), "api key {key}");
        }
        // Even when the broker never answered the SASL request.
        let u = Usage::default();
        u.request(3, true);
        u.answered(3);
        u.request(17, true);
        assert_eq!(u.poolable(), Err(NotPooled::Sasl));
    }

    #[test]
    fn a_request_sluice_cannot_read_is_never_pooled() {
        let u = Usage::default();
        u.request(18, true);
        u.answered(18);
        u.request(3, true);
        u.answered(3);
        u.request(9999, false);
        assert_eq!(
            u.poolable().map(|p| p.credential().clone()),
            Err(NotPooled::Unverified)
        );
    }

    #[test]
    fn a_pooled_connection_keeps_its_proof_but_not_past_sasl() {
        let proven = || {
            let u = Usage::default();
            u.request(3, true);
            u.answered(3);
            u.poolable().expect("poolable")
        };
        // A health check that only asks ApiVersions on a pooled connection keeps it poolable.
        let u = Usage::resumed(proven());
        u.request(18, true);
        u.answered(18);
        assert!(u.poolable().is_ok());
        // SASL on it still closes it.
        let u = Usage::resumed(proven());
        u.request(17, true);
        assert_eq!(
            u.poolable().map(|p| p.credential().clone()),
            Err(NotPooled::Sasl)
        );
    }

    #[test]
    fn only_api_versions_or_nothing_is_unverified() {
        let u = Usage::default();
        assert_eq!(u.poolable(), Err(NotPooled::Unverified));
        u.request(18, true);
        u.answered(18);
        assert_eq!(u.poolable(), Err(NotPooled::Unverified));
        // A request sent but not answered proves nothing either.
        u.request(3, true);
        assert_eq!(u.poolable(), Err(NotPooled::Unverified));
        assert_eq!(NotPooled::Unverified.label(), "unverified");
        assert_eq!(NotPooled::Sasl.label(), "sasl");
    }
}

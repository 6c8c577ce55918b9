//! Sign-in state that is not a session: the failed-login throttle and the first-run setup
//! link. Both live in memory, behind small cheap-to-clone handles (std `Mutex`: nothing is
//! awaited while a lock is held). Losing them on restart is acceptable: a restart clears a
//! lockout (the attacker gained nothing but a restart), and a new setup link is logged at the
//! next start while there is still no agent.
//!
//! The HTTP side (forms, sessions, the `Agent` extractor) is in `http::auth`.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use subtle::ConstantTimeEq;

/// Failures allowed per username and per client address before a lockout.
pub const MAX_FAILURES: u32 = 5;
/// How long a lockout lasts, and the window failures are counted in.
pub const LOCKOUT: Duration = Duration::from_secs(15 * 60);
/// Above this many tracked keys, stale ones are dropped, so a flood of made-up usernames
/// cannot grow the map without bound.
const MAX_TRACKED: usize = 10_000;

#[derive(Clone, Debug, Default)]
pub struct LoginThrottle {
    inner: Arc<Mutex<HashMap<String, Failures>>>,
}

#[derive(Clone, Copy, Debug)]
struct Failures {
    count: u32,
    first_at: Instant,
}

impl Failures {
    fn stale(&self, now: Instant) -> bool {
        now.duration_since(self.first_at) >= LOCKOUT
    }
}

/// The keys a sign-in attempt is counted under: the account and the client address, so
/// neither guessing many passwords for one account nor one password across many accounts
/// gets far.
pub fn throttle_keys(username: &str, addr: &str) -> [String; 2] {
    [
        format!("user:{}", username.to_lowercase()),
        format!("addr:{addr}"),
    ]
}

impl LoginThrottle {
    /// Whether any key is locked out now.
    pub fn locked(&self, keys: &[String]) -> bool {
        let now = Instant::now();
        let map = self.inner.lock().expect("throttle lock");
        keys.iter().any(|k| {
            map.get(k)
                .is_some_and(|f| f.count >= MAX_FAILURES && !f.stale(now))
        })
    }

    pub fn failed(&self, keys: &[String]) {
        let now = Instant::now();
        let mut map = self.inner.lock().expect("throttle lock");
        if map.len() > MAX_TRACKED {
            map.retain(|_, f| !f.stale(now));
        }
        for k in keys {
            let entry = map.entry(k.clone()).or_insert(Failures {
                count: 0,
                first_at: now,
            });
            if entry.stale(now) {
                *entry = Failures {
                    count: 0,
                    first_at: now,
                };
            }
            entry.count += 1;
        }
    }

    /// A successful sign-in clears the account's count (not the address's: an address that
    /// guessed at many accounts stays suspect).
    pub fn succeeded(&self, username_key: &str) {
        self.inner
            .lock()
            .expect("throttle lock")
            .remove(username_key);
    }
}

/// The one-time setup link shown at first start. `None` once used (or when agents exist).
#[derive(Clone, Debug, Default)]
pub struct SetupLink {
    token: Arc<Mutex<Option<String>>>,
}

impl SetupLink {
    pub fn new(token: Option<String>) -> Self {
        Self {
            token: Arc::new(Mutex::new(token)),
        }
    }

    /// The pending token (for the start-up log line and tests).
    pub fn token(&self) -> Option<String> {
        self.token.lock().expect("setup lock").clone()
    }

    /// Whether `candidate` is the pending token (constant-time compare).
    pub fn matches(&self, candidate: &str) -> bool {
        self.token
            .lock()
            .expect("setup lock")
            .as_deref()
            .is_some_and(|t| bool::from(t.as_bytes().ct_eq(candidate.as_bytes())))
    }

    /// Uses the token up if `candidate` is it; only one caller ever gets `true`.
    pub fn take(&self, candidate: &str) -> bool {
        let mut token = self.token.lock().expect("setup lock");
        let ok = token
            .as_deref()
            .is_some_and(|t| bool::from(t.as_bytes().ct_eq(candidate.as_bytes())));
        if ok {
            *token = None;
        }
        ok
    }

    /// Puts a taken token back (creating the admin failed after all).
    pub fn restore(&self, candidate: String) {
        self.token
            .lock()
            .expect("setup lock")
            .get_or_insert(candidate);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_lock_the_account_and_the_address() {
        let t = LoginThrottle::default();
        let keys = throttle_keys("Amy", "10.0.0.1");
        for _ in 0..MAX_FAILURES - 1 {
            t.failed(&keys);
        }
        assert!(!t.locked(&keys));
        t.failed(&keys);
        assert!(t.locked(&keys));
        // Another address trying the same account (case-insensitively) is locked out too.
        assert!(t.locked(&throttle_keys("amy", "10.0.0.2")));
        // The same address trying another account is locked out too.
        assert!(t.locked(&throttle_keys("bob", "10.0.0.1")));
        assert!(!t.locked(&throttle_keys("bob", "10.0.0.2")));
    }

    #[test]
    fn the_setup_token_is_used_once() {
        let link = SetupLink::new(Some("abc".into()));
        assert!(!link.matches("abd"));
        assert!(link.matches("abc"));
        assert!(link.take("abc"));
        assert!(!link.take("abc"));
        assert!(!link.matches("abc"));
    }
}

//! Sessions: a token traded at the login page for a random session id in
//! an HttpOnly, Secure, SameSite=Strict cookie, and the per-session CSRF
//! token every form posts back.
//!
//! Must not touch: the tokens file (the API's `Tokens` decides who a token
//! is) or anything a page shows. Sessions live in memory: a restarted
//! daemon asks everyone to log in again.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use driftless_api::auth::Caller;
use rand::RngCore;

/// The session cookie's name.
pub const COOKIE: &str = "driftless_session";
/// The login form's double-submit cookie (before there is a session).
pub const LOGIN_COOKIE: &str = "driftless_login";
/// How long a session lasts without being used... and at all: it is not
/// extended, so a stolen cookie is good for this long at most.
pub const LIFETIME: Duration = Duration::from_secs(8 * 3600);
/// At most this many sessions at once; the oldest goes first.
const MAX_SESSIONS: usize = 10_000;

/// A logged-in browser.
#[derive(Clone, Debug)]
pub struct Session {
    /// Who logged in.
    pub caller: Caller,
    /// The token forms must carry.
    pub csrf: String,
    /// When it ends.
    pub expires: Instant,
}

/// Why a request has no session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Missing {
    /// No cookie, or one no session has.
    None,
    /// The session ended.
    Expired,
}

/// The sessions of this daemon.
#[derive(Debug, Default)]
pub struct Sessions {
    by_id: Mutex<HashMap<String, Session>>,
}

/// 32 random bytes, hex.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

impl Sessions {
    /// Starts a session for `caller`; its id.
    pub fn start(&self, caller: Caller) -> String {
        self.start_at(caller, Instant::now())
    }

    fn start_at(&self, caller: Caller, now: Instant) -> String {
        let id = random_token();
        let mut sessions = self.by_id.lock().unwrap_or_else(PoisonError::into_inner);
        sessions.retain(|_, s| s.expires > now);
        if sessions.len() >= MAX_SESSIONS
            && let Some(oldest) = sessions.iter().min_by_key(|(_, s)| s.expires).map(|(id, _)| id.clone())
        {
            sessions.remove(&oldest);
        }
        sessions.insert(id.clone(), Session { caller, csrf: random_token(), expires: now + LIFETIME });
        id
    }

    /// The session `id` names, if it is still good.
    pub fn get(&self, id: &str) -> Result<Session, Missing> {
        self.get_at(id, Instant::now())
    }

    fn get_at(&self, id: &str, now: Instant) -> Result<Session, Missing> {
        let mut sessions = self.by_id.lock().unwrap_or_else(PoisonError::into_inner);
        match sessions.get(id) {
            Some(session) if session.expires > now => Ok(session.clone()),
            Some(_) => {
                sessions.remove(id);
                Err(Missing::Expired)
            }
            None => Err(Missing::None),
        }
    }

    /// Ends the session `id`.
    pub fn end(&self, id: &str) {
        self.by_id.lock().unwrap_or_else(PoisonError::into_inner).remove(id);
    }

    /// Moves every session's end `by` earlier (tests of expiry).
    pub fn age_all(&self, by: Duration) {
        for session in self.by_id.lock().unwrap_or_else(PoisonError::into_inner).values_mut() {
            session.expires = session.expires.checked_sub(by).unwrap_or(session.expires);
        }
    }
}

/// A cookie's value from a `Cookie` header.
pub fn cookie<'h>(header: &'h str, name: &str) -> Option<&'h str> {
    header.split(';').filter_map(|pair| pair.trim().split_once('=')).find(|(n, _)| *n == name).map(|(_, v)| v)
}

/// `Set-Cookie` for a cookie that only this dashboard's pages send back,
/// never script, never over plain HTTP, never cross-site.
pub fn set_cookie(name: &str, value: &str, max_age: Duration) -> String {
    format!("{name}={value}; Path=/ui; Secure; HttpOnly; SameSite=Strict; Max-Age={}", max_age.as_secs())
}

/// Compares two tokens in time that does not depend on where they differ.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grace() -> Caller {
        Caller { user: "grace".into(), uid: "grace@example.invalid".into(), groups: vec![] }
    }

    #[test]
    fn a_session_lasts_its_lifetime_then_says_it_expired() {
        let sessions = Sessions::default();
        let now = Instant::now();
        let id = sessions.start_at(grace(), now);
        assert_eq!(sessions.get_at(&id, now + Duration::from_secs(60)).unwrap().caller.user, "grace");
        assert_eq!(sessions.get_at(&id, now + LIFETIME).unwrap_err(), Missing::Expired);
        assert_eq!(sessions.get_at(&id, now + LIFETIME).unwrap_err(), Missing::None, "and is forgotten");
        assert_eq!(sessions.get_at("not-a-session", now).unwrap_err(), Missing::None);
    }

    #[test]
    fn ids_and_csrf_tokens_are_random_and_distinct() {
        let sessions = Sessions::default();
        let (a, b) = (sessions.start(grace()), sessions.start(grace()));
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert_ne!(sessions.get(&a).unwrap().csrf, sessions.get(&b).unwrap().csrf);
    }

    #[test]
    fn cookies_are_read_by_name_and_set_safe() {
        assert_eq!(cookie("a=1; driftless_session=xyz; b=2", COOKIE), Some("xyz"));
        assert_eq!(cookie("a=1", COOKIE), None);
        let set = set_cookie(COOKIE, "xyz", LIFETIME);
        for flag in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/ui"] {
            assert!(set.contains(flag), "{set}");
        }
        assert!(same("abc", "abc") && !same("abc", "abd") && !same("abc", "ab"));
    }
}

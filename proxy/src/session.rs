//! Login sessions of the browser apps: `POST /session` with the caller's credentials (Basic,
//! Bearer or a client certificate) returns a random bearer token that stands for that caller
//! for `[limits] session-ttl-secs` (browsers cannot set headers on a WebSocket, so the apps send
//! it as `?token=`). `DELETE /session` ends it. Tokens are kept as SHA-256, like configured
//! ones; at most `[limits] max-sessions` live at once, and a caller starting more than
//! [`SESSIONS_PER_CALLER`] ends their oldest.

use crate::auth::{sha256, Identity};
use parking_lot::Mutex;
use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

/// Live sessions one caller may hold; a new one beyond ends their oldest.
pub const SESSIONS_PER_CALLER: usize = 16;

/// Why no session was issued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// `max-sessions` live already.
    #[error("too many sessions (max-sessions); try again later")]
    Full,
}

/// The live sessions.
#[derive(Debug)]
pub struct Sessions {
    ttl: Duration,
    max: usize,
    /// SHA-256 of the token -> (caller, expiry).
    live: Mutex<HashMap<[u8; 32], (Identity, Instant)>>,
}

impl Sessions {
    /// Sessions lasting `ttl`, at most `max` at once.
    pub fn new(ttl: Duration, max: usize) -> Self {
        Self { ttl, max, live: Mutex::new(HashMap::new()) }
    }

    /// A new session for `id`: (token, lifetime).
    pub fn issue(&self, id: &Identity) -> Result<(String, Duration), SessionError> {
        let now = Instant::now();
        let mut live = self.live.lock();
        live.retain(|_, (_, expiry)| *expiry > now);
        let mine: Vec<([u8; 32], Instant)> =
            live.iter().filter(|(_, (who, _))| who == id).map(|(k, (_, e))| (*k, *e)).collect();
        if mine.len() >= SESSIONS_PER_CALLER {
            if let Some((oldest, _)) = mine.iter().min_by_key(|(_, e)| *e) {
                live.remove(oldest);
            }
        }
        if live.len() >= self.max {
            return Err(SessionError::Full);
        }
        let token = hex::encode(rand::random::<[u8; 32]>());
        live.insert(sha256(token.as_bytes()), (id.clone(), now + self.ttl));
        Ok((token, self.ttl))
    }

    /// The caller of a live session `token`.
    pub fn lookup(&self, token: &str) -> Option<Identity> {
        let live = self.live.lock();
        let (id, expiry) = live.get(&sha256(token.as_bytes()))?;
        (*expiry > Instant::now()).then(|| id.clone())
    }

    /// Ends session `token`; whether it was live.
    pub fn end(&self, token: &str) -> bool {
        self.live.lock().remove(&sha256(token.as_bytes())).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(name: &str) -> Identity {
        Identity { name: name.into(), role: "viewer".into(), device: false }
    }

    #[test]
    fn sessions_expire_are_capped_and_end() {
        let s = Sessions::new(Duration::from_secs(60), 20);
        let (t, ttl) = s.issue(&id("ann")).unwrap();
        assert_eq!(ttl, Duration::from_secs(60));
        assert_eq!(s.lookup(&t), Some(id("ann")));
        assert_eq!(s.lookup("not-a-token"), None);
        assert!(s.end(&t));
        assert_eq!(s.lookup(&t), None);
        // a caller's 17th session ends their oldest
        let first = s.issue(&id("bob")).unwrap().0;
        for _ in 0..SESSIONS_PER_CALLER {
            s.issue(&id("bob")).unwrap();
        }
        assert_eq!(s.lookup(&first), None);
        // 16 live (bob) + 4 = 20: full
        for _ in 0..4 {
            s.issue(&id("cy")).unwrap();
        }
        assert_eq!(s.issue(&id("dee")), Err(SessionError::Full));
        let short = Sessions::new(Duration::ZERO, 1);
        let t = short.issue(&id("eve")).unwrap().0;
        assert_eq!(short.lookup(&t), None, "expired");
        assert!(short.issue(&id("eve")).is_ok(), "expired ones make room");
    }
}

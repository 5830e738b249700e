//! Bounded work before authentication: connection caps at accept, and password checks that are
//! limited in parallel and throttled after failures.
//!
//! A password check is argon2id (RFC 9106 defaults: 19 MiB of memory, tens of ms of CPU), so an
//! attacker's wrong-password CONNECTs or Basic requests would otherwise cost the proxy memory
//! and cores in proportion to their rate. Here:
//! - checks run on `[limits] auth-parallel` dedicated threads, `auth-queue` more may wait;
//!   beyond that the caller is told the server is busy ([`LoginRefusal::Busy`]). Dedicated
//!   threads also bound the memory: the allocator keeps a freed 19 MiB block in the arena of the
//!   thread that used it, so checks spread over tokio's blocking pool (up to 512 threads) would
//!   leave hundreds of MiB behind after a burst;
//! - each failure takes a token from the buckets of the user name and of the IP address
//!   (`auth-failures-per-minute`, GCRA); while either bucket is empty, attempts are refused
//!   before any check ([`LoginRefusal::Throttled`]), so a real device that is not under attack
//!   by name still connects while an address hammers the proxy;
//! - a check that succeeded is remembered (see [`crate::auth`]), so steady traffic never waits
//!   for a slot.

use crate::config::LimitsConfig;
use governor::{clock::Clock, DefaultKeyedRateLimiter, RateLimiter};
use parking_lot::Mutex;
use std::{
    collections::HashMap,
    hash::Hash,
    net::IpAddr,
    num::NonZeroU32,
    sync::Arc,
    time::{Duration, Instant},
};

/// Why a login was not even checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LoginRefusal {
    /// Too many recent failures for this user name or address.
    #[error("too many failed logins; retry in {} s", .retry_after.as_secs().max(1))]
    Throttled {
        /// When the bucket has a token again.
        retry_after: Duration,
    },
    /// Every password-check slot is busy and the queue is full.
    #[error("server busy: too many logins in progress")]
    Busy,
}

/// Keys kept by the failure buckets before stale ones are dropped.
const KEYS_BEFORE_CLEANUP: usize = 10_000;

/// A password check waiting for a worker.
type Job = Box<dyn FnOnce() + Send>;

/// Password-check workers and failure throttling (shared by MQTT and HTTP).
#[derive(Debug)]
pub struct LoginGuard {
    jobs: std::sync::mpsc::SyncSender<Job>,
    failures: DefaultKeyedRateLimiter<String>,
    /// Keys whose bucket is empty, until when.
    blocked: Mutex<HashMap<String, Instant>>,
}

impl LoginGuard {
    /// A guard with the limits of `limits`; starts `auth-parallel` worker threads, which end
    /// when the guard is dropped.
    pub fn new(limits: &LimitsConfig) -> Self {
        let per_minute = NonZeroU32::new(limits.auth_failures_per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
        // `auth-queue` jobs wait in the channel; each worker holds one more while it runs it
        let (jobs, queue) = std::sync::mpsc::sync_channel::<Job>(limits.auth_queue);
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..limits.auth_parallel.max(1) {
            let queue = queue.clone();
            let spawned =
                std::thread::Builder::new().name(format!("password-check-{i}")).spawn(move || loop {
                    let job = queue.lock().recv();
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "starting a password-check thread");
            }
        }
        Self {
            jobs,
            failures: RateLimiter::keyed(governor::Quota::per_minute(per_minute)),
            blocked: Mutex::new(HashMap::new()),
        }
    }

    fn keys(ip: IpAddr, user: &str) -> [String; 2] {
        [format!("ip:{ip}"), format!("user:{user}")]
    }

    /// Refuses at once when the user name or the address is throttled.
    pub fn admit(&self, ip: IpAddr, user: &str) -> Result<(), LoginRefusal> {
        let now = Instant::now();
        let blocked = self.blocked.lock();
        let until = Self::keys(ip, user).iter().filter_map(|k| blocked.get(k)).copied().max();
        match until {
            Some(until) if until > now => Err(LoginRefusal::Throttled { retry_after: until - now }),
            _ => Ok(()),
        }
    }

    /// Runs `check` on a password-check worker; `Busy` when the queue is full.
    pub async fn check<T: Send + 'static>(
        &self,
        check: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, LoginRefusal> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(check());
        });
        if self.jobs.try_send(job).is_err() {
            metrics::counter!("fogchain_proxy_login_refused_total", "reason" => "busy").increment(1);
            return Err(LoginRefusal::Busy);
        }
        rx.await.map_err(|_| LoginRefusal::Busy)
    }

    /// Counts a failed login against the user name and the address.
    pub fn failed(&self, ip: IpAddr, user: &str) {
        let clock = governor::clock::DefaultClock::default();
        let now = Instant::now();
        let mut blocked = self.blocked.lock();
        for key in Self::keys(ip, user) {
            if let Err(not_until) = self.failures.check_key(&key) {
                let wait = not_until.wait_time_from(clock.now());
                blocked.insert(key, now + wait);
            }
        }
        if blocked.len() > KEYS_BEFORE_CLEANUP {
            blocked.retain(|_, until| *until > now);
        }
        if self.failures.len() > KEYS_BEFORE_CLEANUP {
            self.failures.retain_recent();
        }
    }
}

/// Caps on things held open (connections, sessions, WebSockets): in total and per key (an IP
/// address, a device, a caller). Used for `max-connections` / `max-connections-per-ip` at every
/// listener, `sessions-per-device` at the MQTT front and `ws-total` / `ws-per-caller` at the
/// gateway.
#[derive(Debug)]
pub struct Caps<K: Hash + Eq + Clone> {
    max_total: usize,
    max_per_key: usize,
    /// What each cap is called in refusals and metrics: (total, per key).
    names: (&'static str, &'static str),
    open: Mutex<(usize, HashMap<K, usize>)>,
}

/// Something admitted under [`Caps`]; dropping it frees its place.
#[derive(Debug)]
pub struct Admitted<K: Hash + Eq + Clone> {
    caps: Arc<Caps<K>>,
    key: K,
}

impl<K: Hash + Eq + Clone> Caps<K> {
    /// At most `max_total` in all and `max_per_key` per key; `names` names the two caps.
    pub fn new(max_total: usize, max_per_key: usize, names: (&'static str, &'static str)) -> Arc<Self> {
        Arc::new(Self { max_total, max_per_key, names, open: Mutex::new((0, HashMap::new())) })
    }

    /// The connection caps of a listener (`max-connections`, `max-connections-per-ip`).
    pub fn connections(limits: &LimitsConfig) -> Arc<Caps<IpAddr>> {
        Caps::new(
            limits.max_connections,
            limits.max_connections_per_ip,
            ("max-connections", "max-connections-per-ip"),
        )
    }

    /// How many `key` holds now.
    pub fn held(&self, key: &K) -> usize {
        self.open.lock().1.get(key).copied().unwrap_or(0)
    }

    /// The caps of MQTT sessions per device (`sessions-per-device`); shared by the front and the
    /// gateway's `GET /things` (a device with a session is online).
    pub fn sessions(limits: &LimitsConfig) -> Arc<Caps<String>> {
        Caps::new(usize::MAX, limits.sessions_per_device, ("", "sessions-per-device"))
    }

    /// Admits one more for `key`, or names the cap it hits.
    pub fn admit(self: &Arc<Self>, key: K) -> Result<Admitted<K>, &'static str> {
        let mut open = self.open.lock();
        if open.0 >= self.max_total {
            return Err(self.names.0);
        }
        let held = open.1.entry(key.clone()).or_default();
        if *held >= self.max_per_key {
            return Err(self.names.1);
        }
        *held += 1;
        open.0 += 1;
        Ok(Admitted { caps: self.clone(), key })
    }
}

impl<K: Hash + Eq + Clone> Drop for Admitted<K> {
    fn drop(&mut self) {
        let mut open = self.caps.open.lock();
        open.0 = open.0.saturating_sub(1);
        if let Some(n) = open.1.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.1.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> LimitsConfig {
        LimitsConfig {
            auth_parallel: 1,
            auth_queue: 1,
            auth_failures_per_minute: 3,
            max_connections: 3,
            max_connections_per_ip: 2,
            ..Default::default()
        }
    }

    #[test]
    fn failures_throttle_the_name_and_the_address_not_others() {
        let guard = LoginGuard::new(&limits());
        let attacker: IpAddr = [10, 0, 0, 1].into();
        let device: IpAddr = [10, 0, 0, 2].into();
        for _ in 0..4 {
            assert!(guard.admit(attacker, "victim").is_ok());
            guard.failed(attacker, "victim");
        }
        let refusal = guard.admit(attacker, "someone-else").unwrap_err();
        assert!(
            matches!(refusal, LoginRefusal::Throttled { retry_after } if retry_after <= Duration::from_secs(20))
        );
        assert!(guard.admit(device, "victim").is_err(), "the attacked name is throttled everywhere");
        assert!(guard.admit(device, "sensor-1").is_ok(), "another device from another address is not");
    }

    #[tokio::test]
    async fn workers_and_queue_are_bounded() {
        // 1 worker, 1 waiting: a third check is refused
        let guard = Arc::new(LoginGuard::new(&limits()));
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let hold = Arc::new(std::sync::Mutex::new(hold));
        let blocking = |hold: Arc<std::sync::Mutex<std::sync::mpsc::Receiver<()>>>| {
            move || {
                let _ = hold.lock().map(|h| h.recv());
            }
        };
        let g = guard.clone();
        let first = tokio::spawn({
            let f = blocking(hold.clone());
            async move { g.check(f).await }
        });
        // wait until the worker took the first job, then fill the queue
        tokio::time::sleep(Duration::from_millis(200)).await;
        let g = guard.clone();
        let second = tokio::spawn({
            let f = blocking(hold.clone());
            async move { g.check(f).await }
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(guard.check(|| ()).await.unwrap_err(), LoginRefusal::Busy);
        release.send(()).unwrap();
        release.send(()).unwrap();
        assert!(first.await.unwrap().is_ok() && second.await.unwrap().is_ok());
    }

    #[test]
    fn connection_caps_per_ip_and_in_total() {
        let caps = Caps::<IpAddr>::connections(&limits());
        let (a, b): (IpAddr, IpAddr) = ([10, 0, 0, 1].into(), [10, 0, 0, 2].into());
        let a1 = caps.admit(a).unwrap();
        let _a2 = caps.admit(a).unwrap();
        assert_eq!(caps.admit(a).unwrap_err(), "max-connections-per-ip");
        let _b1 = caps.admit(b).unwrap();
        assert_eq!(caps.admit(b).unwrap_err(), "max-connections");
        drop(a1);
        assert!(caps.admit(b).is_ok());
    }
}

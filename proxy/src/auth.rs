//! Who is calling: bearer tokens, Basic / MQTT passwords, X.509 client certificates.
//!
//! Tokens are random 256-bit values and stored as SHA-256 (a slow hash adds nothing to a
//! high-entropy secret, and lets a token be looked up by its hash). Passwords are argon2id
//! (RFC 9106) PHC strings; a successful verification is remembered in memory as the SHA-256 of
//! the password, so a device reconnecting or an app polling does not pay argon2 every time.

use crate::{
    config::{ProxyConfig, RoleConfig},
    guard::{LoginGuard, LoginRefusal},
    session::Sessions,
};
use argon2::{
    password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString},
    Argon2,
};
use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use std::{collections::HashMap, net::IpAddr, sync::Arc};
use subtle::ConstantTimeEq;

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Client name or device id.
    pub name: String,
    /// Role name (a key of the roles table).
    pub role: String,
    /// Whether this is a device (MQTT topics `devices/{name}/...` are its own).
    pub device: bool,
}

/// The credential store built from the config.
#[derive(Debug)]
pub struct Authenticator {
    tokens: HashMap<[u8; 32], Identity>,
    passwords: HashMap<String, (String, Identity)>,
    certs: HashMap<String, Identity>,
    verified: Mutex<HashMap<String, [u8; 32]>>,
    roles: HashMap<String, RoleConfig>,
    guard: LoginGuard,
    /// Login sessions of the browser apps.
    pub sessions: Sessions,
}

impl Authenticator {
    /// Indexes the clients and devices of `config`.
    pub fn new(config: &ProxyConfig) -> crate::Result<Arc<Self>> {
        let mut tokens = HashMap::new();
        let mut passwords = HashMap::new();
        let mut certs = HashMap::new();
        for c in &config.clients {
            let id = Identity { name: c.name.clone(), role: c.role.clone(), device: false };
            if let Some(t) = &c.token_sha256 {
                let mut h = [0u8; 32];
                hex::decode_to_slice(t, &mut h).map_err(|e| {
                    crate::error::ProxyError::Credentials(format!("client {}: token-sha256: {e}", c.name))
                })?;
                tokens.insert(h, id.clone());
            }
            if let Some(p) = &c.password_hash {
                PasswordHash::new(p).map_err(|e| {
                    crate::error::ProxyError::Credentials(format!("client {}: password-hash: {e}", c.name))
                })?;
                passwords.insert(c.name.clone(), (p.clone(), id.clone()));
            }
            if let Some(cn) = &c.cert_cn {
                certs.insert(cn.clone(), id);
            }
        }
        for d in &config.devices {
            let id = Identity { name: d.id.clone(), role: d.role.clone(), device: true };
            if let Some(p) = &d.password_hash {
                PasswordHash::new(p).map_err(|e| {
                    crate::error::ProxyError::Credentials(format!("device {}: password-hash: {e}", d.id))
                })?;
                if passwords.insert(d.id.clone(), (p.clone(), id.clone())).is_some() {
                    return Err(crate::error::ProxyError::Credentials(format!(
                        "device {:?} has the name of a client",
                        d.id
                    )));
                }
            }
            certs.insert(d.id.clone(), id);
        }
        Ok(Arc::new(Self {
            tokens,
            passwords,
            certs,
            verified: Mutex::new(HashMap::new()),
            roles: config.roles().into_iter().collect(),
            guard: LoginGuard::new(&config.limits),
            sessions: Sessions::new(
                std::time::Duration::from_secs(config.limits.session_ttl_secs),
                config.limits.max_sessions,
            ),
        }))
    }

    /// The caller holding bearer `token`, if any.
    pub fn by_token(&self, token: &str) -> Option<Identity> {
        self.tokens.get(&sha256(token.as_bytes())).cloned().or_else(|| self.sessions.lookup(token))
    }

    /// The caller whose client certificate has common name `cn`.
    pub fn by_cert(&self, cn: &str) -> Option<Identity> {
        self.certs.get(cn).cloned()
    }

    /// Checks `username` / `password` (argon2id; CPU-heavy on a cache miss, call it from a
    /// blocking context, or [`Self::login`] from async code).
    pub fn by_password(&self, username: &str, password: &str) -> Option<Identity> {
        self.remembered(username, password).or_else(|| self.verify(username, password))
    }

    /// The caller, when `password` is the one last verified for `username` (no argon2).
    fn remembered(&self, username: &str, password: &str) -> Option<Identity> {
        let (_, id) = self.passwords.get(username)?;
        let known = *self.verified.lock().get(username)?;
        bool::from(known.ct_eq(&sha256(password.as_bytes()))).then(|| id.clone())
    }

    /// The argon2id check; remembers a success.
    fn verify(&self, username: &str, password: &str) -> Option<Identity> {
        let (hash, id) = self.passwords.get(username)?;
        let parsed = PasswordHash::new(hash).ok()?;
        Argon2::default().verify_password(password.as_bytes(), &parsed).ok()?;
        self.verified.lock().insert(username.to_string(), sha256(password.as_bytes()));
        Some(id.clone())
    }

    /// A password login from `ip`, bounded as [`crate::guard`] describes: a remembered
    /// password passes at once; otherwise a throttled `name` (the MQTT client id or the HTTP
    /// user name) or address is refused before any check, the argon2 check waits for a slot on
    /// one of the guard's worker threads, and a failure counts against `name` and `ip`.
    /// `Ok(None)`: wrong user name or password.
    pub async fn login(
        self: &Arc<Self>,
        name: &str,
        username: String,
        password: String,
        ip: IpAddr,
    ) -> Result<Option<Identity>, LoginRefusal> {
        if let Some(id) = self.remembered(&username, &password) {
            return Ok(Some(id));
        }
        self.guard.admit(ip, name)?;
        let identity = if self.passwords.contains_key(&username) {
            let this = self.clone();
            self.guard.check(move || this.verify(&username, &password)).await?
        } else {
            None
        };
        if identity.is_none() {
            self.guard.failed(ip, name);
        }
        Ok(identity)
    }

    /// The role `name`, if defined.
    pub fn role(&self, name: &str) -> Option<&RoleConfig> {
        self.roles.get(name)
    }

    /// Whether `id` may call JSON-RPC `method`.
    pub fn may_call(&self, id: &Identity, method: &str) -> bool {
        self.role(&id.role).is_some_and(|r| r.methods.iter().any(|m| m == "*" || m == method))
    }
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// An argon2id PHC string of `password` (random salt, RFC 9106 default parameters).
pub fn hash_password(password: &str) -> crate::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| crate::error::ProxyError::Credentials(format!("hashing password: {e}")))?
        .to_string())
}

/// A new random bearer token (`fgc_` + 64 hex digits) and its SHA-256 for the config.
pub fn new_token() -> (String, String) {
    let bytes: [u8; 32] = rand::random();
    let token = format!("fgc_{}", hex::encode(bytes));
    let hash = hex::encode(sha256(token.as_bytes()));
    (token, hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(password_hash: &str, token_hash: &str) -> ProxyConfig {
        let text = format!(
            r#"
data-dir = "/tmp/x"
[upstream]
nodes = ["http://127.0.0.1:1"]
[http]
listen = "127.0.0.1:0"
[chain]
chain-id = 1
gateway-key-file = "k"
sensor-registry = "0x0000000000000000000000000000000000000001"
[[clients]]
name = "app"
role = "admin"
token-sha256 = "{token_hash}"
[[devices]]
id = "sensor-1"
password-hash = "{password_hash}"
"#
        );
        toml::from_str(&text).unwrap()
    }

    #[test]
    fn passwords_tokens_and_certs() {
        let (token, token_hash) = new_token();
        let auth = Authenticator::new(&config(&hash_password("s3cret").unwrap(), &token_hash)).unwrap();
        let dev = auth.by_password("sensor-1", "s3cret").unwrap();
        assert!(dev.device && dev.role == "device");
        // cached path, then a wrong password after a cached success
        assert!(auth.by_password("sensor-1", "s3cret").is_some());
        assert!(auth.by_password("sensor-1", "wrong").is_none());
        assert!(auth.by_password("nobody", "s3cret").is_none());
        let app = auth.by_token(&token).unwrap();
        assert_eq!(app.role, "admin");
        assert!(auth.by_token("fgc_00").is_none());
        assert_eq!(auth.by_cert("sensor-1").unwrap().name, "sensor-1");
        assert!(auth.may_call(&dev, "eth_call") && !auth.may_call(&dev, "admin_peers"));
        assert!(auth.may_call(&app, "admin_peers"));
    }
}

//! Warehouse release (the sales-order paper's locker, with a signed challenge).
//!
//! The buyer's barcode is a QR code of an EIP-681 URI naming the sale contract, the chain and
//! the buyer: `ethereum:<sale>@<chainId>/verifyOwnership?address=<buyer>` (see
//! [`crate::barcode`]). A locker (role with `warehouse = true`) scans it and calls:
//! 1. `POST /warehouse/challenge {"barcode", "locker"?}` -> `{"challengeId", "message",
//!    "expiresAt"}`: a fresh one-time message naming sale, buyer, locker, chain and a random nonce;
//! 2. the buyer signs `message` with personal_sign (EIP-191) on their phone;
//! 3. `POST /warehouse/release {"challengeId", "signature"}`: the proxy recovers the signer, checks
//!    it is the barcode's buyer and that `verifyOwnership(buyer)` is true (eth_call), then sets the
//!    locker's shadow desired state `{"door": "open"}` (the locker gets the delta, opens and
//!    reports) and records the release on chain (SensorRegistry, device = locker, topic
//!    `warehouse/release`, payload `{"sale", "buyer", "locker", "challenge"}`).
//!
//! A copy of the barcode is useless without the buyer's key. With `barcode-only = true` (the
//! paper's behaviour, off by default) `release` takes `{"barcode", "locker"?}` and skips the
//! signature. An item is released once: a second release of the same sale is refused (409).
//! Errors: 400 bad barcode / wrong chain, 403 wrong signer or not the owner, 404 unknown
//! challenge, 409 already released, 410 challenge expired, 503 chain unreachable.

use crate::{auth::Identity, bridge::Bridge, chain::Chain, config::WarehouseConfig};
use alloy_primitives::{Address, Signature};
use alloy_sol_types::SolCall;
use fogchain_contracts::Sale;
use parking_lot::Mutex;
use serde_json::{json, Value};
use std::{
    collections::{HashMap, HashSet},
    path::PathBuf,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

/// A warehouse API error with its HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum WarehouseError {
    /// 400.
    #[error("{0}")]
    BadRequest(String),
    /// 403.
    #[error("{0}")]
    Forbidden(String),
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// 409.
    #[error("{0}")]
    Conflict(String),
    /// 410.
    #[error("{0}")]
    Gone(String),
    /// 503.
    #[error("{0}")]
    Unavailable(String),
}

impl WarehouseError {
    /// The HTTP status.
    pub fn status(&self) -> hyper::StatusCode {
        use hyper::StatusCode as S;
        match self {
            Self::BadRequest(_) => S::BAD_REQUEST,
            Self::Forbidden(_) => S::FORBIDDEN,
            Self::NotFound(_) => S::NOT_FOUND,
            Self::Conflict(_) => S::CONFLICT,
            Self::Gone(_) => S::GONE,
            Self::Unavailable(_) => S::SERVICE_UNAVAILABLE,
        }
    }
}

/// What a barcode says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Barcode {
    /// Chain id.
    pub chain_id: u64,
    /// Sale contract.
    pub sale: Address,
    /// Buyer.
    pub buyer: Address,
}

impl Barcode {
    /// The EIP-681 URI.
    pub fn uri(&self) -> String {
        format!("ethereum:{}@{}/verifyOwnership?address={}", self.sale, self.chain_id, self.buyer)
    }

    /// Parses the EIP-681 URI.
    pub fn parse(uri: &str) -> Result<Self, WarehouseError> {
        let bad = || {
            WarehouseError::BadRequest(format!("not a Fogchain sale barcode: {uri:?} (expected ethereum:<sale>@<chainId>/verifyOwnership?address=<buyer>)"))
        };
        let rest = uri.trim().strip_prefix("ethereum:").ok_or_else(bad)?;
        let (target, rest) = rest.split_once('@').ok_or_else(bad)?;
        let (chain, rest) = rest.split_once("/verifyOwnership?address=").ok_or_else(bad)?;
        Ok(Self {
            sale: target.parse().map_err(|_| bad())?,
            chain_id: chain.parse().map_err(|_| bad())?,
            buyer: rest.parse().map_err(|_| bad())?,
        })
    }
}

#[derive(Debug, Clone)]
struct Challenge {
    barcode: Barcode,
    locker: String,
    message: String,
    expires: u64,
}

/// The warehouse service.
pub struct Warehouse {
    config: WarehouseConfig,
    chain: Arc<Chain>,
    bridge: Arc<Bridge>,
    lockers: HashSet<String>,
    challenges: Mutex<HashMap<String, Challenge>>,
    released: Mutex<HashSet<Address>>,
    released_path: PathBuf,
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

impl Warehouse {
    /// The service; `lockers` are the device ids that may be opened; releases are remembered in
    /// `data_dir/releases.json`.
    pub fn new(
        config: WarehouseConfig,
        chain: Arc<Chain>,
        bridge: Arc<Bridge>,
        lockers: HashSet<String>,
        data_dir: &std::path::Path,
    ) -> crate::Result<Arc<Self>> {
        let released_path = data_dir.join("releases.json");
        let released: HashSet<Address> = match std::fs::read(&released_path) {
            Ok(b) => serde_json::from_slice(&b)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => HashSet::new(),
            Err(e) => return Err(e.into()),
        };
        Ok(Arc::new(Self {
            config,
            chain,
            bridge,
            lockers,
            challenges: Mutex::new(HashMap::new()),
            released: Mutex::new(released),
            released_path,
        }))
    }

    /// Handles `/warehouse/{action}` for `caller`.
    pub async fn handle(
        &self,
        action: &str,
        caller: &Identity,
        request: Value,
    ) -> Result<Value, WarehouseError> {
        let locker = match request.get("locker").and_then(Value::as_str) {
            Some(l) => l.to_string(),
            None if caller.device => caller.name.clone(),
            None => return Err(WarehouseError::BadRequest("locker is required".into())),
        };
        if caller.device && caller.name != locker {
            return Err(WarehouseError::Forbidden(format!("{} may only open itself", caller.name)));
        }
        if !self.lockers.contains(&locker) {
            return Err(WarehouseError::NotFound(format!("no locker {locker:?}")));
        }
        match action {
            "challenge" => self.challenge(&locker, &request),
            "release" if self.config.barcode_only && request.get("barcode").is_some() => {
                let barcode = self.barcode(&request)?;
                self.release(&locker, barcode, None).await
            }
            "release" => {
                let id = request.get("challengeId").and_then(Value::as_str).ok_or_else(|| {
                    WarehouseError::BadRequest("challengeId and signature are required".into())
                })?;
                let signature = request
                    .get("signature")
                    .and_then(Value::as_str)
                    .ok_or_else(|| WarehouseError::BadRequest("signature is required".into()))?;
                let challenge =
                    self.challenges.lock().remove(id).ok_or_else(|| {
                        WarehouseError::NotFound(format!("unknown or used challenge {id:?}"))
                    })?;
                if challenge.expires < now() {
                    return Err(WarehouseError::Gone("the challenge expired; scan the barcode again".into()));
                }
                if challenge.locker != locker {
                    return Err(WarehouseError::Forbidden(
                        "the challenge was issued to another locker".into(),
                    ));
                }
                let signature: Signature =
                    signature.parse().map_err(|e| WarehouseError::BadRequest(format!("signature: {e}")))?;
                let signer = signature
                    .recover_address_from_msg(challenge.message.as_bytes())
                    .map_err(|e| WarehouseError::Forbidden(format!("signature does not recover: {e}")))?;
                if signer != challenge.barcode.buyer {
                    return Err(WarehouseError::Forbidden(format!(
                        "the challenge was signed by {signer}, not by the buyer {}",
                        challenge.barcode.buyer
                    )));
                }
                self.release(&locker, challenge.barcode, Some(id.to_string())).await
            }
            other => Err(WarehouseError::NotFound(format!("no warehouse action {other:?}"))),
        }
    }

    fn barcode(&self, request: &Value) -> Result<Barcode, WarehouseError> {
        let text = request
            .get("barcode")
            .and_then(Value::as_str)
            .ok_or_else(|| WarehouseError::BadRequest("barcode is required".into()))?;
        let barcode = Barcode::parse(text)?;
        if barcode.chain_id != self.chain.chain_id {
            return Err(WarehouseError::BadRequest(format!(
                "the barcode is for chain {}, this warehouse is on chain {}",
                barcode.chain_id, self.chain.chain_id
            )));
        }
        Ok(barcode)
    }

    fn challenge(&self, locker: &str, request: &Value) -> Result<Value, WarehouseError> {
        let barcode = self.barcode(request)?;
        let nonce = hex::encode(rand::random::<[u8; 16]>());
        let expires = now() + self.config.challenge_ttl_secs;
        let message = format!(
            "Fogchain warehouse release\nSale: {}\nBuyer: {}\nLocker: {locker}\nChain: {}\nNonce: {nonce}\nExpires: {expires}",
            barcode.sale, barcode.buyer, barcode.chain_id
        );
        let mut challenges = self.challenges.lock();
        let t = now();
        challenges.retain(|_, c| c.expires >= t);
        challenges.insert(
            nonce.clone(),
            Challenge { barcode, locker: locker.to_string(), message: message.clone(), expires },
        );
        Ok(json!({"challengeId": nonce, "message": message, "expiresAt": expires}))
    }

    async fn release(
        &self,
        locker: &str,
        barcode: Barcode,
        challenge: Option<String>,
    ) -> Result<Value, WarehouseError> {
        if self.released.lock().contains(&barcode.sale) {
            return Err(WarehouseError::Conflict(format!("sale {} was already released", barcode.sale)));
        }
        let call = Sale::verifyOwnershipCall { who: barcode.buyer }.abi_encode();
        let out = tokio::time::timeout(Duration::from_secs(10), self.chain.call(barcode.sale, call.into()))
            .await
            .map_err(|_| WarehouseError::Unavailable("the chain did not answer".into()))?
            .map_err(|e| WarehouseError::Unavailable(format!("verifyOwnership: {e}")))?;
        let owns = Sale::verifyOwnershipCall::abi_decode_returns(&out).unwrap_or(false);
        if !owns {
            return Err(WarehouseError::Forbidden(format!(
                "{} does not own sale {} (verifyOwnership returned false)",
                barcode.buyer, barcode.sale
            )));
        }
        // Order: claim the sale in memory, journal the audit record (fsync), then persist the
        // claim. A crash in between leaves an audited release that may be repeated once, never a
        // release without its audit record.
        if !self.released.lock().insert(barcode.sale) {
            return Err(WarehouseError::Conflict(format!("sale {} was already released", barcode.sale)));
        }
        let payload =
            json!({"sale": barcode.sale, "buyer": barcode.buyer, "locker": locker, "challenge": challenge});
        let seq = match self.bridge.record_internal(
            locker,
            "warehouse/release",
            payload.to_string().into_bytes(),
        ) {
            Ok(seq) => seq,
            Err(e) => {
                self.released.lock().remove(&barcode.sale);
                return Err(WarehouseError::Unavailable(e.to_string()));
            }
        };
        {
            let released = self.released.lock();
            let tmp = self.released_path.with_extension("json.tmp");
            let store = std::fs::write(&tmp, serde_json::to_vec(&*released).expect("json"))
                .and_then(|_| std::fs::File::open(&tmp)?.sync_all())
                .and_then(|_| std::fs::rename(&tmp, &self.released_path));
            if let Err(e) = store {
                tracing::error!(error = %e, path = %self.released_path.display(), "storing the release");
            }
        }
        let desired =
            json!({"state": {"desired": {"door": "open"}}, "clientToken": format!("release-{seq}")});
        self.bridge.update_shadow(locker, desired.to_string().as_bytes()).await;
        Ok(
            json!({"released": true, "locker": locker, "sale": barcode.sale, "buyer": barcode.buyer, "auditSeq": seq}),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn barcode_round_trip() {
        let b =
            Barcode { chain_id: 1337, sale: Address::repeat_byte(0xaa), buyer: Address::repeat_byte(0xbb) };
        assert_eq!(Barcode::parse(&b.uri()).unwrap(), b);
        assert!(Barcode::parse("ethereum:0x12@1/pay").is_err());
    }
}

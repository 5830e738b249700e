//! Warehouse release (the sales-order paper's locker, with a signed challenge).
//!
//! The buyer's barcode is a QR code of an EIP-681 URI naming the sale contract, the chain and
//! the buyer: `ethereum:<sale>@<chainId>/verifyOwnership?address=<buyer>` (see
//! [`crate::barcode`]). Lockers are devices with the `locker` role; warehouse staff are clients
//! whose role has `warehouse = true` and name the locker in each request.
//! 0. `POST /warehouse/stock {"sale", "locker"?}`: the item of `sale` was put in the locker (the
//!    locker reports it, or staff do). Only a genuine sale is stocked: one created by the
//!    network's SaleFactory (`[warehouse] sale-factory`, `isSale(sale)`), or whose runtime code
//!    hash is in `sale-code-hashes`. Recorded on chain (topic `warehouse/stock`).
//! 1. `POST /warehouse/challenge {"barcode", "locker"?}` -> `{"challengeId", "message",
//!    "expiresAt"}`: a fresh one-time message naming sale, buyer, locker, chain and a random nonce;
//!    refused at once when the sale is not genuine, not stocked in this locker, or released;
//! 2. the buyer signs `message` with personal_sign (EIP-191) on their phone;
//! 3. `POST /warehouse/release {"challengeId", "signature"}`: the proxy recovers the signer, checks
//!    it is the barcode's buyer, checks the sale again (genuine, in this locker) and that
//!    `verifyOwnership(buyer)` is true (eth_call), then sets the locker's shadow desired state
//!    `{"door": "open"}` (the locker gets the delta, opens and reports) and records the release on
//!    chain (SensorRegistry, device = locker, topic `warehouse/release`, payload `{"sale",
//!    "buyer", "locker", "challenge"}`).
//!
//! A copy of the barcode is useless without the buyer's key, and a contract that answers `true`
//! to every call is not a sale. With `barcode-only = true` (the paper's behaviour, off by
//! default) `release` takes `{"barcode", "locker"?}` and skips the signature. An item is
//! released once: a second release of the same sale is refused (409).
//! Errors: 400 bad barcode / wrong chain, 403 wrong signer, not the owner, not a genuine sale or
//! not in this locker, 404 unknown challenge, 409 already released or stocked elsewhere, 410
//! challenge expired, 503 chain unreachable.

pub use crate::barcode::Barcode;
use crate::{auth::Identity, bridge::Bridge, chain::Chain, config::WarehouseConfig};
use alloy_primitives::{Address, Signature};
use alloy_sol_types::SolCall;
use fogchain_contracts::{Sale, SaleFactory};
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
    /// Sale -> the locker its item was put in.
    stocked: Mutex<HashMap<Address, String>>,
    stocked_path: PathBuf,
}

/// Open challenges one locker may hold; a new one beyond this replaces its oldest.
const CHALLENGES_PER_LOCKER: usize = 16;

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

impl Warehouse {
    /// The service; `lockers` are the device ids that may be opened; releases are remembered in
    /// `data_dir/releases.json`, which locker holds which sale in `data_dir/stock.json`.
    pub fn new(
        config: WarehouseConfig,
        chain: Arc<Chain>,
        bridge: Arc<Bridge>,
        lockers: HashSet<String>,
        data_dir: &std::path::Path,
    ) -> crate::Result<Arc<Self>> {
        let released_path = data_dir.join("releases.json");
        let stocked_path = data_dir.join("stock.json");
        Ok(Arc::new(Self {
            config,
            chain,
            bridge,
            lockers,
            challenges: Mutex::new(HashMap::new()),
            released: Mutex::new(load_json(&released_path)?),
            released_path,
            stocked: Mutex::new(load_json(&stocked_path)?),
            stocked_path,
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
            "stock" => {
                let sale = request
                    .get("sale")
                    .and_then(Value::as_str)
                    .and_then(|s| s.parse::<Address>().ok())
                    .ok_or_else(|| WarehouseError::BadRequest("sale (a 0x address) is required".into()))?;
                self.stock(&locker, sale).await
            }
            "challenge" => self.challenge(&locker, &request).await,
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

    async fn challenge(&self, locker: &str, request: &Value) -> Result<Value, WarehouseError> {
        let barcode = self.barcode(request)?;
        // Fail before the buyer signs anything the release would refuse.
        self.check_sale(locker, barcode.sale).await?;
        let nonce = hex::encode(rand::random::<[u8; 16]>());
        let expires = now() + self.config.challenge_ttl_secs;
        let message = format!(
            "Fogchain warehouse release\nSale: {}\nBuyer: {}\nLocker: {locker}\nChain: {}\nNonce: {nonce}\nExpires: {expires}",
            barcode.sale, barcode.buyer, barcode.chain_id
        );
        let mut challenges = self.challenges.lock();
        let t = now();
        challenges.retain(|_, c| c.expires >= t);
        let mut open: Vec<(u64, String)> = challenges
            .iter()
            .filter(|(_, c)| c.locker == locker)
            .map(|(id, c)| (c.expires, id.clone()))
            .collect();
        if open.len() >= CHALLENGES_PER_LOCKER {
            open.sort();
            for (_, id) in &open[..=open.len() - CHALLENGES_PER_LOCKER] {
                challenges.remove(id);
            }
        }
        challenges.insert(
            nonce.clone(),
            Challenge { barcode, locker: locker.to_string(), message: message.clone(), expires },
        );
        Ok(json!({"challengeId": nonce, "message": message, "expiresAt": expires}))
    }

    /// Whether `sale` is genuine: created by the network's SaleFactory (`isSale`), or its
    /// runtime code's keccak256 is one of `sale-code-hashes`. Anything else is refused, so that
    /// a contract answering `true` to every `verifyOwnership` opens nothing.
    async fn genuine(&self, sale: Address) -> Result<(), WarehouseError> {
        if let Some(factory) = self.config.sale_factory {
            let call = SaleFactory::isSaleCall::new((sale,)).abi_encode();
            let out = chain_read("SaleFactory.isSale", self.chain.call(factory, call.into())).await?;
            if SaleFactory::isSaleCall::abi_decode_returns(&out).unwrap_or(false) {
                return Ok(());
            }
        }
        if !self.config.sale_code_hashes.is_empty() {
            let hash = chain_read("eth_getCode", self.chain.code_hash(sale)).await?;
            if self.config.sale_code_hashes.contains(&hash) {
                return Ok(());
            }
        }
        Err(WarehouseError::Forbidden(format!(
            "{sale} is not a genuine sale: it was not created by the network's SaleFactory{}",
            if self.config.sale_code_hashes.is_empty() {
                ""
            } else {
                " and its code is not one the operator allows"
            }
        )))
    }

    /// A sale a locker may open for: genuine, not released, and stocked in that locker.
    async fn check_sale(&self, locker: &str, sale: Address) -> Result<(), WarehouseError> {
        if self.released.lock().contains(&sale) {
            return Err(WarehouseError::Conflict(format!("sale {sale} was already released")));
        }
        match self.stocked.lock().get(&sale) {
            Some(l) if l == locker => {}
            Some(l) => {
                return Err(WarehouseError::Forbidden(format!(
                    "the item of sale {sale} is in locker {l:?}, not in {locker:?}"
                )))
            }
            None => {
                return Err(WarehouseError::Forbidden(format!(
                    "the item of sale {sale} is not in any locker (POST /warehouse/stock first)"
                )))
            }
        }
        self.genuine(sale).await
    }

    /// `stock`: the item of `sale` was put in `locker` (the locker reports it, or warehouse
    /// staff do). Refused for a sale that is not genuine, released, or stocked elsewhere;
    /// recorded on chain as a `warehouse/stock` reading of the locker.
    async fn stock(&self, locker: &str, sale: Address) -> Result<Value, WarehouseError> {
        self.genuine(sale).await?;
        if self.released.lock().contains(&sale) {
            return Err(WarehouseError::Conflict(format!("sale {sale} was already released")));
        }
        {
            let mut stocked = self.stocked.lock();
            match stocked.get(&sale) {
                Some(l) if l == locker => {
                    return Ok(json!({"stocked": true, "sale": sale, "locker": locker}));
                }
                Some(l) => {
                    return Err(WarehouseError::Conflict(format!(
                        "the item of sale {sale} is in locker {l:?}"
                    )))
                }
                None => stocked.insert(sale, locker.to_string()),
            };
        }
        let payload = json!({"sale": sale, "locker": locker});
        let seq =
            match self.bridge.record_internal(locker, "warehouse/stock", payload.to_string().into_bytes()) {
                Ok(seq) => seq,
                Err(e) => {
                    self.stocked.lock().remove(&sale);
                    return Err(WarehouseError::Unavailable(e.to_string()));
                }
            };
        store_json(&self.stocked_path, &*self.stocked.lock());
        Ok(json!({"stocked": true, "sale": sale, "locker": locker, "auditSeq": seq}))
    }

    async fn release(
        &self,
        locker: &str,
        barcode: Barcode,
        challenge: Option<String>,
    ) -> Result<Value, WarehouseError> {
        self.check_sale(locker, barcode.sale).await?;
        let call = Sale::verifyOwnershipCall { who: barcode.buyer }.abi_encode();
        let out = chain_read("verifyOwnership", self.chain.call(barcode.sale, call.into())).await?;
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
        self.stocked.lock().remove(&barcode.sale);
        store_json(&self.released_path, &*self.released.lock());
        store_json(&self.stocked_path, &*self.stocked.lock());
        let desired =
            json!({"state": {"desired": {"door": "open"}}, "clientToken": format!("release-{seq}")});
        self.bridge.update_shadow(locker, desired.to_string().as_bytes()).await;
        Ok(
            json!({"released": true, "locker": locker, "sale": barcode.sale, "buyer": barcode.buyer, "auditSeq": seq}),
        )
    }
}

/// Waits at most 10 s for the chain read `what`; a failure is 503.
async fn chain_read<T>(
    what: &str,
    read: impl std::future::Future<Output = Result<T, crate::upstream::UpstreamError>>,
) -> Result<T, WarehouseError> {
    match tokio::time::timeout(Duration::from_secs(10), read).await {
        Ok(r) => r.map_err(|e| WarehouseError::Unavailable(format!("{what}: {e}"))),
        Err(_) => Err(WarehouseError::Unavailable(format!("{what}: the chain did not answer within 10 s"))),
    }
}

fn load_json<T: serde::de::DeserializeOwned + Default>(path: &std::path::Path) -> crate::Result<T> {
    match std::fs::read(path) {
        Ok(b) => Ok(serde_json::from_slice(&b)?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(T::default()),
        Err(e) => Err(e.into()),
    }
}

/// Writes `value` to `path` atomically (tmp + fsync + rename); a failure is logged (the audit
/// record on chain is the authority).
fn store_json<T: serde::Serialize>(path: &std::path::Path, value: &T) {
    let tmp = path.with_extension("json.tmp");
    let store = serde_json::to_vec(value)
        .map_err(std::io::Error::other)
        .and_then(|bytes| std::fs::write(&tmp, bytes))
        .and_then(|_| std::fs::File::open(&tmp)?.sync_all())
        .and_then(|_| std::fs::rename(&tmp, path));
    if let Err(e) = store {
        tracing::error!(error = %e, path = %path.display(), "storing warehouse state");
    }
}

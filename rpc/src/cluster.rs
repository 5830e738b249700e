//! `raft_` and `admin_` namespaces (GoQuorum's method names and shapes) over the node's
//! [`Consensus`].
//!
//! Reading the Raft state (`raft_leader`, `raft_role`, `raft_cluster`) is open. Membership
//! changes and every `admin_` method need the admin bearer token (`auth.rs`).

use crate::{auth::require_admin, RpcError};
use alloy_primitives::{Address, B256};
use fogchain_consensus::{Consensus, ConsensusError, Role};
use fogchain_genesis::ChainSpec;
use jsonrpsee::{
    core::{async_trait, RpcResult},
    proc_macros::rpc,
    types::ErrorObjectOwned,
    Extensions,
};
use serde_json::{json, Value};
use std::sync::Arc;
use tokio::sync::watch;

fn failed(e: ConsensusError) -> ErrorObjectOwned {
    RpcError::Server(e.to_string()).into()
}

/// GoQuorum's name of a role: "minter" (leader), "verifier" (voter), "learner", or "" (none yet).
fn goquorum_role(role: Role) -> &'static str {
    match role {
        Role::Leader => "minter",
        Role::Follower => "verifier",
        Role::Learner => "learner",
        Role::Candidate | Role::Outsider => "",
    }
}

/// `raft_` namespace (GoQuorum).
#[rpc(server, namespace = "raft")]
pub trait RaftApi {
    /// PeerId of the leader.
    #[method(name = "leader")]
    fn leader(&self) -> RpcResult<String>;
    /// "minter", "verifier", "learner" or "".
    #[method(name = "role")]
    fn role(&self) -> RpcResult<String>;
    /// The members.
    #[method(name = "cluster")]
    fn cluster(&self) -> RpcResult<Value>;
    /// Adds a voter; returns its Raft id. Needs the admin token.
    #[method(name = "addPeer", with_extensions)]
    async fn add_peer(&self, addr: String) -> RpcResult<u64>;
    /// Adds a learner; returns its Raft id. Needs the admin token.
    #[method(name = "addLearner", with_extensions)]
    async fn add_learner(&self, addr: String) -> RpcResult<u64>;
    /// Promotes a learner. Needs the admin token.
    #[method(name = "promoteToPeer", with_extensions)]
    async fn promote_to_peer(&self, raft_id: u64) -> RpcResult<bool>;
    /// Removes a member. Needs the admin token.
    #[method(name = "removePeer", with_extensions)]
    async fn remove_peer(&self, raft_id: u64) -> RpcResult<()>;
}

/// `admin_` namespace (geth shapes). Needs the admin token.
#[rpc(server, namespace = "admin")]
pub trait AdminApi {
    /// This node: id, name, enode-like p2p address, listen address, protocols.
    #[method(name = "nodeInfo", with_extensions)]
    fn node_info(&self) -> RpcResult<Value>;
    /// Connected members.
    #[method(name = "peers", with_extensions)]
    fn peers(&self) -> RpcResult<Value>;
}

/// Implementation of `raft_` and `admin_` (and `net_peerCount`'s count).
#[derive(Clone)]
pub struct ClusterRpc {
    consensus: Arc<Consensus>,
    spec: Arc<ChainSpec>,
    heads: watch::Receiver<(u64, B256)>,
    sealer: Address,
}

impl std::fmt::Debug for ClusterRpc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterRpc").finish()
    }
}

impl ClusterRpc {
    /// Over the node's consensus; `heads` is the applied head (number, hash), `sealer` this
    /// node's block-sealing address.
    pub fn new(
        consensus: Arc<Consensus>,
        spec: Arc<ChainSpec>,
        heads: watch::Receiver<(u64, B256)>,
        sealer: Address,
    ) -> Self {
        Self { consensus, spec, heads, sealer }
    }

    /// The node's consensus.
    pub fn consensus(&self) -> Arc<Consensus> {
        self.consensus.clone()
    }

    /// Connected members.
    pub fn peer_count(&self) -> usize {
        self.consensus.peers().len()
    }

    fn leader_peer_id(&self) -> Option<String> {
        let status = self.consensus.status();
        self.consensus.directory().members.get(&status.leader_id).map(|m| m.peer_id.clone())
    }

    fn member_role(&self, raft_id: u64) -> &'static str {
        let status = self.consensus.status();
        if status.leader_id == raft_id {
            "minter"
        } else if status.learners.contains(&raft_id) {
            "learner"
        } else if status.voters.contains(&raft_id) {
            "verifier"
        } else {
            ""
        }
    }

    /// `raft_cluster`: `[{raftId, nodeId, p2p, address, role, nodeActive}]`.
    fn members(&self) -> Value {
        let status = self.consensus.status();
        let connected: Vec<String> = self.consensus.peers().into_iter().map(|p| p.peer_id).collect();
        let directory = self.consensus.directory();
        let members: Vec<Value> = directory
            .current()
            .map(|m| {
                json!({
                    "raftId": m.raft_id,
                    "nodeId": m.peer_id,
                    "p2p": m.p2p,
                    "address": m.address,
                    "role": self.member_role(m.raft_id),
                    "nodeActive": m.raft_id == status.id || connected.contains(&m.peer_id),
                })
            })
            .collect();
        Value::Array(members)
    }

    /// `admin_nodeInfo`.
    fn node_info_json(&self) -> Value {
        let status = self.consensus.status();
        let peer_id = self.consensus.peer_id();
        let listen = self.consensus.listen_addrs();
        let (head_number, head_hash) = *self.heads.borrow();
        json!({
            "id": peer_id,
            "name": crate::client_version(),
            "enode": listen.first().map(|a| format!("{a}/p2p/{peer_id}")),
            "listenAddr": listen,
            "address": self.sealer,
            "protocols": {
                "eth": {
                    "network": self.spec.chain_id(),
                    "genesis": self.spec.genesis_hash,
                    "head": head_hash,
                    "number": head_number,
                },
                "raft": {
                    "raftId": status.id,
                    "role": goquorum_role(status.role),
                    "leader": status.leader_id,
                    "term": status.term,
                    "commitIndex": status.commit,
                    "appliedIndex": status.applied,
                    "firstIndex": status.first_index,
                }
            }
        })
    }

    /// `admin_peers`.
    fn peers_json(&self) -> Value {
        let peers: Vec<Value> = self
            .consensus
            .peers()
            .into_iter()
            .map(|p| {
                json!({
                    "id": p.peer_id,
                    "network": { "remoteAddress": p.remote_addr, "inbound": !p.outbound },
                    "protocols": { "raft": { "raftId": p.raft_id } },
                })
            })
            .collect();
        Value::Array(peers)
    }
}

#[async_trait]
impl RaftApiServer for ClusterRpc {
    fn leader(&self) -> RpcResult<String> {
        self.leader_peer_id().ok_or_else(|| RpcError::Server("no leader is currently elected".into()).into())
    }
    fn role(&self) -> RpcResult<String> {
        Ok(goquorum_role(self.consensus.status().role).to_string())
    }
    fn cluster(&self) -> RpcResult<Value> {
        Ok(self.members())
    }
    async fn add_peer(&self, ext: &Extensions, addr: String) -> RpcResult<u64> {
        require_admin(ext)?;
        self.consensus.add_peer(&addr, false).await.map_err(failed)
    }
    async fn add_learner(&self, ext: &Extensions, addr: String) -> RpcResult<u64> {
        require_admin(ext)?;
        self.consensus.add_peer(&addr, true).await.map_err(failed)
    }
    async fn promote_to_peer(&self, ext: &Extensions, raft_id: u64) -> RpcResult<bool> {
        require_admin(ext)?;
        self.consensus.promote(raft_id).await.map_err(failed)?;
        Ok(true)
    }
    async fn remove_peer(&self, ext: &Extensions, raft_id: u64) -> RpcResult<()> {
        require_admin(ext)?;
        self.consensus.remove_peer(raft_id).await.map_err(failed)
    }
}

impl AdminApiServer for ClusterRpc {
    fn node_info(&self, ext: &Extensions) -> RpcResult<Value> {
        require_admin(ext)?;
        Ok(self.node_info_json())
    }
    fn peers(&self, ext: &Extensions) -> RpcResult<Value> {
        require_admin(ext)?;
        Ok(self.peers_json())
    }
}

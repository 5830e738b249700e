//! The `raft_` / `admin_` RPC view of this node's consensus (GoQuorum's shapes).

use crate::chain::Chain;
use fogchain_consensus::{Consensus, Role};
use fogchain_rpc::ClusterApi;
use jsonrpsee::core::async_trait;
use serde_json::{json, Value};
use std::sync::Arc;

/// [`ClusterApi`] over the node's [`Consensus`].
pub struct ClusterView {
    pub(crate) consensus: Arc<Consensus>,
    pub(crate) chain: Arc<Chain>,
    pub(crate) sealer: alloy_primitives::Address,
}

impl ClusterView {
    fn goquorum_role(&self, raft_id: u64) -> &'static str {
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
}

#[async_trait]
impl ClusterApi for ClusterView {
    fn leader(&self) -> Result<String, String> {
        let status = self.consensus.status();
        self.consensus
            .directory()
            .members
            .get(&status.leader_id)
            .map(|m| m.peer_id.clone())
            .ok_or_else(|| "no leader is currently elected".to_string())
    }

    fn role(&self) -> String {
        let status = self.consensus.status();
        match status.role {
            Role::Leader => "minter",
            Role::Follower => "verifier",
            Role::Learner => "learner",
            Role::Candidate | Role::Outsider => "",
        }
        .to_string()
    }

    fn cluster(&self) -> Value {
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
                    "role": self.goquorum_role(m.raft_id),
                    "nodeActive": m.raft_id == status.id || connected.contains(&m.peer_id),
                })
            })
            .collect();
        Value::Array(members)
    }

    async fn add_peer(&self, addr: String, learner: bool) -> Result<u64, String> {
        self.consensus.add_peer(&addr, learner).await.map_err(|e| e.to_string())
    }

    async fn promote(&self, raft_id: u64) -> Result<(), String> {
        self.consensus.promote(raft_id).await.map_err(|e| e.to_string())
    }

    async fn remove_peer(&self, raft_id: u64) -> Result<(), String> {
        self.consensus.remove_peer(raft_id).await.map_err(|e| e.to_string())
    }

    fn node_info(&self) -> Value {
        let status = self.consensus.status();
        let peer_id = self.consensus.peer_id();
        let listen = self.consensus.listen_addrs();
        let (head_number, head_hash) = self.chain.head();
        json!({
            "id": peer_id,
            "name": fogchain_rpc::client_version(),
            "enode": listen.first().map(|a| format!("{a}/p2p/{peer_id}")),
            "listenAddr": listen,
            "address": self.sealer,
            "protocols": {
                "eth": {
                    "network": self.chain.spec().chain_id(),
                    "genesis": self.chain.spec().genesis_hash,
                    "head": head_hash,
                    "number": head_number,
                },
                "raft": {
                    "raftId": status.id,
                    "role": self.role(),
                    "leader": status.leader_id,
                    "term": status.term,
                    "commitIndex": status.commit,
                    "appliedIndex": status.applied,
                    "firstIndex": status.first_index,
                }
            }
        })
    }

    fn peers(&self) -> Value {
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

    fn peer_count(&self) -> usize {
        self.consensus.peers().len()
    }
}

//! The membership directory: who may connect, where to dial them, and who may seal blocks.
//!
//! It starts as the genesis `fogchain.members` and changes only through applied Raft
//! configuration changes, whose context carries the new member's [`Member`] record; it travels
//! inside Raft snapshots so a node that slept through a change still learns it.

use crate::identity::{peer_address, split_peer_addr, IdentityError};
use alloy_primitives::Address;
use fogchain_genesis::Member;
use libp2p::{Multiaddr, PeerId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Members by Raft id, plus the ids removed from the cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Directory {
    /// Every member ever added, by Raft id.
    pub members: BTreeMap<u64, Member>,
    /// Raft ids removed by a configuration change (they may not connect any more).
    pub removed: BTreeSet<u64>,
}

impl Directory {
    /// The directory of a network's initial members.
    pub fn from_genesis(members: &[Member]) -> Self {
        Self { members: members.iter().map(|m| (m.raft_id, m.clone())).collect(), removed: BTreeSet::new() }
    }

    /// Current (not removed) members.
    pub fn current(&self) -> impl Iterator<Item = &Member> {
        self.members.values().filter(|m| !self.removed.contains(&m.raft_id))
    }

    /// The PeerId of member `raft_id`, if it is current.
    pub fn peer(&self, raft_id: u64) -> Option<PeerId> {
        if self.removed.contains(&raft_id) {
            return None;
        }
        self.members.get(&raft_id).and_then(|m| m.peer_id.parse().ok())
    }

    /// The Raft id of a current member's PeerId.
    pub fn raft_id(&self, peer: &PeerId) -> Option<u64> {
        let text = peer.to_string();
        self.current().find(|m| m.peer_id == text).map(|m| m.raft_id)
    }

    /// Dial address of member `raft_id`.
    pub fn dial_addr(&self, raft_id: u64) -> Option<Multiaddr> {
        self.members.get(&raft_id).and_then(|m| m.p2p.parse().ok())
    }

    /// Addresses that may seal blocks: every member ever added (a block sealed by a member that
    /// was later removed stays valid history).
    pub fn sealers(&self) -> BTreeSet<Address> {
        self.members.values().map(|m| m.address).collect()
    }

    /// The next free Raft id.
    pub fn next_id(&self) -> u64 {
        self.members.keys().next_back().map_or(1, |id| id + 1)
    }
}

/// The member record of a node at `addr` (`/ip4/HOST/tcp/PORT/p2p/PEERID`) with Raft id
/// `raft_id`: its sealing address comes from the public key inside the PeerId.
pub fn member_from_addr(raft_id: u64, addr: &str) -> Result<Member, IdentityError> {
    let (dial, peer) = split_peer_addr(addr)?;
    Ok(Member { raft_id, address: peer_address(&peer)?, peer_id: peer.to_string(), p2p: dial.to_string() })
}

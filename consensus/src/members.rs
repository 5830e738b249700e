//! The membership directory: who may connect, where to dial them, and who may seal blocks.
//!
//! It starts as the genesis `fogchain.members` and changes only through applied Raft
//! configuration changes, whose context carries the new member's [`Member`] record; it travels
//! inside Raft snapshots so a node that slept through a change still learns it.

use crate::identity::{peer_address, split_peer_addr, IdentityError};
use fogchain_genesis::{Member, Sealers, Tenure};
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
    /// The block heights each member may seal, by Raft id (see `fogchain_genesis::Sealers`).
    /// A member without an entry (a directory recorded before tenures existed) may seal any.
    #[serde(default)]
    pub tenures: BTreeMap<u64, Vec<Tenure>>,
}

impl Directory {
    /// The directory of a network's initial members.
    pub fn from_genesis(members: &[Member]) -> Self {
        Self {
            members: members.iter().map(|m| (m.raft_id, m.clone())).collect(),
            removed: BTreeSet::new(),
            tenures: members.iter().map(|m| (m.raft_id, vec![Tenure::starting_after(0)])).collect(),
        }
    }

    /// Applies the addition of `raft_id` (with its record, when the change carried one) at a
    /// head of `head`: it may seal from the next block on. Adding a current member (a learner
    /// promoted to voter) keeps its tenure.
    pub fn add(&mut self, raft_id: u64, member: Option<Member>, head: u64) {
        if let Some(member) = member.filter(|m| m.raft_id == raft_id) {
            self.members.insert(raft_id, member);
        }
        self.removed.remove(&raft_id);
        let tenures = self.tenures.entry(raft_id).or_default();
        if tenures.last().is_none_or(|t| t.until.is_some()) {
            tenures.push(Tenure::starting_after(head));
        }
    }

    /// Applies the removal of `raft_id` at a head of `head`: it seals nothing after that block.
    pub fn remove(&mut self, raft_id: u64, head: u64) {
        self.removed.insert(raft_id);
        if let Some(open) = self.tenures.get_mut(&raft_id).and_then(|t| t.last_mut()) {
            if open.until.is_none() {
                open.until = Some(head.max(open.from.saturating_sub(1)));
            }
        }
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

    /// Who may seal which block: every member ever added, for the heights of its tenures (a
    /// block sealed by a member that was later removed stays valid history).
    pub fn sealers(&self) -> Sealers {
        Sealers::new(self.members.values().flat_map(|m| {
            let tenures = self.tenures.get(&m.raft_id).map_or(&[Tenure { from: 0, until: None }][..], |t| t);
            tenures.iter().map(|t| (m.address, *t)).collect::<Vec<_>>()
        }))
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

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::Address;

    fn member(raft_id: u64) -> Member {
        Member {
            raft_id,
            address: Address::repeat_byte(raft_id as u8),
            peer_id: String::new(),
            p2p: String::new(),
        }
    }

    #[test]
    fn tenures_follow_configuration_changes_in_block_heights() {
        let mut directory = Directory::from_genesis(&[member(1), member(2)]);
        directory.add(3, Some(member(3)), 10); // as a learner at head 10
        directory.add(3, None, 15); // promoted: the tenure goes on
        directory.remove(1, 20);
        directory.remove(3, 20);
        directory.add(3, Some(member(3)), 30); // back again
        let sealers = directory.sealers();
        let (a1, a3) = (Address::repeat_byte(1), Address::repeat_byte(3));
        assert!(sealers.may_seal(a1, 1) && sealers.may_seal(a1, 20) && !sealers.may_seal(a1, 21));
        assert!(!sealers.may_seal(a3, 10) && sealers.may_seal(a3, 11) && sealers.may_seal(a3, 20));
        assert!(!sealers.may_seal(a3, 25) && sealers.may_seal(a3, 31));
        assert_eq!(directory.current().map(|m| m.raft_id).collect::<Vec<_>>(), vec![2, 3]);
        // A directory recorded before tenures existed lets its members seal any block.
        let legacy: Directory =
            serde_json::from_value(serde_json::json!({ "members": { "1": member(1) }, "removed": [] }))
                .unwrap();
        assert!(legacy.sealers().may_seal(a1, 1_000_000));
    }
}

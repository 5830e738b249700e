//! Who may seal which block: each member's tenure, in block heights.
//!
//! A member may seal the blocks minted while it belonged to the network: from the block after
//! the one at which its addition was applied (genesis members: from block 1) to the block at
//! which its removal was applied. Every node records the same tenures (configuration changes
//! are applied in log order between the same blocks) and checks a block's seal against the
//! tenures covering its height, on the Raft path and on block sync alike; so a removed
//! member's key, even stolen, cannot produce blocks that a syncing node accepts after the
//! removal.

use crate::Member;
use alloy_primitives::Address;
use serde::{Deserialize, Serialize};

/// The block heights `[from, until]` a member may seal (`until`: `None` while it is a member).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tenure {
    /// First block it may seal.
    pub from: u64,
    /// Last block it may seal, once removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<u64>,
}

impl Tenure {
    /// The tenure of a member added when the head was `head`: from the next block on.
    pub fn starting_after(head: u64) -> Self {
        Self { from: head.saturating_add(1), until: None }
    }

    /// Whether block `number` falls in it.
    pub fn covers(&self, number: u64) -> bool {
        number >= self.from && self.until.is_none_or(|until| number <= until)
    }
}

/// The sealing addresses with their tenures.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sealers {
    tenures: Vec<(Address, Tenure)>,
}

impl Sealers {
    /// From (address, tenure) pairs; an address may have several tenures.
    pub fn new(tenures: impl IntoIterator<Item = (Address, Tenure)>) -> Self {
        Self { tenures: tenures.into_iter().collect() }
    }

    /// The genesis members, each from block 1 on.
    pub fn from_genesis(members: &[Member]) -> Self {
        Self::new(members.iter().map(|m| (m.address, Tenure::starting_after(0))))
    }

    /// No sealer listed (a network without members checks no seal owner).
    pub fn is_empty(&self) -> bool {
        self.tenures.is_empty()
    }

    /// Whether `address` may seal block `number`.
    pub fn may_seal(&self, address: Address, number: u64) -> bool {
        self.tenures.iter().any(|(a, tenure)| *a == address && tenure.covers(number))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_seals_only_the_blocks_of_its_tenure() {
        let (a, b) = (Address::repeat_byte(1), Address::repeat_byte(2));
        let sealers = Sealers::new([
            (a, Tenure { from: 1, until: Some(10) }),
            (b, Tenure::starting_after(5)),
            (a, Tenure::starting_after(20)),
        ]);
        assert!(!sealers.may_seal(a, 0));
        assert!(sealers.may_seal(a, 1) && sealers.may_seal(a, 10));
        assert!(!sealers.may_seal(a, 11) && !sealers.may_seal(a, 20));
        assert!(sealers.may_seal(a, 21));
        assert!(!sealers.may_seal(b, 5) && sealers.may_seal(b, 6) && sealers.may_seal(b, u64::MAX));
        assert!(!sealers.may_seal(Address::repeat_byte(3), 7));
    }
}

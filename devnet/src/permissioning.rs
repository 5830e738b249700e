//! Account permissioning in a new network's genesis: the `AccountPermissions` contract at
//! [`ACCOUNT_PERMISSIONS`], with its organisations, accounts and admins set up through the same
//! M-of-N proposals every later change goes through (see docs/permissioning.md).

use crate::DevnetError;
use alloy_genesis::GenesisAccount;
use alloy_primitives::{Address, B256};
use alloy_sol_types::SolCall;
use fogchain_contracts::AccountPermissions as Contract;
use fogchain_evm::SetupTx;
pub use fogchain_evm::{roles, ACCOUNT_PERMISSIONS};

/// Keyless account that runs the contract's constructor and setup proposals, then hands the
/// contract to [`PermissionsGenesis::admins`] and leaves.
const SETUP_ADMIN: Address = alloy_primitives::address!("0xF0C0000000000000000000000000000000000000");
/// Most actions in one proposal (`AccountPermissions.MAX_ACTIONS`).
const MAX_ACTIONS: usize = 64;
/// Most admins: the handover proposal adds each, sets the threshold and removes the setup admin
/// in at most [`MAX_ACTIONS`] actions.
const MAX_ADMINS: usize = MAX_ACTIONS - 2;

/// One organisation and its accounts in genesis.
#[derive(Debug, Clone)]
pub struct GenesisOrganisation {
    /// Id (non-zero).
    pub id: u64,
    /// Human-readable name.
    pub name: String,
    /// Accounts and their role bits ([`roles::TRANSACT`], [`roles::DEPLOY`]).
    pub accounts: Vec<(Address, u8)>,
}

/// Who governs the contract after genesis and who may transact from block 1.
#[derive(Debug, Clone)]
pub struct PermissionsGenesis {
    /// The admins (1 to 62). They should also be accounts of an organisation, to send votes.
    pub admins: Vec<Address>,
    /// Approvals a change needs (1 to the number of admins).
    pub threshold: usize,
    /// Organisations with their accounts, all active.
    pub organisations: Vec<GenesisOrganisation>,
}

impl PermissionsGenesis {
    /// Every listed account may transact and deploy; `admins` govern with a majority threshold.
    pub fn new(
        admins: Vec<Address>,
        threshold: Option<usize>,
        organisations: Vec<GenesisOrganisation>,
    ) -> Self {
        let threshold = threshold.unwrap_or(admins.len() / 2 + 1);
        Self { admins, threshold, organisations }
    }

    fn validate(&self) -> Result<(), DevnetError> {
        let invalid = |m: String| Err(DevnetError::Permissions(m));
        if self.admins.is_empty() || self.admins.len() > MAX_ADMINS {
            return invalid(format!(
                "{} admins; a permissioned network needs 1 to {MAX_ADMINS}",
                self.admins.len()
            ));
        }
        let mut unique = self.admins.clone();
        unique.sort_unstable();
        unique.dedup();
        if unique.len() != self.admins.len() {
            return invalid("an admin is listed twice".into());
        }
        if self.threshold == 0 || self.threshold > self.admins.len() {
            return invalid(format!(
                "threshold {} must be 1 to the number of admins ({})",
                self.threshold,
                self.admins.len()
            ));
        }
        if let Some(org) = self.organisations.iter().find(|o| o.id == 0) {
            return invalid(format!("organisation {:?} has id 0, which is reserved", org.name));
        }
        Ok(())
    }

    /// The genesis alloc entry of the contract: its constructor and the setup proposals run in
    /// memory (`fogchain_evm::predeploy`), then the account is placed at
    /// [`ACCOUNT_PERMISSIONS`].
    pub fn alloc(&self, chain_id: u64) -> Result<(Address, GenesisAccount), DevnetError> {
        self.validate()?;
        let contract = SETUP_ADMIN.create(0);
        let mut actions: Vec<Vec<u8>> = Vec::new();
        for org in &self.organisations {
            actions.push(
                Contract::setOrganisationCall { org: org.id, name: org.name.clone(), status: 1 }.abi_encode(),
            );
            // One setAccounts per role set, so a large organisation is a few actions.
            let mut by_roles: std::collections::BTreeMap<u8, Vec<Address>> = Default::default();
            for (account, roles) in &org.accounts {
                by_roles.entry(*roles & (roles::TRANSACT | roles::DEPLOY)).or_default().push(*account);
            }
            for (roles, list) in by_roles {
                for chunk in list.chunks(500) {
                    actions.push(
                        Contract::setAccountsCall { list: chunk.to_vec(), org: org.id, roles }.abi_encode(),
                    );
                }
            }
        }
        let handover =
            self.admins.iter().map(|admin| Contract::addAdminCall { admin: *admin }.abi_encode()).chain([
                Contract::setThresholdCall { m: alloy_primitives::U256::from(self.threshold) }.abi_encode(),
                Contract::removeAdminCall { admin: SETUP_ADMIN }.abi_encode(),
            ]);
        let propose = |actions: Vec<Vec<u8>>| SetupTx {
            to: Some(contract),
            input: Contract::proposeCall { actions: actions.into_iter().map(Into::into).collect() }
                .abi_encode()
                .into(),
        };
        let mut txs = vec![SetupTx { to: None, input: Contract::BYTECODE.to_vec().into() }];
        txs.extend(actions.chunks(MAX_ACTIONS).map(|c| propose(c.to_vec())));
        // The handover is one proposal, all or none: after it the setup admin is gone.
        txs.push(propose(handover.collect()));
        let deployed = fogchain_evm::predeploy(chain_id, SETUP_ADMIN, &txs)?;
        let p = deployed.get(&contract).ok_or_else(|| {
            DevnetError::Permissions("the AccountPermissions constructor left no contract".into())
        })?;
        let storage = p.storage.iter().map(|(k, v)| (B256::from(*k), B256::from(*v))).collect();
        Ok((
            ACCOUNT_PERMISSIONS,
            GenesisAccount::default().with_code(Some(p.code.clone())).with_storage(Some(storage)),
        ))
    }
}

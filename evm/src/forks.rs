//! The chain spec's fork schedule in alloy-hardforks' terms, for alloy-evm's system calls,
//! deposit parsing and withdrawal credits.

use alloy_evm::eth::spec::EthExecutorSpec;
use alloy_hardforks::{EthereumHardfork, EthereumHardforks, ForkCondition};
use alloy_primitives::Address;
use fogchain_genesis::ChainSpec;

/// Mainnet's deposit contract (EIP-6110 `DEPOSIT_CONTRACT_ADDRESS`), used when the genesis
/// `config.depositContractAddress` is unset (as in the reference fixtures).
pub const MAINNET_DEPOSIT_CONTRACT: Address = alloy_eips::eip6110::MAINNET_DEPOSIT_CONTRACT_ADDRESS;

/// A [`ChainSpec`] seen as alloy-hardforks' [`EthereumHardforks`]: each fork's activation (block
/// number before the merge, timestamp from Shanghai on) read from the genesis `config`, the same
/// fields [`ChainSpec::fork_at`] resolves.
#[derive(Debug, Clone, Copy)]
pub struct Forks<'a>(pub &'a ChainSpec);

impl EthereumHardforks for Forks<'_> {
    fn ethereum_fork_activation(&self, fork: EthereumHardfork) -> ForkCondition {
        let c = self.0.config();
        let block = |b: Option<u64>| b.map_or(ForkCondition::Never, ForkCondition::Block);
        let time = |t: Option<u64>| t.map_or(ForkCondition::Never, ForkCondition::Timestamp);
        match fork {
            EthereumHardfork::Frontier => ForkCondition::Block(0),
            EthereumHardfork::Homestead => block(c.homestead_block),
            // Fogchain never applies the DAO fork's irregular state change.
            EthereumHardfork::Dao => ForkCondition::Never,
            EthereumHardfork::Tangerine => block(c.eip150_block),
            EthereumHardfork::SpuriousDragon => block(c.eip158_block),
            EthereumHardfork::Byzantium => block(c.byzantium_block),
            EthereumHardfork::Constantinople => block(c.constantinople_block),
            EthereumHardfork::Petersburg => block(c.petersburg_block),
            EthereumHardfork::Istanbul => block(c.istanbul_block),
            EthereumHardfork::MuirGlacier => block(c.muir_glacier_block),
            EthereumHardfork::Berlin => block(c.berlin_block),
            EthereumHardfork::London => block(c.london_block),
            EthereumHardfork::ArrowGlacier => block(c.arrow_glacier_block),
            EthereumHardfork::GrayGlacier => block(c.gray_glacier_block),
            EthereumHardfork::Paris => {
                let merged_at_genesis = c.terminal_total_difficulty.is_some_and(|ttd| ttd.is_zero());
                match (c.merge_netsplit_block, merged_at_genesis) {
                    (Some(n), _) => ForkCondition::Block(n),
                    (None, true) => ForkCondition::Block(0),
                    (None, false) => ForkCondition::Never,
                }
            }
            EthereumHardfork::Shanghai => time(c.shanghai_time),
            EthereumHardfork::Cancun => time(c.cancun_time),
            EthereumHardfork::Prague => time(c.prague_time),
            EthereumHardfork::Osaka => time(c.osaka_time),
            EthereumHardfork::Bpo1 => time(c.bpo1_time),
            EthereumHardfork::Bpo2 => time(c.bpo2_time),
            EthereumHardfork::Bpo3 => time(c.bpo3_time),
            EthereumHardfork::Bpo4 => time(c.bpo4_time),
            EthereumHardfork::Bpo5 => time(c.bpo5_time),
            _ => ForkCondition::Never,
        }
    }
}

impl EthExecutorSpec for Forks<'_> {
    fn deposit_contract_address(&self) -> Option<Address> {
        Some(self.0.config().deposit_contract_address.unwrap_or(MAINNET_DEPOSIT_CONTRACT))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fogchain_genesis::{prague_chain_config, FogchainConfig};

    #[test]
    fn agrees_with_the_spec_on_a_prague_chain() {
        let genesis = alloy_genesis::Genesis { config: prague_chain_config(7), ..Default::default() };
        let spec = ChainSpec::new(genesis, FogchainConfig::default()).unwrap();
        let forks = Forks(&spec);
        assert!(forks.is_prague_active_at_timestamp(0));
        assert!(forks.is_cancun_active_at_timestamp(0));
        assert!(forks.is_paris_active_at_block(0));
        assert!(!forks.is_osaka_active_at_timestamp(u64::MAX));
        assert_eq!(forks.deposit_contract_address(), Some(MAINNET_DEPOSIT_CONTRACT));
    }
}

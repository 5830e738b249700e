//! The genesis of a development or multi-host network: members, prefunded accounts, and the
//! IoT contracts predeployed and set up (shared by `fogchain devnet` and `fogchain genesis new`).

use crate::DevnetError;
use alloy_eips::eip2935::{HISTORY_STORAGE_ADDRESS, HISTORY_STORAGE_CODE};
use alloy_genesis::{Genesis, GenesisAccount};
use alloy_primitives::{Address, B256, U256};
use alloy_signer_local::{coins_bip39::English, MnemonicBuilder, PrivateKeySigner};
use fogchain_genesis::{prague_chain_config, ChainSpec, FogchainConfig, Member};
use fogchain_node::seal::load_or_create_key;
use std::path::Path;

/// Keyless account that "deploys" the IoT contracts in the devnet genesis: they sit at
/// `GENESIS_DEPLOYER.create(i)` in [`IOT_CONTRACTS`] order.
const GENESIS_DEPLOYER: Address = alloy_primitives::address!("0xF0C0000000000000000000000000000000000000");
/// The predeployed contracts, in creation order.
pub const IOT_CONTRACTS: [&str; 4] = ["DeviceRegistry", "SensorRegistry", "DangerIndex", "SaleFactory"];

/// Address of predeployed contract `name` (one of [`IOT_CONTRACTS`]; `None` for others).
pub fn iot_contract(name: &str) -> Option<Address> {
    let index = IOT_CONTRACTS.iter().position(|n| *n == name)?;
    Some(GENESIS_DEPLOYER.create(index as u64))
}

/// Address of predeployed contract number `index` of [`IOT_CONTRACTS`].
fn predeployed(index: usize) -> Address {
    GENESIS_DEPLOYER.create(index as u64)
}

/// What the IoT contracts are set up with in genesis.
pub struct IotGenesis {
    /// Admin of every contract and a gateway (dev account 0).
    pub operator: Address,
    /// More gateways of SensorRegistry and DangerIndex (the proxy's account).
    pub gateways: Vec<Address>,
    /// Devices registered in DeviceRegistry: (id, key address, kind).
    pub devices: Vec<(B256, Address, String)>,
}

/// Genesis alloc entries of the IoT contracts: constructors and setup calls run in memory, so the
/// state is what deploying them would give. `iot.operator` becomes the admin of every contract
/// and a gateway of SensorRegistry and DangerIndex, as do `iot.gateways`; `iot.devices` are
/// registered.
fn iot_predeploys(chain_id: u64, iot: &IotGenesis) -> Result<Vec<(Address, GenesisAccount)>, DevnetError> {
    let operator = iot.operator;
    use alloy_sol_types::{SolCall, SolConstructor};
    use fogchain_contracts::{DangerIndex, DeviceRegistry, SaleFactory, SensorRegistry};
    use fogchain_evm::SetupTx;
    let create = |code: Vec<u8>| SetupTx { to: None, input: code.into() };
    // Indices into IOT_CONTRACTS.
    const DEVICES: usize = 0;
    const SENSORS: usize = 1;
    const DANGER: usize = 2;
    let call = |index: usize, input: Vec<u8>| SetupTx { to: Some(predeployed(index)), input: input.into() };
    let mut sensor_init = SensorRegistry::BYTECODE.to_vec();
    sensor_init.extend(SensorRegistry::constructorCall { devices_: predeployed(DEVICES) }.abi_encode());
    let mut txs = vec![
        create(DeviceRegistry::BYTECODE.to_vec()),
        create(sensor_init),
        create(DangerIndex::BYTECODE.to_vec()),
        create(SaleFactory::BYTECODE.to_vec()),
        call(DEVICES, DeviceRegistry::addAdminCall { admin: operator }.abi_encode()),
        call(DEVICES, DeviceRegistry::renounceAdminCall {}.abi_encode()),
        call(SENSORS, SensorRegistry::addGatewayCall { gateway: operator }.abi_encode()),
        call(SENSORS, SensorRegistry::transferAdminCall { newAdmin: operator }.abi_encode()),
        call(DANGER, DangerIndex::addGatewayCall { gateway: operator }.abi_encode()),
        call(DANGER, DangerIndex::transferAdminCall { newAdmin: operator }.abi_encode()),
    ];
    // Every setup call comes from the deployer, so each goes in while it is still the admin:
    // registrations before DeviceRegistry.renounceAdmin, gateways before each transferAdmin.
    let position = 5; // after DeviceRegistry.addAdmin(operator), before renounceAdmin
    for (id, key, kind) in iot.devices.iter().rev() {
        txs.insert(
            position,
            call(
                DEVICES,
                DeviceRegistry::registerCall { deviceId: *id, key: *key, kind: kind.clone() }.abi_encode(),
            ),
        );
    }
    let position = txs.len() - 3; // before SensorRegistry.transferAdmin
    for g in iot.gateways.iter().rev() {
        txs.insert(position, call(SENSORS, SensorRegistry::addGatewayCall { gateway: *g }.abi_encode()));
    }
    let position = txs.len() - 1; // before DangerIndex.transferAdmin
    for g in iot.gateways.iter().rev() {
        txs.insert(position, call(DANGER, DangerIndex::addGatewayCall { gateway: *g }.abi_encode()));
    }
    let deployed = fogchain_evm::predeploy(chain_id, GENESIS_DEPLOYER, &txs)?;
    Ok(deployed
        .into_iter()
        .map(|(address, p)| {
            let storage = p.storage.iter().map(|(k, v)| (B256::from(*k), B256::from(*v))).collect();
            (address, GenesisAccount::default().with_code(Some(p.code)).with_storage(Some(storage)))
        })
        .collect())
}

/// Hardhat's and Anvil's test mnemonic.
pub const TEST_MNEMONIC: &str = "test test test test test test test test test test test junk";
/// Prefunded accounts.
pub const ACCOUNTS: u32 = 10;
/// 10,000 ETH in wei.
pub const BALANCE_WEI: u128 = 10_000 * 1_000_000_000_000_000_000;

/// The test accounts m/44'/60'/0'/0/i of [`TEST_MNEMONIC`].
pub fn dev_accounts() -> Result<Vec<PrivateKeySigner>, DevnetError> {
    (0..ACCOUNTS)
        .map(|i| {
            MnemonicBuilder::<English>::default()
                .phrase(TEST_MNEMONIC)
                .index(i)
                .and_then(|b| b.build())
                .map_err(|e| DevnetError::Key(format!("deriving test account {i}: {e}")))
        })
        .collect()
}

/// A Prague genesis with `members`, balances `alloc` (wei), the EIP-2935 history contract, when
/// `iot` is set the IoT contracts
/// predeployed and set up, and when `permissions` is set account permissioning (`None`: an
/// open chain, where any account may transact).
pub fn genesis_spec(
    chain_id: u64,
    gas_limit: u64,
    members: Vec<Member>,
    alloc: &[(Address, U256)],
    iot: Option<IotGenesis>,
    permissions: Option<&crate::PermissionsGenesis>,
    zero_base_fee: bool,
) -> Result<ChainSpec, DevnetError> {
    let mut genesis = Genesis {
        config: prague_chain_config(chain_id),
        gas_limit,
        timestamp: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        ..Default::default()
    };
    for (address, wei) in alloc {
        genesis.alloc.insert(*address, GenesisAccount::default().with_balance(*wei));
    }
    // EIP-2935's history contract, as Ethereum has it since Prague: every block's pre-block
    // system call stores its parent's hash, so contracts read the last 8,191 block hashes
    // (docs/node.md, "Rules").
    genesis.alloc.insert(
        HISTORY_STORAGE_ADDRESS,
        GenesisAccount::default().with_nonce(Some(1)).with_code(Some(HISTORY_STORAGE_CODE.clone())),
    );
    if let Some(iot) = iot {
        genesis.alloc.extend(iot_predeploys(chain_id, &iot)?);
    }
    if let Some(permissions) = permissions {
        let (address, account) = permissions.alloc(chain_id)?;
        genesis.alloc.insert(address, account);
    }
    Ok(ChainSpec::new(genesis, FogchainConfig { members, zero_base_fee, ..Default::default() })?)
}

/// 32 random bytes, hex: admin bearer tokens.
pub fn random_token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// Creates (or loads) the node key in `dir` and returns the member record of a node listening
/// on `p2p` with Raft id `raft_id`.
pub fn new_member(dir: &Path, raft_id: u64, p2p: &str) -> Result<Member, DevnetError> {
    let key = load_or_create_key(&dir.join("nodekey"))?;
    let peer_id =
        fogchain_consensus::peer_id(key.to_bytes().0).map_err(|e| DevnetError::Key(e.to_string()))?;
    Ok(Member { raft_id, address: key.address(), peer_id: peer_id.to_string(), p2p: p2p.to_string() })
}

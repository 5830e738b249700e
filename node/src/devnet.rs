//! `fogchain devnet`: a local network with embedded defaults.
//!
//! Layout of `DIR` (created on first start, reused afterwards so the chain resumes):
//! `genesis.json`, `network.json`, and per node `nodeI/{config.toml, nodekey, data/, node.log,
//! rpc.addr}`. Each node is a separate OS process (`fogchain node --config ...`) that dies with
//! the launcher (PR_SET_PDEATHSIG). The 10 accounts of the standard test mnemonic are funded
//! with 10,000 ETH each.

use alloy_genesis::{Genesis, GenesisAccount};
use alloy_primitives::{Address, B256, U256};
use alloy_signer_local::{coins_bip39::English, MnemonicBuilder, PrivateKeySigner};
use clap::Args;
use eyre::{bail, eyre, WrapErr};
use fogchain_genesis::{prague_chain_config, ChainSpec, FogchainConfig, Member};
use fogchain_node::{config::NodeConfig, seal::load_or_create_key};
use jsonrpsee::core::client::ClientT;
use serde_json::json;
use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};
use tokio::process::{Child, Command};

/// Keyless account that "deploys" the IoT contracts in the devnet genesis: they sit at
/// `GENESIS_DEPLOYER.create(i)` in [`IOT_CONTRACTS`] order.
const GENESIS_DEPLOYER: Address = alloy_primitives::address!("0xF0C0000000000000000000000000000000000000");
/// The predeployed contracts, in creation order.
const IOT_CONTRACTS: [&str; 4] = ["DeviceRegistry", "SensorRegistry", "DangerIndex", "SaleFactory"];

/// Address of predeployed contract `name`.
fn iot_contract(name: &str) -> Address {
    let index = IOT_CONTRACTS.iter().position(|n| *n == name).expect("known contract");
    GENESIS_DEPLOYER.create(index as u64)
}

/// What the IoT contracts are set up with in genesis.
pub(crate) struct IotGenesis {
    /// Admin of every contract and a gateway (dev account 0).
    pub(crate) operator: Address,
    /// More gateways of SensorRegistry and DangerIndex (the proxy's account).
    pub(crate) gateways: Vec<Address>,
    /// Devices registered in DeviceRegistry: (id, key address, kind).
    pub(crate) devices: Vec<(B256, Address, String)>,
}

/// Genesis alloc entries of the IoT contracts: constructors and setup calls run in memory, so the
/// state is what deploying them would give. `iot.operator` becomes the admin of every contract
/// and a gateway of SensorRegistry and DangerIndex, as do `iot.gateways`; `iot.devices` are
/// registered.
fn iot_predeploys(chain_id: u64, iot: &IotGenesis) -> eyre::Result<Vec<(Address, GenesisAccount)>> {
    let operator = iot.operator;
    use alloy_sol_types::{SolCall, SolConstructor};
    use fogchain_contracts::{DangerIndex, DeviceRegistry, SaleFactory, SensorRegistry};
    use fogchain_evm::SetupTx;
    let create = |code: Vec<u8>| SetupTx { to: None, input: code.into() };
    let call = |name: &str, input: Vec<u8>| SetupTx { to: Some(iot_contract(name)), input: input.into() };
    let mut sensor_init = SensorRegistry::BYTECODE.to_vec();
    sensor_init
        .extend(SensorRegistry::constructorCall { devices_: iot_contract("DeviceRegistry") }.abi_encode());
    let mut txs = vec![
        create(DeviceRegistry::BYTECODE.to_vec()),
        create(sensor_init),
        create(DangerIndex::BYTECODE.to_vec()),
        create(SaleFactory::BYTECODE.to_vec()),
        call("DeviceRegistry", DeviceRegistry::addAdminCall { admin: operator }.abi_encode()),
        call("DeviceRegistry", DeviceRegistry::renounceAdminCall {}.abi_encode()),
        call("SensorRegistry", SensorRegistry::addGatewayCall { gateway: operator }.abi_encode()),
        call("SensorRegistry", SensorRegistry::transferAdminCall { newAdmin: operator }.abi_encode()),
        call("DangerIndex", DangerIndex::addGatewayCall { gateway: operator }.abi_encode()),
        call("DangerIndex", DangerIndex::transferAdminCall { newAdmin: operator }.abi_encode()),
    ];
    // Every setup call comes from the deployer, so each goes in while it is still the admin:
    // registrations before DeviceRegistry.renounceAdmin, gateways before each transferAdmin.
    let position = 5; // after DeviceRegistry.addAdmin(operator), before renounceAdmin
    for (id, key, kind) in iot.devices.iter().rev() {
        txs.insert(
            position,
            call(
                "DeviceRegistry",
                DeviceRegistry::registerCall { deviceId: *id, key: *key, kind: kind.clone() }.abi_encode(),
            ),
        );
    }
    let position = txs.len() - 3; // before SensorRegistry.transferAdmin
    for g in iot.gateways.iter().rev() {
        txs.insert(
            position,
            call("SensorRegistry", SensorRegistry::addGatewayCall { gateway: *g }.abi_encode()),
        );
    }
    let position = txs.len() - 1; // before DangerIndex.transferAdmin
    for g in iot.gateways.iter().rev() {
        txs.insert(position, call("DangerIndex", DangerIndex::addGatewayCall { gateway: *g }.abi_encode()));
    }
    let deployed = fogchain_evm::predeploy(chain_id, GENESIS_DEPLOYER, &txs)
        .map_err(|e| eyre!("predeploying the IoT contracts: {e}"))?;
    Ok(deployed
        .into_iter()
        .map(|(address, p)| {
            let storage = p.storage.iter().map(|(k, v)| (B256::from(*k), B256::from(*v))).collect();
            (address, GenesisAccount::default().with_code(Some(p.code)).with_storage(Some(storage)))
        })
        .collect())
}

/// Hardhat's and Anvil's test mnemonic.
pub(crate) const TEST_MNEMONIC: &str = "test test test test test test test test test test test junk";
/// Prefunded accounts.
const ACCOUNTS: u32 = 10;
/// 10,000 ETH in wei.
pub(crate) const BALANCE_WEI: u128 = 10_000 * 1_000_000_000_000_000_000;

/// Options of `fogchain devnet`.
#[derive(Debug, Args)]
pub(crate) struct DevnetArgs {
    /// Directory for the network's genesis, keys, databases and logs.
    #[arg(long, default_value = "devnet")]
    dir: PathBuf,
    /// Number of nodes (each a separate process with its own datadir).
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// RPC port of the first node; node i listens on base + i. 0 picks free ports.
    #[arg(long, default_value_t = 8545)]
    base_port: u16,
    /// p2p (libp2p) port of the first node; node i listens on base + i. 0 picks free ports
    /// when the network is created (they are fixed in genesis afterwards).
    #[arg(long, default_value_t = 30400)]
    p2p_base_port: u16,
    /// Applied Raft log entries each node keeps for lagging followers.
    #[arg(long, default_value_t = 1024)]
    log_retention: u64,
    /// Enable each node's test-only fault switch (`nodeI/partition`: Raft ids to cut off).
    #[arg(long, hide = true)]
    fault_injection: bool,
    /// Chain id of a new network (1337, as geth --dev).
    #[arg(long, default_value_t = 1337)]
    chain_id: u64,
    /// Block gas limit of a new network.
    #[arg(long, default_value_t = 30_000_000)]
    gas_limit: u64,
    /// A new network's blocks have base fee 0 (GoQuorum-style free gas) instead of EIP-1559's
    /// (from 1 gwei, +1/8 per full block): sustained saturation then cannot price senders out.
    #[arg(long)]
    zero_base_fee: bool,
    /// HTTP port of the IoT proxy's JSON-RPC gateway (0 picks a free port).
    #[arg(long, default_value_t = 8080)]
    proxy_http_port: u16,
    /// MQTT port of the IoT proxy (0 picks a free port).
    #[arg(long, default_value_t = 1883)]
    proxy_mqtt_port: u16,
    /// Do not start the IoT proxy.
    #[arg(long)]
    no_proxy: bool,
}

/// The test accounts m/44'/60'/0'/0/i of [`TEST_MNEMONIC`].
pub(crate) fn dev_accounts() -> eyre::Result<Vec<PrivateKeySigner>> {
    (0..ACCOUNTS)
        .map(|i| {
            MnemonicBuilder::<English>::default()
                .phrase(TEST_MNEMONIC)
                .index(i)?
                .build()
                .map_err(|e| eyre!("deriving test account {i}: {e}"))
        })
        .collect()
}

fn node_dir(dir: &Path, i: usize) -> PathBuf {
    dir.join(format!("node{i}"))
}

/// Creates genesis.json and node keys on first use; returns the chain spec.
fn prepare(args: &DevnetArgs, accounts: &[PrivateKeySigner]) -> eyre::Result<ChainSpec> {
    let genesis_path = args.dir.join("genesis.json");
    if genesis_path.exists() {
        let spec = ChainSpec::from_file(&genesis_path)?;
        let members = spec.fogchain.members.len();
        if members != args.nodes {
            bail!(
                "{} holds a network of {members} node(s); start it with --nodes {members} or use another --dir",
                args.dir.display()
            );
        }
        return Ok(spec);
    }
    let mut members = Vec::new();
    for i in 0..args.nodes {
        let port = if args.p2p_base_port == 0 { free_port()? } else { args.p2p_base_port + i as u16 };
        members.push(new_member(
            &node_dir(&args.dir, i),
            i as u64 + 1,
            &format!("/ip4/127.0.0.1/tcp/{port}"),
        )?);
    }
    let iot = crate::devnet_proxy::load_or_create(&args.dir.join("proxy"))?;
    let mut alloc: Vec<(Address, U256)> =
        accounts.iter().map(|a| (a.address(), U256::from(BALANCE_WEI))).collect();
    alloc.push((iot.gateway, U256::from(BALANCE_WEI)));
    let iot = IotGenesis {
        operator: accounts[0].address(),
        gateways: vec![iot.gateway],
        devices: iot.registrations()?,
    };
    let spec = genesis_spec(args.chain_id, args.gas_limit, members, &alloc, Some(iot), args.zero_base_fee)?;
    std::fs::write(&genesis_path, spec.to_json()?)?;
    Ok(spec)
}

/// A Prague genesis with `members`, balances `alloc` (wei), and, when `iot` is set, the IoT
/// contracts predeployed and set up.
pub(crate) fn genesis_spec(
    chain_id: u64,
    gas_limit: u64,
    members: Vec<Member>,
    alloc: &[(Address, U256)],
    iot: Option<IotGenesis>,
    zero_base_fee: bool,
) -> eyre::Result<ChainSpec> {
    let mut genesis = Genesis {
        config: prague_chain_config(chain_id),
        gas_limit,
        timestamp: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs(),
        ..Default::default()
    };
    for (address, wei) in alloc {
        genesis.alloc.insert(*address, GenesisAccount::default().with_balance(*wei));
    }
    if let Some(iot) = iot {
        genesis.alloc.extend(iot_predeploys(chain_id, &iot)?);
    }
    Ok(ChainSpec::new(genesis, FogchainConfig { members, zero_base_fee, ..Default::default() })?)
}

/// A free TCP port on 127.0.0.1 (bound and released): node p2p ports when a network is created,
/// the proxy's ports when they are asked to be 0.
///
/// Picked at random below Linux's ephemeral range (32768–60999), where the kernel never hands
/// out source ports of outgoing connections, so such a connection cannot take the port between
/// this check and the process that binds it later.
pub(crate) fn free_port() -> eyre::Result<u16> {
    for _ in 0..200 {
        let port = rand::random_range(20_000..32_000u16);
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// 32 random bytes, hex: admin bearer tokens.
pub(crate) fn random_token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// Creates (or loads) the node key in `dir` and returns the member record of a node listening
/// on `p2p` with Raft id `raft_id`.
pub(crate) fn new_member(dir: &Path, raft_id: u64, p2p: &str) -> eyre::Result<Member> {
    let key = load_or_create_key(&dir.join("nodekey"))?;
    let peer_id = fogchain_consensus::peer_id(key.to_bytes().0)?;
    Ok(Member { raft_id, address: key.address(), peer_id: peer_id.to_string(), p2p: p2p.to_string() })
}

/// The network's admin token (created once, kept in `DIR/admin.token`).
fn admin_token(dir: &Path) -> eyre::Result<String> {
    let path = dir.join("admin.token");
    if let Ok(token) = std::fs::read_to_string(&path) {
        return Ok(token.trim().to_string());
    }
    let token = random_token();
    fogchain_node::seal::write_private(&path, &token)?;
    Ok(token)
}

fn write_config(args: &DevnetArgs, spec: &ChainSpec, token: &str, i: usize) -> eyre::Result<PathBuf> {
    let dir = node_dir(&args.dir, i);
    let port = if args.base_port == 0 { 0 } else { args.base_port + i as u16 };
    let member = spec.fogchain.members.get(i);
    let listen = member.map(|m| m.p2p.clone()).filter(|p| !p.is_empty());
    let mut config = NodeConfig::generated(
        "../genesis.json".into(),
        SocketAddr::from(([127, 0, 0, 1], port)),
        token.to_string(),
        listen.unwrap_or_else(|| "/ip4/127.0.0.1/tcp/0".into()),
    );
    config.p2p.fault_file = args.fault_injection.then(|| "partition".into());
    config.raft.log_retention = args.log_retention;
    let path = dir.join("config.toml");
    std::fs::write(&path, config.to_toml())?;
    Ok(path)
}

fn spawn_node(args: &DevnetArgs, i: usize, config: &Path) -> eyre::Result<Child> {
    let dir = node_dir(&args.dir, i);
    let _ = std::fs::remove_file(dir.join("rpc.addr"));
    spawn_child("node", config, &dir.join("node.log")).wrap_err_with(|| format!("starting node {i}"))
}

/// Runs `fogchain SUBCOMMAND --config CONFIG` as a child that dies with the launcher
/// (PR_SET_PDEATHSIG), appending its output to `log`.
pub(crate) fn spawn_child(subcommand: &str, config: &Path, log: &Path) -> eyre::Result<Child> {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log)?;
    let mut command = Command::new(std::env::current_exe()?);
    command
        .arg(subcommand)
        .arg("--config")
        .arg(config)
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true);
    // SAFETY: prctl is async-signal-safe; the child asks to be terminated when the launcher dies.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Ok(command.spawn()?)
}

/// Waits until node `i` has written its address and answers `eth_chainId`.
async fn wait_ready(dir: &Path, child: &mut Child, chain_id: u64) -> eyre::Result<SocketAddr> {
    let deadline = Instant::now() + Duration::from_secs(120);
    let addr_file = dir.join("rpc.addr");
    loop {
        if let Some(status) = child.try_wait()? {
            bail!("node exited with {status} before serving:\n{}", log_tail(dir));
        }
        if let Ok(text) = std::fs::read_to_string(&addr_file) {
            let addr: SocketAddr = text.trim().parse()?;
            let client =
                jsonrpsee::http_client::HttpClientBuilder::default().build(format!("http://{addr}"))?;
            let answer: Result<String, _> = client.request("eth_chainId", jsonrpsee::rpc_params![]).await;
            if let Ok(id) = answer {
                if u64::from_str_radix(id.trim_start_matches("0x"), 16).ok() == Some(chain_id) {
                    return Ok(addr);
                }
            }
        }
        if Instant::now() > deadline {
            bail!("node did not answer within 120 s:\n{}", log_tail(dir));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until every node knows the same Raft leader.
async fn wait_leader(nodes: &[serde_json::Value]) -> eyre::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let mut leaders = Vec::new();
        for node in nodes {
            let url = node["rpc"].as_str().unwrap_or_default();
            let client = jsonrpsee::http_client::HttpClientBuilder::default().build(url)?;
            let leader: Result<String, _> = client.request("raft_leader", jsonrpsee::rpc_params![]).await;
            leaders.push(leader.ok());
        }
        if leaders.iter().all(|l| l.is_some() && *l == leaders[0]) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the nodes did not agree on a Raft leader within 120 s (leaders seen: {leaders:?}); see the node.log files");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The last lines of a node's log, for error messages.
fn log_tail(dir: &Path) -> String {
    let path = dir.join("node.log");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(10)..].join("\n");
    format!("{tail}\n(full log: {})", path.display())
}

async fn stop_all(children: &mut [Child]) {
    for child in children.iter() {
        if let Some(pid) = child.id() {
            // SAFETY: plain kill(2) on our own child's pid.
            unsafe { libc::kill(pid as i32, libc::SIGTERM) };
        }
    }
    for child in children.iter_mut() {
        if tokio::time::timeout(Duration::from_secs(20), child.wait()).await.is_err() {
            let _ = child.kill().await;
        }
    }
}

/// Runs the devnet until Ctrl-C / SIGTERM, or until a node exits.
pub(crate) async fn run(args: DevnetArgs) -> eyre::Result<()> {
    if args.nodes == 0 {
        bail!("--nodes must be at least 1");
    }
    std::fs::create_dir_all(&args.dir).wrap_err_with(|| format!("creating {}", args.dir.display()))?;
    let dir = args.dir.canonicalize()?;
    let args = DevnetArgs { dir, ..args };
    let accounts = dev_accounts()?;
    let spec = prepare(&args, &accounts)?;
    let token = admin_token(&args.dir)?;
    let mut children = Vec::new();
    for i in 0..args.nodes {
        let config = write_config(&args, &spec, &token, i)?;
        children.push(spawn_node(&args, i, &config)?);
    }
    let mut nodes = Vec::new();
    for (i, child) in children.iter_mut().enumerate() {
        let dir = node_dir(&args.dir, i);
        let addr = match wait_ready(&dir, child, spec.chain_id()).await {
            Ok(addr) => addr,
            Err(e) => {
                stop_all(&mut children).await;
                return Err(e);
            }
        };
        let member = spec.fogchain.members.get(i);
        nodes.push(json!({
            "name": format!("node{i}"),
            "rpc": format!("http://{addr}"),
            "ws": format!("ws://{addr}"),
            "pid": child.id(),
            "datadir": dir.join("data"),
            "raftId": i as u64 + 1,
            "peerId": member.map(|m| m.peer_id.clone()),
            "p2p": member.map(|m| format!("{}/p2p/{}", m.p2p, m.peer_id)),
            "address": member.map(|m| m.address),
        }));
    }
    if let Err(e) = wait_leader(&nodes).await {
        stop_all(&mut children).await;
        return Err(e);
    }
    let contracts: serde_json::Map<String, serde_json::Value> =
        IOT_CONTRACTS.iter().map(|n| (n.to_string(), json!(iot_contract(n)))).collect();
    let mut proxy = serde_json::Value::Null;
    if !args.no_proxy {
        match start_proxy(&args, &spec, &nodes, &contracts, &token).await {
            Ok((child, section)) => {
                children.push(child);
                proxy = section;
            }
            Err(e) => {
                stop_all(&mut children).await;
                return Err(e);
            }
        }
    }
    let network = json!({
        "chainId": spec.chain_id(),
        "genesisHash": spec.genesis_hash,
        "nodes": nodes,
        "adminToken": token,
        "contracts": contracts,
        "proxy": proxy,
        "accounts": accounts.iter().map(|a| json!({
            "address": a.address(),
            "privateKey": format!("0x{}", hex::encode(a.to_bytes())),
        })).collect::<Vec<_>>(),
    });
    let network_path = args.dir.join("network.json");
    let tmp = network_path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_string_pretty(&network)?)?;
    std::fs::rename(&tmp, &network_path)?;
    print_banner(&spec, &network, &accounts, &network_path);

    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    // A node that exits (crash, kill -9) is reported; the others keep running, as a Raft cluster
    // tolerates a minority down. The launcher ends on Ctrl-C / SIGTERM or when every node is gone.
    let watch = async {
        let mut gone = vec![false; children.len()];
        loop {
            for (i, child) in children.iter_mut().enumerate() {
                if gone[i] {
                    continue;
                }
                if let Ok(Some(status)) = child.try_wait() {
                    gone[i] = true;
                    if i == args.nodes {
                        let dir = args.dir.join("proxy");
                        eprintln!(
                            "the proxy exited with {status}. Log: {}. Restart it with: {} proxy --config {}",
                            dir.join("proxy.log").display(),
                            std::env::current_exe()
                                .map(|p| p.display().to_string())
                                .unwrap_or_else(|_| "fogchain".into()),
                            dir.join("proxy.toml").display()
                        );
                        continue;
                    }
                    let dir = node_dir(&args.dir, i);
                    eprintln!(
                        "node{i} exited with {status}; the others keep running. Log: {}. Restart it with: {} node --config {}",
                        dir.join("node.log").display(),
                        std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_else(|_| "fogchain".into()),
                        dir.join("config.toml").display()
                    );
                }
            }
            if gone.iter().take(args.nodes).all(|g| *g) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let result = tokio::select! {
        _ = tokio::signal::ctrl_c() => Ok(()),
        _ = sigterm.recv() => Ok(()),
        _ = watch => Err(eyre!("every node exited; see the node.log files in {}", args.dir.display())),
    };
    eprintln!("stopping devnet ...");
    stop_all(&mut children).await;
    eprintln!("devnet stopped; start it again with the same --dir to resume");
    result
}

/// Writes the proxy config, starts the proxy and returns it with network.json's "proxy" section.
async fn start_proxy(
    args: &DevnetArgs,
    spec: &ChainSpec,
    nodes: &[serde_json::Value],
    contracts: &serde_json::Map<String, serde_json::Value>,
    node_admin_token: &str,
) -> eyre::Result<(Child, serde_json::Value)> {
    let dir = args.dir.join("proxy");
    let urls: Vec<String> = nodes.iter().filter_map(|n| n["rpc"].as_str().map(str::to_string)).collect();
    let ports = crate::devnet_proxy::ProxyPorts { http: args.proxy_http_port, mqtt: args.proxy_mqtt_port };
    let config = crate::devnet_proxy::write_config(
        &dir,
        spec.chain_id(),
        &urls,
        &ports,
        &serde_json::Value::Object(contracts.clone()),
        node_admin_token,
    )?;
    let mut child = crate::devnet_proxy::spawn(&dir, &config)?;
    let (http, mqtt) = match crate::devnet_proxy::wait_ready(&dir, &mut child).await {
        Ok(a) => a,
        Err(e) => {
            let _ = child.kill().await;
            return Err(e);
        }
    };
    let section = crate::devnet_proxy::network_json(&dir, http, mqtt, child.id())?;
    Ok((child, section))
}

fn print_banner(spec: &ChainSpec, network: &serde_json::Value, accounts: &[PrivateKeySigner], path: &Path) {
    let mut out = String::new();
    out.push_str("\nFogchain devnet is running\n\n");
    out.push_str(&format!("Chain id       {}\n", spec.chain_id()));
    out.push_str(&format!(
        "Admin token    {} (Authorization: Bearer ... for admin_ and raft_ membership methods)\n",
        network["adminToken"].as_str().unwrap_or_default()
    ));
    if let Some(nodes) = network["nodes"].as_array() {
        for node in nodes {
            out.push_str(&format!(
                "{:<14} RPC {}   WS {}\n",
                node["name"].as_str().unwrap_or_default(),
                node["rpc"].as_str().unwrap_or_default(),
                node["ws"].as_str().unwrap_or_default()
            ));
        }
    }
    let proxy = &network["proxy"];
    if !proxy.is_null() {
        out.push_str(&format!(
            "IoT proxy      JSON-RPC {}   MQTT {}   (Bearer {})\n",
            proxy["http"].as_str().unwrap_or_default(),
            proxy["mqtt"].as_str().unwrap_or_default(),
            proxy["token"].as_str().unwrap_or_default()
        ));
        let all = proxy["devices"]
            .as_array()
            .into_iter()
            .flatten()
            .chain(proxy["locker"].as_object().map(|_| &proxy["locker"]));
        for d in all {
            out.push_str(&format!(
                "  device {:<11} password {}  key {}\n",
                d["id"].as_str().unwrap_or_default(),
                d["password"].as_str().unwrap_or_default(),
                d["privateKey"].as_str().unwrap_or_default()
            ));
        }
    }
    out.push_str("\nContracts (account 0 is admin and gateway)\n");
    for name in IOT_CONTRACTS {
        out.push_str(&format!("{name:<15}{}\n", iot_contract(name)));
    }
    out.push_str(&format!("\nAccounts (10,000 ETH each; mnemonic \"{TEST_MNEMONIC}\")\n"));
    for (i, a) in accounts.iter().enumerate() {
        let address: Address = a.address();
        out.push_str(&format!("({i}) {address}  0x{}\n", hex::encode(a.to_bytes())));
    }
    out.push_str(&format!("\nNetwork description: {}\nPress Ctrl-C to stop.\n", path.display()));
    println!("{out}");
}

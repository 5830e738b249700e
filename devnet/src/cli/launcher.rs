//! `fogchain devnet`: a local network with embedded defaults.
//!
//! Layout of `DIR` (created on first start, reused afterwards so the chain resumes):
//! `genesis.json`, `network.json`, and per node `nodeI/{config.toml, nodekey, data/, node.log,
//! rpc.addr}`, and `proxy/` (see `proxy_setup.rs`). Each node is a separate OS process
//! (`fogchain node --config ...`), the proxy too (`fogchain-proxy --config ...`); they die with
//! the launcher (PR_SET_PDEATHSIG). The 10 accounts of the standard test mnemonic are funded
//! with 10,000 ETH each.

use crate::process::{free_port, log_tail, spawn_child, stop_all};
use alloy_primitives::{Address, U256};
use alloy_signer_local::PrivateKeySigner;
use clap::Args;
use eyre::{bail, eyre, WrapErr};
use fogchain_devnet::{
    dev_accounts, iot_contract, new_member, random_token, AccountEntry, GenesisOrganisation, IotGenesis,
    NetworkFile, NodeEntry, ProxyEntry, BALANCE_WEI, IOT_CONTRACTS, TEST_MNEMONIC,
};
use fogchain_genesis::ChainSpec;
use fogchain_node::config::NodeConfig;
use jsonrpsee::core::client::ClientT;
use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};
use tokio::process::Child;

/// Options of `fogchain devnet`.
#[derive(Debug, Args)]
pub(crate) struct DevnetArgs {
    /// Directory for the network's genesis, keys, databases and logs.
    #[arg(long, default_value = "devnet-data")]
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
    #[command(flatten)]
    chain: crate::new_network::ChainArgs,
    /// HTTP port of the IoT proxy's JSON-RPC gateway (0 picks a free port).
    #[arg(long, default_value_t = 8080)]
    proxy_http_port: u16,
    /// MQTT port of the IoT proxy (0 picks a free port).
    #[arg(long, default_value_t = 1883)]
    proxy_mqtt_port: u16,
    /// MQTT over WebSocket port of the IoT proxy, for browsers (0 picks a free port).
    #[arg(long, default_value_t = 8083)]
    proxy_mqtt_ws_port: u16,
    /// Do not start the IoT proxy.
    #[arg(long)]
    no_proxy: bool,
    /// Prometheus `/metrics` port of the first node; node i listens on base + i, the proxy on
    /// base + 100. Default 9545, or free ports when --base-port is 0.
    #[arg(long)]
    metrics_base_port: Option<u16>,
    /// Write a Prometheus scrape config for the devnet's nodes and proxy to this file.
    #[arg(long, value_name = "FILE", conflicts_with = "no_metrics")]
    prometheus_config: Option<PathBuf>,
    /// Serve no Prometheus metrics (nodes and proxy).
    #[arg(long)]
    no_metrics: bool,
}

impl DevnetArgs {
    /// The metrics address at `offset` from the base port (node i: i, the proxy: 100); port 0
    /// picks a free one; `None` with `--no-metrics`.
    pub(crate) fn metrics_addr(&self, offset: u16) -> Option<SocketAddr> {
        let port = match self.metrics_base_port {
            Some(0) => 0,
            Some(base) => base.saturating_add(offset),
            None if self.base_port == 0 => 0,
            None => 9545u16.saturating_add(offset),
        };
        (!self.no_metrics).then(|| SocketAddr::from(([127, 0, 0, 1], port)))
    }
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
    let iot = crate::proxy_setup::load_or_create(&args.dir.join("proxy"))?;
    let mut alloc: Vec<(Address, U256)> =
        accounts.iter().map(|a| (a.address(), U256::from(BALANCE_WEI))).collect();
    alloc.push((iot.gateway, U256::from(BALANCE_WEI)));
    let iot = IotGenesis {
        operator: accounts[0].address(),
        gateways: vec![iot.gateway],
        devices: iot.registrations()?,
    };
    // The proxy's gateway and the devices' keys transact as organisation 2, "iot".
    let iot_accounts = iot
        .gateways
        .iter()
        .copied()
        .chain(iot.devices.iter().map(|(_, key, _)| *key))
        .map(|a| (a, fogchain_evm::roles::TRANSACT))
        .collect();
    let iot_org = GenesisOrganisation { id: 2, name: "iot".into(), accounts: iot_accounts };
    let test_accounts: Vec<Address> = accounts.iter().map(|a| a.address()).collect();
    let spec =
        args.chain.spec(members, &alloc, Some(iot), Some(test_accounts[0]), &test_accounts, vec![iot_org])?;
    std::fs::write(&genesis_path, spec.to_json()?)?;
    Ok(spec)
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
    config.metrics.addr = args.metrics_addr(i as u16);
    config.metrics.addr_file = config.metrics.addr.map(|_| "metrics.addr".into());
    let path = dir.join("config.toml");
    std::fs::write(&path, config.to_toml())?;
    Ok(path)
}

fn spawn_node(args: &DevnetArgs, i: usize, config: &Path) -> eyre::Result<Child> {
    let dir = node_dir(&args.dir, i);
    let _ = std::fs::remove_file(dir.join("rpc.addr"));
    let _ = std::fs::remove_file(dir.join("metrics.addr"));
    spawn_child(&std::env::current_exe()?, Some("node"), config, &dir.join("node.log"))
        .wrap_err_with(|| format!("starting node {i}"))
}

/// Waits until node `i` has written its address and answers `eth_chainId`.
async fn wait_ready(dir: &Path, child: &mut Child, chain_id: u64) -> eyre::Result<SocketAddr> {
    let deadline = Instant::now() + Duration::from_secs(120);
    let addr_file = dir.join("rpc.addr");
    loop {
        if let Some(status) = child.try_wait()? {
            bail!("node exited with {status} before serving:\n{}", log_tail(&dir.join("node.log")));
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
            bail!("node did not answer within 120 s:\n{}", log_tail(&dir.join("node.log")));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until every node knows the same Raft leader.
async fn wait_leader(nodes: &[NodeEntry]) -> eyre::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let mut leaders = Vec::new();
        for node in nodes {
            let client = jsonrpsee::http_client::HttpClientBuilder::default().build(&node.rpc)?;
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
        nodes.push(NodeEntry {
            name: format!("node{i}"),
            rpc: format!("http://{addr}"),
            ws: format!("ws://{addr}"),
            pid: child.id(),
            datadir: dir.join("data"),
            raft_id: i as u64 + 1,
            peer_id: member.map(|m| m.peer_id.clone()),
            p2p: member.map(|m| format!("{}/p2p/{}", m.p2p, m.peer_id)),
            address: member.map(|m| m.address),
            metrics: match args.no_metrics {
                true => None,
                false => crate::process::read_addr(&dir.join("metrics.addr"), Duration::from_secs(30))
                    .await
                    .map(|a| format!("http://{a}/metrics")),
            },
        });
    }
    if let Err(e) = wait_leader(&nodes).await {
        stop_all(&mut children).await;
        return Err(e);
    }
    let mut contracts: std::collections::BTreeMap<String, Address> =
        IOT_CONTRACTS.iter().filter_map(|n| Some((n.to_string(), iot_contract(n)?))).collect();
    if spec.alloc.contains_key(&fogchain_devnet::ACCOUNT_PERMISSIONS) {
        contracts.insert("AccountPermissions".into(), fogchain_devnet::ACCOUNT_PERMISSIONS);
    }
    let mut proxy = None;
    if !args.no_proxy {
        match start_proxy(&args, &spec, &nodes, &token).await {
            Ok((child, section)) => {
                children.push(child);
                proxy = Some(section);
            }
            Err(e) => {
                stop_all(&mut children).await;
                return Err(e);
            }
        }
    }
    let network = NetworkFile {
        chain_id: spec.chain_id(),
        genesis_hash: spec.genesis_hash,
        admin_token: token,
        nodes,
        contracts,
        proxy,
        accounts: accounts
            .iter()
            .map(|a| AccountEntry {
                address: a.address(),
                private_key: format!("0x{}", hex::encode(a.to_bytes())),
            })
            .collect(),
    };
    if let Some(path) = &args.prometheus_config {
        crate::prometheus::write(path, &network).wrap_err_with(|| format!("writing {}", path.display()))?;
    }
    let network_path = args.dir.join("network.json");
    network.write(&network_path)?;
    print_banner(&network, &network_path);

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
    nodes: &[NodeEntry],
    node_admin_token: &str,
) -> eyre::Result<(Child, ProxyEntry)> {
    let dir = args.dir.join("proxy");
    let urls: Vec<String> = nodes.iter().map(|n| n.rpc.clone()).collect();
    let ports = crate::proxy_setup::ProxyPorts {
        http: args.proxy_http_port,
        mqtt: args.proxy_mqtt_port,
        mqtt_ws: args.proxy_mqtt_ws_port,
        metrics: args.metrics_addr(100),
    };
    let contracts = crate::proxy_setup::Contracts {
        sensor_registry: iot_contract("SensorRegistry").ok_or_else(|| eyre!("no SensorRegistry"))?,
        danger_index: iot_contract("DangerIndex").ok_or_else(|| eyre!("no DangerIndex"))?,
        sale_factory: iot_contract("SaleFactory").ok_or_else(|| eyre!("no SaleFactory"))?,
    };
    let config =
        crate::proxy_setup::write_config(&dir, spec.chain_id(), &urls, &ports, &contracts, node_admin_token)?;
    let mut child = crate::proxy_setup::spawn(&dir, &config)?;
    let addrs = match crate::proxy_setup::wait_ready(&dir, &mut child).await {
        Ok(a) => a,
        Err(e) => {
            let _ = child.kill().await;
            return Err(e);
        }
    };
    let section = crate::proxy_setup::network_entry(&dir, &addrs, child.id())?;
    Ok((child, section))
}

fn print_banner(network: &NetworkFile, path: &Path) {
    println!("{}", banner(network, path));
}

/// What the launcher prints once the network runs: endpoints, credentials, contracts, accounts.
fn banner(network: &NetworkFile, path: &Path) -> String {
    let mut out = String::new();
    out.push_str("\nFogchain devnet is running\n\n");
    out.push_str(&format!("Chain id       {}\n", network.chain_id));
    out.push_str(&format!(
        "Admin token    {} (Authorization: Bearer ... for admin_ and raft_ membership methods)\n",
        network.admin_token
    ));
    for node in &network.nodes {
        out.push_str(&format!("{:<14} RPC {}   WS {}\n", node.name, node.rpc, node.ws));
    }
    if let Some(proxy) = &network.proxy {
        out.push_str(&format!(
            "IoT proxy      JSON-RPC {}   MQTT {}   MQTT/WebSocket {}   (Bearer {})\n",
            proxy.http,
            proxy.mqtt,
            proxy.mqtt_ws.as_deref().unwrap_or("-"),
            proxy.token
        ));
        for d in proxy.devices.iter().chain(&proxy.locker) {
            out.push_str(&format!("  device {:<11} password {}  key {}\n", d.id, d.password, d.private_key));
        }
        if let Some(app) = &proxy.app {
            out.push_str(&format!(
                "\nBrowser apps   {app}   (shop: {app}shop.html, dashboard: {app}dashboard.html)\n"
            ));
            for u in &proxy.users {
                out.push_str(&format!("  login {:<12} password {}  (role {})\n", u.name, u.password, u.role));
            }
        }
    }
    out.push_str("\nContracts (account 0 is admin and gateway; AccountPermissions: docs/permissioning.md)\n");
    // One column for the names, as wide as the longest plus two spaces.
    let width = network.contracts.keys().map(String::len).max().unwrap_or(0) + 2;
    for (name, address) in &network.contracts {
        out.push_str(&format!("{name:<width$}{address}\n"));
    }
    out.push_str(&format!("\nAccounts (10,000 ETH each; mnemonic \"{TEST_MNEMONIC}\")\n"));
    for (i, a) in network.accounts.iter().enumerate() {
        out.push_str(&format!("({i}) {}  {}\n", a.address, a.private_key));
    }
    out.push_str(&format!("\nNetwork description: {}\nPress Ctrl-C to stop.\n", path.display()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_banner_keeps_contract_names_apart_from_their_addresses() {
        let contracts =
            ["AccountPermissions", "DangerIndex", "DeviceRegistry", "SaleFactory", "SensorRegistry"];
        let network = NetworkFile {
            chain_id: 1337,
            genesis_hash: Default::default(),
            admin_token: "token".into(),
            nodes: vec![],
            contracts: contracts.iter().map(|n| (n.to_string(), Address::repeat_byte(0xab))).collect(),
            proxy: None,
            accounts: vec![],
        };
        let text = banner(&network, Path::new("network.json"));
        let column = "AccountPermissions".len() + 2;
        for name in contracts {
            let line = text.lines().find(|l| l.starts_with(name)).expect("a line per contract");
            assert_eq!(line.find("0x"), Some(column), "{line:?}");
            assert!(line[name.len()..column].chars().all(|c| c == ' '), "{line:?}");
        }
    }
}

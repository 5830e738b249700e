//! `fogchain genesis new`: the files of a real multi-host network.
//!
//! For N nodes it writes `OUT/genesis.json` (members with Raft id, sealing address, PeerId and
//! p2p address) and per node `OUT/nodeI/{nodekey, genesis.json, config.toml}`: copying
//! `nodeI/` to host I and running `fogchain node --config nodeI/config.toml` there is all a
//! host needs. Keys are created with owner-only permissions; each node gets its own admin token.

use alloy_primitives::{Address, U256};
use clap::Args;
use eyre::{bail, WrapErr};
use fogchain_devnet::{
    dev_accounts, genesis_spec, new_member, random_token, GenesisOrganisation, IotGenesis,
    PermissionsGenesis, BALANCE_WEI,
};
use fogchain_evm::roles::{DEPLOY, TRANSACT};
use fogchain_node::config::NodeConfig;
use std::{net::SocketAddr, path::PathBuf};

/// Options of `fogchain genesis new`.
#[derive(Debug, Args)]
pub(crate) struct NewNetworkArgs {
    /// Number of nodes.
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// Output directory (must not hold a genesis.json yet).
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    chain: ChainArgs,
    /// IPv4 address of each node's host, comma separated (one per node, or one for all).
    #[arg(long, value_delimiter = ',', default_value = "127.0.0.1")]
    hosts: Vec<String>,
    /// p2p port (node i uses port + i when several nodes share a host).
    #[arg(long, default_value_t = 30400)]
    p2p_port: u16,
    /// JSON-RPC port (node i uses port + i when several nodes share a host; 0: any free port,
    /// written to `nodeI/rpc.addr`).
    #[arg(long, default_value_t = 8545)]
    rpc_port: u16,
    /// Address the JSON-RPC server binds on each host (0.0.0.0 to serve other hosts).
    #[arg(long, default_value = "127.0.0.1")]
    rpc_bind: std::net::IpAddr,
    /// Prefunded account, `ADDRESS=WEI` (repeatable).
    #[arg(long = "alloc", value_parser = parse_alloc)]
    alloc: Vec<(Address, U256)>,
    /// Also fund the 10 test-mnemonic accounts and predeploy the IoT contracts, as the devnet.
    #[arg(long)]
    dev: bool,
}

/// The chain parameters of a new network, shared by `genesis new` and `devnet`.
#[derive(Debug, Args)]
pub(crate) struct ChainArgs {
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
    /// No account permissioning: any funded account may transact and deploy (by default the
    /// genesis holds the AccountPermissions contract, docs/permissioning.md).
    #[arg(long, conflicts_with_all = ["admins", "admin_threshold", "permit"])]
    open: bool,
    /// Admin of account permissioning (repeatable). Default with test accounts: test account 0.
    #[arg(long = "admin", value_name = "ADDRESS")]
    admins: Vec<Address>,
    /// Admin approvals a permissioning change needs (default: a majority of the admins).
    #[arg(long, value_name = "M")]
    admin_threshold: Option<usize>,
    /// Account that may transact and deploy contracts from genesis on (repeatable); the admins
    /// and the test accounts (devnet, --dev) are permitted anyway.
    #[arg(long, value_name = "ADDRESS")]
    permit: Vec<Address>,
}

impl ChainArgs {
    /// The permissioning admins: `--admin`, else `default`; an error when there are none.
    pub(crate) fn admins(&self, default: Option<Address>) -> eyre::Result<Vec<Address>> {
        let admins: Vec<Address> =
            if self.admins.is_empty() { default.into_iter().collect() } else { self.admins.clone() };
        if admins.is_empty() {
            bail!("a permissioned network needs admins: --admin ADDRESS (repeatable), or --open for a chain without account permissioning");
        }
        Ok(admins)
    }

    /// The chain spec of a new network with these parameters. Unless `--open`, accounts are
    /// permissioned: organisation 1 holds the admins, `--permit` and `accounts` (test accounts:
    /// transact and deploy), `more` are further organisations; `default_admin` governs when no
    /// `--admin` is given.
    pub(crate) fn spec(
        &self,
        members: Vec<fogchain_genesis::Member>,
        alloc: &[(Address, U256)],
        iot: Option<IotGenesis>,
        default_admin: Option<Address>,
        accounts: &[Address],
        more: Vec<GenesisOrganisation>,
    ) -> eyre::Result<fogchain_genesis::ChainSpec> {
        let permissions = if self.open {
            None
        } else {
            let admins = self.admins(default_admin)?;
            let all = TRANSACT | DEPLOY;
            let mut first: Vec<(Address, u8)> =
                admins.iter().chain(&self.permit).chain(accounts).map(|a| (*a, all)).collect();
            first.sort_unstable();
            first.dedup_by_key(|(a, _)| *a);
            let mut organisations =
                vec![GenesisOrganisation { id: 1, name: "genesis".into(), accounts: first }];
            organisations.extend(more);
            Some(PermissionsGenesis::new(admins, self.admin_threshold, organisations))
        };
        Ok(genesis_spec(
            self.chain_id,
            self.gas_limit,
            members,
            alloc,
            iot,
            permissions.as_ref(),
            self.zero_base_fee,
        )?)
    }
}

fn parse_alloc(text: &str) -> Result<(Address, U256), String> {
    let (address, wei) = text.split_once('=').ok_or("expected ADDRESS=WEI")?;
    let address: Address = address.parse().map_err(|e| format!("address {address}: {e}"))?;
    let wei: U256 = wei.parse().map_err(|e| format!("amount {wei}: {e}"))?;
    Ok((address, wei))
}

pub(crate) fn run(args: NewNetworkArgs) -> eyre::Result<()> {
    if args.nodes == 0 {
        bail!("--nodes must be at least 1");
    }
    if args.hosts.len() != 1 && args.hosts.len() != args.nodes {
        bail!(
            "--hosts lists {} host(s); give one per node ({}) or one for all",
            args.hosts.len(),
            args.nodes
        );
    }
    let genesis_path = args.out.join("genesis.json");
    if genesis_path.exists() {
        bail!(
            "{} exists; choose another --out (keys and genesis are never overwritten)",
            genesis_path.display()
        );
    }
    // Checked before any key or directory is made.
    let test_keys = if args.dev { dev_accounts()? } else { Vec::new() };
    if !args.chain.open {
        args.chain.admins(test_keys.first().map(|k| k.address()))?;
    }
    std::fs::create_dir_all(&args.out).wrap_err_with(|| format!("creating {}", args.out.display()))?;
    let shared_host = args.hosts.len() == 1;
    let host = |i: usize| args.hosts[if shared_host { 0 } else { i }].clone();
    // Several nodes on one host need distinct ports; 0 (ephemeral) stays 0.
    let port = |base: u16, i: usize| if shared_host && base != 0 { base + i as u16 } else { base };
    let mut members = Vec::new();
    for i in 0..args.nodes {
        let ip: std::net::Ipv4Addr =
            host(i).parse().wrap_err_with(|| format!("host {} is not an IPv4 address", host(i)))?;
        let p2p = format!("/ip4/{ip}/tcp/{}", port(args.p2p_port, i));
        members.push(new_member(&args.out.join(format!("node{i}")), i as u64 + 1, &p2p)?);
    }
    let mut alloc = args.alloc.clone();
    let mut operator = None;
    let test_accounts: Vec<Address> = test_keys.iter().map(|k| k.address()).collect();
    if let Some(first) = test_accounts.first() {
        operator = Some(IotGenesis { operator: *first, gateways: vec![], devices: vec![] });
        alloc.extend(test_accounts.iter().map(|a| (*a, U256::from(BALANCE_WEI))));
    }
    let spec = args.chain.spec(
        members.clone(),
        &alloc,
        operator,
        test_accounts.first().copied(),
        &test_accounts,
        vec![],
    )?;
    let genesis_json = spec.to_json()?;
    std::fs::write(&genesis_path, &genesis_json)?;
    println!(
        "Network of {} node(s), chain id {}, genesis {}\n",
        args.nodes, args.chain.chain_id, spec.genesis_hash
    );
    for (i, member) in members.iter().enumerate() {
        let dir = args.out.join(format!("node{i}"));
        std::fs::write(dir.join("genesis.json"), &genesis_json)?;
        let config = NodeConfig::generated(
            "genesis.json".into(),
            SocketAddr::new(args.rpc_bind, port(args.rpc_port, i)),
            random_token(),
            format!("/ip4/0.0.0.0/tcp/{}", port(args.p2p_port, i)),
        );
        fogchain_node::seal::write_private(&dir.join("config.toml"), &config.to_toml())?;
        println!(
            "node{i}: raft id {}, sealer {}, p2p {}/p2p/{}\n       copy {} to its host and run: fogchain node --config node{i}/config.toml",
            member.raft_id,
            member.address,
            member.p2p,
            member.peer_id,
            dir.display()
        );
    }
    Ok(())
}

//! Helpers for Fogchain's end-to-end tests: start the real `fogchain` binary as a devnet in a
//! temporary directory (real processes, real RocksDB, real sockets on 127.0.0.1 with ephemeral
//! ports), talk JSON-RPC to it, sign transactions with alloy, and kill processes.

pub use fogchain_devnet::{DeviceEntry, NetworkFile, ProxyEntry};
use serde_json::{json, Value};
use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// Generous bound for anything a loaded 2-core machine has to do.
pub const TIMEOUT: Duration = Duration::from_secs(180);

/// Path of the `fogchain` binary built next to this test binary, or `$FOGCHAIN_BIN` (e.g. a
/// release build, to measure latencies printed by the tests).
pub fn fogchain_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("FOGCHAIN_BIN") {
        return PathBuf::from(bin);
    }
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/<test> -> target/<profile>/fogchain
    let bin = exe.parent().and_then(Path::parent).expect("target dir").join("fogchain");
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo build --bin fogchain` (scripts/test.sh does)",
        bin.display()
    );
    bin
}

/// Runs a third-party client script (`program` = `node` or `python3`, `script` relative to the
/// repository) with `args`; it must exit 0 and print a JSON line with `"ok": true`. Returns its
/// stdout. scripts/test.sh installs the packages the scripts need.
pub fn run_client(program: &str, script: &str, args: &[&std::ffi::OsStr]) -> String {
    let output =
        std::process::Command::new(program).arg(repo_root().join(script)).args(args).output().unwrap_or_else(
            |e| panic!("run {program} {script} (scripts/test.sh installs its packages): {e}"),
        );
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{script} failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("\"ok\": true") || stdout.contains("\"ok\":true"), "{stdout}");
    println!("{stdout}");
    stdout
}

/// The repository root, from `CARGO_MANIFEST_DIR` as set when the test runs: a test binary
/// built in a shared target dir from another checkout (CI's clean clone) and still fresh by
/// mtime must not read that checkout's files.
pub fn repo_root() -> PathBuf {
    Path::new(&std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into()))
        .parent()
        .expect("repo root")
        .to_path_buf()
}

/// The reference data of the field scenarios (tests/fixtures/data: danger-index vectors, the
/// sales-order scenario; its README says where they come from).
pub fn shared_data() -> PathBuf {
    repo_root().join("tests/fixtures/data")
}

/// Polls `f` until it returns `Some`, or panics after [`TIMEOUT`] with `what`.
pub fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A `fogchain devnet` process and its network description.
pub struct Devnet {
    /// The devnet directory.
    pub dir: PathBuf,
    /// The launcher process.
    pub launcher: Child,
    /// Parsed `network.json`.
    pub network: NetworkFile,
}

impl Devnet {
    /// Starts `fogchain devnet --dir DIR` with every port 0 (free ports; 3 nodes and the proxy) and waits
    /// until it wrote network.json (every node serving, a leader elected).
    pub fn start(dir: &Path) -> Self {
        Self::start_with(dir, &[])
    }

    /// As [`Self::start`] with extra `fogchain devnet` arguments.
    pub fn start_with(dir: &Path, extra: &[&str]) -> Self {
        let network_path = dir.join("network.json");
        let _ = std::fs::remove_file(&network_path);
        std::fs::create_dir_all(dir).unwrap();
        let log = std::fs::File::create(dir.join("devnet.out")).unwrap();
        let mut launcher = Command::new(fogchain_bin())
            .args(["devnet", "--dir"])
            .arg(dir)
            .args([
                "--base-port",
                "0",
                "--p2p-base-port",
                "0",
                "--proxy-http-port",
                "0",
                "--proxy-mqtt-port",
                "0",
                "--proxy-mqtt-ws-port",
                "0",
            ])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start fogchain devnet");
        let network = wait_for("network.json", || {
            if let Ok(Some(status)) = launcher.try_wait() {
                let out = std::fs::read_to_string(dir.join("devnet.out")).unwrap_or_default();
                let log = std::fs::read_to_string(dir.join("node0/node.log")).unwrap_or_default();
                panic!("devnet exited with {status}:\n{out}\nnode0 log:\n{log}");
            }
            NetworkFile::load(&network_path).ok()
        });
        Self { dir: dir.to_path_buf(), launcher, network }
    }

    /// Number of nodes.
    pub fn node_count(&self) -> usize {
        self.network.nodes.len()
    }

    /// The proxy's section of network.json.
    pub fn proxy(&self) -> &ProxyEntry {
        self.network.proxy.as_ref().expect("the devnet runs a proxy")
    }

    /// The proxy's MQTT URL (`mqtt://host:port`).
    pub fn proxy_mqtt(&self) -> String {
        self.proxy().mqtt.clone()
    }

    /// The proxy's JSON-RPC gateway URL.
    pub fn proxy_http(&self) -> String {
        self.proxy().http.clone()
    }

    /// Demo device `i` of the proxy (`id`, `password`, `private_key`, ...).
    pub fn device(&self, i: usize) -> &DeviceEntry {
        &self.proxy().devices[i]
    }

    /// A connected MQTT client of demo device `i`.
    pub fn mqtt_device(&self, i: usize) -> mqtt::Mqtt {
        let d = self.device(i);
        mqtt::Mqtt::device(&self.proxy_mqtt(), &format!("{}-test", d.id), &d.id, &d.password)
    }

    /// The proxy's config file.
    pub fn proxy_config(&self) -> PathBuf {
        self.dir.join("proxy/proxy.toml")
    }

    /// Stops the devnet's proxy (SIGTERM, waits until it is gone) and runs it again as a
    /// test-owned process from `proxy/NAME.toml`: its config passed through `edit`. Returns the
    /// process and that config's path.
    pub fn rerun_proxy(
        &self,
        name: &str,
        edit: impl FnOnce(String) -> String,
    ) -> (mqtt::ProxyProcess, PathBuf) {
        let pid = self.proxy().pid.expect("proxy pid") as i32;
        kill(pid, libc::SIGTERM);
        wait_for("the devnet's proxy to stop", || (!process_alive(pid)).then_some(()));
        let config = self.dir.join(format!("proxy/{name}.toml"));
        std::fs::write(&config, edit(std::fs::read_to_string(self.proxy_config()).unwrap())).unwrap();
        (mqtt::ProxyProcess::start(&config), config)
    }

    /// A contract address from network.json, `0x…` (checksummed).
    pub fn contract(&self, name: &str) -> String {
        self.network.contract(name).expect("a predeployed contract").to_string()
    }

    /// A client for node `i` that sends the admin bearer token.
    pub fn admin_rpc(&self, i: usize) -> Rpc {
        Rpc::new(&self.rpc_url(i)).with_token(&self.network.admin_token)
    }

    /// Index of the node that is Raft leader now, as node `asked` sees it (waits for one).
    pub fn leader_index(&self, asked: usize) -> usize {
        let rpc = self.rpc(asked);
        wait_for("a Raft leader", || {
            let cluster = rpc.try_call("raft_cluster", json!([])).ok()?;
            let leader = cluster.as_array()?.iter().find(|m| m["role"] == "minter")?;
            let raft_id = leader["raftId"].as_u64()?;
            Some(raft_id as usize - 1)
        })
    }

    /// Config file of node `i`.
    pub fn node_config(&self, i: usize) -> PathBuf {
        self.dir.join(format!("node{i}/config.toml"))
    }

    /// Starts node `i` again as its own process (`fogchain node --config ...`), logging to its
    /// node.log; returns the process.
    pub fn restart_node(&self, i: usize) -> NodeProcess {
        NodeProcess::start(&self.node_config(i), &self.dir.join(format!("node{i}")))
    }

    /// HTTP RPC URL of node `i`.
    pub fn rpc_url(&self, i: usize) -> String {
        self.network.nodes[i].rpc.clone()
    }

    /// A JSON-RPC client for node `i`.
    pub fn rpc(&self, i: usize) -> Rpc {
        Rpc::new(&self.rpc_url(i))
    }

    /// pid of node `i`.
    pub fn node_pid(&self, i: usize) -> i32 {
        self.network.nodes[i].pid.expect("node pid") as i32
    }

    /// Private key (hex) of test account `i`.
    pub fn account_key(&self, i: usize) -> String {
        self.network.accounts[i].private_key.clone()
    }

    /// SIGKILLs the node processes and the launcher, and waits until they are gone.
    pub fn kill_hard(mut self) {
        let pids: Vec<i32> = (0..self.node_count()).map(|i| self.node_pid(i)).collect();
        for pid in &pids {
            kill(*pid, libc::SIGKILL);
        }
        let _ = self.launcher.kill();
        let _ = self.launcher.wait();
        for pid in pids {
            wait_for("killed node to exit", || (!process_alive(pid)).then_some(()));
        }
        std::mem::forget(self);
    }

    /// Stops the devnet as Ctrl-C would (SIGINT) and waits for every process to exit.
    pub fn stop(mut self) {
        let pids: Vec<i32> = (0..self.node_count()).map(|i| self.node_pid(i)).collect();
        kill(self.launcher.id() as i32, libc::SIGINT);
        let status = wait_for("devnet to stop", || self.launcher.try_wait().ok().flatten());
        assert!(status.success(), "devnet exit status {status}");
        for pid in pids {
            wait_for("node to exit", || (!process_alive(pid)).then_some(()));
        }
        std::mem::forget(self);
    }
}

impl Drop for Devnet {
    fn drop(&mut self) {
        kill(self.launcher.id() as i32, libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.launcher.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.launcher.kill();
    }
}

/// A `fogchain node` process started by a test; SIGKILLed when dropped.
pub struct NodeProcess {
    /// The process.
    pub child: Child,
    /// Its directory (holds rpc.addr and node.log).
    pub dir: PathBuf,
}

impl NodeProcess {
    /// Runs `fogchain node --config CONFIG`, appending to `DIR/node.log`.
    pub fn start(config: &Path, dir: &Path) -> Self {
        let _ = std::fs::remove_file(dir.join("rpc.addr"));
        let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("node.log")).unwrap();
        let child = Command::new(fogchain_bin())
            .args(["node", "--config"])
            .arg(config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start fogchain node");
        Self { child, dir: dir.to_path_buf() }
    }

    /// A client once the node serves RPC.
    pub fn rpc(&mut self) -> Rpc {
        let addr = wait_for("node RPC address", || {
            if let Ok(Some(status)) = self.child.try_wait() {
                let log = std::fs::read_to_string(self.dir.join("node.log")).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(20).collect();
                panic!("node exited with {status}: {tail:#?}");
            }
            std::fs::read_to_string(self.dir.join("rpc.addr")).ok()
        });
        Rpc::new(&format!("http://{}", addr.trim()))
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends a signal to a process.
pub fn kill(pid: i32, signal: i32) {
    // SAFETY: kill(2) with a pid this test started.
    unsafe { libc::kill(pid, signal) };
}

/// Whether a process exists (and is not a zombie).
pub fn process_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat.split(')').nth(1).is_some_and(|rest| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

pub use fogchain_client::RpcError;

/// A small blocking JSON-RPC client over HTTP.
pub struct Rpc {
    url: String,
    agent: reqwest::blocking::Client,
    token: Option<String>,
}

impl Rpc {
    /// Client for `url`.
    pub fn new(url: &str) -> Self {
        Self {
            url: url.to_string(),
            agent: reqwest::blocking::Client::builder().timeout(TIMEOUT).build().unwrap(),
            token: None,
        }
    }

    /// Sends `Authorization: Bearer TOKEN` with every call.
    pub fn with_token(mut self, token: &str) -> Self {
        self.token = Some(token.to_string());
        self
    }

    /// The URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Calls `method`; returns the result or the JSON-RPC error.
    pub fn try_call(&self, method: &str, params: Value) -> Result<Value, RpcError> {
        let mut request = self
            .agent
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(fogchain_client::jsonrpc::request(method, &params, 1));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let answer = request.send().unwrap().bytes().unwrap();
        match fogchain_client::jsonrpc::answer(&answer) {
            Ok(result) => Ok(result),
            Err(fogchain_client::AnswerError::Rpc(e)) => Err(e),
            Err(e) => panic!("{method}: {e}"),
        }
    }

    /// Sends `calls` as one JSON-RPC batch; one result or error per call, in order.
    pub fn batch(&self, calls: &[(&str, Value)]) -> Vec<Result<Value, RpcError>> {
        let body = fogchain_client::jsonrpc::batch(calls);
        let request =
            self.agent.post(&self.url).header(reqwest::header::CONTENT_TYPE, "application/json").body(body);
        let answer = request.send().unwrap().bytes().unwrap();
        let answers = fogchain_client::jsonrpc::batch_answers(&answer, calls.len())
            .unwrap_or_else(|e| panic!("batch: {e}: {}", String::from_utf8_lossy(&answer)));
        answers
            .into_iter()
            .map(|a| match a {
                Ok(v) => Ok(v),
                Err(fogchain_client::AnswerError::Rpc(e)) => Err(e),
                Err(e) => panic!("batch: {e}"),
            })
            .collect()
    }

    /// Calls `method`, panicking on a JSON-RPC error.
    pub fn call(&self, method: &str, params: Value) -> Value {
        self.try_call(method, params).unwrap_or_else(|e| panic!("{method}: {} {}", e.code, e.message))
    }

    /// A quantity result as u64.
    pub fn quantity(&self, method: &str, params: Value) -> u64 {
        let v = self.call(method, params);
        u64::from_str_radix(v.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
    }

    /// The head block number.
    pub fn block_number(&self) -> u64 {
        self.quantity("eth_blockNumber", json!([]))
    }

    /// Block hash at `number` (None when not there yet).
    pub fn block_hash(&self, number: u64) -> Option<String> {
        let block = self.call("eth_getBlockByNumber", json!([format!("0x{number:x}"), false]));
        block["hash"].as_str().map(str::to_string)
    }

    /// Waits for the receipt of `hash`.
    pub fn wait_receipt(&self, hash: &str) -> Value {
        wait_for(&format!("receipt of {hash}"), || {
            let r = self.call("eth_getTransactionReceipt", json!([hash]));
            (!r.is_null()).then_some(r)
        })
    }
}

pub mod mosquitto;
pub mod mqtt;
pub mod tx;

/// Resident memory of process `pid` (VmRSS), bytes.
pub fn rss_bytes(pid: i32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse::<u64>().ok().map(|kib| kib * 1024)
}

/// Waits until every client reports the same head (number and hash); returns the number.
pub fn wait_converged(rpcs: &[&Rpc]) -> u64 {
    wait_for("all nodes at the same head", || {
        let heads: Vec<(u64, Option<String>)> = rpcs
            .iter()
            .map(|r| {
                let n = r.block_number();
                (n, r.block_hash(n))
            })
            .collect();
        heads.iter().all(|h| *h == heads[0]).then_some(heads[0].0)
    })
}

/// Asserts that every client has the same block hash and state root at every height up to
/// `head`.
pub fn assert_one_chain(rpcs: &[&Rpc], head: u64) {
    for number in 0..=head {
        let blocks: Vec<Value> = rpcs
            .iter()
            .map(|r| r.call("eth_getBlockByNumber", json!([format!("0x{number:x}"), false])))
            .collect();
        for (i, block) in blocks.iter().enumerate() {
            assert_eq!(block["hash"], blocks[0]["hash"], "block {number} hash differs on client {i}");
            assert_eq!(
                block["stateRoot"], blocks[0]["stateRoot"],
                "block {number} state root differs on client {i}"
            );
        }
    }
}

/// A free TCP port on 127.0.0.1.
/// Picked at random below Linux's ephemeral range (32768–60999), so that no outgoing
/// connection's source port takes it before the test binds it.
pub fn free_port() -> u16 {
    let mut seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos()
        ^ std::process::id().rotate_left(16);
    for _ in 0..200 {
        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let port = 20_000 + (seed >> 8) as u16 % 12_000;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// (seq, topic, payload) of every Reading of `device` recorded in SensorRegistry.
pub fn readings(rpc: &Rpc, registry: &str, device: &str) -> Vec<(u64, String, Vec<u8>)> {
    let device_key = alloy_primitives::keccak256(device.as_bytes());
    let logs = rpc.call(
        "eth_getLogs",
        json!([{"fromBlock": "0x0", "toBlock": "latest", "address": registry,
                "topics": [<fogchain_contracts::SensorRegistry::Reading as alloy_sol_types::SolEvent>::SIGNATURE_HASH, device_key]}]),
    );
    logs.as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let topics: Vec<alloy_primitives::B256> = l["topics"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_str().unwrap().parse().unwrap())
                .collect();
            let data = alloy_primitives::hex::decode(l["data"].as_str().unwrap()).unwrap();
            let e =
                <fogchain_contracts::SensorRegistry::Reading as alloy_sol_types::SolEvent>::decode_log_data(
                    &alloy_primitives::LogData::new_unchecked(topics, data.into()),
                )
                .unwrap();
            (e.seq, e.topic, e.payload.to_vec())
        })
        .collect()
}

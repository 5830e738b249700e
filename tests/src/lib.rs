//! Helpers for Fogchain's end-to-end tests: start the real `fogchain` binary as a devnet in a
//! temporary directory (real processes, real RocksDB, real sockets on 127.0.0.1 with ephemeral
//! ports), talk JSON-RPC to it, sign transactions with alloy, and kill processes.

use serde_json::{json, Value};
use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// Generous bound for anything a loaded 2-core machine has to do.
pub const TIMEOUT: Duration = Duration::from_secs(180);

/// Path of the `fogchain` binary built next to this test binary.
pub fn fogchain_bin() -> PathBuf {
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

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("repo root").to_path_buf()
}

/// The shared reference data directory (`../shared/data` beside the repository, or
/// `$FOGCHAIN_SHARED_DIR/data`).
pub fn shared_data() -> PathBuf {
    match std::env::var_os("FOGCHAIN_SHARED_DIR") {
        Some(dir) => PathBuf::from(dir).join("data"),
        None => repo_root().join("../shared/data"),
    }
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
    pub network: Value,
}

impl Devnet {
    /// Starts `fogchain devnet --dir DIR --base-port 0` and waits until it wrote network.json.
    pub fn start(dir: &Path) -> Self {
        let network_path = dir.join("network.json");
        let _ = std::fs::remove_file(&network_path);
        std::fs::create_dir_all(dir).unwrap();
        let log = std::fs::File::create(dir.join("devnet.out")).unwrap();
        let mut launcher = Command::new(fogchain_bin())
            .args(["devnet", "--dir"])
            .arg(dir)
            .args(["--base-port", "0"])
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
            let text = std::fs::read_to_string(&network_path).ok()?;
            serde_json::from_str::<Value>(&text).ok()
        });
        Self { dir: dir.to_path_buf(), launcher, network }
    }

    /// HTTP RPC URL of node `i`.
    pub fn rpc_url(&self, i: usize) -> String {
        self.network["nodes"][i]["rpc"].as_str().unwrap().to_string()
    }

    /// A JSON-RPC client for node `i`.
    pub fn rpc(&self, i: usize) -> Rpc {
        Rpc::new(&self.rpc_url(i))
    }

    /// pid of node `i`.
    pub fn node_pid(&self, i: usize) -> i32 {
        self.network["nodes"][i]["pid"].as_i64().unwrap() as i32
    }

    /// Private key (hex) of test account `i`.
    pub fn account_key(&self, i: usize) -> String {
        self.network["accounts"][i]["privateKey"].as_str().unwrap().to_string()
    }

    /// SIGKILLs the node processes and the launcher, and waits until they are gone.
    pub fn kill_hard(mut self) {
        let pids: Vec<i32> =
            (0..self.network["nodes"].as_array().unwrap().len()).map(|i| self.node_pid(i)).collect();
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
        let pids: Vec<i32> =
            (0..self.network["nodes"].as_array().unwrap().len()).map(|i| self.node_pid(i)).collect();
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

/// A JSON-RPC error answered by the node.
#[derive(Debug, Clone)]
pub struct RpcErr {
    /// Error code.
    pub code: i64,
    /// Error message.
    pub message: String,
}

/// A small blocking JSON-RPC client over HTTP.
pub struct Rpc {
    url: String,
    agent: reqwest::blocking::Client,
}

impl Rpc {
    /// Client for `url`.
    pub fn new(url: &str) -> Self {
        Self {
            url: url.to_string(),
            agent: reqwest::blocking::Client::builder().timeout(TIMEOUT).build().unwrap(),
        }
    }

    /// Calls `method`; returns the result or the JSON-RPC error.
    pub fn try_call(&self, method: &str, params: Value) -> Result<Value, RpcErr> {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let response: Value = self.agent.post(&self.url).json(&body).send().unwrap().json().unwrap();
        if let Some(err) = response.get("error") {
            return Err(RpcErr {
                code: err["code"].as_i64().unwrap_or_default(),
                message: err["message"].as_str().unwrap_or_default().to_string(),
            });
        }
        Ok(response["result"].clone())
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

    /// Waits for the receipt of `hash`.
    pub fn wait_receipt(&self, hash: &str) -> Value {
        wait_for(&format!("receipt of {hash}"), || {
            let r = self.call("eth_getTransactionReceipt", json!([hash]));
            (!r.is_null()).then_some(r)
        })
    }
}

pub mod tx;

//! The processes under test: a devnet's nodes started by the chaos run itself (so that it can
//! kill, pause, restart them and give each its own clock), and the levers of every fault:
//! signals, the transport's fault switch (`[p2p] fault-file`, docs/consensus.md), libfaketime's
//! timestamp file, and a small loop-mounted filesystem under one node's data directory.

use crate::rpc::Rpc;
use alloy_primitives::Address;
use eyre::{bail, eyre, WrapErr};
use fogchain_devnet::NetworkFile;
use serde_json::json;
use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};
use tokio::process::{Child, Command};

/// libfaketime from Debian's `faketime` package.
const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/// Size of the filesystem under the disk-fault node's data directory, MiB.
const DISK_MIB: u64 = 512;

/// One node process.
pub(crate) struct Node {
    pub(crate) raft_id: u64,
    /// Its sealing address (the `miner` of the blocks it mints).
    pub(crate) address: Address,
    pub(crate) peer_id: String,
    pub(crate) rpc: Rpc,
    /// `<devnet>/node<i>`: config.toml, node.log, partition, faketime.
    dir: PathBuf,
    child: Option<Child>,
    pub(crate) paused: bool,
}

/// The cluster and what the faults need to reach it.
pub(crate) struct Cluster {
    bin: PathBuf,
    pub(crate) nodes: Vec<Node>,
    /// Clocks can jump (libfaketime is installed).
    pub(crate) clocks: bool,
    /// Index of the node whose data directory is a loop-mounted filesystem, if one could be made.
    pub(crate) disk: Option<usize>,
}

impl Cluster {
    /// Creates a devnet of `n` nodes in `dir` with `fogchain devnet` (genesis, keys, configs with
    /// the fault switch, fixed ports so restarted nodes keep their addresses), stops its
    /// launcher and starts the nodes as children of this process.
    pub(crate) async fn create(bin: &Path, dir: &Path, n: usize, with_disk: bool) -> eyre::Result<Self> {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir)?;
        let (rpc_base, p2p_base) = (free_range(n)?, free_range(n)?);
        let log = std::fs::File::create(dir.join("devnet.log"))?;
        let mut devnet = Command::new(bin)
            .args(["devnet", "--nodes", &n.to_string(), "--fault-injection", "--no-proxy", "--no-metrics"])
            .args(["--base-port", &rpc_base.to_string(), "--p2p-base-port", &p2p_base.to_string()])
            .arg("--dir")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .wrap_err_with(|| format!("starting {} devnet", bin.display()))?;
        let network_path = dir.join("network.json");
        let deadline = Instant::now() + Duration::from_secs(300);
        while !network_path.exists() {
            if let Some(status) = devnet.try_wait()? {
                bail!("the devnet exited with {status}; see {}", dir.join("devnet.log").display());
            }
            if Instant::now() > deadline {
                bail!("the devnet did not start within 300 s; see {}", dir.join("devnet.log").display());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let network = NetworkFile::load(&network_path)?;
        signal(devnet.id(), libc::SIGTERM);
        tokio::time::timeout(Duration::from_secs(60), devnet.wait())
            .await
            .map_err(|_| eyre!("devnet did not stop"))??;
        let clocks = Path::new(LIBFAKETIME).exists();
        let mut nodes = Vec::new();
        for entry in &network.nodes {
            let dir = entry.datadir.parent().ok_or_else(|| eyre!("datadir without a parent"))?.to_path_buf();
            nodes.push(Node {
                raft_id: entry.raft_id,
                address: entry.address.ok_or_else(|| eyre!("network.json: node without an address"))?,
                peer_id: entry.peer_id.clone().unwrap_or_default(),
                rpc: Rpc::new(&entry.rpc)?,
                dir,
                child: None,
                paused: false,
            });
        }
        let mut cluster = Self { bin: bin.to_path_buf(), nodes, clocks, disk: None };
        if with_disk {
            let last = n - 1;
            match cluster.mount_disk(last) {
                Ok(()) => cluster.disk = Some(last),
                Err(e) => eprintln!("chaos: no disk fault ({e:#})"),
            }
        }
        for i in 0..n {
            cluster.start(i)?;
        }
        for i in 0..n {
            cluster.wait_serving(i, Duration::from_secs(120)).await?;
        }
        Ok(cluster)
    }

    /// Starts node `i` (`fogchain node --config`), with libfaketime reading its `faketime`
    /// file when clocks can jump (the wall clock only; monotonic time stays real, as after an
    /// NTP step).
    pub(crate) fn start(&mut self, i: usize) -> eyre::Result<()> {
        let node = &mut self.nodes[i];
        let log = std::fs::OpenOptions::new().create(true).append(true).open(node.dir.join("node.log"))?;
        let mut command = Command::new(&self.bin);
        command
            .arg("node")
            .arg("--config")
            .arg(node.dir.join("config.toml"))
            .current_dir(&node.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true);
        if self.clocks {
            let file = node.dir.join("faketime");
            if !file.exists() {
                std::fs::write(&file, "+0\n")?;
            }
            command
                .env("LD_PRELOAD", LIBFAKETIME)
                .env("FAKETIME_TIMESTAMP_FILE", &file)
                .env("FAKETIME_CACHE_DURATION", "1")
                .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
                .env("FAKETIME_DONT_RESET", "1");
        }
        node.child = Some(command.spawn().wrap_err_with(|| format!("starting node{i}"))?);
        node.paused = false;
        Ok(())
    }

    /// Waits until node `i` answers `eth_blockNumber`.
    pub(crate) async fn wait_serving(&mut self, i: usize, wait: Duration) -> eyre::Result<()> {
        let deadline = Instant::now() + wait;
        loop {
            if self.nodes[i].rpc.call("eth_blockNumber", json!([])).await.is_ok() {
                return Ok(());
            }
            if let Some(status) = self.exited(i) {
                bail!("node{i} exited with {status}; see {}", self.log(i).display());
            }
            if Instant::now() > deadline {
                bail!("node{i} did not serve within {wait:?}; see {}", self.log(i).display());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `node<i>/node.log`.
    pub(crate) fn log(&self, i: usize) -> PathBuf {
        self.nodes[i].dir.join("node.log")
    }

    /// The exit status of node `i` if it ended by itself (a fail-stop); `None` while it runs or
    /// when it was never started.
    pub(crate) fn exited(&mut self, i: usize) -> Option<std::process::ExitStatus> {
        let node = &mut self.nodes[i];
        let status = node.child.as_mut()?.try_wait().ok().flatten()?;
        node.child = None;
        Some(status)
    }

    /// Whether node `i` runs (paused or not).
    pub(crate) fn running(&self, i: usize) -> bool {
        self.nodes[i].child.is_some()
    }

    /// SIGKILL to node `i`; waits until it is gone.
    pub(crate) async fn kill(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        if let Some(mut child) = node.child.take() {
            let _ = child.start_kill();
            let _ = tokio::time::timeout(Duration::from_secs(30), child.wait()).await;
        }
        node.paused = false;
    }

    /// SIGSTOP (`pause`) or SIGCONT to node `i`.
    pub(crate) fn pause(&mut self, i: usize, pause: bool) {
        let node = &mut self.nodes[i];
        if let Some(pid) = node.child.as_ref().and_then(Child::id) {
            signal(Some(pid), if pause { libc::SIGSTOP } else { libc::SIGCONT });
            node.paused = pause;
        }
    }

    /// Writes every node's fault file (`cuts[i]`: the tokens of docs/consensus.md's fault
    /// switch; empty = connected). The transport reads it within 500 ms.
    pub(crate) fn cut(&self, cuts: &[String]) -> eyre::Result<()> {
        for (node, cut) in self.nodes.iter().zip(cuts) {
            std::fs::write(node.dir.join("partition"), cut)?;
        }
        Ok(())
    }

    /// Sets node `i`'s wall clock `offset` seconds from the real one (re-read within 1 s).
    pub(crate) fn clock(&self, i: usize, offset: i64) -> eyre::Result<()> {
        Ok(std::fs::write(self.nodes[i].dir.join("faketime"), format!("{offset:+}s\n"))?)
    }

    /// Fills (`full`) or frees the disk-fault node's filesystem: a filler file takes all but
    /// 16 KiB of the free space.
    pub(crate) fn fill_disk(&self, full: bool) -> eyre::Result<()> {
        let i = self.disk.ok_or_else(|| eyre!("no loop-mounted disk"))?;
        let data = self.nodes[i].dir.join("data");
        let filler = data.join("chaos-filler");
        if !full {
            let _ = std::fs::remove_file(&filler);
            return Ok(());
        }
        // SAFETY: statvfs on a NUL-terminated path into a zeroed struct.
        let free = unsafe {
            let path = std::ffi::CString::new(data.as_os_str().as_encoded_bytes())?;
            let mut st: libc::statvfs = std::mem::zeroed();
            if libc::statvfs(path.as_ptr(), &mut st) != 0 {
                bail!("statvfs {}: {}", data.display(), std::io::Error::last_os_error());
            }
            st.f_bavail * st.f_frsize
        };
        let file = std::fs::File::create(&filler)?;
        file.set_len(0)?;
        let size = free.saturating_sub(16 << 10);
        // fallocate reserves the blocks (set_len would make a sparse file).
        // SAFETY: fallocate on an open file descriptor.
        if unsafe { libc::fallocate(std::os::fd::AsRawFd::as_raw_fd(&file), 0, 0, size as libc::off_t) } != 0
        {
            bail!("fallocate {}: {}", filler.display(), std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// Moves node `i`'s data directory onto a fresh ext4 filesystem of [`DISK_MIB`] MiB in a
    /// loop device (needs root).
    fn mount_disk(&self, i: usize) -> eyre::Result<()> {
        let dir = &self.nodes[i].dir;
        let (data, image, moved) = (dir.join("data"), dir.join("disk.img"), dir.join("data.moved"));
        run("truncate", &["-s".as_ref(), format!("{DISK_MIB}M").as_ref(), image.as_os_str()])?;
        // -m 0: no blocks reserved for root (the node runs as root and would write into them)
        run("mkfs.ext4", &["-q".as_ref(), "-F".as_ref(), "-m".as_ref(), "0".as_ref(), image.as_os_str()])?;
        std::fs::rename(&data, &moved)?;
        std::fs::create_dir(&data)?;
        if let Err(e) = run("mount", &["-o".as_ref(), "loop".as_ref(), image.as_os_str(), data.as_os_str()]) {
            std::fs::remove_dir(&data)?;
            std::fs::rename(&moved, &data)?;
            return Err(e);
        }
        run("cp", &["-a".as_ref(), moved.join(".").as_os_str(), data.as_os_str()])?;
        std::fs::remove_dir_all(&moved)?;
        Ok(())
    }

    /// The Raft leader most live nodes name (`raft_leader`), as a node index.
    pub(crate) async fn leader(&self) -> Option<usize> {
        let mut votes = vec![0usize; self.nodes.len()];
        for node in &self.nodes {
            if node.child.is_none() || node.paused {
                continue;
            }
            let Ok(Ok(v)) =
                tokio::time::timeout(Duration::from_millis(500), node.rpc.call("raft_leader", json!([])))
                    .await
            else {
                continue;
            };
            if let Some(l) = self.nodes.iter().position(|n| v.as_str() == Some(n.peer_id.as_str())) {
                votes[l] += 1;
            }
        }
        let (best, count) = votes.iter().enumerate().max_by_key(|(_, c)| **c)?;
        (*count > 0).then_some(best)
    }

    /// Stops every node (SIGCONT first, then SIGTERM; SIGKILL after 20 s) and unmounts the disk.
    pub(crate) async fn stop(&mut self) {
        for i in 0..self.nodes.len() {
            self.pause(i, false);
            if let Some(mut child) = self.nodes[i].child.take() {
                signal(child.id(), libc::SIGTERM);
                if tokio::time::timeout(Duration::from_secs(20), child.wait()).await.is_err() {
                    let _ = child.kill().await;
                }
            }
        }
        if let Some(i) = self.disk {
            let _ = run("umount", &[self.nodes[i].dir.join("data").as_os_str()]);
        }
    }
}

fn signal(pid: Option<u32>, sig: libc::c_int) {
    if let Some(pid) = pid {
        // SAFETY: kill(2) on the pid of a child this process holds (not yet reaped).
        unsafe { libc::kill(pid as libc::pid_t, sig) };
    }
}

fn run(program: &str, args: &[&std::ffi::OsStr]) -> eyre::Result<()> {
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .wrap_err_with(|| format!("running {program}"))?;
    if !out.status.success() {
        bail!("{program} failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

/// A base port with `n` free ports after it (RPC and p2p ports stay fixed across restarts).
fn free_range(n: usize) -> eyre::Result<u16> {
    let mut seed = std::process::id().wrapping_mul(2_654_435_761)
        ^ std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    for _ in 0..500 {
        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let base = 20_000 + (seed >> 8) as u16 % 30_000;
        if (0..n as u16).all(|k| std::net::TcpListener::bind(("127.0.0.1", base + k)).is_ok()) {
            return Ok(base);
        }
    }
    bail!("no {n} free ports in a row")
}

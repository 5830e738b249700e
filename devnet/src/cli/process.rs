//! Child processes of the launcher: spawning (they die with it), stopping, free ports, and the
//! `fogchain-proxy` binary the `proxy` and `sale` subcommands run.

use std::{path::Path, path::PathBuf, time::Duration};
use tokio::process::{Child, Command};

/// The `fogchain-proxy` binary: next to this executable (a cargo build puts both in one
/// directory), else on `PATH`.
pub(crate) fn proxy_bin() -> PathBuf {
    let sibling = std::env::current_exe().ok().and_then(|exe| Some(exe.parent()?.join("fogchain-proxy")));
    sibling.filter(|p| p.exists()).unwrap_or_else(|| PathBuf::from("fogchain-proxy"))
}

/// Replaces this process with `fogchain-proxy ARGS` (same pid, so whoever started
/// `fogchain proxy` can signal it). Returns only on failure.
pub(crate) fn exec_proxy(args: Vec<std::ffi::OsString>) -> eyre::Report {
    use std::os::unix::process::CommandExt;
    let bin = proxy_bin();
    let error = std::process::Command::new(&bin).args(args).exec();
    eyre::eyre!("running {}: {error} (build it with `cargo build --bin fogchain-proxy`)", bin.display())
}

/// A free TCP port on 127.0.0.1 (bound and released): node p2p ports when a network is created,
/// the proxy's ports when they are asked to be 0.
///
/// Picked at random below Linux's ephemeral range (32768–60999), where the kernel never hands
/// out source ports of outgoing connections, so such a connection cannot take the port between
/// this check and the process that binds it later.
pub(crate) fn free_port() -> std::io::Result<u16> {
    for _ in 0..200 {
        let port = rand::random_range(20_000..32_000u16);
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Runs `PROGRAM [SUBCOMMAND] --config CONFIG` as a child that dies with the launcher
/// (PR_SET_PDEATHSIG), appending its output to `log`.
pub(crate) fn spawn_child(
    program: &Path,
    subcommand: Option<&str>,
    config: &Path,
    log: &Path,
) -> eyre::Result<Child> {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log)?;
    let mut command = Command::new(program);
    command
        .args(subcommand)
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

/// The last lines of a child's log, for error messages.
pub(crate) fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(10)..].join("\n");
    format!("{tail}\n(full log: {})", path.display())
}

/// SIGTERM to every child, then waits up to 20 s for each (SIGKILL after that).
pub(crate) async fn stop_all(children: &mut [Child]) {
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

/// The socket address a child writes to `path` once it serves (`rpc.addr`, `metrics.addr`),
/// waiting up to `wait` for it; `None` when it does not appear.
pub(crate) async fn read_addr(path: &Path, wait: Duration) -> Option<std::net::SocketAddr> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        if let Some(addr) = std::fs::read_to_string(path).ok().and_then(|t| t.trim().parse().ok()) {
            return Some(addr);
        }
        if tokio::time::Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

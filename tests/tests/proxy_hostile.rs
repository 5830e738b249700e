//! Hostile devices at the proxy's MQTT front: 2,000 CONNECTs with a wrong password at once (from
//! 127.0.0.1) leave the proxy's memory flat (argon2 checks are bounded in parallel and failures
//! throttled, docs/proxy.md "Hostile devices"), and a real device (from 127.0.0.2) still
//! connects while they are in flight; one device cannot hold more than `sessions-per-device`.

use fogchain_e2e::{
    mqtt::{host_port, raw},
    Devnet,
};
use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    time::{Duration, Instant},
};

const ATTACKERS: usize = 2_000;

/// Resident memory of `pid`, KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Connects from `local` (a loopback address) and returns the CONNACK return code.
fn connack_from(local: [u8; 4], server: SocketAddr, packet: &[u8]) -> Option<u8> {
    let socket = libc_bind_connect(local, server)?;
    let mut stream = socket;
    stream.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    stream.write_all(packet).ok()?;
    let mut ack = [0u8; 4];
    stream.read_exact(&mut ack).ok()?;
    (ack[0] == 0x20).then_some(ack[3])
}

/// A TCP connection to `server` from `local`:0 (std cannot bind before connecting).
fn libc_bind_connect(local: [u8; 4], server: SocketAddr) -> Option<TcpStream> {
    use std::os::fd::FromRawFd;
    let SocketAddr::V4(server) = server else { return None };
    // SAFETY: plain socket calls on a descriptor this function owns until it is wrapped.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        if fd < 0 {
            return None;
        }
        let sockaddr = |ip: [u8; 4], port: u16| libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: port.to_be(),
            sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(ip) },
            sin_zero: [0; 8],
        };
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        let from = sockaddr(local, 0);
        let to = sockaddr(server.ip().octets(), server.port());
        let ok = libc::bind(fd, &from as *const _ as *const libc::sockaddr, len) == 0
            && libc::connect(fd, &to as *const _ as *const libc::sockaddr, len) == 0;
        if !ok {
            libc::close(fd);
            return None;
        }
        Some(TcpStream::from_raw_fd(fd))
    }
}

#[test]
fn wrong_password_flood_leaves_memory_flat_and_a_device_connects() {
    let dir = tempfile::tempdir().unwrap();
    let net = Devnet::start(dir.path());
    let proxy = net.proxy();
    let pid = proxy.pid.expect("proxy pid");
    let (host, port) = host_port(&net.proxy_mqtt());
    let server: SocketAddr = format!("{host}:{port}").parse().unwrap();
    let device = net.device(0).clone();
    let before = rss_kib(pid);

    // The flood: every connection sends its CONNECT, then all wait for their answers.
    let mut open = Vec::new();
    for i in 0..ATTACKERS {
        let id = format!("intruder-{i}");
        if let Some(mut s) = libc_bind_connect([127, 0, 0, 1], server) {
            let packet = raw::connect(&id, &device.username, "wrong-password");
            if s.write_all(&packet).is_ok() {
                open.push(s);
            }
        }
    }
    assert!(open.len() > ATTACKERS / 4, "only {} connections opened", open.len());

    // A real device, from another address, connects while the flood is in flight (it may be
    // told the server is busy, code 3, and retry).
    let good = raw::connect("real-device", &device.username, &device.password);
    let started = Instant::now();
    let mut peak = rss_kib(pid);
    let code = loop {
        peak = peak.max(rss_kib(pid));
        match connack_from([127, 0, 0, 2], server, &good) {
            Some(0) => break 0,
            other => {
                assert!(
                    started.elapsed() < Duration::from_secs(120),
                    "the device could not connect: {other:?}"
                );
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    };
    assert_eq!(code, 0);
    let connected_after = started.elapsed();

    // Every intruder gets a refusal or a closed connection, none a session.
    let mut codes = std::collections::BTreeMap::new();
    for mut s in open {
        peak = peak.max(rss_kib(pid));
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut ack = [0u8; 4];
        let code = match s.read_exact(&mut ack) {
            Ok(()) => format!("connack {}", ack[3]),
            Err(_) => "closed".to_string(),
        };
        assert_ne!(code, "connack 0", "an intruder got in");
        *codes.entry(code).or_insert(0usize) += 1;
    }
    peak = peak.max(rss_kib(pid));
    println!(
        "rss before {before} KiB, peak {peak} KiB; device connected after {connected_after:?}; intruders: {codes:?}"
    );
    // argon2id holds 19 MiB per check: unbounded, 2,000 checks would need tens of GiB.
    assert!(peak < before + 100 * 1024, "memory grew from {before} to {peak} KiB");

    // One device holds at most `sessions-per-device` (8) sessions: a 9th is refused (CONNACK 3).
    let other = net.device(1).clone();
    let mut held = Vec::new();
    for i in 0..9 {
        let mut s = libc_bind_connect([127, 0, 0, 3], server).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        s.write_all(&raw::connect(&format!("session-{i}"), &other.username, &other.password)).unwrap();
        let mut ack = [0u8; 4];
        s.read_exact(&mut ack).unwrap();
        assert_eq!(ack[3], if i < 8 { 0 } else { 3 }, "session {i}");
        held.push(s);
    }
    net.stop();
}

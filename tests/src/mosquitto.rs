//! Debian's Mosquitto as the external broker of proxy tests: a password file for the devices and
//! the bridge user, and the per-device topic ACL of docs/proxy.md.

use crate::{free_port, wait_for};
use std::{
    path::Path,
    process::{Child, Command},
};

/// The bridge's user at the broker (every proxy of a group uses it, with its own client id).
pub const BRIDGE_USER: (&str, &str) = ("fogchain-bridge", "bridge-secret");

/// A running Mosquitto; killed when dropped.
pub struct Mosquitto {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl Mosquitto {
    /// Starts Mosquitto with its files in `dir`: `users` (name, password) may use their own
    /// `devices/{name}/` and shadow topics, [`BRIDGE_USER`] everything.
    pub fn start(dir: &Path, users: &[(String, String)]) -> Self {
        let mosquitto =
            ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"].into_iter().find(|p| Path::new(p).exists()).expect(
                "the mosquitto broker is missing: apt-get install -y mosquitto (scripts/test.sh installs it)",
            );
        std::fs::create_dir_all(dir).unwrap();
        let passwd = dir.join("passwd");
        let bridge = (BRIDGE_USER.0.to_string(), BRIDGE_USER.1.to_string());
        for (i, (user, password)) in users.iter().chain([&bridge]).enumerate() {
            let mut c = Command::new("mosquitto_passwd");
            if i == 0 {
                c.arg("-c");
            }
            let status = c.arg("-b").arg(&passwd).arg(user).arg(password).status().unwrap();
            assert!(status.success());
        }
        let acl = dir.join("acl");
        std::fs::write(
            &acl,
            format!(
                "pattern readwrite devices/%u/#\npattern readwrite $fogchain/things/%u/shadow/#\nuser {}\ntopic readwrite #\ntopic readwrite $fogchain/#\n",
                BRIDGE_USER.0
            ),
        )
        .unwrap();
        let port = free_port();
        let conf = dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {}\nacl_file {}\npersistence false\nmax_inflight_messages 100\nmax_queued_messages 100000\n",
                passwd.display(),
                acl.display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("mosquitto.log")).unwrap();
        let child = Command::new(mosquitto)
            .arg("-c")
            .arg(&conf)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        wait_for("mosquitto listening", || std::net::TcpStream::connect(("127.0.0.1", port)).ok());
        Self { child, port }
    }

    /// The `[mqtt]` section of a proxy bridged to this broker.
    pub fn proxy_section(&self, extra: &str) -> String {
        format!(
            "[mqtt]\nmode = \"external\"\nbroker = \"127.0.0.1:{}\"\nusername = \"{}\"\npassword = \"{}\"\n{extra}",
            self.port, BRIDGE_USER.0, BRIDGE_USER.1
        )
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `config` (a proxy's TOML) with its `[mqtt]` section replaced by `section`.
pub fn replace_mqtt_section(config: &str, section: &str) -> String {
    let start = config.find("[mqtt]").expect("an [mqtt] section");
    let end = config[start + 6..].find("\n[").map_or(config.len(), |i| start + 6 + i + 1);
    format!("{}{section}\n{}", &config[..start], &config[end..])
}

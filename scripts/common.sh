# Shared setup for scripts/devnet.sh and scripts/test.sh: installs what a fresh machine lacks.
# Sourced, not executed.

# Keep the build (RocksDB's C++ takes 10-15 min on 2 cores) out of the work tree so it survives.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/fogchain-target}"

need_root_or_say() {
  if [ "$(id -u)" != 0 ] && ! command -v sudo >/dev/null; then
    echo "error: $1 is missing; install it with: $2" >&2
    exit 1
  fi
}

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

have_libclang() {
  # bindgen (librocksdb-sys) needs libclang and clang's headers at build time: on Debian the
  # libclang-dev package, elsewhere at least a libclang shared library.
  if command -v dpkg >/dev/null; then
    dpkg -s libclang-dev >/dev/null 2>&1
  else
    ldconfig -p 2>/dev/null | grep -q 'libclang\(-[0-9.]*\)\?\.so'
  fi
}

ensure_libclang() {
  if ! have_libclang; then
    need_root_or_say libclang "apt-get install -y libclang-dev"
    echo "installing libclang-dev (needed to build the RocksDB bindings) ..." >&2
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libclang-dev >/dev/null
  fi
}

# Debian's Mosquitto: the clients drive the proxy in the MQTT end-to-end tests, the broker is the
# external broker of the bridge test (its system service is not needed: the test starts its own).
ensure_mosquitto() {
  if ! command -v mosquitto_pub >/dev/null || ! command -v mosquitto_sub >/dev/null \
     || ! command -v mosquitto_passwd >/dev/null || [ ! -x /usr/sbin/mosquitto ]; then
    need_root_or_say mosquitto "apt-get install -y mosquitto mosquitto-clients"
    echo "installing mosquitto and mosquitto-clients (MQTT end-to-end tests) ..." >&2
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto mosquitto-clients >/dev/null
  fi
}

# Debian's libfaketime: `fogchain-bench chaos` makes a node's wall clock jump with it (the chaos
# test; without it the run skips clock faults).
ensure_faketime() {
  if [ ! -e /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 ]; then
    need_root_or_say faketime "apt-get install -y faketime"
    echo "installing faketime (chaos test: clock jumps) ..." >&2
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq faketime >/dev/null
  fi
}

# Debian's Chromium: the browser-apps test drives it with playwright-core (never a downloaded
# browser).
ensure_chromium() {
  if [ ! -x /usr/bin/chromium ]; then
    need_root_or_say chromium "apt-get install -y chromium"
    echo "installing chromium (browser-apps test) ..." >&2
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  fi
}

# Debian's Prometheus (with promtool): the observability test scrapes a devnet with it and checks
# every /metrics output and the alert rules with promtool.
ensure_prometheus() {
  if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then
    need_root_or_say prometheus "apt-get install -y --no-install-recommends prometheus"
    echo "installing prometheus (observability test) ..." >&2
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  fi
}

ensure_cargo() {
  if ! command -v cargo >/dev/null; then
    echo "error: cargo is missing; install Rust with rustup (https://rustup.rs), then run this again" >&2
    exit 1
  fi
}

//! The libp2p transport between members: TCP + Noise + Yamux, one request-response protocol
//! (CBOR, size-capped) carrying batched Raft messages, forwarded transactions and block sync.
//!
//! Only members may connect: the allow list holds the PeerIds of the current membership
//! ([`Directory`]); any other peer's connection is denied right after the Noise handshake has
//! authenticated its PeerId, before any of its bytes are decoded. A member's Raft messages must
//! carry its own Raft id as `from`.

use crate::members::Directory;
use futures::StreamExt;
use libp2p::{
    allow_block_list::{self, AllowedPeers},
    identity::Keypair,
    noise,
    request_response::{self, cbor, OutboundRequestId, ProtocolSupport, ResponseChannel},
    swarm::{dial_opts::DialOpts, NetworkBehaviour, SwarmEvent},
    tcp, yamux, Multiaddr, PeerId, StreamProtocol, Swarm,
};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    path::PathBuf,
    sync::Arc,
    time::Duration,
};
use tokio::sync::{mpsc, oneshot};

/// The protocol name.
const PROTOCOL: &str = "/fogchain/consensus/1";
/// Largest request accepted from a peer, bytes (a batch of Raft messages; one block is at most
/// a few MB at a 30M gas limit).
pub const MAX_REQUEST_BYTES: u64 = 32 << 20;
/// Largest response accepted from a peer, bytes (block sync).
pub const MAX_RESPONSE_BYTES: u64 = 64 << 20;
/// Block sync responses stop adding blocks beyond this many bytes.
pub(crate) const BLOCKS_RESPONSE_BYTES: usize = 8 << 20;

/// A request between members.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Request {
    /// protobuf-encoded `eraftpb.Message`s, in order.
    Raft(Vec<ByteBuf>),
    /// EIP-2718 transactions forwarded to the leader.
    Txs(Vec<ByteBuf>),
    /// Canonical blocks from number `from`, RLP, at most about `max_bytes`.
    Blocks {
        /// First block number.
        from: u64,
        /// Response size bound, bytes.
        max_bytes: u64,
    },
}

/// A response.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Response {
    Ack,
    Blocks(Vec<ByteBuf>),
    Refused(String),
}

#[derive(NetworkBehaviour)]
struct Behaviour {
    allowed: allow_block_list::Behaviour<AllowedPeers>,
    rpc: cbor::Behaviour<Request, Response>,
}

/// What the transport delivers to the node.
pub(crate) trait Inbound: Send + Sync + 'static {
    /// Raft messages from member `from` (still protobuf-encoded).
    fn raft(&self, from: u64, msgs: Vec<ByteBuf>);
    /// A send to `to` failed (`snapshot`: the batch held a snapshot).
    fn unreachable(&self, to: u64, snapshot: bool);
    /// Forwarded transactions (must not block: runs on the transport task).
    fn txs(&self, txs: Vec<ByteBuf>);
    /// Canonical blocks for a syncing member (blocking).
    fn blocks(&self, from: u64, max_bytes: usize) -> Vec<ByteBuf>;
}

/// Why a block-sync request got no blocks.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BlocksError {
    /// No connection to that member.
    #[error("member {0} is not connected")]
    NotConnected(u64),
    /// The member answered something else.
    #[error("unexpected answer {0}")]
    Unexpected(String),
    /// The request failed (timeout, connection lost).
    #[error("{0}")]
    Failed(String),
}

pub(crate) enum Command {
    Raft { to: u64, msgs: Vec<ByteBuf>, snapshot: bool },
    Txs { to: u64, txs: Vec<ByteBuf> },
    Blocks { to: u64, from: u64, reply: oneshot::Sender<Result<Vec<ByteBuf>, BlocksError>> },
    Members(Directory),
    Respond { channel: ResponseChannel<Response>, response: Response },
}

enum Pending {
    Raft { to: u64, snapshot: bool },
    Txs,
    Blocks(oneshot::Sender<Result<Vec<ByteBuf>, BlocksError>>),
}

/// A connected member, as `admin_peers` shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerInfo {
    /// Its PeerId.
    pub peer_id: String,
    /// Its Raft id.
    pub raft_id: Option<u64>,
    /// Remote address of the connection.
    pub remote_addr: String,
    /// Whether we dialled it.
    pub outbound: bool,
}

#[derive(Default)]
pub(crate) struct NetState {
    pub(crate) connected: BTreeMap<PeerId, PeerInfo>,
    pub(crate) listen: Vec<Multiaddr>,
}

/// Handle to the transport task.
#[derive(Clone)]
pub(crate) struct TransportHandle {
    pub(crate) commands: mpsc::UnboundedSender<Command>,
    pub(crate) state: Arc<RwLock<NetState>>,
    pub(crate) local_peer: PeerId,
}

impl TransportHandle {
    pub(crate) fn send(&self, command: Command) {
        // The task outlives every handle user; after shutdown sends are moot.
        let _ = self.commands.send(command);
    }
}

/// Transport settings.
pub(crate) struct TransportConfig {
    pub(crate) keypair: Keypair,
    pub(crate) listen: Multiaddr,
    pub(crate) local_raft_id: u64,
    pub(crate) directory: Directory,
    /// Test-only fault switch: a file listing Raft ids (whitespace separated) this node must
    /// neither send to nor accept from, as if the network between them were cut.
    pub(crate) fault_file: Option<PathBuf>,
}

/// What the fault switch cuts: Raft ids this node sends nothing to (`outbound`) and accepts
/// nothing from (`inbound`). The file lists whitespace-separated tokens: `N` cuts both ways,
/// `>N` only what goes to N, `<N` only what comes from N (a one-way partition).
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Cut {
    pub(crate) inbound: BTreeSet<u64>,
    pub(crate) outbound: BTreeSet<u64>,
}

impl Cut {
    /// Parses the fault file's text; unreadable tokens are ignored.
    pub(crate) fn parse(text: &str) -> Self {
        let mut cut = Self::default();
        for token in text.split_whitespace() {
            let (inbound, outbound, id) = match token.as_bytes().first() {
                Some(b'<') => (true, false, &token[1..]),
                Some(b'>') => (false, true, &token[1..]),
                _ => (true, true, token),
            };
            let Ok(id) = id.parse::<u64>() else { continue };
            if inbound {
                cut.inbound.insert(id);
            }
            if outbound {
                cut.outbound.insert(id);
            }
        }
        cut
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum TransportError {
    #[error("p2p transport: {0}")]
    Setup(String),
    #[error("cannot listen on {addr}: {reason}")]
    Listen { addr: Multiaddr, reason: String },
}

pub(crate) async fn start(
    config: TransportConfig,
    inbound: Arc<dyn Inbound>,
) -> Result<(TransportHandle, tokio::task::JoinHandle<()>), TransportError> {
    let setup = |e: &dyn std::fmt::Display| TransportError::Setup(e.to_string());
    let codec = cbor::codec::Codec::<Request, Response>::default()
        .set_request_size_maximum(MAX_REQUEST_BYTES)
        .set_response_size_maximum(MAX_RESPONSE_BYTES);
    let rr_config = request_response::Config::default()
        .with_request_timeout(Duration::from_secs(15))
        .with_max_concurrent_streams(1024);
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(config.keypair)
        .with_tokio()
        .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)
        .map_err(|e| setup(&e))?
        .with_behaviour(|_| Behaviour {
            allowed: allow_block_list::Behaviour::default(),
            rpc: request_response::Behaviour::with_codec(
                codec,
                [(StreamProtocol::new(PROTOCOL), ProtocolSupport::Full)],
                rr_config,
            ),
        })
        .map_err(|e| setup(&e))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(24 * 3600)))
        .build();
    swarm
        .listen_on(config.listen.clone())
        .map_err(|e| TransportError::Listen { addr: config.listen.clone(), reason: e.to_string() })?;
    let local_peer = *swarm.local_peer_id();
    let (commands, rx) = mpsc::unbounded_channel();
    let state = Arc::new(RwLock::new(NetState::default()));
    let handle = TransportHandle { commands, state: state.clone(), local_peer };
    let mut task = Task {
        swarm,
        rx,
        state,
        inbound,
        directory: Directory::default(),
        local_raft_id: config.local_raft_id,
        pending: HashMap::new(),
        cut: Cut::default(),
        fault_file: config.fault_file,
        respond: handle.commands.clone(),
    };
    task.set_members(config.directory);
    let join = tokio::spawn(async move { task.run().await });
    Ok((handle, join))
}

struct Task {
    swarm: Swarm<Behaviour>,
    rx: mpsc::UnboundedReceiver<Command>,
    state: Arc<RwLock<NetState>>,
    inbound: Arc<dyn Inbound>,
    directory: Directory,
    local_raft_id: u64,
    pending: HashMap<OutboundRequestId, Pending>,
    cut: Cut,
    fault_file: Option<PathBuf>,
    respond: mpsc::UnboundedSender<Command>,
}

impl Task {
    async fn run(&mut self) {
        let mut timer = tokio::time::interval(Duration::from_millis(500));
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                command = self.rx.recv() => match command {
                    Some(command) => self.command(command),
                    None => break,
                },
                event = self.swarm.select_next_some() => self.event(event),
                _ = timer.tick() => {
                    self.read_fault_file();
                    self.dial_missing();
                }
            }
        }
        tracing::debug!("p2p transport stopped");
    }

    fn set_members(&mut self, directory: Directory) {
        let allowed: BTreeSet<PeerId> = directory.current().filter_map(|m| m.peer_id.parse().ok()).collect();
        let behaviour = &mut self.swarm.behaviour_mut().allowed;
        let old: Vec<PeerId> = behaviour.allowed_peers().iter().copied().collect();
        for peer in old.iter().filter(|p| !allowed.contains(p)) {
            // Closes its connections too.
            behaviour.disallow_peer(*peer);
        }
        for peer in &allowed {
            behaviour.allow_peer(*peer);
        }
        self.directory = directory;
    }

    fn read_fault_file(&mut self) {
        let Some(path) = &self.fault_file else { return };
        let cut = Cut::parse(&std::fs::read_to_string(path).unwrap_or_default());
        if cut != self.cut {
            tracing::warn!(inbound = ?cut.inbound, outbound = ?cut.outbound, "fault switch: cutting the network to these members");
            self.cut = cut;
        }
    }

    fn dial_missing(&mut self) {
        let ids: Vec<u64> = self.directory.current().map(|m| m.raft_id).collect();
        for raft_id in ids {
            if raft_id == self.local_raft_id || self.cut.outbound.contains(&raft_id) {
                continue;
            }
            let (Some(peer), Some(addr)) = (self.directory.peer(raft_id), self.directory.dial_addr(raft_id))
            else {
                continue;
            };
            if self.swarm.is_connected(&peer) {
                continue;
            }
            let opts = DialOpts::peer_id(peer).addresses(vec![addr]).build();
            if let Err(e) = self.swarm.dial(opts) {
                tracing::debug!(raft_id, error = %e, "dial failed");
            }
        }
    }

    fn peer_for(&self, raft_id: u64) -> Option<PeerId> {
        if self.cut.outbound.contains(&raft_id) {
            return None;
        }
        self.directory.peer(raft_id).filter(|p| self.swarm.is_connected(p))
    }

    fn command(&mut self, command: Command) {
        match command {
            Command::Raft { to, msgs, snapshot } => match self.peer_for(to) {
                Some(peer) => {
                    traffic("sent", "raft", &msgs);
                    let id = self.swarm.behaviour_mut().rpc.send_request(&peer, Request::Raft(msgs));
                    self.pending.insert(id, Pending::Raft { to, snapshot });
                }
                None => self.inbound.unreachable(to, snapshot),
            },
            Command::Txs { to, txs } => {
                if let Some(peer) = self.peer_for(to) {
                    traffic("sent", "txs", &txs);
                    let id = self.swarm.behaviour_mut().rpc.send_request(&peer, Request::Txs(txs));
                    self.pending.insert(id, Pending::Txs);
                }
            }
            Command::Blocks { to, from, reply } => match self.peer_for(to) {
                Some(peer) => {
                    let request = Request::Blocks { from, max_bytes: BLOCKS_RESPONSE_BYTES as u64 };
                    let id = self.swarm.behaviour_mut().rpc.send_request(&peer, request);
                    self.pending.insert(id, Pending::Blocks(reply));
                }
                None => {
                    let _ = reply.send(Err(BlocksError::NotConnected(to)));
                }
            },
            Command::Members(directory) => self.set_members(directory),
            Command::Respond { channel, response } => {
                let _ = self.swarm.behaviour_mut().rpc.send_response(channel, response);
            }
        }
    }

    fn event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!(%address, peer_id = %self.swarm.local_peer_id(), "p2p listening");
                self.state.write().listen.push(address);
            }
            SwarmEvent::ConnectionEstablished { peer_id, endpoint, .. } => {
                let raft_id = self.directory.raft_id(&peer_id);
                tracing::info!(%peer_id, ?raft_id, "member connected");
                self.state.write().connected.insert(
                    peer_id,
                    PeerInfo {
                        peer_id: peer_id.to_string(),
                        raft_id,
                        remote_addr: endpoint.get_remote_address().to_string(),
                        outbound: endpoint.is_dialer(),
                    },
                );
            }
            SwarmEvent::ConnectionClosed { peer_id, num_established: 0, .. } => {
                tracing::info!(%peer_id, "member disconnected");
                self.state.write().connected.remove(&peer_id);
            }
            SwarmEvent::IncomingConnectionError { send_back_addr, error, peer_id, .. } => {
                tracing::warn!(%send_back_addr, ?peer_id, %error, "refused an incoming p2p connection");
            }
            SwarmEvent::Behaviour(BehaviourEvent::Rpc(event)) => self.rpc_event(event),
            _ => {}
        }
    }

    fn rpc_event(&mut self, event: request_response::Event<Request, Response>) {
        use request_response::{Event, Message};
        match event {
            Event::Message { peer, message: Message::Request { request, channel, .. }, .. } => {
                self.request(peer, request, channel)
            }
            Event::Message { message: Message::Response { request_id, response }, .. } => {
                match (self.pending.remove(&request_id), response) {
                    (Some(Pending::Blocks(reply)), Response::Blocks(blocks)) => {
                        traffic("received", "blocks", &blocks);
                        let _ = reply.send(Ok(blocks));
                    }
                    (Some(Pending::Blocks(reply)), other) => {
                        let _ = reply.send(Err(BlocksError::Unexpected(format!("{other:?}"))));
                    }
                    (Some(Pending::Raft { to, snapshot }), Response::Refused(reason)) => {
                        tracing::warn!(to, %reason, "member refused Raft messages");
                        self.inbound.unreachable(to, snapshot);
                    }
                    _ => {}
                }
            }
            Event::OutboundFailure { request_id, error, .. } => match self.pending.remove(&request_id) {
                Some(Pending::Raft { to, snapshot }) => {
                    tracing::debug!(to, %error, "Raft send failed");
                    self.inbound.unreachable(to, snapshot);
                }
                Some(Pending::Blocks(reply)) => {
                    let _ = reply.send(Err(BlocksError::Failed(error.to_string())));
                }
                _ => {}
            },
            _ => {}
        }
    }

    fn request(&mut self, peer: PeerId, request: Request, channel: ResponseChannel<Response>) {
        // The allow list admits members only, but a member removed a moment ago may still have
        // a request in flight: check again.
        let Some(from) = self.directory.raft_id(&peer) else {
            metrics::counter!("fogchain_p2p_refused_requests_total").increment(1);
            let refused = Response::Refused("not a member".into());
            let _ = self.swarm.behaviour_mut().rpc.send_response(channel, refused);
            return;
        };
        if self.cut.inbound.contains(&from) {
            // Fault switch: drop as a cut network would (the sender times out).
            drop(channel);
            return;
        }
        match request {
            Request::Raft(msgs) => {
                traffic("received", "raft", &msgs);
                self.inbound.raft(from, msgs);
                let _ = self.swarm.behaviour_mut().rpc.send_response(channel, Response::Ack);
            }
            Request::Txs(txs) => {
                traffic("received", "txs", &txs);
                let _ = self.swarm.behaviour_mut().rpc.send_response(channel, Response::Ack);
                self.inbound.txs(txs);
            }
            Request::Blocks { from: number, max_bytes } => {
                let inbound = self.inbound.clone();
                let respond = self.respond.clone();
                let max_bytes = (max_bytes as usize).min(BLOCKS_RESPONSE_BYTES);
                tokio::task::spawn_blocking(move || {
                    let blocks = inbound.blocks(number, max_bytes);
                    let _ = respond.send(Command::Respond { channel, response: Response::Blocks(blocks) });
                });
            }
        }
    }
}

/// Counts member traffic: `fogchain_p2p_messages_total` and `fogchain_p2p_bytes_total` (payload
/// bytes) by direction (`sent` / `received`) and kind (`raft`, `txs`, `blocks`).
fn traffic<T: AsRef<[u8]>>(direction: &'static str, kind: &'static str, items: &[T]) {
    let bytes: usize = items.iter().map(|i| i.as_ref().len()).sum();
    metrics::counter!("fogchain_p2p_messages_total", "direction" => direction, "kind" => kind)
        .increment(items.len() as u64);
    metrics::counter!("fogchain_p2p_bytes_total", "direction" => direction, "kind" => kind)
        .increment(bytes as u64);
}

#[cfg(test)]
mod tests {
    use super::Cut;

    #[test]
    fn fault_file_cuts_both_ways_or_one_way() {
        let cut = Cut::parse("2 <3 >4 x >\n");
        assert_eq!(cut.inbound.into_iter().collect::<Vec<_>>(), vec![2, 3]);
        assert_eq!(cut.outbound.into_iter().collect::<Vec<_>>(), vec![2, 4]);
        assert_eq!(Cut::parse(""), Cut::default());
    }
}

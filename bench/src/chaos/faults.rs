//! The faults (Jepsen calls this the nemesis): each is applied, held for a few seconds and
//! healed; the choice of fault, its target and timing come from one seeded generator, so a run
//! can be replayed with `--seed`.

use super::cluster::Cluster;
use rand::{
    rngs::StdRng,
    seq::{IndexedRandom, SliceRandom},
    Rng,
};

/// A kind of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Kind {
    /// SIGKILL of a node (the leader half of the time), restarted when healed.
    Kill,
    /// SIGSTOP of a node (the leader half of the time), SIGCONT when healed.
    Pause,
    /// A network partition: leader isolated, a minority cut off, no majority anywhere, or the
    /// leader deaf to the others (one way).
    Partition,
    /// A node's wall clock jumps 30-600 s ahead or back (libfaketime).
    Clock,
    /// The proxy is SIGKILLed and restarted when healed.
    Proxy,
    /// A node's filesystem fills up (it must stop), then is freed and the node restarted.
    Disk,
}

/// What healing a fault undoes.
#[derive(Debug, Clone)]
pub(crate) enum Heal {
    Restart(usize),
    Resume(usize),
    Connect,
    Clock(usize),
    Proxy,
    Disk(usize),
}

/// A fault as applied.
#[derive(Debug, Clone)]
pub(crate) struct Applied {
    pub(crate) kind: Kind,
    pub(crate) detail: String,
    pub(crate) heal: Heal,
    /// The leader stopped leading because of it (killed, paused, isolated or deaf), as node index.
    pub(crate) leader_lost: Option<usize>,
    /// No majority can form until it heals (commits cannot resume before).
    pub(crate) no_quorum: bool,
}

/// Picks a fault among `kinds` the cluster can take and applies it; `leader` is the current
/// leader's index. Node faults never take down a second node while one is down (a majority
/// must stay able to commit, except in the deliberate no-majority partition).
pub(crate) async fn apply(
    cluster: &mut Cluster,
    kinds: &[Kind],
    leader: Option<usize>,
    rng: &mut StdRng,
) -> eyre::Result<Option<Applied>> {
    let n = cluster.nodes.len();
    let possible: Vec<Kind> = kinds
        .iter()
        .copied()
        .filter(|k| match k {
            Kind::Clock => cluster.clocks,
            Kind::Disk => cluster.disk.is_some(),
            _ => true,
        })
        .collect();
    let Some(kind) = possible.choose(rng).copied() else { return Ok(None) };
    let pick_node = |rng: &mut StdRng| match leader {
        Some(l) if rng.random_bool(0.5) => l,
        _ => rng.random_range(0..n),
    };
    let node_name = |i: usize| format!("node{i}{}", if Some(i) == leader { " (leader)" } else { "" });
    let lost = |i: usize| (Some(i) == leader).then_some(i);
    let applied = match kind {
        Kind::Kill => {
            let i = pick_node(rng);
            cluster.kill(i).await;
            Applied {
                kind,
                detail: node_name(i),
                heal: Heal::Restart(i),
                leader_lost: lost(i),
                no_quorum: false,
            }
        }
        Kind::Pause => {
            let i = pick_node(rng);
            cluster.pause(i, true);
            Applied {
                kind,
                detail: node_name(i),
                heal: Heal::Resume(i),
                leader_lost: lost(i),
                no_quorum: false,
            }
        }
        Kind::Partition => partition(cluster, leader, rng)?,
        Kind::Clock => {
            let i = pick_node(rng);
            let offset = rng.random_range(30..=600) * if rng.random_bool(0.5) { 1 } else { -1 };
            cluster.clock(i, offset)?;
            let detail = format!("{} {offset:+} s", node_name(i));
            Applied { kind, detail, heal: Heal::Clock(i), leader_lost: None, no_quorum: false }
        }
        Kind::Proxy => {
            Applied { kind, detail: "proxy".into(), heal: Heal::Proxy, leader_lost: None, no_quorum: false }
        }
        Kind::Disk => {
            let i = cluster.disk.unwrap_or_default();
            cluster.fill_disk(true)?;
            // not counted as a leader loss: the node stops when it needs space, not at once
            Applied { kind, detail: node_name(i), heal: Heal::Disk(i), leader_lost: None, no_quorum: false }
        }
    };
    Ok(Some(applied))
}

/// Cuts the network into a shape chosen at random (see [`Kind::Partition`]).
fn partition(cluster: &Cluster, leader: Option<usize>, rng: &mut StdRng) -> eyre::Result<Applied> {
    let n = cluster.nodes.len();
    let ids: Vec<u64> = cluster.nodes.iter().map(|x| x.raft_id).collect();
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(rng);
    let shape = rng.random_range(0..4);
    let leader_or_first = leader.unwrap_or(order[0]);
    // group of each node; nodes in different groups are cut both ways
    let mut group = vec![0usize; n];
    let mut cuts = vec![String::new(); n];
    let (detail, leader_lost, no_quorum) = match shape {
        0 => {
            group[leader_or_first] = 1;
            (format!("node{leader_or_first} isolated"), leader, false)
        }
        1 => {
            let minority: Vec<usize> = order.iter().copied().take((n - 1) / 2).collect();
            for &i in &minority {
                group[i] = 1;
            }
            let lost = leader.filter(|l| minority.contains(l));
            (format!("minority {minority:?} cut off"), lost, false)
        }
        2 => {
            // groups of at most (n - 1) / 2 nodes: no majority anywhere
            let size = ((n - 1) / 2).max(1);
            for (k, &i) in order.iter().enumerate() {
                group[i] = k / size;
            }
            let groups: Vec<Vec<usize>> =
                (0..n.div_ceil(size)).map(|g| (0..n).filter(|i| group[*i] == g).collect()).collect();
            (format!("split {groups:?}, no majority"), leader, true)
        }
        _ => {
            // the leader hears nobody but is heard by all
            let l = leader_or_first;
            cuts[l] = ids
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != l)
                .map(|(_, id)| format!("<{id}"))
                .collect::<Vec<_>>()
                .join(" ");
            cluster.cut(&cuts)?;
            let detail = format!("one way: node{l} receives nothing");
            return Ok(Applied {
                kind: Kind::Partition,
                detail,
                heal: Heal::Connect,
                leader_lost: leader,
                no_quorum: false,
            });
        }
    };
    for i in 0..n {
        cuts[i] = (0..n)
            .filter(|j| group[*j] != group[i])
            .map(|j| ids[j].to_string())
            .collect::<Vec<_>>()
            .join(" ");
    }
    cluster.cut(&cuts)?;
    Ok(Applied { kind: Kind::Partition, detail, heal: Heal::Connect, leader_lost, no_quorum })
}

/// Undoes `heal`. Restarting nodes are not waited for (they catch up under load).
pub(crate) fn heal(cluster: &mut Cluster, heal: &Heal) -> eyre::Result<()> {
    match *heal {
        Heal::Restart(i) => cluster.start(i)?,
        Heal::Resume(i) => cluster.pause(i, false),
        Heal::Connect => cluster.cut(&vec![String::new(); cluster.nodes.len()])?,
        Heal::Clock(i) => cluster.clock(i, 0)?,
        Heal::Proxy => {} // the caller owns the proxy process
        Heal::Disk(i) => {
            cluster.fill_disk(false)?;
            if !cluster.running(i) {
                cluster.start(i)?;
            }
        }
    }
    Ok(())
}

//! What a sentinel knows: its monitored groups, each with its master, replicas and the other
//! sentinels watching it, and how each instance answered lately. Everything lives in one
//! [`State`] behind a `std::sync::Mutex`, never held across an `.await`: the link tasks
//! (`monitor.rs`) do their network I/O unlocked and record what they saw under the lock.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tokio::sync::broadcast;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::config::{MasterConfig, SentinelConfig};

/// `host:port` of an instance, as sentinel names replicas.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Addr {
    pub host: String,
    pub port: u16,
}

impl Addr {
    pub fn new(host: &str, port: u16) -> Addr {
        Addr {
            host: host.to_string(),
            port,
        }
    }
}

impl std::fmt::Display for Addr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// The role an instance reported in its last INFO.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Unknown,
    Master,
    Replica,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Master | Role::Unknown => "master",
            Role::Replica => "slave",
        }
    }
}

/// Which instance of a group a link serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    Master,
    Replica(Addr),
    Sentinel(String),
}

/// Link and liveness of one instance (master, replica or sentinel).
#[derive(Debug)]
pub(crate) struct Node {
    pub addr: Addr,
    pub run_id: Option<String>,
    /// The command link is connected.
    pub link_up: bool,
    /// When the link last answered a PING validly (or the node was created).
    pub last_avail: Instant,
    /// When the unanswered PING in flight was sent.
    pub ping_pending: Option<Instant>,
    pub last_ping_sent: Option<Instant>,
    pub last_ok_ping: Option<Instant>,
    pub last_ping_reply: Option<Instant>,
    /// When a hello message was last published through it.
    pub last_hello_sent: Option<Instant>,
    /// Subjectively down since.
    pub sdown_since: Option<Instant>,
    /// When INFO last answered (redis instances).
    pub info_refresh: Option<Instant>,
    pub role: Role,
    pub role_since: Instant,
    /// Stops the node's link tasks when the node is forgotten.
    _links: Option<DropGuard>,
}

impl Node {
    pub fn new(addr: Addr) -> Node {
        let now = Instant::now();
        Node {
            addr,
            run_id: None,
            link_up: false,
            last_avail: now,
            ping_pending: None,
            last_ping_sent: None,
            last_ok_ping: None,
            last_ping_reply: None,
            last_hello_sent: None,
            sdown_since: None,
            info_refresh: None,
            role: Role::Unknown,
            role_since: now,
            _links: None,
        }
    }

    /// A token that is cancelled when this node is dropped, for its link tasks.
    pub fn link_token(&mut self) -> CancellationToken {
        let token = CancellationToken::new();
        self._links = Some(token.clone().drop_guard());
        token
    }

    /// How long the node has gone without answering (Redis's measure for SDOWN: the age of
    /// the PING in flight, or the time since the link was last usable).
    pub fn silence(&self, now: Instant) -> Duration {
        if self.link_up {
            self.ping_pending
                .map_or(Duration::ZERO, |p| now.saturating_duration_since(p))
        } else {
            now.saturating_duration_since(self.last_avail)
        }
    }

    pub fn is_sdown(&self) -> bool {
        self.sdown_since.is_some()
    }
}

/// A replica of a monitored master.
#[derive(Debug)]
pub(crate) struct Replica {
    pub node: Node,
    pub master_host: Option<String>,
    pub master_port: u16,
    pub master_link_up: bool,
    pub master_link_down: Duration,
    pub priority: u32,
    pub offset: u64,
    /// Failover: REPLICAOF sent to point it at the promoted replica, and when.
    pub reconf_sent: Option<Instant>,
    pub reconf_inprog: bool,
    pub reconf_done: bool,
    /// When this sentinel last sent a corrective REPLICAOF (convert-to-slave, fix config).
    pub last_fix: Option<Instant>,
}

impl Replica {
    pub fn new(addr: Addr) -> Replica {
        Replica {
            node: Node::new(addr),
            master_host: None,
            master_port: 0,
            master_link_up: false,
            master_link_down: Duration::ZERO,
            priority: 100,
            offset: 0,
            reconf_sent: None,
            reconf_inprog: false,
            reconf_done: false,
            last_fix: None,
        }
    }
}

/// Another sentinel monitoring the same master.
#[derive(Debug)]
pub(crate) struct Peer {
    pub node: Node,
    pub last_hello: Instant,
    /// Its answer to our last is-master-down-by-addr, and when it came.
    pub master_down: bool,
    pub master_down_at: Option<Instant>,
    /// Whom it voted for, in which epoch.
    pub leader: Option<String>,
    pub leader_epoch: u64,
}

/// One monitored group.
#[derive(Debug)]
pub(crate) struct Master {
    pub config: MasterConfig,
    pub node: Node,
    pub replicas: BTreeMap<Addr, Replica>,
    /// Other sentinels, by run id.
    pub sentinels: BTreeMap<String, Peer>,
    pub odown_since: Option<Instant>,
    /// Whom this sentinel voted for in `config.leader_epoch`.
    pub leader: Option<String>,
    pub failover: Option<Failover>,
    /// When the last failover attempt started (the next waits 2 × failover-timeout), or
    /// when a vote for another sentinel pushed ours back.
    pub failover_start: Option<Instant>,
    /// Last time the other sentinels were asked whether the master is down.
    pub last_ask: Option<Instant>,
    /// ODOWN seen: when this sentinel will try a failover (a random delay).
    pub start_after: Option<Instant>,
}

impl Master {
    pub fn new(config: MasterConfig) -> Master {
        let node = Node::new(Addr::new(&config.host, config.port));
        Master {
            config,
            node,
            replicas: BTreeMap::new(),
            sentinels: BTreeMap::new(),
            odown_since: None,
            leader: None,
            failover: None,
            failover_start: None,
            last_ask: None,
            start_after: None,
        }
    }

    pub fn addr(&self) -> &Addr {
        &self.node.addr
    }

    /// `master NAME IP PORT`: the event text naming the master itself.
    pub fn describe(&self) -> String {
        format!(
            "master {} {} {}",
            self.config.name, self.node.addr.host, self.node.addr.port
        )
    }

    /// `slave IP:PORT IP PORT @ NAME MIP MPORT`: the event text naming a replica.
    pub fn describe_replica(&self, a: &Addr) -> String {
        format!("slave {a} {} {} @ {}", a.host, a.port, self.suffix())
    }

    /// `sentinel ID IP PORT @ NAME MIP MPORT`.
    pub fn describe_sentinel(&self, id: &str, a: &Addr) -> String {
        format!("sentinel {id} {} {} @ {}", a.host, a.port, self.suffix())
    }

    fn suffix(&self) -> String {
        format!(
            "{} {} {}",
            self.config.name, self.node.addr.host, self.node.addr.port
        )
    }

    /// The flags SENTINEL MASTERS shows (`master,s_down,o_down,failover_in_progress`).
    pub fn flags(&self) -> String {
        let mut f = vec!["master"];
        if self.node.is_sdown() {
            f.push("s_down");
        }
        if self.odown_since.is_some() {
            f.push("o_down");
        }
        if !self.node.link_up {
            f.push("disconnected");
        }
        if self.failover.is_some() {
            f.push("failover_in_progress");
        }
        f.join(",")
    }

    /// Publishes hello messages through every instance of the group at the next round, so
    /// the other sentinels learn a new configuration at once rather than within 2 s.
    pub fn force_hello(&mut self) {
        self.node.last_hello_sent = None;
        for r in self.replicas.values_mut() {
            r.node.last_hello_sent = None;
        }
    }

    /// Sentinels (others plus us) and how many must vote for a leader.
    pub fn voters(&self) -> usize {
        self.sentinels.len() + 1
    }
}

/// A message on the sentinel's own pub/sub: channel (the event type) and text.
pub(crate) type Event = (String, String);

/// Everything a sentinel knows.
#[derive(Debug)]
pub(crate) struct State {
    pub myid: String,
    pub current_epoch: u64,
    pub masters: BTreeMap<String, Master>,
    /// The config it started with (port, kept lines, path to rewrite).
    pub config: SentinelConfig,
    /// The address other sentinels reach us at (hello messages).
    pub announce_port: u16,
    pub events: broadcast::Sender<Event>,
    /// The state changed since the config file was last written.
    pub dirty: bool,
    pub started: Instant,
    /// Cancelled by SHUTDOWN.
    pub shutdown: CancellationToken,
}

impl State {
    /// Publishes an event (`+sdown`, ...) to subscribers and logs it as Redis does.
    pub fn event(&self, kind: &str, text: String) {
        tracing::info!(target: "sluice::sentinel", "{kind} {text}");
        let _ = self.events.send((kind.to_string(), text));
    }

    /// Raises the current epoch if `epoch` is newer (`+new-epoch`).
    pub fn observe_epoch(&mut self, epoch: u64) {
        if epoch > self.current_epoch {
            self.current_epoch = epoch;
            self.dirty = true;
            self.event("+new-epoch", epoch.to_string());
        }
    }

    /// The config as it should be written now.
    pub fn snapshot_config(&self) -> SentinelConfig {
        let mut c = self.config.clone();
        c.myid = Some(self.myid.clone());
        c.current_epoch = self.current_epoch;
        c.masters = self
            .masters
            .values()
            .map(|m| {
                let mut mc = m.config.clone();
                mc.host = m.node.addr.host.clone();
                mc.port = m.node.addr.port;
                mc.known_replicas = m
                    .replicas
                    .keys()
                    .map(|a| (a.host.clone(), a.port))
                    .collect();
                mc.known_sentinels = m
                    .sentinels
                    .iter()
                    .map(|(id, p)| (p.node.addr.host.clone(), p.node.addr.port, id.clone()))
                    .collect();
                mc
            })
            .collect();
        c
    }
}

impl Peer {
    pub fn new(addr: Addr) -> Peer {
        Peer {
            node: Node::new(addr),
            last_hello: Instant::now(),
            master_down: false,
            master_down_at: None,
            leader: None,
            leader_epoch: 0,
        }
    }
}

/// Where a failover is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    WaitStart,
    SelectSlave,
    SendSlaveofNoone,
    WaitPromotion,
    ReconfSlaves,
}

impl Step {
    /// The name SENTINEL MASTER shows in `failover-state`.
    pub fn name(self) -> &'static str {
        match self {
            Step::WaitStart => "wait_start",
            Step::SelectSlave => "select_slave",
            Step::SendSlaveofNoone => "send_slaveof_noone",
            Step::WaitPromotion => "wait_promotion",
            Step::ReconfSlaves => "reconf_slaves",
        }
    }
}

/// A failover in progress.
#[derive(Debug, Clone)]
pub(crate) struct Failover {
    pub epoch: u64,
    pub step: Step,
    pub step_since: Instant,
    /// SENTINEL FAILOVER: no agreement or election needed.
    pub forced: bool,
    pub promoted: Option<Addr>,
}

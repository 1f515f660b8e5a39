//! Hello messages: how sentinels watching the same master find each other and spread a new
//! configuration. Each sentinel publishes, every 2 s, through the master and each replica:
//!
//! `IP,PORT,RUNID,CURRENT_EPOCH,MASTER_NAME,MASTER_IP,MASTER_PORT,MASTER_CONFIG_EPOCH`
//!
//! (Redis's format, so sluice and Redis sentinels understand each other). A receiver adds an
//! unknown sender (`+sentinel`), adopts a higher epoch, and follows a master address that
//! comes with a newer config epoch than its own (`+config-update-from`, `+switch-master`).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use super::failover;
use super::state::Target;
use super::state::{Addr, Peer};
use super::Shared;

/// The channel hello messages travel on.
pub(crate) const CHANNEL: &str = "__sentinel__:hello";

/// This sentinel's hello for `group`, announcing `local_ip` unless an announce-ip is set.
pub(crate) fn compose(
    sh: &Shared,
    group: &str,
    _target: &Target,
    local_ip: Option<IpAddr>,
) -> Option<String> {
    let mut st = sh.lock();
    let ip = match &st.config.announce_ip {
        Some(ip) => ip.clone(),
        None => local_ip?.to_string(),
    };
    let (port, id, epoch) = (st.announce_port, st.myid.clone(), st.current_epoch);
    let m = st.masters.get(group)?;
    let current = failover::current_master_addr(m);
    let msg = format!(
        "{ip},{port},{id},{epoch},{group},{},{},{}",
        current.host, current.port, m.config.config_epoch
    );
    if let Some(m) = st.masters.get_mut(group) {
        let node = match _target {
            Target::Master => Some(&mut m.node),
            Target::Replica(a) => m.replicas.get_mut(a).map(|r| &mut r.node),
            Target::Sentinel(_) => None,
        };
        if let Some(n) = node {
            n.last_hello_sent = Some(Instant::now());
        }
    }
    Some(msg)
}

/// A parsed hello message.
#[derive(Debug, PartialEq)]
pub(crate) struct Hello {
    pub addr: Addr,
    pub id: String,
    pub epoch: u64,
    pub group: String,
    pub master: Addr,
    pub config_epoch: u64,
}

pub(crate) fn parse(msg: &str) -> Option<Hello> {
    let f: Vec<&str> = msg.split(',').collect();
    let [ip, port, id, epoch, group, mip, mport, cepoch] = f.as_slice() else {
        return None;
    };
    Some(Hello {
        addr: Addr::new(ip, port.parse().ok()?),
        id: id.to_string(),
        epoch: epoch.parse().ok()?,
        group: group.to_string(),
        master: Addr::new(mip, mport.parse().ok()?),
        config_epoch: cepoch.parse().ok()?,
    })
}

/// Handles a hello heard on a monitored instance's channel (or PUBLISHed to us directly).
pub(crate) fn receive(sh: &Arc<Shared>, msg: &str) {
    let Some(h) = parse(msg) else { return };
    let mut guard = sh.lock();
    let st = &mut *guard;
    if h.id == st.myid {
        return;
    }
    let Some(m) = st.masters.get_mut(&h.group) else {
        return;
    };
    if !m.sentinels.contains_key(&h.id) {
        // A sentinel that restarted with a new id at the same address replaces its old self.
        let dups: Vec<String> = m
            .sentinels
            .iter()
            .filter(|(_, p)| p.node.addr == h.addr)
            .map(|(id, _)| id.clone())
            .collect();
        for id in dups {
            m.sentinels.remove(&id);
        }
        m.sentinels.insert(h.id.clone(), Peer::new(h.addr.clone()));
        sh.announce(&h.group, Target::Sentinel(h.id.clone()));
        let text = m.describe_sentinel(&h.id, &h.addr);
        st.dirty = true;
        st.event("+sentinel", text);
    }
    let Some(m) = st.masters.get_mut(&h.group) else {
        return;
    };
    if let Some(p) = m.sentinels.get_mut(&h.id) {
        p.last_hello = Instant::now();
        p.node.addr = h.addr.clone();
    }
    st.observe_epoch(h.epoch);
    let Some(m) = st.masters.get_mut(&h.group) else {
        return;
    };
    if h.config_epoch > m.config.config_epoch {
        m.config.config_epoch = h.config_epoch;
        st.dirty = true;
        if h.master != *m.addr() {
            let from = m.describe_sentinel(&h.id, &h.addr);
            st.event("+config-update-from", from);
            failover::switch_master(sh, st, &h.group, h.master);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_redis_hello_messages() {
        let h = parse(
            "127.0.0.1,27011,c907a625cf73e25745916c01d6201c10f2736115,3,mymaster,127.0.0.1,27001,2",
        )
        .expect("a valid hello");
        assert_eq!(h.addr, Addr::new("127.0.0.1", 27011));
        assert_eq!((h.epoch, h.config_epoch), (3, 2));
        assert_eq!(h.master, Addr::new("127.0.0.1", 27001));
        assert_eq!(h.group, "mymaster");
        assert!(parse("1.2.3.4,notaport,x,0,m,1.2.3.4,1,0").is_none());
        assert!(parse("too,few").is_none());
    }
}

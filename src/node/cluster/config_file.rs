//! The cluster config file (`cluster-config-file`, Redis's `nodes.conf` format): CLUSTER
//! NODES lines plus a `vars` line. A restarted node reloads its id, epochs, slots and the
//! nodes it knew, so it rejoins with its slots.

use std::path::Path;

use super::replies;
use super::state::{ClusterNode, ClusterState};

/// Why the config file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    /// Reading or writing failed.
    #[error("cluster config file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A line is not in the format we write.
    #[error("cluster config file: unrecoverable error at line {0}")]
    Format(usize),
}

/// The file's text for `c`.
pub(crate) fn render(c: &ClusterState) -> String {
    let mut s = replies::nodes(c);
    s.push_str(&format!(
        "vars currentEpoch {} lastVoteEpoch {}\n",
        c.current_epoch, c.last_vote_epoch
    ));
    s
}

/// Writes `text` to `path` atomically (temporary file + rename), so a crash mid-write never
/// leaves a truncated config.
pub(crate) fn write(path: &Path, text: &str) -> Result<(), ConfigFileError> {
    let io = |source| ConfigFileError::Io {
        path: path.display().to_string(),
        source,
    };
    let tmp = path.with_extension("tmp-sluice");
    std::fs::write(&tmp, text).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// Fills `c` (a fresh state) from the file at `c.config_file` if it exists. Returns false
/// when there is no file (a new node).
pub(crate) fn load(c: &mut ClusterState, now: i64) -> Result<bool, ConfigFileError> {
    let text = match std::fs::read_to_string(&c.config_file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(source) => {
            return Err(ConfigFileError::Io {
                path: c.config_file.display().to_string(),
                source,
            })
        }
    };
    if text.trim().is_empty() {
        return Ok(false);
    }
    let me_template = c.me().clone();
    c.nodes.clear();
    let mut found_me = false;
    for (i, line) in text.lines().enumerate() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.is_empty() {
            continue;
        }
        if f[0] == "vars" {
            for pair in f[1..].chunks(2) {
                if let [k, v] = pair {
                    let v = v.parse().map_err(|_| ConfigFileError::Format(i + 1))?;
                    match *k {
                        "currentEpoch" => c.current_epoch = v,
                        "lastVoteEpoch" => c.last_vote_epoch = v,
                        _ => {}
                    }
                }
            }
            continue;
        }
        let node = parse_line(c, &f, now).ok_or(ConfigFileError::Format(i + 1))?;
        if node.myself {
            found_me = true;
            c.myid = node.id.clone();
        }
        c.nodes.insert(node.id.clone(), node);
    }
    if !found_me {
        return Err(ConfigFileError::Format(0));
    }
    // Our own address is whatever we listen on now.
    let myid = c.myid.clone();
    let me = c.me_mut();
    me.ip = me_template.ip;
    me.port = me_template.port;
    me.cport = me_template.cport;
    debug_assert_eq!(me.id, myid);
    c.dirty = false;
    Ok(true)
}

/// One node line; slots and migration marks go straight into `c`.
fn parse_line(c: &mut ClusterState, f: &[&str], now: i64) -> Option<ClusterNode> {
    if f.len() < 8 {
        return None;
    }
    let id = f[0].to_string();
    let addr = f[1].split(',').next()?;
    let (hostport, cport) = addr.split_once('@')?;
    let (ip, port) = hostport.rsplit_once(':')?;
    let mut n = ClusterNode::new(id.clone(), ip, port.parse().ok()?, cport.parse().ok()?, now);
    for flag in f[2].split(',') {
        match flag {
            "myself" => n.myself = true,
            "slave" => n.replica = true,
            "fail" => {
                n.fail = true;
                n.fail_time = now;
            }
            _ => {}
        }
    }
    if f[3] != "-" {
        n.master_of = Some(f[3].to_string());
    }
    n.config_epoch = f[6].parse().ok()?;
    for s in &f[8..] {
        if let Some(inner) = s.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            if let Some((slot, other)) = inner.split_once("->-") {
                c.migrating.insert(slot.parse().ok()?, other.to_string());
            } else if let Some((slot, other)) = inner.split_once("-<-") {
                c.importing.insert(slot.parse().ok()?, other.to_string());
            }
            continue;
        }
        let (a, b) = match s.split_once('-') {
            Some((a, b)) => (a.parse::<u16>().ok()?, b.parse::<u16>().ok()?),
            None => {
                let a = s.parse::<u16>().ok()?;
                (a, a)
            }
        };
        if usize::from(b) >= crate::cluster_slot::SLOTS || a > b {
            return None;
        }
        for slot in a..=b {
            c.set_owner(slot, Some(id.clone()));
        }
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::cluster::state::random_id;

    #[test]
    fn round_trips() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nodes.conf");
        let mut c = ClusterState::new(random_id(), "127.0.0.1", 7000, 17000, path.clone(), 1, 0);
        let me = c.myid.clone();
        for s in 0..100 {
            c.set_owner(s, Some(me.clone()));
        }
        c.set_owner(200, Some(me.clone()));
        c.migrating.insert(7, "b".repeat(40));
        c.current_epoch = 5;
        c.me_mut().config_epoch = 3;
        write(&path, &render(&c)).expect("write");
        let mut d = ClusterState::new(random_id(), "127.0.0.1", 7000, 17000, path, 1, 0);
        assert!(load(&mut d, 0).expect("load"));
        assert_eq!(d.myid, me);
        assert_eq!(d.current_epoch, 5);
        assert_eq!(d.me().config_epoch, 3);
        assert_eq!(d.ranges_of(&me), vec![(0, 99), (200, 200)]);
        assert_eq!(d.migrating.get(&7).map(String::len), Some(40));
    }
}

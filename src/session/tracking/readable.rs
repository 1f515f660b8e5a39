//! Passthrough pools: the keys a tracking client's Redis user may read, so that the proxy's
//! invalidations tell it about those only.
//!
//! The node sources log in as the proxy and report every key that changes; Redis itself
//! checks no key permission for tracking (Redis 7.0 sends a BCAST client of a user held to
//! `~app:*` the names of every key written, `secret:1` included). A client of a passthrough
//! pool would so learn key names, and when keys it may not read change, that its own user
//! could not learn from Redis by reading. The proxy therefore asks the master for the user's
//! key patterns (`ACL GETUSER`, on the proxy's own connection) when the client turns
//! tracking on (or logs in again while tracking), and the table keeps from it only keys that
//! match one of the patterns that grant reading: in BCAST mode the keys reported, in the
//! default mode the keys the client reads (a read Redis refused registers nothing).
//!
//! Patterns that grant reading: `~p` and `%R~p` / `%RW~p` (`allkeys` is `~*`), of the user
//! and of each of its selectors (a selector's key permission lets the user read under some
//! commands: counted, as Redis's own key permission check for tracking does in the versions
//! that have one). Changes to the user's ACL take effect when the client turns tracking on
//! again or logs in again.

use bytes::Bytes;

use crate::resp::Frame;

/// The key patterns a user may read (none: no key).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Readable {
    patterns: Vec<Bytes>,
    /// One of the patterns is `*`.
    all: bool,
}

impl Readable {
    /// True when the user may read `key`.
    pub(crate) fn allows(&self, key: &[u8]) -> bool {
        self.all
            || self
                .patterns
                .iter()
                .any(|p| crate::node::glob::matches(p, key))
    }

    /// From an `ACL GETUSER` reply (RESP2 or RESP3); `Err` says why it cannot be read (the
    /// caller refuses tracking then: an unknown permission must not be taken as none).
    pub(crate) fn from_getuser(reply: &Frame) -> Result<Readable, String> {
        let mut out = Readable::default();
        let fields = pairs(reply).ok_or("ACL GETUSER did not answer a user")?;
        for (name, value) in fields {
            match name.as_ref() {
                b"keys" => out.add(text(value).ok_or("no key permissions")?)?,
                b"selectors" => {
                    let Frame::Array(selectors) = value else {
                        return Err("unreadable selectors".into());
                    };
                    for sel in selectors {
                        let fields = pairs(sel).ok_or("unreadable selector")?;
                        for (name, value) in fields {
                            if name.as_ref() == b"keys" {
                                out.add(text(value).ok_or("unreadable selector keys")?)?;
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(out)
    }

    /// Adds the read patterns of a `keys` field (`~a* %R~b* %W~c*`).
    fn add(&mut self, keys: &[u8]) -> Result<(), String> {
        for rule in keys.split(|&b| b == b' ').filter(|r| !r.is_empty()) {
            let pattern = match rule.strip_prefix(b"%") {
                Some(rest) => {
                    let at = rest
                        .iter()
                        .position(|&b| b == b'~')
                        .ok_or_else(|| format!("unknown key rule {}", lossy(rule)))?;
                    let (flags, pattern) = (&rest[..at], &rest[at + 1..]);
                    if !flags.iter().all(|f| matches!(f, b'R' | b'W' | b'r' | b'w')) {
                        return Err(format!("unknown key rule {}", lossy(rule)));
                    }
                    if !flags.iter().any(|f| f.eq_ignore_ascii_case(&b'R')) {
                        continue;
                    }
                    pattern
                }
                None => rule
                    .strip_prefix(b"~")
                    .ok_or_else(|| format!("unknown key rule {}", lossy(rule)))?,
            };
            self.all |= pattern == b"*";
            self.patterns.push(Bytes::copy_from_slice(pattern));
        }
        Ok(())
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The name/value pairs of a map (RESP3) or of a flat array (RESP2).
fn pairs(frame: &Frame) -> Option<Vec<(Bytes, &Frame)>> {
    match frame {
        Frame::Map(items) => items
            .iter()
            .map(|(k, v)| Some((text(k)?.clone(), v)))
            .collect(),
        Frame::Array(items) if items.len() % 2 == 0 => items
            .chunks(2)
            .map(|kv| Some((text(&kv[0])?.clone(), &kv[1])))
            .collect(),
        _ => None,
    }
}

fn text(frame: &Frame) -> Option<&Bytes> {
    match frame {
        Frame::Bulk(b) | Frame::Simple(b) => Some(b),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Frame {
        Frame::Bulk(Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn read_patterns_come_from_the_user_and_its_selectors() {
        // As redis-server 7.0 answers for `~app:* %R~ro:* %W~wo:* (~sel:* +get)`.
        let selector = Frame::Array(vec![
            bulk("commands"),
            bulk("-@all +get"),
            bulk("keys"),
            bulk("~sel:*"),
            bulk("channels"),
            bulk(""),
        ]);
        let reply = Frame::Array(vec![
            bulk("flags"),
            Frame::Array(vec![bulk("on")]),
            bulk("keys"),
            bulk("~app:* %R~ro:* %W~wo:*"),
            bulk("selectors"),
            Frame::Array(vec![selector]),
        ]);
        let r = Readable::from_getuser(&reply).expect("readable");
        for key in ["app:1", "ro:1", "sel:1"] {
            assert!(r.allows(key.as_bytes()), "{key}");
        }
        for key in ["wo:1", "secret:1", "ap"] {
            assert!(!r.allows(key.as_bytes()), "{key}");
        }
        let all = Frame::Map(vec![(bulk("keys"), bulk("~*"))]);
        assert!(Readable::from_getuser(&all)
            .expect("all")
            .allows(b"anything"));
        let none = Frame::Map(vec![(bulk("keys"), bulk(""))]);
        assert!(!Readable::from_getuser(&none).expect("none").allows(b"a"));
        let odd = Frame::Map(vec![(bulk("keys"), bulk("%X~a"))]);
        assert!(Readable::from_getuser(&odd).is_err());
        assert!(Readable::from_getuser(&Frame::Null).is_err());
    }
}

//! How a pool's clients authenticate (`auth`), and the users of `auth = "users"`.

use std::fmt;

/// How a pool's clients authenticate (`auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuth {
    /// The `default` user only, with the pool's `password` (none: no authentication).
    #[default]
    Password,
    /// Users defined in the config (`[[pools.users]]`), checked by the proxy.
    Users,
    /// The client's credentials are checked by the master, and its commands run under its
    /// own Redis ACL user.
    Passthrough,
}

impl ClientAuth {
    /// The spelling used in config files.
    pub fn as_str(self) -> &'static str {
        match self {
            ClientAuth::Password => "password",
            ClientAuth::Users => "users",
            ClientAuth::Passthrough => "passthrough",
        }
    }
}

impl fmt::Display for ClientAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a configured user may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Commands that change nothing: none flagged `write`, `may_replicate` or `admin`.
    Read,
    /// Every command except those flagged `admin`.
    ReadWrite,
    /// Every command, including CLIENT LIST/KILL/PAUSE/UNBLOCK and MONITOR.
    Admin,
}

impl Access {
    /// The spelling used in config files.
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::ReadWrite => "read-write",
            Access::Admin => "admin",
        }
    }
}

/// A SHA-256 digest (of a user's password). Its `Debug` does not print it: configs are
/// logged in debug output, and a digest of a weak password is as good as the password.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Sha256Digest(pub [u8; 32]);

impl fmt::Debug for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sha256Digest(..)")
    }
}

/// One `[[pools.users]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserConfig {
    /// The name clients give to `AUTH` (unique in the pool).
    pub name: String,
    /// SHA-256 of the password (`password_sha256`, or computed from `password`).
    pub password_sha256: Sha256Digest,
    /// What the user may run.
    pub access: Access,
    /// Glob patterns every key of a command must match one of (Redis's `~pattern`); empty:
    /// every key.
    pub keys: Vec<String>,
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> Sha256Digest {
    let digest = ring::digest::digest(&ring::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    Sha256Digest(out)
}

#[cfg(test)]
mod tests {
    use super::sha256;

    #[test]
    fn sha256_of_a_known_text() {
        // `printf test | sha256sum`
        let hex: String = sha256(b"test")
            .0
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            hex,
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
        );
    }
}

//! The commands the proxy interprets itself (answers, tracks, or runs on a connection of
//! their own), classified once when the table is loaded, so that the session and the router
//! match on an enum instead of comparing names on every request.

/// What the proxy makes of a command beyond forwarding it. Carried by every
/// [`CommandInfo`](super::CommandInfo) row; [`Special::None`] for the plain data commands.
///
/// Subcommand rows get their own variant only where the proxy treats that subcommand apart
/// (CLIENT TRACKING, SCRIPT LOAD, ...); every other `client|*` row is [`Special::Client`] and
/// every `cluster|*` row [`Special::Cluster`], like their container rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Special {
    /// Nothing special: forwarded by the normal routing.
    None,
    /// `MULTI`: starts a transaction (pins a dedicated connection).
    Multi,
    /// `EXEC`: ends a transaction.
    Exec,
    /// `DISCARD`: ends a transaction.
    Discard,
    /// `WATCH`: pins a dedicated connection.
    Watch,
    /// `UNWATCH`: may end pinning.
    Unwatch,
    /// `SELECT`: the session's database.
    Select,
    /// `HELLO`: the session's protocol and authentication.
    Hello,
    /// `AUTH`: the session's authentication.
    Auth,
    /// `PING`: answered by the proxy.
    Ping,
    /// `ECHO`: answered by the proxy.
    Echo,
    /// `QUIT`: closes the session.
    Quit,
    /// `RESET`: back to a fresh connection's state.
    Reset,
    /// `SUBSCRIBE`: classic pub/sub.
    Subscribe,
    /// `PSUBSCRIBE`: classic pub/sub.
    Psubscribe,
    /// `SSUBSCRIBE`: shard pub/sub.
    Ssubscribe,
    /// `UNSUBSCRIBE`: classic pub/sub.
    Unsubscribe,
    /// `PUNSUBSCRIBE`: classic pub/sub.
    Punsubscribe,
    /// `SUNSUBSCRIBE`: shard pub/sub.
    Sunsubscribe,
    /// `PUBLISH`: goes where classic subscriptions live (cluster pools).
    Publish,
    /// `CLIENT` and its subcommands other than the ones below.
    Client,
    /// `CLIENT TRACKING`: client-side caching, kept by the proxy (`session/tracking`).
    ClientTracking,
    /// `CLIENT CACHING`: answered by the proxy (`session/tracking`).
    ClientCaching,
    /// `CLIENT REPLY`: the session's reply mode, kept by the proxy.
    ClientReply,
    /// `WAIT`: about one connection's writes.
    Wait,
    /// `CLUSTER` and its subcommands: answered by the proxy in cluster pools.
    Cluster,
    /// `READONLY`: a cluster client's connection mode.
    Readonly,
    /// `READWRITE`: a cluster client's connection mode.
    Readwrite,
    /// `ASKING`: a cluster client's redirect step.
    Asking,
    /// `MONITOR`: answered by the proxy (it streams the pool's clients' commands).
    Monitor,
    /// `SYNC`: changes the connection for good.
    Sync,
    /// `PSYNC`: changes the connection for good.
    Psync,
    /// `SCRIPT LOAD`: copied to replicas.
    ScriptLoad,
    /// `SCRIPT FLUSH`: copied to replicas.
    ScriptFlush,
    /// `SCRIPT EXISTS`: answered for every master (cluster pools).
    ScriptExists,
    /// `INFO`: the proxy may add its own sections.
    Info,
    /// `CLIENT UNBLOCK`: answered by the proxy for its own clients.
    ClientUnblock,
    /// `CLIENT PAUSE` and `CLIENT UNPAUSE`: the pool's pause, kept by the proxy (also when
    /// queued in MULTI: see `session/pause.rs`).
    ClientPause,
    /// `SCRIPT KILL` and `FUNCTION KILL`: must not queue behind the busy script they stop.
    ScriptKill,
    /// `SLOWLOG` and its subcommands: answered from the proxy's own slow log.
    Slowlog,
    /// `LATENCY HISTOGRAM`: the master's, with the proxy's locally answered commands added.
    LatencyHistogram,
    /// EVAL, EVALSHA, FCALL and their `_RO` forms: counted while in flight (a node running
    /// a long script answers BUSY: see `session/busy.rs`).
    Script,
    /// A command of a family the proxy refuses some forms of by default (SHUTDOWN, CONFIG
    /// SET, DEBUG, ACL SETUSER, FLUSHALL in cluster pools, ...): checked against the pool's
    /// deny list and `allow_commands` (`session/deny.rs`); every other command skips that.
    Guarded,
}

/// Families with forms refused by default (see `session/deny.rs`, whose test keeps the two
/// lists in step). CLIENT, CLUSTER, SYNC and PSYNC have classes of their own.
const GUARDED_FAMILIES: &[&str] = &[
    "shutdown",
    "replicaof",
    "slaveof",
    "config",
    "debug",
    "failover",
    "acl",
    "flushall",
    "flushdb",
];

impl Special {
    /// The class of a table row, by its lower-case name (`parent|sub` for subcommands).
    pub(crate) fn classify(name: &str) -> Special {
        let parent = name.split_once('|').map_or(name, |(p, _)| p);
        match name {
            "multi" => Special::Multi,
            "exec" => Special::Exec,
            "discard" => Special::Discard,
            "watch" => Special::Watch,
            "unwatch" => Special::Unwatch,
            "select" => Special::Select,
            "hello" => Special::Hello,
            "auth" => Special::Auth,
            "ping" => Special::Ping,
            "echo" => Special::Echo,
            "quit" => Special::Quit,
            "reset" => Special::Reset,
            "subscribe" => Special::Subscribe,
            "psubscribe" => Special::Psubscribe,
            "ssubscribe" => Special::Ssubscribe,
            "unsubscribe" => Special::Unsubscribe,
            "punsubscribe" => Special::Punsubscribe,
            "sunsubscribe" => Special::Sunsubscribe,
            "publish" => Special::Publish,
            "client|tracking" => Special::ClientTracking,
            "client|caching" => Special::ClientCaching,
            "client|reply" => Special::ClientReply,
            "wait" => Special::Wait,
            "readonly" => Special::Readonly,
            "readwrite" => Special::Readwrite,
            "asking" => Special::Asking,
            "monitor" => Special::Monitor,
            "sync" => Special::Sync,
            "psync" => Special::Psync,
            "script|load" => Special::ScriptLoad,
            "script|flush" => Special::ScriptFlush,
            "script|exists" => Special::ScriptExists,
            "info" => Special::Info,
            "client|unblock" => Special::ClientUnblock,
            "client|pause" | "client|unpause" => Special::ClientPause,
            "script|kill" | "function|kill" => Special::ScriptKill,
            _ if parent == "slowlog" => Special::Slowlog,
            "latency|histogram" => Special::LatencyHistogram,
            "eval" | "evalsha" | "eval_ro" | "evalsha_ro" | "fcall" | "fcall_ro" => Special::Script,
            _ if parent == "client" => Special::Client,
            _ if parent == "cluster" => Special::Cluster,
            _ if GUARDED_FAMILIES.contains(&parent) => Special::Guarded,
            _ => Special::None,
        }
    }

    /// The class of a looked-up command; [`Special::None`] for an unknown one.
    pub fn of(info: Option<&super::CommandInfo>) -> Special {
        info.map_or(Special::None, |i| i.special)
    }

    /// SUBSCRIBE, PSUBSCRIBE or SSUBSCRIBE: puts the connection in subscribed mode.
    pub fn subscribes(self) -> bool {
        matches!(
            self,
            Special::Subscribe | Special::Psubscribe | Special::Ssubscribe
        )
    }

    /// UNSUBSCRIBE, PUNSUBSCRIBE or SUNSUBSCRIBE.
    pub fn unsubscribes(self) -> bool {
        matches!(
            self,
            Special::Unsubscribe | Special::Punsubscribe | Special::Sunsubscribe
        )
    }

    /// Any CLIENT subcommand (or CLIENT alone).
    pub fn is_client(self) -> bool {
        matches!(
            self,
            Special::Client
                | Special::ClientTracking
                | Special::ClientCaching
                | Special::ClientReply
                | Special::ClientUnblock
                | Special::ClientPause
        )
    }

    /// SYNC and PSYNC: commands that change the connection they run on for good (when
    /// allowed, they get a tunnel of their own: see `pubsub::tunnel`). MONITOR, CLIENT REPLY
    /// and CLIENT TRACKING/CACHING are answered by the proxy instead.
    pub fn changes_connection_for_good(self) -> bool {
        matches!(self, Special::Sync | Special::Psync)
    }
}

#[cfg(test)]
mod tests {
    use super::Special;
    use crate::command::{lookup_args, lookup_name};

    #[test]
    fn rows_carry_their_class() {
        let class = |name: &str| lookup_name(name.as_bytes()).map(|i| i.special);
        assert_eq!(class("multi"), Some(Special::Multi));
        assert_eq!(class("EXEC"), Some(Special::Exec));
        assert_eq!(class("client|setname"), Some(Special::Client));
        assert_eq!(class("client"), Some(Special::Client));
        assert_eq!(class("client|reply"), Some(Special::ClientReply));
        assert_eq!(class("cluster|slots"), Some(Special::Cluster));
        assert_eq!(class("script|load"), Some(Special::ScriptLoad));
        assert_eq!(class("script|kill"), Some(Special::ScriptKill));
        assert_eq!(class("function|kill"), Some(Special::ScriptKill));
        assert_eq!(class("client|unblock"), Some(Special::ClientUnblock));
        assert_eq!(class("client|pause"), Some(Special::ClientPause));
        assert_eq!(class("client|unpause"), Some(Special::ClientPause));
        assert_eq!(class("get"), Some(Special::None));
        assert_eq!(class("info"), Some(Special::Info));
        assert_eq!(class("config|get"), Some(Special::Guarded));
        assert_eq!(class("shutdown"), Some(Special::Guarded));
        // `subscribe` names its own row; a data command named like a prefix does not match.
        assert_eq!(class("subscribe"), Some(Special::Subscribe));
        assert_eq!(class("pubsub|channels"), Some(Special::None));
    }

    #[test]
    fn requests_are_classified_through_their_subcommand() {
        let of = |args: &[&str]| Special::of(lookup_args(args));
        assert_eq!(of(&["Client", "Tracking", "on"]), Special::ClientTracking);
        assert_eq!(of(&["CLIENT", "nosuchsub"]), Special::Client);
        assert_eq!(of(&["script", "FLUSH"]), Special::ScriptFlush);
        assert_eq!(of(&["mymodule.cmd"]), Special::None);
        assert!(Special::Ssubscribe.subscribes());
        assert!(Special::Punsubscribe.unsubscribes());
        assert!(Special::Psync.changes_connection_for_good());
        assert!(!Special::Monitor.changes_connection_for_good());
        assert!(!Special::Client.changes_connection_for_good());
    }

    #[test]
    fn every_variant_names_a_row() {
        // A misspelt name in `classify` would leave its variant unreachable.
        let seen: std::collections::HashSet<Special> =
            crate::command::table().iter().map(|i| i.special).collect();
        assert_eq!(seen.len(), 43, "classes seen: {seen:?}");
    }
}

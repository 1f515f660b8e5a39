//! The retry rules for a forwarded request's outcome in standalone and sentinel pools, as a
//! pure decision (cluster pools follow redirects instead: `route::cluster::needs_follow`).
//! The session carries out what [`on_reply`] decides; the rules are unit-tested here without
//! sockets.

use crate::backend::mux::ReplyResult;

/// What came back for a forwarded request, as far as the retry rules care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ReplyClass {
    /// Any reply the rules leave alone (a value, or an error the client must see).
    Plain,
    /// `LOADING` or `MASTERDOWN`: the node cannot serve yet; the request did not run.
    NotServing,
    /// `NOSCRIPT`: the node lacks a script (replicas miss SCRIPT LOAD).
    NoScript,
    /// `READONLY`: a write reached a node that is no longer the master; it did not run.
    ReadOnly,
    /// No reply: the connection failed or timed out.
    Failed,
}

impl ReplyClass {
    /// Classifies a node's answer.
    pub(super) fn of(res: &ReplyResult) -> ReplyClass {
        match res {
            Err(_) => ReplyClass::Failed,
            Ok(r) if r.is_error_with(b"LOADING") || r.is_error_with(b"MASTERDOWN") => {
                ReplyClass::NotServing
            }
            Ok(r) if r.is_error_with(b"NOSCRIPT") => ReplyClass::NoScript,
            Ok(r) if r.is_error_with(b"READONLY") => ReplyClass::ReadOnly,
            Ok(_) => ReplyClass::Plain,
        }
    }
}

/// What the session does with the outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Action {
    /// Write the reply to the client (a failure: the error).
    Deliver,
    /// A read that did not run: send it to another node of the read pool, or deliver the
    /// reply when there is no other.
    ReadElsewhere,
    /// A read whose replica lacks the script: send it to the master, or deliver the reply
    /// when the master is the node that answered.
    ReadOnMaster,
    /// A write refused by a demoted master: send it to the confirmed master (waiting for one
    /// within `master_wait`).
    WriteOnNewMaster,
    /// A read whose connection failed (it changes nothing even if it ran): send it to another
    /// node, or wait for a replica when it was the only one; fail when neither is possible.
    RetryRead,
}

/// The retry rule for one outcome. Each request is retried at most once (`retried`); only
/// pools that follow failovers (`follows_failovers`: sentinel) retry a READONLY write, since
/// a standalone pool's master never changes.
pub(super) fn on_reply(
    class: ReplyClass,
    read: bool,
    retried: bool,
    follows_failovers: bool,
) -> Action {
    if retried {
        return Action::Deliver;
    }
    match class {
        ReplyClass::NotServing if read => Action::ReadElsewhere,
        ReplyClass::NoScript if read => Action::ReadOnMaster,
        ReplyClass::ReadOnly if !read && follows_failovers => Action::WriteOnNewMaster,
        ReplyClass::Failed if read => Action::RetryRead,
        _ => Action::Deliver,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::BackendError;
    use crate::resp::Reply;
    use bytes::Bytes;

    fn reply(raw: &'static [u8]) -> ReplyResult {
        Ok(Reply::new(Bytes::from_static(raw), false))
    }

    #[test]
    fn replies_are_classified_by_their_error_code() {
        assert_eq!(ReplyClass::of(&reply(b"$1\r\nx\r\n")), ReplyClass::Plain);
        assert_eq!(
            ReplyClass::of(&reply(b"-ERR wrong type\r\n")),
            ReplyClass::Plain
        );
        assert_eq!(
            ReplyClass::of(&reply(b"-LOADING Redis is loading\r\n")),
            ReplyClass::NotServing
        );
        assert_eq!(
            ReplyClass::of(&reply(b"-MASTERDOWN Link with MASTER is down\r\n")),
            ReplyClass::NotServing
        );
        assert_eq!(
            ReplyClass::of(&reply(b"-NOSCRIPT No matching script\r\n")),
            ReplyClass::NoScript
        );
        assert_eq!(
            ReplyClass::of(&reply(b"-READONLY You can't write\r\n")),
            ReplyClass::ReadOnly
        );
        let lost = Err(BackendError::ConnectionLost {
            addr: "n:1".into(),
            reason: "reset".into(),
        });
        assert_eq!(ReplyClass::of(&lost), ReplyClass::Failed);
    }

    #[test]
    fn reads_that_did_not_run_go_elsewhere_once() {
        use ReplyClass::*;
        assert_eq!(
            on_reply(NotServing, true, false, false),
            Action::ReadElsewhere
        );
        assert_eq!(on_reply(NoScript, true, false, true), Action::ReadOnMaster);
        assert_eq!(on_reply(Failed, true, false, false), Action::RetryRead);
        // Once retried, whatever comes back is the answer.
        for class in [NotServing, NoScript, Failed, ReadOnly, Plain] {
            assert_eq!(on_reply(class, true, true, true), Action::Deliver);
            assert_eq!(on_reply(class, false, true, true), Action::Deliver);
        }
        assert_eq!(on_reply(Plain, true, false, true), Action::Deliver);
    }

    #[test]
    fn writes_are_retried_only_after_a_failover_refusal() {
        use ReplyClass::*;
        assert_eq!(
            on_reply(ReadOnly, false, false, true),
            Action::WriteOnNewMaster
        );
        // A standalone master is never replaced: its READONLY is the answer.
        assert_eq!(on_reply(ReadOnly, false, false, false), Action::Deliver);
        // A write may have run when its connection failed: never re-sent.
        assert_eq!(on_reply(Failed, false, false, true), Action::Deliver);
        // LOADING/NOSCRIPT on a write come from the master itself: shown as they are.
        assert_eq!(on_reply(NotServing, false, false, true), Action::Deliver);
        assert_eq!(on_reply(NoScript, false, false, true), Action::Deliver);
        // A read is never sent to "the new master" for READONLY (reads do not get it).
        assert_eq!(on_reply(ReadOnly, true, false, true), Action::Deliver);
    }
}

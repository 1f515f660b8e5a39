//! What the CLUSTER subcommand files share: the refusal of a node without cluster support
//! and the slot argument.

use crate::cluster_slot::SLOTS;
use crate::node::args::parse_int;
use crate::node::reply::Reply;

/// `ERR This instance has cluster support disabled`
pub(crate) fn disabled() -> Reply {
    Reply::error("ERR This instance has cluster support disabled")
}

/// A slot argument, or Redis's error.
pub(crate) fn slot_arg(arg: &[u8]) -> Option<u16> {
    parse_int(arg)
        .and_then(|n| u16::try_from(n).ok())
        .filter(|&n| usize::from(n) < SLOTS)
}

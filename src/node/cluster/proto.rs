//! The cluster bus's messages and framing.
//!
//! Not Redis's binary bus: sluice nodes only talk to sluice nodes. Each frame is a 4-byte
//! big-endian length and a JSON body. Every request (PING, MEET, FAIL, AUTH-REQUEST) is
//! answered with one PONG, which carries the answerer's header and gossip, any UPDATEs the
//! requester needs (it claimed slots a newer config owns) and a failover vote.

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Largest frame accepted from a peer: a header with 16384 single-slot ranges plus gossip
/// about hundreds of nodes stays well below this.
pub(crate) const MAX_FRAME: usize = 4 << 20;

/// What a node says about itself in every message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Header {
    pub id: String,
    /// Empty when the node listens on an unspecified address: the receiver uses the peer's.
    pub ip: String,
    pub port: u16,
    pub cport: u16,
    pub replica: bool,
    pub master: Option<String>,
    pub current_epoch: u64,
    pub config_epoch: u64,
    /// Own slots for a master; its master's slots (as it knows them) for a replica.
    pub slots: Vec<(u16, u16)>,
    /// The config epoch `slots` come with (own, or its master's for a replica).
    pub slots_epoch: u64,
    pub offset: i64,
    /// Manual failover: masters vote although the master is not failing.
    pub manual: bool,
    /// A master that paused its writes for a replica's manual failover: `offset` is the
    /// offset that replica must reach (Redis's CLUSTERMSG_FLAG0_PAUSED).
    #[serde(default)]
    pub paused: bool,
}

/// What a node says about another node.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Gossip {
    pub id: String,
    pub ip: String,
    pub port: u16,
    pub cport: u16,
    pub pfail: bool,
    pub fail: bool,
}

/// A node's slots at a config epoch (sent to a node that claims them with an older one).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Update {
    pub id: String,
    pub config_epoch: u64,
    pub slots: Vec<(u16, u16)>,
}

/// What a request asks.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Kind {
    Ping,
    /// PING from a node that wants to be known (CLUSTER MEET, handshake).
    Meet,
    /// The node with this id is FAIL.
    Fail(String),
    /// A replica asks for a vote (its header carries the epoch it runs for).
    AuthRequest,
    /// A PUBLISH (channel, message) for the node's subscribers.
    Publish(Vec<u8>, Vec<u8>),
    /// From a replica to its master: pause writes for my manual failover (CLUSTER FAILOVER).
    MfStart,
}

impl Kind {
    /// The name CLUSTER INFO counts it under.
    pub fn stat(&self) -> &'static str {
        match self {
            Kind::Ping => "ping",
            Kind::Meet => "meet",
            Kind::Fail(_) => "fail",
            Kind::AuthRequest => "auth-req",
            Kind::Publish(..) => "publish",
            Kind::MfStart => "mfstart",
        }
    }
}

/// A request frame.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Request {
    pub kind: Kind,
    pub h: Header,
    pub gossip: Vec<Gossip>,
}

/// The answer to every request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Pong {
    pub h: Header,
    pub gossip: Vec<Gossip>,
    pub updates: Vec<Update>,
    /// A vote for the requester's election at this epoch.
    pub ack: Option<u64>,
}

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FrameError {
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("frame of {0} bytes is too large")]
    TooLarge(usize),
    #[error("bad frame: {0}")]
    Json(#[from] serde_json::Error),
}

/// Writes one frame.
pub(crate) async fn write<T: Serialize, W: AsyncWriteExt + Unpin>(
    w: &mut W,
    msg: &T,
) -> Result<(), FrameError> {
    let body = serde_json::to_vec(msg)?;
    let len = u32::try_from(body.len()).map_err(|_| FrameError::TooLarge(body.len()))?;
    let mut buf = Vec::with_capacity(body.len() + 4);
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(&body);
    w.write_all(&buf).await?;
    Ok(())
}

/// Reads one frame.
pub(crate) async fn read<T: for<'de> Deserialize<'de>, R: AsyncReadExt + Unpin>(
    r: &mut R,
) -> Result<T, FrameError> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge(len));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await?;
    Ok(serde_json::from_slice(&body)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip_and_refuse_oversize() {
        let (mut a, mut b) = tokio::io::duplex(1 << 16);
        let req = Request {
            kind: Kind::Fail("x".into()),
            h: Header {
                id: "a".into(),
                ip: String::new(),
                port: 1,
                cport: 2,
                replica: false,
                master: None,
                current_epoch: 3,
                config_epoch: 3,
                slots: vec![(0, 10)],
                slots_epoch: 3,
                offset: 0,
                manual: false,
                paused: false,
            },
            gossip: Vec::new(),
        };
        write(&mut a, &req).await.expect("write");
        let got: Request = read(&mut b).await.expect("read");
        assert!(matches!(got.kind, Kind::Fail(id) if id == "x"));
        a.write_all(&u32::MAX.to_be_bytes()).await.expect("write");
        assert!(matches!(
            read::<Request, _>(&mut b).await,
            Err(FrameError::TooLarge(_))
        ));
    }
}

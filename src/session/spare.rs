//! Buffers of sessions that went idle, kept per thread for the next session that wakes.
//!
//! An idle session holds no buffers (the idle-memory target), so a client that sends one
//! request at a time would otherwise allocate and free its read buffer, output buffer and
//! reply queue on every request: 4 KiB blocks go past the allocator's per-thread cache, and
//! this was the largest single share of the proxy's user-space work per request. A few dozen
//! spares per thread serve every busy client while costing idle clients nothing.

use std::cell::RefCell;
use std::collections::VecDeque;

use bytes::BytesMut;

use super::Pending;

/// Spares kept per thread, of each kind.
const KEEP: usize = 64;

/// Buffers larger than this go back to the allocator (one large reply must not stay pinned).
const MAX_SPARE: usize = 16 * 1024;

#[derive(Default)]
struct Spares {
    bufs: Vec<BytesMut>,
    queues: Vec<VecDeque<Pending>>,
}

thread_local! {
    static SPARES: RefCell<Spares> = RefCell::new(Spares::default());
}

/// An empty buffer with room for at least `min` bytes.
pub(super) fn take_buf(min: usize) -> BytesMut {
    let spare = SPARES.with(|s| s.borrow_mut().bufs.pop());
    match spare {
        Some(mut b) => {
            b.reserve(min);
            b
        }
        None => BytesMut::with_capacity(min),
    }
}

/// Gives back an emptied buffer (its capacity is reclaimed when it is taken: by then the
/// requests split off it are gone, so that reuses the same allocation).
pub(super) fn give_buf(mut b: BytesMut) {
    b.clear();
    if b.capacity() == 0 || b.capacity() > MAX_SPARE {
        return;
    }
    SPARES.with(|s| {
        let mut s = s.borrow_mut();
        if s.bufs.len() < KEEP {
            s.bufs.push(b);
        }
    });
}

/// An empty reply queue (with the capacity a previous session gave it).
pub(super) fn take_queue() -> VecDeque<Pending> {
    SPARES
        .with(|s| s.borrow_mut().queues.pop())
        .unwrap_or_default()
}

/// Gives back an empty reply queue.
pub(super) fn give_queue(q: VecDeque<Pending>) {
    if q.capacity() == 0 || q.capacity() > 64 || !q.is_empty() {
        return;
    }
    SPARES.with(|s| {
        let mut s = s.borrow_mut();
        if s.queues.len() < KEEP {
            s.queues.push(q);
        }
    });
}

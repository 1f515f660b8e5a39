//! Idle clients parked off the runtime: an idle connection's task and socket registration
//! cost more memory than its session state, so a plain-TCP client idle for
//! `park_idle_after` gives both up. Its session waits in the pool's parking lot, its socket
//! in one epoll set that the lot's task watches; the first byte (or the end of the
//! connection, or a CLIENT KILL's shutdown) brings it back as a task, with its session as it
//! was (database, name, protocol, reply mode, its place under `max_clients`).
//!
//! Who parks: the lot's task sweeps the pool's registry every `park_idle_after`. A client
//! that was idle at two sweeps in a row is asked to park, through the waker it left when it
//! went idle; its task parks only if it is still idle in the plain pipelined stage (no
//! transaction, no partial request, not TLS). Any activity in between cancels the request.
//! A busy client's cost is two atomic stores per idle spell and a waker registration that is
//! free when the waker is unchanged.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::Waker;

use futures_util::task::AtomicWaker;
use tokio::io::unix::AsyncFd;

use super::engine::{Client, Parts};
use super::{Io, Session};
use crate::pool::Pool;
use crate::tls::ClientStream;

/// A client's park state, in its registry entry (shared by its task and the lot's sweep).
#[derive(Default)]
pub(crate) struct ParkSignal {
    state: AtomicU8,
    waker: AtomicWaker,
}

/// Working, or idle but not parkable.
const BUSY: u8 = 0;
/// Idle and parkable, not yet seen by a sweep.
const IDLE: u8 = 1;
/// Idle and parkable at the last sweep.
const IDLE_SEEN: u8 = 2;
/// Asked to park.
const PARK: u8 = 3;

impl ParkSignal {
    /// The task goes idle and could park: a sweep may wake it through `waker`.
    #[inline]
    pub(super) fn idle(&self, waker: &Waker) {
        self.waker.register(waker);
        // Keeps a pending request (PARK) and a sighting (IDLE_SEEN) across spurious wake-ups.
        let _ = self
            .state
            .compare_exchange(BUSY, IDLE, Ordering::Relaxed, Ordering::Relaxed);
    }

    /// The task has work again.
    #[inline]
    pub(super) fn busy(&self) {
        self.state.store(BUSY, Ordering::Relaxed);
    }

    /// Wakes the idle task (if it is not parked) to look at its state again: another
    /// client made it the target of its invalidations (see `tracking`).
    pub(crate) fn nudge(&self) {
        self.waker.wake();
    }

    /// Whether a sweep asked this idle task to park (the request is taken).
    #[inline]
    pub(super) fn take_request(&self) -> bool {
        self.state.load(Ordering::Relaxed) == PARK
            && self
                .state
                .compare_exchange(PARK, BUSY, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }

    /// One sweep: idle at the previous sweep and still idle → asked to park and woken.
    fn sweep(&self) {
        if self
            .state
            .compare_exchange(IDLE, IDLE_SEEN, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            return;
        }
        if self
            .state
            .compare_exchange(IDLE_SEEN, PARK, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            self.waker.wake();
        }
    }
}

/// A parked client: its session (dropped first: it leaves the registry before the socket
/// closes, see `clients`) and its socket, out of the runtime.
struct Parked {
    session: Session,
    stream: std::net::TcpStream,
}

/// A pool's parked clients and the epoll set of their sockets.
#[derive(Default)]
pub(crate) struct ParkingLot {
    started: AtomicBool,
    inner: Mutex<Lot>,
}

#[derive(Default)]
struct Lot {
    /// The epoll set, once the lot's task has started.
    epoll: Option<RawFd>,
    /// Parked clients by slot (the epoll event's data); boxed so an empty slot costs 8 bytes.
    slots: Vec<Option<Box<Parked>>>,
    free: Vec<usize>,
}

/// The lot's task could not be set up (no epoll set, or the runtime refused it).
#[derive(Debug, thiserror::Error)]
#[error("parking lot: {0}")]
struct LotError(#[from] std::io::Error);

impl ParkingLot {
    /// Starts the lot's task once per pool (from a runtime): it sweeps the pool's registry
    /// and brings parked clients back. It holds the pool weakly and ends with it.
    pub(crate) fn start(pool: &Arc<Pool>) {
        let lot = &pool.registry.parking;
        // A load first: this runs for every accepted client, the swap only once.
        if lot.started.load(Ordering::Relaxed) || lot.started.swap(true, Ordering::Relaxed) {
            return;
        }
        // SAFETY: an `OwnedFd` keeps its descriptor open and unchanged for as long as it lives.
        let registered = new_epoll().and_then(|fd| {
            unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }
                .map_err(|e| LotError(e.into()))
        });
        match registered {
            Ok(epoll) => {
                lock(&lot.inner).epoll = Some(epoll.get_ref().as_raw_fd());
                tokio::spawn(run(Arc::downgrade(pool), epoll));
            }
            Err(e) => {
                tracing::warn!(pool = %pool.cfg.name, error = %e, "idle clients will not be parked")
            }
        }
    }

    /// Parks an idle client (`None`); gives its parts back when it cannot be parked.
    pub(super) fn park(&self, parts: Parts) -> Option<Parts> {
        let Parts {
            session,
            io,
            pending,
        } = parts;
        let Some(epoll) = lock(&self.inner).epoll else {
            return Some(Parts {
                session,
                io,
                pending,
            });
        };
        let Io {
            stream,
            rbuf,
            out,
            eof,
        } = io;
        let tcp = match stream {
            ClientStream::Tcp(tcp) => tcp,
            stream => {
                let io = Io {
                    stream,
                    rbuf,
                    out,
                    eof,
                };
                return Some(Parts {
                    session,
                    io,
                    pending,
                });
            }
        };
        let stream = match tcp.into_std() {
            Ok(s) => s,
            Err(e) => {
                // The socket left the runtime but cannot be handed over: the client is lost.
                tracing::warn!(client = %session.entry.addr, error = %e, "parking failed; closing");
                return None;
            }
        };
        let metrics = session.pool.metrics.clone();
        let mut lot = lock(&self.inner);
        let slot = lot.free.pop().unwrap_or(lot.slots.len());
        if slot == lot.slots.len() {
            lot.slots.push(None);
        }
        let fd = stream.as_raw_fd();
        if let Err(e) = epoll_add(epoll, fd, slot) {
            lot.free.push(slot);
            drop(lot);
            tracing::debug!(client = %session.entry.addr, error = %e, "cannot park; staying awake");
            return match tokio::net::TcpStream::from_std(stream) {
                Ok(tcp) => Some(Parts {
                    session,
                    io: Io::new(tcp.into()),
                    pending,
                }),
                Err(_) => None,
            };
        }
        lot.slots[slot] = Some(Box::new(Parked { session, stream }));
        metrics.parked.increment(1.0);
        None
    }

    /// Brings the parked client in `slot` back as a task.
    fn wake(&self, epoll: RawFd, slot: usize) {
        let parked = {
            let mut lot = lock(&self.inner);
            let Some(parked) = lot.slots.get_mut(slot).and_then(Option::take) else {
                return;
            };
            lot.free.push(slot);
            parked
        };
        let Parked { session, stream } = *parked;
        epoll_del(epoll, stream.as_raw_fd());
        session.pool.metrics.parked.decrement(1.0);
        session.entry.park.busy();
        match tokio::net::TcpStream::from_std(stream) {
            Ok(tcp) => {
                tokio::spawn(Client::from_parts(session, Io::new(tcp.into())));
            }
            Err(e) => tracing::warn!(client = %session.entry.addr, error = %e, "unparking failed"),
        }
    }
}

/// The lot's task: wakes parked clients whose sockets have something, sweeps the registry.
async fn run(pool: Weak<Pool>, epoll: AsyncFd<OwnedFd>) {
    let every = match pool.upgrade() {
        Some(p) => p.cfg.park_idle_after,
        None => return,
    };
    let mut sweep = tokio::time::interval(every);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let epfd = epoll.get_ref().as_raw_fd();
    loop {
        tokio::select! {
            guard = epoll.readable() => {
                let mut guard = match guard {
                    Ok(g) => g,
                    Err(e) => {
                        // Parked clients stay connected but cannot wake: say so loudly.
                        tracing::error!(error = %e, "parking lot stopped: its epoll set failed");
                        return;
                    }
                };
                let Some(pool) = pool.upgrade() else { return };
                let _ = guard.try_io(|_| wake_ready(&pool.registry.parking, epfd));
            }
            _ = sweep.tick() => {
                let Some(pool) = pool.upgrade() else { return };
                for entry in pool.registry.snapshot() {
                    entry.park.sweep();
                }
            }
        }
    }
}

/// Wakes every parked client with an event; `WouldBlock` once none is left.
fn wake_ready(lot: &ParkingLot, epfd: RawFd) -> std::io::Result<()> {
    const BATCH: usize = 64;
    let mut events = [libc::epoll_event { events: 0, u64: 0 }; BATCH];
    loop {
        // SAFETY: `events` has room for BATCH entries; a zero timeout never blocks.
        let n = unsafe { libc::epoll_wait(epfd, events.as_mut_ptr(), BATCH as i32, 0) };
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        for ev in &events[..n as usize] {
            lot.wake(epfd, ev.u64 as usize);
        }
        if (n as usize) < BATCH {
            return Err(std::io::ErrorKind::WouldBlock.into());
        }
    }
}

fn new_epoll() -> Result<OwnedFd, LotError> {
    // SAFETY: plain syscall; the descriptor is owned from here on.
    let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    // SAFETY: `fd` is a new descriptor nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Watches `fd` for input, its end, or an error, once (the wake removes it anyway).
fn epoll_add(epoll: RawFd, fd: RawFd, slot: usize) -> std::io::Result<()> {
    let mut ev = libc::epoll_event {
        events: (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLONESHOT) as u32,
        u64: slot as u64,
    };
    // SAFETY: `ev` is a valid event for the duration of the call.
    if unsafe { libc::epoll_ctl(epoll, libc::EPOLL_CTL_ADD, fd, &mut ev) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn epoll_del(epoll: RawFd, fd: RawFd) {
    // SAFETY: removing a descriptor from an epoll set reads no memory of ours.
    unsafe {
        libc::epoll_ctl(epoll, libc::EPOLL_CTL_DEL, fd, std::ptr::null_mut());
    }
}

/// Locks, ignoring poisoning: slots are replaced whole.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

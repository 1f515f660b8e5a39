//! TLS for a pool: on its client listener (`tls_cert`, `tls_key`, `tls_client_ca`) and toward
//! its nodes and sentinels (`backend_tls*`), with rustls.
//!
//! * [`files`]: certificates, keys and CAs read from PEM files into rustls configs, with
//!   errors that name the file and the reason (shared by `check-config` and the running proxy).
//! * [`live`]: the pool's reloadable TLS state: a reload swaps the rustls configs, so new
//!   connections use the new certificates while open ones keep theirs.
//! * [`client_stream`]: a client connection, plain or TLS, behind the readiness calls the
//!   session's loop is built on (plain TCP keeps exactly its syscalls).
//! * [`node_stream`]: a node or sentinel connection, plain or TLS, as an async stream.

pub(crate) mod client_stream;
pub(crate) mod drain;
pub mod files;
pub(crate) mod live;
pub(crate) mod node_stream;

pub(crate) use client_stream::ClientStream;
pub use files::{BackendTls, FileError, ListenerTls};
pub(crate) use live::{Connector, PoolTls};
pub(crate) use node_stream::{NodeReadHalf, NodeStream, NodeWriteHalf};

/// The crypto provider every config is built with. ring builds with just a C compiler
/// (aws-lc-rs needs a much longer C build); rustls 0.23.48 deprecated it only because it has no
/// post-quantum key exchange, which TLS toward Redis does not depend on.
#[allow(deprecated)]
fn provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    std::sync::Arc::new(rustls::crypto::ring::default_provider())
}

//! The admin HTTP server: `/metrics` (Prometheus), `/healthz` (process alive), `/ready`
//! (every pool has a reachable master and the proxy is not draining), `/topology` (JSON view
//! of every pool), and one state-changing endpoint, `POST /reload`, which answers only to
//! loopback addresses unless `allow_remote_reload`, and only with the `reload_token` when one
//! is set.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::app::{Control, Live};
use crate::config::AdminConfig;

/// What the admin endpoints read.
pub(crate) struct AdminState {
    /// The running proxy: its pools, config and draining flag.
    pub(crate) live: Arc<Live>,
    /// The Prometheus recorder.
    pub(crate) metrics: &'static PrometheusHandle,
}

/// Answer to a connection beyond `max_connections`, written without waiting (a fresh socket
/// has room for it) before the connection is closed.
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 28\r\n\
Connection: close\r\n\r\ntoo many admin connections\r\n";

/// Serves admin HTTP on `listener` until shutdown. At most `cfg.max_connections` connections
/// are served at once (more are answered 503 and closed), and a connection that has not sent
/// a complete request head within `cfg.idle_timeout` (idle between requests, or a partial
/// request held open) is closed: idle admin clients must not use up the process's file
/// descriptors, which the pools' clients need.
pub(crate) async fn serve(
    listener: TcpListener,
    state: Arc<AdminState>,
    cfg: AdminConfig,
    shutdown: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(cfg.max_connections));
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "admin accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::debug!("admin connection refused: max_connections reached");
            let _ = stream.try_write(BUSY);
            continue;
        };
        let state = state.clone();
        let shutdown = shutdown.clone();
        let idle_timeout = cfg.idle_timeout;
        tokio::spawn(async move {
            let _slot = slot;
            let svc = service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(handle(&state, peer, req).await) }
            });
            let conn = http1::Builder::new()
                // Hyper's header read timeout runs whenever it waits for a request head: on
                // a keep-alive connection between requests as well as during a partial one.
                .timer(TokioTimer::new())
                .header_read_timeout(idle_timeout)
                .serve_connection(TokioIo::new(stream), svc);
            tokio::select! {
                r = conn => if let Err(e) = r {
                    tracing::debug!(error = %e, "admin connection error");
                },
                _ = shutdown.cancelled() => {}
            }
        });
    }
}

async fn handle(
    state: &AdminState,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    if req.uri().path() == "/reload" {
        return reload(state, peer, &req).await;
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET\n");
    }
    match req.uri().path() {
        "/metrics" => {
            let mut resp = Response::new(Full::new(Bytes::from(state.metrics.render())));
            resp.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            resp
        }
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/ready" => {
            if state.live.draining.load(Ordering::Relaxed) {
                return text(StatusCode::SERVICE_UNAVAILABLE, "draining\n");
            }
            let pools = state.live.pools.load();
            let not_ready: Vec<&str> = pools
                .iter()
                .filter(|p| !p.master_reachable())
                .map(|p| p.cfg.name.as_str())
                .collect();
            if not_ready.is_empty() {
                text(StatusCode::OK, "ready\n")
            } else {
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &format!("no reachable master: {}\n", not_ready.join(", ")),
                )
            }
        }
        "/topology" => {
            let mut pools = serde_json::Map::new();
            for p in state.live.pools.load().iter() {
                let mut t = p.topology.load().to_json();
                if let Some(obj) = t.as_object_mut() {
                    obj.insert(
                        "mode".into(),
                        format!("{:?}", p.cfg.mode()).to_lowercase().into(),
                    );
                    obj.insert("read_from".into(), p.cfg.read_from.to_string().into());
                    obj.insert("listen".into(), p.cfg.listen.to_string().into());
                    // Nodes of this pool that refuse the proxy's handshake, with the reason.
                    let shown = serde_json::Value::Object(obj.clone()).to_string();
                    let refused: serde_json::Map<_, _> = crate::backend::refusals::current()
                        .into_iter()
                        .filter(|(addr, _)| shown.contains(&format!("\"{addr}\"")))
                        .map(|(addr, reason)| (addr, reason.into()))
                        .collect();
                    obj.insert("handshake_refused".into(), refused.into());
                }
                pools.insert(p.cfg.name.clone(), t);
            }
            let body = serde_json::to_vec_pretty(&serde_json::json!({ "pools": pools }))
                .unwrap_or_default();
            let mut resp = Response::new(Full::new(Bytes::from(body)));
            resp.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("application/json"),
            );
            resp
        }
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: try /metrics /healthz /ready /topology, POST /reload\n",
        ),
    }
}

/// `POST /reload`: re-reads the config file; 200 with a summary, 400 with the reason the new
/// file was rejected (the old config stays in force), 403 when the caller may not reload.
async fn reload(
    state: &AdminState,
    peer: SocketAddr,
    req: &Request<Incoming>,
) -> Response<Full<Bytes>> {
    if req.method() != Method::POST {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only POST\n");
    }
    let config = state.live.config.load();
    let Some(admin) = &config.admin else {
        return text(StatusCode::FORBIDDEN, "no [admin] section\n");
    };
    if !admin.allow_remote_reload && !peer.ip().to_canonical().is_loopback() {
        tracing::warn!(%peer, "POST /reload refused: not loopback (allow_remote_reload = false)");
        return text(StatusCode::FORBIDDEN, "reload only from loopback\n");
    }
    if let Some(token) = &admin.reload_token {
        let given = req
            .headers()
            .get(hyper::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if !given.is_some_and(|g| same(g.as_bytes(), token.as_bytes())) {
            tracing::warn!(%peer, "POST /reload refused: missing or wrong reload_token");
            return text(
                StatusCode::UNAUTHORIZED,
                "reload needs Authorization: Bearer TOKEN\n",
            );
        }
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    if state
        .live
        .control
        .send(Control::Reload(Some(tx)))
        .await
        .is_err()
    {
        return text(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n");
    }
    match rx.await {
        Ok(Ok(summary)) => text(StatusCode::OK, &format!("reloaded: {summary}\n")),
        Ok(Err(reason)) => text(
            StatusCode::BAD_REQUEST,
            &format!("reload rejected: {reason}\n"),
        ),
        Err(_) => text(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n"),
    }
}

/// Compares secrets in time that does not depend on where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body.to_string())));
    *resp.status_mut() = status;
    resp
}

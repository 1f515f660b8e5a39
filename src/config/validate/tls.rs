//! The TLS keys of a pool: which combinations make sense, and whether the files they name
//! load (the same loading the proxy does at start and on reload). A relative path is taken
//! from the config file's directory, so a config and its certificates move together.

use std::path::{Path, PathBuf};

use super::values::non_empty;
use super::{key, Ctx};
use crate::config::raw::RawPool;
use crate::config::ConfigError;
use crate::tls::{BackendTls, FileError, ListenerTls};

/// `tls_cert`, `tls_key`, `tls_client_ca`: TLS on the pool's listener.
pub(super) fn listener_tls(
    ctx: &Ctx,
    p: &str,
    raw: &mut RawPool,
) -> Result<Option<ListenerTls>, ConfigError> {
    let cert = path(ctx, p, "tls_cert", raw.tls_cert.take())?;
    let key_file = path(ctx, p, "tls_key", raw.tls_key.take())?;
    let client_ca = path(ctx, p, "tls_client_ca", raw.tls_client_ca.take())?;
    let (cert, key_file) = match (cert, key_file) {
        (None, None) => {
            if client_ca.is_some() {
                return Err(ctx.err(
                    key(p, "tls_client_ca"),
                    "needs tls_cert and tls_key: client certificates are only asked for on a \
                     TLS listener",
                ));
            }
            return Ok(None);
        }
        (Some(_), None) => {
            return Err(ctx.err(key(p, "tls_key"), "required with tls_cert"));
        }
        (None, Some(_)) => {
            return Err(ctx.err(
                key(p, "tls_key"),
                "needs tls_cert (a key without its certificate)",
            ));
        }
        (Some(c), Some(k)) => (c, k),
    };
    let names = [
        ("tls_cert", Some(&cert)),
        ("tls_key", Some(&key_file)),
        ("tls_client_ca", client_ca.as_ref()),
    ];
    ListenerTls::load(cert.clone(), key_file.clone(), client_ca.clone())
        .map(Some)
        .map_err(|e| file_err(ctx, p, &names, e))
}

/// `backend_tls` and the `backend_tls_*` keys: TLS toward the pool's nodes and sentinels.
pub(super) fn backend_tls(
    ctx: &Ctx,
    p: &str,
    raw: &mut RawPool,
) -> Result<Option<BackendTls>, ConfigError> {
    let ca = path(ctx, p, "backend_tls_ca", raw.backend_tls_ca.take())?;
    let cert = path(ctx, p, "backend_tls_cert", raw.backend_tls_cert.take())?;
    let key_file = path(ctx, p, "backend_tls_key", raw.backend_tls_key.take())?;
    let server_name = non_empty(
        ctx,
        &key(p, "backend_tls_server_name"),
        raw.backend_tls_server_name.take(),
    )?;
    if raw.backend_tls != Some(true) {
        let set = [
            ("backend_tls_ca", ca.is_some()),
            ("backend_tls_cert", cert.is_some()),
            ("backend_tls_key", key_file.is_some()),
            ("backend_tls_server_name", server_name.is_some()),
        ];
        if let Some((name, _)) = set.iter().find(|(_, on)| *on) {
            return Err(ctx.err(key(p, name), "needs backend_tls = true"));
        }
        return Ok(None);
    }
    let ca = ca.ok_or_else(|| {
        ctx.err(
            key(p, "backend_tls_ca"),
            "required with backend_tls = true: the CA file that signed the nodes' certificates \
             (for a public CA, the system bundle, e.g. /etc/ssl/certs/ca-certificates.crt)",
        )
    })?;
    let client_cert = match (cert, key_file) {
        (None, None) => None,
        (Some(_), None) => {
            return Err(ctx.err(key(p, "backend_tls_key"), "required with backend_tls_cert"))
        }
        (None, Some(_)) => {
            return Err(ctx.err(
                key(p, "backend_tls_key"),
                "needs backend_tls_cert (a key without its certificate)",
            ))
        }
        (Some(c), Some(k)) => Some((c, k)),
    };
    if let Some(name) = &server_name {
        if rustls::pki_types::ServerName::try_from(name.as_str()).is_err() {
            return Err(ctx.err(
                key(p, "backend_tls_server_name"),
                format!("{name:?} is not a DNS name or an IP address"),
            ));
        }
    }
    let names = [
        ("backend_tls_ca", Some(&ca)),
        ("backend_tls_cert", client_cert.as_ref().map(|c| &c.0)),
        ("backend_tls_key", client_cert.as_ref().map(|c| &c.1)),
    ];
    BackendTls::load(ca.clone(), client_cert.clone(), server_name)
        .map(Some)
        .map_err(|e| file_err(ctx, p, &names, e))
}

/// A file key: not empty, relative to the config file's directory.
fn path(
    ctx: &Ctx,
    p: &str,
    name: &str,
    value: Option<String>,
) -> Result<Option<PathBuf>, ConfigError> {
    let value = non_empty(ctx, &key(p, name), value)?;
    Ok(value.map(|v| {
        let v = PathBuf::from(v);
        match ctx.file.parent() {
            Some(dir) if v.is_relative() => dir.join(v),
            _ => v,
        }
    }))
}

/// A file that did not load, reported on the key that names it.
fn file_err(ctx: &Ctx, p: &str, names: &[(&str, Option<&PathBuf>)], e: FileError) -> ConfigError {
    let name = names
        .iter()
        .find(|(_, f)| f.is_some_and(|f| Path::new(f) == e.file))
        .map_or(names[0].0, |(n, _)| n);
    ctx.err(key(p, name), e.to_string())
}

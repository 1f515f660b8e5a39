//! PEM files -> rustls configs. The same functions serve `check-config` and the running
//! proxy (start and reload), so what the check accepts is exactly what the proxy can load.
//! Errors name the file and say what is wrong with it; the config check adds the key.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use super::provider;

/// A TLS file that cannot be used, and why.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}: {reason}", file.display())]
pub struct FileError {
    /// The file.
    pub file: PathBuf,
    /// What is wrong with it.
    pub reason: String,
}

fn err(file: &Path, reason: impl Into<String>) -> FileError {
    FileError {
        file: file.to_path_buf(),
        reason: reason.into(),
    }
}

/// Reads the file first, so a missing or unreadable file is told apart from bad content.
fn read(file: &Path) -> Result<Vec<u8>, FileError> {
    std::fs::read(file).map_err(|e| err(file, format!("cannot read: {e}")))
}

/// Every certificate in a PEM file (at least one).
pub(crate) fn certificates(file: &Path) -> Result<Vec<CertificateDer<'static>>, FileError> {
    let pem = read(file)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(file, format!("not a valid PEM certificate file: {e}")))?;
    if certs.is_empty() {
        return Err(err(
            file,
            "no certificate in it (expected -----BEGIN CERTIFICATE-----)",
        ));
    }
    Ok(certs)
}

/// The private key in a PEM file (PKCS#8, PKCS#1 or SEC1).
pub(crate) fn private_key(file: &Path) -> Result<PrivateKeyDer<'static>, FileError> {
    let pem = read(file)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
        err(
            file,
            format!("no usable private key in it (expected -----BEGIN PRIVATE KEY----- or RSA/EC PRIVATE KEY): {e}"),
        )
    })
}

/// A CA file as a root store.
pub(crate) fn roots(file: &Path) -> Result<RootCertStore, FileError> {
    let mut store = RootCertStore::empty();
    for cert in certificates(file)? {
        store
            .add(cert)
            .map_err(|e| err(file, format!("not a usable CA certificate: {e}")))?;
    }
    Ok(store)
}

/// The client side of a pool: TLS on its listener.
#[derive(Debug, Clone)]
pub struct ListenerTls {
    /// `tls_cert`: the listener's certificate chain.
    pub cert: PathBuf,
    /// `tls_key`: its private key.
    pub key: PathBuf,
    /// `tls_client_ca`: when set, clients must present a certificate signed by this CA.
    pub client_ca: Option<PathBuf>,
    /// With `client_ca`: a client without a certificate is let in too (redis's
    /// `tls-auth-clients optional`); one that shows a certificate must still pass.
    pub client_cert_optional: bool,
    /// The files as loaded when the config was read.
    pub(crate) config: Arc<ServerConfig>,
}

impl ListenerTls {
    /// Loads and checks the files (the certificate must match the key).
    pub fn load(
        cert: PathBuf,
        key: PathBuf,
        client_ca: Option<PathBuf>,
    ) -> Result<ListenerTls, FileError> {
        ListenerTls::load_with(cert, key, client_ca, false)
    }

    /// [`ListenerTls::load`], where `client_cert_optional` lets clients without a certificate
    /// in (a node's `tls-auth-clients optional`).
    pub fn load_with(
        cert: PathBuf,
        key: PathBuf,
        client_ca: Option<PathBuf>,
        client_cert_optional: bool,
    ) -> Result<ListenerTls, FileError> {
        let config = Arc::new(server_config(
            &cert,
            &key,
            client_ca.as_deref(),
            client_cert_optional,
        )?);
        Ok(ListenerTls {
            cert,
            key,
            client_ca,
            client_cert_optional,
            config,
        })
    }
}

/// Two entries are the same when they name the same files; the contents are re-read by every
/// reload anyway (see `live`).
impl PartialEq for ListenerTls {
    fn eq(&self, other: &Self) -> bool {
        self.cert == other.cert
            && self.key == other.key
            && self.client_ca == other.client_ca
            && self.client_cert_optional == other.client_cert_optional
    }
}

fn server_config(
    cert: &Path,
    key_file: &Path,
    client_ca: Option<&Path>,
    client_cert_optional: bool,
) -> Result<ServerConfig, FileError> {
    let certs = certificates(cert)?;
    let key = private_key(key_file)?;
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| err(cert, e.to_string()))?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots(ca)?),
                provider(),
            );
            if client_cert_optional {
                verifier = verifier.allow_unauthenticated();
            }
            let verifier = verifier
                .build()
                .map_err(|e| err(ca, format!("cannot verify clients with it: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    builder
        .with_single_cert(certs, key)
        .map_err(|e| err(key_file, key_mismatch(cert, e)))
}

/// `with_single_cert` fails for a key of an unsupported type or one that does not belong to
/// the certificate; say which.
fn key_mismatch(cert: &Path, e: rustls::Error) -> String {
    match e {
        rustls::Error::InconsistentKeys(_) => format!(
            "this key does not belong to the certificate in {}",
            cert.display()
        ),
        other => format!("unusable private key: {other}"),
    }
}

/// TLS toward a pool's nodes and sentinels.
#[derive(Debug, Clone)]
pub struct BackendTls {
    /// `backend_tls_ca`: the CA the nodes' certificates must be signed by.
    pub ca: PathBuf,
    /// `backend_tls_cert` and `backend_tls_key`: a client certificate shown to the nodes.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// `backend_tls_server_name`: the name checked in every node's certificate (and sent as
    /// SNI); without it, the host part of the node's address is checked.
    pub server_name: Option<String>,
    /// The files as loaded when the config was read.
    pub(crate) config: Arc<ClientConfig>,
}

impl BackendTls {
    /// Loads and checks the files.
    pub fn load(
        ca: PathBuf,
        client_cert: Option<(PathBuf, PathBuf)>,
        server_name: Option<String>,
    ) -> Result<BackendTls, FileError> {
        let config = Arc::new(client_config(&ca, client_cert.as_ref())?);
        Ok(BackendTls {
            ca,
            client_cert,
            server_name,
            config,
        })
    }
}

impl PartialEq for BackendTls {
    fn eq(&self, other: &Self) -> bool {
        self.ca == other.ca
            && self.client_cert == other.client_cert
            && self.server_name == other.server_name
    }
}

fn client_config(
    ca: &Path,
    client_cert: Option<&(PathBuf, PathBuf)>,
) -> Result<ClientConfig, FileError> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| err(ca, e.to_string()))?
        .with_root_certificates(roots(ca)?);
    match client_cert {
        None => Ok(builder.with_no_client_auth()),
        Some((cert, key_file)) => {
            let certs = certificates(cert)?;
            let key = private_key(key_file)?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| err(key_file, key_mismatch(cert, e)))
        }
    }
}

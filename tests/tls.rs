//! TLS on both sides of a pool, against redis-server's own TLS port: clients connect to the
//! proxy with TLS (optionally with client certificates), the proxy connects to the node with
//! TLS (with a client certificate, as redis's `tls-auth-clients yes` requires). Certificates
//! are made here with rcgen: a CA, server and client certificates, and a second CA that must
//! not be trusted.

mod common;

use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use common::node::Node;
use common::{encode, free_port_block, parse, wait_until, Client, Redis, Resp, Sentinel, Sluice};

/// A certificate authority that issues certificates into a directory of PEM files.
struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
    dir: PathBuf,
    name: String,
}

impl Ca {
    fn new(dir: &Path, name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, format!("{name} test CA"));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("self-signed");
        let ca = Ca {
            cert,
            key,
            dir: dir.to_path_buf(),
            name: name.to_string(),
        };
        std::fs::write(ca.ca_file(), ca.cert.pem()).expect("write CA");
        ca
    }

    fn ca_file(&self) -> PathBuf {
        self.dir.join(format!("{}-ca.pem", self.name))
    }

    /// Issues a certificate for localhost/127.0.0.1 into `<file>.pem` and `<file>.key`;
    /// returns the two paths and the certificate's DER (to recognise it on the wire).
    fn issue(&self, file: &str, server: bool) -> (PathBuf, PathBuf, Vec<u8>) {
        let mut params = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".into()])
            .expect("params");
        params
            .distinguished_name
            .push(DnType::CommonName, format!("{file} ({})", self.name));
        params.extended_key_usages = vec![if server {
            ExtendedKeyUsagePurpose::ServerAuth
        } else {
            ExtendedKeyUsagePurpose::ClientAuth
        }];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.cert, &self.key).expect("sign");
        let (pem, key_file) = (
            self.dir.join(format!("{file}.pem")),
            self.dir.join(format!("{file}.key")),
        );
        std::fs::write(&pem, cert.pem()).expect("write cert");
        std::fs::write(&key_file, key.serialize_pem()).expect("write key");
        (pem, key_file, cert.der().to_vec())
    }
}

/// Everything a test needs: a CA with a server and a client certificate, in a temp dir.
struct Pki {
    _dir: tempfile::TempDir,
    ca: Ca,
    server: (PathBuf, PathBuf, Vec<u8>),
    client: (PathBuf, PathBuf, Vec<u8>),
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = Ca::new(dir.path(), "good");
        let server = ca.issue("server", true);
        let client = ca.issue("client", false);
        Pki {
            _dir: dir,
            ca,
            server,
            client,
        }
    }
}

/// redis-server with a TLS port (beside the harness's plain port, which the test uses to
/// look at the node directly); returns the TLS address.
fn redis_tls(pki: &Pki, auth_clients: &str) -> (Redis, String) {
    let port = free_port_block(1);
    let args = tls_server_args(pki, port, auth_clients);
    let redis = Redis::start_with(&args.iter().map(String::as_str).collect::<Vec<_>>());
    (redis, format!("127.0.0.1:{port}"))
}

/// The TLS options of redis-server (and of `sluice node`, which takes the same names):
/// `port`, the server certificate, the CA and `--tls-auth-clients`.
fn tls_server_args(pki: &Pki, port: u16, auth_clients: &str) -> Vec<String> {
    [
        "--tls-port",
        &port.to_string(),
        "--tls-cert-file",
        path(&pki.server.0),
        "--tls-key-file",
        path(&pki.server.1),
        "--tls-ca-cert-file",
        path(&pki.ca.ca_file()),
        "--tls-auth-clients",
        auth_clients,
    ]
    .map(str::to_string)
    .to_vec()
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// A standalone pool in front of `master`, with `tls` keys added.
fn config(master: &str, tls: &str) -> String {
    format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\n\n[[pools]]\nname = \"main\"\nlisten = \"127.0.0.1:0\"\n\
         mode = \"standalone\"\nmaster = \"{master}\"\nhealth_check_interval = \"100ms\"\n\
         connect_timeout = \"1s\"\n{tls}\n"
    )
}

/// Both sides: the listener with the server certificate, the node with the CA and the client
/// certificate.
fn both_sides(pki: &Pki, extra: &str) -> String {
    format!(
        "tls_cert = \"{}\"\ntls_key = \"{}\"\nbackend_tls = true\nbackend_tls_ca = \"{}\"\n\
         backend_tls_cert = \"{}\"\nbackend_tls_key = \"{}\"\n{extra}",
        path(&pki.server.0),
        path(&pki.server.1),
        path(&pki.ca.ca_file()),
        path(&pki.client.0),
        path(&pki.client.1),
    )
}

/// A blocking RESP client over TLS.
struct TlsClient {
    rd: BufReader<StreamOwned<ClientConnection, TcpStream>>,
}

impl TlsClient {
    /// Connects and completes the handshake, trusting `ca`, showing `cert` if given.
    fn connect(addr: &str, ca: &Path, cert: Option<(&Path, &Path)>) -> std::io::Result<TlsClient> {
        let mut roots = RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(ca).expect("ca file") {
            roots.add(c.expect("ca cert")).expect("add root");
        }
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots);
        let config = match cert {
            None => builder.with_no_client_auth(),
            Some((c, k)) => builder
                .with_client_auth_cert(
                    CertificateDer::pem_file_iter(c)
                        .expect("cert file")
                        .map(|c| c.expect("cert"))
                        .collect(),
                    PrivateKeyDer::from_pem_file(k).expect("key"),
                )
                .expect("client cert"),
        };
        let name = ServerName::try_from("localhost").expect("name");
        let conn = ClientConnection::new(Arc::new(config), name).expect("connection");
        let sock = TcpStream::connect(addr)?;
        sock.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut stream = StreamOwned::new(conn, sock);
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock)?;
        }
        Ok(TlsClient {
            rd: BufReader::new(stream),
        })
    }

    /// The certificate the server showed.
    fn peer_cert(&self) -> Vec<u8> {
        let certs = self
            .rd
            .get_ref()
            .conn
            .peer_certificates()
            .expect("peer cert");
        certs[0].to_vec()
    }

    fn send(&mut self, args: &[&str]) -> std::io::Result<()> {
        let s = self.rd.get_mut();
        s.write_all(&encode(args))?;
        s.flush()
    }

    fn try_cmd(&mut self, args: &[&str]) -> std::io::Result<Resp> {
        self.send(args)?;
        parse(&mut self.rd)
    }

    fn cmd(&mut self, args: &[&str]) -> Resp {
        self.try_cmd(args).expect("reply")
    }

    fn read(&mut self) -> Resp {
        parse(&mut self.rd).expect("reply")
    }
}

/// A series' value in /metrics: the line of `name` carrying every label in `labels`.
fn metric(proxy: &Sluice, name: &str, labels: &[&str]) -> f64 {
    let (_, body) = proxy.http_get("/metrics");
    body.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .find(|l| labels.iter().all(|lab| l.contains(lab)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

fn bulk(s: &str) -> Resp {
    Resp::Bulk(s.as_bytes().to_vec())
}

fn ok() -> Resp {
    Resp::Simple("OK".into())
}

/// TLS client -> proxy -> TLS node: plain commands, a pipeline, MULTI/EXEC and pub/sub all
/// work, and what was written is on the node.
#[test]
fn tls_on_both_sides_carries_commands_pipelines_transactions_and_pubsub() {
    let pki = Pki::new();
    let (redis, tls_addr) = redis_tls(&pki, "yes");
    let proxy = Sluice::start(&config(&tls_addr, &both_sides(&pki, "")));
    let ca = pki.ca.ca_file();
    let mut c = TlsClient::connect(&proxy.addr(), &ca, None).expect("TLS to the proxy");
    assert_eq!(c.peer_cert(), pki.server.2, "the proxy shows tls_cert");
    assert_eq!(c.cmd(&["SET", "k", "v"]), ok());
    assert_eq!(c.cmd(&["GET", "k"]), bulk("v"));
    // The write reached the node (read over its plain port, which the proxy does not know).
    assert_eq!(redis.client().cmd(&["GET", "k"]), bulk("v"));

    // A pipeline of 200 commands in one write, replies in order.
    let mut batch = Vec::new();
    for i in 0..200 {
        batch.extend(encode(&["SET", &format!("p{i}"), &i.to_string()]));
        batch.extend(encode(&["GET", &format!("p{i}")]));
    }
    c.rd.get_mut().write_all(&batch).expect("write");
    c.rd.get_mut().flush().expect("flush");
    for i in 0..200 {
        assert_eq!(c.read(), ok());
        assert_eq!(c.read(), bulk(&i.to_string()));
    }

    // A large value crosses several TLS records both ways.
    let big = "x".repeat(300_000);
    assert_eq!(c.cmd(&["SET", "big", &big]), ok());
    assert_eq!(c.cmd(&["GET", "big"]), bulk(&big));

    assert_eq!(c.cmd(&["MULTI"]), ok());
    assert_eq!(c.cmd(&["INCR", "n"]), Resp::Simple("QUEUED".into()));
    assert_eq!(c.cmd(&["INCR", "n"]), Resp::Simple("QUEUED".into()));
    assert_eq!(
        c.cmd(&["EXEC"]),
        Resp::Array(vec![Resp::Int(1), Resp::Int(2)])
    );
    // The transaction's dedicated TLS connection is reused, not reopened: an idle TLS
    // connection (which may receive session tickets) is not mistaken for a closed one.
    let accepted = || {
        let stats = redis.info("stats");
        stats
            .lines()
            .find_map(|l| l.strip_prefix("total_connections_received:"))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .expect("total_connections_received")
    };
    let before = accepted();
    for i in 3..8 {
        assert_eq!(c.cmd(&["MULTI"]), ok());
        assert_eq!(c.cmd(&["INCR", "n"]), Resp::Simple("QUEUED".into()));
        assert_eq!(c.cmd(&["EXEC"]), Resp::Array(vec![Resp::Int(i)]));
    }
    // One more for our own INFO call.
    assert_eq!(
        accepted(),
        before + 1,
        "dedicated TLS connections were reopened"
    );

    let mut sub = TlsClient::connect(&proxy.addr(), &ca, None).expect("TLS");
    assert_eq!(
        sub.cmd(&["SUBSCRIBE", "ch"]),
        Resp::Array(vec![bulk("subscribe"), bulk("ch"), Resp::Int(1)])
    );
    // The subscription is in place on the node once PUBLISH reaches one subscriber.
    wait_until(Duration::from_secs(10), "the subscriber", || {
        c.cmd(&["PUBLISH", "ch", "hello"]) == Resp::Int(1)
    });
    assert_eq!(
        sub.read(),
        Resp::Array(vec![bulk("message"), bulk("ch"), bulk("hello")])
    );
    assert_eq!(
        metric(
            &proxy,
            "sluice_tls_handshake_failures_total",
            &["side=\"client\""]
        ),
        0.0
    );
}

/// A plain-text client on a TLS listener gets no answer, is disconnected, and is counted.
#[test]
fn a_plain_client_on_a_tls_listener_is_disconnected_and_counted() {
    let pki = Pki::new();
    let (_redis, tls_addr) = redis_tls(&pki, "yes");
    let proxy = Sluice::start(&config(&tls_addr, &both_sides(&pki, "")));
    let mut plain = Client::connect(&proxy.addr());
    plain.send(&["PING"]);
    // rustls answers the non-TLS bytes with an alert (not RESP) and closes: never a reply.
    let mut replies = Vec::new();
    while let Ok(r) = plain.try_read() {
        replies.push(r);
    }
    assert!(
        !replies.contains(&Resp::Simple("PONG".into())),
        "a plain client was answered: {replies:?}"
    );
    wait_until(Duration::from_secs(10), "the failure counted", || {
        metric(
            &proxy,
            "sluice_tls_handshake_failures_total",
            &["side=\"client\""],
        ) >= 1.0
    });
    // TLS clients are still served.
    let mut c = TlsClient::connect(&proxy.addr(), &pki.ca.ca_file(), None).expect("TLS");
    assert_eq!(c.cmd(&["PING"]), Resp::Simple("PONG".into()));
}

/// With a CA that did not sign the node's certificate, the node is unreachable: requests
/// fail with the reason, the master is reported down, and the failures are counted.
#[test]
fn a_node_certificate_from_another_ca_makes_the_node_unreachable() {
    let pki = Pki::new();
    let other = Ca::new(pki.ca.dir.as_path(), "other");
    let (_redis, tls_addr) = redis_tls(&pki, "no");
    let tls = format!(
        "backend_tls = true\nbackend_tls_ca = \"{}\"\n",
        path(&other.ca_file())
    );
    let proxy = Sluice::start(&config(&tls_addr, &tls));
    let mut c = proxy.client();
    let reply = c.cmd(&["GET", "k"]);
    match &reply {
        Resp::Error(e) => assert!(
            e.contains("certificate") || e.contains("UnknownIssuer"),
            "the error does not say why: {e}"
        ),
        other => panic!("a node behind an untrusted certificate answered: {other:?}"),
    }
    wait_until(Duration::from_secs(10), "backend failures counted", || {
        metric(
            &proxy,
            "sluice_tls_handshake_failures_total",
            &["side=\"backend\""],
        ) >= 1.0
    });
    assert_eq!(metric(&proxy, "sluice_master_up", &["pool=\"main\""]), 0.0);
}

/// `tls_client_ca`: a client without a certificate is refused, one with a certificate from
/// the CA is served.
#[test]
fn tls_client_ca_requires_a_client_certificate() {
    let pki = Pki::new();
    let (_redis, tls_addr) = redis_tls(&pki, "yes");
    let extra = format!("tls_client_ca = \"{}\"\n", path(&pki.ca.ca_file()));
    let proxy = Sluice::start(&config(&tls_addr, &both_sides(&pki, &extra)));
    let ca = pki.ca.ca_file();
    // TLS 1.3 finishes the client's side of the handshake before the server has checked the
    // client: the refusal shows on the first exchange at the latest.
    let refused = match TlsClient::connect(&proxy.addr(), &ca, None) {
        Err(_) => true,
        Ok(mut c) => c.try_cmd(&["PING"]).is_err(),
    };
    assert!(refused, "a client without a certificate was served");
    wait_until(Duration::from_secs(10), "the refusal counted", || {
        metric(
            &proxy,
            "sluice_tls_handshake_failures_total",
            &["side=\"client\""],
        ) >= 1.0
    });
    let cert = (pki.client.0.as_path(), pki.client.1.as_path());
    let mut c = TlsClient::connect(&proxy.addr(), &ca, Some(cert)).expect("TLS with a cert");
    assert_eq!(c.cmd(&["SET", "a", "1"]), ok());
    assert_eq!(c.cmd(&["GET", "a"]), bulk("1"));
}

/// SIGHUP re-reads the certificate files: new connections get the new certificate, an open
/// connection keeps working; a broken file is rejected and the last good one stays.
#[test]
fn sighup_rereads_certificates_for_new_connections_only() {
    let pki = Pki::new();
    let (_redis, tls_addr) = redis_tls(&pki, "yes");
    let proxy = Sluice::start(&config(&tls_addr, &both_sides(&pki, "")));
    let ca = pki.ca.ca_file();
    let mut before = TlsClient::connect(&proxy.addr(), &ca, None).expect("TLS");
    assert_eq!(before.peer_cert(), pki.server.2);
    assert_eq!(before.cmd(&["SET", "k", "1"]), ok());

    // A renewed certificate written over the same files.
    let renewed = pki.ca.issue("server", true);
    assert_ne!(renewed.2, pki.server.2);
    proxy.signal("HUP");
    wait_until(Duration::from_secs(10), "the reload", || {
        metric(&proxy, "sluice_config_reloads_total", &["result=\"ok\""]) >= 1.0
    });
    let mut after = TlsClient::connect(&proxy.addr(), &ca, None).expect("TLS after reload");
    assert_eq!(
        after.peer_cert(),
        renewed.2,
        "a new connection gets the new certificate"
    );
    assert_eq!(after.cmd(&["GET", "k"]), bulk("1"));
    // The connection opened before the reload is still served.
    assert_eq!(before.cmd(&["INCR", "k"]), Resp::Int(2));

    // A broken key file: the reload is rejected, the certificate in force stays.
    std::fs::write(&renewed.1, "not a key").expect("write");
    proxy.signal("HUP");
    wait_until(Duration::from_secs(10), "the rejected reload", || {
        metric(&proxy, "sluice_config_reloads_total", &["result=\"error\""]) >= 1.0
    });
    let mut third = TlsClient::connect(&proxy.addr(), &ca, None).expect("TLS");
    assert_eq!(third.peer_cert(), renewed.2);
    assert_eq!(third.cmd(&["GET", "k"]), bulk("2"));
}

/// A sentinel pool with `backend_tls`: sluice asks a redis-sentinel on its TLS port (showing
/// its client certificate) for the master, which the sentinel itself watches over TLS, and
/// reaches the master's TLS port.
#[test]
fn a_sentinel_pool_uses_tls_toward_sentinels_and_nodes() {
    let pki = Pki::new();
    let (master, master_tls) = redis_tls(&pki, "no");
    let tls_port: u16 = master_tls
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    let sentinel_tls = free_port_block(1);
    let extra = format!(
        "tls-port {sentinel_tls}\ntls-cert-file {}\ntls-key-file {}\ntls-ca-cert-file {}\n\
         tls-replication yes\ntls-auth-clients yes\n",
        path(&pki.server.0),
        path(&pki.server.1),
        path(&pki.ca.ca_file()),
    );
    let _sentinel = Sentinel::start_with_conf(tls_port, "tlsmaster", 1, &extra);
    let text = format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\n\n[[pools]]\nname = \"main\"\nlisten = \"127.0.0.1:0\"\n\
         mode = \"sentinel\"\nsentinels = [\"127.0.0.1:{sentinel_tls}\"]\nmaster_name = \"tlsmaster\"\n\
         health_check_interval = \"100ms\"\nbackend_tls = true\nbackend_tls_ca = \"{}\"\n\
         backend_tls_cert = \"{}\"\nbackend_tls_key = \"{}\"\n",
        path(&pki.ca.ca_file()),
        path(&pki.client.0),
        path(&pki.client.1),
    );
    let proxy = Sluice::start(&text);
    let mut c = proxy.client();
    wait_until(
        Duration::from_secs(15),
        "a write through the sentinel pool",
        || c.cmd(&["SET", "s", "1"]) == ok(),
    );
    assert_eq!(master.client().cmd(&["GET", "s"]), bulk("1"));
    assert_eq!(
        metric(&proxy, "sluice_topology_source_up", &["pool=\"main\""]),
        1.0
    );
    assert_eq!(
        metric(
            &proxy,
            "sluice_tls_handshake_failures_total",
            &["side=\"backend\""]
        ),
        0.0
    );
}

/// A cluster pool with `backend_tls` in front of a one-node cluster with `tls-cluster yes`:
/// the node reports its TLS port as `tls-port` (and its plain one as `port`) in
/// `CLUSTER SHARDS`, and the proxy must use the TLS one.
#[test]
fn a_cluster_pool_uses_the_nodes_tls_ports() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let tls_port = free_port_block(1).to_string();
    let bus = free_port_block(1).to_string();
    let conf = dir.path().join("nodes.conf");
    let node = Redis::start_with(&[
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        path(&conf),
        "--cluster-port",
        &bus,
        // A node that never met another does not know its own address otherwise.
        "--cluster-announce-ip",
        "127.0.0.1",
        "--tls-port",
        &tls_port,
        "--tls-cluster",
        "yes",
        "--tls-cert-file",
        path(&pki.server.0),
        "--tls-key-file",
        path(&pki.server.1),
        "--tls-ca-cert-file",
        path(&pki.ca.ca_file()),
        "--tls-auth-clients",
        "no",
    ]);
    assert_eq!(
        node.client()
            .cmd(&["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]),
        ok()
    );
    wait_until(Duration::from_secs(20), "cluster_state:ok", || {
        matches!(node.client().cmd(&["CLUSTER", "INFO"]),
            Resp::Bulk(b) if String::from_utf8_lossy(&b).contains("cluster_state:ok"))
    });
    let text = format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\n\n[[pools]]\nname = \"main\"\nlisten = \"127.0.0.1:0\"\n\
         mode = \"cluster\"\nseeds = [\"127.0.0.1:{tls_port}\"]\nhealth_check_interval = \"100ms\"\n\
         backend_tls = true\nbackend_tls_ca = \"{}\"\n",
        path(&pki.ca.ca_file()),
    );
    let proxy = Sluice::start(&text);
    let mut c = proxy.client();
    wait_until(
        Duration::from_secs(15),
        "a write through the cluster pool",
        || c.cmd(&["SET", "{a}k", "1"]) == ok(),
    );
    assert_eq!(
        c.cmd(&["MGET", "{a}k", "{a}j"]),
        Resp::Array(vec![bulk("1"), Resp::Nil])
    );
    assert_eq!(node.client().cmd(&["GET", "{a}k"]), bulk("1"));
    let (_, topology) = proxy.http_get("/topology");
    assert!(
        topology.contains(&format!("127.0.0.1:{tls_port}")),
        "the node is known by its TLS port: {topology}"
    );
    assert_eq!(
        metric(
            &proxy,
            "sluice_tls_handshake_failures_total",
            &["side=\"backend\""]
        ),
        0.0
    );
}

/// config/tls.toml (the README's example) with its example certificates: redis-server
/// serves TLS with the example server certificate and requires client certificates; the
/// example config connects to it and serves TLS clients.
#[test]
fn the_tls_example_config_runs() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let file = |f: &str| dir.join("tls").join(f);
    let port = free_port_block(1).to_string();
    let redis = Redis::start_with(&[
        "--tls-port",
        &port,
        "--tls-cert-file",
        path(&file("server.pem")),
        "--tls-key-file",
        path(&file("server.key")),
        "--tls-ca-cert-file",
        path(&file("ca.pem")),
    ]);
    let example = std::fs::read_to_string(dir.join("tls.toml")).expect("config/tls.toml");
    // Relative paths are taken from the config file's directory: make them absolute, since
    // the test's copy of the file lives elsewhere.
    let text = example
        .replace("127.0.0.1:6379", &format!("127.0.0.1:{port}"))
        .replace("127.0.0.1:6380", "127.0.0.1:0")
        .replace("127.0.0.1:9121", "127.0.0.1:0")
        .replace("\"tls/", &format!("\"{}/", path(&dir.join("tls"))));
    let proxy = Sluice::start(&text);
    let mut c = TlsClient::connect(&proxy.addr(), &file("ca.pem"), None).expect("TLS");
    assert_eq!(c.cmd(&["SET", "example", "ok"]), ok());
    assert_eq!(redis.client().cmd(&["GET", "example"]), bulk("ok"));
}

/// TLS mistakes as `(keys, the key named in the error, part of the reason)`; `garbage` is a
/// file that is not PEM.
fn config_mistakes(pki: &Pki, garbage: &str) -> Vec<(String, &'static str, String)> {
    let (cert, key) = (path(&pki.server.0), path(&pki.server.1));
    let ca_file = pki.ca.ca_file();
    let ca = path(&ca_file);
    let other_key = path(&pki.client.1);
    vec![
        (
            "tls_cert = \"/nonexistent/cert.pem\"\ntls_key = \"/nonexistent/key.pem\"".into(),
            "pools[0].tls_cert",
            "/nonexistent/cert.pem: cannot read: No such file or directory".into(),
        ),
        (
            format!("tls_key = \"{key}\""),
            "pools[0].tls_key",
            "needs tls_cert (a key without its certificate)".into(),
        ),
        (
            format!("tls_cert = \"{cert}\""),
            "pools[0].tls_key",
            "required with tls_cert".into(),
        ),
        (
            format!("tls_client_ca = \"{ca}\""),
            "pools[0].tls_client_ca",
            "needs tls_cert and tls_key".into(),
        ),
        (
            format!("tls_cert = \"{garbage}\"\ntls_key = \"{key}\""),
            "pools[0].tls_cert",
            format!("{garbage}: no certificate in it"),
        ),
        (
            format!("tls_cert = \"{cert}\"\ntls_key = \"{garbage}\""),
            "pools[0].tls_key",
            format!("{garbage}: no usable private key in it"),
        ),
        (
            format!("tls_cert = \"{cert}\"\ntls_key = \"{other_key}\""),
            "pools[0].tls_key",
            "does not belong to the certificate".into(),
        ),
        (
            format!("backend_tls_ca = \"{ca}\""),
            "pools[0].backend_tls_ca",
            "needs backend_tls = true".into(),
        ),
        (
            "backend_tls = true".into(),
            "pools[0].backend_tls_ca",
            "required with backend_tls = true".into(),
        ),
        (
            format!("backend_tls = true\nbackend_tls_ca = \"{garbage}\""),
            "pools[0].backend_tls_ca",
            format!("{garbage}: no certificate in it"),
        ),
        (
            format!("backend_tls = true\nbackend_tls_ca = \"{ca}\"\nbackend_tls_key = \"{key}\""),
            "pools[0].backend_tls_key",
            "needs backend_tls_cert".into(),
        ),
        (
            format!(
                "backend_tls = true\nbackend_tls_ca = \"{ca}\"\nbackend_tls_server_name = \"a b\""
            ),
            "pools[0].backend_tls_server_name",
            "is not a DNS name or an IP address".into(),
        ),
    ]
}

/// `check-config` names the file, the key and the reason for each TLS mistake.
#[test]
fn tls_config_errors_name_file_key_and_reason() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("sluice.toml");
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "hello\n").expect("write");
    let ca_file = pki.ca.ca_file();
    let ca = path(&ca_file);
    for (keys, key_path, reason) in config_mistakes(&pki, path(&garbage)) {
        std::fs::write(&cfg, config("127.0.0.1:6379", &keys)).expect("write config");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
            .arg("check-config")
            .arg(&cfg)
            .output()
            .expect("run check-config");
        let text = String::from_utf8_lossy(&out.stderr).into_owned()
            + &String::from_utf8_lossy(&out.stdout);
        assert!(!out.status.success(), "accepted: {keys}");
        let prefix = format!("{}: {key_path}: ", cfg.display());
        assert!(
            text.contains(&prefix) && text.contains(&reason),
            "for {keys:?} expected {prefix}...{reason}, got: {text}"
        );
    }
    // A good combination passes, paths relative to the config file's directory included.
    std::fs::copy(&pki.server.0, dir.path().join("s.pem")).expect("copy");
    std::fs::copy(&pki.server.1, dir.path().join("s.key")).expect("copy");
    let keys = format!(
        "tls_cert = \"s.pem\"\ntls_key = \"s.key\"\ntls_client_ca = \"{ca}\"\nbackend_tls = true\n\
         backend_tls_ca = \"{ca}\"\nbackend_tls_server_name = \"redis.internal\""
    );
    std::fs::write(&cfg, config("127.0.0.1:6379", &keys)).expect("write config");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("check-config")
        .arg(&cfg)
        .output()
        .expect("run check-config");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A sluice node listening for TLS only (`--port 0` beside `--tls-port`, as in Redis), with
/// the server certificate and the CA; returns it and its TLS address.
fn sluice_node_tls(pki: &Pki, auth_clients: &str) -> (Node, String) {
    let port = free_port_block(1);
    let args = tls_server_args(pki, port, auth_clients);
    let node = Node::start_with(&args.iter().map(String::as_str).collect::<Vec<_>>());
    // TLS only: the address the node reports is its TLS port.
    assert_eq!(
        node.addr.port(),
        port,
        "a TLS-only node reports its TLS port"
    );
    (node, format!("127.0.0.1:{port}"))
}

/// `redis-cli --tls <args>` against `port`; its output, trimmed.
fn redis_cli_tls(pki: &Pki, port: u16, args: &[&str]) -> String {
    let out = std::process::Command::new("redis-cli")
        .args([
            "--tls",
            "--cacert",
            path(&pki.ca.ca_file()),
            "-h",
            "127.0.0.1",
        ])
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A sluice node's TLS port serves redis-cli (`--tls --cacert`); a plain-text client there
/// gets no answer.
#[test]
fn a_sluice_node_serves_redis_cli_over_tls() {
    let pki = Pki::new();
    let (node, addr) = sluice_node_tls(&pki, "no");
    let port = node.addr.port();
    assert_eq!(redis_cli_tls(&pki, port, &["PING"]), "PONG");
    assert_eq!(redis_cli_tls(&pki, port, &["SET", "k", "over tls"]), "OK");
    assert_eq!(redis_cli_tls(&pki, port, &["GET", "k"]), "over tls");
    let mut plain = Client::connect(&addr);
    plain.send(&["PING"]);
    let mut replies = Vec::new();
    while let Ok(r) = plain.try_read() {
        replies.push(r);
    }
    assert!(
        !replies.contains(&Resp::Simple("PONG".into())),
        "a plain client was answered on the TLS port: {replies:?}"
    );
    // The node is still serving TLS clients after the plain one.
    let mut c = TlsClient::connect(&addr, &pki.ca.ca_file(), None).expect("TLS");
    assert_eq!(c.cmd(&["GET", "k"]), bulk("over tls"));
}

/// The proxy's backend TLS against a sluice node (with the client certificate the node's
/// `tls-auth-clients yes` asks for): SET and GET through it.
#[test]
fn the_proxy_reaches_a_sluice_node_over_tls() {
    let pki = Pki::new();
    let (_node, addr) = sluice_node_tls(&pki, "yes");
    let tls = format!(
        "backend_tls = true\nbackend_tls_ca = \"{}\"\nbackend_tls_cert = \"{}\"\n\
         backend_tls_key = \"{}\"\n",
        path(&pki.ca.ca_file()),
        path(&pki.client.0),
        path(&pki.client.1),
    );
    let proxy = Sluice::start(&config(&addr, &tls));
    let mut c = proxy.client();
    assert_eq!(c.cmd(&["SET", "a", "1"]), ok());
    assert_eq!(c.cmd(&["GET", "a"]), bulk("1"));
    // The write reached the node: read it there directly, over TLS.
    let cert = (pki.client.0.as_path(), pki.client.1.as_path());
    let mut direct = TlsClient::connect(&addr, &pki.ca.ca_file(), Some(cert)).expect("TLS");
    assert_eq!(direct.cmd(&["GET", "a"]), bulk("1"));
}

/// `--tls-auth-clients yes`: a client without a certificate is refused, one with a
/// certificate from the CA is served; `optional` lets the first one in too.
#[test]
fn a_sluice_node_with_tls_auth_clients_refuses_clients_without_a_certificate() {
    let pki = Pki::new();
    let ca = pki.ca.ca_file();
    let (_node, addr) = sluice_node_tls(&pki, "yes");
    // TLS 1.3 finishes the client's side of the handshake before the server has checked the
    // client: the refusal shows on the first exchange at the latest.
    let refused = match TlsClient::connect(&addr, &ca, None) {
        Err(_) => true,
        Ok(mut c) => c.try_cmd(&["PING"]).is_err(),
    };
    assert!(refused, "a client without a certificate was served");
    let cert = (pki.client.0.as_path(), pki.client.1.as_path());
    let mut c = TlsClient::connect(&addr, &ca, Some(cert)).expect("TLS with a cert");
    assert_eq!(c.cmd(&["PING"]), Resp::Simple("PONG".into()));

    let (_optional, addr) = sluice_node_tls(&pki, "optional");
    let mut c = TlsClient::connect(&addr, &ca, None).expect("TLS without a cert");
    assert_eq!(c.cmd(&["PING"]), Resp::Simple("PONG".into()));
}

#!/usr/bin/env python3
"""Memory held by idle TLS client connections, beside plain ones: RSS of a sluice process with
a plain pool and a TLS pool (certificates from config/tls/), before and after N clients of
one kind connect, send PING and read +PONG, then stay idle (a fresh process for each kind).

    python3 benches/tls_idle_memory.py          # N=2000 of each
    N=5000 SLUICE_BIN=target/release/sluice python3 benches/tls_idle_memory.py

Uses the helpers of benches/idle_memory.py (same process handling and RSS reading).
Environment: N (default 2000), SLUICE_BIN, CARGO_TARGET_DIR.
"""

import os
import socket
import ssl
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("N", "2000")
import idle_memory as im  # noqa: E402  (N is read at import)

CERTS = os.path.join(im.ROOT, "config", "tls")


def start_sluice(stack, binary, redis_port):
    config = stack.path("sluice.toml")
    with open(config, "w") as f:
        for name, tls in (("plain", ""), ("tls", f'tls_cert = "{CERTS}/server.pem"\n'
                                                  f'tls_key = "{CERTS}/server.key"\n')):
            f.write(
                f'[[pools]]\nname = "{name}"\nlisten = "127.0.0.1:0"\n'
                f'master = "127.0.0.1:{redis_port}"\nmax_clients = {im.N + 100}\n{tls}\n'
            )
    out = open(stack.path("sluice.out"), "w+")
    env = dict(os.environ, SLUICE_LOG=os.environ.get("SLUICE_LOG", "warn"))
    proc = stack.spawn([binary, "proxy", "-c", config], stdout=out,
                       stderr=open(stack.path("sluice.err"), "w"), env=env)
    ports = {}

    def listening():
        out.seek(0)
        for line in out:
            for name in ("plain", "tls"):
                prefix = f"sluice: pool {name} listening on "
                if line.startswith(prefix):
                    ports[name] = int(line.strip().rsplit(":", 1)[1])
        return len(ports) == 2

    im.wait_until(proc, listening, "sluice")
    return proc, ports


def open_tls_clients(port, n):
    """n TLS connections, each answered +PONG once; returned open."""
    ctx = ssl.create_default_context(cafile=os.path.join(CERTS, "ca.pem"))
    socks = []
    for _ in range(n):
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        s = ctx.wrap_socket(raw, server_hostname="localhost")
        s.sendall(b"*1\r\n$4\r\nPING\r\n")
        data = b""
        while not data.endswith(b"\r\n"):
            chunk = s.recv(64)
            if not chunk:
                raise RuntimeError("a TLS client was closed by the proxy")
            data += chunk
        if data != b"+PONG\r\n":
            raise RuntimeError(f"unexpected reply {data!r}")
        socks.append(s)
    return socks


def measure(pid, opener, port):
    before = im.settled_rss(pid)
    socks = opener(port, im.N)
    after = im.settled_rss(pid)
    for s in socks:
        s.close()
    return before, after, (after - before) / im.N


def main():
    im.raise_nofile()
    binary = im.sluice_binary()
    stack = im.Stack()
    rows = []
    try:
        redis_port = im.start_redis(stack)
        # A fresh sluice for each, so neither reuses memory the other freed.
        for name, opener in (("plain", im.open_idle_clients), ("tls", open_tls_clients)):
            proc, ports = start_sluice(stack, binary, redis_port)
            rows.append((name,) + measure(proc.pid, opener, ports[name]))
            stack.stop(proc)
    finally:
        stack.close()
    print(f"\nidle client connections: N={im.N} of each kind, VmRSS\n")
    print("| pool | RSS before | RSS with N idle clients | bytes per idle connection |")
    print("|---|---|---|---|")
    for name, before, after, per in rows:
        print(f"| {name} | {before / 2**20:.1f} MiB | {after / 2**20:.1f} MiB | {per:.0f} |")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Memory held by idle client connections: RSS of sluice before and after N clients connect.

    python3 benches/idle_memory.py              # N=10000 idle clients
    N=20000 python3 benches/idle_memory.py

Starts its own redis-server and sluice (standalone pool, read_from = "master", port chosen by
the OS) and, when installed, twemproxy (nutcracker) in front of the same Redis for comparison.
Each client connects, sends PING and reads +PONG, so its session is fully set up on the proxy
side, then stays idle. The proxy's RSS (VmRSS from /proc/PID/status) is read before the
clients connect and again once it has settled; the difference divided by N is the cost of one
idle connection (kernel socket buffers are not part of RSS and are not counted).

sluice parks a client idle for `park_idle_after` (its task and socket registration are freed;
its session state waits in the pool's parking lot). Clients connect in batches of BATCH, and
the script waits until sluice reports (`sluice_parked_clients` on /metrics) that every
client so far is parked before the next batch connects, as clients of a long-running proxy
arrive over time; the memory a parked client gave back is then reused by the next ones.
PARK=off measures without parking (every client keeps its task).

Environment: N (default 10000), BATCH (default 1000), PARK (sluice's park_idle_after, default
"1s"; "off" disables it), SLUICE_BIN (prebuilt binary; otherwise `cargo build --release` is
run), CARGO_TARGET_DIR (honoured as by cargo), NUTCRACKER=0 to skip twemproxy.
Standard library only; Linux only (/proc).
"""

import os
import random
import resource
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

N = int(os.environ.get("N", "10000"))
BATCH = int(os.environ.get("BATCH", "1000"))
PARK = os.environ.get("PARK", "1s")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def log(msg):
    print(f"idle_memory: {msg}", file=sys.stderr, flush=True)


def raise_nofile():
    """Raises this process's open-file limit as far as allowed; children inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 1 << 20
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    except (ValueError, OSError):
        pass
    # Try beyond the hard limit too (works as root).
    if want < 2 * N + 1024:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (2 * N + 1024, 2 * N + 1024))
        except (ValueError, OSError):
            pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def settled_rss(pid, timeout=20.0):
    """Polls RSS until it stops changing (same value 5 times 100 ms apart) or timeout."""
    last, same, deadline = None, 0, time.monotonic() + timeout
    while time.monotonic() < deadline:
        cur = rss_bytes(pid)
        same = same + 1 if cur == last else 0
        if same >= 5:
            return cur
        last = cur
        time.sleep(0.1)
    return last


def port_free(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def pick_port():
    """A random free port below the ephemeral range (32768+)."""
    for _ in range(100):
        port = random.randint(20000, 32000)
        if port_free(port):
            return port
    raise RuntimeError("no free port")


def command(port, *args, timeout=1.0):
    """Sends one command, returns the first reply line (enough for +OK / +PONG)."""
    payload = f"*{len(args)}\r\n".encode()
    for a in args:
        a = a.encode()
        payload += b"$%d\r\n%s\r\n" % (len(a), a)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(payload)
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        return data.split(b"\r\n", 1)[0].decode(errors="replace")


def wait_until(proc, check, what, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with status {proc.returncode}")
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{what} not ready after {timeout}s")


class Stack:
    """Child processes and a temp dir, torn down whatever happens."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="sluice-idle.")
        self.procs = []

    def spawn(self, args, **kw):
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, **kw)
        self.procs.append(proc)
        return proc

    def stop(self, proc):
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def close(self):
        for proc in reversed(self.procs):
            self.stop(proc)
        shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.dir, name)


def start_redis(stack):
    for _ in range(5):
        port = pick_port()
        proc = stack.spawn(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", stack.dir, "--logfile", stack.path("redis.log")],
            stdout=subprocess.DEVNULL,
        )
        try:
            wait_until(proc, lambda: command(port, "PING") == "+PONG", "redis-server")
            return port
        except RuntimeError:
            stack.stop(proc)
    raise RuntimeError("could not start redis-server")


def sluice_binary():
    binary = os.environ.get("SLUICE_BIN")
    if binary:
        return binary
    log("building sluice (cargo build --release)")
    subprocess.run(["cargo", "build", "--release"], cwd=ROOT, check=True, stdout=sys.stderr)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    return os.path.join(target, "release", "sluice")


def start_sluice(stack, binary, redis_port):
    config = stack.path("sluice.toml")
    with open(config, "w") as f:
        f.write(
            '[[pools]]\nname = "idle"\nlisten = "127.0.0.1:0"\nmode = "standalone"\n'
            f'master = "127.0.0.1:{redis_port}"\nread_from = "master"\n'
            f"max_clients = {N + 100}\n"
            f'park_idle_after = "{"86400s" if PARK == "off" else PARK}"\n'
            '[admin]\nlisten = "127.0.0.1:0"\n'
        )
    out = open(stack.path("sluice.out"), "w+")
    env = dict(os.environ, SLUICE_LOG=os.environ.get("SLUICE_LOG", "warn"))
    # The raised RLIMIT_NOFILE of this process is inherited by the child.
    proc = stack.spawn([binary, "proxy", "-c", config], stdout=out,
                       stderr=open(stack.path("sluice.err"), "w"), env=env)
    prefix = "sluice: pool idle listening on "

    def listening():
        out.seek(0)
        return any(line.startswith(prefix) for line in out)

    admin = "sluice: admin listening on "
    wait_until(proc, lambda: listening() and any(l.startswith(admin) for l in out), "sluice")
    out.seek(0)
    lines = out.readlines()
    port = next(int(l.strip().rsplit(":", 1)[1]) for l in lines if l.startswith(prefix))
    admin_port = next(int(l.strip().rsplit(":", 1)[1]) for l in lines if l.startswith(admin))
    wait_until(proc, lambda: command(port, "SET", "idle:probe", "1") == "+OK", "sluice (forwarding)")
    return proc, port, admin_port


def parked_clients(admin_port):
    """sluice_parked_clients from sluice's /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith("sluice_parked_clients{"):
                return int(float(line.rsplit(" ", 1)[1]))
    return 0


def wait_parked(proc, admin_port, n):
    """Waits until sluice has parked n clients (twice park_idle_after, plus slack)."""
    if PARK != "off":
        wait_until(proc, lambda: parked_clients(admin_port) >= n, f"{n} parked clients")


def start_nutcracker(stack, redis_port):
    for _ in range(5):
        port, stats = pick_port(), pick_port()
        conf = stack.path("nutcracker.yml")
        with open(conf, "w") as f:
            f.write(
                f"idle:\n  listen: 127.0.0.1:{port}\n  redis: true\n  hash: fnv1a_64\n"
                "  distribution: ketama\n  auto_eject_hosts: false\n  server_connections: 1\n"
                f"  servers:\n    - 127.0.0.1:{redis_port}:1\n"
            )
        proc = stack.spawn(
            ["nutcracker", "-c", conf, "-o", stack.path("nutcracker.log"),
             "-p", stack.path("nutcracker.pid"), "-s", str(stats), "-a", "127.0.0.1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            wait_until(proc, lambda: command(port, "SET", "idle:probe", "1") == "+OK", "nutcracker")
            return proc, port
        except RuntimeError:
            stack.stop(proc)
    raise RuntimeError("could not start nutcracker")


def open_idle_clients(port, n):
    """Opens n connections, PINGs on each and waits for every +PONG. Returns the sockets."""
    socks, sel = [], selectors.DefaultSelector()
    pending = {}
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.setblocking(False)
        s.send(b"*1\r\n$4\r\nPING\r\n")
        socks.append(s)
        pending[s] = b""
        sel.register(s, selectors.EVENT_READ)
        # Collect replies as we go, so the proxy's accept backlog and our buffers stay short.
        if i % 500 == 499:
            drain(sel, pending, block=False)
    drain(sel, pending, block=True)
    sel.close()
    return socks


def drain(sel, pending, block):
    """Reads +PONG replies; with block, until every client has one (30 s at most)."""
    deadline = time.monotonic() + 30
    while pending:
        events = sel.select(timeout=1 if block else 0)
        if not events:
            if not block:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{len(pending)} clients got no PONG within 30s")
            continue
        for key, _ in events:
            s = key.fileobj
            data = s.recv(64)
            if not data:
                raise RuntimeError("a client connection was closed by the proxy")
            pending[s] += data
            if pending[s].endswith(b"\r\n"):
                if pending[s] != b"+PONG\r\n":
                    raise RuntimeError(f"unexpected reply {pending[s]!r}")
                sel.unregister(s)
                del pending[s]
        if not pending:
            return


def measure(name, pid, port, after_batch=lambda connected: None):
    before = settled_rss(pid)
    started = time.monotonic()
    socks = []
    while len(socks) < N:
        socks += open_idle_clients(port, min(BATCH, N - len(socks)))
        after_batch(len(socks))
    took = time.monotonic() - started
    after = settled_rss(pid)
    per = (after - before) / N
    log(f"{name}: {N} clients connected and answered PING in {took:.1f}s")
    for s in socks:
        s.close()
    return before, after, per


def main():
    if not sys.platform.startswith("linux"):
        sys.exit("idle_memory: Linux only (reads /proc/PID/status)")
    for tool in ("redis-server",):
        if shutil.which(tool) is None:
            sys.exit(f"idle_memory: {tool} not found (apt-get install redis-server)")
    limit = raise_nofile()
    # Each client costs one fd here and one in the proxy; keep headroom for everything else.
    if limit < N + 256:
        sys.exit(f"idle_memory: open-file limit {limit} is too low for N={N}; "
                 f"raise the hard limit (ulimit -Hn) or lower N")
    binary = sluice_binary()
    stack = Stack()
    # SIGTERM/SIGHUP end the run through the same cleanup as Ctrl-C.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, _frame: sys.exit(128 + signum))
    rows = []
    try:
        redis_port = start_redis(stack)
        log(f"redis-server on 127.0.0.1:{redis_port}")
        proc, port, admin_port = start_sluice(stack, binary, redis_port)
        log(f"sluice on 127.0.0.1:{port} (pid {proc.pid}), open-file limit {limit}, "
            f"park_idle_after {PARK}")
        parked = lambda connected: wait_parked(proc, admin_port, connected)
        rows.append(("sluice",) + measure("sluice", proc.pid, port, parked))
        stack.stop(proc)
        if os.environ.get("NUTCRACKER", "1") != "0" and shutil.which("nutcracker"):
            nproc, nport = start_nutcracker(stack, redis_port)
            log(f"nutcracker on 127.0.0.1:{nport} (pid {nproc.pid})")
            rows.append(("twemproxy",) + measure("twemproxy", nproc.pid, nport))
            stack.stop(nproc)
    finally:
        stack.close()
    print(f"\nidle client connections: N={N}, RSS from /proc/PID/status VmRSS\n")
    print("| proxy | RSS before | RSS with N idle clients | bytes per idle connection |")
    print("|---|---|---|---|")
    for name, before, after, per in rows:
        print(f"| {name} | {before / 2**20:.1f} MiB | {after / 2**20:.1f} MiB | {per:.0f} |")


if __name__ == "__main__":
    main()

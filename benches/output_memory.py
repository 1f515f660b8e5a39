#!/usr/bin/env python3
"""Memory held for a client that pipelines large reads and does not read the replies.

    python3 benches/output_memory.py                    # VALUE=1MiB, GETS=2000, HOLD=5s
    VALUE=2097152 python3 benches/output_memory.py
    SLUICE_BIN=/tmp/sluice-main python3 benches/output_memory.py

Starts its own redis-server and sluice (standalone pool, read_from = "master"), stores one
value of VALUE bytes, then one client sends GETS pipelined `GET` of it and reads nothing for
HOLD seconds, while the proxy's RSS (VmRSS from /proc/PID/status) is sampled every 20 ms
until the end of the drain below. Meanwhile a second client sends a small GET every 50 ms and records its slowest answer.
Then the first client reads whatever the proxy sends until it has every reply or the
connection ends; the RSS is read again once it has settled (after the drain, with the client
still connected) and once more after the client has gone.

Prints: RSS before, peak (while the client does not read and while it drains), after the
drain, after the client left; replies received; whether the proxy closed the connection;
the other client's slowest GET. Bounded in time: HOLD + about 30 s at most.

Environment: VALUE (bytes, default 1048576), GETS (default 2000), HOLD (seconds, default 5),
SLUICE_BIN (prebuilt binary; otherwise `cargo build --release`), POOL_EXTRA (more pool keys,
e.g. 'client_output_soft_limit = "4MiB"'). Standard library only; Linux only (/proc).
"""

import os
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from idle_memory import (  # noqa: E402  (shared helpers of the other memory benchmark)
    Stack,
    rss_bytes,
    settled_rss,
    sluice_binary,
    start_redis,
    wait_until,
    command,
)

VALUE = int(os.environ.get("VALUE", str(1 << 20)))
GETS = int(os.environ.get("GETS", "2000"))
HOLD = float(os.environ.get("HOLD", "5"))
POOL_EXTRA = os.environ.get("POOL_EXTRA", "")
MIB = float(1 << 20)


def log(msg):
    print(f"output_memory: {msg}", file=sys.stderr, flush=True)


def resp(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else a.encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def store_value(port):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(resp("SET", "big", b"x" * VALUE) + resp("SET", "small", "1"))
        got = b""
        while got.count(b"\r\n") < 2:
            got += s.recv(64)
        assert got == b"+OK\r\n+OK\r\n", got


def start_sluice(stack, binary, redis_port):
    config = stack.path("sluice.toml")
    with open(config, "w") as f:
        f.write(
            '[[pools]]\nname = "out"\nlisten = "127.0.0.1:0"\nmode = "standalone"\n'
            f'master = "127.0.0.1:{redis_port}"\nread_from = "master"\n{POOL_EXTRA}\n'
        )
    out = open(stack.path("sluice.out"), "w+")
    env = dict(os.environ, SLUICE_LOG=os.environ.get("SLUICE_LOG", "warn"))
    proc = stack.spawn([binary, "proxy", "-c", config], stdout=out,
                       stderr=open(stack.path("sluice.err"), "w"), env=env)
    prefix = "sluice: pool out listening on "

    def listening():
        out.seek(0)
        return any(line.startswith(prefix) for line in out)

    wait_until(proc, listening, "sluice")
    out.seek(0)
    port = next(int(l.strip().rsplit(":", 1)[1]) for l in out if l.startswith(prefix))
    wait_until(proc, lambda: command(port, "GET", "small") == "$1", "sluice (forwarding)")
    return proc, port


def send_gets(sock, deadline, sent):
    """Sends GETS pipelined GETs (as many as the proxy accepts before `deadline`)."""
    one = resp("GET", "big")
    batch = one * 100
    sock.settimeout(0.2)
    while sent[0] < GETS and time.monotonic() < deadline:
        n = min(100, GETS - sent[0])
        data = batch[: n * len(one)]
        view = memoryview(data)
        while view and time.monotonic() < deadline:
            try:
                view = view[sock.send(view):]
            except socket.timeout:
                continue
            except OSError:
                return
        if view:
            # Partly sent: count whole commands that went out.
            sent[0] += (len(data) - len(view)) // len(one)
            return
        sent[0] += n


def probe(port, stop, worst):
    """A second client: one small GET every 50 ms; records the slowest answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        while not stop.is_set():
            t = time.monotonic()
            s.sendall(resp("GET", "small"))
            got = b""
            while not got.endswith(b"1\r\n"):
                chunk = s.recv(64)
                if not chunk:
                    return
                got += chunk
            worst[0] = max(worst[0], time.monotonic() - t)
            stop.wait(0.05)


def drain(sock, sent):
    """Reads until every reply arrived or the connection ended (30 s at most)."""
    reply_len = len(b"$%d\r\n" % VALUE) + VALUE + 2
    want, got, closed = sent * reply_len, 0, False
    sock.settimeout(1.0)
    deadline = time.monotonic() + 30
    while got < want and time.monotonic() < deadline:
        try:
            chunk = sock.recv(1 << 20)
        except socket.timeout:
            continue
        except OSError:
            closed = True
            break
        if not chunk:
            closed = True
            break
        got += len(chunk)
    return got // reply_len, closed


def sample(pid, stop, peak):
    """Keeps the largest RSS seen, every 20 ms, until `stop`."""
    while not stop.is_set():
        try:
            peak[0] = max(peak[0], rss_bytes(pid))
        except (OSError, RuntimeError):
            return
        stop.wait(0.02)


def run(proc, port):
    before = settled_rss(proc.pid)
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    stop, worst, sent, peak = threading.Event(), [0.0], [0], [before]
    sampler = threading.Thread(target=sample, args=(proc.pid, stop, peak), daemon=True)
    sampler.start()
    prober = threading.Thread(target=probe, args=(port, stop, worst), daemon=True)
    prober.start()
    deadline = time.monotonic() + HOLD
    sender = threading.Thread(target=send_gets, args=(sock, deadline, sent), daemon=True)
    sender.start()
    sender.join()
    # The client reads nothing until HOLD is over, however soon its GETs went out.
    time.sleep(max(0.0, deadline - time.monotonic()))
    replies, closed = drain(sock, sent[0])
    stop.set()
    prober.join(5)
    sampler.join(5)
    peak = peak[0]
    after_drain = settled_rss(proc.pid)
    sock.close()
    after_close = settled_rss(proc.pid)
    return before, peak, after_drain, after_close, sent[0], replies, closed, worst[0]


def main():
    if not sys.platform.startswith("linux"):
        sys.exit("output_memory: Linux only (reads /proc/PID/status)")
    binary = sluice_binary()
    stack = Stack()
    try:
        redis_port = start_redis(stack)
        store_value(redis_port)
        proc, port = start_sluice(stack, binary, redis_port)
        log(f"sluice {binary} on 127.0.0.1:{port} (pid {proc.pid}), redis on {redis_port}")
        before, peak, drained, left, sent, replies, closed, worst = run(proc, port)
    finally:
        stack.close()
    print(f"\none client pipelining GET of a {VALUE} byte value without reading for {HOLD:g}s "
          f"(GETS={GETS}); sluice RSS from /proc/PID/status VmRSS\n")
    print("| RSS before | peak | after drain | after client left | GETs sent | replies read "
          "| closed by proxy | other client's slowest GET |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| {before / MIB:.1f} MiB | {peak / MIB:.1f} MiB | {drained / MIB:.1f} MiB "
          f"| {left / MIB:.1f} MiB | {sent} | {replies} | {'yes' if closed else 'no'} "
          f"| {worst * 1000:.0f} ms |")


if __name__ == "__main__":
    main()

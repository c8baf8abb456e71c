"""The gateway under abuse. Measured on main before these limits: 1,050 half-open connections
from one client, each trickling a byte every 10 s, kept /healthz dead indefinitely, and a
64 MiB chunked body was read whole (22 s) before its 413. Now one address gets at most
--max-connections-per-client connections, a request must be read within
--request-deadline-secs whatever trickles in, and a body stops being read at the limit.

Every client here is a raw socket on loopback; the bystander polling /healthz binds to
127.0.0.2 (all of 127/8 is loopback on Linux), so it is another client to the gateway."""

import json
import resource
import selectors
import socket
import subprocess
import sys
import time

import pytest

from lynx_harness import scaled

SLOW_SOCKETS = 2000
PER_CLIENT = 64  # the gateway's default --max-connections-per-client
DEADLINE_SECS = 3  # --request-deadline-secs for the slowloris test
TRICKLE_SECS = 1.0  # each slow socket sends one more header byte this often
#  /healthz from another address while one address attacks: 99 % within 100 ms, and none
#  starved (on main it never answered). Single answers past 100 ms happen on a loaded shared
#  machine with no attack at all, so the maximum has a looser bound.
HEALTHZ_P99_SECS = 0.100
HEALTHZ_MAX_SECS = 1.0
BYSTANDER = "127.0.0.2"


def _port(gateway):
    return int(gateway.url.rsplit(":", 1)[1])


def _rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


def _raise_open_files(count):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= count:
        return
    if hard != resource.RLIM_INFINITY and hard < count:
        pytest.skip(f"needs {count} open files, the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (count, hard))


def _read_answer(sock, deadline):
    """Read from sock until the server closes it or deadline (monotonic); the bytes."""
    data = b""
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            got = sock.recv(65536)
        except socket.timeout:
            break
        except ConnectionError:
            break
        if not got:
            break
        data += got
    return data


def _parse_answer(data):
    """(status, headers dict with lower-case names, body bytes) of a raw HTTP/1.1 answer."""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode(errors="replace").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body[:int(headers.get("content-length", len(body)))]


#  The bystander, in a process of its own so that the attack's sockets and Python's GIL in
#  this one do not count in its latencies: GET /healthz over and over until a deadline, each
#  on a new connection (the accept counts too), then one JSON line of what it saw.
POLLER = r"""
import json, socket, sys, time
port, source, secs, timeout = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
latencies, failures = [], []
end = time.monotonic() + secs
while time.monotonic() < end:
    started = time.monotonic()
    try:
        with socket.socket() as sock:
            sock.bind((source, 0))
            sock.settimeout(timeout)
            sock.connect(("127.0.0.1", port))
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                got = sock.recv(65536)
                if not got:
                    break
                data += got
        elapsed = time.monotonic() - started
        if data.startswith(b"HTTP/1.1 200 "):
            latencies.append(elapsed)
        else:
            failures.append(f"{data[:100]!r} after {elapsed:.3f} s")
    except OSError as exc:
        failures.append(f"{exc!r} after {time.monotonic() - started:.3f} s")
    time.sleep(0.02)
print(json.dumps({"latencies": latencies, "failures": failures}))
"""


class HealthzPoller:
    """The bystander's process; stop() waits for it and returns its latencies and failures."""

    def __init__(self, port, secs):
        self.secs = secs
        self.proc = subprocess.Popen(
            [sys.executable, "-c", POLLER, str(port),
             BYSTANDER, str(secs), str(scaled(5))],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def stop(self):
        try:
            out, err = self.proc.communicate(timeout=self.secs + scaled(15))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate(timeout=scaled(10))
            raise AssertionError("the /healthz poller did not finish") from None
        assert self.proc.returncode == 0, err
        result = json.loads(out)
        self.latencies, self.failures = result["latencies"], result["failures"]
        ordered = sorted(self.latencies)
        p99 = ordered[max(0, int(len(ordered) * 0.99) - 1)] if ordered else 0
        return {"count": len(ordered), "max_ms": round(ordered[-1] * 1000, 1) if ordered else None,
                "p99_ms": round(p99 * 1000, 1), "failures": len(self.failures)}

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=scaled(10))


class SlowClients:
    """Slow sockets from 127.0.0.1: each sends a request line and part of a header, then one
    more byte every TRICKLE_SECS; one the gateway closes is opened again at the next trickle
    while the attack lasts. Records each connection's opening, closing and first wave."""

    def __init__(self, port):
        self.port = port
        self.selector = selectors.DefaultSelector()
        self.conns = []  # dicts: sock, opened, closed (None while open), wave
        self.answered = []

    def open(self, wave):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.settimeout(scaled(5))
        sock.connect(("127.0.0.1", self.port))
        sock.setblocking(False)
        conn = {"sock": sock, "opened": time.monotonic(), "closed": None, "wave": wave}
        self.conns.append(conn)
        try:
            sock.send(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            self.selector.register(sock, selectors.EVENT_READ, conn)
        except OSError:  # refused at once by the per-client limit
            self._closed(conn, registered=False)

    def _closed(self, conn, registered=True):
        conn["closed"] = time.monotonic()
        if registered:
            self.selector.unregister(conn["sock"])
        conn["sock"].close()

    def live(self):
        return [c for c in self.conns if c["closed"] is None]

    def watch(self, secs):
        """Note what the gateway closes (or answers) during secs."""
        for key, _ in self.selector.select(timeout=secs):
            conn = key.data
            try:
                data = conn["sock"].recv(4096)
            except OSError:
                data = b""
            if data:
                self.answered.append(data[:200])
            self._closed(conn)

    def trickle(self, reopen):
        for conn in self.live():
            try:
                conn["sock"].send(b"x")
            except OSError:
                self._closed(conn)
        if reopen:
            for _ in range(len(self.conns) and SLOW_SOCKETS - len(self.live())):
                self.open(wave=False)

    def close(self):
        for conn in self.live():
            self._closed(conn)
        self.selector.close()


def test_slowloris_from_one_address_leaves_healthz_answering(stack):
    _raise_open_files(SLOW_SOCKETS + 512)
    stack.start_broker()
    gateway = stack.start_gateway(extra_args=("--request-deadline-secs", str(DEADLINE_SECS)))
    #  The attack lasts two deadlines; then nothing new, and what is open must be cut.
    attack_secs = 2 * DEADLINE_SECS
    last_cut_secs = attack_secs + DEADLINE_SECS + scaled(2)
    poller = HealthzPoller(_port(gateway), secs=last_cut_secs)
    slow = SlowClients(_port(gateway))
    try:
        started = time.monotonic()
        for _ in range(SLOW_SOCKETS):
            slow.open(wave=True)
        next_trickle = time.monotonic() + TRICKLE_SECS
        while time.monotonic() - started < last_cut_secs and \
                (time.monotonic() - started < attack_secs or slow.live()):
            slow.watch(0.05)
            if time.monotonic() >= next_trickle:
                next_trickle += TRICKLE_SECS
                slow.trickle(reopen=time.monotonic() - started < attack_secs)
        took_secs = time.monotonic() - started
        figures = poller.stop()
    finally:
        poller.kill()
        left_open = len(slow.live())
        slow.close()

    lifetimes = [c["closed"] - c["opened"] for c in slow.conns]
    held = sorted(t for t in lifetimes if t >= DEADLINE_SECS * 0.5)
    first_held = [c for c in slow.conns
                  if c["wave"] and c["closed"] - c["opened"] >= DEADLINE_SECS * 0.5]
    print(f"\nslowloris: {len(slow.conns)} connections from one address over {took_secs:.1f} s"
          f" ({SLOW_SOCKETS} at once, reopened when closed), {len(held)} held until cut at "
          f"{held[0] if held else 0:.2f}..{held[-1] if held else 0:.2f} s, the rest refused at "
          f"once; /healthz from {BYSTANDER}: {figures}")
    assert not poller.failures, f"/healthz failed under attack: {poller.failures[:5]}"
    assert figures["count"] >= 20, figures
    assert figures["p99_ms"] < HEALTHZ_P99_SECS * 1000, f"/healthz slow under attack: {figures}"
    assert figures["max_ms"] < HEALTHZ_MAX_SECS * 1000, f"/healthz starved under attack: {figures}"
    # The gateway closed every slow connection, and answered none (the headers never end).
    assert left_open == 0, f"{left_open} slow connections still open after the last deadline"
    assert not slow.answered, slow.answered[:3]
    # At most one client's worth were accepted at once, and each accepted one was cut at the
    # deadline (not before it, and not much after), although it kept sending.
    assert 1 <= len(first_held) <= PER_CLIENT, len(first_held)
    assert held[0] >= DEADLINE_SECS - 0.05, held[:5]
    assert held[-1] <= DEADLINE_SECS + scaled(2), held[-5:]
    # The cuts and the refusals are in the log, but a few lines, not thousands.
    log = gateway.stderr_text().splitlines()
    cuts = [line for line in log if "request not read within" in line]
    library = [line for line in log if "http library" in line]
    assert 1 <= len(cuts) <= 1 + int(took_secs / 10), cuts
    assert len(library) <= 10, library[:12]
    assert stack.http("GET", "/healthz").status == 200


def _send_chunked(sock, total, chunk_size, deadline):
    """Send a chunked body of total bytes while reading; stop at the first byte of an answer.
    Returns (bytes sent, answer bytes so far, seconds until the answer began)."""
    started = time.monotonic()
    chunk = b"%x\r\n" % chunk_size + b"x" * chunk_size + b"\r\n"
    chunks_left = total // chunk_size
    pending, sent, ended = b"", 0, False
    sock.setblocking(False)
    with selectors.DefaultSelector() as selector:
        selector.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE)
        while time.monotonic() < deadline:
            if not pending and chunks_left:
                pending, chunks_left = chunk, chunks_left - 1
            elif not pending and not ended:
                pending, ended = b"0\r\n\r\n", True
            for _, events in selector.select(timeout=0.05):
                if events & selectors.EVENT_READ:
                    answer = sock.recv(65536)
                    if answer:
                        return sent, answer, time.monotonic() - started
                if events & selectors.EVENT_WRITE and pending:
                    try:
                        n = sock.send(pending)
                    except OSError:  # closed on us: the answer, if any, is still to read
                        selector.modify(sock, selectors.EVENT_READ)
                        pending, chunks_left, ended = b"", 0, True
                        continue
                    pending, sent = pending[n:], sent + n
    raise AssertionError(f"no answer within the deadline after {sent} bytes")


def test_huge_chunked_body_is_refused_at_the_limit(stack):
    limit = 1 << 20
    body_size = 64 << 20
    stack.start_broker()
    gateway = stack.start_gateway(max_body_bytes=limit)
    assert stack.http("GET", "/healthz").status == 200
    rss_before = _rss_kib(gateway.pid)
    with socket.create_connection(("127.0.0.1", _port(gateway)), timeout=scaled(5)) as sock:
        sock.sendall(b"POST /jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json"
                     b"\r\nTransfer-Encoding: chunked\r\n\r\n")
        deadline = time.monotonic() + scaled(30)
        sent, answer, secs = _send_chunked(sock, body_size, 64 * 1024, deadline)
        sock.setblocking(True)
        answer += _read_answer(sock, time.monotonic() + scaled(5))
    rss_after = _rss_kib(gateway.pid)
    print(f"\nchunked 64 MiB: 413 after {secs:.3f} s and {sent / 2**20:.1f} MiB sent; "
          f"gateway RSS {rss_before} -> {rss_after} KiB")
    status, headers, body = _parse_answer(answer)
    assert status == 413, answer[:300]
    assert json.loads(body)["error"]["code"] == "payload_too_large", body
    assert headers.get("connection", "").lower() == "close", headers
    # The gateway stopped reading at the limit: the rest of the 64 MiB never left the client
    # beyond what socket buffers hold, and the answer came long before the body could end.
    assert sent < body_size // 4, f"{sent} bytes of the body were taken"
    assert secs < scaled(5), f"the 413 took {secs:.1f} s"
    assert rss_after - rss_before < 16 * 1024, (rss_before, rss_after)
    assert stack.http("GET", "/healthz").status == 200
    assert gateway.alive()


def test_declared_length_over_the_limit_is_refused_before_the_body(stack):
    stack.start_broker()
    gateway = stack.start_gateway(max_body_bytes=1 << 20)
    with socket.create_connection(("127.0.0.1", _port(gateway)), timeout=scaled(5)) as sock:
        sock.sendall(b"POST /jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json"
                     b"\r\nContent-Length: 1073741824\r\n\r\n")
        started = time.monotonic()
        # Not one byte of the body is sent: the answer must come anyway, and the server
        # closes the connection after it rather than wait for the gigabyte.
        answer = _read_answer(sock, started + scaled(10))
        secs = time.monotonic() - started
    print(f"\nContent-Length 1 GiB: 413 after {secs:.3f} s, no body sent")
    status, headers, body = _parse_answer(answer)
    assert status == 413, answer[:300]
    assert json.loads(body)["error"]["code"] == "payload_too_large", body
    assert secs < scaled(5), f"no close within {secs:.1f} s"
    assert stack.http("GET", "/healthz").status == 200

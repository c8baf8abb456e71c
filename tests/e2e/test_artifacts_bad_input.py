"""A runner that lies about its files meets the real broker.

The runner here is a script speaking the wire protocol (PROTOCOL.md) over a DEALER, so it can
send what lynx-runner never would: names outside the output directory, a wrong SHA-256, more
bytes than declared, chunks for a job it does not hold, and a file too big for the broker's
disk. Each gets an ERROR, the broker keeps serving, the partial file is discarded, the job stays
unacknowledged until a good transfer, and nothing already stored is damaged.
"""

import hashlib
import os
import subprocess
import time
import urllib.request

import msgpack
import pytest
import zmq
import zmq.auth

from lynx_harness import auth_headers, scaled, tutorial_batch

CAPABILITIES = {"max_concurrent_jobs": 1, "supported_simulation_types": ["basilisk", "orbit",
                                                                         "aerospace"],
                "gpu_available": False, "memory_gb": 1.0, "cpu_cores": 1}


class FakeRunner:
    """A runner that says exactly what a test tells it to."""

    def __init__(self, stack, runner_id):
        self.runner_id = runner_id
        self.socket = zmq.Context.instance().socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        if stack.broker.secure:  # an enrolled key, as a real runner on this grid has
            key_file = stack.runner_keys(runner_id)
            self.socket.curve_publickey, self.socket.curve_secretkey = \
                zmq.auth.load_certificate(f"{key_file}_secret")
            self.socket.curve_serverkey = stack.broker.public_key.encode()
        self.socket.connect(stack.broker.runner_endpoint)
        self.send("REGISTER", {"runner_id": runner_id, "name": runner_id,
                               "capabilities": CAPABILITIES, "engines": ["basilisk"]})
        self.expect("REGISTERED")

    def close(self):
        self.socket.close()

    def send(self, command, body):
        #  use_bin_type=False: bytes go out as msgpack str, as the protocol carries file data.
        self.socket.send(msgpack.packb(["LYNX", 1, command, body], use_bin_type=False))

    def beat(self):
        """HEARTBEAT now and then, as a live runner does (at most once a second)."""
        now = time.monotonic()
        if now - getattr(self, "_last_beat", 0) >= 1:
            self._last_beat = now
            self.send("HEARTBEAT", {"runner_id": self.runner_id})

    def expect(self, command, timeout=10):
        """The next message of that command (others are skipped); its body."""
        deadline = time.monotonic() + scaled(timeout)
        while time.monotonic() < deadline:
            self.beat()
            if self.socket.poll(100):
                magic, version, got, body = msgpack.unpackb(self.socket.recv(), raw=False)
                assert (magic, version) == ("LYNX", 1)
                if got == command:
                    return body
                assert got not in ("ACK",) or command == "ACK", f"unexpected {got}: {body}"
        raise AssertionError(f"no {command} within {timeout} s")

    def next(self, timeout=10):
        """The next message, whatever it is: (command, body)."""
        if not self.socket.poll(int(scaled(timeout) * 1000)):
            raise AssertionError(f"no message within {timeout} s")
        _, _, command, body = msgpack.unpackb(self.socket.recv(), raw=False)
        return command, body

    def quiet(self, secs=0.5):
        """Nothing but heartbeat noise for secs: the broker did not ACK or FETCH."""
        deadline = time.monotonic() + secs
        while time.monotonic() < deadline:
            if self.socket.poll(50):
                _, _, got, body = msgpack.unpackb(self.socket.recv(), raw=False)
                assert got not in ("ACK", "FETCH"), f"unexpected {got}: {body}"


def finished(job, files, output_files=()):
    return {"job_id": job["job_id"], "attempt": job["attempt"], "status": "Completed",
            "result": {"job_id": job["job_id"], "success": True, "execution_time_secs": 0.5,
                       "output_files": list(output_files), "telemetry_data": None,
                       "metadata": {"runner_id": "evil-01"}, "error_message": None},
            "artifacts": {"files": [{"name": n, "size": len(d)} for n, d in files],
                          "skipped": []}}


def chunk(job, name, offset, data, eof=True, sha256=None):
    body = {"job_id": job["job_id"], "attempt": job["attempt"], "name": name, "offset": offset,
            "data": data}
    if eof:
        body.update(eof=True, sha256=sha256 or hashlib.sha256(data).hexdigest())
    return body


@pytest.fixture
def evil(stack):
    stack.start_broker()
    stack.start_gateway()
    runner = FakeRunner(stack, "evil-01")
    yield runner
    runner.close()


def take_job(stack, runner):
    batch_id = stack.submit(tutorial_batch("evil", 1, max_retries=0))["batch_id"]
    job = runner.expect("ASSIGN")
    runner.send("STARTED", {"job_id": job["job_id"], "attempt": job["attempt"]})
    return batch_id, job


def test_lies_about_files_are_refused_and_the_broker_keeps_serving(stack, evil):
    _, job = take_job(stack, evil)
    good = b"hello"
    own_dir = f"/runs/evil-01/{job['job_id']}"
    report = finished(job, [("../../../../etc/passwd", b"x" * 10), ("/etc/shadow", b"y" * 5),
                            ("ok.txt", good)],
                      output_files=["../../../../etc/passwd", "/etc/shadow",
                                    f"{own_dir}/ok.txt"])
    evil.send("FINISHED", report)
    fetch = evil.expect("FETCH")
    assert (fetch["name"], fetch["offset"], fetch["length"]) == ("ok.txt", 0, 5), fetch

    #  A wrong digest: ERROR, no ACK, the broker still answers.
    evil.send("CHUNK", chunk(job, "ok.txt", 0, good, sha256="0" * 64))
    error = evil.expect("ERROR")
    assert error["code"] == "protocol_error" and "sha256 mismatch" in error["message"], error
    evil.quiet()
    assert stack.get_ok("/healthz")["status"] == "ok"
    assert stack.get_ok(f"/jobs/{job['job_id']}")["status"] == "Running"

    #  A chunk for a job it does not hold.
    evil.send("CHUNK", chunk({"job_id": "no-such-job", "attempt": 1}, "ok.txt", 0, good))
    assert "no transfer" in evil.expect("ERROR")["message"]

    #  More bytes than declared.
    evil.send("FINISHED", report)
    evil.expect("FETCH")
    evil.send("CHUNK", chunk(job, "ok.txt", 0, good + b"!"))
    assert "more than the declared size" in evil.expect("ERROR")["message"]

    #  Finally the truth: stored, the job ends, ACK.
    evil.send("FINISHED", report)
    evil.expect("FETCH")
    evil.send("CHUNK", chunk(job, "ok.txt", 0, good))
    ack = evil.expect("ACK")
    assert (ack["job_id"], ack["attempt"]) == (job["job_id"], job["attempt"])
    result = stack.get_ok(f"/jobs/{job['job_id']}/results")
    assert [a["name"] for a in result["artifacts"]] == ["ok.txt"], result
    assert result["output_files"] == [f"{own_dir}/ok.txt"], result
    refused = {s["name"]: s["reason"] for s in result["artifacts_skipped"]}
    assert set(refused) == {"../../../../etc/passwd", "/etc/shadow"}, refused
    assert all(r.startswith("refused") for r in refused.values()), refused
    url = stack.gateway.url + result["artifacts"][0]["url"]
    assert urllib.request.urlopen(urllib.request.Request(url, headers=auth_headers()),
                                  timeout=10).read() == good
    log = stack.broker.stderr_text()
    assert "artifact name refused" in log and "output_files entry dropped" in log, log[-2000:]
    #  Nothing half-written is left in the broker's artifact store.
    leftovers = [p for p in (stack.broker.data_dir / "artifacts").rglob("*")
                 if p.name.endswith((".part", ".partial"))]
    assert leftovers == [], leftovers


def test_a_transfer_that_never_finishes_is_abandoned_and_restarts(stack, evil):
    _, job = take_job(stack, evil)
    report = finished(job, [("slow.txt", b"slow")])
    evil.send("FINISHED", report)
    evil.expect("FETCH")  # and never answered
    error = evil.expect("ERROR", timeout=45)  # abandoned after 30 s of silence
    assert "transfer abandoned" in error["message"], error
    assert stack.get_ok("/healthz")["status"] == "ok"
    assert stack.get_ok(f"/jobs/{job['job_id']}")["status"] == "Running"
    evil.send("FINISHED", report)  # the runner's resend: the transfer starts over
    evil.expect("FETCH")
    evil.send("CHUNK", chunk(job, "slow.txt", 0, b"slow"))
    evil.expect("ACK")
    assert stack.get_ok(f"/jobs/{job['job_id']}")["status"] == "Completed"


def test_a_runner_that_keeps_sending_bad_files_ends_its_job_without_them(stack, evil):
    _, job = take_job(stack, evil)
    report = finished(job, [("a.txt", b"aaaa"), ("b.txt", b"bbbb")])
    for _ in range(3):
        evil.send("FINISHED", report)
        evil.expect("FETCH")
        evil.send("CHUNK", chunk(job, "a.txt", 2, b"aa"))  # out of order, every time
        assert "out of order" in evil.expect("ERROR")["message"]
    evil.send("FINISHED", report)  # the fourth: given up, the job ends
    evil.expect("ACK")
    result = stack.get_ok(f"/jobs/{job['job_id']}/results")
    assert result["success"] is True and result["artifacts"] == [], result
    reasons = {s["name"]: s["reason"] for s in result["artifacts_skipped"]}
    assert reasons == {"a.txt": "transfer failed 3 times; given up",
                       "b.txt": "transfer failed 3 times; given up"}, reasons


def _can_mount():
    return os.geteuid() == 0 and subprocess.run(["which", "mount"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _can_mount(), reason="a small tmpfs data dir needs root")
def test_a_full_disk_fails_the_transfer_cleanly_and_it_succeeds_once_space_returns(make_stack,
                                                                                 tmp_path):
    data = tmp_path / "small"
    data.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(data)], check=True)
    stack = make_stack("full")
    runner = None
    try:
        stack.root = data  # the broker's data dir is <root>/broker-data, on the tmpfs
        #  No free-space floor: this is the last line, a write that meets ENOSPC itself.
        stack.start_broker(extra_args=["--min-free-mb", "0"])
        stack.start_gateway()
        runner = FakeRunner(stack, "evil-01")
        #  A first job's small file is stored while there is room.
        _, first = take_job(stack, runner)
        small = b"kept\n"
        runner.send("FINISHED", finished(first, [("kept.txt", small)]))
        runner.expect("FETCH")
        runner.send("CHUNK", chunk(first, "kept.txt", 0, small))
        runner.expect("ACK")

        #  A second job's 4 MiB file does not fit.
        _, job = take_job(stack, runner)
        big = os.urandom(4 * 1024 * 1024)
        whole = hashlib.sha256(big).hexdigest()  # the last chunk carries the file's digest
        report = finished(job, [("big.bin", big)])
        runner.send("FINISHED", report)
        error = None
        while error is None:  # answer FETCHes until the broker says why it stops
            command, body = runner.next()
            assert command in ("FETCH", "ERROR"), (command, body)
            if command == "ERROR":
                error = body
                continue
            piece = big[body["offset"]:body["offset"] + body["length"]]
            last = body["offset"] + body["length"] == len(big)
            runner.send("CHUNK", chunk(job, "big.bin", body["offset"], piece, eof=last,
                                       sha256=whole))
        assert error["code"] == "unavailable" and "space" in error["message"], error
        runner.quiet()
        assert stack.get_ok("/healthz")["status"] == "ok"
        assert stack.get_ok(f"/jobs/{job['job_id']}")["status"] == "Running"
        kept = stack.get_ok(f"/jobs/{first['job_id']}/artifacts")["artifacts"][0]
        request = urllib.request.Request(stack.gateway.url + kept["url"], headers=auth_headers())
        assert urllib.request.urlopen(request, timeout=10).read() == small

        #  Space comes back: the runner's FINISHED, sent again, goes through.
        subprocess.run(["mount", "-o", "remount,size=32m", str(data)], check=True)
        runner.send("FINISHED", report)
        got = b""
        while True:
            _, _, command, body = msgpack.unpackb(
                runner.socket.recv() if runner.socket.poll(int(scaled(10) * 1000)) else
                pytest.fail("no answer after space returned"), raw=False)
            if command == "ACK":
                break
            assert command == "FETCH", (command, body)
            piece = big[body["offset"]:body["offset"] + body["length"]]
            got += piece
            last = body["offset"] + body["length"] == len(big)
            runner.send("CHUNK", chunk(job, "big.bin", body["offset"], piece, eof=last,
                                       sha256=whole))
        assert got == big
        result = stack.get_ok(f"/jobs/{job['job_id']}/results")
        assert result["artifacts"][0]["sha256"] == hashlib.sha256(big).hexdigest()
    finally:
        if runner:
            runner.close()
        stack.stop()
        subprocess.run(["umount", "-l", str(data)], check=False)

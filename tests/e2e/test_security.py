"""Security (issue 12): only enrolled runners join, only token holders act.

Runner side: a runner with a key the broker never enrolled is refused at the handshake and
never sees a job; an enrolled key cannot speak for another runner id; a runner whose key is
revoked mid-job is dropped, its job retried elsewhere; --enroll asks, an admin approves, the
runner joins. A telemetry subscriber without a key gets nothing. The broker refuses a secret
key others can read. REST side: no token, a bad token and a read token POSTing get 401, 401
and 403 with WWW-Authenticate, and nothing changes; a submit token cancels only its own
batches; 10,000 bad-token requests leave /healthz answering (its p99 is printed).
"""

import http.client
import os
import re
import shutil
import statistics
import subprocess
import threading
import time
import urllib.parse

import zmq
import zmq.auth

from test_cli import lynx
from lynx_harness import (Stack, assert_error, binary, http_request, read_probe_log, scaled,
                          scenario_path, secure_subscriber, tutorial_batch)

PROBE = scenario_path("probe_scenario.py")
TELEMETRY = scenario_path("telemetry_scenario.py")


def _runners(stack):
    listed = stack.get_ok("/runners")
    return listed["runners"] if isinstance(listed, dict) else listed


def _bearer(token):
    return {"Authorization": f"Bearer {token}"}


def _stray_keys(stack, name):
    """A keypair the broker has never heard of."""
    keys = stack.root / f"stray-{name}"
    keys.mkdir(parents=True, exist_ok=True)
    public, secret = zmq.auth.create_certificates(str(keys), "runner")
    os.chmod(secret, 0o600)
    return public


def test_rest_refuses_missing_bad_and_weak_tokens(stack):
    stack.start_broker()
    stack.start_gateway()
    reader = stack.create_token("dashboard", "read")
    before = stack.get_ok("/batches")

    missing = stack.http("GET", "/batches", headers={"Authorization": None})
    assert_error(missing, 401, "unauthorized")
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")

    wrong = stack.http("GET", "/batches", headers=_bearer("lynx_" + "0" * 12 + "_" + "1" * 64))
    assert_error(wrong, 401, "unauthorized")
    assert 'error="invalid_token"' in wrong.headers["WWW-Authenticate"]
    garbage = stack.http("GET", "/batches", headers={"Authorization": "Basic Zm9vOmJhcg=="})
    assert_error(garbage, 401, "unauthorized")

    assert stack.http("GET", "/batches", headers=_bearer(reader)).status == 200
    posted = stack.http("POST", "/jobs", body=tutorial_batch("from-a-reader", 1),
                        headers=_bearer(reader))
    assert_error(posted, 403, "forbidden")
    assert 'insufficient_scope' in posted.headers["WWW-Authenticate"]
    drained = stack.http("POST", "/runners/anyone/drain", headers=_bearer(reader))
    assert_error(drained, 403, "forbidden")
    # Nothing changed, and /healthz needs no token.
    assert stack.get_ok("/batches") == before
    assert stack.http("GET", "/healthz", headers={"Authorization": None}).status == 200

    # Revoked: refused within the gateway's cache time.
    done = subprocess.run([binary("lynx-broker"), "token", "revoke", "--data-dir",
                           str(stack.broker.data_dir), "--name", "dashboard"],
                          capture_output=True, text=True, timeout=scaled(30))
    assert done.returncode == 0, done.stderr
    stack.wait_for(lambda: stack.http("GET", "/batches", headers=_bearer(reader)).status == 401,
                   timeout=scaled(15), what="a revoked token refused")
    listed = subprocess.run([binary("lynx-broker"), "token", "list", "--data-dir",
                             str(stack.broker.data_dir)], capture_output=True, text=True,
                            timeout=scaled(30))
    assert re.search(r"^dashboard +read .* revoked$", listed.stdout, re.M), listed.stdout
    assert reader not in listed.stdout  # only hashes are stored, never shown again


def test_submit_token_cancels_only_its_own_batches(stack):
    stack.start_broker()
    stack.start_gateway()
    ci, alice = stack.create_token("ci", "submit"), stack.create_token("alice", "submit")
    mine = stack.http("POST", "/jobs", body=tutorial_batch("ci-batch", 2), headers=_bearer(ci))
    assert mine.status == 201, mine.body
    batch_id = mine.body["batch_id"]
    assert stack.get_ok(f"/batches/{batch_id}")["batch"]["token_name"] == "ci"
    theirs = stack.http("POST", f"/batches/{batch_id}/cancel", headers=_bearer(alice))
    assert_error(theirs, 403, "forbidden")
    assert stack.get_ok(f"/batches/{batch_id}")["batch"]["status"] == "Pending"
    own = stack.http("POST", f"/batches/{batch_id}/cancel", headers=_bearer(ci))
    assert own.status == 200, own.body


def test_unknown_key_is_refused_and_never_sees_a_job(stack):
    stack.start_broker()
    stack.start_gateway()
    stray = _stray_keys(stack, "intruder")
    intruder = stack.start_runner("intruder-01", PROBE, extra_config={"key_file": stray},
                                  wait_ready=False, enroll=False)
    # The harness enrolled the runner's own key file; this one uses another, never enrolled.
    batch_id = stack.submit(tutorial_batch("bait", 2))["batch_id"]
    stack.wait_for(lambda: "connection refused domain=runners" in stack.broker.stderr_text(),
                   timeout=scaled(15), what="the broker to log the refused handshake")
    assert "peer=127.0.0.1" in stack.broker.stderr_text()
    assert stack.holds(lambda: stack.get_ok(f"/batches/{batch_id}")["batch"]["status"]
                       == "Pending", secs=scaled(3), what="the bait batch stays Pending")
    assert _runners(stack) == []
    assert "broker refused our key" in intruder.stderr_text()


def test_enrolled_key_cannot_claim_another_runner_id(stack):
    stack.start_broker()
    stack.start_gateway()
    honest = stack.start_runner("honest-01", PROBE)
    # Another process with honest-01's key, claiming a different id.
    impostor = stack.start_runner("impostor-01", PROBE, wait_ready=False,
                                  extra_config={"key_file": honest.config["key_file"]})
    assert impostor.wait_exit(timeout=scaled(30)) == 1
    assert "enrolled for another runner id" in impostor.stderr_text()
    ids = [r["runner_id"] for r in _runners(stack)]
    assert ids == ["honest-01"], ids


def test_revoked_runner_is_dropped_and_its_job_retried_elsewhere(stack):
    stack.start_broker()
    stack.start_gateway()
    state = stack.root / "probe-state"
    state.mkdir()
    slow = stack.start_runner("doomed-01", PROBE,
                              extra_env={"LYNX_E2E_STATE_DIR": str(state),
                                         "LYNX_E2E_SLEEP_SECS": "300"})
    batch_id = stack.submit(tutorial_batch("revoke-me", 1))["batch_id"]
    stack.wait_for(lambda: stack.get_ok(f"/batches/{batch_id}")["jobs_by_status"].get("Running"),
                   timeout=scaled(30), what="the job to run on doomed-01")
    slow.may_exit = True  # it stops by itself once told
    revoked = lynx("revoke", "doomed-01", env={"LYNX_URL": stack.gateway.url})
    assert revoked.returncode == 0 and "doomed-01: revoked" in revoked.stdout, revoked
    assert slow.wait_exit(timeout=scaled(30)) == 1
    assert "revoked" in slow.stderr_text()
    again = stack.http("DELETE", "/runners/doomed-01/key")
    assert_error(again, 404, "not_found")
    # Its key file is gone: a restart with it is refused at the handshake.
    assert not (stack.broker.data_dir / "keys" / "runners" / "doomed-01.key").exists()
    stack.start_runner("healthy-01", PROBE, extra_env={"LYNX_E2E_STATE_DIR": str(state)})
    final = stack.wait_batch_terminal(batch_id, timeout=scaled(90))
    assert final["batch"]["status"] == "Completed", final
    job_id = stack.list_jobs(batch_id)[0]["job_id"]
    ran_on = [e.get("runner_id") for e in read_probe_log(state, job_id) if e.get("event") == "start"]
    assert ran_on[-1] == "healthy-01", ran_on
    # The broker put the job back at once (not after a heartbeat timeout) and said why.
    assert re.search(r"runner disconnected runner=doomed-01 reason=\"key revoked\" requeued=1",
                     stack.broker.stderr_text()), stack.broker.stderr_text()[-2000:]


def test_enrollment_request_approval_and_join(stack):
    stack.start_broker()
    stack.start_gateway()
    submitter = stack.create_token("workstation-07", "submit")
    key_file = stack.runner_keys("ws-07", enroll=False)
    runner = stack.start_runner(
        "ws-07", PROBE, wait_ready=False, enroll=False,
        extra_config={"key_file": str(key_file), "broker_public_key": None},
        extra_args=("--enroll", stack.gateway.url, "--token", submitter))
    def pending():
        listed = stack.get_ok("/runners/enrollments?status=pending")["enrollments"]
        return listed[0] if listed else None
    request = stack.wait_for(pending, timeout=scaled(20), what="a pending enrollment")
    assert request["runner_id"] == "ws-07" and request["requested_by"] == "workstation-07"
    # A submit token may ask but not approve.
    assert_error(stack.http("POST", f"/runners/enrollments/{request['id']}/approve",
                            headers=_bearer(submitter)), 403, "forbidden")
    assert stack.holds(lambda: not _runners(stack), secs=scaled(2),
                       what="no runner before approval")
    # The admin's side, with the CLI (the harness's admin token is in LYNX_TOKEN).
    listed = lynx("enrollments", "--status", "pending", env={"LYNX_URL": stack.gateway.url})
    assert listed.returncode == 0 and request["id"] in listed.stdout, listed
    approved = lynx("approve", request["id"], env={"LYNX_URL": stack.gateway.url})
    assert approved.returncode == 0, approved.stderr
    assert approved.stdout.strip() == f"enrollment {request['id']}: approved", approved.stdout
    runner.may_exit = False
    stack.wait_for(lambda: [r for r in _runners(stack)
                            if r["runner_id"] == "ws-07" and r["status"] in ("Idle", "Busy")],
                   timeout=scaled(30), what="the approved runner online")
    # The key is now bound to ws-07: the same id with another key is a conflict.
    other = zmq.curve_keypair()[0].decode()
    clash = stack.http("POST", "/runners/enrollments",
                       body={"runner_id": "ws-07", "public_key": other})
    assert_error(clash, 409, "conflict")


def test_subscriber_without_a_key_gets_no_telemetry(stack):
    stack.start_broker()
    stack.start_gateway()
    endpoint = stack.get_ok("/healthz")["telemetry_endpoint"]
    context = zmq.Context.instance()
    plain = context.socket(zmq.SUB)
    plain.setsockopt(zmq.LINGER, 0)
    plain.setsockopt(zmq.SUBSCRIBE, b"")
    plain.connect(endpoint)
    keyed = secure_subscriber(context.socket(zmq.SUB))
    keyed.setsockopt(zmq.LINGER, 0)
    keyed.setsockopt(zmq.SUBSCRIBE, b"")
    keyed.connect(endpoint)
    try:
        deadline = time.monotonic() + scaled(20)
        heard = False
        while time.monotonic() < deadline and not heard:
            probe = stack.submit(tutorial_batch("events", 1))["batch_id"]
            assert stack.http("POST", f"/batches/{probe}/cancel").status == 200
            heard = keyed.poll(200) != 0
        assert heard, "the enrolled subscriber heard nothing"
        assert plain.poll(500) == 0, "a subscriber without a key received events"
    finally:
        plain.close()
        keyed.close()


def test_broker_refuses_a_secret_key_others_can_read(tmp_path):
    stack = Stack(tmp_path, "first")
    try:
        stack.start_broker()
    finally:
        stack.stop()
    secret = tmp_path / "broker-data" / "keys" / "broker.key_secret"
    if not secret.exists():  # the first stack's root is tmp_path itself
        secret = next(tmp_path.rglob("broker.key_secret"))
    assert secret.stat().st_mode & 0o777 == 0o600
    os.chmod(secret, 0o644)
    done = subprocess.run([binary("lynx-broker"), "--data-dir", str(secret.parent.parent),
                           "--runner-endpoint", "tcp://127.0.0.1:0",
                           "--api-endpoint", "tcp://127.0.0.1:0"],
                          capture_output=True, text=True, timeout=scaled(30))
    assert done.returncode != 0
    assert "mode 0644" in done.stderr and "chmod 600" in done.stderr, done.stderr


def test_bad_token_flood_leaves_healthz_answering(stack):
    stack.start_broker()
    stack.start_gateway()
    url = urllib.parse.urlparse(stack.gateway.url)
    total, workers = 10000, 4
    stop = threading.Event()
    latencies = []

    def flood(index):
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=scaled(30))
        for n in range(total // workers):
            token = f"lynx_{index:04x}{n:08x}_" + "f" * 64  # well-formed, unknown: a broker question
            conn.request("GET", "/batches", headers={"Authorization": f"Bearer {token}"})
            reply = conn.getresponse()
            reply.read()
            assert reply.status == 401
        conn.close()

    def probe():
        while not stop.is_set():
            started = time.monotonic()
            assert http_request(stack.gateway.url, "GET", "/healthz").status == 200
            latencies.append(time.monotonic() - started)
            time.sleep(0.02)

    threads = [threading.Thread(target=flood, args=(i,)) for i in range(workers)]
    prober = threading.Thread(target=probe)
    started = time.monotonic()
    prober.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=scaled(300))
    stop.set()
    prober.join(timeout=scaled(30))
    elapsed = time.monotonic() - started
    assert not any(t.is_alive() for t in threads)
    assert len(latencies) >= 10
    p99 = statistics.quantiles(latencies, n=100)[98]
    print(f"\n{total} bad-token requests in {elapsed:.1f} s; /healthz during the flood: "
          f"n={len(latencies)} p50={statistics.median(latencies) * 1000:.1f} ms "
          f"p99={p99 * 1000:.1f} ms max={max(latencies) * 1000:.1f} ms")
    assert stack.http("GET", "/healthz").status == 200


def test_a_revoked_runners_late_result_is_refused(stack):
    """A runner that ignores its revocation and reports its job anyway: the broker answers
    ERROR unauthorized and the job stays retryable (Pending), never Completed by it."""
    from test_artifacts_bad_input import FakeRunner, finished
    stack.start_broker()
    stack.start_gateway()
    stubborn = FakeRunner(stack, "evil-01")  # the protocol spoken by hand, with an enrolled key
    try:
        batch_id = stack.submit(tutorial_batch("late", 1))["batch_id"]
        job = stubborn.expect("ASSIGN")
        stubborn.send("STARTED", {"job_id": job["job_id"], "attempt": job["attempt"]})
        stack.wait_for(lambda: stack.get_ok(f"/jobs/{job['job_id']}")["status"] == "Running",
                       timeout=scaled(20), what="the job Running on evil-01")
        assert stack.http("DELETE", "/runners/evil-01/key").status == 200
        told = stubborn.expect("ERROR")
        assert told["code"] == "unauthorized" and "revoked" in told["message"], told
        stubborn.send("FINISHED", finished(job, []))
        refused = stubborn.expect("ERROR")
        assert refused["code"] == "unauthorized", refused
        assert stack.holds(lambda: stack.get_ok(f"/jobs/{job['job_id']}")["status"] == "Pending",
                           secs=scaled(2), what="the job back in the queue, not Completed")
        assert stack.get_ok(f"/batches/{batch_id}")["batch"]["completed_jobs"] == 0
    finally:
        stubborn.close()

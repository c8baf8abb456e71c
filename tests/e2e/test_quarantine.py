"""Black-hole runners are stopped (issue 9): a runner whose interpreter cannot run the scenario
fails every job it takes; once another runner completes jobs of the same batch, the broker
quarantines it, gives back the retries its failures cost, and the batch completes on the good
runner. The quarantine is visible in GET /runners/{id} and on the PUB socket, and an operator
lifts it with POST /runners/{id}/resume.
"""

import re
import time

import msgpack
import zmq

from lynx_harness import scaled, scenario_path, secure_subscriber, tutorial_batch
from test_cli import lynx

OUTCOME = scenario_path("outcome_scenario.py")


def _subscribe(stack):
    """A SUB on the broker's PUB for runner and batch events, once it is known to receive them
    (probe batches are submitted and cancelled until one's event arrives)."""
    endpoint = stack.get_ok("/healthz")["telemetry_endpoint"]
    sub = secure_subscriber(zmq.Context.instance().socket(zmq.SUB))
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"runner.")
    sub.setsockopt(zmq.SUBSCRIBE, b"event.")
    sub.connect(endpoint)
    deadline = time.monotonic() + scaled(10)
    while time.monotonic() < deadline:
        probe = stack.submit(tutorial_batch("subscription-probe", 1))["batch_id"]
        assert stack.http("POST", f"/batches/{probe}/cancel").status == 200
        if sub.poll(100):
            return sub
    raise AssertionError("the PUB socket sent nothing to a new subscriber")


def _runner_events(sub, runner_id, timeout):
    """Runner events for runner_id until one arrives (batch events are skipped)."""
    deadline = time.monotonic() + scaled(timeout)
    while time.monotonic() < deadline:
        if not sub.poll(100):
            continue
        topic, payload = sub.recv_multipart()
        if topic == f"runner.{runner_id}".encode():
            return msgpack.unpackb(payload)
    raise AssertionError(f"no runner.{runner_id} event within {scaled(timeout):.0f} s")


def test_broken_runner_is_quarantined_and_the_batch_completes(stack):
    stack.start_broker()
    stack.start_gateway()
    sub = _subscribe(stack)
    try:
        stack.start_runner("good-01", OUTCOME, max_concurrent_jobs=2,
                           extra_env={"LYNX_E2E_OUTCOMES": "ok"})
        #  An interpreter that exits 1 whatever it is asked to run.
        stack.start_runner("broken-01", OUTCOME, max_concurrent_jobs=2,
                           extra_config={"python_executable": "/bin/false"})
        body = tutorial_batch("black-hole", 20, max_retries=1)
        batch_id = stack.submit(body)["batch_id"]
        final = stack.wait_batch_terminal(batch_id, timeout=120)
        assert final["batch"]["status"] == "Completed", final
        assert final["jobs_by_status"]["Completed"] == 20, final

        event = _runner_events(sub, "broken-01", 10)
        assert event["type"] == "runner" and event["status"] == "Quarantined", event
        assert "exit status 1" in event["last_error"], event

        broken = stack.get_ok("/runners/broken-01")
        assert broken["status"] == "Quarantined", broken
        quarantine = broken["quarantine"]
        assert quarantine["failed_attempts"] >= 5, quarantine
        assert "other runners completed jobs of the same batches" in quarantine["reason"]
        assert "exit status 1" in quarantine["last_error"], quarantine
        assert stack.get_ok("/runners/good-01")["quarantine"] is None
        #  `lynx runners` shows it too, with the reason, the last error and the way out.
        shown = lynx("runners", url=stack.gateway.url)
        assert shown.returncode == 0, shown.stderr
        assert re.search(r"^broken-01\s+Quarantined\s", shown.stdout, re.M), shown.stdout
        assert "runner broken-01 quarantined since" in shown.stdout, shown.stdout
        assert "last error: scenario failed: exit status 1" in shown.stdout, shown.stdout
        assert "lynx resume broken-01" in shown.stdout, shown.stdout

        #  The failed attempts on the broken runner were not charged: every job that failed
        #  there still completed within its one retry, and the history says so.
        uncharged = 0
        for job in stack.list_jobs(batch_id):
            attempts = stack.get_ok(f"/jobs/{job['id']}")["attempts"]
            assert attempts[-1]["status"] == "Completed", attempts
            assert attempts[-1]["runner_id"] == "good-01", attempts
            for attempt in attempts[:-1]:
                assert attempt["runner_id"] == "broken-01", attempts
                uncharged += attempt["charged"] is False
        assert uncharged >= 5

        #  An operator resumes it.
        status, body = stack.http("POST", "/runners/broken-01/resume")
        assert status == 200 and body["status"] == "Idle" and body["quarantine"] is None, body
        event = _runner_events(sub, "broken-01", 10)
        assert event["status"] == "Idle", event
    finally:
        sub.close()

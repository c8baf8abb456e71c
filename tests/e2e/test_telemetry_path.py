"""Telemetry from a scenario through runner and broker to REST and to a subscriber.

A real scenario streams frames with the real Python client; the runner filters and forwards
them; the broker stores them and republishes them on its PUB socket. What GET
/jobs/{id}/telemetry returns (JSON and CSV) must equal what was sent, after the runner's
filtering, and a subscriber to the batch's topic must see the same frames.
"""
import csv
import io
import json
import subprocess
from pathlib import Path

import msgpack
import zmq

from lynx_harness import parse_ready, scenario_path, tutorial_batch, secure_subscriber

TELEMETRY = scenario_path("telemetry_scenario.py")
FRAMES = 25


def frames():
    return [{"a": float(i), "b": 2.0 * i, "c": -1.0, "flag": i % 2 == 0} for i in range(FRAMES)]


def telemetry_endpoint(stack):
    for line in stack.broker.stdout_lines():
        if line.startswith("READY"):
            return parse_ready(line)["telemetry_endpoint"]
    raise AssertionError("broker READY line not found")


def start(stack, tmp_path):
    stack.start_broker()
    stack.start_gateway()
    state = tmp_path / "state"
    state.mkdir()
    env = {"LYNX_E2E_STATE_DIR": str(state), "LYNX_E2E_FRAMES": json.dumps(frames()),
           "LYNX_E2E_STEP_SECS": "0.01"}
    stack.start_runner("telemetry-01", TELEMETRY, extra_env=env)
    context = zmq.Context.instance()
    subscriber = secure_subscriber(context.socket(zmq.SUB))
    subscriber.setsockopt(zmq.LINGER, 0)
    subscriber.setsockopt(zmq.SUBSCRIBE, b"telemetry.")
    subscriber.setsockopt(zmq.SUBSCRIBE, b"event.")
    subscriber.connect(telemetry_endpoint(stack))
    return subscriber


def receive_all(subscriber, stack, batch_id, job_id, expected):
    """Telemetry frames and job events for the batch, until expected frames and a terminal
    job event arrived."""
    got, statuses = [], []
    poller = zmq.Poller()
    poller.register(subscriber, zmq.POLLIN)

    def done():
        while dict(poller.poll(0)):
            topic, payload = subscriber.recv_multipart()
            if topic.startswith(f"telemetry.{batch_id}.".encode()):
                magic, version, command, body = msgpack.unpackb(payload, raw=False)
                assert (magic, version, command) == ("LYNX", 1, "TELEMETRY")
                assert topic == f"telemetry.{batch_id}.{job_id}".encode()
                assert body["job_id"] == job_id and body["batch_id"] == batch_id
                got.append(body)
            elif topic.startswith(f"event.{batch_id}.{job_id}".encode()):
                statuses.append(msgpack.unpackb(payload, raw=False)["status"])
        return len(got) >= expected and "Completed" in statuses

    stack.wait_for(done, 30, what="the batch's frames and events on the PUB socket")
    return got, statuses


def test_stored_and_republished_telemetry_equals_what_was_sent(stack, tmp_path):
    subscriber = start(stack, tmp_path)
    body = tutorial_batch("telemetry-path", 1)
    body["config"]["telemetry"] = {"variables": ["a", "b", "flag"],
                                   "storage": {"s3_prefix": "e2e/", "compression": "gzip"}}
    batch_id = stack.submit(body)["batch_id"]
    final = stack.wait_batch_terminal(batch_id, timeout=60)
    assert final["batch"]["status"] == "Completed", final
    job_id = stack.list_jobs(batch_id)[0]["id"]

    got, statuses = receive_all(subscriber, stack, batch_id, job_id, FRAMES)
    assert statuses[:2] == ["Claimed", "Running"] and statuses[-1] == "Completed", statuses
    sent = frames()
    assert [frame["values"] for frame in got] == \
        [{"a": f["a"], "b": f["b"], "flag": f["flag"]} for f in sent]  # "c" filtered out

    stored = stack.get_ok(f"/jobs/{job_id}/telemetry")
    assert stored["count"] == FRAMES, stored
    assert stored["values"]["a"] == [f["a"] for f in sent]
    assert stored["values"]["b"] == [f["b"] for f in sent]
    assert "c" not in stored["values"], stored["values"].keys()
    assert stored["timestamp_ns"] == [frame["timestamp_ns"] for frame in got]

    picked = stack.get_ok(f"/jobs/{job_id}/telemetry?variables=b")
    assert list(picked["values"]) == ["b"] and picked["values"]["b"] == stored["values"]["b"]

    response = stack.http("GET", f"/jobs/{job_id}/telemetry?format=csv&variables=a,b")
    assert response.status == 200, response
    assert response.headers["Content-Type"].startswith("text/csv"), response.headers
    rows = list(csv.reader(io.StringIO(response.body)))
    assert rows[0] == ["timestamp_ns", "a", "b"], rows[0]
    assert len(rows) == FRAMES + 1
    assert [float(row[1]) for row in rows[1:]] == [f["a"] for f in sent]

    #  The files live under the data dir by prefix, batch and job, gzip-compressed.
    files = list((Path(stack.broker.data_dir) / "telemetry").rglob(f"{job_id}*"))
    assert files and files[0].name.endswith(".gz"), files
    assert f"e2e/{batch_id}" in str(files[0])

    result = stack.get_ok(f"/jobs/{job_id}/results")
    summary = result["telemetry_data"]
    assert summary["frames_received"] == FRAMES, summary
    assert summary["last_values"]["a"] == sent[-1]["a"], summary
    subscriber.close()


def test_decimated_forwarding_stores_what_was_forwarded(stack, tmp_path):
    subscriber = start(stack, tmp_path)
    body = tutorial_batch("telemetry-decimated", 1)
    body["config"]["telemetry"] = {"sampling_rate_hz": 20.0}  # frames come every ~10 ms
    batch_id = stack.submit(body)["batch_id"]
    final = stack.wait_batch_terminal(batch_id, timeout=60)
    assert final["batch"]["status"] == "Completed", final
    job_id = stack.list_jobs(batch_id)[0]["id"]
    stored = stack.get_ok(f"/jobs/{job_id}/telemetry")
    assert 1 <= stored["count"] < FRAMES, stored["count"]
    #  Forwarded frames are at least 1/20 s apart in the scenario's own timestamps.
    gaps = [b - a for a, b in zip(stored["timestamp_ns"], stored["timestamp_ns"][1:])]
    assert all(gap >= 50_000_000 for gap in gaps), gaps
    got, _ = receive_all(subscriber, stack, batch_id, job_id, stored["count"])
    assert [frame["timestamp_ns"] for frame in got] == stored["timestamp_ns"]
    summary = stack.get_ok(f"/jobs/{job_id}/results")["telemetry_data"]
    assert summary["frames_received"] == FRAMES and summary["frames_forwarded"] == stored["count"]
    subscriber.close()


def test_watch_example_shows_a_batch_live(stack, tmp_path):
    """examples/telemetry_watch.py, the documented way to watch a batch, sees its jobs' frames
    and statuses."""
    stack.start_broker()
    stack.start_gateway()
    state = tmp_path / "state"
    state.mkdir()
    #  Slow frames, so the watcher (started after the submission) sees most of them.
    env = {"LYNX_E2E_STATE_DIR": str(state), "LYNX_E2E_FRAMES": json.dumps(frames()),
           "LYNX_E2E_STEP_SECS": "0.1"}
    stack.start_runner("telemetry-02", TELEMETRY, extra_env=env)
    body = tutorial_batch("telemetry-watch", 1)
    body["config"]["telemetry"] = {"variables": ["a", "b"]}
    batch_id = stack.submit(body)["batch_id"]
    script = Path(__file__).resolve().parents[2] / "examples" / "telemetry_watch.py"
    watcher = subprocess.Popen(
        ["/usr/bin/python3", str(script), telemetry_endpoint(stack), batch_id, "--plain",
         "--interval", "0.2", "--duration", "8"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        final = stack.wait_batch_terminal(batch_id, timeout=60)
        assert final["batch"]["status"] == "Completed", final
        out, err = watcher.communicate(timeout=30)
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()
    assert watcher.returncode == 0, err
    job_id = stack.list_jobs(batch_id)[0]["id"]
    assert job_id[:8] in out, out
    assert "Completed" in out, out
    assert "24" in out, out  # the last frame's value of a


def test_early_termination_is_published_with_its_trigger(stack, tmp_path):
    subscriber = start(stack, tmp_path)
    body = tutorial_batch("telemetry-trigger", 1)
    body["config"]["early_termination"] = {
        "enabled": True, "check_frequency_hz": 50.0,
        "conditions": [{"variable": "a", "condition": "> 10", "description": "a ran away"}]}
    batch_id = stack.submit(body)["batch_id"]
    final = stack.wait_batch_terminal(batch_id, timeout=60)
    assert final["batch"]["status"] == "Failed", final
    job_id = stack.list_jobs(batch_id)[0]["id"]
    poller = zmq.Poller()
    poller.register(subscriber, zmq.POLLIN)
    ended = []

    def failed_event():
        while dict(poller.poll(0)):
            topic, payload = subscriber.recv_multipart()
            if topic == f"event.{batch_id}.{job_id}".encode():
                event = msgpack.unpackb(payload, raw=False)
                if event["status"] == "Failed":
                    ended.append(event)
        return ended

    stack.wait_for(failed_event, 30, what="the job's Failed event")
    trigger = ended[0]["trigger"]
    assert trigger["rule_name"] == "a > 10", trigger
    assert trigger["description"] == "a ran away", trigger
    assert trigger["telemetry_at_trigger"]["a"] > 10, trigger
    assert ended[0]["error_message"] == "early termination: a > 10", ended[0]
    subscriber.close()

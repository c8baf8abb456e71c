"""Lynx across hosts: the broker and gateway on one host, runners on two others and a telemetry
subscriber on a fourth, each host a network namespace on one LAN (lynx_netns), so every byte
between them crosses a real link a test can cut.

Needs root and `ip netns`; elsewhere every test here is skipped with the reason. The lab's
namespaces and veths are removed after each test, pass or fail.
"""

import hashlib
import json
import re
import time
import urllib.request

import pytest

from lynx_harness import (Process, auth_headers, probe_env, read_probe_log, scaled, scenario_path,
                          source_dir, tutorial_batch)
from lynx_netns import Lab

UNAVAILABLE = Lab.unavailable()
pytestmark = pytest.mark.skipif(UNAVAILABLE is not None,
                                reason=f"netns unavailable: {UNAVAILABLE}")

PROBE = scenario_path("probe_scenario.py")
TELEMETRY = scenario_path("telemetry_scenario.py")
SUBSCRIBER = source_dir() / "tests" / "e2e" / "netns_subscriber.py"


@pytest.fixture
def lab():
    with Lab() as made:
        yield made


def starts(events):
    return [e for e in events if e["event"] == "start"]


def start_grid(lab, stack, heartbeat_interval_secs, extra_env, runners=("ws-01", "ws-02"),
               entrypoint=PROBE, max_concurrent_jobs=2):
    """Broker + gateway on host 'server', one runner per name on hosts of their own."""
    server = lab.add_host("server")
    stack.start_broker(host=server)
    stack.start_gateway(host=server)
    started = {}
    for runner_id in runners:
        host = lab.add_host(runner_id)
        started[runner_id] = stack.start_runner(
            runner_id, entrypoint, host=host, max_concurrent_jobs=max_concurrent_jobs,
            heartbeat_interval_secs=heartbeat_interval_secs, extra_env=extra_env)
    return server, started


def fetch(stack, path):
    """GET path from the gateway (inside its namespace) as bytes."""
    headers = auth_headers()

    def get():
        request = urllib.request.Request(stack.gateway.url + path, headers=headers)
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.read()
    return stack.gateway.host.call(get)


def check_artifacts(stack, job, runner):
    """Every file the broker lists for job comes back through the gateway with the SHA-256 of
    the runner's own copy (keep_local_outputs: true), and the broker holds one attempt's set."""
    listing = stack.get_ok(f"/jobs/{job['id']}/artifacts")
    names = {a["name"] for a in listing["artifacts"]}
    assert {"stdout.log", "stderr.log"} <= names, listing
    for artifact in listing["artifacts"]:
        data = fetch(stack, artifact["url"])
        local = (runner.output_root / job["id"] / artifact["name"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == artifact["sha256"] == \
            hashlib.sha256(local).hexdigest(), artifact
    stored = stack.broker.data_dir / "artifacts" / job["batch_id"] / job["id"]
    attempts = sorted(p.name for p in stored.iterdir())
    assert attempts == [f"a{job['attempt']}"], attempts
    return listing


def runner_status(stack, runner_id):
    return stack.get_ok(f"/runners/{runner_id}")["status"]


def test_runners_on_other_hosts_run_the_tutorial_and_stream_telemetry_to_a_fourth(lab, stack):
    state = stack.root / "telemetry"
    state.mkdir()
    frames = [{"a": float(i), "b": 2.0 * i} for i in range(40)]
    env = {"LYNX_E2E_STATE_DIR": str(state), "LYNX_E2E_FRAMES": json.dumps(frames),
           "LYNX_E2E_STEP_SECS": "0.05"}
    server, runners = start_grid(lab, stack, 1, env, entrypoint=TELEMETRY)
    #  Heartbeats and telemetry go to the broker by the address the runner was given for it.
    for runner in runners.values():
        stack.wait_for(lambda r=runner: re.search(r"heartbeats go to tcp://10\.77\.0\.1:\d+",
                                                  r.stderr_text()),
                       10, what=f"{runner.name} to name its events endpoint")
    assert stack.broker.telemetry_endpoint.startswith(f"tcp://{server.address}:"), \
        stack.broker.telemetry_endpoint

    observer = lab.add_host("observer")
    subscriber = stack._spawn(Process, "subscriber",
                              ["/usr/bin/python3", SUBSCRIBER, stack.broker.telemetry_endpoint],
                              host=observer)
    subscriber.wait_ready()

    body = tutorial_batch("across-hosts", 6, max_parallel_jobs=4)
    body["config"]["telemetry"] = {"variables": ["a", "b"],
                                   "storage": {"s3_prefix": "e2e/", "compression": "gzip"}}
    batch_id = stack.submit(body)["batch_id"]
    final = stack.wait_batch_terminal(batch_id, timeout=60)
    assert final["batch"]["status"] == "Completed", final
    jobs = stack.list_jobs(batch_id)
    owner = {job["id"]: job["assigned_runner"] for job in jobs}
    assert set(owner.values()) == {"ws-01", "ws-02"}, f"both hosts should take jobs: {owner}"

    def runners_heard():
        heard = set()
        for line in subscriber.stdout_lines():
            match = re.match(rf"^telemetry\.{batch_id}\.(\S+)$", line)
            if match and match.group(1) in owner:
                heard.add(owner[match.group(1)])
        return heard if heard == {"ws-01", "ws-02"} else None

    stack.wait_for(runners_heard, 20, what="telemetry from both runners on the fourth host")
    for job in jobs:
        check_artifacts(stack, stack.get_ok(f"/jobs/{job['id']}"), runners[owner[job["id"]]])


def test_a_runner_cut_off_past_its_deadline_has_its_jobs_retried_and_rejoins(lab, stack):
    state = stack.root / "probe"
    #  1 s heartbeats, 3 misses: Offline after about 3 s of silence.
    _, runners = start_grid(lab, stack, 1, probe_env(state, sleep_secs=6),
                            runners=("ws-01",))
    batch_id = stack.submit(tutorial_batch("cut-runner", 2, max_parallel_jobs=4))["batch_id"]
    jobs = stack.list_jobs(batch_id)
    stack.wait_for(lambda: all(starts(read_probe_log(state, j["id"])) for j in jobs), 20,
                   what="both jobs to start on ws-01")
    for job in jobs:
        stack.adopt(starts(read_probe_log(state, job["id"]))[0]["pid"])
    ws2 = lab.add_host("ws-02")
    stack.start_runner("ws-02", PROBE, host=ws2, max_concurrent_jobs=2,
                       heartbeat_interval_secs=1, extra_env=probe_env(state, sleep_secs=0.5))

    lab.cut(runners["ws-01"].host)
    stack.wait_for(lambda: runner_status(stack, "ws-01") == "Offline", 20,
                   what="ws-01 to be Offline while its cable is out")
    final = stack.wait_batch_terminal(batch_id, timeout=60)
    assert final["batch"]["status"] == "Completed", final
    lab.mend(runners["ws-01"].host)
    stack.wait_for(lambda: runner_status(stack, "ws-01") != "Offline", 30,
                   what="ws-01 to rejoin once its cable is back")

    for job in stack.list_jobs(batch_id):
        job = stack.get_ok(f"/jobs/{job['id']}")
        assert job["status"] == "Completed" and job["assigned_runner"] == "ws-02", job
        assert job["attempt"] == 2, f"one lost attempt, one retry: {job}"
        events = read_probe_log(state, job["id"])
        assert [e["runner_id"] for e in starts(events)] == ["ws-01", "ws-02"], events
        result = stack.get_ok(f"/jobs/{job['id']}/results")
        assert result["metadata"]["runner_id"] == "ws-02", result
        #  One set of files, the retry's, however late ws-01's attempt reported.
        listing = check_artifacts(stack, job, stack.runners[-1])
        assert {a["attempt"] for a in listing["artifacts"]} == {2}, listing
    #  The cut-off attempts ran to their end on ws-01, or were killed when it rejoined: either
    #  way their FINISHED reaches the broker late, and is refused as stale and logged.
    for job in jobs:
        stale = f"stale FINISHED ignored job={job['id']} attempt=1 runner=ws-01"
        stack.wait_for(lambda: stale in stack.broker.stderr_text(), 20,
                       what=f"the broker to refuse ws-01's late result: {stale}")
    body = stack.get_ok(f"/batches/{batch_id}")
    assert body["batch"]["completed_jobs"] == 2, body
    assert body["jobs_by_status"]["Completed"] == 2, body
    stack.holds(lambda: stack.get_ok(f"/batches/{batch_id}")["batch"]["completed_jobs"] == 2,
                scaled(3), what="the batch's count to stay at two Completed")
    for job in jobs:  # the late results brought no second set of files
        check_artifacts(stack, stack.get_ok(f"/jobs/{job['id']}"), stack.runners[-1])


def test_a_broker_cut_off_briefly_loses_and_doubles_nothing(lab, stack):
    state = stack.root / "probe"
    #  2 s heartbeats, 3 misses: a 1.5 s outage is well under the 6 s deadline.
    server, runners = start_grid(lab, stack, 2, probe_env(state, sleep_secs=3))
    batch_id = stack.submit(tutorial_batch("cut-broker", 4, max_parallel_jobs=4))["batch_id"]
    jobs = stack.list_jobs(batch_id)
    stack.wait_for(lambda: sum(bool(starts(read_probe_log(state, j["id"]))) for j in jobs) >= 2,
                   20, what="jobs to start")
    lab.cut(server)
    time.sleep(1.5)  # the outage itself, not a wait for a condition
    lab.mend(server)
    final = stack.wait_batch_terminal(batch_id, timeout=60)
    assert final["batch"]["status"] == "Completed", final
    for job in stack.list_jobs(batch_id):
        job = stack.get_ok(f"/jobs/{job['id']}")
        assert (job["status"], job["attempt"], job["retries"]) == ("Completed", 1, 0), job
        assert len(starts(read_probe_log(state, job["id"]))) == 1, job
        check_artifacts(stack, job, runners[job["assigned_runner"]])
    for runner_id in runners:
        view = stack.get_ok(f"/runners/{runner_id}")
        assert view["status"] != "Offline", view
    assert "runner lost" not in stack.broker.stderr_text()

"""The runner pool of runners.txt on real processes: what GET /runners/{id} shows, drain and
resume, unique runner ids, capability routing and fair sharing between batches."""

import json
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from lynx_harness import (assert_error, parse_timestamp, probe_env, read_probe_log,
                          scenario_path, tutorial_batch)

PROBE = scenario_path("probe_scenario.py")
TERMINAL = ("Completed", "Failed", "Cancelled")

#  The tutorial's runner and the capabilities it expects from GET /runners/basilisk-runner-01.
TUTORIAL_RUNNER_CONFIG = {"cpu_cores": 4, "memory_gb": 8.0, "gpu_available": False}
TUTORIAL_CAPABILITIES = {
    "max_concurrent_jobs": 1,
    "supported_simulation_types": ["basilisk", "orbit", "aerospace"],
    "gpu_available": False,
    "memory_gb": 8.0,
    "cpu_cores": 4,
}
RUNNER_KEYS = {"runner_id", "name", "status", "capabilities", "engines", "active_jobs",
               "last_heartbeat", "jobs_completed", "jobs_failed"}


def active_job_ids(view):
    """active_jobs: the ids of the jobs the runner has in flight."""
    active = view["active_jobs"]
    assert isinstance(active, list), f"active_jobs is not a list of job ids: {view}"
    return active


def runner_view(stack, runner_id):
    return stack.get_ok(f"/runners/{runner_id}")


def wait_runner_status(stack, runner_id, *statuses, timeout=20):
    def in_status():
        view = runner_view(stack, runner_id)
        return view if view["status"] in statuses else None

    return stack.wait_for(in_status, timeout,
                          what=f"runner {runner_id} to be {'/'.join(statuses)}")


def assigned_runners(stack, batch_id):
    return {job["assigned_runner"] for job in stack.list_jobs(batch_id)}


def test_runner_view_shows_the_tutorial_capabilities_and_idle_busy(stack):
    state = stack.root / "probe"
    stack.start_broker()
    stack.start_gateway()
    stack.start_runner("basilisk-runner-01", PROBE, name="Basilisk Runner 01",
                       extra_config=TUTORIAL_RUNNER_CONFIG,
                       extra_env=probe_env(state, sleep_secs=2))

    view = wait_runner_status(stack, "basilisk-runner-01", "Idle")
    assert RUNNER_KEYS <= view.keys(), f"runner view lacks {RUNNER_KEYS - view.keys()}: {view}"
    assert view["runner_id"] == "basilisk-runner-01" and view["name"] == "Basilisk Runner 01"
    assert view["capabilities"] == TUTORIAL_CAPABILITIES, view
    caps = view["capabilities"]
    assert isinstance(caps["memory_gb"], float) and isinstance(caps["cpu_cores"], int), caps
    assert caps["gpu_available"] is False and caps["max_concurrent_jobs"] == 1, caps
    assert view["engines"] == ["basilisk"], view
    assert active_job_ids(view) == [], view
    assert (view["jobs_completed"], view["jobs_failed"]) == (0, 0), view
    heartbeat = parse_timestamp(view["last_heartbeat"])
    assert abs((datetime.now(timezone.utc) - heartbeat).total_seconds()) < 30, view

    listing = stack.get_ok("/runners")
    assert [r["runner_id"] for r in listing["runners"]] == ["basilisk-runner-01"], listing
    assert listing["runners"][0]["capabilities"] == TUTORIAL_CAPABILITIES, listing
    assert_error(stack.http("GET", "/runners/no-such-runner"), 404, "not_found")

    batch_id = stack.submit(tutorial_batch("busy", 1))["batch_id"]
    [job] = stack.list_jobs(batch_id)
    busy = wait_runner_status(stack, "basilisk-runner-01", "Busy")
    assert active_job_ids(busy) == [job["id"]], busy
    final = stack.wait_batch_terminal(batch_id, timeout=30)
    assert final["batch"]["status"] == "Completed", final
    idle = wait_runner_status(stack, "basilisk-runner-01", "Idle")
    assert active_job_ids(idle) == [], idle
    assert (idle["jobs_completed"], idle["jobs_failed"]) == (1, 0), idle


def test_drained_runner_finishes_its_job_takes_no_new_one_until_resumed(stack):
    state = stack.root / "probe"
    stack.start_broker()
    stack.start_gateway()
    batch_id = stack.submit(tutorial_batch("drain", 3))["batch_id"]
    waiting = stack.get_ok(f"/batches/{batch_id}")
    assert isinstance(waiting["waiting_reason"], str) and waiting["waiting_reason"], \
        f"no waiting_reason with no runner online: {waiting}"

    stack.start_runner("drain-01", PROBE, extra_env=probe_env(state, sleep_secs=3))
    jobs = stack.list_jobs(batch_id)
    first = stack.wait_for(
        lambda: [j for j in jobs if read_probe_log(state, j["id"])], 30,
        what="the first job to start")[0]

    status, body = stack.http("POST", "/runners/drain-01/drain")
    assert status == 200, body
    assert body["status"] == "Maintenance", body
    view = runner_view(stack, "drain-01")
    assert view["status"] == "Maintenance" and active_job_ids(view) == [first["id"]], view

    def first_finished():
        job = stack.get_ok(f"/jobs/{first['id']}")
        return job if job["status"] in TERMINAL else None

    finished = stack.wait_for(first_finished, 30, what="the running job to finish")
    assert finished["status"] == "Completed", f"drain interrupted the running job: {finished}"

    def drained_and_waiting():
        batch = stack.get_ok(f"/batches/{batch_id}")
        by_status = batch["jobs_by_status"]
        view = runner_view(stack, "drain-01")
        assert (by_status["Pending"], by_status["Claimed"], by_status["Running"]) == (2, 0, 0), \
            f"a drained runner got work: {batch} {view}"
        assert view["status"] == "Maintenance" and active_job_ids(view) == [], view
        assert isinstance(batch["waiting_reason"], str) and batch["waiting_reason"], batch
        return batch["waiting_reason"]

    reason = stack.holds(drained_and_waiting, 2.0, what="a drained runner getting no new job")
    assert "drain" in reason.lower() or "maintenance" in reason.lower(), reason

    resumed_at = time.time()
    status, body = stack.http("POST", "/runners/drain-01/resume")
    assert status == 200, body
    assert body["status"] in ("Idle", "Busy"), body
    final = stack.wait_batch_terminal(batch_id, timeout=30)
    assert final["batch"]["status"] == "Completed", final
    assert final["waiting_reason"] is None, final
    assert assigned_runners(stack, batch_id) == {"drain-01"}
    for job in jobs:
        if job["id"] != first["id"]:
            [start] = [e for e in read_probe_log(state, job["id"]) if e["event"] == "start"]
            assert start["time"] >= resumed_at, f"job {job['id']} started while drained"
    assert runner_view(stack, "drain-01")["jobs_completed"] == 3


def test_a_second_runner_with_a_live_runners_id_is_refused(stack):
    stack.start_broker()
    stack.start_gateway()
    first = stack.start_runner("dup-01", PROBE)
    wait_runner_status(stack, "dup-01", "Idle")

    second = stack.start_runner("dup-01", PROBE, wait_ready=False)
    status = second.wait_exit(timeout=30)
    assert status != 0, f"the duplicate runner exited 0\n{second.describe()}"
    # The refusal says the id is taken, and nothing about the runner that holds it: not its
    # host, not its pid (the broker's own log has them).
    lines = [line for line in second.stderr_text().splitlines() if "already in use" in line]
    assert lines, second.describe()
    refusal = lines[0]
    assert "runner id 'dup-01' is already in use by a connected runner;" in refusal, refusal
    assert str(first.pid) not in refusal and "host" not in refusal, refusal
    assert f"holder_pid={first.pid}" in stack.broker.stderr_text(), stack.broker.describe()
    assert not any(line.startswith("READY") for line in second.stdout_lines()), \
        second.describe()

    assert first.alive(), first.describe()
    assert wait_runner_status(stack, "dup-01", "Idle")["runner_id"] == "dup-01"
    batch_id = stack.submit(tutorial_batch("after-duplicate", 2))["batch_id"]
    final = stack.wait_batch_terminal(batch_id, timeout=30)
    assert final["batch"]["status"] == "Completed", final
    assert assigned_runners(stack, batch_id) == {"dup-01"}


@pytest.mark.parametrize("how", ["sigkill", "sigterm"])
def test_a_restarted_runner_takes_over_its_id(stack, how):
    stack.start_broker()
    stack.start_gateway()
    old = stack.start_runner("phoenix-01", PROBE)
    wait_runner_status(stack, "phoenix-01", "Idle")
    if how == "sigkill":
        stack.kill9(old)
    else:
        old.may_exit = True
        assert old.stop() is None and old.popen.returncode == 0, old.describe()

    new = stack.start_runner("phoenix-01", PROBE)
    assert new.name != old.name
    view = wait_runner_status(stack, "phoenix-01", "Idle")
    assert view["runner_id"] == "phoenix-01", view
    batch_id = stack.submit(tutorial_batch("after-restart", 2))["batch_id"]
    final = stack.wait_batch_terminal(batch_id, timeout=30)
    assert final["batch"]["status"] == "Completed", final
    assert assigned_runners(stack, batch_id) == {"phoenix-01"}
    assert new.alive(), new.describe()


def start_thermal_and_plain_runners(stack, state):
    env = probe_env(state, sleep_secs=0.3)
    stack.start_runner("thermal-gpu", PROBE, max_concurrent_jobs=2,
                       capabilities=("basilisk", "orbit", "thermal"),
                       extra_config={"gpu_available": True}, extra_env=env)
    stack.start_runner("plain-cpu", PROBE, max_concurrent_jobs=2,
                       capabilities=("basilisk", "orbit"),
                       extra_config={"gpu_available": False}, extra_env=env)


def check_ran_only_on(stack, state, batch_id, runner_id):
    final = stack.wait_batch_terminal(batch_id, timeout=60)
    assert final["batch"]["status"] == "Completed", final
    assert assigned_runners(stack, batch_id) == {runner_id}
    for job in stack.list_jobs(batch_id):
        runs = [e["runner_id"] for e in read_probe_log(state, job["id"]) if e["event"] == "start"]
        assert runs == [runner_id], (job, runs)


def test_jobs_go_only_to_runners_with_the_required_capabilities(stack):
    state = stack.root / "probe"
    stack.start_broker()
    stack.start_gateway()
    start_thermal_and_plain_runners(stack, state)
    types = runner_view(stack, "thermal-gpu")["capabilities"]["supported_simulation_types"]
    assert set(types) == {"basilisk", "orbit", "thermal"}, types

    by_tag = stack.submit(tutorial_batch("needs-thermal", 6,
                                         required_capabilities=["orbit", "thermal"]))
    nobody = stack.submit(tutorial_batch("needs-px4", 2, required_capabilities=["px4_sitl"]))
    anyone = stack.submit(tutorial_batch("needs-orbit", 4, required_capabilities=["orbit"]))
    check_ran_only_on(stack, state, by_tag["batch_id"], "thermal-gpu")
    final = stack.wait_batch_terminal(anyone["batch_id"], timeout=60)
    assert final["batch"]["status"] == "Completed", final

    stack.holds(lambda: unservable(stack, nobody["batch_id"], 2), 1.0,
                what="a batch no runner can serve to stay Pending")


def unservable(stack, batch_id, total):
    """The batch's view while all its jobs wait with a waiting_reason, else None."""
    body = stack.get_ok(f"/batches/{batch_id}")
    return body if body["jobs_by_status"]["Pending"] == total and body["waiting_reason"] else None


def test_waiting_reason_names_what_no_runner_offers(stack):
    stack.start_broker()
    stack.start_gateway()
    stack.start_runner("plain-cpu", PROBE, capabilities=("basilisk", "orbit"))
    px4 = stack.submit(tutorial_batch("needs-px4", 2, required_capabilities=["orbit", "px4_sitl"]))
    gpu = stack.submit(tutorial_batch("needs-gpu", 2, gpu=True))
    body = stack.holds(lambda: unservable(stack, px4["batch_id"], 2), 1.0,
                       what="a batch needing px4_sitl to wait")
    assert "px4_sitl" in body["waiting_reason"], \
        f"waiting_reason does not say which capability is missing: {body['waiting_reason']!r}"
    body = stack.wait_for(lambda: unservable(stack, gpu["batch_id"], 2), 10,
                          what="a batch needing a GPU to wait")
    assert "gpu" in body["waiting_reason"].lower(), body["waiting_reason"]


def test_gpu_jobs_go_only_to_runners_with_a_gpu(stack):
    state = stack.root / "probe"
    stack.start_broker()
    stack.start_gateway()
    start_thermal_and_plain_runners(stack, state)
    assert runner_view(stack, "thermal-gpu")["capabilities"]["gpu_available"] is True
    by_gpu = stack.submit(tutorial_batch("needs-gpu", 6, gpu=True))
    check_ran_only_on(stack, state, by_gpu["batch_id"], "thermal-gpu")


def test_command_engine_runs_any_program_and_batches_go_to_runners_with_their_engine(stack):
    stack.start_broker()
    stack.start_gateway()
    script = 'echo "$LYNX_JOB_ID" > "$TETRYX_OUTPUT_DIR/job.txt"; cat "$TETRYX_RUN_CONFIG" ' \
             '> "$TETRYX_OUTPUT_DIR/run_config.json"'
    stack.start_runner("cmd-01", PROBE, max_concurrent_jobs=2, engines=("command",),
                       capabilities=(), extra_config={"command_executable": "/bin/sh",
                                                      "command_args": ["-c", script]})
    stack.start_runner("py-01", PROBE, max_concurrent_jobs=2)
    assert runner_view(stack, "cmd-01")["engines"] == ["command"]
    types = runner_view(stack, "cmd-01")["capabilities"]["supported_simulation_types"]
    assert "command" in types and "basilisk" not in types, types

    command_batch = stack.submit(tutorial_batch("shell", 4, engine="command"))["batch_id"]
    python_batch = stack.submit(tutorial_batch("python", 4))["batch_id"]
    for batch_id, runner_id in ((command_batch, "cmd-01"), (python_batch, "py-01")):
        final = stack.wait_batch_terminal(batch_id, timeout=60)
        assert final["batch"]["status"] == "Completed", final
        assert assigned_runners(stack, batch_id) == {runner_id}
    for job in stack.list_jobs(command_batch):
        result = stack.get_ok(f"/jobs/{job['id']}/results")
        assert result["success"] is True and result["metadata"]["engine"] == "command", result
        files = {Path(f).name: Path(f) for f in result["output_files"]}
        assert files["job.txt"].read_text().strip() == job["id"], result
        assert json.loads(files["run_config.json"].read_text()) == job["run_config"]


def test_priority_weights_the_share_of_slots(stack):
    """compute.priority is a weight: with one slot, a batch of priority 4 gets about four jobs
    for every one of a batch of priority 1 submitted at the same time, and the low one is not
    starved (fair share, not strict priority)."""
    stack.start_broker()
    stack.start_gateway()
    low = stack.submit(tutorial_batch("low", 400, priority=1))["batch_id"]
    high = stack.submit(tutorial_batch("high", 100, priority=4))["batch_id"]
    stack.start_runner("one-slot", PROBE)
    stack.wait_batch_terminal(high, timeout=120)
    low_done = stack.get_ok(f"/batches/{low}")["jobs_by_status"]["Completed"]
    #  Equal shares would give about 100; weights 1:4 about 25.
    assert 5 <= low_done <= 60, f"the priority-1 batch completed {low_done} jobs while the " \
                                f"priority-4 batch completed 100"
    status, body = stack.http("POST", f"/batches/{low}/cancel")
    assert status == 200, body


def test_a_small_batch_is_not_starved_by_a_big_one(stack):
    stack.start_broker()
    stack.start_gateway()
    for n in (1, 2):
        stack.start_runner(f"fair-{n:02}", PROBE, max_concurrent_jobs=4)

    big = stack.submit(tutorial_batch("big", 2000))
    assert big["total_jobs"] == 2000, big
    small = stack.submit(tutorial_batch("small", 5))
    final = stack.wait_batch_terminal(small["batch_id"], timeout=60)
    assert final["batch"]["status"] == "Completed", final
    big_now = stack.get_ok(f"/batches/{big['batch_id']}")
    assert big_now["jobs_by_status"]["Pending"] > 1000, \
        f"the 5-job batch finished only after the 2,000-job one got this far: {big_now}"
    status, body = stack.http("POST", f"/batches/{big['batch_id']}/cancel")
    assert status == 200, body
    stack.wait_batch_terminal(big["batch_id"], timeout=60)

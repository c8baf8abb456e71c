"""Early termination (lynx-docs/early-termination.txt) on real processes: broker, gateway and a
runner whose scenarios stream telemetry with the real Python client.

The batch's early_termination block reaches the runner in ASSIGN; the runner evaluates it on
the scenario's telemetry, kills the scenario when a rule fires and reports the attempt Failed
and not retryable, with the trigger event in the result's telemetry_data. Scenarios record the
wall-clock time of every frame they send (telemetry_scenario.py), so the kill is timed against
the crossing frame.
"""

import json
from pathlib import Path

from lynx_harness import parse_timestamp, pid_gone, scaled, scenario_path, tutorial_batch

TELEMETRY = scenario_path("telemetry_scenario.py")
GARBAGE = scenario_path("garbage_telemetry_scenario.py")
SUMMARY = scenario_path("summary_scenario.py")

CHECK_FREQUENCY_HZ = 10.0
#  The kill must follow the crossing frame within one check interval plus this.
KILL_SLACK_SECS = 0.1

ORBIT_DECAYED = {
    "name": "orbit_decayed",
    "description": "Orbit has decayed below a safe altitude",
    "variable": "orbit.altitude_km",
    "operator": "lt",
    "threshold": 150.0,
    "units": "km",
}

#  altitude_m < 30 AND (spin > 15 OR tracking < 0.3), from the docs' nested example.
LANDING_ABORT = {
    "name": "landing_abort",
    "description": "Abort if low altitude and either unstable or poorly localized",
    "all": [
        {"variable": "altitude_m", "operator": "lt", "threshold": 30.0, "units": "m"},
        {"any": [
            {"variable": "body_spin_rate_deg_s", "operator": "gt", "threshold": 15.0,
             "units": "deg/s"},
            {"variable": "vio_tracking_quality", "operator": "lt", "threshold": 0.3,
             "units": "dimensionless"},
        ]},
    ],
}


def falling_frames():
    """orbit.altitude_km 200, 190, ... 100: index 6 (140 km) is the first below 150."""
    return [{"orbit.altitude_km": 200.0 - 10.0 * step, "orbit.step": step}
            for step in range(11)]


def batch(name, runs, rules, enabled=True, **compute):
    body = tutorial_batch(name, runs, **compute)
    body["config"]["early_termination"] = {
        "enabled": enabled, "check_frequency_hz": CHECK_FREQUENCY_HZ, "conditions": rules}
    body["config"]["telemetry"] = {"sampling_rate_hz": 100.0,
                                   "variables": ["orbit.altitude_km"]}
    return body


def scenario_env(state_dir, frames, stop_at=None, step_secs=0.05):
    Path(state_dir).mkdir(parents=True, exist_ok=True)
    env = {"LYNX_E2E_STATE_DIR": str(state_dir), "LYNX_E2E_FRAMES": json.dumps(frames),
           "LYNX_E2E_STEP_SECS": str(step_secs)}
    if stop_at is not None:
        env["LYNX_E2E_STOP_AT"] = str(stop_at)
    return env


def start_stack(stack, entrypoint, env=None, max_concurrent_jobs=1):
    stack.start_broker()
    stack.start_gateway()
    return stack.start_runner("telemetry-01", entrypoint, max_concurrent_jobs=max_concurrent_jobs,
                              extra_env=env)


def only_job(stack, batch_id):
    jobs = stack.list_jobs(batch_id)
    assert len(jobs) == 1, jobs
    return jobs[0]


def scenario_record(stack, state_dir, job_id, stopped=True):
    """What telemetry_scenario.py wrote for the job (waiting for it when the scenario stops)."""
    path = Path(state_dir) / f"{job_id}.json"
    record = stack.wait_for(lambda: path.exists() and json.loads(path.read_text()), 30,
                            what=f"the scenario's record {path}")
    stack.adopt(record["pid"])  # should the runner fail to kill it, do not leak it
    assert (record["stopped_at"] is not None) == stopped, record
    return record


def assert_killed_for_good(stack, state_dir, batch_id, rule_name, crossing_index):
    """The job was killed by rule_name on frame crossing_index within one check interval and
    ended Failed, not retried; returns the job's result."""
    job = only_job(stack, batch_id)
    record = scenario_record(stack, state_dir, job["id"])
    assert record["stopped_at"] == crossing_index, record
    crossing = record["frames"][crossing_index]
    stack.wait_for(lambda: pid_gone(record["pid"]), 30, what="the scenario to be killed")

    final = stack.wait_batch_terminal(batch_id, timeout=60)
    assert final["batch"]["status"] == "Failed", final
    job = stack.get_ok(f"/jobs/{job['id']}")
    assert job["status"] == "Failed", job
    assert job["error_message"] == f"early termination: {rule_name}", job
    assert (job["retries"], job["attempt"]) == (0, 1), f"an early termination is final: {job}"

    result = stack.get_ok(f"/jobs/{job['id']}/results")
    assert result["success"] is False, result
    assert result["error_message"] == f"early termination: {rule_name}", result
    telemetry = result["telemetry_data"]
    trigger = telemetry["trigger"]
    assert trigger["rule_name"] == rule_name, trigger
    assert trigger["telemetry_at_trigger"] == crossing["values"], (trigger, crossing)
    assert trigger["seq"] == crossing["seq"], (trigger, crossing)
    assert trigger["elapsed_seconds"] > 0, trigger
    assert telemetry["frames_received"] == crossing["seq"] + 1, telemetry
    assert telemetry["frames_invalid"] == 0 and telemetry["frames_dropped_by_client"] == 0, \
        telemetry

    #  Killed within one check interval (plus slack) of the crossing frame: when the rule
    #  fired (the runner sends SIGKILL then), and when the broker recorded the end.
    limit = 1.0 / CHECK_FREQUENCY_HZ + KILL_SLACK_SECS
    fired_after = parse_timestamp(trigger["triggered_at"]).timestamp() - crossing["wall_time"]
    ended_after = parse_timestamp(job["completed_at"]).timestamp() - crossing["wall_time"]
    assert -0.005 <= fired_after <= limit, \
        f"rule fired {fired_after:.3f} s after the crossing frame (limit {limit:.3f} s)"
    assert ended_after <= limit, \
        f"job ended {ended_after:.3f} s after the crossing frame (limit {limit:.3f} s): {job}"
    return result


def test_rule_kills_within_a_check_interval_and_fails_for_good(stack):
    state = stack.root / "scenario"
    #  Frames 30 ms apart against checks 100 ms apart: the crossing frame (at 180 ms) comes
    #  60 ms after the last check on arrival (frame 4), so the check timer must catch it.
    start_stack(stack, TELEMETRY, scenario_env(state, falling_frames(), stop_at=6,
                                                step_secs=0.03))
    body = batch("decay", 1, [ORBIT_DECAYED], max_retries=3)
    batch_id = stack.submit(body)["batch_id"]
    result = assert_killed_for_good(stack, state, batch_id, "orbit_decayed", 6)
    trigger = result["telemetry_data"]["trigger"]
    assert trigger["description"] == ORBIT_DECAYED["description"], trigger
    assert trigger["telemetry_at_trigger"] == {"orbit.altitude_km": 140.0, "orbit.step": 6}
    assert result["telemetry_data"]["last_values"]["orbit.altitude_km"] == 140.0, result

    #  The scenario imported the client with no install step, from the source tree.
    record = json.loads((state / f"{result['job_id']}.json").read_text())
    assert record["url"].startswith("tcp://127.0.0.1:"), record
    assert record["pythonpath"].split(":")[0].endswith("clients/python"), record


def test_nested_all_any_rule(stack):
    state = stack.root / "scenario"
    frames = [
        {"altitude_m": 100.0, "body_spin_rate_deg_s": 20.0, "vio_tracking_quality": 0.9},
        {"altitude_m": 20.0, "body_spin_rate_deg_s": 5.0, "vio_tracking_quality": 0.9},
        {"altitude_m": 20.0, "body_spin_rate_deg_s": 5.0, "vio_tracking_quality": 0.1},
        {"altitude_m": 10.0, "body_spin_rate_deg_s": 5.0, "vio_tracking_quality": 0.1},
    ]
    start_stack(stack, TELEMETRY, scenario_env(state, frames, stop_at=2, step_secs=0.15))
    #  A first rule that never fires does not hide the second.
    never = dict(ORBIT_DECAYED, name="never")
    batch_id = stack.submit(batch("landing", 1, [never, LANDING_ABORT]))["batch_id"]
    assert_killed_for_good(stack, state, batch_id, "landing_abort", 2)


def test_disabled_rules_never_fire(stack):
    state = stack.root / "scenario"
    frames = falling_frames()
    start_stack(stack, TELEMETRY, scenario_env(state, frames, step_secs=0.02))
    batch_id = stack.submit(batch("staged", 1, [ORBIT_DECAYED], enabled=False))["batch_id"]
    final = stack.wait_batch_terminal(batch_id, timeout=60)
    assert final["batch"]["status"] == "Completed", final
    job = only_job(stack, batch_id)
    scenario_record(stack, state, job["id"], stopped=False)
    telemetry = stack.get_ok(f"/jobs/{job['id']}/results")["telemetry_data"]
    assert telemetry["trigger"] is None, telemetry
    assert telemetry["frames_received"] == len(frames), telemetry
    assert telemetry["last_values"]["orbit.altitude_km"] == 100.0, telemetry


def test_scenario_without_the_client_completes(stack):
    start_stack(stack, SUMMARY)
    batch_id = stack.submit(batch("no-telemetry", 1, [ORBIT_DECAYED]))["batch_id"]
    final = stack.wait_batch_terminal(batch_id, timeout=60)
    assert final["batch"]["status"] == "Completed", final
    result = stack.get_ok(f"/jobs/{only_job(stack, batch_id)['id']}/results")
    telemetry = result["telemetry_data"]
    assert (telemetry["frames_received"], telemetry["trigger"]) == (0, None), telemetry
    summary = next(f for f in result["output_files"] if f.endswith("summary.json"))
    env = json.loads(Path(summary).read_text())["env"]
    assert env["TETRYX_TELEMETRY_URL"].startswith("tcp://127.0.0.1:"), env


def test_garbage_flood_leaves_the_runner_healthy(stack):
    junk = 20000
    runner = start_stack(stack, GARBAGE, {"LYNX_E2E_GARBAGE_FRAMES": str(junk)})
    #  Two jobs one after the other on the one runner: the second runs after the first flood.
    batch_id = stack.submit(batch("garbage", 2, [ORBIT_DECAYED]))["batch_id"]
    final = stack.wait_batch_terminal(batch_id, timeout=scaled(120))
    assert final["batch"]["status"] == "Completed", final
    jobs = stack.list_jobs(batch_id)
    assert len(jobs) == 2 and all(job["status"] == "Completed" for job in jobs), jobs
    for job in jobs:
        assert job["assigned_runner"] == runner.runner_id, job
        telemetry = stack.get_ok(f"/jobs/{job['id']}/results")["telemetry_data"]
        assert telemetry["frames_invalid"] >= junk, telemetry
        assert telemetry["frames_received"] == 10, telemetry
        assert telemetry["last_values"] == {"step": 9, "x": 9.0}, telemetry
        assert telemetry["trigger"] is None, telemetry
    view = stack.get_ok(f"/runners/{runner.runner_id}")
    assert view["status"] != "Offline", view
    assert runner.alive(), runner.describe()

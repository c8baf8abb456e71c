"""The basic orbit tutorial (lynx-docs/tutorial-basic-orbit.txt) end to end with the example in
examples/basic-orbit/: the real broker, gateway and runners, the Python scenario through the
basilisk engine, the decaying variant killed by the watchdog, and the C scenario through the
command engine.
"""

import json
import math
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from lynx_harness import bin_dir, scaled, source_dir

EXAMPLE = source_dir() / "examples" / "basic-orbit"
MU = 3.986004418e14
STEP_SECS = 10.0
ORBIT_VARIABLES = {
    "orbit.radius_km", "orbit.speed_m_s", "orbit.semi_major_axis_km", "orbit.eccentricity",
    "orbit.inclination_deg", "orbit.true_anomaly_deg",
}
DECAY_RULE = "early termination: orbit.radius_km < 6371"
#  decaying_orbit.json's seed 6 samples these six orbits: runs 0 and 2 have their perigee
#  below 6371 km (6255 and 6335 km), the others stay above (6629 km and up).
DECAYED_RUN_IDS = {0, 2}


def example_body(name, runs=None):
    body = json.loads((EXAMPLE / name).read_text())
    if runs is not None:
        body["runs_override"] = runs
    return body


def start_orbit_stack(stack, max_concurrent_jobs=3, **runner):
    stack.start_broker()
    stack.start_gateway()
    config = {"working_directory": str(EXAMPLE),
              "basilisk_entrypoint": "scenario_basic_orbit_lynx.py"}
    config.update(runner.pop("extra_config", {}))
    return stack.start_runner("orbit-01", "scenario_basic_orbit_lynx.py",
                              max_concurrent_jobs=max_concurrent_jobs, extra_config=config,
                              **runner)


def expected_samples(params):
    """Frames/rows the scenarios produce: t = 0, 10, ... up to ceil(duration / 10 s) steps."""
    period = 2.0 * math.pi * math.sqrt(params["semi_major_axis_m"] ** 3 / MU)
    return math.ceil(params["duration_orbits"] * period / STEP_SECS - 1e-9) + 1


def output_file(result, name):
    matches = [f for f in result["output_files"] if Path(f).name == name]
    assert len(matches) == 1, f"{name} not among {result['output_files']}"
    return Path(matches[0])


def assert_png(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path}: not a PNG"
    assert data[12:16] == b"IHDR", f"{path}: no IHDR chunk first"
    width, height = struct.unpack(">II", data[16:24])
    assert width > 0 and height > 0, (width, height)


def wait_telemetry(stack, job_id, count):
    """GET /jobs/{id}/telemetry once it holds count frames (frames may trail the job's end)."""
    def ready():
        body = stack.get_ok(f"/jobs/{job_id}/telemetry")
        return body if body["count"] >= count else None
    return stack.wait_for(ready, 20, what=f"{count} telemetry frames of job {job_id}")


def test_tutorial_batch_completes_with_artifacts_and_telemetry(stack):
    start_orbit_stack(stack)
    body = example_body("basic_orbit_tutorial.json", runs=3)
    batch_id = stack.submit(body)["batch_id"]
    final = stack.wait_batch_terminal(batch_id, timeout=60)
    assert final["batch"]["status"] == "Completed", final
    jobs = stack.list_jobs(batch_id)
    assert len(jobs) == 3 and all(j["status"] == "Completed" for j in jobs), jobs

    for job in jobs:
        params = job["run_config"]["parameters"]
        assert set(params) == {"semi_major_axis_m", "eccentricity", "inclination_deg",
                               "raan_deg", "arg_perigee_deg", "true_anomaly_deg",
                               "duration_orbits"}, params
        samples = expected_samples(params)
        result = stack.get_ok(f"/jobs/{job['id']}/results")
        assert result["success"] is True, result
        assert result["metadata"]["engine"] == "basilisk", result

        summary = json.loads(output_file(result, "summary.json").read_text())
        assert summary["success"] is True and summary["run_id"] == job["run_id"], summary
        assert summary["sample_count"] == samples, (summary, samples)
        assert isinstance(summary["execution_time_secs"], float), summary
        final_state = summary["final_state"]
        assert 6371 < final_state["radius_km"] < 7100, final_state
        assert abs(final_state["inclination_deg"] - params["inclination_deg"]) < 0.5, summary

        rows = output_file(result, "trajectory.csv").read_text().splitlines()
        assert rows[0] == "t,x,y,z,vx,vy,vz", rows[0]
        assert len(rows) - 1 == samples, (len(rows), samples)
        times = [float(row.split(",")[0]) for row in rows[1:]]
        assert times[:2] == [0.0, STEP_SECS] and times[-1] == (samples - 1) * STEP_SECS
        duration = params["duration_orbits"] * 2 * math.pi * math.sqrt(
            params["semi_major_axis_m"] ** 3 / MU)
        assert abs(len(rows) - 1 - duration / STEP_SECS) <= 2, (len(rows), duration)

        assert_png(output_file(result, "orbit_position.png"))

        #  sampling_rate_hz 0.1 forwards one frame per 10 s of simulation time: every step.
        telemetry = wait_telemetry(stack, job["id"], samples)
        assert telemetry["count"] == samples, telemetry["count"]
        assert set(telemetry["values"]) == ORBIT_VARIABLES, list(telemetry["values"])
        assert telemetry["timestamp_ns"][:2] == [0, 10_000_000_000], telemetry["timestamp_ns"][:2]
        radii = telemetry["values"]["orbit.radius_km"]
        assert all(6371 < r < 7100 for r in radii), (min(radii), max(radii))
        assert result["telemetry_data"]["trigger"] is None, result["telemetry_data"]


def test_decaying_orbits_are_killed_by_the_watchdog(stack):
    start_orbit_stack(stack)
    body = example_body("decaying_orbit.json")
    assert body["config"]["early_termination"]["check_frequency_hz"] == 10.0
    batch_id = stack.submit(body)["batch_id"]
    stack.wait_batch_terminal(batch_id, timeout=60)
    jobs = stack.list_jobs(batch_id)
    assert len(jobs) == 6, jobs

    decayed = set()
    for job in jobs:
        job = stack.get_ok(f"/jobs/{job['id']}")
        params = job["run_config"]["parameters"]
        perigee_km = params["semi_major_axis_m"] * (1 - params["eccentricity"]) / 1000.0
        #  Far enough from the surface for J2 over one orbit not to matter.
        assert abs(perigee_km - 6371) > 20, (job["run_id"], perigee_km)
        if perigee_km < 6371:
            decayed.add(job["run_id"])
        result = stack.get_ok(f"/jobs/{job['id']}/results")
        telemetry = result["telemetry_data"]
        if perigee_km < 6371:
            #  Ended by the rule (the scenario would only exit 3 after a 2 s grace), for good.
            assert job["status"] == "Failed", job
            assert job["error_message"] == DECAY_RULE, job
            assert (job["retries"], job["attempt"]) == (0, 1), job
            assert result["success"] is False and result["error_message"] == DECAY_RULE
            trigger = telemetry["trigger"]
            assert trigger["rule_name"] == "orbit.radius_km < 6371", trigger
            assert trigger["description"] == "Orbit has decayed below Earth surface radius"
            assert trigger["telemetry_at_trigger"]["orbit.radius_km"] < 6371, trigger
            assert set(trigger["telemetry_at_trigger"]) == ORBIT_VARIABLES, trigger
        else:
            assert job["status"] == "Completed", job
            assert result["success"] is True and telemetry["trigger"] is None, result
            summary = json.loads(output_file(result, "summary.json").read_text())
            assert summary["min_radius_km"] > 6371, summary
            assert_png(output_file(result, "orbit_position.png"))
    assert decayed == DECAYED_RUN_IDS, decayed

    view = stack.get_ok(f"/batches/{batch_id}")
    assert view["batch"]["failed_jobs"] == len(DECAYED_RUN_IDS), view
    assert view["batch"]["completed_jobs"] == 6 - len(DECAYED_RUN_IDS), view


def build_c_scenario(tmp_path):
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is not installed: cannot build the C orbit scenario")
    library = bin_dir() / "clients" / "c" / "liblynx-telemetry.a"
    if not library.exists():
        pytest.skip(f"{library} is not built")
    flags = []
    cache = bin_dir() / "CMakeCache.txt"
    if cache.exists() and "LYNX_SANITIZE:BOOL=ON" in cache.read_text():
        flags = ["-fsanitize=address,undefined"]  # the library is instrumented
    binary = tmp_path / "scenario_orbit"
    argv = [gcc, "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", *flags,
            "-I", str(source_dir() / "clients" / "c"), "-o", str(binary),
            str(EXAMPLE / "c" / "scenario_orbit.c"), str(library),
            "-ljansson", "-lzmq", "-lmsgpackc", "-lm"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=scaled(60))
    assert done.returncode == 0, f"{' '.join(argv)}\n{done.stderr}"
    return binary


def test_c_scenario_through_the_command_engine(stack, tmp_path):
    binary = build_c_scenario(tmp_path)
    stack.start_broker()
    stack.start_gateway()
    stack.start_runner("c-orbit-01", "unused.py", engines=("command",),
                       capabilities=("orbit", "aerospace"), max_concurrent_jobs=2,
                       extra_config={"command_executable": str(binary),
                                     "working_directory": str(EXAMPLE)})
    body = example_body("basic_orbit_c.json")
    assert body["config"]["compute"]["engine"] == "command"
    batch_id = stack.submit(body)["batch_id"]
    final = stack.wait_batch_terminal(batch_id, timeout=60)
    assert final["batch"]["status"] == "Completed", final
    jobs = stack.list_jobs(batch_id)
    assert len(jobs) == 2 and all(j["status"] == "Completed" for j in jobs), jobs
    for job in jobs:
        samples = expected_samples(job["run_config"]["parameters"])
        result = stack.get_ok(f"/jobs/{job['id']}/results")
        assert result["success"] is True and result["metadata"]["engine"] == "command", result
        summary = json.loads(output_file(result, "summary.json").read_text())
        assert summary["success"] is True and summary["sample_count"] == samples, summary
        assert summary["telemetry"]["active"] is True, summary
        assert summary["parameters"] == job["run_config"]["parameters"], summary
        telemetry = wait_telemetry(stack, job["id"], samples)
        assert telemetry["count"] == samples, telemetry["count"]
        assert set(telemetry["values"]) == ORBIT_VARIABLES, list(telemetry["values"])
        assert telemetry["values"]["orbit.radius_km"][-1] == pytest.approx(
            summary["final_state"]["radius_km"]), summary


def test_yaml_and_json_batches_are_the_same_config():
    yaml = pytest.importorskip("yaml")
    assert yaml.safe_load((EXAMPLE / "basic_orbit_tutorial.yaml").read_text()) == \
        example_body("basic_orbit_tutorial.json")

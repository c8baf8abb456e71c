"""Issue acceptance: a batch submitted through the gateway runs on real runners end to end.

The request bodies in configs/ are the curl bodies of lynx-docs, byte for byte: the API is our
compatibility contract, so the documented examples must be accepted as they are.
"""

import json
import math
from pathlib import Path

from lynx_harness import (JOB_STATES, UUID_RE, load_body, parse_timestamp, scenario_path)

TUTORIAL_BODY = "tutorial_basic_orbit_batch.json"
SPACECRAFT_BODY = "spacecraft_analysis_batch.json"
RUN_CONFIG_METADATA_KEYS = {"simulation_name", "simulation_version", "duration_minutes",
                            "sampling_method", "generated_at"}
BATCH_KEYS = {"id", "name", "status", "total_jobs", "completed_jobs", "failed_jobs",
              "created_at", "config_hash"}
RESULT_KEYS = {"job_id", "success", "execution_time_secs", "output_files", "telemetry_data",
               "metadata", "error_message"}
JOB_KEYS = {"id", "batch_id", "run_id", "run_config", "status", "retries", "max_retries",
            "timeout_secs", "created_at", "claimed_at", "started_at", "completed_at",
            "assigned_runner", "error_message"}


def tutorial_config():
    return json.loads(load_body(TUTORIAL_BODY))["config"]


def as_run_id(value):
    """Run ids are integers in run configs; the docs show them as strings in result metadata."""
    assert isinstance(value, int) and not isinstance(value, bool) or \
        isinstance(value, str) and value.isdigit(), f"run_id {value!r} is not an integer"
    return int(value)


def is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_batch_body(body, batch_id, name, total):
    batch = body["batch"]
    assert BATCH_KEYS <= batch.keys(), f"batch lacks {BATCH_KEYS - batch.keys()}: {batch}"
    assert batch["id"] == batch_id
    assert batch["name"] == name
    assert batch["total_jobs"] == total
    parse_timestamp(batch["created_at"])
    assert isinstance(batch["config_hash"], str) and batch["config_hash"]
    by_status = body["jobs_by_status"]
    assert set(JOB_STATES) <= by_status.keys(), f"jobs_by_status lacks states: {by_status}"
    assert all(isinstance(by_status[s], int) and by_status[s] >= 0 for s in JOB_STATES)
    assert sum(by_status[s] for s in JOB_STATES) == total, by_status
    assert is_number(body["throughput_jobs_per_minute"]) and \
        body["throughput_jobs_per_minute"] >= 0, body
    eta = body["estimated_completion_time_mins"]
    assert eta is None or is_number(eta) and eta >= 0, body
    return batch, by_status


def files_under(directory):
    return {str(p) for p in Path(directory).rglob("*") if p.is_file()}


def runner_owning(stack, job_id):
    owners = [r for r in stack.runners if (r.output_root / job_id).is_dir()]
    assert len(owners) == 1, f"job {job_id}: output dirs under {len(owners)} runners"
    return owners[0]


def test_tutorial_batch_runs_to_completion_on_two_runners(stack):
    stack.start_broker()
    stack.start_gateway()
    entrypoint = scenario_path("summary_scenario.py")
    for runner_id in ("basilisk-runner-01", "basilisk-runner-02"):
        stack.start_runner(runner_id, entrypoint, max_concurrent_jobs=2)
    runner_ids = {r.runner_id for r in stack.runners}
    config = tutorial_config()
    dispersions = config["dispersions"]

    submitted = stack.submit(load_body(TUTORIAL_BODY))
    assert submitted["total_jobs"] == 5, submitted
    batch_id = submitted["batch_id"]
    assert UUID_RE.match(batch_id), submitted
    eta = submitted["estimated_completion_time_mins"]
    assert eta is None or is_number(eta), submitted

    final = stack.wait_batch_terminal(batch_id, timeout=60)
    batch, by_status = check_batch_body(final, batch_id, "basic-orbit-tutorial", 5)
    assert batch["status"] == "Completed", final
    assert (batch["completed_jobs"], batch["failed_jobs"]) == (5, 0), final
    assert by_status["Completed"] == 5, final

    status, body = stack.http("GET", f"/batches/{batch_id}/results")
    assert status == 200, body
    assert body["batch_id"] == batch_id
    results = body["results"]
    assert len(results) == 5, body
    assert len({r["job_id"] for r in results}) == 5

    run_ids = []
    for result in results:
        job_id = result["job_id"]
        assert RESULT_KEYS <= result.keys(), f"result lacks {RESULT_KEYS - result.keys()}"
        assert result["success"] is True, result
        assert result["error_message"] is None, result
        assert is_number(result["execution_time_secs"]) and result["execution_time_secs"] >= 0

        # Which runner ran it: its output directory exists under exactly one output_root.
        runner = runner_owning(stack, job_id)
        output_dir = runner.output_root / job_id
        files = result["output_files"]
        assert all(Path(f).is_absolute() for f in files), files
        assert set(files) == files_under(output_dir), \
            f"output_files {files} != files in {output_dir}: {sorted(files_under(output_dir))}"
        names = {Path(f).name for f in files}
        assert {"summary.json", "stdout.log", "stderr.log"} <= names, files
        assert "summary_scenario: run_id=" in (output_dir / "stdout.log").read_text()

        metadata = result["metadata"]
        assert metadata["engine"] == "basilisk", metadata
        assert metadata["simulation_name"] == "Basic Orbit Tutorial", metadata
        assert metadata["entrypoint"] == str(entrypoint), metadata
        assert metadata["runner_id"] == runner.runner_id and metadata["runner_id"] in runner_ids

        # What the scenario saw.
        summary = json.loads((output_dir / "summary.json").read_text())
        run_config = summary["run_config"]
        assert set(run_config) == {"run_id", "parameters", "metadata"}, run_config
        assert set(run_config["metadata"]) == RUN_CONFIG_METADATA_KEYS, run_config["metadata"]
        meta = run_config["metadata"]
        assert meta["simulation_name"] == "Basic Orbit Tutorial"
        assert meta["simulation_version"] == "1.0.0"
        assert meta["duration_minutes"] == 90
        assert meta["sampling_method"] == "latin_hypercube"
        parse_timestamp(meta["generated_at"])
        assert isinstance(run_config["run_id"], int), run_config
        assert as_run_id(metadata["run_id"]) == run_config["run_id"], (metadata, run_config)
        run_ids.append(run_config["run_id"])

        params = run_config["parameters"]
        assert set(params) == set(dispersions), params
        for key, value in params.items():
            dist = dispersions[key]["distribution"]
            assert is_number(value) and dist["min"] <= value <= dist["max"], (key, value, dist)

        env = summary["env"]
        assert Path(env["TETRYX_OUTPUT_DIR"]) == output_dir, env
        assert Path(env["cwd"]).resolve() == runner.working_directory.resolve(), env
        assert Path(env["TETRYX_RUN_CONFIG"]).is_absolute(), env

        # The job record agrees with what the runner handed the scenario.
        status, job = stack.http("GET", f"/jobs/{job_id}")
        assert status == 200, job
        assert JOB_KEYS <= job.keys(), f"job lacks {JOB_KEYS - job.keys()}: {job}"
        assert job["id"] == job_id and job.get("job_id", job_id) == job_id
        assert job["batch_id"] == batch_id
        assert job["status"] == "Completed"
        assert job["run_config"] == run_config, (job["run_config"], run_config)
        assert as_run_id(job["run_id"]) == run_config["run_id"]
        assert job["assigned_runner"] == runner.runner_id
        assert job["error_message"] is None
        assert job["retries"] == 0 and isinstance(job["max_retries"], int)
        assert job["timeout_secs"] == config["compute"]["job_timeout_seconds"], job
        stamps = [parse_timestamp(job[k])
                  for k in ("created_at", "claimed_at", "started_at", "completed_at")]
        assert stamps == sorted(stamps), job

        status, job_result = stack.http("GET", f"/jobs/{job_id}/results")
        assert status == 200, job_result
        assert job_result == result

    assert sorted(run_ids) == [0, 1, 2, 3, 4], run_ids
    check_latin_hypercube(results, stack, dispersions)


def check_latin_hypercube(results, stack, dispersions):
    """With n LHS samples, each dimension has exactly one sample in each of its n strata."""
    samples = []
    for result in results:
        output_dir = runner_owning(stack, result["job_id"]).output_root / result["job_id"]
        samples.append(json.loads((output_dir / "summary.json").read_text())
                       ["run_config"]["parameters"])
    n = len(samples)
    for key, spec in dispersions.items():
        lo, hi = spec["distribution"]["min"], spec["distribution"]["max"]
        strata = sorted(min(n - 1, math.floor((s[key] - lo) / (hi - lo) * n)) for s in samples)
        assert strata == list(range(n)), f"{key}: not one sample per stratum: " \
                                         f"{sorted(s[key] for s in samples)}"


def test_failing_scenario_fails_the_batch(stack):
    stack.start_broker()
    stack.start_gateway()
    stack.start_runner("failing-runner", scenario_path("fail_scenario.py"), max_concurrent_jobs=2)
    body = json.loads(load_body(TUTORIAL_BODY))
    body["name"] = "diverging-orbit"
    body["runs_override"] = 3

    batch_id = stack.submit(body)["batch_id"]
    final = stack.wait_batch_terminal(batch_id, timeout=90)
    batch, by_status = check_batch_body(final, batch_id, "diverging-orbit", 3)
    assert batch["status"] == "Failed", final
    assert (batch["completed_jobs"], batch["failed_jobs"]) == (0, 3), final
    assert by_status["Failed"] == 3, final

    status, body = stack.http("GET", f"/batches/{batch_id}/results")
    assert status == 200, body
    results = body["results"]
    assert len(results) == 3, body
    for result in results:
        assert result["success"] is False, result
        for text in ("exit status 1", "simulated divergence"):
            assert text in (result["error_message"] or ""), result
        output_dir = stack.runners[0].output_root / result["job_id"]
        assert str(output_dir / "stderr.log") in result["output_files"], result
        assert "simulated divergence at t=12.5" in (output_dir / "stderr.log").read_text()

        status, job = stack.http("GET", f"/jobs/{result['job_id']}")
        assert status == 200, job
        assert job["status"] == "Failed", job
        for text in ("exit status 1", "simulated divergence"):
            assert text in (job["error_message"] or ""), job
        # Failed means retries exhausted (job-lifecycle.txt).
        assert job["retries"] == job["max_retries"], job
        assert job["assigned_runner"] == "failing-runner", job

        status, job_result = stack.http("GET", f"/jobs/{result['job_id']}/results")
        assert status == 200, job_result
        assert job_result == result


def test_documented_500_run_batch_is_accepted_verbatim(stack):
    stack.start_broker()
    stack.start_gateway()

    submitted = stack.submit(load_body(SPACECRAFT_BODY))
    assert submitted["total_jobs"] == 500, submitted
    batch_id = submitted["batch_id"]
    assert UUID_RE.match(batch_id), submitted

    status, body = stack.http("GET", f"/batches/{batch_id}")
    assert status == 200, body
    batch, by_status = check_batch_body(body, batch_id, "spacecraft-analysis-v1", 500)
    # No runner is connected: nothing can have been claimed.
    assert batch["status"] == "Pending", body
    assert (batch["completed_jobs"], batch["failed_jobs"]) == (0, 0), body
    assert by_status["Pending"] == 500, body

    status, body = stack.http("GET", f"/batches/{batch_id}/results")
    assert status == 200, body
    assert body["batch_id"] == batch_id and body["results"] == [], body

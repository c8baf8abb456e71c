"""The `lynx` command-line client against a live grid: every subcommand and exit status.

The binary is $LYNX_CLI when set, else $LYNX_BIN_DIR/cli/lynx, else $LYNX_BIN_DIR/lynx.
Exit statuses: 0 success, 1 a job did not complete, 2 usage/validation (4xx), 3 unreachable.
"""

import csv
import io
import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from lynx_harness import (CONFIGS_DIR, UUID_RE, bin_dir, free_port, scaled, scenario_path,
                          source_dir)

QUICKSTART = source_dir() / "examples" / "quickstart"
QUICKSTART_BATCH = QUICKSTART / "batch.json"
SUBMITTED = re.compile(r"^submitted batch (\S+): (\d+) jobs, seed (\d+)$", re.M)
SUBCOMMANDS = ("submit", "validate", "status", "results", "jobs", "cancel", "runners", "drain",
               "resume")


def cli_binary():
    explicit = os.environ.get("LYNX_CLI")
    if explicit:
        return Path(explicit)
    for candidate in (bin_dir() / "cli" / "lynx", bin_dir() / "lynx"):
        if os.access(candidate, os.X_OK):
            return candidate
    raise RuntimeError(f"no lynx CLI under {bin_dir()} (cli/lynx or lynx); build it or set "
                       f"LYNX_CLI")


def lynx(*args, url=None, env=None, timeout=120):
    """Run the CLI; returns the CompletedProcess (text). LYNX_URL comes only from env."""
    full_env = {k: v for k, v in os.environ.items() if k != "LYNX_URL"}
    full_env.update(env or {})
    argv = [str(cli_binary())] + (["--url", url] if url else []) + [str(a) for a in args]
    return subprocess.run(argv, capture_output=True, text=True, env=full_env,
                          timeout=scaled(timeout))


def ok(done, status=0):
    assert done.returncode == status, \
        f"exit {done.returncode} != {status}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    return done


def submitted_id(done):
    match = SUBMITTED.search(done.stdout)
    assert match, done.stdout
    assert UUID_RE.match(match.group(1)), match.group(1)
    return match.group(1)


def yaml_scalar(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(value)  # a JSON string is a YAML double-quoted scalar


def to_yaml(value, indent=0):
    """Block-style YAML of a JSON-like dict (enough for study configs)."""
    pad = " " * indent
    lines = []
    for key, item in value.items():
        if isinstance(item, dict):
            lines.append(f"{pad}{key}:")
            lines.append(to_yaml(item, indent + 2))
        elif isinstance(item, list):
            lines.append(f"{pad}{key}: [{', '.join(yaml_scalar(x) for x in item)}]")
        else:
            lines.append(f"{pad}{key}: {yaml_scalar(item)}")
    return "\n".join(line for line in lines if line)


@pytest.fixture
def grid(stack):
    stack.start_broker()
    stack.start_gateway()
    stack.start_runner("cli-01", QUICKSTART / "scenario.py", max_concurrent_jobs=2)
    return stack


def test_help_lists_every_command_and_exit_status(tmp_path):
    done = ok(lynx("--help"))
    for name in SUBCOMMANDS:
        assert re.search(rf"^  {name} ", done.stdout, re.M), done.stdout
    assert re.search(r"^  watch ", done.stdout, re.M), done.stdout
    for name in SUBCOMMANDS:
        sub = ok(lynx(name, "--help"))
        assert sub.stdout.startswith(f"usage: lynx {name}"), sub.stdout
    ok(lynx("frobnicate"), 2)
    ok(lynx("status"), 2)  # missing BATCH_ID
    ok(lynx("submit", QUICKSTART_BATCH, "--runs", "zero"), 2)
    missing = ok(lynx("submit", tmp_path / "missing.json"), 2)
    assert "missing.json" in missing.stderr


def test_unreachable_gateway_exits_3():
    url = f"http://127.0.0.1:{free_port()}"
    done = ok(lynx("runners", url=url), 3)
    assert "unreachable" in done.stderr and url in done.stderr, done.stderr
    ok(lynx("submit", QUICKSTART_BATCH, "--wait", env={"LYNX_URL": url}), 3)
    ok(lynx("status", "00000000-0000-0000-0000-000000000000", url=url), 3)


def test_gateway_without_broker_exits_3(stack):
    stack.start_broker()
    gateway = stack.start_gateway(broker_timeout_ms=300)
    stack.kill9(stack.broker)
    done = ok(lynx("runners", url=gateway.url), 3)
    assert "503" in done.stderr, done.stderr


def test_submit_json_and_yaml_wait_then_read_the_results(grid, tmp_path):
    url = grid.gateway.url
    # JSON: the whole POST /jobs body, followed to the end (stdout is a pipe: plain lines).
    done = ok(lynx("submit", QUICKSTART_BATCH, "--wait", url=url))
    batch_id = submitted_id(done)
    assert SUBMITTED.search(done.stdout).group(2, 3) == ("8", "7"), done.stdout
    assert "\r" not in done.stdout, "progress bar drawn on a pipe"
    assert re.search(rf"^batch {batch_id} Completed in [\d.]+ s: 8 completed, 0 failed",
                     done.stdout, re.M), done.stdout
    assert grid.get_ok(f"/batches/{batch_id}")["batch"]["status"] == "Completed"

    # YAML: only the config, via LYNX_URL, with --name and --runs overriding.
    config = json.loads(QUICKSTART_BATCH.read_text())["config"]
    study = tmp_path / "quickstart.yaml"
    study.write_text(to_yaml(config) + "\n")
    done = ok(lynx("submit", study, "--name", "from-yaml", "--runs", "3", "--wait",
                   env={"LYNX_URL": url}))
    yaml_id = submitted_id(done)
    batch = grid.get_ok(f"/batches/{yaml_id}")["batch"]
    assert (batch["name"], batch["total_jobs"], batch["status"]) == ("from-yaml", 3, "Completed")
    # The same study as YAML samples the same parameters as the JSON one (same seed).
    yaml_jobs, json_jobs = grid.list_jobs(yaml_id), grid.list_jobs(batch_id)
    assert batch["seed"] == 7 and len(yaml_jobs) == 3

    # status
    done = ok(lynx("status", batch_id, url=url))
    assert re.search(r"^status\s+Completed$", done.stdout, re.M), done.stdout
    assert json.loads(ok(lynx("status", batch_id, "--json", url=url)).stdout)["batch"]["id"] \
        == batch_id

    # results: CSV a notebook can load, one row per job in run_id order, with parameters.
    done = ok(lynx("results", batch_id, "--csv", url=url))
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert [int(r["run_id"]) for r in rows] == list(range(8)), done.stdout
    by_id = {job["id"]: job for job in json_jobs}
    for row in rows:
        job = by_id[row["job_id"]]
        assert (row["status"], row["success"]) == ("Completed", "true"), row
        assert float(row["execution_time_secs"]) > 0, row
        for name, value in job["run_config"]["parameters"].items():
            assert float(row[name]) == value, (name, row, job)  # full precision
    as_json = json.loads(ok(lynx("results", batch_id, "--json", url=url)).stdout)
    assert as_json == grid.get_ok(f"/batches/{batch_id}/results")
    table = ok(lynx("results", batch_id, url=url)).stdout.splitlines()
    assert table[0].split()[:5] == ["run_id", "job_id", "status", "success",
                                    "execution_time_secs"], table
    assert len(table) == 9, table

    # jobs: every page of the cursor, and the status filter.
    done = ok(lynx("jobs", batch_id, "--limit", "3", url=url))
    lines = done.stdout.splitlines()
    assert lines[-1] == "8 jobs", done.stdout
    assert [line.split()[1] for line in lines[1:-1]] == [j["id"] for j in json_jobs]
    assert ok(lynx("jobs", batch_id, "--status", "Failed", url=url)).stdout \
        .splitlines()[-1] == "0 jobs"

    # validate: a good config previews; a bad one names every field.
    done = ok(lynx("validate", QUICKSTART_BATCH, url=url))
    assert done.stdout.startswith("valid: 8 jobs, seed 7, sampling latin_hypercube"), done.stdout
    assert "launch_speed_m_s" in done.stdout
    bad = dict(config, monte_carlo={"runs": 0, "sampling_method": "latin_hypercube"})
    del bad["dispersions"]
    bad_path = tmp_path / "bad.json"
    bad_path.write_text(json.dumps(bad))
    done = ok(lynx("validate", bad_path, url=url), 2)
    assert "config.monte_carlo.runs: must be between 1 and 10000000" in done.stderr, done.stderr
    assert "config.dispersions: required" in done.stderr, done.stderr
    ok(lynx("submit", bad_path, url=url), 2)
    ok(lynx("status", "no-such-batch", url=url), 2)


def test_runners_drain_resume_and_cancel(grid):
    url = grid.gateway.url
    done = ok(lynx("runners", url=url))
    assert re.search(r"^cli-01\s+(Idle|Busy)\s", done.stdout, re.M), done.stdout

    assert ok(lynx("drain", "cli-01", url=url)).stdout.strip() == "runner cli-01: Maintenance"
    assert grid.get_ok("/runners/cli-01")["status"] == "Maintenance"
    assert re.search(r"^cli-01\s+Maintenance\s", ok(lynx("runners", url=url)).stdout, re.M)
    ok(lynx("drain", "no-such-runner", url=url), 2)

    # With the only runner drained, jobs stay Pending: cancel one job, then the batch.
    batch_id = submitted_id(ok(lynx("submit", QUICKSTART_BATCH, "--runs", "4", url=url)))
    job_id = grid.list_jobs(batch_id)[0]["id"]
    done = ok(lynx("cancel", "--job", job_id, url=url))
    assert done.stdout.startswith(f"job {job_id}: cancel"), done.stdout
    grid.wait_for(lambda: grid.get_ok(f"/jobs/{job_id}")["status"] == "Cancelled", 30,
                  what="job cancelled")
    done = ok(lynx("cancel", batch_id, url=url))
    assert re.match(rf"^batch {batch_id}: \d+ pending jobs cancelled", done.stdout), done.stdout
    final = grid.wait_batch_terminal(batch_id)
    assert final["jobs_by_status"]["Cancelled"] == 4, final
    assert ok(lynx("jobs", batch_id, "--status", "Cancelled", url=url)).stdout \
        .splitlines()[-1] == "4 jobs"
    ok(lynx("status", batch_id, url=url), 1)  # ended, not Completed
    ok(lynx("results", batch_id, "--csv", url=url), 1)
    ok(lynx("cancel", batch_id, url=url), 2)  # 409: already ended

    assert ok(lynx("resume", "cli-01", url=url)).stdout.strip() == "runner cli-01: Idle"
    grid.wait_for(lambda: grid.get_ok("/runners/cli-01")["status"] in ("Idle", "Busy"), 30,
                  what="runner back from Maintenance")


def test_failing_batch_exits_1(stack):
    stack.start_broker()
    stack.start_gateway()
    stack.start_runner("failing", scenario_path("fail_scenario.py"), max_concurrent_jobs=2)
    url = stack.gateway.url
    done = ok(lynx("submit", CONFIGS_DIR / "tutorial_basic_orbit_batch.json", "--runs", "2",
                   "--name", "diverging", "--wait", url=url), 1)
    batch_id = submitted_id(done)
    assert re.search(rf"^batch {batch_id} Failed in [\d.]+ s: 0 completed, 2 failed",
                     done.stdout, re.M), done.stdout
    done = ok(lynx("results", batch_id, "--csv", url=url), 1)
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert len(rows) == 2 and all(r["success"] == "false" for r in rows), done.stdout
    assert all("simulated divergence" in r["error_message"] for r in rows), done.stdout
    ok(lynx("status", batch_id, url=url), 1)


def test_watch_prints_a_batch_live_and_exits_when_it_ends(tmp_path):
    """lynx watch finds the telemetry endpoint through /healthz, prints the batch's job
    events (and frames, when its scenario sends any) and exits 0 once the batch Completed."""
    from lynx_harness import Stack, scenario_path, source_dir
    stack = Stack(tmp_path)
    try:
        stack.start_broker()
        stack.start_gateway()
        stack.start_runner("watch-01", scenario_path("summary_scenario.py"))
        url = stack.gateway.url
        body = json.loads((Path(source_dir()) / "examples" / "quickstart" / "batch.json").read_text())
        body["runs_override"] = 2
        batch_id = stack.submit(body)["batch_id"]
        done = subprocess.run([cli_binary(), "--url", url, "watch", batch_id, "--duration", "60"],
                              capture_output=True, text=True, timeout=90)
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"batch {batch_id} Completed" in done.stdout, done.stdout
        bad = subprocess.run([cli_binary(), "--url", url, "watch", "no-such-batch"],
                             capture_output=True, text=True, timeout=30)
        assert bad.returncode == 2, bad.stdout + bad.stderr
    finally:
        stack.stop()

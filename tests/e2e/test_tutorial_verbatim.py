"""The basic-orbit tutorial's own commands, run as a user would copy them.

Each shell command below is copied from lynx-docs "Basic orbit tutorial" unchanged; the test only
replaces the host (https://api.lynx.tetryx.io -> the gateway started here) and the example
batch id in the monitoring commands (3fa85f64-... -> the id POST /jobs returned). The runner
command runs from the repository root, where configs/lynx-runner-basilisk.yaml and
scenarios/aerospace/python/scenario_basic_orbit_lynx.py are shipped, with `lynx-runner` on
PATH and the platform endpoint in LYNX_RUNNER_BROKER_ENDPOINT ("set via environment variables
provided during onboarding", as the tutorial says). LYNX_RUNNER_OUTPUT_ROOT keeps the runs
under the test's directory instead of /tmp/tetryx-runs.
"""

import json
import os
import subprocess
from pathlib import Path

from lynx_harness import Process, bin_dir, scaled, source_dir

TUTORIAL_HOST = "https://api.lynx.tetryx.io"
EXAMPLE_BATCH_ID = "3fa85f64-5717-4562-b3fc-2c963f66afa6"

START_RUNNER = """lynx-runner \\
  --config configs/lynx-runner-basilisk.yaml \\
  --runner-id basilisk-runner-01 \\
  --name "Basilisk Runner 01\""""

VERIFY_RUNNER = """curl -s https://api.lynx.tetryx.io/runners/basilisk-runner-01 | jq '.capabilities'"""

SUBMIT = """curl -sS \\
  -X POST https://api.lynx.tetryx.io/jobs \\
  -H 'content-type: application/json' \\
  -d '{
    "name": "basic-orbit-tutorial",
    "runs_override": 5,
    "config": {
      "simulation": {
        "name": "Basic Orbit Tutorial",
        "version": "1.0.0",
        "duration_minutes": 90
      },
      "monte_carlo": {
        "runs": 5,
        "sampling_method": "latin_hypercube",
        "seed": 42
      },
      "dispersions": {
        "semi_major_axis_m": {
          "distribution": { "type": "uniform", "min": 6950000.0, "max": 7050000.0 },
          "units": "m"
        },
        "eccentricity": {
          "distribution": { "type": "uniform", "min": 0.00005, "max": 0.002 },
          "units": "dimensionless"
        },
        "inclination_deg": {
          "distribution": { "type": "uniform", "min": 30.0, "max": 36.0 },
          "units": "deg"
        },
        "raan_deg": {
          "distribution": { "type": "uniform", "min": 40.0, "max": 55.0 },
          "units": "deg"
        },
        "arg_perigee_deg": {
          "distribution": { "type": "uniform", "min": 330.0, "max": 355.0 },
          "units": "deg"
        },
        "true_anomaly_deg": {
          "distribution": { "type": "uniform", "min": 70.0, "max": 100.0 },
          "units": "deg"
        },
        "duration_orbits": {
          "distribution": { "type": "uniform", "min": 0.70, "max": 0.80 },
          "units": "orbits"
        }
      },
      "compute": {
        "container": {
          "image": "tetryx/basilisk-basic-orbit:latest",
          "cpu_request": "500m",
          "memory_request": "1Gi"
        },
        "max_parallel_jobs": 2,
        "job_timeout_seconds": 1800
      },
      "early_termination": {
        "enabled": false,
        "check_frequency_hz": 1.0,
        "conditions": []
      },
      "telemetry": {
        "sampling_rate_hz": 0.1,
        "variables": [
          "orbit.radius_km",
          "orbit.speed_m_s",
          "orbit.semi_major_axis_km",
          "orbit.eccentricity",
          "orbit.inclination_deg",
          "orbit.true_anomaly_deg"
        ],
        "storage": {
          "s3_bucket": "your-telemetry-bucket",
          "s3_prefix": "basic-orbit/",
          "compression": "gzip"
        },
        "buffer_flush_interval_seconds": 30
      }
    }
  }' | jq"""

MONITOR = """curl -s https://api.lynx.tetryx.io/batches/3fa85f64-5717-4562-b3fc-2c963f66afa6 | jq '{
  status: .batch.status,
  progress: .jobs_by_status,
  throughput: .throughput_jobs_per_minute
}'"""

RESULTS = """curl -s https://api.lynx.tetryx.io/batches/3fa85f64-5717-4562-b3fc-2c963f66afa6/results | jq"""

ARTIFACTS = {"orbit_position.png", "summary.json", "trajectory.csv"}
LOGS = {"stdout.log", "stderr.log"}


def _user_env(extra):
    """The environment of a user's shell on a grid host: our binaries on PATH, no test-only
    LYNX_ settings inherited from the harness's environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LYNX_RUNNER_")}
    env["PATH"] = f"{bin_dir()}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


def _shell(command, host, batch_id=None):
    """Run one tutorial command with the host (and example batch id) replaced; returns the
    parsed JSON jq printed."""
    command = command.replace(TUTORIAL_HOST, host)
    if batch_id:
        command = command.replace(EXAMPLE_BATCH_ID, batch_id)
    assert TUTORIAL_HOST not in command
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True,
                          timeout=scaled(60), env=_user_env({}), cwd=source_dir())
    assert done.returncode == 0, f"{command}\n-> {done.returncode}\n{done.stderr}"
    return json.loads(done.stdout)


def test_the_tutorial_commands_work_verbatim(stack, tmp_path):
    root = source_dir()
    assert (root / "configs" / "lynx-runner-basilisk.yaml").is_file()
    assert (root / "scenarios/aerospace/python/scenario_basic_orbit_lynx.py").is_file()
    assert (root / "scenarios/aerospace/configs/basic_orbit_tutorial.yaml").is_file()
    stack.start_broker()
    # The tutorial's curl commands carry no token: they run as written against a gateway
    # with tokens off, which then listens on loopback only (docs/security.md).
    host = stack.start_gateway(extra_args=("--auth", "none")).url
    output_root = tmp_path / "tetryx-runs"

    # The site's security settings come from the environment, so the command stays verbatim:
    # an enrolled key and the broker's public key (docs/security.md).
    env = _user_env({"LYNX_RUNNER_BROKER_ENDPOINT": stack.broker.runner_endpoint,
                     "LYNX_RUNNER_OUTPUT_ROOT": str(output_root),
                     "LYNX_RUNNER_KEY_FILE": str(stack.runner_keys("basilisk-runner-01")),
                     "LYNX_RUNNER_BROKER_PUBLIC_KEY":
                         str(stack.broker.data_dir / "keys" / "broker.key")})
    runner = Process("runner-basilisk-runner-01",
                     ["bash", "-c", f"cd {root} && exec {START_RUNNER}"], stack.log_dir, env=env)
    stack.processes.append(runner)
    ready = runner.wait_ready()
    assert ready.get("runner_id") == "basilisk-runner-01"

    capabilities = _shell(VERIFY_RUNNER, host)
    assert capabilities["max_concurrent_jobs"] == 1
    assert capabilities["supported_simulation_types"] == ["basilisk", "orbit", "aerospace"]
    assert capabilities["gpu_available"] is False
    assert isinstance(capabilities["memory_gb"], (int, float)) and capabilities["memory_gb"] > 0
    assert isinstance(capabilities["cpu_cores"], int) and capabilities["cpu_cores"] > 0

    submitted = _shell(SUBMIT, host)
    assert submitted["total_jobs"] == 5
    batch_id = submitted["batch_id"]
    assert "estimated_completion_time_mins" in submitted

    def finished():
        progress = _shell(MONITOR, host, batch_id)
        assert set(progress) == {"status", "progress", "throughput"}
        return progress if progress["status"] in ("Completed", "Failed", "Cancelled") else None

    progress = stack.wait_for(finished, 120, what="the tutorial batch to finish")
    assert progress["status"] == "Completed", progress
    assert progress["progress"]["Completed"] == 5

    results = _shell(RESULTS, host, batch_id)["results"]
    assert len(results) == 5
    for result in results:
        assert result["success"] is True and result["error_message"] is None
        assert result["metadata"]["runner_id"] == "basilisk-runner-01"
        assert result["metadata"]["engine"] == "basilisk"
        assert result["metadata"]["entrypoint"].endswith(
            "scenarios/aerospace/python/scenario_basic_orbit_lynx.py")
        files = [Path(path) for path in result["output_files"]]
        #  The runner keeps the scenario's stdout.log and stderr.log beside its artifacts.
        assert {path.name for path in files} - LOGS == ARTIFACTS, result["output_files"]
        for path in files:
            assert path.is_file() and output_root in path.parents
            assert path.name in LOGS or path.stat().st_size > 0, path

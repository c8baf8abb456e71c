"""scripts/lynx-up: a local grid that serves a batch and stops cleanly on SIGINT."""
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

from lynx_harness import http_request, scaled, source_dir

ARTIFACTS = ("summary.json", "trajectory.csv", "orbit_position.png")


def pid_running(pid):
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "zombie" not in status


def read_until_ready(proc, timeout):
    lines = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("READY "):
            return lines
    raise AssertionError("no READY line from lynx-up:\n" + "".join(lines))


def test_lynx_up_serves_a_batch_and_stops_on_sigint(tmp_path):
    data_dir = tmp_path / "grid"
    env = dict(os.environ)
    env.setdefault("LYNX_BIN_DIR", str(source_dir() / "build"))
    proc = subprocess.Popen([str(source_dir() / "scripts" / "lynx-up"), "--runners", "2",
                             "--data-dir", str(data_dir)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)
    pids = []
    try:
        lines = read_until_ready(proc, scaled(60))
        ready = dict(p.split("=", 1) for p in lines[-1].split()[1:])
        url = ready["url"]
        assert re.match(r"^http://127\.0\.0\.1:\d+$", url), lines[-1]
        assert ready["telemetry_endpoint"].startswith("tcp://127.0.0.1:"), lines[-1]
        assert ready["data_dir"] == str(data_dir)
        pids = [int(p) for p in re.findall(r"pid=(\d+)", "".join(lines))]
        assert len(pids) == 4, lines  # broker, gateway, two runners
        # Security on by default: without the token lynx-up made, the API says 401.
        token_file = Path(ready["token_file"])
        assert oct(token_file.stat().st_mode & 0o777) == "0o600"
        refused = http_request(url, "GET", "/runners", headers={"Authorization": None})
        assert refused.status == 401, refused.body
        os.environ["LYNX_TOKEN"] = token_file.read_text().strip()  # http_request sends it

        health = http_request(url, "GET", "/healthz")
        assert health.status == 200 and health.body["runners_online"] == 2, health.body
        runners = http_request(url, "GET", "/runners").body
        if isinstance(runners, dict):
            runners = runners["runners"]
        ids = sorted(r["runner_id"] for r in runners)
        assert ids == ["local-runner-01", "local-runner-02"], runners

        body = json.loads((source_dir() / "examples" / "basic-orbit" /
                           "basic_orbit_tutorial.json").read_text())
        body["runs_override"] = 2
        submitted = http_request(url, "POST", "/jobs", body=body)
        assert submitted.status == 201, submitted.body
        batch_id = submitted.body["batch_id"]
        deadline = time.monotonic() + scaled(120)
        while True:
            state = http_request(url, "GET", f"/batches/{batch_id}").body
            if state["batch"]["status"] in ("Completed", "Failed", "Cancelled"):
                break
            assert time.monotonic() < deadline, state
            time.sleep(0.2)
        assert state["batch"]["status"] == "Completed", state
        results = http_request(url, "GET", f"/batches/{batch_id}/results").body["results"]
        assert len(results) == 2
        for result in results:
            for name in ARTIFACTS:
                assert any(f.endswith("/" + name) for f in result["output_files"]), result
                assert all(f.startswith(str(data_dir / "runs")) for f in result["output_files"])

        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=scaled(30))
        assert proc.returncode == 0, rest
        assert "stopped" in rest, rest
        assert not [pid for pid in pids if pid_running(pid)], pids
        leftover = subprocess.run(["pgrep", "-f", str(data_dir)], capture_output=True, text=True)
        assert leftover.stdout.strip() == "", leftover.stdout
    finally:
        os.environ.pop("LYNX_TOKEN", None)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in pids:
            if pid_running(pid):
                os.kill(pid, signal.SIGKILL)

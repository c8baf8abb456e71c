"""The README's first command, scripts/demo, run end to end with the binaries under test."""
import os
import re
import subprocess
from pathlib import Path

SOURCE = os.environ.get("LYNX_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("LYNX_BIN_DIR", os.path.join(SOURCE, "build"))
ARTIFACTS = ("summary.json", "trajectory.csv", "orbit_position.png")


def test_demo_runs_the_basic_orbit_study_and_prints_its_results():
    env = dict(os.environ, LYNX_DEMO_BUILD_DIR=BIN, LYNX_DEMO_SKIP_BUILD="1")
    done = subprocess.run([os.path.join(SOURCE, "scripts", "demo"), "3"], cwd=SOURCE, env=env,
                          capture_output=True, text=True, timeout=240)
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert "demo: batch Completed" in out, out
    rows = [line for line in out.splitlines() if re.match(r"\s+\d+ yes ", line)]
    assert len(rows) == 3, out
    assert all(" km " in row and "samples" in row for row in rows), out
    # Each summary was read through the API; each run lists its files as the broker holds them
    # (the scenario's three and its logs), with the summary's URL on the gateway.
    assert "GET /jobs/ID/artifacts/summary.json" in out, out
    listings = re.findall(r"^  run +\d+  (.+)$", out, re.M)
    assert len(listings) == 3, out
    for listing in listings:
        sizes = dict(re.findall(r"(\S+) \((\d+) B\)", listing))
        for name in ARTIFACTS + ("stdout.log",):
            assert int(sizes.get(name, 0)) > 0, f"{name} missing from {listing}\n{out}"
    urls = re.findall(r"^ +(http://127\.0\.0\.1:\d+/jobs/([0-9a-f-]+)/artifacts/summary\.json)$",
                      out, re.M)
    assert len(urls) == 3, out
    # The demo stops what it started: no process of its grid is still running.
    work = re.search(r"logs in (/tmp/lynx-demo\.\w+)", out).group(1)
    # The runners keep their own copies (keep_local_outputs defaults to true).
    for _, job_id in urls:
        copies = list(Path(work, "runs").glob(f"*/{job_id}/summary.json"))
        assert len(copies) == 1, (job_id, copies)
    pids = [int(p) for p in re.findall(r"pid=(\d+)", (Path(work) / "lynx-up.out").read_text())]
    assert len(pids) == 4, pids  # broker, gateway, two runners
    leftover = subprocess.run(["pgrep", "-f", work], capture_output=True, text=True)
    assert leftover.stdout.strip() == "", leftover.stdout
    assert not [pid for pid in pids if os.path.exists(f"/proc/{pid}")
                and "zombie" not in Path(f"/proc/{pid}/status").read_text()], pids

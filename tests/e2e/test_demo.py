"""The README's first command, scripts/demo, run end to end with the binaries under test."""
import os
import re
import subprocess

SOURCE = os.environ.get("LYNX_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("LYNX_BIN_DIR", os.path.join(SOURCE, "build"))


def test_demo_runs_a_small_study_and_prints_its_results():
    env = dict(os.environ, LYNX_DEMO_BUILD_DIR=BIN, LYNX_DEMO_SKIP_BUILD="1")
    done = subprocess.run([os.path.join(SOURCE, "scripts", "demo"), "3"], cwd=SOURCE, env=env,
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "demo: batch Completed" in done.stdout, done.stdout
    rows = [line for line in done.stdout.splitlines() if re.match(r"\s+\d+ yes ", line)]
    assert len(rows) == 3, done.stdout
    assert all("range" in row and "apex" in row for row in rows), done.stdout
    # The demo stops what it started: nothing of its work dir is still running.
    work = re.search(r"logs in (/tmp/lynx-demo\.\w+)", done.stdout).group(1)
    leftover = subprocess.run(["pgrep", "-f", work], capture_output=True, text=True)
    assert leftover.stdout.strip() == "", leftover.stdout

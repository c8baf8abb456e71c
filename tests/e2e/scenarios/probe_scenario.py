#!/usr/bin/python3
"""A scenario whose behaviour a test sets through the runner's environment (scenarios inherit
it), and which keeps a log of every attempt so a test can count what really ran.

Environment (all optional):
  LYNX_E2E_STATE_DIR     directory shared by every runner of the test; each attempt appends
                         JSON lines to <dir>/<LYNX_JOB_ID>.log: {"event": "start", ...} when it
                         starts and {"event": "end", "ok": ...} when it exits by itself
  LYNX_E2E_SLEEP_SECS    seconds to run (default 0)
  LYNX_E2E_FAIL_ATTEMPTS the job's first N attempts (counted in its log) fail with exit 1
  LYNX_E2E_CHILD         "1": start a child `sleep 600` in the scenario's process group first
  LYNX_E2E_IGNORE_TERM   "1": survive SIGTERM, logging {"event": "sigterm"} (the child ignores
                         it too), so only SIGKILL stops us

Exit 0 after the sleep unless told to fail.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def log_path():
    state_dir = os.environ.get("LYNX_E2E_STATE_DIR")
    return Path(state_dir) / f"{os.environ['LYNX_JOB_ID']}.log" if state_dir else None


def previous_starts(path):
    if path is None or not path.exists():
        return 0
    return sum(1 for line in path.read_text().splitlines()
               if line and json.loads(line)["event"] == "start")


def record(path, event, **fields):
    if path is None:
        return
    line = json.dumps({"event": event, "pid": os.getpid(), "time": time.time(),
                       "runner_id": os.environ.get("LYNX_RUNNER_ID"), **fields}) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())  # one write with O_APPEND: lines never interleave
    finally:
        os.close(fd)


def main():
    path = log_path()
    attempt = previous_starts(path) + 1
    ignore_term = os.environ.get("LYNX_E2E_IGNORE_TERM") == "1"
    if ignore_term:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # inherited by the child across exec
    child_pid = None
    if os.environ.get("LYNX_E2E_CHILD") == "1":
        child_pid = subprocess.Popen(["sleep", "600"]).pid
    if ignore_term:
        signal.signal(signal.SIGTERM, lambda signum, frame: record(path, "sigterm"))
    record(path, "start", attempt=attempt, pgid=os.getpgid(0), child_pid=child_pid)
    print(f"probe_scenario: job={os.environ.get('LYNX_JOB_ID')} attempt={attempt}", flush=True)

    time.sleep(float(os.environ.get("LYNX_E2E_SLEEP_SECS", "0")))

    ok = attempt > int(os.environ.get("LYNX_E2E_FAIL_ATTEMPTS", "0"))
    if child_pid is not None:
        os.kill(child_pid, signal.SIGKILL)
        os.waitpid(child_pid, 0)
    record(path, "end", attempt=attempt, ok=ok)
    if not ok:
        print(f"probe_scenario: attempt {attempt} fails on purpose", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""A scenario that streams telemetry with the real client and records when it sent what, so a
test can time the runner's watchdog against it.

It imports lynx_telemetry_client with no install step: the runner puts the client's directory
first on PYTHONPATH. Environment (set on the runner; scenarios inherit it):

  LYNX_E2E_STATE_DIR   directory for <LYNX_JOB_ID>.json (written atomically):
                       {"frames": [{"seq", "wall_time", "values"}], "stopped_at": index or null,
                        "pid", "url": TETRYX_TELEMETRY_URL, "pythonpath": PYTHONPATH}
  LYNX_E2E_FRAMES      JSON list of value maps, sent in order, one frame each
  LYNX_E2E_STEP_SECS   pause after each frame (default 0.05)
  LYNX_E2E_STOP_AT     index of the crossing frame: the scenario records the wall-clock time
                       just before sending it, sends it, stops and waits (60 s) to be killed

Without LYNX_E2E_STOP_AT it sends every frame and exits 0.
"""

import json
import os
import sys
import time
from pathlib import Path

from lynx_telemetry_client import telemetry_client_from_env


def record(state, path):
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state))
    tmp.rename(path)


def main():
    path = Path(os.environ["LYNX_E2E_STATE_DIR"]) / f"{os.environ['LYNX_JOB_ID']}.json"
    frames = json.loads(os.environ["LYNX_E2E_FRAMES"])
    step_secs = float(os.environ.get("LYNX_E2E_STEP_SECS", "0.05"))
    stop_at = os.environ.get("LYNX_E2E_STOP_AT")
    stop_at = int(stop_at) if stop_at else None
    state = {"frames": [], "stopped_at": None, "pid": os.getpid(),
             "url": os.environ.get("TETRYX_TELEMETRY_URL"),
             "pythonpath": os.environ.get("PYTHONPATH")}
    client = telemetry_client_from_env()
    if not client.active:
        print(f"telemetry_scenario: no telemetry ({client!r})", file=sys.stderr)
        return 2
    for index, values in enumerate(frames):
        state["frames"].append({"seq": client.seq, "wall_time": time.time(), "values": values})
        if index == stop_at:
            #  Recorded before it is sent: the kill may follow the send within a millisecond.
            state["stopped_at"] = index
            record(state, path)
        if not client.send(values):
            print(f"telemetry_scenario: frame {index} dropped", file=sys.stderr)
            return 3
        if index == stop_at:
            time.sleep(60)  # the runner's watchdog kills us long before
            return 4
        time.sleep(step_secs)
    client.close()
    record(state, path)
    return 0


if __name__ == "__main__":
    sys.exit(main())

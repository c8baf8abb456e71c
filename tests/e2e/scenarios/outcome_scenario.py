#!/usr/bin/python3
"""A scenario whose outcome depends on its run_id, so one batch can end its jobs in different
ways.

LYNX_E2E_OUTCOMES (inherited from the runner's environment) lists one outcome per run_id,
comma-separated, the last one repeating for higher run_ids (default "ok"):
  ok     exit 0
  fail   write "outcome_scenario: run N fails on purpose" to stderr and exit 3
  sleep  sleep 600 s (until the runner's timeout or a cancel kills it)
"""

import json
import os
import sys
import time
from pathlib import Path


def main():
    run_id = json.loads(Path(os.environ["TETRYX_RUN_CONFIG"]).read_text())["run_id"]
    outcomes = os.environ.get("LYNX_E2E_OUTCOMES", "ok").split(",")
    outcome = outcomes[min(run_id, len(outcomes) - 1)].strip()
    print(f"outcome_scenario: run {run_id}: {outcome}", flush=True)
    if outcome == "fail":
        print(f"outcome_scenario: run {run_id} fails on purpose", file=sys.stderr, flush=True)
        return 3
    if outcome == "sleep":
        time.sleep(600)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""A scenario that records what the runner gave it.

Reads the run config named by TETRYX_RUN_CONFIG and writes TETRYX_OUTPUT_DIR/summary.json with
that config, the working directory and every TETRYX_* variable it saw, so a test can check
the runner's side of the scenario contract (tutorial-basic-orbit.txt). Exits 0.
"""

import json
import os
import sys
from pathlib import Path


def main():
    config_path = os.environ["TETRYX_RUN_CONFIG"]
    run_config = json.loads(Path(config_path).read_text())
    env = {key: value for key, value in os.environ.items() if key.startswith("TETRYX_")}
    env["cwd"] = os.getcwd()
    summary = {"run_config": run_config, "env": env, "argv": sys.argv, "success": True}
    output_dir = Path(os.environ["TETRYX_OUTPUT_DIR"])
    (output_dir / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True))
    print(f"summary_scenario: run_id={run_config.get('run_id')} wrote summary.json", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

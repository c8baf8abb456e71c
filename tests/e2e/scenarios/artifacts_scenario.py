#!/usr/bin/python3
"""A scenario that leaves the kinds of output a real one does, and some it must not ship.

In TETRYX_OUTPUT_DIR it writes summary.json (with its run_id), plots/data.bin
(LYNX_E2E_ARTIFACT_BYTES pseudo-random bytes, default 300000, seeded by the run_id), a
symbolic link passwd -> /etc/passwd and a FIFO named pipe; it prints three lines to stdout
and two to stderr. What it wrote, with each file's SHA-256, goes to
LYNX_E2E_STATE_DIR/<LYNX_JOB_ID>.json so a test can check what the broker serves against what
the scenario saw. Exits 0 (LYNX_E2E_EXIT sets another status).
"""

import hashlib
import json
import os
import random
import sys
from pathlib import Path


def main():
    run_config = json.loads(Path(os.environ["TETRYX_RUN_CONFIG"]).read_text())
    run_id = run_config.get("run_id", 0)
    out = Path(os.environ["TETRYX_OUTPUT_DIR"])
    size = int(os.environ.get("LYNX_E2E_ARTIFACT_BYTES", "300000"))
    rng = random.Random(run_id)
    (out / "plots").mkdir(exist_ok=True)
    data_digest = hashlib.sha256()
    with open(out / "plots" / "data.bin", "wb") as data_file:  # in blocks: any size
        left = size
        while left:
            block = rng.randbytes(min(left, 1 << 20))
            data_file.write(block)
            data_digest.update(block)
            left -= len(block)
    summary = json.dumps({"run_id": run_id, "success": True}).encode()
    (out / "summary.json").write_bytes(summary)
    os.symlink("/etc/passwd", out / "passwd")
    os.mkfifo(out / "pipe")
    for line in ("first line", "second line", f"run {run_id} done"):
        print(line, flush=True)
    print("warning: one", file=sys.stderr, flush=True)
    print("warning: two", file=sys.stderr, flush=True)
    state = os.environ.get("LYNX_E2E_STATE_DIR")
    if state:
        wrote = {"summary.json": hashlib.sha256(summary).hexdigest(),
                 "plots/data.bin": data_digest.hexdigest(),
                 "output_dir": str(out)}
        Path(state, f"{os.environ['LYNX_JOB_ID']}.json").write_text(json.dumps(wrote))
    return int(os.environ.get("LYNX_E2E_EXIT", "0"))


if __name__ == "__main__":
    sys.exit(main())

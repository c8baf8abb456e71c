#!/usr/bin/python3
"""POST /jobs latency through the real gateway and broker, for studies of 10,000 and 100,000
runs (7 dimensions, Latin hypercube). Starts its own broker and gateway on free loopback ports
with a temporary data dir, measures each size a few times, prints the figures, stops both.

    bench/post_jobs_bench.py BUILD_DIR [REPEATS]
"""
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))


def start(command, log):
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, text=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if line.startswith("READY"):
            return process, dict(item.split("=", 1) for item in line.split()[1:])
        if not line and process.poll() is not None:
            break
    raise SystemExit(f"{command[0]} did not start; see {log.name}")


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else "build"
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    with open(os.path.join(HERE, "..", "tests", "e2e", "configs",
                           "tutorial_basic_orbit_batch.json")) as source:
        body = json.load(source)
    work = tempfile.mkdtemp(prefix="lynx-bench-")
    log = open(os.path.join(work, "processes.log"), "w")
    broker, ends = start([os.path.join(build, "lynx-broker"), "--data-dir", work + "/data",
                          "--runner-endpoint", "tcp://127.0.0.1:*",
                          "--api-endpoint", "tcp://127.0.0.1:*"], log)
    gateway, urls = start([os.path.join(build, "lynx-gateway"), "--listen", "127.0.0.1:0",
                           "--broker", ends["api_endpoint"],
                           "--broker-timeout-ms", "60000"], log)
    # Security on, as by default: an admin token for the POSTs.
    token = subprocess.run([os.path.join(build, "lynx-broker"), "token", "create", "--data-dir",
                            work + "/data", "--name", "bench", "--role", "admin"],
                           capture_output=True, text=True, check=True).stdout.strip()
    try:
        for runs in (10_000, 100_000):
            body["runs_override"] = runs
            data = json.dumps(body).encode()
            timings = []
            for _ in range(repeats):
                request = urllib.request.Request(urls["url"] + "/jobs", data=data,
                                                 headers={"content-type": "application/json",
                                                          "Authorization": f"Bearer {token}"})
                start_time = time.perf_counter()
                with urllib.request.urlopen(request, timeout=120) as reply:
                    answer = json.load(reply)
                timings.append(time.perf_counter() - start_time)
                assert answer["total_jobs"] == runs, answer
            print(f"post_jobs runs={runs} dims=7 method=latin_hypercube "
                  f"best_ms={min(timings) * 1e3:.0f} median_ms={sorted(timings)[len(timings) // 2] * 1e3:.0f} "
                  f"repeats={repeats}")
        print(f"broker peak_rss_mb={rss_mb(broker.pid):.1f}")
    finally:
        for process in (gateway, broker):
            process.terminate()
            process.wait(timeout=10)


if __name__ == "__main__":
    main()

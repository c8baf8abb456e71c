#!/usr/bin/python3
"""Artifact transfer: runner -> broker -> gateway on loopback, with each process's memory.

Starts a broker, a gateway and one lynx-runner (the command engine running /bin/sh) on free
loopback ports, then two one-job batches:

  big    the scenario writes one file of --big-mib MiB (default 1024) of pseudo-random bytes
  small  the scenario writes --small-files files (default 10,000) of 1 KiB in 100 directories

For each it prints, as key=value lines: the transfer rate from the runner to the broker (the
seconds from the scenario's own end, which it records, to the job being Completed: the broker
reports a job ended only once its files are on disk), the download rate of the same bytes
through the gateway (GET /jobs/{id}/artifacts/{name}, one keep-alive connection, each body
hashed and checked against the listed sha256), and each process's peak RSS (VmHWM) with its
growth over the RSS it had before the batch. Every process it starts is stopped by PID.

    bench/artifact_transfer_bench.py [BUILD_DIR] [--big-mib N] [--small-files N] [--keep]
"""
import argparse
import hashlib
import http.client
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from runner_pool_bench import Stack, _raise_exit, auth_headers, enroll_runner, secure  # noqa: E402
from runner_pool_bench import http as http_json  # noqa: E402

POLL_SECS = 0.02

BIG_SCRIPT = ('head -c $((LYNX_BENCH_MIB * 1048576)) /dev/urandom > "$TETRYX_OUTPUT_DIR/big.bin"'
              ' && date +%s.%N > "$TETRYX_OUTPUT_DIR/ended"')
SMALL_SCRIPT = ('cd "$TETRYX_OUTPUT_DIR" && head -c 1024 /dev/urandom > seed && '
                'i=0; while [ $i -lt $LYNX_BENCH_FILES ]; do d=d$((i % 100)); mkdir -p $d; '
                'cp seed $d/f$i; i=$((i + 1)); done; rm seed; date +%s.%N > ended')


def rss_kib(pid, field):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def batch_body(name):
    uniform = {"distribution": {"type": "uniform", "min": 1.0, "max": 2.0}}
    config = {"simulation": {"name": name},
              "monte_carlo": {"runs": 1, "seed": 1, "sampling_method": "monte_carlo"},
              "dispersions": {"x": uniform},
              "compute": {"engine": "command", "job_timeout_seconds": 3600},
              "artifacts": {"max_file_bytes": 8 << 30, "max_job_bytes": 16 << 30}}
    return {"name": name, "config": config}


def download_all(url, job_id, artifacts):
    """GET every artifact over one connection; (bytes, seconds). Checks each sha256."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=600)
    total, started = 0, time.perf_counter()
    for artifact in artifacts:
        connection.request("GET", urllib.parse.quote(artifact["url"]), headers=auth_headers())
        response = connection.getresponse()
        digest = hashlib.sha256()
        while True:
            block = response.read(1 << 20)
            if not block:
                break
            digest.update(block)
            total += len(block)
        if response.status != 200 or digest.hexdigest() != artifact["sha256"]:
            raise SystemExit(f"artifact_transfer_bench: {artifact['name']} of {job_id}: "
                             f"status {response.status}, sha256 mismatch or short body")
    connection.close()
    return total, time.perf_counter() - started


def run_case(url, pids, name):
    before = {who: rss_kib(pid, "VmRSS") for who, pid in pids.items()}
    body = batch_body(name)
    batch_id = http_json("POST", url + "/jobs", body)["batch_id"]
    while True:
        batch = http_json("GET", f"{url}/batches/{batch_id}")["batch"]
        if batch["status"] in ("Completed", "Failed", "Cancelled"):
            completed = time.time()
            break
        time.sleep(POLL_SECS)
    if batch["status"] != "Completed":
        raise SystemExit(f"artifact_transfer_bench: {name} batch ended {batch['status']}")
    job = http_json("GET", f"{url}/batches/{batch_id}/jobs")["jobs"][0]
    listing = http_json("GET", f"{url}/jobs/{job['id']}/artifacts")
    data = [a for a in listing["artifacts"] if a["name"] not in ("stdout.log", "stderr.log")]
    ended = [a for a in data if a["name"] == "ended"][0]
    scenario_end = float(download_one(url, ended))
    payload = sum(a["size"] for a in data)
    transfer_secs = completed - scenario_end
    got, download_secs = download_all(url, job["id"], data)
    assert got == payload, (got, payload)
    mib = payload / (1 << 20)
    print(f"{name}_files={len(data)}\n{name}_mib={mib:.1f}")
    print(f"{name}_runner_to_broker_secs={transfer_secs:.2f}\n"
          f"{name}_runner_to_broker_mb_per_sec={payload / 1e6 / transfer_secs:.0f}")
    print(f"{name}_gateway_download_secs={download_secs:.2f}\n"
          f"{name}_gateway_download_mb_per_sec={payload / 1e6 / download_secs:.0f}")
    for who, pid in pids.items():
        peak = rss_kib(pid, "VmHWM")
        print(f"{name}_{who}_peak_rss_mib={peak / 1024:.1f}\n"
              f"{name}_{who}_rss_growth_mib={(peak - before[who]) / 1024:.1f}")


def download_one(url, artifact):
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    connection.request("GET", urllib.parse.quote(artifact["url"]), headers=auth_headers())
    text = connection.getresponse().read().decode()
    connection.close()
    return text


def start_case(work, build, name):
    """A broker, a gateway and a runner whose scenario is the case's script."""
    case = Stack(os.path.join(work, name))
    os.makedirs(os.path.join(case.work, "work"), exist_ok=True)
    broker = case.start("broker", [
        os.path.join(build, "lynx-broker"), "--data-dir", os.path.join(case.work, "data"),
        "--runner-endpoint", "tcp://127.0.0.1:*", "--api-endpoint", "tcp://127.0.0.1:*"])
    gateway = case.start("gateway", [
        os.path.join(build, "lynx-gateway"), "--listen", "127.0.0.1:0",
        "--broker", broker["api_endpoint"]])
    data_dir = os.path.join(case.work, "data")
    secure(build, data_dir)
    config = os.path.join(case.work, "runner.yaml")
    with open(config, "w") as out:
        out.write(f"runner_id: bench-{name}\nbroker_endpoint: {broker['runner_endpoint']}\n"
                  "engines: [command]\ncommand_executable: /bin/sh\n"
                  "command_args: [-c, 'eval \"$LYNX_BENCH_SCRIPT\"']\n"
                  f"working_directory: {case.work}/work\noutput_root: {case.work}/runs\n" +
                  enroll_runner(build, data_dir, case.work, f"bench-{name}"))
    case.start("runner", [os.path.join(build, "lynx-runner"), "--config", config])
    return case, gateway["url"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("build", nargs="?", default="build-release")
    parser.add_argument("--big-mib", type=int, default=1024)
    parser.add_argument("--small-files", type=int, default=10000)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _raise_exit)
    work = tempfile.mkdtemp(prefix="lynx-artifact-bench-")
    cases = (("big", BIG_SCRIPT, {"LYNX_BENCH_MIB": str(args.big_mib)}),
             ("small", SMALL_SCRIPT, {"LYNX_BENCH_FILES": str(args.small_files)}))
    case, ok = None, False
    try:
        for name, script, env in cases:
            #  The runner passes its environment on to the scenario: the script rides on it.
            os.environ.update(env, LYNX_BENCH_SCRIPT=script)
            case, url = start_case(work, args.build, name)
            pids = {who: process.pid for who, process in case.processes}
            run_case(url, pids, name)
            case.stop()
            shutil.rmtree(case.work, ignore_errors=True)
        ok = True
    finally:
        if case:
            case.stop()
        if ok and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"artifact_transfer_bench: logs and data kept in {work}", file=sys.stderr)
    sys.stdout.flush()


if __name__ == "__main__":
    main()

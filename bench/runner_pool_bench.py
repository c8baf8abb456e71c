#!/usr/bin/python3
"""End-to-end job throughput of the runner pool against xargs and GNU parallel.

Starts a broker, a gateway and lynx-runner processes (the generic `command` engine running
/bin/true, 2 slots by default) on free loopback ports with temporary directories, submits one
batch of N jobs with POST /jobs and times it from the submit to the batch being Completed
(GET /batches/{id} polled every 50 ms). Then runs the same N /bin/true processes with
`seq N | xargs -P2 -n1 /bin/true` and `seq N | parallel -j2 /bin/true`, and prints jobs per
second for each and the ratios, as key=value lines on stdout. Every process it starts is
stopped by PID, whatever happens. Exits 1 if the batch does not complete.

    bench/runner_pool_bench.py [BUILD_DIR] [--jobs N] [--runners R] [--slots S]
                               [--timeout-secs T] [--keep]
"""
import argparse
import ctypes
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

POLL_INTERVAL_SECS = 0.05
READY_TIMEOUT_SECS = 15
STOP_TIMEOUT_SECS = 10
_PR_SET_PDEATHSIG = 1
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _die_with_parent():
    #  If this script is killed outright, its children go with it.
    try:
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _raise_exit(signum, frame):
    raise SystemExit(128 + signum)


class Stack:
    """The processes this run started; stop() ends each by PID."""

    def __init__(self, work):
        self.work = work
        self.processes = []  # (name, Popen)

    def start(self, name, argv):
        """Start argv and wait for its READY line; returns the line's key=value fields."""
        log = open(os.path.join(self.work, f"{name}.stderr"), "w")
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=log, preexec_fn=_die_with_parent)
        log.close()
        self.processes.append((name, process))
        deadline = time.monotonic() + READY_TIMEOUT_SECS
        buffered = b""
        while time.monotonic() < deadline:
            readable, _, _ = select.select([process.stdout], [], [], POLL_INTERVAL_SECS)
            chunk = os.read(process.stdout.fileno(), 4096) if readable else b""
            buffered += chunk
            for line in buffered.decode(errors="replace").splitlines():
                if line.startswith("READY"):
                    return dict(item.split("=", 1) for item in line.split()[1:] if "=" in item)
            if readable and not chunk:  # end of file: it exited
                break
        raise SystemExit(f"runner_pool_bench: {name} printed no READY line "
                         f"(status {process.poll()}); see {log.name}")

    def cpu_secs(self, name):
        """User + system CPU time of a running process, from /proc."""
        for each, process in self.processes:
            if each == name and process.poll() is None:
                with open(f"/proc/{process.pid}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
                return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return 0.0

    def stop(self):
        for _, process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT_SECS
        for name, process in reversed(self.processes):
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                print(f"runner_pool_bench: {name} pid={process.pid} ignored SIGTERM; killing",
                      file=sys.stderr)
                process.kill()
                process.wait()


def secure(build, data_dir):
    """Security as by default: an admin API token for this run's HTTP calls (LYNX_TOKEN)."""
    done = subprocess.run([os.path.join(build, "lynx-broker"), "token", "create", "--data-dir",
                           data_dir, "--name", "bench", "--role", "admin"],
                          capture_output=True, text=True, check=True)
    os.environ["LYNX_TOKEN"] = done.stdout.strip()


def enroll_runner(build, data_dir, base, runner_id):
    """The runner's keypair (lynx-runner --init-keys), enrolled by copying its public file into
    the broker's keys/runners/. The YAML lines that point the runner at it."""
    key_file = os.path.join(base, "keys", "runner.key")
    subprocess.run([os.path.join(build, "lynx-runner"), "--init-keys", "--key-file", key_file,
                    "--engines", "command", "--command-executable", "/bin/true"],
                   capture_output=True, check=True)
    allowed = os.path.join(data_dir, "keys", "runners")
    shutil.copyfile(key_file, os.path.join(allowed, f".{runner_id}.tmp"))
    os.replace(os.path.join(allowed, f".{runner_id}.tmp"), os.path.join(allowed, f"{runner_id}.key"))
    return (f"key_file: {key_file}\n"
            f"broker_public_key: {os.path.join(data_dir, 'keys', 'broker.key')}\n")


def auth_headers():
    token = os.environ.get("LYNX_TOKEN")
    return {"Authorization": f"Bearer {token}"} if token else {}


def http(method, url, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"content-type": "application/json", **auth_headers()})
    with _OPENER.open(request, timeout=120) as reply:
        return json.load(reply)


def batch_body(jobs):
    uniform = lambda low, high: {"distribution": {"type": "uniform", "min": low, "max": high}}
    config = {
        "simulation": {"name": "runner-pool-bench"},
        "monte_carlo": {"runs": jobs, "seed": 42, "sampling_method": "monte_carlo"},
        "dispersions": {"mass_kg": uniform(90.0, 110.0),
                        "drag_coefficient": uniform(2.0, 2.4)},
        "compute": {"engine": "command", "job_timeout_seconds": 60},
    }
    return {"name": "runner-pool-bench", "config": config, "runs_override": jobs}


def run_lynx(stack, build, args):
    """Seconds from POST /jobs to the batch being Completed, and the submit time alone."""
    work = stack.work
    broker = stack.start("broker", [
        os.path.join(build, "lynx-broker"), "--data-dir", os.path.join(work, "data"),
        "--runner-endpoint", "tcp://127.0.0.1:*", "--api-endpoint", "tcp://127.0.0.1:*"])
    gateway = stack.start("gateway", [
        os.path.join(build, "lynx-gateway"), "--listen", "127.0.0.1:0",
        "--broker", broker["api_endpoint"]])
    secure(build, os.path.join(work, "data"))
    for index in range(args.runners):
        base = os.path.join(work, f"runner-{index}")
        os.makedirs(os.path.join(base, "work"))
        config = os.path.join(base, "runner.yaml")
        with open(config, "w") as out:
            out.write(f"runner_id: bench-{index}\n"
                      f"broker_endpoint: {broker['runner_endpoint']}\n"
                      "engines:\n  - command\n"
                      "command_executable: /bin/true\n"
                      f"max_concurrent_jobs: {args.slots}\n"
                      f"working_directory: {base}/work\n"
                      f"output_root: {base}/runs\n" +
                      enroll_runner(build, os.path.join(work, "data"), base, f"bench-{index}"))
        stack.start(f"runner-{index}", [os.path.join(build, "lynx-runner"), "--config", config])
    url = gateway["url"]
    started = time.perf_counter()
    batch_id = http("POST", url + "/jobs", batch_body(args.jobs))["batch_id"]
    submitted = time.perf_counter()
    deadline = started + args.timeout_secs
    while True:
        batch = http("GET", f"{url}/batches/{batch_id}")["batch"]
        if batch["status"] in ("Completed", "Failed", "Cancelled"):
            break
        if time.perf_counter() > deadline:
            raise SystemExit(f"runner_pool_bench: batch {batch_id} still {batch['status']} "
                             f"after {args.timeout_secs} s ({batch['completed_jobs']} done)")
        time.sleep(POLL_INTERVAL_SECS)
    elapsed = time.perf_counter() - started
    if batch["status"] != "Completed" or batch["completed_jobs"] != args.jobs:
        raise SystemExit(f"runner_pool_bench: batch {batch_id} ended {batch['status']} with "
                         f"{batch['completed_jobs']}/{args.jobs} completed; logs in {work}")
    cpu = {name: stack.cpu_secs(name) for name in ("broker", "gateway")}
    cpu["runners"] = sum(stack.cpu_secs(f"runner-{i}") for i in range(args.runners))
    return elapsed, submitted - started, cpu


def run_shell(command):
    started = time.perf_counter()
    subprocess.run(["bash", "-c", command], check=True, stdin=subprocess.DEVNULL)
    return time.perf_counter() - started


def gnu_parallel():
    """Path of GNU parallel (not moreutils' parallel), or None."""
    path = shutil.which("parallel")
    if not path:
        return None
    probe = subprocess.run([path, "--version"], capture_output=True, text=True,
                           stdin=subprocess.DEVNULL)
    return path if "GNU parallel" in probe.stdout else None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("build", nargs="?", default="build-release")
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--runners", type=int, default=1)
    parser.add_argument("--slots", type=int, default=2, help="max_concurrent_jobs per runner")
    parser.add_argument("--timeout-secs", type=float, default=600)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _raise_exit)
    work = tempfile.mkdtemp(prefix="lynx-runner-pool-")
    stack = Stack(work)
    ok = False
    try:
        lynx_secs, submit_secs, cpu = run_lynx(stack, args.build, args)
        stack.stop()
        jobs, parallelism = args.jobs, args.runners * args.slots
        lynx_rate = jobs / lynx_secs
        print(f"jobs={jobs}\nrunners={args.runners}\nslots_per_runner={args.slots}")
        print(f"lynx_secs={lynx_secs:.3f}\nlynx_submit_secs={submit_secs:.3f}")
        print(f"lynx_jobs_per_sec={lynx_rate:.0f}")
        print(f"lynx_cpu_secs_broker={cpu['broker']:.2f}\n"
              f"lynx_cpu_secs_gateway={cpu['gateway']:.2f}\n"
              f"lynx_cpu_secs_runners={cpu['runners']:.2f}")
        xargs_secs = run_shell(f"seq {jobs} | xargs -P{parallelism} -n1 /bin/true")
        print(f"xargs_secs={xargs_secs:.3f}\nxargs_jobs_per_sec={jobs / xargs_secs:.0f}")
        print(f"lynx_over_xargs={lynx_rate / (jobs / xargs_secs):.2f}")
        parallel = gnu_parallel()
        if parallel:
            parallel_secs = run_shell(f"seq {jobs} | {parallel} -j{parallelism} /bin/true")
            print(f"parallel_secs={parallel_secs:.3f}\n"
                  f"parallel_jobs_per_sec={jobs / parallel_secs:.0f}")
            print(f"lynx_over_parallel={lynx_rate / (jobs / parallel_secs):.2f}")
        else:
            print("parallel=missing")
            print("runner_pool_bench: GNU parallel is not installed; add the Debian package "
                  "'parallel' to scripts/bootstrap", file=sys.stderr)
        ok = True
    finally:
        stack.stop()
        if ok and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"runner_pool_bench: logs and data kept in {work}", file=sys.stderr)
    sys.stdout.flush()


if __name__ == "__main__":
    main()

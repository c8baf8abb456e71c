#!/usr/bin/python3
"""Write the fuzz targets' seed corpora, tests/data/fuzz/<target>/, from the repo's golden
files (tests/data, examples, configs, tests/e2e/configs, the docs' examples) and frames built
to the codec's schema (proto/lynx_msg.c). Run from anywhere; rewrites only the seed-* files it
makes, so crashers added by hand (crash-*, anything else) stay. Keep the result small: tens of
files per target."""
import copy
import glob
import json
import math
import os
import struct

import msgpack
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "data", "fuzz")


def src(*parts):
    return os.path.join(ROOT, *parts)


def write(target, name, data):
    directory = os.path.join(OUT, target)
    os.makedirs(directory, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(directory, "seed-" + name), "wb") as f:
        f.write(data)


def clear(target):
    for path in glob.glob(os.path.join(OUT, target, "seed-*")):
        os.remove(path)


def frame(command, body, version=1):
    return msgpack.packb(["LYNX", version, command, body], use_bin_type=True)


# --- msg: every command once, plus the golden bad frames --------------------------------
FRAMES = {
    "REGISTER": {"runner_id": "ws-07", "name": "ws-07", "capabilities": {"cpu_cores": 8,
                 "gpu": False}, "engines": ["basilisk", "command"], "active_jobs": [],
                 "finished_jobs": [{"job_id": "j1", "attempt": 2}], "hostname": "ws",
                 "pid": 4242, "heartbeat_interval_ms": 2000},
    "REGISTERED": {"runner_id": "ws-07", "heartbeat_interval_ms": 2000, "events_port": 5556},
    "HEARTBEAT": {"runner_id": "ws-07", "active_jobs": 1},
    "ASSIGN": {"job_id": "j1", "batch_id": "b1", "attempt": 1, "engine": "basilisk",
               "timeout_secs": 3600, "run_config": {"parameters": {"mass_kg": 2500.5,
               "attitude": "nadir"}, "run_id": 3}, "artifacts": {"collect": ["*.csv"]}},
    "STARTED": {"job_id": "j1", "attempt": 1, "pid": 99},
    "FINISHED": {"job_id": "j1", "attempt": 1, "status": "Completed", "result": {"outputs":
                 {"apoapsis_km": 7000.25}, "nested": [[1, [2, [3]]]]}, "retryable": False,
                 "exit_code": 0, "exit_signal": 0, "artifacts": {"files": []}},
    "ACK": {"job_id": "j1", "attempt": 1},
    "KILL": {"job_id": "j1", "attempt": 1, "reason": "cancelled"},
    "REQUEST": {"corr": 7, "op": "batch.get", "args": {"batch_id": "b1"},
                "deadline_ms": 1717000000000, "idempotency_key": "k-1"},
    "REPLY": {"corr": 7, "body": {"total_jobs": 10, "seed": 18446744073709551615}},
    "ERROR": {"code": "INVALID", "message": "bad", "corr": 7, "field": "config",
              "errors": [{"field": "config.x", "message": "required"}]},
    "TELEMETRY": {"seq": 0, "timestamp_ns": 1000000, "values": {"x": 1.5, "ok": True, "n": -3},
                  "job_id": "j1", "batch_id": "b1", "dropped": 0},
    "PING": {"nonce": 12},
    "PONG": {"nonce": 12, "version": "0.1.0"},
    "DISCONNECT": {"runner_id": "ws-07", "reason": "SIGTERM"},
    "FETCH": {"job_id": "j1", "attempt": 1, "name": "out.csv", "offset": 0, "length": 1048576},
    "CHUNK": {"job_id": "j1", "attempt": 1, "name": "out.csv", "offset": 0, "data": "a,b\n1,2\n",
              "eof": True, "sha256": "00" * 32},
}


def seeds_msg():
    clear("msg")
    for command, body in FRAMES.items():
        write("msg", command.lower(), frame(command, body))
    write("msg", "float32-and-extremes", frame("REPLY", {"corr": -9223372036854775808, "body": [
        struct.unpack(">f", b"\x3f\xc0\x00\x00")[0], float("nan"), float("-inf"), -0.0, None,
        "", {"": ""}]}))
    write("msg", "unknown-command", frame("LAUNCH", {}))
    write("msg", "version-2", frame("PING", {}, version=2))
    for path in sorted(glob.glob(src("tests", "data", "frames", "*.frame"))):
        hexes = [line[4:] for line in open(path) if line.startswith("hex:")]
        write("msg", "golden-" + os.path.basename(path)[:-6],
              bytes.fromhex(" ".join(hexes)))


# --- batch_config and batch_yaml: POST /jobs bodies -------------------------------------
def load_json(*parts):
    with open(src(*parts)) as f:
        return json.load(f)


def small(body, runs=8):
    """The body with few runs, so the fuzz target samples it."""
    body = copy.deepcopy(body)
    body["config"].setdefault("monte_carlo", {})["runs"] = runs
    return body


DOC_DISPERSIONS = {
    "mass_kg": {"distribution": {"type": "normal", "mean": 2500, "std_dev": 125}, "units": "kg"},
    "cd": {"distribution": {"type": "truncated_normal", "mean": 2.2, "std_dev": 0.1, "min": 2.0,
                            "max": 2.5}},
    "tail": {"distribution": {"type": "truncated_normal", "mean": 0, "std_dev": 1, "min": 30,
                              "max": 37}},
    "wind_m_s": {"distribution": {"type": "lognormal", "mean": 6.0, "std_dev": 2.0}},
    "lm": {"distribution": {"type": "lognormal", "mu": 0.5, "sigma": 0.2}},
    "tri": {"distribution": {"type": "triangular", "min": 1, "mode": 2, "max": 4}},
    "ex": {"distribution": {"type": "exponential", "rate": 2}},
    "be": {"distribution": {"type": "beta", "alpha": 2, "beta": 5, "min": 10, "max": 20}},
    "u": {"distribution": {"type": "uniform", "min": -3, "max": 10}},
    "attitude": {"distribution": {"type": "choice", "values": ["nadir", "sun", 7],
                                  "weights": [3, 1, 1]}},
    "engine_build": {"distribution": {"type": "constant", "value": "v2.1"}},
}


def every_distribution(method, **monte_carlo):
    return {"name": "doc-" + method, "config": {
        "simulation": {"name": "Doc", "version": "1", "duration_minutes": 10},
        "monte_carlo": dict({"runs": 16, "sampling_method": method, "seed": 42}, **monte_carlo),
        "dispersions": DOC_DISPERSIONS,
        "correlations": [{"a": "mass_kg", "b": "cd", "rank_correlation": 0.4},
                         {"a": "u", "b": "ex", "rank_correlation": -0.3}],
        "compute": {"engine": "command", "required_capabilities": ["gpu"], "gpu": True,
                    "priority": 4, "max_retries": 0},
        "artifacts": {"collect": ["*.csv"], "max_file_bytes": 1024}}}


def patched(base, patches, nan_ok):
    """Apply a tests/data/study/bad patch list (see its README) to base's config."""
    body = copy.deepcopy(base)
    numbers = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}

    def walk(path, create):
        node = body["config"]
        keys = path.split(".")
        for key in keys[:-1]:
            if not isinstance(node, dict):
                return None, None
            if key not in node and create:
                node[key] = {}
            node = node.get(key)
        return (node, keys[-1]) if isinstance(node, dict) else (None, None)

    for patch in patches:
        if "remove" in patch:
            node, key = walk(patch["remove"], False)
            if node is not None:
                node.pop(key, None)
        elif "copy" in patch:
            source, skey = walk(patch["from"], False)
            node, key = walk(patch["copy"], True)
            if node is not None and source is not None and skey in source:
                node[key] = copy.deepcopy(source[skey])
        else:
            if "number" in patch and not nan_ok:
                return None
            node, key = walk(patch["set"], True)
            if node is not None:
                node[key] = numbers[patch["number"]] if "number" in patch else patch["value"]
    return body


def study_bodies(nan_ok):
    spacecraft = small(load_json("tests", "e2e", "configs", "spacecraft_analysis_batch.json"))
    bodies = {
        "spacecraft": spacecraft,
        "tutorial": small(load_json("tests", "e2e", "configs", "tutorial_basic_orbit_batch.json")),
        "quickstart": small(load_json("examples", "quickstart", "batch.json")),
        "decaying-orbit": small(load_json("examples", "basic-orbit", "decaying_orbit.json")),
        "basic-orbit-c": small(load_json("examples", "basic-orbit", "basic_orbit_c.json")),
        "doc-monte-carlo": every_distribution("monte_carlo"),
        "doc-latin-hypercube": every_distribution("latin_hypercube"),
        "doc-sobol": every_distribution("quasi_monte_carlo"),
        "doc-sobol-scrambled": every_distribution("quasi_monte_carlo", scramble=True),
        "runs-override": dict(spacecraft, runs_override=3, submitted_by="ana@ws-07",
                              dry_run=True),
        "big-not-sampled": small(spacecraft, runs=10000000),
    }
    # Every other golden bad study (tens, not a hundred), patched onto the spacecraft body.
    for path in sorted(glob.glob(src("tests", "data", "study", "bad", "*.json")))[::2]:
        case = load_json(path)
        body = patched(spacecraft, case["patches"], nan_ok)
        if body is None:
            continue
        if "runs_override" in case:
            body["runs_override"] = case["runs_override"]
        bodies["bad-" + os.path.basename(path)[:-5]] = body
    return bodies


def seeds_batch_config():
    clear("batch_config")
    for name, body in study_bodies(nan_ok=False).items():
        write("batch_config", name + ".json", json.dumps(body, indent=1))
    write("batch_config", "not-an-object.json", "[1, 2]")
    write("batch_config", "submitted-by-control.json",
          json.dumps({"name": "x", "submitted_by": "a\u0007b", "config": {}}))


def seeds_batch_yaml():
    clear("batch_yaml")
    with open(src("examples", "basic-orbit", "basic_orbit_tutorial.yaml")) as f:
        tutorial = yaml.safe_load(f)
    write("batch_yaml", "basic-orbit-tutorial.yaml",
          open(src("examples", "basic-orbit", "basic_orbit_tutorial.yaml")).read())
    small_tutorial = small(tutorial) if "config" in tutorial else small({"config": tutorial})
    write("batch_yaml", "basic-orbit-small.yaml", yaml.safe_dump(small_tutorial))
    for name, body in list(study_bodies(nan_ok=True).items())[::2]:
        # Half as bare configs: the CLI wraps those and names them after the file.
        doc = body["config"] if name.startswith(("bad-a", "bad-c", "bad-t", "doc")) else body
        write("batch_yaml", name + ".yaml", yaml.safe_dump(doc, sort_keys=False))
    write("batch_yaml", "flow-style.yaml",
          "{name: flow, config: {simulation: {name: s}, monte_carlo: {runs: 2},"
          " dispersions: {m: {distribution: {type: uniform, min: 0x10, max: .inf}}}}}\n")
    write("batch_yaml", "scalar.yaml", "just a string\n")


# --- runner_config ------------------------------------------------------------------------
def seeds_runner_config():
    clear("runner_config")
    files = [src("configs", "lynx-runner-basilisk.yaml"), src("examples", "quickstart", "runner.yaml"),
             src("examples", "basic-orbit", "lynx-runner-basilisk.yaml"),
             src("examples", "basic-orbit", "lynx-runner-command.yaml")]
    for path in files:
        name = path[len(ROOT) + 1:].replace("/", "-")
        write("runner_config", name, open(path).read())
    command = open(files[-1]).read()
    write("runner_config", "with-flags", command + "\0--max-concurrent-jobs=4\0--engines\0"
          "command,basilisk\0--basilisk-entrypoint\0/x.py\0--keep-local-outputs=false\0"
          "--working-directory=../a/./b//c/..\0--check")
    write("runner_config", "every-field", yaml.safe_dump({
        "runner_id": "ws-07", "name": "Workstation 7", "broker_endpoint": "tcp://10.0.0.1:5555",
        "events_endpoint": "tcp://10.0.0.1:5556", "engines": "command, basilisk",
        "capabilities": ["gpu", "cuda"], "working_directory": "rel/../dir",
        "output_root": "/tmp/x/../y", "python_executable": "/usr/bin/python3",
        "basilisk_entrypoint": "run.py", "command_executable": "/bin/true",
        "command_args": ["--mass", "{mass_kg}", ""], "max_concurrent_jobs": 1024,
        "heartbeat_interval_secs": 0.25, "cpu_cores": 65536, "memory_gb": 1.5,
        "gpu_available": True, "keep_local_outputs": False, "clients_dir": None}))
    write("runner_config", "bad-types", "max_concurrent_jobs: '4'\nheartbeat_interval_secs: -1\n")
    write("runner_config", "unknown-field", "runner_id: a\nflavour: vanilla\n")
    write("runner_config", "help", "\0--help")
    write("runner_config", "env-style-flags", "\0--cpu-cores=0\0--memory-gb\0nan\0--name")
    write("runner_config", "list", "- a\n- b\n")


# --- rules --------------------------------------------------------------------------------
def seeds_rules():
    clear("rules")
    for path in sorted(glob.glob(src("tests", "data", "rules", "*.yaml")))[::2]:
        write("rules", "golden-" + os.path.basename(path), open(path).read())
    spacecraft = load_json("tests", "e2e", "configs", "spacecraft_analysis_batch.json")
    write("rules", "spacecraft.json", json.dumps(spacecraft["config"]["early_termination"]))
    tutorial = load_json("examples", "basic-orbit", "decaying_orbit.json")
    if "early_termination" in tutorial.get("config", {}):
        write("rules", "decaying-orbit.json", json.dumps(tutorial["config"]["early_termination"]))
    write("rules", "doc-forms.yaml", """\
enabled: true
check_frequency_hz: 10.0
conditions:
  - name: battery_low
    description: Battery critically low
    variable: battery_state_of_charge
    operator: lt
    threshold: 10.0
    units: percent
  - {variable: orbit.radius_km, condition: "< 6371", description: decayed}
  - {variable: x, condition: " >= -5 "}
  - {variable: y, condition: "!=+2.5E+2"}
  - {variable: z, condition: "==.5"}
  - {variable: w, condition: "<=1e-3"}
  - name: landing_abort
    description: Abort if low altitude and either unstable or poorly localized
    all:
      - {variable: altitude_m, operator: lt, threshold: 30.0, units: m}
      - any:
          - {variable: body_spin_rate_deg_s, operator: gt, threshold: 15.0, units: deg/s}
          - {variable: vio_tracking_quality, condition: "< 0.3"}
          - {variable: x, operator: neq, threshold: 0, units: m}
          - {variable: x, operator: eq, threshold: 1, units: m}
          - {variable: x, operator: gte, threshold: 1, units: m}
          - {variable: x, operator: lte, threshold: 1, units: m}
""")
    deep = "{variable: v, condition: '> 1'}"
    for _ in range(16):  # LYNX_RULES_DEPTH_MAX
        deep = "{all: [" + deep + ", {variable: u, condition: '< 0'}]}"
    write("rules", "deep.yaml", "conditions: [{name: deep, " + deep[1:] + "]\n")
    write("rules", "disabled.yaml", "enabled: false\nconditions: [{variable: x, condition: '<1'}]\n")
    write("rules", "null.yaml", "~\n")


# --- telemetry ----------------------------------------------------------------------------
def telemetry_record(dt_ms, data):
    return bytes([dt_ms]) + struct.pack(">H", len(data)) + data


def tframe(seq, t_ns, values, **extra):
    return frame("TELEMETRY", dict({"seq": seq, "timestamp_ns": t_ns, "values": values}, **extra))


def seeds_telemetry():
    clear("telemetry")
    ramp = [tframe(i, i * 50000000, {"x": 20 - 5 * i, "y": i % 2 == 1, "z": i, "w": 0.5 * i})
            for i in range(6)]
    for setup in range(5):
        write("telemetry", "ramp-setup%d" % setup,
              bytes([setup]) + b"".join(telemetry_record(30, f) for f in ramp))
    write("telemetry", "bad-frames", bytes([2]) + b"".join(telemetry_record(1, f) for f in [
        tframe(-1, 0, {"x": 1}), tframe(3, 0, {"x": "text"}), frame("PING", {}), b"\x94",
        tframe(2, -5, {"x": float("nan"), "y": None}), tframe(9, 10 ** 18, {}),
        tframe(9223372036854775807, -9223372036854775808, {"x": -1e308})]))
    many = {"v%d" % i: i for i in range(300)}
    many["x"] = -1
    write("telemetry", "many-variables", bytes([1]) + telemetry_record(0, tframe(0, 0, many)) +
          telemetry_record(200, tframe(5, 1, dict(reversed(list(many.items()))))))
    write("telemetry", "seq-back-clock-back", bytes([4]) + b"".join(
        telemetry_record(0, tframe(s, t, {"a": s, "b": 1})) for s, t in
        [(5, 100), (4, 50), (6, 10 ** 9), (100, 0)]))
    write("telemetry", "truncated-record", bytes([2]) + telemetry_record(0, ramp[0])[:20])


# --- http ---------------------------------------------------------------------------------
def request(method, target, headers=(), body=""):
    methods = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "get", ""]
    lines = [target] + ["%s: %s" % h for h in headers] + [""]
    return bytes([methods.index(method)]) + ("\n".join(lines) + "\n" + body).encode()


def seeds_http():
    clear("http")
    job = "01890a5d-ac96-774b-bcce-b302099a8057"
    spacecraft = json.dumps(small(load_json("tests", "e2e", "configs",
                                            "spacecraft_analysis_batch.json")))
    json_type = [("Content-Type", "application/json; charset=utf-8")]
    cases = {
        "healthz": request("GET", "/healthz"),
        "submit": request("POST", "/jobs", json_type + [("Idempotency-Key", "k-123")],
                          spacecraft),
        "submit-dry-run": request("POST", "/jobs?dry_run=true", json_type, '{"dry_run": false}'),
        "submit-dry-run-bad": request("POST", "/jobs?dry_run=yes", json_type, "{}"),
        "submit-bad-key": request("POST", "/jobs", json_type + [("idempotency-key", "a b")], "{}"),
        "submit-wrong-type": request("POST", "/jobs", [("Content-Type", "text/plain")], "{}"),
        "submit-bad-json": request("POST", "/jobs", json_type, '{"name": '),
        "submit-array": request("POST", "/jobs", json_type, "[]"),
        "batches": request("GET", "/batches?status=Running&cursor=abc&limit=10"),
        "batch": request("GET", "/batches/%s/" % job),
        "batch-results": request("GET", "/batches/%s/results" % job),
        "batch-jobs": request("GET", "/batches/%s/jobs?limit=5&status=" % job),
        "batch-cancel": request("POST", "/batches/%s/cancel" % job,
                                [("Idempotency-Key", "x" * 128)]),
        "batch-archive": request("GET", "/batches/%s/artifacts/plots/orbit.png" % job),
        "job": request("GET", "/jobs/%s" % job),
        "job-telemetry": request("GET", "/jobs/%s/telemetry?format=csv&variables=a,b" % job),
        "job-artifacts": request("GET", "/jobs/%s/artifacts" % job),
        "job-artifact": request("GET", "/jobs/%s/artifacts/a/b/c.txt" % job),
        "job-stdout": request("GET", "/jobs/%s/logs/stdout?tail=100" % job),
        "job-stderr": request("GET", "/jobs/%s/logs/stderr" % job),
        "job-cancel": request("POST", "/jobs/%s/cancel" % job),
        "runners": request("GET", "/runners"),
        "runner-drain": request("POST", "/runners/ws-07/drain", [("Idempotency-Key", "")]),
        "runner-resume": request("POST", "/runners/ws-07/resume"),
        "runner-wrong-method": request("DELETE", "/runners/ws-07"),
        "not-found": request("GET", "/nowhere"),
        "long-id": request("GET", "/jobs/" + "i" * 300),
        "long-name": request("GET", "/jobs/j/artifacts/" + "n" * 2100),
    }
    for name, data in cases.items():
        write("http", name, data)


if __name__ == "__main__":
    for make in (seeds_msg, seeds_batch_config, seeds_batch_yaml, seeds_runner_config,
                 seeds_rules, seeds_telemetry, seeds_http):
        make()
    for target in sorted(os.listdir(OUT)):
        files = glob.glob(os.path.join(OUT, target, "*"))
        print("%-14s %3d files %7d bytes" % (target, len(files),
                                              sum(os.path.getsize(f) for f in files)))

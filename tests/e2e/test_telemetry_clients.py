"""The scenario-side telemetry clients (clients/), as scenario processes use them.

The tests of the Python module (clients/python/test_lynx_telemetry_client.py) run here too, so
ctest runs them. Beyond those, each test below starts a real scenario process, the way the
runner does: TETRYX_TELEMETRY_URL points at a PULL socket the test binds on 127.0.0.1. The C
library is driven through ctypes from the build tree (LYNX_BIN_DIR), so both clients run the
same samples and must put the very same bytes on the wire.
"""

import json
import math
import os
import re
import socket
import subprocess
import sys

import msgpack
import pytest
import zmq

from lynx_harness import bin_dir, scaled, source_dir

PYTHON_CLIENT_DIR = source_dir() / "clients" / "python"
sys.path.insert(0, str(PYTHON_CLIENT_DIR))

from test_lynx_telemetry_client import *  # noqa: E402,F401,F403  (collected here for ctest)

ENV_URL = "TETRYX_TELEMETRY_URL"
RECV_TIMEOUT_MS = 10_000
#  A scenario must exit by itself: the flood takes seconds, the close at most its linger.
PROCESS_DEADLINE_SECS = scaled(120)
FLOOD_FRAMES = 100_000

#  A tutorial-style scenario: samples from a JSON file, no close() (the client flushes at exit).
PYTHON_SCENARIO = """
import json, sys
from lynx_telemetry_client import telemetry_client_from_env

samples = json.load(open(sys.argv[1]))
repeat = int(sys.argv[2]) if len(sys.argv) > 2 else 1
client = telemetry_client_from_env()
for _ in range(repeat):
    for timestamp_ns, values in samples:
        client.send(dict(values), timestamp_ns=timestamp_ns)
print(json.dumps({"active": client.active, "seq": client.seq, "dropped": client.dropped}))
"""

#  The same scenario in C, through the shared library (argv[3] is its path).
C_SCENARIO = """
import ctypes, json, sys

class Value(ctypes.Structure):
    class As(ctypes.Union):
        _fields_ = [("as_double", ctypes.c_double), ("as_int", ctypes.c_int64),
                    ("as_bool", ctypes.c_bool)]
    _anonymous_ = ("as_",)
    _fields_ = [("name", ctypes.c_char_p), ("type", ctypes.c_int), ("as_", As)]

lib = ctypes.CDLL(sys.argv[3])
lib.lynx_telemetry_from_env.restype = ctypes.c_void_p
lib.lynx_telemetry_send.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_size_t,
                                    ctypes.POINTER(Value)]
lib.lynx_telemetry_active.argtypes = [ctypes.c_void_p]
lib.lynx_telemetry_active.restype = ctypes.c_bool
lib.lynx_telemetry_seq.argtypes = [ctypes.c_void_p]
lib.lynx_telemetry_seq.restype = ctypes.c_uint64
lib.lynx_telemetry_dropped.argtypes = [ctypes.c_void_p]
lib.lynx_telemetry_dropped.restype = ctypes.c_uint64
lib.lynx_telemetry_close.argtypes = [ctypes.POINTER(ctypes.c_void_p)]

samples = []
for timestamp_ns, values in json.load(open(sys.argv[1])):
    array = (Value * len(values))()
    for item, (name, value) in zip(array, values):
        item.name = name.encode()
        if isinstance(value, bool):
            item.type, item.as_bool = 3, value
        elif isinstance(value, int):
            item.type, item.as_int = 2, value
        else:
            item.type, item.as_double = 1, value
    samples.append((timestamp_ns, array))
client = ctypes.c_void_p(lib.lynx_telemetry_from_env())
for _ in range(int(sys.argv[2])):
    for timestamp_ns, array in samples:
        lib.lynx_telemetry_send(client, timestamp_ns, len(array), array)
report = {"active": lib.lynx_telemetry_active(client), "seq": lib.lynx_telemetry_seq(client),
          "dropped": lib.lynx_telemetry_dropped(client)}
lib.lynx_telemetry_close(ctypes.byref(client))
print(json.dumps(report))
"""

#  Samples with every msgpack width the codec writes, in the order the scenario gives them.
SAMPLES = [
    [0, [["orbit.radius_km", 6983.4], ["orbit.speed_m_s", 7554.25], ["step", 0],
         ["eclipse", False]]],
    [10_000_000_000, [["whole", 8.0], ["negative_zero", -0.0], ["nan", math.nan],
                      ["inf", math.inf], ["-inf", -math.inf]]],
    [-1, [["fix", 127], ["u8", 128], ["u16", 65535], ["u32", 4294967295],
          ["max", (1 << 63) - 1], ["neg", -32], ["i8", -33], ["i16", -32769],
          ["min", -(1 << 63)]]],
    [(1 << 63) - 1, [["", True], ["a name longer than thirty-one bytes", 1.5],
                     ["n" * 300, 2]]],
    [1_750_000_000_123_456_789, []],
]


class Runner:
    """The runner's end: a PULL socket on 127.0.0.1, ephemeral port, unbounded queue."""

    def __init__(self, context):
        self.socket = context.socket(zmq.PULL)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.RCVHWM, 0)
        self.socket.bind("tcp://127.0.0.1:*")
        self.url = self.socket.getsockopt_string(zmq.LAST_ENDPOINT)

    def recv(self):
        if not self.socket.poll(RECV_TIMEOUT_MS):
            pytest.fail(f"no telemetry frame within {RECV_TIMEOUT_MS} ms")
        frames = self.socket.recv_multipart()
        assert len(frames) == 1, f"expected 1 frame, got {len(frames)}"
        return frames[0]

    def assert_empty(self):
        assert not self.socket.poll(0), "unexpected extra frame"


@pytest.fixture
def pull_context():
    context = zmq.Context()
    yield context
    context.destroy(linger=0)


@pytest.fixture
def samples_file(tmp_path):
    path = tmp_path / "samples.json"
    path.write_text(json.dumps(SAMPLES))
    return path


def telemetry_library():
    path = bin_dir() / "clients" / "c" / "liblynx-telemetry.so"
    if not path.exists():
        raise RuntimeError(f"{path}: missing; build the project first")
    return path


def sanitizer_preload(library):
    """A library built with -DLYNX_SANITIZE=ON needs the ASan runtime loaded first into an
    uninstrumented python; ldd names the one it was linked with."""
    listing = subprocess.run(["ldd", str(library)], capture_output=True, text=True).stdout
    match = re.search(r"^\s*libasan\.so\S*\s+=>\s+(\S+)", listing, re.MULTILINE)
    return match.group(1) if match else None


def run_scenario(tmp_path, language, url, samples_file, repeat=1):
    """Run a scenario process to its end; returns its report (active, seq, dropped)."""
    script = tmp_path / f"scenario_{language}.py"
    script.write_text(PYTHON_SCENARIO if language == "python" else C_SCENARIO)
    argv = [sys.executable, str(script), str(samples_file), str(repeat)]
    env = {key: value for key, value in os.environ.items() if key != ENV_URL}
    env["PYTHONPATH"] = str(PYTHON_CLIENT_DIR)
    if url is not None:
        env[ENV_URL] = url
    if language == "c":
        library = telemetry_library()
        argv.append(str(library))
        preload = sanitizer_preload(library)
        if preload:
            env["LD_PRELOAD"] = preload
            env["ASAN_OPTIONS"] = "detect_leaks=0"  # python itself is not leak-clean
    done = subprocess.run(argv, env=env, capture_output=True, text=True,
                          timeout=PROCESS_DEADLINE_SECS)
    assert done.returncode == 0, f"{language} scenario failed:\n{done.stderr}"
    return json.loads(done.stdout), done.stderr


def refused_url():
    """A socket bound but never listening: connections to its port are refused."""
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.bind(("127.0.0.1", 0))
    return holder, f"tcp://127.0.0.1:{holder.getsockname()[1]}"


@pytest.mark.parametrize("language", ["python", "c"])
def test_a_scenario_streams_every_frame_and_flushes_at_exit(tmp_path, pull_context,
                                                           samples_file, language):
    runner = Runner(pull_context)
    report, stderr = run_scenario(tmp_path, language, runner.url, samples_file, repeat=200)
    frames = len(SAMPLES) * 200
    assert report == {"active": True, "seq": frames, "dropped": 0}
    for seq in range(frames):
        message = msgpack.unpackb(runner.recv(), raw=False)
        assert message[:3] == ["LYNX", 1, "TELEMETRY"]
        assert list(message[3]) == ["seq", "timestamp_ns", "values"]
        assert message[3]["seq"] == seq
    runner.assert_empty()
    assert stderr == ""


def test_c_and_python_clients_send_identical_frames(tmp_path, pull_context, samples_file):
    frames = {}
    for language in ("python", "c"):
        runner = Runner(pull_context)
        run_scenario(tmp_path, language, runner.url, samples_file)
        frames[language] = [runner.recv() for _ in SAMPLES]
        runner.assert_empty()
    assert frames["c"] == frames["python"]
    #  And they are what the scenario meant (NaN aside, which never equals itself).
    for seq, (frame, (timestamp_ns, values)) in enumerate(zip(frames["c"], SAMPLES)):
        body = msgpack.unpackb(frame, raw=False)[3]
        assert body["seq"] == seq and body["timestamp_ns"] == timestamp_ns
        sent = dict(values)
        assert list(body["values"]) == list(sent)
        for name, value in sent.items():
            got = body["values"][name]
            assert type(got) is type(value), name
            assert got == value or math.isnan(value) and math.isnan(got), name
            if type(value) is float:
                assert math.copysign(1, got) == math.copysign(1, value), name


@pytest.mark.parametrize("language", ["python", "c"])
def test_a_scenario_without_the_variable_runs_silently(tmp_path, samples_file, language):
    report, stderr = run_scenario(tmp_path, language, None, samples_file, repeat=10)
    assert report == {"active": False, "seq": 0, "dropped": 0}
    assert stderr == ""


@pytest.mark.parametrize("language", ["python", "c"])
def test_a_scenario_flooding_a_missing_runner_drops_and_exits(tmp_path, samples_file,
                                                             language):
    holder, url = refused_url()
    try:
        flood = tmp_path / "flood.json"
        flood.write_text(json.dumps([[1, [["i", 1], ["x", 0.5]]]]))
        report, _ = run_scenario(tmp_path, language, url, flood, repeat=FLOOD_FRAMES)
    finally:
        holder.close()
    assert report["active"] and report["seq"] == FLOOD_FRAMES
    assert 0 < report["dropped"] < FLOOD_FRAMES

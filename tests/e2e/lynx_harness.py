"""End-to-end harness: start the real Lynx-C binaries on 127.0.0.1 with ephemeral ports.

A Stack owns every process it starts. Each binary prints one machine-readable line on stdout
when it is ready (``READY key=value ...``); the harness waits for that line with a deadline,
keeps each process's stderr in a file under the test's tmp_path, and on stop() sends SIGTERM
to every PID, waits with a deadline, falls back to SIGKILL, and checks no PID is left.

Only the standard library is used (urllib.request for HTTP) so the tests run under Debian's
/usr/bin/python3 with nothing but python3-pytest installed.
"""

import ctypes
import json
import os
import re
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCENARIOS_DIR = HERE / "scenarios"
CONFIGS_DIR = HERE / "configs"

JOB_STATES = ("Pending", "Claimed", "Running", "Completed", "Failed", "Timeout", "Cancelled")
BATCH_STATES = ("Pending", "Running", "Completed", "Failed", "Cancelled")
TERMINAL_BATCH_STATES = ("Completed", "Failed", "Cancelled")

RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

POLL_INTERVAL_SECS = 0.05
#  Sanitizer or valgrind builds are slower; scale every deadline, never the assertions.
TIMEOUT_SCALE = float(os.environ.get("LYNX_E2E_TIMEOUT_SCALE", "1"))
READY_TIMEOUT_SECS = 15.0 * TIMEOUT_SCALE
STOP_TIMEOUT_SECS = 10.0 * TIMEOUT_SCALE
HTTP_TIMEOUT_SECS = 30.0 * TIMEOUT_SCALE

_PR_SET_PDEATHSIG = 1


def scaled(secs):
    """A deadline in seconds, scaled by LYNX_E2E_TIMEOUT_SCALE."""
    return secs * TIMEOUT_SCALE


def bin_dir():
    value = os.environ.get("LYNX_BIN_DIR")
    if not value:
        raise RuntimeError("LYNX_BIN_DIR is not set (the CMake build directory)")
    return Path(value).resolve()


def source_dir():
    value = os.environ.get("LYNX_SOURCE_DIR")
    return Path(value).resolve() if value else HERE.parent.parent


def binary(name):
    path = bin_dir() / name
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"{path}: not an executable; build the project first")
    return path


def scenario_path(name):
    return SCENARIOS_DIR / name


def load_body(name):
    """A request body from configs/, as the exact bytes stored there."""
    return (CONFIGS_DIR / name).read_bytes()


def tutorial_batch(name, runs, **compute):
    """The tutorial's batch body (configs/) as a dict, renamed, with runs_override and compute
    fields set (a value of None removes the field)."""
    body = json.loads(load_body("tutorial_basic_orbit_batch.json"))
    body["name"] = name
    body["runs_override"] = runs
    for key, value in compute.items():
        if value is None:
            body["config"]["compute"].pop(key, None)
        else:
            body["config"]["compute"][key] = value
    return body


def read_probe_log(state_dir, job_id):
    """The events probe_scenario.py logged for one job, oldest first ([] when it never ran)."""
    path = Path(state_dir) / f"{job_id}.log"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def probe_env(state_dir, **settings):
    """Runner environment for probe_scenario.py: LYNX_E2E_STATE_DIR plus LYNX_E2E_<KEY>."""
    Path(state_dir).mkdir(parents=True, exist_ok=True)
    env = {"LYNX_E2E_STATE_DIR": str(state_dir)}
    env.update({f"LYNX_E2E_{key.upper()}": str(value) for key, value in settings.items()})
    return env


def parse_ready(line):
    """'READY a=1 b=2' -> {'a': '1', 'b': '2'}; None when the line is not a READY line."""
    parts = line.strip().split()
    if not parts or parts[0] != "READY":
        return None
    fields = {}
    for part in parts[1:]:
        key, sep, value = part.partition("=")
        if sep:
            fields[key] = value
    return fields


def parse_timestamp(text):
    """Parse an RFC 3339 UTC timestamp ('...Z'); AssertionError when it is not one."""
    assert isinstance(text, str) and RFC3339_UTC.match(text), f"not RFC 3339 UTC: {text!r}"
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def tail(path, lines=40):
    try:
        text = Path(path).read_text(errors="replace")
    except OSError as exc:
        return f"<{path}: {exc}>"
    return "\n".join(text.splitlines()[-lines:])


def _die_with_parent():
    #  If pytest itself is killed (ctest timeout), take the children with it.
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def pid_gone(pid):
    """True when pid no longer runs: it does not exist, or it is a zombie nobody reaped (PID 1
    in a container may not reap orphans, and a zombie still answers kill(pid, 0))."""
    if not pid_alive(pid):
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    #  "pid (comm) S ...": comm may hold spaces and parentheses; the state follows the last ')'.
    return stat[stat.rfind(")") + 2:].startswith(("Z", "X"))


def pid_start_time(pid):
    """The start time of pid (field 22 of /proc/<pid>/stat), or None when it is gone: with the
    pid it names one process, whatever pids the kernel reuses."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rfind(")") + 2:].split()[19]


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Process:
    """One child process: stdout read line by line by a thread, stderr kept in a file."""

    def __init__(self, name, argv, log_dir, env=None):
        self.name = name
        self.argv = [str(a) for a in argv]
        self.stderr_path = Path(log_dir) / f"{name}.stderr"
        self.stdout_path = Path(log_dir) / f"{name}.stdout"
        self.ready = None
        self.killed = False  # deliberately killed with SIGKILL by a test
        self.may_exit = False  # expected to exit by itself (e.g. a refused duplicate runner)
        self._lines = []
        self._cond = threading.Condition()
        self._eof = False
        stderr_file = open(self.stderr_path, "wb")
        try:
            self.popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=stderr_file,
                env=env,
                preexec_fn=_die_with_parent,
            )
        finally:
            stderr_file.close()
        self.pid = self.popen.pid
        self._reader = threading.Thread(target=self._read_stdout, name=f"{name}-stdout",
                                        daemon=True)
        self._reader.start()

    def _read_stdout(self):
        with open(self.stdout_path, "wb") as copy:
            for raw in self.popen.stdout:
                copy.write(raw)
                copy.flush()
                with self._cond:
                    self._lines.append(raw.decode(errors="replace").rstrip("\r\n"))
                    self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def stdout_lines(self):
        with self._cond:
            return list(self._lines)

    def wait_ready(self, timeout=READY_TIMEOUT_SECS):
        """Wait for the READY line; returns its fields. Raises with the stderr tail when the
        process exits first or the deadline passes."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self._lines:
                    fields = parse_ready(line)
                    if fields is not None:
                        self.ready = fields
                        return fields
                if self._eof:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(min(remaining, 0.2))
        status = self.popen.poll()
        what = f"exited with status {status}" if status is not None else (
            f"printed no READY line within {timeout:.1f} s")
        raise AssertionError(f"{self.name} {what}\n{self.describe()}")

    def alive(self):
        return self.popen.poll() is None

    def wait_exit(self, timeout=STOP_TIMEOUT_SECS):
        """Wait for the process to exit by itself; returns its status. AssertionError (with the
        logs) when it is still running after the deadline."""
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.name} still running after {timeout:.1f} s\n"
                                 f"{self.describe()}") from None

    def stderr_text(self):
        try:
            return self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""

    def describe(self, lines=40):
        out = [f"--- {self.name} (pid {self.pid}) argv: {shlex.join(self.argv)}"]
        status = self.popen.poll()
        out.append(f"--- status: {'running' if status is None else status}")
        out.append("--- stdout:\n" + "\n".join(self.stdout_lines()[-lines:]))
        out.append(f"--- stderr tail ({self.stderr_path}):\n{tail(self.stderr_path, lines)}")
        return "\n".join(out)

    def kill9(self):
        """SIGKILL by PID and reap; the stack will not count this as an unclean stop."""
        self.killed = True
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.popen.wait(timeout=STOP_TIMEOUT_SECS)

    def stop(self, timeout=STOP_TIMEOUT_SECS):
        """SIGTERM, wait with a deadline, SIGKILL if needed. Returns a problem string or None."""
        problem = None
        if self.popen.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                problem = f"{self.name} (pid {self.pid}) ignored SIGTERM for {timeout:.0f} s"
                os.kill(self.pid, signal.SIGKILL)
                self.popen.wait(timeout=timeout)
        elif not self.killed and not self.may_exit:
            problem = f"{self.name} (pid {self.pid}) had exited before stop: " \
                      f"status {self.popen.returncode}"
        if problem is None and not self.killed and not self.may_exit and \
                self.popen.returncode != 0:
            problem = f"{self.name} (pid {self.pid}) exited with status " \
                      f"{self.popen.returncode} on SIGTERM"
        self._reader.join(timeout=timeout)
        if self.popen.stdout:
            self.popen.stdout.close()
        return problem


class Runner(Process):
    def __init__(self, name, argv, log_dir, env, runner_id, config, config_path):
        super().__init__(name, argv, log_dir, env)
        self.runner_id = runner_id
        self.config = config
        self.config_path = config_path

    @property
    def output_root(self):
        return Path(self.config["output_root"])

    @property
    def working_directory(self):
        return Path(self.config["working_directory"])


def _yaml_scalar(value):
    if value is None:
        return "null"  # the field keeps its default
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(str(value))  # a JSON string is a valid YAML double-quoted scalar


def runner_yaml(config):
    """Render a runner config dict in the block style of tutorial-basic-orbit.txt."""
    lines = []
    for key, value in config.items():
        if isinstance(value, (list, tuple)):
            lines.append(f"{key}:")
            lines.extend(f"  - {_yaml_scalar(item)}" for item in value)
        else:
            lines.append(f"{key}: {_yaml_scalar(value)}")
    return "\n".join(lines) + "\n"


class HttpResponse(tuple):
    """(status, body) that also carries the response headers."""

    def __new__(cls, status, body, headers):
        self = super().__new__(cls, (status, body))
        self.headers = headers
        return self

    @property
    def status(self):
        return self[0]

    @property
    def body(self):
        return self[1]


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_TLS_OPENERS = {}  # CA file -> opener whose HTTPS verifies against it


def _opener(cafile):
    if cafile is None:
        return _OPENER
    if cafile not in _TLS_OPENERS:
        context = ssl.create_default_context(cafile=str(cafile))
        _TLS_OPENERS[cafile] = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context))
    return _TLS_OPENERS[cafile]


def make_tls_files(directory, name="server", hosts=("127.0.0.1", "localhost")):
    """A throwaway CA and a server certificate it signed for hosts (IP addresses and DNS
    names), made with openssl in directory. Returns a dict of paths: ca, ca_key, cert, key.
    Each call makes a new CA, so two calls give certificates that do not trust each other."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {"ca": directory / f"{name}-ca.pem", "ca_key": directory / f"{name}-ca.key",
             "cert": directory / f"{name}.pem", "key": directory / f"{name}.key"}
    csr = directory / f"{name}.csr"
    ext = directory / f"{name}.ext"
    alt = ",".join(("IP:" if re.match(r"^[\d.]+$|:", h) else "DNS:") + h for h in hosts)
    ext.write_text(f"subjectAltName={alt}\nbasicConstraints=critical,CA:FALSE\n"
                   "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    steps = [
        ["openssl", "req", "-x509", *ec, "-keyout", paths["ca_key"], "-out", paths["ca"],
         "-days", "2", "-subj", f"/CN=Lynx e2e {name} CA"],
        ["openssl", "req", *ec, "-keyout", paths["key"], "-out", csr, "-subj", f"/CN={hosts[0]}"],
        ["openssl", "x509", "-req", "-in", csr, "-CA", paths["ca"], "-CAkey", paths["ca_key"],
         "-CAcreateserial", "-out", paths["cert"], "-days", "2", "-extfile", ext],
    ]
    for argv in steps:
        done = subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                              timeout=scaled(30))
        assert done.returncode == 0, f"{shlex.join(map(str, argv))}: {done.stderr}"
    return paths


def http_request(base_url, method, path, body=None, headers=None, timeout=HTTP_TIMEOUT_SECS,
                 cafile=None):
    """One HTTP request. body: dict/list (sent as JSON), str or bytes (sent as is), or None.
    An https:// base_url is verified against cafile (a PEM CA file). Returns HttpResponse
    (status, parsed JSON or raw text when not JSON)."""
    headers = dict(headers or {})
    #  The stack's API token (Stack.start_broker puts it in LYNX_TOKEN) unless the caller
    #  names its own Authorization, or None for none at all.
    if not any(k.lower() == "authorization" for k in headers) and os.environ.get("LYNX_TOKEN"):
        headers["Authorization"] = "Bearer " + os.environ["LYNX_TOKEN"]
    headers = {k: v for k, v in headers.items() if v is not None}
    data = None
    if body is not None:
        if isinstance(body, (dict, list)):
            data = json.dumps(body).encode()
        elif isinstance(body, str):
            data = body.encode()
        else:
            data = bytes(body)
        if not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = "application/json"
    request = urllib.request.Request(base_url + path, data=data, headers=headers, method=method)
    try:
        with _opener(cafile).open(request, timeout=timeout) as response:
            status, raw, resp_headers = response.status, response.read(), response.headers
    except urllib.error.HTTPError as exc:
        status, raw, resp_headers = exc.code, exc.read(), exc.headers
    text = raw.decode(errors="replace")
    try:
        parsed = json.loads(text) if text else None
    except ValueError:
        parsed = text
    return HttpResponse(status, parsed, resp_headers)


def auth_headers(headers=None):
    """headers plus the stack's Authorization (LYNX_TOKEN), for clients other than
    http_request (raw http.client, urlopen)."""
    headers = dict(headers or {})
    if os.environ.get("LYNX_TOKEN") and not any(k.lower() == "authorization" for k in headers):
        headers["Authorization"] = "Bearer " + os.environ["LYNX_TOKEN"]
    return headers


def secure_subscriber(socket):
    """Make a ZeroMQ SUB a CURVE client of the broker's telemetry PUB with the stack's
    subscriber key (LYNX_SUBSCRIBER_KEY_FILE, LYNX_BROKER_PUBLIC_KEY, set at broker start);
    a no-op against an --insecure broker. Returns socket."""
    key_file = os.environ.get("LYNX_SUBSCRIBER_KEY_FILE")
    if key_file:
        import zmq.auth
        public, secret = zmq.auth.load_certificate(key_file + "_secret")
        socket.curve_publickey, socket.curve_secretkey = public, secret
        socket.curve_serverkey = os.environ["LYNX_BROKER_PUBLIC_KEY"].encode()
    return socket


class Stack:
    """Broker, gateways and runners of one test, all under one temporary directory."""

    def __init__(self, tmp_path, name="stack"):
        self.root = Path(tmp_path)
        self.name = name
        self.log_dir = self.root / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.processes = []
        self.broker = None
        self.gateway = None
        self.runners = []
        self.strays = {}  # pid -> start time: scenario processes to kill on stop
        self._stopped = False
        self.token = None  # the admin API token made at the first broker start
        self._saved_token = os.environ.get("LYNX_TOKEN")

    # -- starting processes -------------------------------------------------------------

    def _env(self, extra=None):
        env = {k: v for k, v in os.environ.items() if not k.startswith("LYNX_RUNNER_")}
        env.update(extra or {})
        return env

    def _unique_name(self, name):
        """name, or name.N when a process of this stack already used it (a restart)."""
        taken = {p.name for p in self.processes}
        if name not in taken:
            return name
        n = 1
        while f"{name}.{n}" in taken:
            n += 1
        return f"{name}.{n}"

    def _spawn(self, cls, name, argv, host=None, **kwargs):
        """Start argv as cls; on host (a lynx_netns.Host) it runs inside that namespace."""
        if host is not None:
            argv = host.argv(argv)
        proc = cls(name, argv, self.log_dir, env=self._env(kwargs.pop("extra_env", None)),
                   **kwargs)
        proc.host = host
        self.processes.append(proc)
        return proc

    def start_broker(self, extra_args=(), runner_endpoint=None, api_endpoint=None, host=None):
        """Start lynx-broker on the stack's data dir. Endpoints default to ports the kernel
        picks at random (free_port), not ZeroMQ's tcp://...:*, which takes the lowest free port
        from 49152 up: a port a killed broker just released would go straight to the next
        broker of a concurrent test run, and the dead broker's runners and gateways, which
        reconnect on their own, would join that stranger's grid. On a host (a namespace of
        its own, nobody else's ports) the runner endpoint is the host's LAN address, port
        5555, as an operator would set it."""
        data_dir = self.root / "broker-data"
        data_dir.mkdir(exist_ok=True)
        if host is not None:
            runner_endpoint = runner_endpoint or f"tcp://{host.address}:5555"
            api_endpoint = api_endpoint or "tcp://127.0.0.1:5556"
        pick = runner_endpoint is None or api_endpoint is None
        for attempt in range(3 if pick else 1):
            runner_ep = runner_endpoint or f"tcp://127.0.0.1:{free_port()}"
            api_ep = api_endpoint or f"tcp://127.0.0.1:{free_port()}"
            argv = [binary("lynx-broker"), "--data-dir", data_dir,
                    "--runner-endpoint", runner_ep, "--api-endpoint", api_ep, *extra_args]
            proc = self._spawn(Process, self._unique_name("broker"), argv, host=host)
            try:
                fields = proc.wait_ready()
                break
            except AssertionError:
                #  Someone took a picked port between free_port() and the bind: pick again.
                if not pick or proc.alive() or attempt == 2:
                    raise
                proc.may_exit = True
        expected_hosts = {"runner_endpoint": host.address if host else "127.0.0.1",
                          "api_endpoint": "127.0.0.1"}
        for key in ("runner_endpoint", "api_endpoint"):
            assert fields.get(key, "").startswith(f"tcp://{expected_hosts[key]}:"), \
                f"broker READY line lacks {key}: {fields}\n{proc.describe()}"
            assert not fields[key].endswith("*"), f"broker READY {key} not resolved: {fields}"
        proc.runner_endpoint = fields["runner_endpoint"]
        proc.api_endpoint = fields["api_endpoint"]
        proc.data_dir = data_dir
        proc.extra_args = tuple(extra_args)
        proc.telemetry_endpoint = fields.get("telemetry_endpoint")
        proc.public_key = fields.get("public_key")
        proc.secure = proc.public_key not in (None, "insecure")
        self.broker = proc
        if self.token is None:
            self.token = self.create_token("harness", "admin")
            #  Every HTTP call, CLI and script of this test carries it (restored by stop()).
            os.environ["LYNX_TOKEN"] = self.token
        if proc.secure:
            #  Telemetry subscribers (tests, lynx watch) need an enrolled subscriber key too.
            import zmq.auth
            keys = self.root / "subscriber-keys"
            if not (keys / "harness.key").exists():
                keys.mkdir(parents=True, exist_ok=True)
                _, secret = zmq.auth.create_certificates(str(keys), "harness")
                os.chmod(secret, 0o600)
                allowed = data_dir / "keys" / "subscribers"
                shutil.copyfile(keys / "harness.key", allowed / ".harness.tmp")
                os.replace(allowed / ".harness.tmp", allowed / "harness.key")
            os.environ["LYNX_SUBSCRIBER_KEY_FILE"] = str(keys / "harness.key")
            os.environ["LYNX_BROKER_PUBLIC_KEY"] = proc.public_key
        return proc

    def create_token(self, name, role):
        """`lynx-broker token create` on the stack's data dir: the token text."""
        data_dir = self.root / "broker-data"
        done = subprocess.run([binary("lynx-broker"), "token", "create", "--data-dir",
                               str(data_dir), "--name", name, "--role", role],
                              capture_output=True, text=True, timeout=scaled(30))
        assert done.returncode == 0, f"token create failed: {done.stderr}"
        return done.stdout.strip()

    def runner_keys(self, runner_id, enroll=True):
        """A CURVE keypair for runner_id under its directory (made once), enrolled by copying
        its public file into the broker's keys/runners/ as an admin would. Returns the key
        file's path."""
        import zmq.auth
        keys = self.root / f"runner-{runner_id}" / "keys"
        key_file = keys / "runner.key"
        if not key_file.exists():
            keys.mkdir(parents=True, exist_ok=True)
            public, secret = zmq.auth.create_certificates(str(keys), "runner")
            os.chmod(secret, 0o600)
        if enroll:
            allowed = self.root / "broker-data" / "keys" / "runners"
            allowed.mkdir(parents=True, exist_ok=True)
            target = allowed / f"{runner_id}.key"
            if not target.exists():  # copy, then rename: the broker never reads half a file
                shutil.copyfile(key_file, allowed / f".{runner_id}.key.tmp")
                os.replace(allowed / f".{runner_id}.key.tmp", target)
        return key_file

    def restart_broker(self):
        """Start a new broker on the data dir and the ports of the last one (which must have
        exited, e.g. after kill9): runners and gateways reconnect to the same endpoints."""
        old = self.broker
        assert old is not None and not old.alive(), "stop or kill the broker first"
        proc = self.start_broker(extra_args=old.extra_args, runner_endpoint=old.runner_endpoint,
                                 api_endpoint=old.api_endpoint, host=old.host)
        assert (proc.runner_endpoint, proc.api_endpoint) == \
            (old.runner_endpoint, old.api_endpoint), "restarted broker moved its endpoints"
        return proc

    def start_gateway(self, max_body_bytes=None, broker_timeout_ms=None, extra_args=(),
                      host=None, tls=None, extra_env=None, wait_ready=True):
        """Start lynx-gateway on 127.0.0.1 (of host, when given: http() then calls from
        inside that namespace). tls, a dict from make_tls_files, serves HTTPS with its cert
        and key, and http() verifies against its ca. wait_ready=False returns at once and
        lets the process exit by itself (a start expected to fail)."""
        assert self.broker is not None, "start the broker first"
        argv = [binary("lynx-gateway"), "--listen", "127.0.0.1:0",
                "--broker", self.broker.api_endpoint]
        if max_body_bytes is not None:
            argv += ["--max-body-bytes", str(max_body_bytes)]
        if broker_timeout_ms is not None:
            argv += ["--broker-timeout-ms", str(broker_timeout_ms)]
        if tls is not None:
            argv += ["--tls-cert", tls["cert"], "--tls-key", tls["key"]]
        argv += list(extra_args)
        count = sum(1 for p in self.processes if p.name.startswith("gateway"))
        proc = self._spawn(Process, f"gateway{count or ''}", argv, host=host,
                           extra_env=extra_env)
        proc.cafile = tls["ca"] if tls is not None else None
        if not wait_ready:
            proc.may_exit = True
            return proc
        fields = proc.wait_ready()
        url = fields.get("url", "")
        scheme = "https" if tls is not None or "--tls-cert" in argv else "http"
        assert re.match(rf"^{scheme}://127\.0\.0\.1:[1-9]\d*$", url), \
            f"gateway READY line lacks a bound {scheme} url: {fields}\n{proc.describe()}"
        proc.url = url
        if self.gateway is None:
            self.gateway = proc
        return proc

    def start_runner(self, runner_id, entrypoint, name=None, max_concurrent_jobs=1,
                     engines=("basilisk",), capabilities=("basilisk", "orbit", "aerospace"),
                     heartbeat_interval_secs=1, extra_config=None, extra_args=(),
                     extra_env=None, wait_ready=True, broker_endpoint=None, host=None,
                     enroll=True):
        """Start lynx-runner with a config file rendered from the arguments (extra_config adds
        or overrides fields) and extra_env laid over the environment (the scenarios inherit
        it). A runner started again with the same id reuses its directories and gets a new
        process name (runner-ID.1, ...). wait_ready=False returns at once and lets the process
        exit by itself (a runner expected to be refused). broker_endpoint points it elsewhere
        than the stack's broker (which then need not run yet); host runs it in that
        namespace. enroll=False leaves its key out of the broker's allow list (a runner that
        must enroll through the API, or be refused)."""
        assert broker_endpoint or self.broker is not None, "start the broker first"
        base = self.root / f"runner-{runner_id}"
        work = base / "work"
        output_root = base / "runs"
        work.mkdir(parents=True, exist_ok=True)
        config = {
            "engines": list(engines),
            "capabilities": list(capabilities),
            "working_directory": str(work),
            "output_root": str(output_root),
            "python_executable": "/usr/bin/python3",
            "basilisk_entrypoint": str(entrypoint),
            "max_concurrent_jobs": max_concurrent_jobs,
            "heartbeat_interval_secs": heartbeat_interval_secs,
        }
        if self.broker is None:
            #  No broker yet: make its keypair now, as an admin preparing a host would; the
            #  broker loads it when it starts on this data dir.
            import zmq.auth
            keys = self.root / "broker-data" / "keys"
            if not (keys / "broker.key_secret").exists():
                keys.mkdir(parents=True, exist_ok=True)
                os.chmod(keys, 0o700)
                _, secret = zmq.auth.create_certificates(str(keys), "broker")
                os.chmod(secret, 0o600)
            config["key_file"] = str(self.runner_keys(runner_id, enroll=enroll))
            config["broker_public_key"] = str(keys / "broker.key")
        elif self.broker.secure:
            config["key_file"] = str(self.runner_keys(runner_id, enroll=enroll))
            config["broker_public_key"] = str(self.root / "broker-data" / "keys" / "broker.key")
        else:
            config["insecure"] = True
        config.update(extra_config or {})
        config_path = base / "runner.yaml"
        config_path.write_text(runner_yaml(config))
        argv = [binary("lynx-runner"), "--config", config_path, "--runner-id", runner_id,
                "--name", name or f"Runner {runner_id}", "--broker",
                broker_endpoint or self.broker.runner_endpoint, *extra_args]
        proc = self._spawn(Runner, self._unique_name(f"runner-{runner_id}"), argv,
                           runner_id=runner_id, config=config, config_path=config_path,
                           extra_env=extra_env, host=host)
        if not wait_ready:
            proc.may_exit = True
            return proc
        fields = proc.wait_ready()
        assert fields.get("runner_id") == runner_id, \
            f"runner READY line names {fields.get('runner_id')!r}, expected {runner_id!r}"
        self.runners.append(proc)
        return proc

    # -- driving --------------------------------------------------------------------------

    def http(self, method, path, body=None, headers=None, gateway=None,
             timeout=HTTP_TIMEOUT_SECS):
        gw = gateway or self.gateway
        assert gw is not None, "start a gateway first"
        cafile = getattr(gw, "cafile", None)
        if gw.host is not None:
            return gw.host.call(http_request, gw.url, method, path, body=body, headers=headers,
                                timeout=timeout, cafile=cafile)
        return http_request(gw.url, method, path, body=body, headers=headers, timeout=timeout,
                            cafile=cafile)

    def check_alive(self):
        """AssertionError naming any process that died without a test killing it."""
        dead = [p for p in self.processes if not p.killed and not p.may_exit and not p.alive()]
        if dead:
            raise AssertionError("process died unexpectedly:\n" +
                                 "\n".join(p.describe() for p in dead))

    def wait_for(self, predicate, timeout, what="condition", interval=POLL_INTERVAL_SECS):
        """Poll predicate until it returns a truthy value (returned) or the deadline passes.
        Fails early when one of our processes dies."""
        deadline = time.monotonic() + scaled(timeout)
        last = None
        while True:
            self.check_alive()
            last = predicate()
            if last:
                return last
            if time.monotonic() >= deadline:
                raise AssertionError(f"timed out after {scaled(timeout):.1f} s waiting for "
                                     f"{what}; last value: {last!r}")
            time.sleep(interval)

    def holds(self, predicate, secs, what="condition", interval=POLL_INTERVAL_SECS):
        """Check that something does NOT happen: predicate stays truthy for secs (unscaled: a
        window to observe, not a deadline). AssertionError at the first falsy value."""
        deadline = time.monotonic() + secs
        while True:
            self.check_alive()
            value = predicate()
            assert value, f"{what} stopped holding: {value!r}"
            if time.monotonic() >= deadline:
                return value
            time.sleep(interval)

    def submit(self, body, gateway=None):
        """POST /jobs; asserts 201 and returns the response body."""
        status, resp = self.http("POST", "/jobs", body=body, gateway=gateway)
        assert status == 201, f"POST /jobs -> {status} {resp}"
        return resp

    def wait_batch_terminal(self, batch_id, timeout=60):
        """Poll GET /batches/{id} until its status is terminal; returns the last body."""
        state = {}

        def done():
            status, body = self.http("GET", f"/batches/{batch_id}")
            assert status == 200, f"GET /batches/{batch_id} -> {status} {body}"
            state["body"] = body
            if body["batch"]["status"] in TERMINAL_BATCH_STATES:
                return body
            return None

        try:
            return self.wait_for(done, timeout, what=f"batch {batch_id} to finish")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nlast batch body: {state.get('body')}") from None

    def kill9(self, proc):
        proc.kill9()

    def get_ok(self, path):
        """GET path; asserts 200 and returns the body."""
        status, body = self.http("GET", path)
        assert status == 200, f"GET {path} -> {status} {body}"
        return body

    def wait_healthy(self, timeout=30):
        """Poll GET /healthz until the gateway reaches a broker (e.g. after a restart)."""
        def healthy():
            try:
                return self.http("GET", "/healthz", timeout=scaled(5)).status == 200
            except OSError:
                return False
        self.wait_for(healthy, timeout, what="GET /healthz to answer 200")

    def list_jobs(self, batch_id, status=None, limit=None, pages=None):
        """Walk GET /batches/{id}/jobs page by page (cursor to cursor); returns every job.
        pages, when a list, receives each page body."""
        jobs, cursor = [], None
        for _ in range(100000):
            query = {}
            if status is not None:
                query["status"] = status
            if limit is not None:
                query["limit"] = str(limit)
            if cursor is not None:
                query["cursor"] = cursor
            path = f"/batches/{batch_id}/jobs"
            if query:
                path += "?" + urllib.parse.urlencode(query)
            body = self.get_ok(path)
            if pages is not None:
                pages.append(body)
            jobs.extend(body["jobs"])
            cursor = body.get("next_cursor")
            if cursor is None:
                return jobs
        raise AssertionError(f"GET /batches/{batch_id}/jobs: the cursor never ends")

    def adopt(self, *pids):
        """Kill these scenario processes on stop if they still run: what a runner killed with
        SIGKILL leaves behind, or what a runner failed to kill. Safe against pid reuse."""
        for pid in pids:
            started = pid_start_time(pid)
            if pid and started is not None:
                self.strays[pid] = started

    # -- stopping ---------------------------------------------------------------------------

    def log_tails(self, lines=40):
        return "\n".join(p.describe(lines) for p in self.processes)

    def stop(self):
        """Stop runners, then gateways, then the broker, each by PID; assert none is left.
        Raises AssertionError listing every process that did not stop cleanly."""
        if self._stopped:
            return
        self._stopped = True
        if self._saved_token is None:
            os.environ.pop("LYNX_TOKEN", None)
        else:
            os.environ["LYNX_TOKEN"] = self._saved_token
        os.environ.pop("LYNX_SUBSCRIBER_KEY_FILE", None)
        os.environ.pop("LYNX_BROKER_PUBLIC_KEY", None)
        order = ([p for p in self.processes if isinstance(p, Runner)] +
                 [p for p in self.processes if p.name.startswith("gateway")] +
                 [p for p in self.processes
                  if not isinstance(p, Runner) and not p.name.startswith("gateway")])
        problems = []
        for proc in order:
            try:
                problem = proc.stop()
            except Exception as exc:  # keep stopping the others
                problem = f"{proc.name} (pid {proc.pid}): stop raised {exc!r}"
            if problem:
                problems.append(problem + "\n" + proc.describe(20))
        for proc in order:
            if pid_alive(proc.pid):
                problems.append(f"{proc.name} (pid {proc.pid}) still exists after stop")
        for pid, started in sorted(self.strays.items()):
            if pid_start_time(pid) == started:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        if problems:
            raise AssertionError("unclean stop:\n" + "\n".join(problems))


def assert_error(response, status, code, field=None):
    """Check an error response: HTTP status and {"error": {"code", "message", "field"}}."""
    got_status, body = response
    assert got_status == status, f"expected {status}, got {got_status}: {body}"
    assert isinstance(body, dict) and isinstance(body.get("error"), dict), \
        f"error body is not {{'error': {{...}}}}: {body!r}"
    err = body["error"]
    assert err.get("code") == code, f"error.code {err.get('code')!r} != {code!r}: {body}"
    assert isinstance(err.get("message"), str) and err["message"], f"empty message: {body}"
    assert "field" in err, f"error has no 'field' key: {body}"
    if field is not None:
        assert err["field"] == field, f"error.field {err['field']!r} != {field!r}: {body}"
    return err

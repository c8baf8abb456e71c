"""Scenario-side telemetry client for Lynx: stream scalar samples to the runner.

The runner that starts a scenario binds a ZeroMQ PULL socket on 127.0.0.1 and exports its
endpoint as ``TETRYX_TELEMETRY_URL``. A scenario does::

    from lynx_telemetry_client import telemetry_client_from_env

    with telemetry_client_from_env() as client:
        for step in simulation:
            client.send({"orbit.radius_km": r_km, "orbit.eclipse": in_shadow},
                        timestamp_ns=step.time_ns)

Guarantees:

- **Never blocks the simulation.** Frames go to a PUSH socket with a bounded queue
  (``SNDHWM_FRAMES``) and are sent without waiting; when the queue is full the frame is
  dropped and counted (``client.dropped``). Sequence numbers count every frame produced,
  dropped or not, so the receiver sees the gaps.
- **Optional.** Without ``TETRYX_TELEMETRY_URL`` (or when the socket cannot be made) the
  client is a no-op: ``send`` and ``close`` do nothing and never raise.
- **Bad values fail at once** (with a live client): a value that is not a float, int or bool
  (numpy scalars are converted) raises TypeError naming the key.
- On ``close()`` (or at interpreter exit) frames still queued get ``CLOSE_LINGER_MS`` to
  reach the runner, so the last samples of a run are not lost; a dead runner delays exit by
  at most that.

Each frame is one ZeroMQ message holding the msgpack array
``["LYNX", 1, "TELEMETRY", {"seq": int, "timestamp_ns": int, "values": {name: value}}]``,
the TELEMETRY message of proto/PROTOCOL.md. The runner adds ``job_id``; a scenario never
sends it. Needs only pyzmq and msgpack (Debian: python3-zmq, python3-msgpack).

A client is safe to share between threads (sends are serialised by a lock).
"""

import atexit
import numbers
import os
import sys
import threading
import time
import weakref

import msgpack
import zmq

__all__ = ["ENV_URL", "TelemetryClient", "NullTelemetryClient", "telemetry_client_from_env"]

#  The environment variable the runner sets to its telemetry PULL endpoint.
ENV_URL = "TETRYX_TELEMETRY_URL"
#  Frames queued before sends start dropping (the runner's PULL queue adds its own).
SNDHWM_FRAMES = 10_000
#  How long close() lets queued frames reach the runner before discarding them.
CLOSE_LINGER_MS = 500
#  The codec refuses bigger frames (LYNX_MSG_MAX_BYTES in proto/lynx_msg.h).
MAX_FRAME_BYTES = 64 * 1024 * 1024

_MAGIC = "LYNX"
_VERSION = 1
_COMMAND = "TELEMETRY"
_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1


class NullTelemetryClient:
    """The client used when telemetry is off: every method does nothing and never raises."""

    active = False
    dropped = 0
    seq = 0
    url = None
    error = None

    def send(self, values, timestamp_ns=None):
        """Does nothing; returns False (nothing was queued)."""
        return False

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
        return False

    def __repr__(self):
        reason = f" ({self.error})" if self.error else ""
        return f"<NullTelemetryClient{reason}>"


class TelemetryClient:
    """A live client: a PUSH socket connected to url (tcp://host:port).

    Raises zmq.ZMQError when the endpoint is malformed; telemetry_client_from_env() turns that
    into a NullTelemetryClient instead.
    """

    active = True

    def __init__(self, url, sndhwm=SNDHWM_FRAMES, linger_ms=CLOSE_LINGER_MS):
        self.url = url
        self.error = None
        self.seq = 0  # sequence number of the next frame
        self.dropped = 0  # frames not queued because the queue was full (or the socket failed)
        self._lock = threading.Lock()
        self._congested = False  # the last send found the queue full
        self._packer = msgpack.Packer(use_bin_type=True, use_single_float=False)
        #  Our own context, so close() can wait (up to the linger) for our frames only.
        self._context = zmq.Context(io_threads=1)
        try:
            self._socket = self._context.socket(zmq.PUSH)
            self._socket.setsockopt(zmq.SNDHWM, sndhwm)
            self._socket.setsockopt(zmq.LINGER, linger_ms)
            self._socket.connect(url)
        except BaseException:
            self._context.destroy(linger=0)
            raise
        #  A scenario that never calls close() still flushes its last frames at exit.
        atexit.register(_close_at_exit, weakref.ref(self))

    @property
    def closed(self):
        return self._socket is None

    def send(self, values, timestamp_ns=None):
        """Queue one sample without waiting. values maps names (str) to float, int or bool;
        timestamp_ns (int) defaults to time.time_ns(). Returns True when queued, False when
        dropped (counted in self.dropped) or the client is closed. Raises TypeError for a
        non-str key or a value of another type, ValueError for an int outside int64, a key with
        a NUL character or a frame over 64 MiB; nothing is consumed then."""
        clean = _check_values(values)
        if timestamp_ns is None:
            timestamp_ns = time.time_ns()
        else:
            timestamp_ns = _check_timestamp(timestamp_ns)
        with self._lock:
            if self._socket is None:
                return False
            body = {"seq": self.seq, "timestamp_ns": timestamp_ns, "values": clean}
            try:
                frame = self._packer.pack([_MAGIC, _VERSION, _COMMAND, body])
            except UnicodeEncodeError:
                self._packer.reset()
                raise _bad_key_encoding(clean) from None
            if len(frame) > MAX_FRAME_BYTES:
                raise ValueError(f"telemetry frame of {len(frame)} bytes exceeds the limit of "
                                 f"{MAX_FRAME_BYTES}")
            self.seq += 1
            #  Once the queue was full, ask whether it has room before trying: a refused send
            #  raises zmq.Again, which costs several times a normal send.
            if self._congested and not self._socket.getsockopt(zmq.EVENTS) & zmq.POLLOUT:
                self.dropped += 1
                return False
            try:
                self._socket.send(frame, zmq.NOBLOCK)
            except zmq.ZMQError:  # zmq.Again: the queue is full; anything else: same outcome
                self._congested = True
                self.dropped += 1
                return False
            self._congested = False
            return True

    def close(self):
        """Close the socket, giving queued frames up to the linger to reach the runner.
        Idempotent; later sends are ignored."""
        with self._lock:
            socket, self._socket = self._socket, None
        if socket is not None:
            socket.close()
            self._context.term()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
        return False

    def __repr__(self):
        state = "closed" if self.closed else "open"
        return f"<TelemetryClient {self.url} {state} seq={self.seq} dropped={self.dropped}>"


def telemetry_client_from_env(environ=None):
    """The client for TETRYX_TELEMETRY_URL: a TelemetryClient, or a NullTelemetryClient when
    the variable is unset or empty, or when the socket cannot be made (reported once on
    stderr and kept in client.error)."""
    url = (os.environ if environ is None else environ).get(ENV_URL, "")
    if not url:
        return NullTelemetryClient()
    try:
        return TelemetryClient(url)
    except zmq.ZMQError as exc:
        client = NullTelemetryClient()
        client.error = f"connect {url}: {exc}"
        print(f"lynx_telemetry_client: {client.error}; telemetry disabled", file=sys.stderr)
        return client


def _close_at_exit(ref):
    client = ref()
    if client is not None:
        client.close()


def _check_values(values):
    """A plain dict of str -> float/int/bool, in the caller's order, or TypeError/ValueError."""
    if not hasattr(values, "items"):
        raise TypeError(f"telemetry values must be a dict of name -> number, got "
                        f"{type(values).__name__}")
    clean = {}
    for key, value in values.items():
        if type(key) is not str:
            if not isinstance(key, str):
                raise TypeError(f"telemetry key {key!r}: names must be str, got "
                                f"{type(key).__name__}")
            key = str(key)
        if "\0" in key:
            raise ValueError(f"telemetry key {key!r}: names must not contain NUL")
        kind = type(value)
        if kind is float or kind is bool:
            pass
        elif kind is int:
            if not _INT64_MIN <= value <= _INT64_MAX:
                raise ValueError(f"telemetry value {key!r}: integer {value} does not fit in 64 "
                                 f"bits")
        else:
            value = _coerce(key, value)
        clean[key] = value
    return clean


def _coerce(key, value):
    """Subclasses and numpy scalars to float, int or bool; TypeError for anything else."""
    if isinstance(value, bool):
        return bool(value)
    #  numpy.bool_ is not a numbers.Number; look it up only if the scenario imported numpy.
    numpy = sys.modules.get("numpy")
    if numpy is not None and isinstance(value, numpy.bool_):
        return bool(value)
    if isinstance(value, numbers.Integral):
        as_int = int(value)
        if not _INT64_MIN <= as_int <= _INT64_MAX:
            raise ValueError(f"telemetry value {key!r}: integer {as_int} does not fit in 64 bits")
        return as_int
    if isinstance(value, numbers.Real):
        return float(value)
    raise TypeError(f"telemetry value {key!r}: expected float, int or bool, got "
                    f"{type(value).__name__}")


def _check_timestamp(timestamp_ns):
    if isinstance(timestamp_ns, bool) or not isinstance(timestamp_ns, numbers.Integral):
        raise TypeError(f"timestamp_ns must be an int (nanoseconds), got "
                        f"{type(timestamp_ns).__name__}")
    timestamp_ns = int(timestamp_ns)
    if not _INT64_MIN <= timestamp_ns <= _INT64_MAX:
        raise ValueError(f"timestamp_ns {timestamp_ns} does not fit in 64 bits")
    return timestamp_ns


def _bad_key_encoding(values):
    for key in values:
        try:
            key.encode("utf-8")
        except UnicodeEncodeError:
            return ValueError(f"telemetry key {key!r}: not encodable as UTF-8")
    return ValueError("telemetry values: not encodable as UTF-8")

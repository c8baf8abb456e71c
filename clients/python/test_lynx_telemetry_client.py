"""Tests of lynx_telemetry_client: the scenario's side of telemetry, against a PULL socket that
stands in for the runner (bound on 127.0.0.1, ephemeral port).

Run directly (``/usr/bin/python3 -m pytest clients/python``) or through ctest, where
tests/e2e/test_telemetry_clients.py collects these same tests.
"""

import fractions
import math
import socket
import time

import msgpack
import pytest
import zmq

import lynx_telemetry_client as ltc
from lynx_telemetry_client import (NullTelemetryClient, TelemetryClient,
                                   telemetry_client_from_env)

RECV_TIMEOUT_MS = 10_000
FLOOD_FRAMES = 100_000


class Runner:
    """The runner's end: a PULL socket on 127.0.0.1 with an ephemeral port."""

    def __init__(self, context, endpoint="tcp://127.0.0.1:*"):
        self.socket = context.socket(zmq.PULL)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.RCVHWM, 0)  # unbounded: tests read after the sender is done
        self.socket.bind(endpoint)
        self.url = self.socket.getsockopt_string(zmq.LAST_ENDPOINT)

    def recv_raw(self):
        """The next message as a list of frames; fails after RECV_TIMEOUT_MS."""
        if not self.socket.poll(RECV_TIMEOUT_MS):
            pytest.fail(f"no telemetry frame within {RECV_TIMEOUT_MS} ms")
        return self.socket.recv_multipart()

    def recv(self):
        """The next frame decoded the way the codec does: one frame, one msgpack array."""
        frames = self.recv_raw()
        assert len(frames) == 1, f"expected 1 frame, got {len(frames)}"
        return msgpack.unpackb(frames[0], raw=False, strict_map_key=True)

    def recv_body(self):
        message = self.recv()
        assert isinstance(message, list) and len(message) == 4, message
        assert message[:3] == ["LYNX", 1, "TELEMETRY"], message
        body = message[3]
        assert list(body) == ["seq", "timestamp_ns", "values"], body  # never job_id
        assert type(body["seq"]) is int and type(body["timestamp_ns"]) is int, body
        assert isinstance(body["values"], dict), body
        return body

    def assert_empty(self):
        assert not self.socket.poll(0), "unexpected extra frame"


@pytest.fixture
def zmq_context():
    context = zmq.Context()
    yield context
    context.destroy(linger=0)


@pytest.fixture
def runner(zmq_context):
    return Runner(zmq_context)


@pytest.fixture
def client(runner):
    with TelemetryClient(runner.url) as client:
        yield client


@pytest.fixture
def dead_url():
    """A tcp URL on which nobody listens: the port stays bound (so no one else takes it) but
    never listens, so connecting is refused for the whole test."""
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.bind(("127.0.0.1", 0))
    yield f"tcp://127.0.0.1:{holder.getsockname()[1]}"
    holder.close()


#  --------------------------------------------------------------------------
#  Frames


def test_frame_is_the_codec_telemetry_message(client, runner):
    assert client.send({"orbit.radius_km": 6983.4, "step": 7, "eclipse": True},
                       timestamp_ns=1_750_000_000_123_456_789)
    body = runner.recv_body()
    assert body == {"seq": 0, "timestamp_ns": 1_750_000_000_123_456_789,
                    "values": {"orbit.radius_km": 6983.4, "step": 7, "eclipse": True}}
    values = body["values"]
    assert list(values) == ["orbit.radius_km", "step", "eclipse"]  # the caller's order
    assert type(values["orbit.radius_km"]) is float
    assert type(values["step"]) is int
    assert type(values["eclipse"]) is bool


def test_frame_bytes_are_exact(client, runner):
    #  The codec's encoding of the same message: shortest ints, float 64, str keys.
    client.send({"x": 8.0, "n": -1, "ok": False}, timestamp_ns=5)
    expected = (b"\x94\xa4LYNX\x01\xa9TELEMETRY\x83"
                b"\xa3seq\x00\xactimestamp_ns\x05\xa6values\x83"
                b"\xa1x\xcb\x40\x20\x00\x00\x00\x00\x00\x00"
                b"\xa1n\xff"
                b"\xa2ok\xc2")
    assert runner.recv_raw() == [expected]


def test_seq_counts_every_frame_from_zero(client, runner):
    for i in range(5):
        client.send({"i": i}, timestamp_ns=i)
    for i in range(5):
        body = runner.recv_body()
        assert body["seq"] == i and body["values"] == {"i": i}
    assert client.seq == 5 and client.dropped == 0


def test_timestamp_defaults_to_now(client, runner):
    before = time.time_ns()
    client.send({"a": 1.0})
    after = time.time_ns()
    assert before <= runner.recv_body()["timestamp_ns"] <= after


def test_timestamp_zero_is_sent_as_zero(client, runner):
    #  Simulation time starts at 0: only None means "now".
    client.send({"a": 1.0}, timestamp_ns=0)
    assert runner.recv_body()["timestamp_ns"] == 0


def test_empty_values_are_a_valid_frame(client, runner):
    client.send({}, timestamp_ns=1)
    assert runner.recv_body()["values"] == {}


def test_nan_and_infinities_are_sent_as_they_are(client, runner):
    client.send({"nan": math.nan, "inf": math.inf, "-inf": -math.inf}, timestamp_ns=1)
    values = runner.recv_body()["values"]
    assert math.isnan(values["nan"])
    assert values["inf"] == math.inf and values["-inf"] == -math.inf


def test_int64_limits(client, runner):
    client.send({"min": -(1 << 63), "max": (1 << 63) - 1}, timestamp_ns=-(1 << 63))
    body = runner.recv_body()
    assert body["values"] == {"min": -(1 << 63), "max": (1 << 63) - 1}
    assert body["timestamp_ns"] == -(1 << 63)


def test_number_subclasses_are_converted(client, runner):
    class Meters(float):
        pass

    client.send({"m": Meters(2.5), "f": fractions.Fraction(1, 4)}, timestamp_ns=1)
    values = runner.recv_body()["values"]
    assert values == {"m": 2.5, "f": 0.25}
    assert all(type(value) is float for value in values.values())


def test_numpy_scalars_are_converted(client, runner):
    numpy = pytest.importorskip("numpy")
    client.send({"f64": numpy.float64(1.5), "f32": numpy.float32(0.5), "i64": numpy.int64(-3),
                 "u8": numpy.uint8(200), "flag": numpy.bool_(True)},
                timestamp_ns=numpy.int64(42))
    body = runner.recv_body()
    assert body["timestamp_ns"] == 42
    assert body["values"] == {"f64": 1.5, "f32": 0.5, "i64": -3, "u8": 200, "flag": True}
    assert [type(v) for v in body["values"].values()] == [float, float, int, int, bool]


#  --------------------------------------------------------------------------
#  Programming errors raise at once and consume nothing


@pytest.mark.parametrize("value", [None, "6983.4", b"1", [1.0], {"x": 1.0}, 1 + 2j, object()],
                         ids=["None", "str", "bytes", "list", "dict", "complex", "object"])
def test_a_value_of_another_type_raises_type_error_naming_the_key(client, runner, value):
    with pytest.raises(TypeError, match="orbit.bad"):
        client.send({"orbit.ok": 1.0, "orbit.bad": value})
    assert client.seq == 0 and client.dropped == 0
    client.send({"orbit.ok": 1.0}, timestamp_ns=1)
    assert runner.recv_body()["seq"] == 0  # the failed send used no sequence number
    runner.assert_empty()


def test_decimal_is_not_a_real_number(client):
    import decimal
    with pytest.raises(TypeError, match="'d'"):
        client.send({"d": decimal.Decimal("1.5")})


@pytest.mark.parametrize("key", [1, 1.5, b"name", None, ("a", "b")])
def test_a_non_string_key_raises_type_error(client, key):
    with pytest.raises(TypeError, match="names must be str"):
        client.send({key: 1.0})


@pytest.mark.parametrize("values", [[("a", 1.0)], 1.0, "a=1", None])
def test_values_must_be_a_mapping(client, values):
    with pytest.raises(TypeError, match="must be a dict"):
        client.send(values)


@pytest.mark.parametrize("timestamp", [1.5e18, "0", True])
def test_timestamp_must_be_an_integer(client, timestamp):
    with pytest.raises(TypeError, match="timestamp_ns"):
        client.send({"a": 1.0}, timestamp_ns=timestamp)


def test_out_of_range_integers_raise_value_error(client):
    with pytest.raises(ValueError, match="'big'"):
        client.send({"big": 1 << 63})
    with pytest.raises(ValueError, match="'small'"):
        client.send({"small": -(1 << 63) - 1})
    with pytest.raises(ValueError, match="timestamp_ns"):
        client.send({"a": 1}, timestamp_ns=1 << 64)
    assert client.seq == 0


def test_keys_the_codec_refuses_raise_value_error(client, runner):
    with pytest.raises(ValueError, match="NUL"):
        client.send({"a\0b": 1.0})
    with pytest.raises(ValueError, match="UTF-8"):
        client.send({"ok": 1.0, "bad\udc80": 2.0})
    client.send({"ok": 1.0}, timestamp_ns=1)
    assert runner.recv_body() == {"seq": 0, "timestamp_ns": 1, "values": {"ok": 1.0}}


#  --------------------------------------------------------------------------
#  Off when the runner did not ask for telemetry


def test_unset_variable_gives_a_silent_no_op(monkeypatch, capsys):
    monkeypatch.delenv(ltc.ENV_URL, raising=False)
    client = telemetry_client_from_env()
    assert isinstance(client, NullTelemetryClient) and not client.active
    assert client.send({"a": 1.0}) is False
    assert client.send({"bad": object(), 3: None}, timestamp_ns="never raises") is False
    assert client.send(None) is False
    client.close()
    client.close()
    assert client.dropped == 0
    with telemetry_client_from_env() as again:
        again.send({"a": 1.0})
    assert capsys.readouterr() == ("", "")


def test_empty_variable_is_unset(capsys):
    assert isinstance(telemetry_client_from_env({ltc.ENV_URL: ""}), NullTelemetryClient)
    assert capsys.readouterr() == ("", "")


def test_malformed_url_gives_a_no_op_that_says_why(capsys):
    client = telemetry_client_from_env({ltc.ENV_URL: "not-a-url"})
    assert isinstance(client, NullTelemetryClient) and not client.active
    assert client.error.startswith("connect not-a-url: ")
    assert "connect not-a-url" in capsys.readouterr().err
    assert client.send({"a": 1.0}) is False


def test_from_env_connects_to_the_variable(monkeypatch, runner):
    monkeypatch.setenv(ltc.ENV_URL, runner.url)
    with telemetry_client_from_env() as client:
        assert isinstance(client, TelemetryClient) and client.active
        assert client.url == runner.url
        client.send({"a": 1.0}, timestamp_ns=3)
    assert runner.recv_body() == {"seq": 0, "timestamp_ns": 3, "values": {"a": 1.0}}


#  --------------------------------------------------------------------------
#  Lifetime


def test_context_manager_closes(runner):
    with TelemetryClient(runner.url) as client:
        assert not client.closed
        client.send({"a": 1.0}, timestamp_ns=1)
    assert client.closed
    assert client.send({"a": 2.0}) is False  # ignored after close, not counted
    assert client.seq == 1 and client.dropped == 0
    client.close()  # idempotent
    assert runner.recv_body()["values"] == {"a": 1.0}
    runner.assert_empty()


def test_context_manager_closes_on_exception(runner):
    with pytest.raises(RuntimeError):
        with TelemetryClient(runner.url) as client:
            raise RuntimeError("scenario failed")
    assert client.closed


def test_close_delivers_the_frames_still_queued(runner):
    #  A scenario sends its last samples and exits: close() waits (bounded) for them.
    client = TelemetryClient(runner.url)
    for i in range(2_000):
        client.send({"i": i}, timestamp_ns=i)
    client.close()
    assert [runner.recv_body()["seq"] for _ in range(2_000)] == list(range(2_000))


#  --------------------------------------------------------------------------
#  Never blocks: a full queue drops frames and counts them


def test_flood_without_a_runner_drops_and_counts(dead_url):
    with TelemetryClient(dead_url) as client:
        queued = sum(client.send({"i": i, "x": 0.5}, timestamp_ns=i)
                     for i in range(FLOOD_FRAMES))
        assert client.dropped > 0
        assert queued + client.dropped == FLOOD_FRAMES
        assert queued <= ltc.SNDHWM_FRAMES  # the queue is bounded
        assert client.seq == FLOOD_FRAMES  # dropped frames used their sequence numbers


def test_flood_into_a_runner_that_never_reads_drops_and_counts(zmq_context):
    stalled = zmq_context.socket(zmq.PULL)
    stalled.setsockopt(zmq.LINGER, 0)
    stalled.setsockopt(zmq.RCVHWM, 10)
    stalled.setsockopt(zmq.RCVBUF, 4096)
    stalled.bind("tcp://127.0.0.1:*")
    url = stalled.getsockopt_string(zmq.LAST_ENDPOINT)
    #  ~400 bytes a frame, 40 MB in all: kernel buffers cannot swallow the flood.
    sample = {f"channel.{i:02d}": float(i) for i in range(20)}
    with TelemetryClient(url) as client:
        for i in range(FLOOD_FRAMES):
            client.send(sample, timestamp_ns=i)
        assert client.dropped > 0
        assert client.seq == FLOOD_FRAMES


def test_receiver_counts_dropped_frames_as_gaps_in_seq(zmq_context):
    #  The runner is not listening yet: 3 frames wait in the queue, 7 are dropped. Once it
    #  listens it gets seq 0, 1, 2 and then 10: a gap of 7.
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.bind(("127.0.0.1", 0))
    port = holder.getsockname()[1]
    with TelemetryClient(f"tcp://127.0.0.1:{port}", sndhwm=3) as client:
        for i in range(10):
            client.send({"i": i}, timestamp_ns=i)
        assert (client.seq, client.dropped) == (10, 7)
        holder.close()
        late = Runner(zmq_context, f"tcp://127.0.0.1:{port}")
        assert [late.recv_body()["seq"] for _ in range(3)] == [0, 1, 2]
        assert client.send({"i": 10}, timestamp_ns=10)
        assert late.recv_body() == {"seq": 10, "timestamp_ns": 10, "values": {"i": 10}}

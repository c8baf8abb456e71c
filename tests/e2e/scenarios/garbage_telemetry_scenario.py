#!/usr/bin/python3
"""A scenario that floods the runner's telemetry socket with junk from a raw pyzmq PUSH (no
client library, nothing it checks), then sends 10 good frames with the real client and exits 0.

The junk cycles through: empty frames, bytes that are not msgpack, random bytes, frames of the
wrong command, values that are strings, arrays or maps, a negative seq, a thousand-deep map,
and ends with a two-part message and a 2 MiB frame (over the runner's 1 MiB limit: libzmq
drops that connection). LYNX_E2E_GARBAGE_FRAMES sets how many (default 20000); the scenario
prints the number of junk messages it sent.
"""

import os
import sys

import msgpack
import zmq

from lynx_telemetry_client import telemetry_client_from_env


def telemetry(body):
    return msgpack.packb(["LYNX", 1, "TELEMETRY", body], use_bin_type=True)


def junk_frames():
    #  A thousand-deep map, by hand: msgpack's packer stops at 512 levels.
    deep = (b"\x94\xa4LYNX\x01\xa9TELEMETRY\x81\xa6values" + b"\x81\xa1a" * 1000 + b"\xc0")
    return [
        b"",
        b"not msgpack at all",
        os.urandom(64),
        msgpack.packb(["LYNX", 1, "HEARTBEAT", {"runner_id": "impostor"}]),
        telemetry({"seq": 0, "timestamp_ns": 0, "values": {"x": "a string"}}),
        telemetry({"seq": 0, "timestamp_ns": 0, "values": {"x": [1, 2, 3]}}),
        telemetry({"seq": 0, "timestamp_ns": 0, "values": {"x": {"y": 1}}}),
        telemetry({"seq": -5, "timestamp_ns": 0, "values": {"x": 1.0}}),
        deep,
    ]


def main():
    count = int(os.environ.get("LYNX_E2E_GARBAGE_FRAMES", "20000"))
    context = zmq.Context()
    push = context.socket(zmq.PUSH)
    push.setsockopt(zmq.LINGER, 30000)
    push.connect(os.environ["TETRYX_TELEMETRY_URL"])
    frames = junk_frames()
    for index in range(count):
        push.send(frames[index % len(frames)])
    push.send_multipart([b"one", b"two"])
    push.send(b"\0" * (2 * 1024 * 1024))
    push.close()
    context.term()
    print(f"garbage_telemetry_scenario: sent {count + 1} junk messages and one 2 MiB frame",
          flush=True)

    with telemetry_client_from_env() as client:
        for step in range(10):
            client.send({"step": step, "x": float(step)})
    return 0


if __name__ == "__main__":
    sys.exit(main())

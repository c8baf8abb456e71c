#!/usr/bin/python3
"""A telemetry subscriber for the multi-host tests: SUB to the broker's PUB endpoint (argv[1]),
subscribed to telemetry.* and event.*; prints READY once connected, then one line per message
(its topic). Exits 0 on SIGTERM, as the harness expects of what it stops."""

import os
import signal
import sys

import zmq
import zmq.auth


def main():
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    context = zmq.Context()
    subscriber = context.socket(zmq.SUB)
    subscriber.setsockopt(zmq.LINGER, 0)
    key_file = os.environ.get("LYNX_SUBSCRIBER_KEY_FILE")
    if key_file:  # the broker's PUB is a CURVE server: present the stack's subscriber key
        subscriber.curve_publickey, subscriber.curve_secretkey = \
            zmq.auth.load_certificate(key_file + "_secret")
        subscriber.curve_serverkey = os.environ["LYNX_BROKER_PUBLIC_KEY"].encode()
    for topic in (b"telemetry.", b"event."):
        subscriber.setsockopt(zmq.SUBSCRIBE, topic)
    subscriber.connect(sys.argv[1])
    print("READY", flush=True)
    try:
        while True:
            topic, *_ = subscriber.recv_multipart()
            print(topic.decode(errors="replace"), flush=True)
    finally:
        subscriber.close()
        context.term()


if __name__ == "__main__":
    main()

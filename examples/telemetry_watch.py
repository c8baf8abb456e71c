#!/usr/bin/python3
"""Watch a batch's live telemetry: a table of the latest values of each of its jobs.

Subscribes to the broker's public PUB socket (see docs/telemetry.md) with the topics
``telemetry.<batch_id>.`` (every frame of the batch's jobs) and ``event.<batch_id>`` (job and
batch status changes), and redraws the table every ``--interval`` seconds::

    /usr/bin/python3 examples/telemetry_watch.py tcp://broker-host:5557 <batch_id>
    /usr/bin/python3 examples/telemetry_watch.py tcp://127.0.0.1:5557 <batch_id> \\
        --variables orbit.radius_km,orbit.speed_m_s --duration 60 --plain

The broker logs its telemetry endpoint at start-up. Frames that the broker or this script could
not keep up with are dropped, never queued without bound: the LOST column counts them, from
the gaps in each job's ``seq`` (each new attempt of a job restarts at 0). Needs only Debian's
python3-zmq and python3-msgpack. Ctrl-C stops it.
"""

import argparse
import math
import os
import shutil
import sys
import time

import msgpack
import zmq
import zmq.auth

MAGIC = "LYNX"
VERSION = 1
RCVHWM = 100_000  # frames queued here before libzmq drops (counted as LOST)


class Job:
    """What we know of one job: its status, counters and latest values."""

    def __init__(self, job_id):
        self.job_id = job_id
        self.status = "-"
        self.frames = 0
        self.lost = 0
        self.last_seq = -1
        self.timestamp_ns = None
        self.values = {}
        self.seen = time.monotonic()

    def on_frame(self, body):
        seq = body.get("seq")
        if isinstance(seq, int):
            # Frames lost before this one: the gap since the previous seq (all of them for the
            # first frame); a seq that goes back is a new attempt and starts a new count.
            if self.last_seq < 0:
                self.lost += seq
            elif seq > self.last_seq:
                self.lost += seq - self.last_seq - 1
            self.last_seq = seq
        self.frames += 1
        self.timestamp_ns = body.get("timestamp_ns")
        values = body.get("values")
        if isinstance(values, dict):
            self.values.update(values)
        if self.status in ("-", "Pending", "Claimed"):
            self.status = "Running"
        self.seen = time.monotonic()


class Watch:
    def __init__(self, batch_id, variables):
        self.batch_id = batch_id
        self.batch_status = "?"
        self.jobs = {}  # job_id -> Job, in order of first appearance
        self.variables = variables  # fixed selection, or None: every name seen
        self.names = {}  # every variable name seen, in order (a dict keeps order)
        self.frames = 0
        self.refused = 0  # messages that were not what docs/telemetry.md describes
        self.rate_mark = (time.monotonic(), 0)
        self.rate = 0.0

    def job(self, job_id):
        job = self.jobs.get(job_id)
        if job is None:
            job = self.jobs[job_id] = Job(job_id)
        return job

    def on_message(self, frames):
        if len(frames) != 2:
            self.refused += 1
            return
        topic = frames[0].decode("utf-8", "replace")
        try:
            payload = msgpack.unpackb(frames[1], raw=False)
        except (ValueError, msgpack.UnpackException):
            self.refused += 1
            return
        if topic.startswith("telemetry."):
            # ["LYNX", 1, "TELEMETRY", {job_id, batch_id, seq, timestamp_ns, values}]
            if (not isinstance(payload, list) or len(payload) != 4 or payload[0] != MAGIC
                    or payload[1] != VERSION or payload[2] != "TELEMETRY"
                    or not isinstance(payload[3], dict)):
                self.refused += 1
                return
            body = payload[3]
            job = self.job(str(body.get("job_id", topic.rsplit(".", 1)[-1])))
            job.on_frame(body)
            self.frames += 1
            for name in body.get("values") or {}:
                self.names.setdefault(name, None)
        elif topic.startswith("event.") and isinstance(payload, dict):
            status = str(payload.get("status", "?"))
            if payload.get("type") == "job" and payload.get("job_id"):
                job = self.job(str(payload["job_id"]))
                job.status = status
                job.seen = time.monotonic()
            elif payload.get("type") == "batch":
                self.batch_status = status
        else:
            self.refused += 1

    def update_rate(self):
        now = time.monotonic()
        then, frames = self.rate_mark
        if now - then >= 1.0:
            self.rate = (self.frames - frames) / (now - then)
            self.rate_mark = (now, self.frames)

    def render(self, width, height):
        """The table as lines that fit width columns and about height rows."""
        lines = []
        lost = sum(job.lost for job in self.jobs.values())
        lines.append(
            f"batch {self.batch_id}  status {self.batch_status}  jobs {len(self.jobs)}  "
            f"frames {self.frames}  frames/s {self.rate:,.0f}  lost {lost}"
            + (f"  refused {self.refused}" if self.refused else ""))
        names = self.variables if self.variables is not None else list(self.names)
        fixed = [("JOB", 10), ("STATUS", 10), ("FRAMES", 9), ("LOST", 7), ("AGE", 6)]
        room = width - sum(w + 1 for _, w in fixed)
        shown = []
        for name in names:
            cell = max(len(name), 12) + 1
            if cell > room:
                break
            shown.append((name, cell - 1))
            room -= cell
        header = " ".join(f"{title:<{w}}" for title, w in fixed)
        header += "".join(f" {name:>{w}}" for name, w in shown)
        lines.append(header)
        # The most recently active jobs when they do not all fit.
        jobs = list(self.jobs.values())
        limit = max(1, height - 4)
        if len(jobs) > limit:
            order = {job_id: i for i, job_id in enumerate(self.jobs)}
            jobs = sorted(jobs, key=lambda job: job.seen, reverse=True)[:limit]
            jobs.sort(key=lambda job: order[job.job_id])
        now = time.monotonic()
        for job in jobs:
            row = (f"{job.job_id[:10]:<10} {job.status[:10]:<10} {job.frames:>9} "
                   f"{job.lost:>7} {now - job.seen:>5.0f}s")
            row += "".join(f" {format_value(job.values.get(name)):>{w}}" for name, w in shown)
            lines.append(row)
        notes = []
        if len(self.jobs) > len(jobs):
            notes.append(f"{len(self.jobs) - len(jobs)} quieter jobs not shown")
        if len(shown) < len(names):
            notes.append(f"{len(names) - len(shown)} more variables: choose with --variables")
        if notes:
            lines.append("(" + "; ".join(notes) + ")")
        return lines


def format_value(value):
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}" if math.isfinite(value) else str(value)
    return str(value)


def draw(watch, redraw):
    """Redraw the screen, or print the table after the previous one."""
    watch.update_rate()
    size = shutil.get_terminal_size((120, 40))
    lines = watch.render(size.columns, size.lines if redraw else 10_000)
    if redraw:
        sys.stdout.write("\x1b[H\x1b[2J" + "\n".join(lines) + "\n")
    else:
        sys.stdout.write("\n".join(lines) + "\n\n")
    sys.stdout.flush()


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("endpoint", help="the broker's telemetry PUB endpoint, tcp://host:port")
    parser.add_argument("batch_id", help="the batch to watch")
    parser.add_argument("--variables", help="comma-separated variables to show, in order "
                        "(default: every variable, in order of appearance)")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between redraws")
    parser.add_argument("--duration", type=float, help="stop after this many seconds")
    parser.add_argument("--plain", action="store_true",
                        help="print each table after the last instead of redrawing the screen "
                        "(the default when stdout is not a terminal)")
    args = parser.parse_args(argv)
    if args.interval <= 0:
        parser.error("--interval must be above 0")
    if args.variables is not None:
        args.variables = [name.strip() for name in args.variables.split(",") if name.strip()]
    return args


def main(argv=None):
    args = parse_args(argv)
    watch = Watch(args.batch_id, args.variables)
    redraw = sys.stdout.isatty() and not args.plain
    context = zmq.Context()
    sub = context.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.RCVHWM, RCVHWM)
    # The broker's PUB is a CURVE server (docs/security.md): present an enrolled subscriber
    # key (LYNX_SUBSCRIBER_KEY_FILE, its _secret beside it) and pin the broker's key.
    key_file = os.environ.get("LYNX_SUBSCRIBER_KEY_FILE")
    if key_file:
        sub.curve_publickey, sub.curve_secretkey = zmq.auth.load_certificate(key_file + "_secret")
        sub.curve_serverkey = os.environ["LYNX_BROKER_PUBLIC_KEY"].encode()
    # The trailing dot keeps "telemetry.<id>" from matching a longer batch id.
    sub.setsockopt_string(zmq.SUBSCRIBE, f"telemetry.{args.batch_id}.")
    sub.setsockopt_string(zmq.SUBSCRIBE, f"event.{args.batch_id}")
    sub.connect(args.endpoint)
    poller = zmq.Poller()
    poller.register(sub, zmq.POLLIN)
    started = time.monotonic()
    next_draw = started
    try:
        while True:
            now = time.monotonic()
            if args.duration is not None and now - started >= args.duration:
                break
            if now >= next_draw:
                draw(watch, redraw)
                next_draw = now + args.interval
            timeout_ms = max(0, int((next_draw - time.monotonic()) * 1000))
            if poller.poll(timeout_ms):
                # Drain what is queued, but redraw on time even under a flood.
                while time.monotonic() < next_draw:
                    try:
                        watch.on_message(sub.recv_multipart(zmq.NOBLOCK))
                    except zmq.Again:
                        break
    except KeyboardInterrupt:
        pass
    finally:
        sub.close()
        context.term()
    draw(watch, redraw)  # the final state
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The CLI a Slurm user expects (issue 9.5): `lynx batches` (the queue, with filters),
`lynx job` (one job and its attempt history), `lynx status` with the submitter and
`waiting_reason`, and `lynx watch` with its summary view, --raw stream and --job filter."""

import json
import re
import socket

from lynx_harness import UUID_RE, probe_env, scaled, scenario_path, tutorial_batch
from test_cli import lynx, ok

PROBE = scenario_path("probe_scenario.py")
TELEMETRY = scenario_path("telemetry_scenario.py")
USER_ENV = {"USER": "tester"}


def submit(url, body, tmp, *args):
    path = tmp / f"{body['name']}.json"
    path.write_text(json.dumps(body))
    done = ok(lynx("submit", path, *args, url=url, env=USER_ENV))
    match = re.search(r"^submitted batch (\S+):", done.stdout, re.M)
    assert match and UUID_RE.match(match.group(1)), done.stdout
    return match.group(1)


def test_batches_job_and_status_show_the_queue(stack):
    stack.start_broker()
    gateway = stack.start_gateway()
    url = gateway.url
    me = f"tester@{socket.gethostname()}"

    #  No runner yet: the batch waits, and status says why and who submitted it.
    waiting = submit(url, tutorial_batch("waits", 2, max_retries=1), stack.root)
    status = ok(lynx("status", waiting, url=url))
    assert re.search(rf"^submitter\s+{re.escape(me)}$", status.stdout, re.M), status.stdout
    assert re.search(r"^waiting\s+\S", status.stdout, re.M), status.stdout

    state = stack.root / "probe"
    stack.start_runner("queue-01", PROBE, max_concurrent_jobs=2,
                       extra_env=probe_env(state, fail_attempts=1))
    stack.wait_batch_terminal(waiting, timeout=scaled(60))
    other = submit(url, tutorial_batch("second", 1, max_retries=1), stack.root)
    stack.wait_batch_terminal(other, timeout=scaled(60))

    listing = ok(lynx("batches", url=url))
    lines = {line.split()[0]: line for line in listing.stdout.splitlines()[1:] if line.strip()}
    assert waiting in lines and other in lines, listing.stdout
    row = lines[waiting]
    assert "waits" in row and "Completed" in row and "2/2 100%" in row and me in row, row
    assert re.search(r"\d+[smhd]$", row), row
    assert listing.stdout.rstrip().endswith("2 batches"), listing.stdout

    assert "0 batches" in ok(lynx("batches", "--active", url=url)).stdout
    assert "2 batches" in ok(lynx("batches", "--submitter", "me", url=url, env=USER_ENV)).stdout
    assert "0 batches" in ok(lynx("batches", "--submitter", "someone-else", url=url)).stdout
    only = ok(lynx("batches", "--status", "Completed", "--json", url=url))
    assert {b["id"] for b in json.loads(only.stdout)} == {waiting, other}, only.stdout
    ok(lynx("batches", "--status", "Nope", url=url), 2)

    #  One job: the first attempt failed (exit 1, charged), the second completed.
    job_id = stack.list_jobs(waiting)[0]["id"]
    shown = ok(lynx("job", job_id, url=url))
    assert re.search(rf"^job\s+{job_id}$", shown.stdout, re.M), shown.stdout
    assert re.search(r"^status\s+Completed$", shown.stdout, re.M), shown.stdout
    assert re.search(r"^attempt\s+2 \(retries 1 of 1\)$", shown.stdout, re.M), shown.stdout
    attempt_rows = [line for line in shown.stdout.splitlines() if re.match(r"^[12]\s", line)]
    assert len(attempt_rows) == 2, shown.stdout
    assert "queue-01" in attempt_rows[0] and "Failed" in attempt_rows[0], attempt_rows
    assert "exit 1" in attempt_rows[0] and " yes " in attempt_rows[0], attempt_rows
    assert "Completed" in attempt_rows[1] and "exit 0" in attempt_rows[1], attempt_rows
    raw = json.loads(ok(lynx("job", job_id, "--json", url=url)).stdout)
    assert [a["attempt"] for a in raw["attempts"]] == [1, 2], raw
    assert raw["attempts"][0]["exit_code"] == 1, raw
    ok(lynx("job", "no-such-job", url=url), 2)


def telemetry_batch(name, runs):
    body = tutorial_batch(name, runs, max_parallel_jobs=4)
    body["config"]["telemetry"] = {"sampling_rate_hz": 100.0,
                                   "variables": ["orbit.altitude_km", "orbit.speed_kms"]}
    return body


def test_watch_summary_raw_and_job_filter(stack):
    stack.start_broker()
    gateway = stack.start_gateway()
    url = gateway.url
    #  8 s of frames: the summary block printed after 5 s holds values.
    frames = [{"orbit.altitude_km": 400.0 + i, "orbit.speed_kms": 7.6} for i in range(80)]
    env = {"LYNX_E2E_STATE_DIR": str(stack.root / "telemetry"),
           "LYNX_E2E_FRAMES": json.dumps(frames), "LYNX_E2E_STEP_SECS": "0.1"}
    (stack.root / "telemetry").mkdir()
    stack.start_runner("watch-02", TELEMETRY, max_concurrent_jobs=2, extra_env=env)

    batch_id = submit(url, telemetry_batch("watched", 2), stack.root)
    summary = ok(lynx("watch", batch_id, "--variables", "orbit.altitude_km", url=url,
                      timeout=120))
    out = summary.stdout
    assert re.search(rf"^batch {batch_id} \w+ +\d+/2 ended, \d+ failed, \d+ running", out,
                     re.M), out
    job_ids = [job["id"] for job in stack.list_jobs(batch_id)]
    for job_id in job_ids:
        #  Full ids, and a line when it ends with its frames (the first may precede our
        #  subscription) and the last value of the chosen variable.
        assert re.search(rf"^job {job_id} Completed frames=\d+ orbit\.altitude_km=479$", out,
                         re.M), out
    assert re.search(r"^  \S+  frames=\d+ orbit\.altitude_km=4\d\d$", out, re.M), out
    assert "orbit.speed_kms" not in out, out
    assert re.search(rf"^batch {batch_id} Completed +2/2 ended, 0 failed, 0 running", out,
                     re.M), out
    assert out.rstrip().endswith(f"batch {batch_id} Completed"), out
    #  The summary is bounded: far fewer lines than the frames the jobs sent.
    assert len(out.splitlines()) < 40, out

    second = submit(url, telemetry_batch("raw", 2), stack.root)
    stack.wait_for(lambda: any(j["status"] == "Running" for j in stack.list_jobs(second)),
                   scaled(30), what="a job of the second batch to run")
    target = next(j["id"] for j in stack.list_jobs(second) if j["status"] == "Running")
    raw = ok(lynx("watch", second, "--raw", "--job", target, url=url, timeout=120))
    frame_lines = [line for line in raw.stdout.splitlines() if line.startswith("frame ")]
    assert frame_lines, raw.stdout
    assert all(line.startswith(f"frame job={target} seq=") for line in frame_lines), raw.stdout
    assert "orbit.speed_kms=7.6" in frame_lines[-1], frame_lines[-1]
    assert raw.stdout.rstrip().endswith(f"job {target} Completed"), raw.stdout
    ok(lynx("watch", second, "--job", "not-a-job", url=url), 2)

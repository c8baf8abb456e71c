"""Artifacts brought home: a job's files travel from the runner to the broker before the job
is reported ended, and come back through the gateway (list, download with ETag and Range,
logs with tail), byte for byte what the scenario wrote. What must not travel (a link to
/etc/passwd, a FIFO) is skipped and named; no path leaves the job's files.
"""

import hashlib
import http.client
import json
import os
import time
import urllib.parse
from pathlib import Path

from lynx_harness import auth_headers, scenario_path, tutorial_batch

SCENARIO = scenario_path("artifacts_scenario.py")


def raw_get(stack, path, headers=None):
    """GET path exactly as written (no client-side normalising): (status, headers, bytes)."""
    url = urllib.parse.urlsplit(stack.gateway.url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    try:
        connection.putrequest("GET", path, skip_accept_encoding=True)
        for key, value in auth_headers(headers).items():
            connection.putheader(key, value)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def start(stack, tmp_path, **runner):
    state = tmp_path / "state"
    state.mkdir()
    stack.start_broker()
    stack.start_gateway()
    env = {"LYNX_E2E_STATE_DIR": str(state)}
    env.update(runner.pop("extra_env", {}))
    stack.start_runner("art-01", SCENARIO, max_concurrent_jobs=2, extra_env=env, **runner)
    return state


def run_batch(stack, runs=2, **config):
    body = tutorial_batch("artifacts", runs)
    body["config"].update(config)
    batch_id = stack.submit(body)["batch_id"]
    final = stack.wait_batch_terminal(batch_id, timeout=60)
    assert final["batch"]["status"] == "Completed", final
    return batch_id, stack.list_jobs(batch_id)


def test_files_reach_the_broker_and_come_back_byte_for_byte(stack, tmp_path):
    state = start(stack, tmp_path)
    batch_id, jobs = run_batch(stack)
    for job in jobs:
        wrote = json.loads((state / f"{job['id']}.json").read_text())
        result = stack.get_ok(f"/jobs/{job['id']}/results")
        #  output_files keeps the documented runner-side paths.
        assert any(p.endswith("/summary.json") for p in result["output_files"]), result
        by_name = {a["name"]: a for a in result["artifacts"]}
        assert set(by_name) == {"summary.json", "plots/data.bin", "stdout.log", "stderr.log"}, \
            by_name
        for name in ("summary.json", "plots/data.bin"):
            assert by_name[name]["sha256"] == wrote[name], (name, by_name[name], wrote)
        assert by_name["plots/data.bin"]["size"] == 300000
        assert by_name["summary.json"]["content_type"] == "application/json"
        skipped = {s["name"]: s["reason"] for s in result["artifacts_skipped"]}
        assert skipped == {"passwd": "symbolic link (not followed)",
                           "pipe": "not a regular file (device, socket or FIFO)"}, skipped

        listing = stack.get_ok(f"/jobs/{job['id']}/artifacts")
        assert listing["count"] == 4 and listing["job_id"] == job["id"], listing
        for artifact in listing["artifacts"]:
            status, headers, data = raw_get(stack, artifact["url"])
            assert status == 200, (artifact, status, data[:200])
            assert hashlib.sha256(data).hexdigest() == artifact["sha256"], artifact
            assert int(headers["Content-Length"]) == artifact["size"], headers
            assert headers["ETag"] == f'"{artifact["sha256"]}"', headers
            assert headers["Content-Type"] == artifact["content_type"], headers
        summary = json.loads(raw_get(stack, by_name["summary.json"]["url"])[2])
        assert summary["run_id"] == job["run_id"], summary

        #  The files are the broker's now: under its data dir, one set per job.
        stored = stack.broker.data_dir / "artifacts" / batch_id / job["id"]
        assert [p.name for p in stored.iterdir()] == ["a1"], list(stored.iterdir())
        data = (stored / "a1" / "plots" / "data.bin").read_bytes()
        assert hashlib.sha256(data).hexdigest() == wrote["plots/data.bin"]


def test_ranges_etags_and_logs(stack, tmp_path):
    start(stack, tmp_path)
    _, jobs = run_batch(stack, runs=1)
    job = jobs[0]
    base = f"/jobs/{job['id']}/artifacts/plots/data.bin"
    _, headers, whole = raw_get(stack, base)
    status, headers, part = raw_get(stack, base, {"Range": "bytes=1000-299999"})
    assert status == 206 and part == whole[1000:], (status, len(part))
    assert headers["Content-Range"] == "bytes 1000-299999/300000", headers
    status, headers, part = raw_get(stack, base, {"Range": "bytes=-10"})
    assert status == 206 and part == whole[-10:]
    status, headers, _ = raw_get(stack, base, {"Range": "bytes=300000-"})
    assert status == 416 and headers["Content-Range"] == "bytes */300000", (status, headers)
    status, _, body = raw_get(stack, base, {"If-None-Match": headers_etag(stack, base)})
    assert status == 304 and body == b"", status

    status, headers, text = raw_get(stack, f"/jobs/{job['id']}/logs/stdout")
    assert status == 200 and text.decode() == \
        f"first line\nsecond line\nrun {job['run_id']} done\n", text
    assert headers["Content-Type"] == "text/plain", headers
    status, _, text = raw_get(stack, f"/jobs/{job['id']}/logs/stdout?tail=2")
    assert status == 200 and text.decode() == f"second line\nrun {job['run_id']} done\n", text
    status, _, text = raw_get(stack, f"/jobs/{job['id']}/logs/stderr?tail=1")
    assert status == 200 and text.decode() == "warning: two\n", text
    status, _, text = raw_get(stack, f"/jobs/{job['id']}/logs/stderr?tail=0")
    assert status == 400, (status, text)
    assert raw_get(stack, f"/jobs/{job['id']}/logs/other")[0] == 404


def headers_etag(stack, path):
    return raw_get(stack, path)[1]["ETag"]


def test_no_path_leaves_the_jobs_files(stack, tmp_path):
    start(stack, tmp_path)
    _, jobs = run_batch(stack, runs=1)
    job_id = jobs[0]["id"]
    for name in ("..%2F..%2F..%2F..%2Fetc%2Fpasswd", "../../../../etc/passwd",
                 "%2Fetc%2Fshadow", "passwd", "pipe", "plots%2F..%2F..%2Fsummary.json",
                 "plots/../summary.json", "plots", "nonexistent"):
        status, _, body = raw_get(stack, f"/jobs/{job_id}/artifacts/{name}")
        assert status == 404, (name, status, body[:200])
        assert b"root:" not in body
    assert raw_get(stack, "/jobs/no-such-job/artifacts")[0] == 404
    assert raw_get(stack, "/jobs/no-such-job/artifacts/summary.json")[0] == 404


def test_policy_and_keep_local_outputs(stack, tmp_path):
    state = start(stack, tmp_path, extra_config={"keep_local_outputs": False})
    _, jobs = run_batch(stack, runs=1,
                        artifacts={"collect": ["*.json", "stdout.log"], "max_file_bytes": 1000})
    job = jobs[0]
    wrote = json.loads((state / f"{job['id']}.json").read_text())
    result = stack.get_ok(f"/jobs/{job['id']}/results")
    assert sorted(a["name"] for a in result["artifacts"]) == ["stdout.log", "summary.json"]
    #  Not collected: not listed anywhere; only what is refused or too big is skipped.
    assert "plots/data.bin" not in {s["name"] for s in result["artifacts_skipped"]}
    #  keep_local_outputs: false: the runner removed its copy once the broker had the files.
    stack.wait_for(lambda: not Path(wrote["output_dir"]).exists(), 10,
                   what="the runner to remove the job's output directory")
    status, _, data = raw_get(stack, f"/jobs/{job['id']}/artifacts/summary.json")
    assert status == 200 and hashlib.sha256(data).hexdigest() == wrote["summary.json"]
    os.sync()


def test_cli_lists_downloads_and_prints_logs(stack, tmp_path):
    from test_cli import lynx, ok  # the CLI runner of the CLI tests

    state = start(stack, tmp_path)
    batch_id, jobs = run_batch(stack, runs=2)
    url = stack.gateway.url
    job = jobs[0]
    wrote = json.loads((state / f"{job['id']}.json").read_text())

    listing = ok(lynx("artifacts", job["id"], url=url)).stdout
    for name in ("summary.json", "plots/data.bin", "stdout.log", "4 files", "passwd",
                 "symbolic link (not followed)"):
        assert name in listing, listing

    out = tmp_path / "one-job"
    done = ok(lynx("artifacts", job["id"], "--out", out, url=url))
    assert done.stdout.count("sha256 ok") == 4, done.stdout
    for name in ("summary.json", "plots/data.bin"):
        got = hashlib.sha256((out / name).read_bytes()).hexdigest()
        assert got == wrote[name], name
    assert not list(out.rglob("*.partial"))

    single = ok(lynx("artifacts", job["id"], "--name", "summary.json", url=url)).stdout
    assert json.loads(single)["run_id"] == job["run_id"], single

    every = tmp_path / "every-run"
    done = ok(lynx("artifacts", batch_id, "--name", "summary.json", "--out", every, url=url))
    assert "2 of 2 runs" in done.stdout, done.stdout
    for other in jobs:
        summary = json.loads((every / f"run-{other['run_id']}" / "summary.json").read_text())
        assert summary["run_id"] == other["run_id"], summary

    assert ok(lynx("logs", job["id"], "--tail", "1", url=url)).stdout == \
        f"run {job['run_id']} done\n"
    assert ok(lynx("logs", job["id"], "--stderr", url=url)).stdout == \
        "warning: one\nwarning: two\n"
    missing = lynx("artifacts", job["id"], "--name", "nope.txt", url=url)
    assert missing.returncode == 2 and "has no file 'nope.txt'" in missing.stderr, missing
    unsafe = lynx("artifacts", job["id"], "--name", "../x", "--out", tmp_path, url=url)
    assert unsafe.returncode == 2, unsafe
    assert lynx("artifacts", "no-such-id", url=url).returncode == 2


def test_retention_removes_ended_batches_files_but_never_a_running_ones(stack, tmp_path):
    from lynx_harness import probe_env
    state = tmp_path / "probe"
    stack.start_broker(extra_args=["--artifact-retention-days", "1"])
    stack.start_gateway()
    stack.start_runner("ret-01", scenario_path("probe_scenario.py"),
                       extra_env=probe_env(state, sleep_secs=4))
    ended, ended_jobs = run_batch(stack, runs=1)
    running = stack.submit(tutorial_batch("still-running", 2, max_parallel_jobs=1))["batch_id"]
    stack.wait_for(lambda: stack.get_ok(f"/batches/{running}")["batch"]["completed_jobs"] == 1,
                   30, what="the running batch's first job to end")
    #  Both batches' files look three days old; only the ended batch's may go.
    old = time.time() - 3 * 86400
    for path in (stack.broker.data_dir / "artifacts").rglob("*"):
        os.utime(path, (old, old), follow_symlinks=False)
    stack.broker.may_exit = True  # stopped on purpose, cleanly
    assert stack.broker.stop() is None
    stack.restart_broker()  # a sweep runs at start-up, then hourly
    stack.wait_healthy()
    job = ended_jobs[0]
    stack.wait_for(lambda: stack.get_ok(f"/jobs/{job['id']}/artifacts")["count"] == 0, 20,
                   what="the ended batch's artifacts to be removed")
    assert raw_get(stack, f"/jobs/{job['id']}/logs/stdout")[0] == 404
    assert not (stack.broker.data_dir / "artifacts" / ended).exists()
    kept = [j for j in stack.list_jobs(running) if j["status"] == "Completed"]
    assert stack.get_ok(f"/jobs/{kept[0]['id']}/artifacts")["count"] >= 1
    assert "artifacts removed batch=" + ended in stack.broker.stderr_text()


def _peak_rss_mib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def test_a_1_gib_file_travels_and_streams_in_bounded_memory(stack, tmp_path):
    size = 1 << 30
    state = start(stack, tmp_path, extra_env={"LYNX_E2E_ARTIFACT_BYTES": str(size)})
    _, jobs = run_batch(stack, runs=1)
    job = jobs[0]
    wrote = json.loads((state / f"{job['id']}.json").read_text())
    listing = stack.get_ok(f"/jobs/{job['id']}/artifacts")
    big = [a for a in listing["artifacts"] if a["name"] == "plots/data.bin"][0]
    assert big["size"] == size and big["sha256"] == wrote["plots/data.bin"], big
    gateway_before = _peak_rss_mib(stack.gateway.pid)
    url = urllib.parse.urlsplit(stack.gateway.url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=300)
    connection.request("GET", big["url"], headers=auth_headers())
    response = connection.getresponse()
    assert response.status == 200 and int(response.getheader("Content-Length")) == size
    digest, got = hashlib.sha256(), 0
    while True:
        block = response.read(1 << 20)
        if not block:
            break
        digest.update(block)
        got += len(block)
    connection.close()
    assert got == size and digest.hexdigest() == big["sha256"]
    #  Neither the broker nor the gateway ever held the file: their peaks stay far below it
    #  (the sanitizer build's allocator keeps freed chunks for a while, hence the margin).
    assert _peak_rss_mib(stack.gateway.pid) - gateway_before < 512, _peak_rss_mib(stack.gateway.pid)
    assert _peak_rss_mib(stack.broker.pid) < 768, _peak_rss_mib(stack.broker.pid)


def test_one_file_of_every_run_as_one_tar_gz(stack, tmp_path):
    import io
    import tarfile
    state = start(stack, tmp_path)
    batch_id, jobs = run_batch(stack, runs=3)
    status, headers, body = raw_get(stack, f"/batches/{batch_id}/artifacts/plots/data.bin")
    assert status == 200 and headers["Content-Type"] == "application/gzip", (status, headers)
    assert "attachment" in headers["Content-Disposition"], headers
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as archive:
        members = archive.getmembers()
        assert [m.name for m in members] == [f"run-{j['run_id']}/plots/data.bin"
                                             for j in sorted(jobs, key=lambda j: j["run_id"])]
        for job in jobs:
            data = archive.extractfile(f"run-{job['run_id']}/plots/data.bin").read()
            wrote = json.loads((state / f"{job['id']}.json").read_text())
            assert hashlib.sha256(data).hexdigest() == wrote["plots/data.bin"], job
    status, _, body = raw_get(stack, f"/batches/{batch_id}/artifacts/nothing.txt")
    assert status == 404 and b"has an artifact" in body, (status, body)
    assert raw_get(stack, "/batches/no-such-batch/artifacts/summary.json")[0] == 404

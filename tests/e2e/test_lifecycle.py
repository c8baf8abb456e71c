"""The job lifecycle of job-lifecycle.txt on real processes: retries, timeouts, parallelism
limits, cancellation and the job listing.

Scenarios are probe_scenario.py: it logs every attempt under a state dir shared by the runners
(LYNX_E2E_STATE_DIR), so each test can count what really ran, not only what the broker says.
"""

import time
import urllib.parse

import pytest

from lynx_harness import (JOB_STATES, assert_error, parse_timestamp, pid_gone, probe_env,
                          read_probe_log, scenario_path, tutorial_batch)

PROBE = scenario_path("probe_scenario.py")


def starts(events):
    return [e for e in events if e["event"] == "start"]


def ends(events):
    return [e for e in events if e["event"] == "end"]


def batch_jobs(stack, batch_id):
    jobs = stack.list_jobs(batch_id)
    assert jobs, f"batch {batch_id} lists no jobs"
    return jobs


def wait_pids_gone(stack, pids, timeout, what):
    stack.wait_for(lambda: all(pid_gone(pid) for pid in pids), timeout,
                   what=f"{what}: pids {pids} to be gone")


def test_failed_first_attempt_is_retried_and_completes(stack):
    state = stack.root / "probe"
    stack.start_broker()
    stack.start_gateway()
    stack.start_runner("flaky-01", PROBE, max_concurrent_jobs=2,
                       extra_env=probe_env(state, fail_attempts=1))

    batch_id = stack.submit(tutorial_batch("retry-then-success", 2))["batch_id"]
    final = stack.wait_batch_terminal(batch_id, timeout=60)
    assert final["batch"]["status"] == "Completed", final
    assert (final["batch"]["completed_jobs"], final["batch"]["failed_jobs"]) == (2, 0), final

    for job in batch_jobs(stack, batch_id):
        assert job["status"] == "Completed", job
        assert (job["retries"], job["max_retries"], job["attempt"]) == (1, 3, 2), job
        assert job["error_message"] is None, job
        events = read_probe_log(state, job["id"])
        assert [(e["event"], e["attempt"], e.get("ok")) for e in events] == [
            ("start", 1, None), ("end", 1, False), ("start", 2, None), ("end", 2, True)], events
        result = stack.get_ok(f"/jobs/{job['id']}/results")
        assert result["success"] is True and result["error_message"] is None, result


def test_job_fails_once_its_retries_are_exhausted(stack):
    state = stack.root / "probe"
    stack.start_broker()
    stack.start_gateway()
    stack.start_runner("always-fails", PROBE, extra_env=probe_env(state, fail_attempts=99))

    batch_id = stack.submit(tutorial_batch("retries-exhausted", 1, max_retries=2))["batch_id"]
    final = stack.wait_batch_terminal(batch_id, timeout=60)
    assert final["batch"]["status"] == "Failed", final
    assert (final["batch"]["completed_jobs"], final["batch"]["failed_jobs"]) == (0, 1), final
    assert final["jobs_by_status"]["Failed"] == 1, final

    [job] = batch_jobs(stack, batch_id)
    assert job["status"] == "Failed", job
    assert (job["retries"], job["max_retries"], job["attempt"]) == (2, 2, 3), job
    for text in ("exit status 1", "attempt 3 fails on purpose"):
        assert text in (job["error_message"] or ""), job
    events = read_probe_log(state, job["id"])
    assert [e["attempt"] for e in starts(events)] == [1, 2, 3], events
    assert all(e["ok"] is False for e in ends(events)) and len(ends(events)) == 3, events
    result = stack.get_ok(f"/jobs/{job['id']}/results")
    assert result["success"] is False and "exit status 1" in result["error_message"], result


@pytest.mark.parametrize("ignore_sigterm", [False, True], ids=["sigterm", "sigkill"])
def test_timeout_kills_the_whole_process_group_and_is_not_retried(stack, ignore_sigterm):
    """job_timeout_seconds 2 on a 60 s scenario with a child: the runner sends SIGTERM to the
    group, and SIGKILL 5 s later when the group ignores SIGTERM; the job ends Timeout and is not
    retried. The broker's backstop is for runners that do not enforce the timeout: it must not
    pre-empt a runner that does."""
    state = stack.root / "probe"
    settings = {"sleep_secs": 60, "child": 1}
    if ignore_sigterm:
        settings["ignore_term"] = 1
    stack.start_broker()
    stack.start_gateway()
    stack.start_runner("slow-01", PROBE, extra_env=probe_env(state, **settings))

    body = tutorial_batch("timeout", 1, job_timeout_seconds=2, max_retries=3)
    batch_id = stack.submit(body)["batch_id"]
    [job] = batch_jobs(stack, batch_id)
    started = stack.wait_for(lambda: starts(read_probe_log(state, job["id"])), 30,
                             what="the scenario to start")
    pids = [started[0]["pid"], started[0]["child_pid"]]
    stack.adopt(*pids)  # if the runner fails to kill them, do not leak them

    if ignore_sigterm:
        [sigterm] = stack.wait_for(
            lambda: [e for e in read_probe_log(state, job["id"]) if e["event"] == "sigterm"],
            30, what="the scenario to get SIGTERM")
    wait_pids_gone(stack, pids, 30, "the timed-out scenario and its child")
    gone_at = time.time()
    if ignore_sigterm:
        grace = gone_at - sigterm["time"]
        assert grace >= 4.0, f"SIGKILL came {grace:.1f} s after SIGTERM, not 5 s: " \
                             f"job {job['id']}"

    final = stack.wait_batch_terminal(batch_id, timeout=30)
    assert final["batch"]["status"] == "Failed", final
    assert final["jobs_by_status"]["Timeout"] == 1, final
    assert final["batch"]["failed_jobs"] == 1, final
    job = stack.get_ok(f"/jobs/{job['id']}")
    assert job["status"] == "Timeout", job
    assert (job["retries"], job["attempt"]) == (0, 1), f"a Timeout must not be retried: {job}"
    assert "timed out" in (job["error_message"] or ""), job
    assert "backstop" not in job["error_message"], \
        f"the broker's backstop pre-empted the runner's own timeout: {job}"
    events = read_probe_log(state, job["id"])
    assert len(starts(events)) == 1 and not ends(events), events
    elapsed = parse_timestamp(job["completed_at"]) - parse_timestamp(job["started_at"])
    assert elapsed.total_seconds() < 30, f"killed only after {elapsed}: {job}"
    result = stack.get_ok(f"/jobs/{job['id']}/results")
    assert result["success"] is False and "timed out" in result["error_message"], result


def max_overlap(intervals):
    """The largest number of [start, end] intervals that hold one instant."""
    points = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals],
                    key=lambda p: (p[0], p[1]))  # an end sorts before a start at the same time
    level = peak = 0
    for _, step in points:
        level += step
        peak = max(peak, level)
    return peak


def test_max_parallel_jobs_is_never_exceeded(stack):
    state = stack.root / "probe"
    stack.start_broker()
    stack.start_gateway()
    for n in (1, 2, 3):
        stack.start_runner(f"pool-{n:02}", PROBE, max_concurrent_jobs=2,
                           extra_env=probe_env(state, sleep_secs=0.5))

    batch_id = stack.submit(tutorial_batch("parallel-2", 10, max_parallel_jobs=2))["batch_id"]
    seen = {"active": 0}

    def finished():
        body = stack.get_ok(f"/batches/{batch_id}")
        by_status = body["jobs_by_status"]
        seen["active"] = max(seen["active"], by_status["Claimed"] + by_status["Running"])
        return body if body["batch"]["status"] in ("Completed", "Failed", "Cancelled") else None

    final = stack.wait_for(finished, 60, what="the batch to finish")
    assert final["batch"]["status"] == "Completed", final
    assert seen["active"] <= 2, f"the broker showed {seen['active']} jobs in flight"

    intervals = []
    for job in batch_jobs(stack, batch_id):
        events = read_probe_log(state, job["id"])
        [start], [end] = starts(events), ends(events)
        intervals.append((start["time"], end["time"]))
    assert len(intervals) == 10
    peak = max_overlap(intervals)
    assert peak <= 2, f"{peak} scenarios ran at once with max_parallel_jobs 2: {intervals}"
    assert peak == 2, f"jobs never ran 2 at a time on 6 free slots: {intervals}"


def test_cancel_batch_stops_running_jobs_and_cancels_pending_ones(stack):
    state = stack.root / "probe"
    stack.start_broker()
    stack.start_gateway()
    for n in (1, 2):
        stack.start_runner(f"cancel-{n:02}", PROBE,
                           extra_env=probe_env(state, sleep_secs=60, child=1))

    batch_id = stack.submit(tutorial_batch("to-cancel", 5))["batch_id"]
    jobs = batch_jobs(stack, batch_id)

    def two_running():
        running = [j for j in jobs if starts(read_probe_log(state, j["id"]))]
        by_status = stack.get_ok(f"/batches/{batch_id}")["jobs_by_status"]
        return running if len(running) == 2 and by_status["Running"] == 2 else None

    running = stack.wait_for(two_running, 30, what="two scenarios to run")
    pids = []
    for job in running:
        [start] = starts(read_probe_log(state, job["id"]))
        pids += [start["pid"], start["child_pid"]]
    stack.adopt(*pids)

    status, body = stack.http("POST", f"/batches/{batch_id}/cancel")
    assert status == 200, body
    assert body["batch_id"] == batch_id, body

    final = stack.wait_batch_terminal(batch_id, timeout=30)
    assert final["batch"]["status"] == "Cancelled", final
    assert final["jobs_by_status"]["Cancelled"] == 5, final
    assert sum(final["jobs_by_status"][s] for s in JOB_STATES) == 5, final
    wait_pids_gone(stack, pids, 15, "the cancelled scenarios and their children")
    running_ids = {j["id"] for j in running}
    for job in stack.list_jobs(batch_id):
        assert job["status"] == "Cancelled", job
        events = read_probe_log(state, job["id"])
        assert not ends(events), f"a cancelled scenario ran to its end: {events}"
        if job["id"] in running_ids:
            assert len(starts(events)) == 1 and job["attempt"] == 1, (job, events)
        else:
            assert not events and job["attempt"] == 0, (job, events)
    for runner in stack.runners:
        stack.wait_for(lambda: stack.get_ok(f"/runners/{runner.runner_id}")["status"] == "Idle",
                       10, what=f"{runner.runner_id} to be Idle again")

    assert_error(stack.http("POST", f"/batches/{batch_id}/cancel"), 409, "conflict")
    assert_error(stack.http("POST", f"/jobs/{jobs[0]['id']}/cancel"), 409, "conflict")


def test_cancel_of_a_finished_job_or_batch_is_a_conflict(stack):
    stack.start_broker()
    stack.start_gateway()
    stack.start_runner("quick-01", PROBE)
    batch_id = stack.submit(tutorial_batch("finished", 1))["batch_id"]
    final = stack.wait_batch_terminal(batch_id, timeout=30)
    assert final["batch"]["status"] == "Completed", final
    [job] = stack.list_jobs(batch_id)

    assert_error(stack.http("POST", f"/jobs/{job['id']}/cancel"), 409, "conflict")
    assert_error(stack.http("POST", f"/batches/{batch_id}/cancel"), 409, "conflict")
    assert stack.get_ok(f"/jobs/{job['id']}")["status"] == "Completed"
    assert stack.get_ok(f"/batches/{batch_id}")["batch"]["status"] == "Completed"


def test_job_listing_walks_every_job_once_and_filters_by_status(stack):
    stack.start_broker()
    stack.start_gateway()
    batch_id = stack.submit(tutorial_batch("listing", 7))["batch_id"]

    pages = []
    jobs = stack.list_jobs(batch_id, limit=2, pages=pages)
    assert [len(p["jobs"]) for p in pages] == [2, 2, 2, 1], pages
    assert all(p["count"] == len(p["jobs"]) for p in pages), pages
    assert [p["next_cursor"] is None for p in pages] == [False, False, False, True], pages
    assert len({j["id"] for j in jobs}) == 7, [j["id"] for j in jobs]
    assert [j["run_id"] for j in jobs] == list(range(7)), [j["run_id"] for j in jobs]
    assert all(j["batch_id"] == batch_id and j["status"] == "Pending" for j in jobs), jobs
    assert [j["id"] for j in stack.list_jobs(batch_id)] == [j["id"] for j in jobs]

    cancelled = jobs[3]
    status, body = stack.http("POST", f"/jobs/{cancelled['id']}/cancel")
    assert status == 200, body
    assert stack.get_ok(f"/jobs/{cancelled['id']}")["status"] == "Cancelled"
    by_status = stack.get_ok(f"/batches/{batch_id}")["jobs_by_status"]
    assert (by_status["Pending"], by_status["Cancelled"]) == (6, 1), by_status

    assert [j["id"] for j in stack.list_jobs(batch_id, status="Cancelled")] == [cancelled["id"]]
    pending = stack.list_jobs(batch_id, status="Pending", limit=2)
    assert [j["id"] for j in pending] == [j["id"] for j in jobs if j is not cancelled]
    assert all(j["status"] == "Pending" for j in pending), pending
    assert stack.list_jobs(batch_id, status="Completed") == []

    path = f"/batches/{batch_id}/jobs?"
    assert_error(stack.http("GET", path + "status=Sleeping"), 400, "invalid_argument",
                 field="status")
    for limit in ("0", "-1", "x", "1001"):
        assert_error(stack.http("GET", path + urllib.parse.urlencode({"limit": limit})), 400,
                     "invalid_argument", field="limit")
    assert_error(stack.http("GET", path + "cursor=not-a-cursor"), 400, "invalid_argument",
                 field="cursor")
    assert_error(stack.http("GET", "/batches/00000000-0000-0000-0000-000000000000/jobs"), 404,
                 "not_found")

"""Durability on real processes: a runner or the broker killed with SIGKILL mid-batch loses no
job and ends none twice (design.md: durable before acknowledged; attempts).

Scenarios are probe_scenario.py, which logs every attempt under a state dir shared by the
runners, so a test counts what really ran on the machines, not only what the broker says.
"""

import threading

from lynx_harness import (JOB_STATES, probe_env, read_probe_log, scaled, scenario_path,
                          tutorial_batch)

PROBE = scenario_path("probe_scenario.py")


def starts(events):
    return [e for e in events if e["event"] == "start"]


def successes(events):
    return [e for e in events if e["event"] == "end" and e["ok"]]


def check_batch_consistent(stack, batch_id, total):
    """The batch's counters equal a recount of its jobs, walked page by page."""
    body = stack.get_ok(f"/batches/{batch_id}")
    jobs = stack.list_jobs(batch_id, limit=3)
    assert len(jobs) == total and len({j["id"] for j in jobs}) == total, jobs
    recount = {state: sum(1 for j in jobs if j["status"] == state) for state in JOB_STATES}
    assert {s: body["jobs_by_status"][s] for s in JOB_STATES} == recount, (body, recount)
    assert body["batch"]["completed_jobs"] == recount["Completed"], (body, recount)
    assert body["batch"]["failed_jobs"] == recount["Failed"] + recount["Timeout"], (body, recount)
    return body, jobs


def test_a_runner_killed_mid_job_has_its_job_retried_elsewhere(stack):
    state = stack.root / "probe"
    stack.start_broker()
    stack.start_gateway()
    doomed = stack.start_runner("doomed-01", PROBE, heartbeat_interval_secs=1,
                                extra_env=probe_env(state, sleep_secs=30))
    batch_id = stack.submit(tutorial_batch("runner-crash", 1))["batch_id"]
    [job] = stack.list_jobs(batch_id)
    [first] = stack.wait_for(lambda: starts(read_probe_log(state, job["id"])), 30,
                             what="the job to start on doomed-01")
    assert first["runner_id"] == "doomed-01", first
    stack.adopt(first["pid"])  # a SIGKILLed runner cannot stop its scenario

    stack.start_runner("survivor-01", PROBE, heartbeat_interval_secs=1,
                       extra_env=probe_env(state, sleep_secs=0.5))
    stack.wait_for(lambda: stack.get_ok(f"/jobs/{job['id']}")["status"] == "Running", 10,
                   what="the job to be Running")
    stack.kill9(doomed)

    def doomed_offline():
        view = stack.get_ok("/runners/doomed-01")
        return view if view["status"] == "Offline" else None

    offline = stack.wait_for(doomed_offline, 20, what="doomed-01 to be Offline")
    assert offline["active_jobs"] in ([], 0), offline
    final = stack.wait_batch_terminal(batch_id, timeout=30)
    assert final["batch"]["status"] == "Completed", final
    job = stack.get_ok(f"/jobs/{job['id']}")
    assert job["status"] == "Completed" and job["assigned_runner"] == "survivor-01", job
    assert (job["retries"], job["attempt"]) == (1, 2), \
        f"a lost runner's job must count one retry: {job}"
    events = read_probe_log(state, job["id"])
    assert [e["runner_id"] for e in starts(events)] == ["doomed-01", "survivor-01"], events
    assert [e["runner_id"] for e in successes(events)] == ["survivor-01"], events
    result = stack.get_ok(f"/jobs/{job['id']}/results")
    assert result["success"] is True and result["metadata"]["runner_id"] == "survivor-01"
    assert stack.get_ok("/runners/survivor-01")["jobs_completed"] == 1


def test_broker_killed_mid_batch_restarts_and_every_job_ends_exactly_once(stack):
    state = stack.root / "probe"
    total = 10
    stack.start_broker()
    stack.start_gateway()
    for n in (1, 2):
        stack.start_runner(f"steady-{n:02}", PROBE, max_concurrent_jobs=2,
                           heartbeat_interval_secs=1,
                           extra_env=probe_env(state, sleep_secs=3))
    batch_id = stack.submit(tutorial_batch("broker-crash", total))["batch_id"]
    jobs = stack.list_jobs(batch_id)

    def mid_batch():
        by_status = stack.get_ok(f"/batches/{batch_id}")["jobs_by_status"]
        return by_status if (by_status["Completed"] >= 4 and by_status["Running"] >= 1
                             and by_status["Pending"] >= 1) else None

    before = stack.wait_for(mid_batch, 60, what="the batch to be half way")
    completed_before = {j["id"] for j in stack.list_jobs(batch_id, status="Completed")}
    stack.kill9(stack.broker)

    #  Keep the broker down until a job that was running ends: its result must wait on the
    #  runner for the new broker.
    stack.wait_for(lambda: any(successes(read_probe_log(state, j["id"])) for j in jobs
                               if j["id"] not in completed_before), 30,
                   what="a job to finish while the broker is down")
    stack.restart_broker()
    stack.wait_healthy()

    final = stack.wait_batch_terminal(batch_id, timeout=90)
    assert final["batch"]["status"] == "Completed", (before, final)
    assert (final["batch"]["completed_jobs"], final["batch"]["failed_jobs"]) == (total, 0), final
    body, jobs_after = check_batch_consistent(stack, batch_id, total)
    assert {j["id"] for j in jobs_after} == {j["id"] for j in jobs}

    ran_twice = []
    for job in jobs_after:
        assert job["status"] == "Completed", job
        assert job["attempt"] == job["retries"] + 1 and job["attempt"] >= 1, job
        events = read_probe_log(state, job["id"])
        assert 1 <= len(starts(events)) <= job["attempt"], (job, events)
        if len(successes(events)) != 1:
            ran_twice.append((job["id"], job["attempt"], events))
        result = stack.get_ok(f"/jobs/{job['id']}/results")
        assert result["success"] is True, result
        assert result["metadata"].get("attempt", job["attempt"]) == job["attempt"], \
            f"the stored result is not the current attempt's: {job} {result}"
    assert not ran_twice, f"jobs whose scenario ran to success more than once: {ran_twice}"

    results = stack.get_ok(f"/batches/{batch_id}/results")
    assert len(results["results"]) == total, results
    assert len({r["job_id"] for r in results["results"]}) == total, results
    log = stack.broker.stderr_text()
    assert "illegal transition" not in log, stack.broker.describe(80)


def test_batches_accepted_before_a_broker_kill_survive_it(stack):
    stack.start_broker()
    stack.start_gateway()
    listed_id = stack.submit(tutorial_batch("listed", 6))["batch_id"]
    listed_jobs = stack.list_jobs(listed_id)
    batch_id = stack.submit(tutorial_batch("survivor", 20))["batch_id"]
    stack.kill9(stack.broker)  # right after the 201: the batch must already be on disk

    stack.restart_broker()
    stack.wait_healthy()
    assert stack.list_jobs(listed_id) == listed_jobs
    body = stack.get_ok(f"/batches/{batch_id}")
    batch = body["batch"]
    assert (batch["id"], batch["name"], batch["total_jobs"]) == (batch_id, "survivor", 20), body
    assert batch["status"] == "Pending" and body["jobs_by_status"]["Pending"] == 20, body
    assert {listed_id, batch_id} <= {b["id"] for b in stack.get_ok("/batches")["batches"]}
    jobs = stack.list_jobs(batch_id, limit=7)
    assert [j["run_id"] for j in jobs] == list(range(20)), jobs
    assert all(j["status"] == "Pending" and j["attempt"] == 0 for j in jobs), jobs

    state = stack.root / "probe"
    stack.start_runner("late-01", PROBE, max_concurrent_jobs=4, extra_env=probe_env(state))
    for done_id, total in ((listed_id, 6), (batch_id, 20)):
        final = stack.wait_batch_terminal(done_id, timeout=60)
        assert final["batch"]["status"] == "Completed", final
        check_batch_consistent(stack, done_id, total)
    for job in stack.list_jobs(batch_id) + stack.list_jobs(listed_id):
        events = read_probe_log(state, job["id"])
        assert len(starts(events)) == 1 and len(successes(events)) == 1, (job, events)


def store_bytes(data_dir):
    return sum(p.stat().st_size for p in data_dir.iterdir() if p.is_file())


def test_a_batch_half_written_when_the_broker_dies_is_gone_after_restart(stack):
    """A big batch is written in chunks and acknowledged after the last one: a broker killed
    half-way must not bring back a partial batch, nor run any of its jobs."""
    stack.start_broker()
    stack.start_gateway()
    kept_id = stack.submit(tutorial_batch("kept", 3))["batch_id"]
    data_dir = stack.broker.data_dir
    size_before = store_bytes(data_dir)
    answer = {}

    def submit_big():
        answer["response"] = stack.http("POST", "/jobs",
                                        body=tutorial_batch("half-written", 1_000_000))

    submitter = threading.Thread(target=submit_big, name="big-submit", daemon=True)
    submitter.start()
    stack.wait_for(lambda: store_bytes(data_dir) > size_before + 20_000_000, 60,
                   what="the big batch's first chunks to reach the store")
    stack.kill9(stack.broker)
    submitter.join(timeout=scaled(120))
    assert not submitter.is_alive(), "POST /jobs never answered after the broker died"
    status, body = answer["response"]
    assert status == 503, f"POST /jobs of a batch the broker died writing -> {status} {body}"

    stack.restart_broker()
    stack.wait_healthy()
    assert [b["id"] for b in stack.get_ok("/batches")["batches"]] == [kept_id]
    assert stack.get_ok("/healthz")["batches"] == 1

    state = stack.root / "probe"
    stack.start_runner("after-crash", PROBE, max_concurrent_jobs=2, extra_env=probe_env(state))
    new_id = stack.submit(tutorial_batch("after", 2))["batch_id"]
    expected = set()
    for batch_id, total in ((kept_id, 3), (new_id, 2)):
        final = stack.wait_batch_terminal(batch_id, timeout=60)
        assert final["batch"]["status"] == "Completed", final
        expected |= {j["id"] for j in check_batch_consistent(stack, batch_id, total)[1]}
    ran = {p.stem for p in state.iterdir()}
    assert ran == expected, f"jobs ran that belong to no batch: {sorted(ran - expected)}"


def test_a_drained_runner_stays_drained_across_a_broker_restart(stack):
    stack.start_broker()
    stack.start_gateway()
    stack.start_runner("resting-01", PROBE, heartbeat_interval_secs=1)
    status, body = stack.http("POST", "/runners/resting-01/drain")
    assert status == 200 and body["status"] == "Maintenance", body
    stack.kill9(stack.broker)
    stack.restart_broker()
    stack.wait_healthy()

    def registered():
        status, view = stack.http("GET", "/runners/resting-01")
        return view if status == 200 and view["status"] != "Offline" else None

    view = stack.wait_for(registered, 30, what="resting-01 to register with the new broker")
    assert view["status"] == "Maintenance", view
    batch_id = stack.submit(tutorial_batch("while-drained", 2))["batch_id"]

    def waiting():
        body = stack.get_ok(f"/batches/{batch_id}")
        assert body["jobs_by_status"]["Pending"] == 2, f"a drained runner got work: {body}"
        return body["waiting_reason"]

    stack.holds(waiting, 1.0, what="the batch to wait for a drained runner")
    status, body = stack.http("POST", "/runners/resting-01/resume")
    assert status == 200, body
    final = stack.wait_batch_terminal(batch_id, timeout=30)
    assert final["batch"]["status"] == "Completed", final

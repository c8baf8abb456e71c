"""Results say what happened (issue 9): every row of GET /batches/{id}/results, and the body of
GET /jobs/{id}/results, carries the job's run_id, final status and the attempt that produced
it, so Completed, Failed, Timeout and Cancelled are told apart without parsing error_message;
and throughput_jobs_per_minute counts only jobs that ran, not Pending jobs a cancel ended.

Scenarios are outcome_scenario.py: it succeeds, fails or sleeps by run_id (LYNX_E2E_OUTCOMES).
"""

from lynx_harness import scenario_path, tutorial_batch

OUTCOME = scenario_path("outcome_scenario.py")


def test_result_rows_tell_completed_failed_and_timeout_apart(stack):
    stack.start_broker()
    stack.start_gateway()
    stack.start_runner("outcomes-01", OUTCOME, max_concurrent_jobs=3,
                       extra_env={"LYNX_E2E_OUTCOMES": "ok,fail,sleep"})
    body = tutorial_batch("three-endings", 3, max_retries=1, job_timeout_seconds=2)
    batch_id = stack.submit(body)["batch_id"]
    final = stack.wait_batch_terminal(batch_id, timeout=90)
    assert final["batch"]["status"] == "Failed", final

    rows = stack.get_ok(f"/batches/{batch_id}/results")["results"]
    by_run = {row["run_id"]: row for row in rows}
    assert sorted(by_run) == [0, 1, 2], rows
    # Completed first time; Failed after its one retry; Timeout is never retried.
    expected = {0: ("Completed", 1, True), 1: ("Failed", 2, False), 2: ("Timeout", 1, False)}
    for run_id, (status, attempt, success) in expected.items():
        row = by_run[run_id]
        assert (row["status"], row["attempt"], row["success"]) == (status, attempt, success), row
        assert isinstance(row["run_id"], int) and isinstance(row["attempt"], int), row
        job = stack.get_ok(f"/jobs/{row['job_id']}")
        assert (job["run_id"], job["status"], job["attempt"]) == (run_id, status, attempt), job
        # GET /jobs/{id}/results is the same row.
        assert stack.get_ok(f"/jobs/{row['job_id']}/results") == row


def test_cancelled_rows_and_throughput_count_only_jobs_that_ran(stack):
    """A 200-run batch on one slot: the first job runs, then the batch is cancelled. The running
    job ends Cancelled with a result row; the 199 Pending ones end Cancelled without running and
    without a row, and do not count as throughput (they used to: 2,953 jobs/min with 18 run).
    The window covers at most a minute, so throughput >= jobs counted: with the 199 counted it
    could never stay under 60 jobs/min for the one job that ran."""
    stack.start_broker()
    stack.start_gateway()
    stack.start_runner("sleeper-01", OUTCOME, extra_env={"LYNX_E2E_OUTCOMES": "sleep"})
    batch_id = stack.submit(tutorial_batch("cancelled-early", 200))["batch_id"]
    stack.wait_for(lambda: stack.get_ok(f"/batches/{batch_id}")["jobs_by_status"]["Running"] == 1,
                   60, what="the first job to run")
    status, body = stack.http("POST", f"/batches/{batch_id}/cancel")
    assert status == 200, body
    final = stack.wait_batch_terminal(batch_id, timeout=60)
    assert final["batch"]["status"] == "Cancelled", final
    assert final["jobs_by_status"]["Cancelled"] == 200, final

    ran = [job for job in stack.list_jobs(batch_id) if job["claimed_at"] is not None]
    assert len(ran) == 1, ran
    throughput = stack.get_ok(f"/batches/{batch_id}")["throughput_jobs_per_minute"]
    assert 0 < throughput <= 60 * len(ran), \
        f"throughput {throughput} jobs/min counts jobs that never ran ({len(ran)} ran)"

    rows = stack.get_ok(f"/batches/{batch_id}/results")["results"]
    assert len(rows) == 1, rows
    [row] = rows
    assert (row["job_id"], row["run_id"], row["status"], row["attempt"]) == \
        (ran[0]["id"], ran[0]["run_id"], "Cancelled", 1), row
    assert row["success"] is False, row

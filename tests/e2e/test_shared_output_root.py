"""Runners that share one fresh output root never fail a job over creating it (issue 9.1).

The first job of a fresh grid used to fail with `create .../runs/<runner>/<job>: File exists`:
two runners made the shared parent at the same moment and the loser took EEXIST for an error.
Here 4 runners with 4 slots each start on one output root that does not exist yet, and a batch
of 200 jobs with max_retries 0 must complete every job, five times over, each on a new root.
"""

from lynx_harness import scenario_path, tutorial_batch

PROBE = scenario_path("probe_scenario.py")
RUNNERS = 4
SLOTS = 4
JOBS = 200
ROUNDS = 5


def test_four_runners_on_one_fresh_output_root_fail_nothing(stack):
    stack.start_broker()
    stack.start_gateway()
    for round_no in range(ROUNDS):
        #  Nested and absent: every runner creates the same parents for its first jobs.
        shared = stack.root / f"round-{round_no}" / "shared" / "runs"
        runners = [
            stack.start_runner(f"r{round_no}-{i}", PROBE, max_concurrent_jobs=SLOTS,
                               extra_config={"output_root": str(shared / f"r{round_no}-{i}")})
            for i in range(RUNNERS)]
        body = tutorial_batch(f"shared-root-{round_no}", JOBS, max_retries=0,
                              max_parallel_jobs=RUNNERS * SLOTS)
        batch_id = stack.submit(body)["batch_id"]
        final = stack.wait_batch_terminal(batch_id, timeout=240)
        failed = [job for job in stack.list_jobs(batch_id) if job["status"] != "Completed"]
        assert not failed, f"round {round_no}: {len(failed)} jobs did not complete, " \
                           f"first: {failed[0]}"
        assert (final["batch"]["status"], final["batch"]["completed_jobs"]) == \
            ("Completed", JOBS), final
        used = {job["assigned_runner"] for job in stack.list_jobs(batch_id)}
        assert len(used) > 1, f"round {round_no}: one runner took every job: {used}"
        #  The next round gets new runners on a new root; these leave cleanly first.
        for runner in runners:
            problem = runner.stop()
            assert problem is None, problem
            runner.may_exit = True
            stack.runners.remove(runner)

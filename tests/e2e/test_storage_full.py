"""A full disk does not take the grid down (issue 11, item 8b): below --min-free-mb the broker
answers writes 507 storage_full, keeps serving reads, leaves finished results with their
runners (unacknowledged, sent again), and resumes by itself when space returns. The data dir is
a small tmpfs the test fills and empties."""

import os
import subprocess

import pytest

from lynx_harness import assert_error, probe_env, scenario_path, tutorial_batch

PROBE = scenario_path("probe_scenario.py")
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="a tmpfs data dir needs root")


@pytest.fixture
def small_disk(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(disk)], check=True)
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def fill(disk, leave_mib):
    """A ballast file leaving about leave_mib MiB free."""
    info = os.statvfs(disk)
    free = info.f_bavail * info.f_frsize
    ballast = disk / "ballast"
    with open(ballast, "wb") as out:
        out.truncate(0)
        left = max(0, free - leave_mib * 1024 * 1024)
        block = b"\0" * (1 << 20)
        while left > 0:
            out.write(block[:min(left, len(block))])
            left -= min(left, len(block))
    return ballast


def test_a_full_disk_refuses_writes_serves_reads_and_recovers(make_stack, small_disk, tmp_path):
    stack = make_stack("full")
    stack.root = small_disk  # broker-data on the tmpfs; logs stay where make_stack put them
    stack.start_broker(extra_args=["--min-free-mb", "4"])
    stack.start_gateway()
    state = tmp_path / "probe"
    stack.start_runner("disk-01", PROBE, extra_env=probe_env(state, sleep_secs=3))
    running = stack.submit(tutorial_batch("before-full", 1))["batch_id"]
    [job] = stack.list_jobs(running)
    stack.wait_for(lambda: stack.get_ok(f"/jobs/{job['id']}")["status"] == "Running", 20,
                   what="the job to run")

    ballast = fill(small_disk, leave_mib=2)
    stack.wait_for(lambda: stack.get_ok("/healthz")["storage"] == "full", 10,
                   what="the broker to notice its disk is full")
    assert_error(stack.http("POST", "/jobs", body=tutorial_batch("refused", 1)), 507,
                 "storage_full")
    assert_error(stack.http("POST", f"/batches/{running}/cancel", body={}), 507, "storage_full")
    assert stack.get_ok(f"/batches/{running}")["batch"]["status"] == "Running"  # reads work
    #  The job ends on its runner meanwhile; its result waits there, unacknowledged.
    stack.holds(lambda: stack.get_ok(f"/jobs/{job['id']}")["status"] == "Running", 5,
                what="the job to stay Running while the broker cannot record its end")
    assert stack.broker.alive()

    ballast.unlink()
    stack.wait_for(lambda: stack.get_ok("/healthz")["storage"] == "ok", 10,
                   what="the broker to notice space came back")
    final = stack.wait_batch_terminal(running, timeout=30)
    assert final["batch"]["status"] == "Completed", final
    assert stack.submit(tutorial_batch("after-full", 1))["batch_id"]
    log = stack.broker.stderr_text()
    assert "storage full" in log and "storage available again" in log, log[-2000:]

//  broker_storage: what the broker does when its disk fills up. Rather than fail a commit and
//  stop (taking the whole grid down), it watches the data dir's free space and, below
//  --min-free-mb, refuses what would write: submissions, cancels, drains and resumes are answered
//  507 storage_full, no job is dispatched, runners' STARTED and FINISHED wait (the runners hold
//  their results and send them again), artifact transfers are dropped. Everything already
//  stored keeps being served. Once twice the minimum is free again it resumes by itself.
#include "broker_core.h"

#include <inttypes.h>
#include <sys/statvfs.h>

void broker_storage_check(broker_core_t *core)
{
    struct statvfs info;
    if (core->min_free_bytes <= 0 || statvfs(core->data_dir, &info) != 0)
        return;
    core->free_bytes = (int64_t)info.f_bavail * (int64_t)info.f_frsize;
    bool full = core->storage_full ? core->free_bytes < 2 * core->min_free_bytes
                                   : core->free_bytes < core->min_free_bytes;
    if (full == core->storage_full)
        return;
    core->storage_full = full;
    if (full) {
        zsys_error("broker: storage full: %" PRId64 " MiB free in %s (needs %" PRId64
                   " MiB); refusing writes, serving reads",
                   core->free_bytes >> 20, core->data_dir, core->min_free_bytes >> 20);
        broker_artifacts_drop_all(core->artifacts);
    } else {
        zsys_notice("broker: storage available again: %" PRId64 " MiB free; writes resume",
                    core->free_bytes >> 20);
        broker_sched_dispatch(core);
    }
}

int broker_storage_refuse(const broker_core_t *core, lynx_err_t *err)
{
    return lynx_err_set(err, LYNX_ESTORAGE, NULL,
                        "the broker's disk is full (%" PRId64 " MiB free in its data dir, it "
                        "needs %" PRId64 " MiB): reads still work, writes resume by themselves "
                        "when space returns",
                        core->free_bytes >> 20, core->min_free_bytes >> 20);
}

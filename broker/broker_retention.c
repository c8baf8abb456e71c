//  broker_retention: --artifact-retention-days. The files of a batch go once the batch has
//  ended and its newest file is older than the retention; a batch still Pending or Running keeps
//  them whatever their age. The store forgets their rows, so they are 404 from then on; results
//  keep listing what was once there.
#include "broker_core.h"

#include <inttypes.h>

#define S_SWEEP_EVERY_MS (3600 * 1000)

static bool s_still_running(const char *batch_id, void *arg)
{
    broker_core_t *core = (broker_core_t *)arg;
    const broker_batch_t *batch = broker_batches_lookup(core->batches, batch_id);
    return batch && (batch->status == LYNX_BATCH_PENDING || batch->status == LYNX_BATCH_RUNNING);
}

size_t broker_retention_sweep(broker_core_t *core, bool force)
{
    int64_t now = lynx_time_mono_ms();
    if (!force && now < core->next_retention_mono_ms)
        return 0;
    core->next_retention_mono_ms = now + S_SWEEP_EVERY_MS;
    broker_idempotency_expire(core); //  the same hourly sweep
    if (core->artifact_retention_days <= 0)
        return 0;
    int64_t cutoff = lynx_time_now_ms() / 1000 - (int64_t)core->artifact_retention_days * 86400;
    lynx_value_t *removed = lynx_value_array();
    size_t count = removed ? broker_artifacts_expire_batches(core->artifacts, cutoff,
                                                             s_still_running, core, removed)
                           : 0;
    for (size_t i = 0; i < lynx_value_size(removed); i++) {
        const char *batch_id = lynx_value_as_string(lynx_value_at(removed, i));
        if (broker_store_forget_batch_artifacts(core->store, batch_id) != 0)
            zsys_error("broker: cannot forget the artifacts of batch=%s: %s", batch_id,
                       broker_store_error(core->store));
        zsys_notice("broker: artifacts removed batch=%s (older than %d days)", batch_id,
                    core->artifact_retention_days);
    }
    lynx_value_destroy(&removed);
    return count;
}

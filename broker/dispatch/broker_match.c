//  broker_match: which runner may run which batch (engine, required capabilities, GPU), and
//  the words for why a batch waits when none may.
#include "broker_core.h"

bool broker_match_engine(const broker_runner_t *runner, const char *engine)
{
    for (size_t i = 0; i < lynx_value_size(runner->engines); i++) {
        const char *name = lynx_value_as_string(lynx_value_at(runner->engines, i));
        if (name && strcmp(name, engine) == 0)
            return true;
    }
    return false;
}

//  True when the runner offers what the batch requires: its engine, every required tag among
//  its supported_simulation_types, and a GPU when asked.
bool broker_match_fits(const broker_runner_t *runner, const broker_batch_t *batch)
{
    if (!broker_match_engine(runner, batch->engine))
        return false;
    if (batch->gpu && !lynx_value_get_bool(runner->capabilities, "gpu_available", false))
        return false;
    for (size_t i = 0; i < batch->required_count; i++)
        if (!broker_match_offers(runner, batch->required[i]))
            return false;
    return true;
}

//  True when the runner offers tag among its supported_simulation_types.
bool broker_match_offers(const broker_runner_t *runner, const char *tag)
{
    const lynx_value_t *types = lynx_value_get(runner->capabilities, "supported_simulation_types");
    for (size_t i = 0; i < lynx_value_size(types); i++) {
        const char *type = lynx_value_as_string(lynx_value_at(types, i));
        if (type && strcmp(type, tag) == 0)
            return true;
    }
    return false;
}

//  Append to reason what the online runners with the batch's engine lack: the required tags
//  none of them offers, and a GPU if none has one.
static void s_describe_missing(broker_core_t *core, const broker_batch_t *batch, char *reason,
                               size_t size)
{
    size_t used = strlen(reason);
    for (size_t i = 0; i < batch->required_count + 1 && used < size; i++) {
        bool gpu_check = i == batch->required_count;
        if (gpu_check && !batch->gpu)
            break;
        bool offered = false;
        for (size_t r = 0; !offered && r < broker_runners_count(core->runners); r++) {
            const broker_runner_t *runner = broker_runners_at(core->runners, r);
            offered = runner->online && broker_match_engine(runner, batch->engine) &&
                      (gpu_check ? lynx_value_get_bool(runner->capabilities, "gpu_available", false)
                                 : broker_match_offers(runner, batch->required[i]));
        }
        if (!offered)
            used += (size_t)snprintf(
                reason + used, size - used, "%s%s%.64s%s", strstr(reason, ": ") ? ", " : ": ",
                gpu_check ? "" : "capability '", gpu_check ? "a GPU" : batch->required[i],
                gpu_check ? "" : "'");
    }
}

const char *broker_match_unservable(broker_core_t *core, const broker_batch_t *batch, char *reason,
                                    size_t size)
{
    size_t online = 0, with_engine = 0, capable = 0, serving = 0, quarantined = 0;
    char names[160] = "";
    for (size_t r = 0; r < broker_runners_count(core->runners); r++) {
        const broker_runner_t *runner = broker_runners_at(core->runners, r);
        if (!runner->online)
            continue;
        online++;
        with_engine += broker_match_engine(runner, batch->engine);
        if (!broker_match_fits(runner, batch))
            continue;
        capable++;
        if (broker_health_quarantined(runner->health)) {
            size_t used = strlen(names);
            if (used < sizeof names - 1)
                snprintf(names + used, sizeof names - used, "%s%s", quarantined ? ", " : "",
                         runner->id);
            quarantined++;
        } else
            serving += !runner->draining;
    }
    if (online == 0)
        snprintf(reason, size, "no runner is online");
    else if (with_engine == 0)
        snprintf(reason, size, "no online runner offers engine '%.64s'", batch->engine);
    else if (capable == 0) {
        snprintf(reason, size,
                 "no online runner with engine '%.64s' offers everything the batch requires",
                 batch->engine);
        s_describe_missing(core, batch, reason, size);
    } else if (serving == 0 && quarantined > 0)
        snprintf(reason, size,
                 "every online runner that can run this batch is %squarantined: %s (see GET "
                 "/runners/{id}; resume with POST /runners/{id}/resume or lynx resume)",
                 quarantined < capable ? "drained (Maintenance) or " : "", names);
    else if (serving == 0)
        snprintf(reason, size,
                 "every online runner that can run this batch is drained (Maintenance)");
    else
        return NULL;
    return reason;
}

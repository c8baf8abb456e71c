//  broker_runners: the runner pool. Registration (with takeover of a restarted runner and
//  refusal of a duplicate), reconciliation of what a re-registering runner still holds,
//  heartbeats, liveness, drain/resume, and the runner views of the API.
#include "broker_core.h"

#include "lynx_time.h"

void broker_runner_destroy(broker_runner_t **runner_p)
{
    if (!runner_p || !*runner_p)
        return;
    broker_runner_t *runner = *runner_p;
    free(runner->id);
    free(runner->name);
    free(runner->hostname);
    zframe_destroy(&runner->routing_id);
    lynx_value_destroy(&runner->capabilities);
    lynx_value_destroy(&runner->engines);
    free(runner);
    *runner_p = NULL;
}

void broker_runners_send_error(broker_core_t *core, zframe_t *routing_id, lynx_code_t code,
                               const char *field, const char *message)
{
    lynx_err_t err;
    lynx_err_set(&err, code, field, "%s", message);
    broker_send_error(core->runner_socket, routing_id, 0, &err, NULL);
}

broker_runner_t *broker_runners_by_route(broker_core_t *core, zframe_t *routing_id)
{
    broker_runner_t *runner = (broker_runner_t *)zhashx_first(core->runners);
    for (; runner; runner = (broker_runner_t *)zhashx_next(core->runners))
        if (runner->online && zframe_eq(runner->routing_id, routing_id))
            return runner;
    return NULL;
}

//  True when runner is registered and its connection is still open under another routing id:
//  a second process claiming the same id, not a restart. A dead process's connection is
//  closed by its kernel, so ZeroMQ reports its routing id unreachable (the ROUTER is
//  mandatory) and a restarted runner takes over at once.
static bool s_still_connected(broker_core_t *core, broker_runner_t *runner, zframe_t *routing_id)
{
    if (!runner->online || !runner->routing_id || zframe_eq(runner->routing_id, routing_id))
        return false;
    lynx_msg_t *probe = lynx_msg_new(LYNX_MSG_REGISTERED);
    lynx_value_set_string(lynx_msg_body(probe), "runner_id", runner->id);
    lynx_value_set_int(lynx_msg_body(probe), "heartbeat_interval_ms",
                       runner->heartbeat_interval_ms);
    lynx_err_t err;
    return lynx_msg_send(&probe, zsock_resolve(core->runner_socket), runner->routing_id, &err) == 0;
}

broker_runner_t *broker_runners_admit(broker_core_t *core, zframe_t *routing_id,
                                      const lynx_value_t *body)
{
    const char *runner_id = lynx_value_get_string(body, "runner_id", "");
    const lynx_value_t *capabilities = lynx_value_get(body, "capabilities");
    int64_t slots = lynx_value_get_int(capabilities, "max_concurrent_jobs", 0);
    if (!runner_id[0]) {
        broker_runners_send_error(core, routing_id, LYNX_EINVALID, "runner_id",
                                  "must not be empty");
        return NULL;
    }
    if (slots < 1 || slots > 1024) {
        broker_runners_send_error(core, routing_id, LYNX_EINVALID,
                                  "capabilities.max_concurrent_jobs",
                                  "must be an integer between 1 and 1024");
        return NULL;
    }
    broker_runner_t *runner = (broker_runner_t *)zhashx_lookup(core->runners, runner_id);
    //  The same process (host and pid) reconnecting is not a duplicate, whatever its old
    //  connection still looks like.
    bool same_process =
        runner && runner->hostname &&
        strcmp(runner->hostname, lynx_value_get_string(body, "hostname", "")) == 0 &&
        runner->pid == lynx_value_get_int(body, "pid", -1);
    if (runner && !same_process && s_still_connected(core, runner, routing_id)) {
        char message[512];
        snprintf(
            message, sizeof message,
            "runner id '%.128s' is already in use by a connected runner (host %.128s, pid %" PRId64
            "); give each runner a unique --runner-id",
            runner_id, runner->hostname ? runner->hostname : "?", runner->pid);
        zsys_warning("broker: duplicate runner refused runner=%s host=%s", runner_id,
                     lynx_value_get_string(body, "hostname", "?"));
        broker_runners_send_error(core, routing_id, LYNX_ECONFLICT, "runner_id", message);
        return NULL;
    }
    if (!runner) {
        runner = (broker_runner_t *)calloc(1, sizeof *runner);
        runner->id = strdup(runner_id);
        runner->draining = zhashx_lookup(core->drained, runner_id) != NULL;
        runner->health = broker_health_of(core, runner_id);
        zhashx_insert(core->runners, runner_id, runner);
    }
    free(runner->hostname);
    runner->hostname = strdup(lynx_value_get_string(body, "hostname", ""));
    runner->pid = lynx_value_get_int(body, "pid", 0);
    free(runner->name);
    runner->name = strdup(lynx_value_get_string(body, "name", runner_id));
    zframe_destroy(&runner->routing_id);
    runner->routing_id = zframe_dup(routing_id);
    lynx_value_destroy(&runner->capabilities);
    runner->capabilities = lynx_value_dup(capabilities);
    lynx_value_destroy(&runner->engines);
    runner->engines = lynx_value_dup(lynx_value_get(body, "engines"));
    runner->max_concurrent_jobs = slots;
    runner->heartbeat_interval_ms =
        lynx_value_get_int(body, "heartbeat_interval_ms", core->heartbeat_interval_ms);
    if (runner->heartbeat_interval_ms < 100 || runner->heartbeat_interval_ms > 600000)
        runner->heartbeat_interval_ms = core->heartbeat_interval_ms;
    runner->last_seen_ms = lynx_time_mono_ms();
    runner->online = true;
    return runner;
}

void broker_runners_went_offline(broker_core_t *core, broker_runner_t *runner)
{
    runner->online = false;
    zsys_warning("broker: runner offline runner=%s silent_ms=%" PRId64 " jobs=%" PRId64, runner->id,
                 lynx_time_mono_ms() - runner->last_seen_ms, runner->active_jobs);
    (void)core;
}

const char *broker_runners_status(const broker_runner_t *runner)
{
    if (!runner->online)
        return "Offline";
    if (broker_health_quarantined(runner->health))
        return "Quarantined";
    if (runner->draining)
        return "Maintenance";
    return runner->active_jobs > 0 ? "Busy" : "Idle";
}

bool broker_runners_available(const broker_runner_t *runner)
{
    return runner->online && !runner->draining && !broker_health_quarantined(runner->health) &&
           runner->active_jobs < runner->max_concurrent_jobs;
}

// --------------------------------------------------------------------------------------------
//  API operations

lynx_value_t *broker_runners_view(broker_core_t *core, const broker_runner_t *runner)
{
    lynx_value_t *view = lynx_value_map();
    lynx_value_set_string(view, "runner_id", runner->id);
    lynx_value_set_string(view, "name", runner->name);
    lynx_value_set_string(view, "status", broker_runners_status(runner));
    lynx_value_t *capabilities = lynx_value_dup(runner->capabilities);
    if (!capabilities || lynx_value_set(view, "capabilities", &capabilities))
        lynx_value_destroy(&capabilities);
    lynx_value_t *engines = lynx_value_dup(runner->engines);
    if (!engines || lynx_value_set(view, "engines", &engines))
        lynx_value_destroy(&engines);
    lynx_value_t *active = lynx_value_array();
    broker_inflight_t *inflight = (broker_inflight_t *)zhashx_first(core->inflight);
    for (; inflight; inflight = (broker_inflight_t *)zhashx_next(core->inflight))
        if (inflight->runner == runner) {
            lynx_value_t *id = lynx_value_string(inflight->rec.id);
            if (lynx_value_append(active, &id))
                lynx_value_destroy(&id);
        }
    if (lynx_value_set(view, "active_jobs", &active))
        lynx_value_destroy(&active);
    //  last_seen is monotonic; report it as wall-clock time.
    int64_t seen_ms = lynx_time_now_ms() - (lynx_time_mono_ms() - runner->last_seen_ms);
    char text[LYNX_TIME_RFC3339_SIZE];
    lynx_value_set_string(view, "last_heartbeat", lynx_time_rfc3339(seen_ms, text));
    lynx_value_set_int(view, "jobs_completed", runner->jobs_completed);
    lynx_value_set_int(view, "jobs_failed", runner->jobs_failed);
    lynx_value_set_string(view, "hostname", runner->hostname);
    lynx_value_set_owned(view, "quarantine", broker_health_view(runner->health));
    return view;
}

broker_runner_t *broker_runners_find(broker_core_t *core, const lynx_value_t *args, lynx_err_t *err)
{
    const char *runner_id = lynx_value_get_string(args, "runner_id", "");
    broker_runner_t *runner = (broker_runner_t *)zhashx_lookup(core->runners, runner_id);
    if (!runner)
        lynx_err_set(err, LYNX_ENOTFOUND, "runner_id", "no runner with id '%.128s'", runner_id);
    return runner;
}

static int s_compare_ids(const void *a, const void *b)
{
    return strcmp((*(broker_runner_t *const *)a)->id, (*(broker_runner_t *const *)b)->id);
}

lynx_value_t *broker_runners_op_list(broker_core_t *core, const broker_request_t *request,
                                     const lynx_value_t *args, lynx_err_t *err,
                                     lynx_value_t **errors_p)
{
    (void)request, (void)args, (void)err, (void)errors_p;
    size_t count = zhashx_size(core->runners);
    broker_runner_t **sorted = (broker_runner_t **)calloc(count + 1, sizeof *sorted);
    size_t index = 0;
    broker_runner_t *runner = (broker_runner_t *)zhashx_first(core->runners);
    for (; runner; runner = (broker_runner_t *)zhashx_next(core->runners))
        sorted[index++] = runner;
    qsort(sorted, count, sizeof *sorted, s_compare_ids);
    lynx_value_t *list = lynx_value_array();
    for (index = 0; index < count; index++) {
        lynx_value_t *view = broker_runners_view(core, sorted[index]);
        if (lynx_value_append(list, &view))
            lynx_value_destroy(&view);
    }
    free(sorted);
    lynx_value_t *reply = lynx_value_map();
    lynx_value_set_int(reply, "count", (int64_t)count);
    if (lynx_value_set(reply, "runners", &list))
        lynx_value_destroy(&list);
    return reply;
}

lynx_value_t *broker_runners_op_get(broker_core_t *core, const broker_request_t *request,
                                    const lynx_value_t *args, lynx_err_t *err,
                                    lynx_value_t **errors_p)
{
    (void)request, (void)errors_p;
    broker_runner_t *runner = broker_runners_find(core, args, err);
    return runner ? broker_runners_view(core, runner) : NULL;
}

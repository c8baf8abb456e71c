//  broker_runners: the runner registry (see the header): admission (with takeover of a
//  restarted runner and refusal of a duplicate), liveness, drain and resume.
#include "broker_runners.h"

#include "broker_outbox.h"
#include "lynx_msg.h"
#include "lynx_time.h"

struct _broker_runners_t {
    zhashx_t *by_id;       //  id -> broker_runner_t, owned
    broker_runner_t **all; //  the same records, in admission order
    size_t count;
    size_t alloc;
    zhashx_t *drained; //  ids an operator drained (persisted)
    zhashx_t *health;  //  id -> broker_health_t, owned
    int64_t heartbeat_interval_ms;
    int64_t heartbeat_misses;
    int64_t quarantine_after;
};

static void s_runner_destroy(broker_runner_t **runner_p)
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

broker_runners_t *broker_runners_new(int64_t heartbeat_interval_ms, int64_t heartbeat_misses,
                                     int64_t quarantine_after)
{
    broker_runners_t *self = (broker_runners_t *)calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->by_id = zhashx_new();
    self->drained = zhashx_new();
    self->health = zhashx_new();
    if (!self->by_id || !self->drained || !self->health) {
        broker_runners_destroy(&self);
        return NULL;
    }
    zhashx_set_destructor(self->by_id, (zhashx_destructor_fn *)s_runner_destroy);
    zhashx_set_destructor(self->health, (zhashx_destructor_fn *)broker_health_destroy);
    self->heartbeat_interval_ms = heartbeat_interval_ms;
    self->heartbeat_misses = heartbeat_misses;
    self->quarantine_after = quarantine_after;
    return self;
}

void broker_runners_destroy(broker_runners_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    broker_runners_t *self = *self_p;
    zhashx_destroy(&self->by_id);
    zhashx_destroy(&self->drained);
    zhashx_destroy(&self->health);
    free(self->all);
    free(self);
    *self_p = NULL;
}

static void s_remember_drained(const char *id, void *arg)
{
    zhashx_insert((zhashx_t *)arg, id, (void *)1);
}

int broker_runners_load_drained(broker_runners_t *self, broker_store_t *store)
{
    return broker_store_foreach_drained_runner(store, s_remember_drained, self->drained);
}

size_t broker_runners_count(const broker_runners_t *self)
{
    return self->count;
}

broker_runner_t *broker_runners_at(const broker_runners_t *self, size_t index)
{
    return index < self->count ? self->all[index] : NULL;
}

broker_runner_t *broker_runners_lookup(const broker_runners_t *self, const char *runner_id)
{
    return runner_id ? (broker_runner_t *)zhashx_lookup(self->by_id, runner_id) : NULL;
}

broker_runner_t *broker_runners_by_route(const broker_runners_t *self, zframe_t *routing_id)
{
    for (size_t i = 0; i < self->count; i++)
        if (self->all[i]->online && zframe_eq(self->all[i]->routing_id, routing_id))
            return self->all[i];
    return NULL;
}

broker_health_t *broker_runners_health_of(broker_runners_t *self, const char *runner_id)
{
    broker_health_t *health = (broker_health_t *)zhashx_lookup(self->health, runner_id);
    if (!health) {
        health = broker_health_new((size_t)self->quarantine_after);
        if (health)
            zhashx_insert(self->health, runner_id, health);
    }
    return health;
}

int64_t broker_runners_quarantine_after(const broker_runners_t *self)
{
    return self->quarantine_after;
}

static void s_refuse(zsock_t *runner_socket, zframe_t *routing_id, lynx_code_t code,
                     const char *field, const char *message)
{
    lynx_err_t err;
    lynx_err_set(&err, code, field, "%s", message);
    broker_send_error(runner_socket, routing_id, 0, &err, NULL);
}

//  A new record for runner_id, in both indexes. NULL on out-of-memory.
static broker_runner_t *s_add(broker_runners_t *self, const char *runner_id)
{
    if (self->count == self->alloc) {
        size_t alloc = self->alloc ? self->alloc * 2 : 16;
        broker_runner_t **all = (broker_runner_t **)realloc(self->all, alloc * sizeof *all);
        if (!all)
            return NULL;
        self->all = all;
        self->alloc = alloc;
    }
    broker_runner_t *runner = (broker_runner_t *)calloc(1, sizeof *runner);
    if (!runner || !(runner->id = strdup(runner_id))) {
        free(runner);
        return NULL;
    }
    runner->draining = zhashx_lookup(self->drained, runner_id) != NULL;
    runner->health = broker_runners_health_of(self, runner_id);
    zhashx_insert(self->by_id, runner_id, runner);
    self->all[self->count++] = runner;
    return runner;
}

//  True when runner is registered and its connection is still open under another routing id:
//  a second process claiming the same id, not a restart. A dead process's connection is
//  closed by its kernel, so ZeroMQ reports its routing id unreachable (the ROUTER is
//  mandatory) and a restarted runner takes over at once.
static bool s_still_connected(zsock_t *runner_socket, broker_runner_t *runner, zframe_t *routing_id)
{
    if (!runner->online || !runner->routing_id || zframe_eq(runner->routing_id, routing_id))
        return false;
    lynx_msg_t *probe = lynx_msg_new(LYNX_MSG_REGISTERED);
    lynx_value_set_string(lynx_msg_body(probe), "runner_id", runner->id);
    lynx_value_set_int(lynx_msg_body(probe), "heartbeat_interval_ms",
                       runner->heartbeat_interval_ms);
    lynx_err_t err;
    return lynx_msg_send(&probe, zsock_resolve(runner_socket), runner->routing_id, &err) == 0;
}

broker_runner_t *broker_runners_admit(broker_runners_t *self, zsock_t *runner_socket,
                                      zframe_t *routing_id, const lynx_value_t *body)
{
    const char *runner_id = lynx_value_get_string(body, "runner_id", "");
    const lynx_value_t *capabilities = lynx_value_get(body, "capabilities");
    int64_t slots = lynx_value_get_int(capabilities, "max_concurrent_jobs", 0);
    if (!runner_id[0]) {
        s_refuse(runner_socket, routing_id, LYNX_EINVALID, "runner_id", "must not be empty");
        return NULL;
    }
    if (slots < 1 || slots > 1024) {
        s_refuse(runner_socket, routing_id, LYNX_EINVALID, "capabilities.max_concurrent_jobs",
                 "must be an integer between 1 and 1024");
        return NULL;
    }
    broker_runner_t *runner = broker_runners_lookup(self, runner_id);
    //  The same process (host and pid) reconnecting is not a duplicate, whatever its old
    //  connection still looks like.
    bool same_process =
        runner && runner->hostname &&
        strcmp(runner->hostname, lynx_value_get_string(body, "hostname", "")) == 0 &&
        runner->pid == lynx_value_get_int(body, "pid", -1);
    if (runner && !same_process && s_still_connected(runner_socket, runner, routing_id)) {
        //  Whoever asks learns only that the id is taken: where the other runner lives (its host
        //  and pid) is for the operator's log, not for any process that can reach the port.
        char message[512];
        snprintf(message, sizeof message,
                 "runner id '%.128s' is already in use by a connected runner; give each runner a "
                 "unique --runner-id",
                 runner_id);
        zsys_warning("broker: duplicate runner refused runner=%s host=%s holder_host=%s "
                     "holder_pid=%" PRId64,
                     runner_id, lynx_value_get_string(body, "hostname", "?"),
                     runner->hostname ? runner->hostname : "?", runner->pid);
        s_refuse(runner_socket, routing_id, LYNX_ECONFLICT, "runner_id", message);
        return NULL;
    }
    if (!runner) {
        runner = s_add(self, runner_id);
        if (!runner) {
            s_refuse(runner_socket, routing_id, LYNX_EINTERNAL, NULL, "out of memory");
            return NULL;
        }
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
        lynx_value_get_int(body, "heartbeat_interval_ms", self->heartbeat_interval_ms);
    if (runner->heartbeat_interval_ms < 100 || runner->heartbeat_interval_ms > 600000)
        runner->heartbeat_interval_ms = self->heartbeat_interval_ms;
    runner->last_seen_ms = lynx_time_mono_ms();
    runner->online = true;
    return runner;
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

bool broker_runners_silent(const broker_runners_t *self, const broker_runner_t *runner,
                           int64_t now_mono_ms)
{
    return runner->online && now_mono_ms - runner->last_seen_ms >
                                 runner->heartbeat_interval_ms * self->heartbeat_misses;
}

void broker_runners_touch(broker_runner_t *runner)
{
    runner->last_seen_ms = lynx_time_mono_ms();
}

void broker_runners_attach(broker_runner_t *runner)
{
    runner->active_jobs++;
}

void broker_runners_release(broker_runner_t *runner)
{
    runner->active_jobs--;
}

void broker_runners_detach(broker_runner_t *runner, lynx_job_state_t outcome, bool charged)
{
    runner->active_jobs--;
    if (outcome == LYNX_JOB_COMPLETED)
        runner->jobs_completed++;
    else if (charged)
        runner->jobs_failed++;
}

void broker_runners_went_offline(broker_runner_t *runner)
{
    runner->online = false;
    zsys_warning("broker: runner offline runner=%s silent_ms=%" PRId64 " jobs=%" PRId64, runner->id,
                 lynx_time_mono_ms() - runner->last_seen_ms, runner->active_jobs);
}

void broker_runners_left(broker_runner_t *runner)
{
    runner->online = false;
}

int broker_runners_set_draining(broker_runners_t *self, broker_store_t *store,
                                broker_runner_t *runner, bool draining, lynx_err_t *err)
{
    if (broker_store_set_runner_drained(store, runner->id, draining))
        return lynx_err_set(err, LYNX_EINTERNAL, NULL, "%s", broker_store_error(store));
    if (draining)
        zhashx_update(self->drained, runner->id, (void *)1);
    else
        zhashx_delete(self->drained, runner->id);
    if (runner->draining != draining)
        zsys_notice("broker: runner %s runner=%s active=%" PRId64, draining ? "drained" : "resumed",
                    runner->id, runner->active_jobs);
    runner->draining = draining;
    return 0;
}

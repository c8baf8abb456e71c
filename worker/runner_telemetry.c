//  runner_telemetry: one job attempt's telemetry intake and watchdog (see runner_telemetry.h).
//
//  Every distinct variable name gets a slot in vars (the rules' variables first, so their
//  slots exist whatever the scenario sends). A frame's values are matched to slots through a
//  cache by position: a scenario sends the same names in the same order frame after frame,
//  so the usual cost of a value is one strcmp, not a hash lookup. A slot knows the rules'
//  index of its variable, so the watchdog's values[] and seen[] are written as frames arrive
//  and evaluation itself touches no strings.
#include "runner_telemetry.h"

#include <math.h>

#include "lynx_msg.h"
#include "lynx_rules.h"
#include "lynx_time.h"

//  Frame positions whose slot is cached; names further into a frame are looked up by hash.
#define S_CACHE_POSITIONS 256

typedef struct {
    char *name;
    int rule;               //  index in values[] and seen[], -1 when no rule reads it
    bool forward;           //  passes the telemetry.variables filter
    lynx_value_type_t type; //  of the latest value; LYNX_VALUE_NULL until seen
    union {
        bool boolean;
        int64_t integer;
        double number;
    } latest;
} s_var_t;

struct _runner_telemetry_t {
    char *job_id;
    char *batch_id;
    zsock_t *pull;
    zsock_t *monitor; //  PAIR receiving the PULL's accepted/disconnected events, or NULL
    char endpoint[64];
    int connections; //  open scenario connections, per the monitor

    //  On a loop (runner_telemetry_watch).
    zloop_t *loop;
    zsock_t **forward_p;
    runner_telemetry_fn *fired;
    runner_telemetry_fn *settled;
    void *arg;
    bool polling;     //  the sockets are readers on loop
    bool told;        //  fired was called
    bool settling;    //  the scenario exited; settled is due
    int check_timer;  //  -1 when none
    int settle_timer; //  -1 when none
    int64_t settle_deadline_ms;

    //  The watchdog: NULL rules when nothing can fire.
    lynx_rules_t *rules;
    double *values; //  latest value of rule variable i
    bool *seen;
    int64_t interval_ms;
    int64_t last_eval_ms;
    bool dirty;             //  frames came since the last evaluation
    lynx_msg_t *last_frame; //  the latest valid frame, kept while a watchdog runs
    lynx_value_t *trigger;  //  set once a rule fired
    int64_t start_ms;

    s_var_t *vars;
    size_t var_count;
    size_t var_alloc;
    size_t var_max;
    zhashx_t *var_slots;               //  name -> slot + 1
    uint32_t cache[S_CACHE_POSITIONS]; //  frame position -> slot + 1, 0 when unknown

    //  Forwarding.
    int64_t sample_period_ns; //  0: every frame
    zhashx_t *forward_names;  //  NULL: every variable
    bool forwarded_once;
    int64_t last_forward_ns;

    uint64_t received;
    uint64_t invalid;
    uint64_t client_dropped;
    uint64_t forwarded;
    uint64_t forward_dropped;
    int64_t last_seq; //  -1 before the first frame
};

static uint64_t s_add_saturated(uint64_t total, uint64_t more)
{
    return total > UINT64_MAX - more ? UINT64_MAX : total + more;
}

static int64_t s_as_int64(uint64_t count)
{
    return count > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)count;
}

//  Count a refused message; the first of a job is logged with its reason.
static void s_invalid(runner_telemetry_t *self, const char *format, ...)
    __attribute__((format(printf, 2, 3)));
static void s_invalid(runner_telemetry_t *self, const char *format, ...)
{
    if (self->invalid++ > 0)
        return;
    char reason[LYNX_ERR_MESSAGE_MAX + LYNX_ERR_FIELD_MAX];
    va_list args;
    va_start(args, format);
    vsnprintf(reason, sizeof reason, format, args);
    va_end(args);
    zsys_warning("runner: telemetry frame dropped job=%s reason=\"%s\" (later ones are only "
                 "counted)",
                 self->job_id, reason);
}

// --------------------------------------------------------------------------------------------
//  Variables

//  A new slot for name; -1 on out-of-memory or when the table is full.
static int s_var_add(runner_telemetry_t *self, const char *name)
{
    if (self->var_count >= self->var_max)
        return -1;
    if (self->var_count == self->var_alloc) {
        size_t alloc = self->var_alloc ? self->var_alloc * 2 : 16;
        s_var_t *vars = realloc(self->vars, alloc * sizeof *vars);
        if (!vars)
            return -1;
        self->vars = vars;
        self->var_alloc = alloc;
    }
    s_var_t *var = &self->vars[self->var_count];
    *var = (s_var_t){.name = strdup(name), .rule = -1, .type = LYNX_VALUE_NULL};
    if (!var->name)
        return -1;
    var->rule = lynx_rules_variable_index(self->rules, name);
    var->forward = !self->forward_names || zhashx_lookup(self->forward_names, name);
    if (zhashx_insert(self->var_slots, name, (void *)(uintptr_t)(self->var_count + 1))) {
        free(var->name);
        return -1;
    }
    return (int)self->var_count++;
}

//  The slot of the value at position in a frame, or -1 when name has none (table full).
static int s_slot(runner_telemetry_t *self, size_t position, const char *name)
{
    uint32_t cached = position < S_CACHE_POSITIONS ? self->cache[position] : 0;
    if (cached && strcmp(self->vars[cached - 1].name, name) == 0)
        return (int)cached - 1;
    void *found = zhashx_lookup(self->var_slots, name);
    int slot = found ? (int)((uintptr_t)found - 1) : s_var_add(self, name);
    if (slot >= 0 && position < S_CACHE_POSITIONS)
        self->cache[position] = (uint32_t)slot + 1;
    return slot;
}

static bool s_forwards(const runner_telemetry_t *self, int slot, const char *name)
{
    if (slot >= 0)
        return self->vars[slot].forward;
    return !self->forward_names || zhashx_lookup(self->forward_names, name);
}

// --------------------------------------------------------------------------------------------
//  The watchdog

static void s_fire(runner_telemetry_t *self, int rule, int64_t now_ms)
{
    lynx_value_t *trigger = lynx_value_map();
    if (!trigger) {
        zsys_error("runner: out of memory recording a trigger job=%s", self->job_id);
        return;
    }
    lynx_value_t *body = lynx_msg_body(self->last_frame);
    lynx_value_set_string(trigger, "rule_name", lynx_rules_name(self->rules, (size_t)rule));
    lynx_value_set_string(trigger, "description",
                          lynx_rules_description(self->rules, (size_t)rule));
    lynx_value_set_double(trigger, "elapsed_seconds", (double)(now_ms - self->start_ms) / 1000.0);
    lynx_value_t *values = lynx_value_dup(lynx_value_get(body, "values"));
    lynx_value_set_owned(trigger, "telemetry_at_trigger", values ? values : lynx_value_map());
    lynx_value_set_int(trigger, "seq", lynx_value_get_int(body, "seq", 0));
    lynx_value_set_int(trigger, "timestamp_ns", lynx_value_get_int(body, "timestamp_ns", 0));
    char triggered_at[LYNX_TIME_RFC3339_SIZE];
    lynx_value_set_string(trigger, "triggered_at",
                          lynx_time_rfc3339(lynx_time_now_ms(), triggered_at));
    self->trigger = trigger;
}

static void s_evaluate(runner_telemetry_t *self, int64_t now_ms)
{
    self->last_eval_ms = now_ms;
    self->dirty = false;
    int rule = lynx_rules_evaluate_values(self->rules, self->values, self->seen);
    if (rule >= 0 && self->last_frame)
        s_fire(self, rule, now_ms);
}

// --------------------------------------------------------------------------------------------
//  Forwarding

//  Due by the decimation clock: sampling_rate_hz of the scenario's timestamps. A clock that
//  goes back (a new process, a simulation restarting) starts over.
static bool s_due(runner_telemetry_t *self, int64_t timestamp_ns)
{
    if (self->sample_period_ns == 0 || !self->forwarded_once ||
        timestamp_ns < self->last_forward_ns)
        return true;
    return (uint64_t)timestamp_ns - (uint64_t)self->last_forward_ns >=
           (uint64_t)self->sample_period_ns;
}

//  The forwarded body: the scenario's seq, timestamp_ns and the kept values, and our ids. When
//  every value is kept the frame's own body is trimmed and reused (its values stay intact for
//  the watchdog); otherwise a filtered copy is built.
static lynx_msg_t *s_forward_msg(runner_telemetry_t *self, lynx_msg_t *frame, bool filter)
{
    lynx_value_t *body = lynx_msg_body(frame);
    lynx_msg_t *copy = NULL;
    if (filter) {
        copy = lynx_msg_new(LYNX_MSG_TELEMETRY);
        lynx_value_t *out = lynx_msg_body(copy);
        lynx_value_t *kept = lynx_value_map();
        const lynx_value_t *values = lynx_value_get(body, "values");
        for (size_t i = 0; copy && kept && i < lynx_value_size(values); i++) {
            const char *name = lynx_value_key_at(values, i);
            if (s_forwards(self, s_slot(self, i, name), name))
                lynx_value_set_owned(kept, name, lynx_value_dup(lynx_value_at(values, i)));
        }
        if (!copy || !kept) {
            lynx_value_destroy(&kept);
            lynx_msg_destroy(&copy);
            return NULL;
        }
        lynx_value_set_int(out, "seq", lynx_value_get_int(body, "seq", 0));
        lynx_value_set_int(out, "timestamp_ns", lynx_value_get_int(body, "timestamp_ns", 0));
        lynx_value_set_owned(out, "values", kept);
        body = out;
    } else
        //  Fields a scenario has no business sending are not relayed.
        for (size_t i = lynx_value_size(body); i-- > 0;) {
            const char *key = lynx_value_key_at(body, i);
            if (strcmp(key, "seq") && strcmp(key, "timestamp_ns") && strcmp(key, "values"))
                lynx_value_remove(body, key);
        }
    lynx_value_set_string(body, "job_id", self->job_id);
    lynx_value_set_string(body, "batch_id", self->batch_id);
    lynx_value_set_int(body, "dropped", s_as_int64(self->client_dropped));
    return copy ? copy : frame;
}

static void s_forward(runner_telemetry_t *self, lynx_msg_t *frame, size_t kept, size_t count,
                      void *forward)
{
    lynx_value_t *body = lynx_msg_body(frame);
    int64_t timestamp_ns = lynx_value_get_int(body, "timestamp_ns", 0);
    if (!forward || (kept == 0 && count > 0) || !s_due(self, timestamp_ns))
        return;
    self->forwarded_once = true;
    self->last_forward_ns = timestamp_ns;
    lynx_msg_t *out = s_forward_msg(self, frame, kept < count);
    lynx_err_t err;
    zframe_t *encoded = out ? lynx_msg_encode(out, &err) : NULL;
    if (out != frame)
        lynx_msg_destroy(&out);
    if (encoded && zframe_send(&encoded, forward, ZFRAME_DONTWAIT) == 0)
        self->forwarded++;
    else {
        zframe_destroy(&encoded);
        self->forward_dropped++;
    }
}

// --------------------------------------------------------------------------------------------
//  Taking frames

//  A frame's values must all be numbers or booleans; the name of the first that is not.
static const char *s_bad_value(const lynx_value_t *values, lynx_value_type_t *type_p)
{
    for (size_t i = 0; i < lynx_value_size(values); i++) {
        lynx_value_type_t type = lynx_value_type(lynx_value_at(values, i));
        if (type != LYNX_VALUE_DOUBLE && type != LYNX_VALUE_INT && type != LYNX_VALUE_BOOL) {
            *type_p = type;
            return lynx_value_key_at(values, i);
        }
    }
    return NULL;
}

static void s_count_seq(runner_telemetry_t *self, int64_t seq)
{
    uint64_t gap = 0;
    if (self->last_seq < 0)
        gap = (uint64_t)seq;
    else if (seq > self->last_seq)
        gap = (uint64_t)(seq - self->last_seq - 1);
    self->client_dropped = s_add_saturated(self->client_dropped, gap);
    self->last_seq = seq;
}

//  Record the frame's values; returns how many of them the forwarding filter keeps.
static size_t s_record(runner_telemetry_t *self, const lynx_value_t *values)
{
    size_t count = lynx_value_size(values), kept = 0;
    for (size_t i = 0; i < count; i++) {
        const char *name = lynx_value_key_at(values, i);
        const lynx_value_t *value = lynx_value_at(values, i);
        int slot = s_slot(self, i, name);
        kept += s_forwards(self, slot, name);
        if (slot < 0)
            continue;
        s_var_t *var = &self->vars[slot];
        var->type = lynx_value_type(value);
        double number;
        if (var->type == LYNX_VALUE_BOOL)
            number = (var->latest.boolean = lynx_value_as_bool(value)) ? 1.0 : 0.0;
        else if (var->type == LYNX_VALUE_INT)
            number = (double)(var->latest.integer = lynx_value_as_int(value));
        else
            number = var->latest.number = lynx_value_as_double(value);
        if (var->rule >= 0) {
            self->values[var->rule] = number;
            self->seen[var->rule] = true;
        }
    }
    return kept;
}

static void s_take_frame(runner_telemetry_t *self, const void *data, size_t size, void *forward,
                         int64_t now_ms)
{
    lynx_err_t err;
    lynx_msg_t *frame = lynx_msg_decode(data, size, &err);
    if (!frame) {
        s_invalid(self, "%s%s%s", err.field, *err.field ? ": " : "", err.message);
        return;
    }
    lynx_value_t *body = lynx_msg_body(frame);
    const lynx_value_t *values = lynx_value_get(body, "values");
    int64_t seq = lynx_value_get_int(body, "seq", -1);
    lynx_value_type_t type = LYNX_VALUE_NULL;
    const char *bad = NULL;
    if (lynx_msg_id(frame) != LYNX_MSG_TELEMETRY)
        s_invalid(self, "expected TELEMETRY, got %s", lynx_msg_command(frame));
    else if (seq < 0)
        s_invalid(self, "body.seq: must not be negative");
    else if ((bad = s_bad_value(values, &type)))
        s_invalid(self, "body.values.%.64s: expected a number or a boolean, got %s", bad,
                  lynx_value_type_name(type));
    else {
        self->received++;
        s_count_seq(self, seq);
        size_t kept = s_record(self, values);
        if (self->rules) {
            lynx_msg_destroy(&self->last_frame);
            self->last_frame = frame;
            self->dirty = true;
            if (now_ms - self->last_eval_ms >= self->interval_ms)
                s_evaluate(self, now_ms);
        }
        s_forward(self, frame, kept, lynx_value_size(values), forward);
        if (self->last_frame == frame)
            return;
    }
    lynx_msg_destroy(&frame);
}

//  The PULL's connection count from the monitor: accepted +1, disconnected -1.
static void s_read_monitor(runner_telemetry_t *self)
{
    void *handle = self->monitor ? zsock_resolve(self->monitor) : NULL;
    for (int taken = 0; handle && taken < RUNNER_TELEMETRY_BATCH; taken++) {
        zmsg_t *event = zmsg_recv_nowait(handle);
        if (!event)
            break;
        zframe_t *head = zmsg_first(event);
        uint16_t id = 0;
        if (head && zframe_size(head) >= sizeof id)
            memcpy(&id, zframe_data(head), sizeof id);
        if (id == ZMQ_EVENT_ACCEPTED)
            self->connections++;
        else if (id == ZMQ_EVENT_DISCONNECTED && self->connections > 0)
            self->connections--;
        zmsg_destroy(&event);
    }
}

int runner_telemetry_drain(runner_telemetry_t *self, void *forward, int64_t now_ms)
{
    if (!self)
        return 0;
    s_read_monitor(self);
    void *handle = zsock_resolve(self->pull);
    int taken = 0;
    for (; taken < RUNNER_TELEMETRY_BATCH; taken++) {
        zmq_msg_t part;
        zmq_msg_init(&part);
        if (zmq_msg_recv(&part, handle, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&part);
            break;
        }
        size_t parts = 1;
        for (bool more = zmq_msg_more(&part); more; parts++) {
            zmq_msg_t rest; //  the rest of a message is there once its first part is
            zmq_msg_init(&rest);
            more = zmq_msg_recv(&rest, handle, 0) >= 0 && zmq_msg_more(&rest);
            zmq_msg_close(&rest);
        }
        if (self->trigger)
            ; //  after the trigger nothing counts: the scenario is being killed
        else if (parts > 1)
            s_invalid(self, "expected 1 frame, got %zu", parts);
        else
            s_take_frame(self, zmq_msg_data(&part), zmq_msg_size(&part), forward, now_ms);
        zmq_msg_close(&part);
    }
    return taken;
}

void runner_telemetry_take(runner_telemetry_t *self, const void *data, size_t size, void *forward,
                           int64_t now_ms)
{
    if (self && !self->trigger)
        s_take_frame(self, data, size, forward, now_ms);
}

bool runner_telemetry_check(runner_telemetry_t *self, int64_t now_ms)
{
    if (!self)
        return false;
    if (!self->trigger && self->rules && self->dirty)
        s_evaluate(self, now_ms);
    return self->trigger != NULL;
}

// --------------------------------------------------------------------------------------------
//  On the runner's loop

static void s_end_timer(runner_telemetry_t *self, int *timer_p)
{
    if (*timer_p >= 0)
        zloop_timer_end(self->loop, *timer_p);
    *timer_p = -1;
}

static void s_unwatch(runner_telemetry_t *self)
{
    if (!self->loop)
        return;
    if (self->polling) {
        zloop_reader_end(self->loop, self->pull);
        if (self->monitor)
            zloop_reader_end(self->loop, self->monitor);
    }
    self->polling = false;
    s_end_timer(self, &self->check_timer);
    s_end_timer(self, &self->settle_timer);
}

//  Tell the owner what the last frames or timer changed. settled comes last: it may destroy
//  self.
static void s_tell(runner_telemetry_t *self, int64_t now_ms)
{
    if (self->trigger && !self->told) {
        self->told = true;
        s_unwatch(self);
        if (self->fired)
            self->fired(self->arg);
    }
    if (self->settling &&
        (!self->polling || self->connections == 0 || now_ms >= self->settle_deadline_ms)) {
        self->settling = false;
        s_unwatch(self);
        self->settled(self->arg);
    }
}

//  Take what is queued (a bounded number of batches); after the scenario's exit, evaluate at
//  once rather than at check_frequency_hz.
static void s_take_all(runner_telemetry_t *self, int64_t now_ms, int batches)
{
    void *forward = *self->forward_p ? zsock_resolve(*self->forward_p) : NULL;
    for (int batch = 0; batch < batches; batch++)
        if (runner_telemetry_drain(self, forward, now_ms) < RUNNER_TELEMETRY_BATCH)
            break;
    if (self->settling)
        runner_telemetry_check(self, now_ms);
}

static int s_on_readable(zloop_t *loop, zsock_t *socket, void *arg)
{
    (void)loop, (void)socket;
    runner_telemetry_t *self = (runner_telemetry_t *)arg;
    int64_t now_ms = lynx_time_mono_ms();
    s_take_all(self, now_ms, self->settling ? 64 : 1);
    s_tell(self, now_ms);
    return 0;
}

//  The check timer, so the last frame before a quiet spell is evaluated too; and the settle
//  deadline.
static int s_on_timer(zloop_t *loop, int timer_id, void *arg)
{
    (void)loop;
    runner_telemetry_t *self = (runner_telemetry_t *)arg;
    int64_t now_ms = lynx_time_mono_ms();
    if (timer_id == self->settle_timer)
        self->settle_timer = -1; //  one-shot
    runner_telemetry_check(self, now_ms);
    s_tell(self, now_ms);
    return 0;
}

int runner_telemetry_watch(runner_telemetry_t *self, zloop_t *loop, zsock_t **forward_p,
                           runner_telemetry_fn *fired, void *arg)
{
    self->loop = loop;
    self->forward_p = forward_p;
    self->fired = fired;
    self->arg = arg;
    self->polling = true;
    int rc = zloop_reader(loop, self->pull, s_on_readable, self);
    if (rc == 0 && self->monitor)
        rc = zloop_reader(loop, self->monitor, s_on_readable, self);
    if (rc == 0 && self->rules)
        rc = (self->check_timer =
                  zloop_timer(loop, (size_t)self->interval_ms, 0, s_on_timer, self)) < 0;
    if (rc)
        s_unwatch(self);
    return rc ? -1 : 0;
}

void runner_telemetry_settle(runner_telemetry_t *self, int64_t timeout_ms,
                             runner_telemetry_fn *settled)
{
    int64_t now_ms = lynx_time_mono_ms();
    self->settled = settled;
    self->settling = true;
    self->settle_deadline_ms = now_ms + timeout_ms;
    if (self->polling) {
        s_end_timer(self, &self->check_timer);
        s_take_all(self, now_ms, 64);
        self->settle_timer = zloop_timer(self->loop, (size_t)timeout_ms, 1, s_on_timer, self);
    }
    s_tell(self, now_ms);
}

// --------------------------------------------------------------------------------------------
//  Life cycle

//  The rules that can fire, or NULL: none configured, disabled, or refused (logged).
static lynx_rules_t *s_rules(const char *job_id, const lynx_value_t *early_termination)
{
    if (!early_termination)
        return NULL;
    lynx_value_t *errors = lynx_value_array();
    lynx_rules_t *rules = lynx_rules_new(early_termination, "early_termination", errors, NULL);
    if (!rules) {
        const lynx_value_t *first = lynx_value_at(errors, 0);
        zsys_warning("runner: early_termination refused, no watchdog job=%s reason=\"%s: %s\"",
                     job_id, lynx_value_get_string(first, "field", ""),
                     lynx_value_get_string(first, "message", "out of memory"));
    }
    lynx_value_destroy(&errors);
    if (rules && (!lynx_rules_enabled(rules) || lynx_rules_count(rules) == 0))
        lynx_rules_destroy(&rules);
    return rules;
}

static int s_configure_forwarding(runner_telemetry_t *self, const lynx_value_t *telemetry)
{
    const lynx_value_t *rate = lynx_value_get(telemetry, "sampling_rate_hz");
    double hz = lynx_value_is_number(rate) ? lynx_value_as_double(rate) : 0;
    if (hz > 0 && isfinite(hz)) {
        double period_ns = 1e9 / hz;
        self->sample_period_ns = period_ns >= 9e18 ? INT64_MAX : (int64_t)period_ns;
    }
    const lynx_value_t *names = lynx_value_get(telemetry, "variables");
    if (lynx_value_type(names) != LYNX_VALUE_ARRAY || lynx_value_size(names) == 0)
        return 0;
    self->forward_names = zhashx_new();
    if (!self->forward_names)
        return -1;
    for (size_t i = 0; i < lynx_value_size(names); i++) {
        const char *name = lynx_value_as_string(lynx_value_at(names, i));
        if (name && zhashx_lookup(self->forward_names, name) == NULL &&
            zhashx_insert(self->forward_names, name, (void *)1))
            return -1;
    }
    return 0;
}

static int s_configure_watchdog(runner_telemetry_t *self, const lynx_value_t *early_termination)
{
    self->rules = s_rules(self->job_id, early_termination);
    size_t count = lynx_rules_variable_count(self->rules);
    self->var_max = count + RUNNER_TELEMETRY_MAX_VARIABLES;
    if (!self->rules)
        return 0;
    self->values = malloc(count * sizeof *self->values + 1);
    self->seen = calloc(count + 1, sizeof *self->seen);
    if (!self->values || !self->seen)
        return -1;
    for (size_t i = 0; i < count; i++) {
        self->values[i] = NAN;
        if (s_var_add(self, lynx_rules_variable_name(self->rules, i)) < 0)
            return -1;
    }
    self->interval_ms = (int64_t)(1000.0 / lynx_rules_check_frequency_hz(self->rules));
    if (self->interval_ms < 1)
        self->interval_ms = 1;
    self->last_eval_ms = self->start_ms - self->interval_ms; //  the first frame is evaluated
    return 0;
}

//  The PULL, its monitor (attached before binding, so no connection is missed) and the bind to
//  an ephemeral port the kernel picks.
static int s_bind(runner_telemetry_t *self, lynx_err_t *err)
{
    self->pull = zsock_new(ZMQ_PULL);
    if (!self->pull)
        return lynx_err_set(err, LYNX_EINTERNAL, NULL, "telemetry socket: %s",
                            zmq_strerror(zmq_errno()));
    zsock_set_linger(self->pull, 0);
    zsock_set_rcvhwm(self->pull, RUNNER_TELEMETRY_RCVHWM);
    zsock_set_maxmsgsize(self->pull, RUNNER_TELEMETRY_MAX_FRAME_BYTES);
    //  The address alone is not unique: a job's intake often reuses the last one's memory
    //  while that monitor's inproc name is still bound, and the bind would fail.
    char monitor_endpoint[96];
    snprintf(monitor_endpoint, sizeof monitor_endpoint,
             "inproc://lynx-telemetry-monitor-%p-%" PRId64, (void *)self, zclock_usecs());
    if (zmq_socket_monitor(zsock_resolve(self->pull), monitor_endpoint,
                           ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED) == 0)
        self->monitor = zsock_new_pair(monitor_endpoint); //  connects
    if (!self->monitor)
        zsys_warning("runner: cannot monitor telemetry connections job=%s (%s); frames in flight "
                     "when a scenario exits may be missed",
                     self->job_id, zmq_strerror(zmq_errno()));
    const char *wanted = "tcp://127.0.0.1:*";
    if (zmq_bind(zsock_resolve(self->pull), wanted) != 0)
        return lynx_err_set(err, LYNX_EINTERNAL, NULL, "bind %s: %s", wanted,
                            zmq_strerror(zmq_errno()));
    char *bound = zsock_last_endpoint(self->pull);
    if (bound)
        snprintf(self->endpoint, sizeof self->endpoint, "%s", bound);
    zstr_free(&bound);
    if (!*self->endpoint)
        return lynx_err_set(err, LYNX_EINTERNAL, NULL, "bind %s: no endpoint reported", wanted);
    return 0;
}

runner_telemetry_t *runner_telemetry_new(const char *job_id, const char *batch_id,
                                         const lynx_value_t *early_termination,
                                         const lynx_value_t *telemetry, int64_t now_ms,
                                         lynx_err_t *err)
{
    runner_telemetry_t *self = calloc(1, sizeof *self);
    if (!self) {
        lynx_err_set(err, LYNX_EINTERNAL, NULL, "telemetry: out of memory");
        return NULL;
    }
    self->job_id = strdup(job_id ? job_id : "");
    self->batch_id = strdup(batch_id ? batch_id : "");
    self->var_slots = zhashx_new();
    self->start_ms = now_ms;
    self->last_seq = -1;
    self->check_timer = self->settle_timer = -1;
    if (!self->job_id || !self->batch_id || !self->var_slots ||
        s_configure_forwarding(self, telemetry) || s_configure_watchdog(self, early_termination))
        lynx_err_set(err, LYNX_EINTERNAL, NULL, "telemetry: out of memory");
    else if (s_bind(self, err) == 0)
        return self;
    runner_telemetry_destroy(&self);
    return NULL;
}

void runner_telemetry_destroy(runner_telemetry_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    runner_telemetry_t *self = *self_p;
    s_unwatch(self);
    if (self->monitor)
        zmq_socket_monitor(zsock_resolve(self->pull), NULL, 0);
    zsock_destroy(&self->monitor);
    zsock_destroy(&self->pull);
    lynx_rules_destroy(&self->rules);
    free(self->values);
    free(self->seen);
    lynx_msg_destroy(&self->last_frame);
    lynx_value_destroy(&self->trigger);
    for (size_t i = 0; i < self->var_count; i++)
        free(self->vars[i].name);
    free(self->vars);
    zhashx_destroy(&self->var_slots);
    zhashx_destroy(&self->forward_names);
    free(self->job_id);
    free(self->batch_id);
    free(self);
    *self_p = NULL;
}

// --------------------------------------------------------------------------------------------
//  Accessors

const char *runner_telemetry_endpoint(const runner_telemetry_t *self)
{
    return self ? self->endpoint : NULL;
}

zsock_t *runner_telemetry_socket(runner_telemetry_t *self)
{
    return self ? self->pull : NULL;
}

zsock_t *runner_telemetry_monitor(runner_telemetry_t *self)
{
    return self ? self->monitor : NULL;
}

int64_t runner_telemetry_check_interval_ms(const runner_telemetry_t *self)
{
    return self && self->rules ? self->interval_ms : 0;
}

const lynx_value_t *runner_telemetry_trigger(const runner_telemetry_t *self)
{
    return self ? self->trigger : NULL;
}

bool runner_telemetry_connected(const runner_telemetry_t *self)
{
    return self && self->connections > 0;
}

static lynx_value_t *s_last_values(const runner_telemetry_t *self)
{
    lynx_value_t *map = lynx_value_map();
    for (size_t i = 0; map && i < self->var_count; i++) {
        const s_var_t *var = &self->vars[i];
        if (var->type == LYNX_VALUE_BOOL)
            lynx_value_set_bool(map, var->name, var->latest.boolean);
        else if (var->type == LYNX_VALUE_INT)
            lynx_value_set_int(map, var->name, var->latest.integer);
        else if (var->type == LYNX_VALUE_DOUBLE)
            lynx_value_set_double(map, var->name, var->latest.number);
    }
    return map;
}

lynx_value_t *runner_telemetry_summary(const runner_telemetry_t *self)
{
    lynx_value_t *summary = self ? lynx_value_map() : NULL;
    lynx_value_t *last_values = summary ? s_last_values(self) : NULL;
    if (!last_values) {
        lynx_value_destroy(&summary);
        return NULL;
    }
    lynx_value_set_int(summary, "frames_received", s_as_int64(self->received));
    lynx_value_set_int(summary, "frames_invalid", s_as_int64(self->invalid));
    lynx_value_set_int(summary, "frames_dropped_by_client", s_as_int64(self->client_dropped));
    lynx_value_set_int(summary, "frames_forwarded", s_as_int64(self->forwarded));
    lynx_value_set_int(summary, "frames_forward_dropped", s_as_int64(self->forward_dropped));
    lynx_value_set_owned(summary, "last_values", last_values);
    if (self->trigger)
        lynx_value_set_owned(summary, "trigger", lynx_value_dup(self->trigger));
    else
        lynx_value_set_null(summary, "trigger");
    return summary;
}

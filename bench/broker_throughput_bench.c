//  broker_throughput_bench: jobs per second through the broker alone. The broker runs in this
//  process (broker_start, a temporary data dir, ephemeral loopback ports); simulated runners
//  are DEALER sockets in this thread that speak the runner protocol and answer every ASSIGN at
//  once with STARTED and FINISHED (Completed). Durability is on: the broker commits each result
//  to SQLite before it ACKs, so what is measured is dispatch + commit + ACK per job.
//
//      broker_throughput_bench [--runners N] [--slots S] [--jobs J] [--timeout-secs T]
//                              [--data-dir DIR] [--keep] [--curve]
//
//  Prints key=value lines on stdout: jobs_per_sec from the first ASSIGN to the last ACK,
//  ASSIGN->ACK latency percentiles, the submit time of the batch and the batch's final state
//  read back with batch.get. Exits 1 if the batch is not Completed with every job completed,
//  2 on bad flags. The broker's log goes to stderr.
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"
#include "lynx_msg.h"

#define S_ENGINE "simulated"
#define S_API_CORR_SUBMIT 1
#define S_API_CORR_GET 2

typedef struct {
    char job_id[64];
    int64_t attempt;
    int64_t assigned_ns; //  when the ASSIGN arrived
} s_attempt_t;

//  One simulated runner: its socket and the attempts it has answered but not yet seen ACKed.
typedef struct {
    zsock_t *socket;
    zcert_t *cert; //  with --curve: its enrolled keypair
    char id[32];
    bool registered;
    s_attempt_t *pending;
    size_t pending_count;
    size_t pending_max;
} s_runner_t;

typedef struct {
    int runner_count;
    int slots;
    int64_t jobs;
    int timeout_secs;
    const char *data_dir;
    bool keep;
    bool curve; //  --curve: CURVE on the runner socket, each simulated runner enrolled
} s_options_t;

typedef struct {
    s_options_t options;
    const char *data_dir;
    s_runner_t *runners;
    zsock_t *api;
    zpoller_t *poller;
    int64_t assigns;
    int64_t acks;
    int64_t first_assign_ns;
    int64_t last_ack_ns;
    int64_t *latency_ns; //  one per ACK, in arrival order
    lynx_value_t *submit_reply;
    lynx_value_t *get_reply;
    bool failed;
} s_bench_t;

static int64_t s_now_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

static int s_parse_options(int argc, char **argv, s_options_t *options)
{
    *options = (s_options_t){.runner_count = 8, .slots = 64, .jobs = 100000, .timeout_secs = 600};
    for (int i = 1; i < argc; i++) {
        const char *flag = argv[i];
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (streq(flag, "--keep")) {
            options->keep = true;
            continue;
        }
        if (streq(flag, "--curve")) {
            options->curve = true;
            continue;
        }
        if (!streq(flag, "--runners") && !streq(flag, "--slots") && !streq(flag, "--jobs") &&
            !streq(flag, "--timeout-secs") && !streq(flag, "--data-dir")) {
            fprintf(stderr, "broker_throughput_bench: unknown flag %s\n", flag);
            return -1;
        }
        if (!value) {
            fprintf(stderr, "broker_throughput_bench: %s: missing value\n", flag);
            return -1;
        }
        i++;
        if (streq(flag, "--runners"))
            options->runner_count = atoi(value);
        else if (streq(flag, "--slots"))
            options->slots = atoi(value);
        else if (streq(flag, "--jobs"))
            options->jobs = strtoll(value, NULL, 10);
        else if (streq(flag, "--timeout-secs"))
            options->timeout_secs = atoi(value);
        else
            options->data_dir = value;
    }
    if (options->runner_count < 1 || options->runner_count > 1024 || options->slots < 1 ||
        options->slots > 1024 || options->jobs < 1 || options->jobs > 10000000 ||
        options->timeout_secs < 1) {
        fprintf(stderr, "broker_throughput_bench: --runners and --slots must be 1..1024, "
                        "--jobs 1..10000000, --timeout-secs >= 1\n");
        return -1;
    }
    return 0;
}

// --------------------------------------------------------------------------------------------
//  Messages

static int s_send(s_bench_t *self, lynx_msg_t **msg_p, zsock_t *socket)
{
    lynx_err_t err;
    if (lynx_msg_send(msg_p, zsock_resolve(socket), NULL, &err) == 0)
        return 0;
    fprintf(stderr, "broker_throughput_bench: send: %s: %s\n", err.field, err.message);
    self->failed = true;
    return -1;
}

static void s_set_owned(lynx_value_t *map, const char *key, lynx_value_t *child)
{
    if (lynx_value_set(map, key, &child))
        lynx_value_destroy(&child);
}

static void s_send_register(s_bench_t *self, s_runner_t *runner)
{
    lynx_msg_t *msg = lynx_msg_new(LYNX_MSG_REGISTER);
    lynx_value_t *body = lynx_msg_body(msg);
    lynx_value_set_string(body, "runner_id", runner->id);
    lynx_value_set_string(body, "name", runner->id);
    lynx_value_t *capabilities = lynx_value_map();
    lynx_value_set_int(capabilities, "max_concurrent_jobs", self->options.slots);
    lynx_value_set_int(capabilities, "cpu_cores", self->options.slots);
    lynx_value_set_double(capabilities, "memory_gb", 1.0);
    lynx_value_set_bool(capabilities, "gpu_available", false);
    lynx_value_t *types = lynx_value_array();
    lynx_value_t *type = lynx_value_string(S_ENGINE);
    if (lynx_value_append(types, &type))
        lynx_value_destroy(&type);
    s_set_owned(capabilities, "supported_simulation_types", lynx_value_dup(types));
    s_set_owned(body, "capabilities", capabilities);
    s_set_owned(body, "engines", types);
    lynx_value_set_string(body, "hostname", "bench");
    lynx_value_set_int(body, "pid", getpid());
    //  Simulated runners send no heartbeats; their job traffic keeps them alive, and a long
    //  interval covers the time the batch takes to be written.
    lynx_value_set_int(body, "heartbeat_interval_ms", 600000);
    s_send(self, &msg, runner->socket);
}

static void s_add_uniform(lynx_value_t *dispersions, const char *name, double min, double max)
{
    lynx_value_t *distribution = lynx_value_map();
    lynx_value_set_string(distribution, "type", "uniform");
    lynx_value_set_double(distribution, "min", min);
    lynx_value_set_double(distribution, "max", max);
    lynx_value_t *entry = lynx_value_map();
    s_set_owned(entry, "distribution", distribution);
    s_set_owned(dispersions, name, entry);
}

static void s_send_request(s_bench_t *self, int64_t corr, const char *op, lynx_value_t *args)
{
    lynx_msg_t *msg = lynx_msg_new(LYNX_MSG_REQUEST);
    lynx_value_set_int(lynx_msg_body(msg), "corr", corr);
    lynx_value_set_string(lynx_msg_body(msg), "op", op);
    s_set_owned(lynx_msg_body(msg), "args", args);
    s_send(self, &msg, self->api);
}

//  One Monte Carlo batch of J runs over two uniform dispersions, for our simulated engine.
static void s_send_submit(s_bench_t *self)
{
    lynx_value_t *config = lynx_value_map();
    lynx_value_t *simulation = lynx_value_map();
    lynx_value_set_string(simulation, "name", "broker-throughput-bench");
    s_set_owned(config, "simulation", simulation);
    lynx_value_t *monte_carlo = lynx_value_map();
    lynx_value_set_int(monte_carlo, "runs", self->options.jobs);
    lynx_value_set_int(monte_carlo, "seed", 42);
    lynx_value_set_string(monte_carlo, "sampling_method", "monte_carlo");
    s_set_owned(config, "monte_carlo", monte_carlo);
    lynx_value_t *dispersions = lynx_value_map();
    s_add_uniform(dispersions, "mass_kg", 90.0, 110.0);
    s_add_uniform(dispersions, "drag_coefficient", 2.0, 2.4);
    s_set_owned(config, "dispersions", dispersions);
    lynx_value_t *compute = lynx_value_map();
    lynx_value_set_string(compute, "engine", S_ENGINE);
    s_set_owned(config, "compute", compute);
    lynx_value_t *args = lynx_value_map();
    lynx_value_set_string(args, "name", "broker-throughput-bench");
    s_set_owned(args, "config", config);
    lynx_value_set_int(args, "runs_override", self->options.jobs);
    s_send_request(self, S_API_CORR_SUBMIT, "batch.submit", args);
}

static void s_send_get(s_bench_t *self, const char *batch_id)
{
    lynx_value_t *args = lynx_value_map();
    lynx_value_set_string(args, "batch_id", batch_id);
    s_send_request(self, S_API_CORR_GET, "batch.get", args);
}

//  The attempt is done as far as a runner can tell: report it started and completed.
static void s_answer_assign(s_bench_t *self, s_runner_t *runner, const lynx_value_t *assign)
{
    const char *job_id = lynx_value_get_string(assign, "job_id", "");
    int64_t attempt = lynx_value_get_int(assign, "attempt", 0);
    int64_t now_ns = s_now_ns();
    if (self->assigns++ == 0)
        self->first_assign_ns = now_ns;
    if (runner->pending_count == runner->pending_max) {
        runner->pending_max = runner->pending_max ? runner->pending_max * 2 : 64;
        runner->pending = realloc(runner->pending, runner->pending_max * sizeof *runner->pending);
    }
    s_attempt_t *pending = &runner->pending[runner->pending_count++];
    snprintf(pending->job_id, sizeof pending->job_id, "%s", job_id);
    pending->attempt = attempt;
    pending->assigned_ns = now_ns;

    lynx_msg_t *started = lynx_msg_new(LYNX_MSG_STARTED);
    lynx_value_set_string(lynx_msg_body(started), "job_id", job_id);
    lynx_value_set_int(lynx_msg_body(started), "attempt", attempt);
    lynx_value_set_int(lynx_msg_body(started), "pid", getpid());
    s_send(self, &started, runner->socket);

    lynx_msg_t *finished = lynx_msg_new(LYNX_MSG_FINISHED);
    lynx_value_t *body = lynx_msg_body(finished);
    lynx_value_set_string(body, "job_id", job_id);
    lynx_value_set_int(body, "attempt", attempt);
    lynx_value_set_string(body, "status", "Completed");
    lynx_value_t *result = lynx_value_map();
    lynx_value_set_string(result, "job_id", job_id);
    lynx_value_set_bool(result, "success", true);
    lynx_value_set_double(result, "execution_time_secs", 0.0);
    s_set_owned(result, "output_files", lynx_value_array());
    s_set_owned(result, "telemetry_data", lynx_value_map());
    lynx_value_t *metadata = lynx_value_map();
    lynx_value_set_string(metadata, "engine", S_ENGINE);
    s_set_owned(result, "metadata", metadata);
    s_set_owned(body, "result", result);
    s_send(self, &finished, runner->socket);
}

static void s_on_ack(s_bench_t *self, s_runner_t *runner, const lynx_value_t *ack)
{
    const char *job_id = lynx_value_get_string(ack, "job_id", "");
    int64_t attempt = lynx_value_get_int(ack, "attempt", 0);
    for (size_t i = 0; i < runner->pending_count; i++) {
        s_attempt_t *pending = &runner->pending[i];
        if (pending->attempt != attempt || strcmp(pending->job_id, job_id) != 0)
            continue;
        int64_t now_ns = s_now_ns();
        self->latency_ns[self->acks++] = now_ns - pending->assigned_ns;
        self->last_ack_ns = now_ns;
        *pending = runner->pending[--runner->pending_count];
        return;
    }
    fprintf(stderr, "broker_throughput_bench: ACK for an attempt %s did not finish: job=%s\n",
            runner->id, job_id);
    self->failed = true;
}

static void s_on_runner_message(s_bench_t *self, s_runner_t *runner, lynx_msg_t *msg)
{
    lynx_value_t *body = lynx_msg_body(msg);
    switch (lynx_msg_id(msg)) {
    case LYNX_MSG_REGISTERED:
        runner->registered = true;
        break;
    case LYNX_MSG_ASSIGN:
        s_answer_assign(self, runner, body);
        break;
    case LYNX_MSG_ACK:
        s_on_ack(self, runner, body);
        break;
    default:
        fprintf(stderr, "broker_throughput_bench: unexpected %s for %s: %s\n",
                lynx_msg_command(msg), runner->id, lynx_value_get_string(body, "message", ""));
        self->failed = true;
    }
}

static void s_on_api_message(s_bench_t *self, lynx_msg_t *msg)
{
    lynx_value_t *body = lynx_msg_body(msg);
    if (lynx_msg_id(msg) != LYNX_MSG_REPLY) {
        fprintf(stderr, "broker_throughput_bench: %s corr=%" PRId64 ": %s: %s\n",
                lynx_msg_command(msg), lynx_value_get_int(body, "corr", 0),
                lynx_value_get_string(body, "field", ""),
                lynx_value_get_string(body, "message", ""));
        self->failed = true;
        return;
    }
    lynx_value_t *reply = lynx_value_dup(lynx_value_get(body, "body"));
    if (lynx_value_get_int(body, "corr", 0) == S_API_CORR_SUBMIT)
        self->submit_reply = reply;
    else
        self->get_reply = reply;
}

// --------------------------------------------------------------------------------------------
//  Event loop

//  Receive everything a socket has queued without blocking.
static void s_drain(s_bench_t *self, zsock_t *socket, s_runner_t *runner)
{
    while (zsock_events(socket) & ZMQ_POLLIN) {
        lynx_err_t err;
        lynx_msg_t *msg = lynx_msg_recv(zsock_resolve(socket), NULL, &err);
        if (!msg) {
            fprintf(stderr, "broker_throughput_bench: receive: %s: %s\n", err.field, err.message);
            self->failed = true;
            return;
        }
        if (runner)
            s_on_runner_message(self, runner, msg);
        else
            s_on_api_message(self, msg);
        lynx_msg_destroy(&msg);
    }
}

typedef bool(s_done_fn)(const s_bench_t *self);

//  Serve every socket until done() holds; -1 on a failure, an interrupt or the deadline.
static int s_run_until(s_bench_t *self, s_done_fn *done, int64_t deadline_ns, const char *what)
{
    while (!self->failed && !done(self)) {
        if (s_now_ns() > deadline_ns) {
            fprintf(stderr,
                    "broker_throughput_bench: timed out waiting for %s assigns=%" PRId64
                    " acks=%" PRId64 "\n",
                    what, self->assigns, self->acks);
            return -1;
        }
        zsock_t *ready = (zsock_t *)zpoller_wait(self->poller, 100);
        if (zpoller_terminated(self->poller))
            return -1;
        if (!ready)
            continue;
        //  Serve every runner each turn, not just the one that woke us: fairer, fewer polls.
        for (int i = 0; i < self->options.runner_count; i++)
            s_drain(self, self->runners[i].socket, &self->runners[i]);
        s_drain(self, self->api, NULL);
    }
    return self->failed ? -1 : 0;
}

static bool s_all_registered(const s_bench_t *self)
{
    for (int i = 0; i < self->options.runner_count; i++)
        if (!self->runners[i].registered)
            return false;
    return true;
}

static bool s_all_acked(const s_bench_t *self)
{
    return self->submit_reply && self->acks == self->options.jobs;
}

static bool s_got_batch(const s_bench_t *self)
{
    return self->get_reply != NULL;
}

//  A DEALER to endpoint; with cert, a CURVE client of server_key.
static zsock_t *s_dealer(const char *endpoint, zcert_t *cert, const char *server_key)
{
    zsock_t *socket = zsock_new(ZMQ_DEALER);
    if (cert) {
        zcert_apply(cert, socket);
        zsock_set_curve_serverkey(socket, server_key);
    }
    zsock_set_sndhwm(socket, 0); //  no limit: the broker already bounds what is in flight
    zsock_set_rcvhwm(socket, 0);
    zsock_set_maxmsgsize(socket, (int64_t)LYNX_MSG_MAX_BYTES + 1024);
    zsock_set_linger(socket, 0);
    if (zsock_connect(socket, "%s", endpoint)) {
        fprintf(stderr, "broker_throughput_bench: connect %s failed\n", endpoint);
        zsock_destroy(&socket);
    }
    return socket;
}

// --------------------------------------------------------------------------------------------
//  Figures

static int s_compare_ns(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static double s_percentile_ms(const int64_t *sorted_ns, int64_t count, double fraction)
{
    int64_t index = (int64_t)(fraction * (double)(count - 1) + 0.5);
    return (double)sorted_ns[index] / 1e6;
}

static int s_report(s_bench_t *self, double submit_secs)
{
    const s_options_t *options = &self->options;
    double elapsed_secs = (double)(self->last_ack_ns - self->first_assign_ns) / 1e9;
    qsort(self->latency_ns, (size_t)self->acks, sizeof *self->latency_ns, s_compare_ns);
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    const lynx_value_t *batch = lynx_value_get(self->get_reply, "batch");
    const char *status = lynx_value_get_string(batch, "status", "?");
    int64_t completed = lynx_value_get_int(batch, "completed_jobs", -1);
    printf("curve=%s\n", options->curve ? "on" : "off");
    printf("runners=%d\nslots_per_runner=%d\njobs=%" PRId64 "\n", options->runner_count,
           options->slots, options->jobs);
    printf("submit_secs=%.3f\n", submit_secs);
    printf("dispatch_secs=%.3f\n", elapsed_secs);
    printf("jobs_per_sec=%.0f\n", elapsed_secs > 0 ? (double)self->acks / elapsed_secs : 0.0);
    printf("assign_ack_p50_ms=%.3f\n", s_percentile_ms(self->latency_ns, self->acks, 0.50));
    printf("assign_ack_p99_ms=%.3f\n", s_percentile_ms(self->latency_ns, self->acks, 0.99));
    printf("assign_ack_max_ms=%.3f\n", s_percentile_ms(self->latency_ns, self->acks, 1.0));
    printf("cpu_user_secs=%.2f\ncpu_sys_secs=%.2f\n",
           (double)usage.ru_utime.tv_sec + (double)usage.ru_utime.tv_usec / 1e6,
           (double)usage.ru_stime.tv_sec + (double)usage.ru_stime.tv_usec / 1e6);
    printf("peak_rss_mb=%.1f\n", (double)usage.ru_maxrss / 1024.0);
    printf("batch_status=%s\ncompleted_jobs=%" PRId64 "\n", status, completed);
    bool ok = streq(status, "Completed") && completed == options->jobs;
    printf("verified=%s\n", ok ? "yes" : "no");
    fflush(stdout);
    if (!ok)
        fprintf(stderr,
                "broker_throughput_bench: batch is %s with %" PRId64 "/%" PRId64
                " jobs completed\n",
                status, completed, options->jobs);
    return ok ? 0 : 1;
}

static int s_run(s_bench_t *self, const char *runner_endpoint, const char *api_endpoint,
                 const char *broker_key)
{
    const s_options_t *options = &self->options;
    int64_t deadline_ns = s_now_ns() + (int64_t)options->timeout_secs * 1000000000;
    self->api = s_dealer(api_endpoint, NULL, NULL);
    if (!self->api)
        return -1;
    self->poller = zpoller_new(self->api, NULL);
    self->runners = calloc((size_t)options->runner_count, sizeof *self->runners);
    for (int i = 0; i < options->runner_count; i++) {
        s_runner_t *runner = &self->runners[i];
        snprintf(runner->id, sizeof runner->id, "sim-%03d", i);
        if (options->curve) {
            char path[4200];
            snprintf(path, sizeof path, "%s/keys/runners/%s.key", self->data_dir, runner->id);
            runner->cert = zcert_new();
            zcert_set_meta(runner->cert, "runner_id", "%s", runner->id);
            zcert_save_public(runner->cert, path); //  enrolled as an admin would
        }
        runner->socket = s_dealer(runner_endpoint, runner->cert, broker_key);
        if (!runner->socket)
            return -1;
        zpoller_add(self->poller, runner->socket);
        s_send_register(self, runner);
    }
    if (s_run_until(self, s_all_registered, deadline_ns, "REGISTERED"))
        return -1;
    int64_t submitted_ns = s_now_ns();
    s_send_submit(self);
    if (s_run_until(self, s_all_acked, deadline_ns, "every job's ACK"))
        return -1;
    //  The reply comes once the whole batch is written; ASSIGNs follow it.
    double submit_secs = (double)(self->first_assign_ns - submitted_ns) / 1e9;
    s_send_get(self, lynx_value_get_string(self->submit_reply, "batch_id", ""));
    if (s_run_until(self, s_got_batch, deadline_ns, "batch.get"))
        return -1;
    return s_report(self, submit_secs);
}

static void s_bench_destroy(s_bench_t *self)
{
    zpoller_destroy(&self->poller);
    for (int i = 0; self->runners && i < self->options.runner_count; i++) {
        zsock_destroy(&self->runners[i].socket);
        zcert_destroy(&self->runners[i].cert);
        free(self->runners[i].pending);
    }
    free(self->runners);
    zsock_destroy(&self->api);
    free(self->latency_ns);
    lynx_value_destroy(&self->submit_reply);
    lynx_value_destroy(&self->get_reply);
}

int main(int argc, char **argv)
{
    s_bench_t self = {0};
    if (s_parse_options(argc, argv, &self.options))
        return 2;
    zsys_init();
    zsys_set_logstream(stderr); //  stdout carries only the figures
    zsys_set_logident("broker_throughput_bench");
    char temp_dir[] = "/tmp/lynx-throughput-XXXXXX";
    const char *data_dir = self.options.data_dir;
    if (!data_dir) {
        if (!mkdtemp(temp_dir)) {
            perror("broker_throughput_bench: mkdtemp");
            return 1;
        }
        data_dir = temp_dir;
    }
    char broker_key[64] = "";
    broker_options_t broker_options = {
        .data_dir = data_dir,
        .runner_endpoint = "tcp://127.0.0.1:*",
        .api_endpoint = "tcp://127.0.0.1:*",
        .heartbeat_interval_ms = 2000,
        .heartbeat_misses = 3,
        .curve = self.options.curve,
        .public_key_out = broker_key,
    };
    self.data_dir = data_dir;
    char runner_endpoint[256], api_endpoint[256];
    lynx_err_t err;
    lynx_err_clear(&err);
    zactor_t *broker = broker_start(&broker_options, runner_endpoint, api_endpoint, &err);
    int rc = 1;
    if (!broker)
        fprintf(stderr, "broker_throughput_bench: %s\n", err.message);
    else {
        self.latency_ns = calloc((size_t)self.options.jobs, sizeof *self.latency_ns);
        //  s_run returns -1 on a failure and s_report's verdict when it got that far.
        rc = s_run(&self, runner_endpoint, api_endpoint, broker_key) == 0 ? 0 : 1;
    }
    s_bench_destroy(&self);
    zactor_destroy(&broker);
    if (!self.options.data_dir && !self.options.keep) {
        zdir_t *dir = zdir_new(temp_dir, NULL);
        if (dir)
            zdir_remove(dir, true);
        zdir_destroy(&dir);
    } else
        fprintf(stderr, "broker_throughput_bench: data kept in %s\n", data_dir);
    return rc;
}

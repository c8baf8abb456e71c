//  lynx watch: follow a batch (or one job) live from the broker's telemetry PUB socket. The
//  default summary keeps one line per running job with its latest values, redrawn in place on
//  a terminal and printed as a block every few seconds otherwise; --raw prints every frame and
//  event as it comes. Stops when the batch (or the --job) has ended, or after --duration.
#include <czmq.h>
#include <sys/ioctl.h>

#include "cli_commands.h"
#include "lynx_msg.h"
#include "lynx_time.h"

#define WATCH_POLL_MS 100
#define WATCH_STATUS_EVERY_MS 1000
#define WATCH_REDRAW_TTY_MS 250   //  a terminal is redrawn at most this often
#define WATCH_BLOCK_EVERY_MS 5000 //  a pipe or file gets a summary block at most this often
#define WATCH_MAX_ROWS_TTY 40     //  running jobs drawn on a terminal; the rest are counted
#define WATCH_DRAIN_MAX 10000     //  messages taken per wake-up before polls and redraws
#define WATCH_SETTLE_MS 300       //  after the end, events still on the way are taken this long

static const char s_usage[] =
    "usage: lynx watch BATCH_ID [--job JOB_ID] [--variables a,b] [--raw] [--duration SECS]\n"
    "                  [--endpoint EP]\n\n"
    "Follow a batch live. By default one line per running job (full job id, frames seen and\n"
    "the latest value of each variable), redrawn in place on a terminal and printed as a\n"
    "block every 5 s into a pipe, with a line for each job that ends. --raw prints every\n"
    "telemetry frame and job event instead, one line each.\n\n"
    "  --job JOB_ID      only this job; stops when it ends (exit 0 if Completed, 1 otherwise)\n"
    "  --variables a,b   only these telemetry variables\n"
    "  --raw             the stream: a line per frame and per event\n"
    "  --duration SECS   stop after SECS seconds (exit 0)\n"
    "  --endpoint EP     the broker's telemetry PUB (environment LYNX_TELEMETRY_ENDPOINT;\n"
    "                    default: asked from the gateway's /healthz)\n\n"
    "Stops when the batch has ended: exit 0 if Completed, 1 otherwise.\n";

typedef struct {
    cli_ctx_t *ctx;
    const char *batch_id;
    const char *job_id;    //  --job, or NULL
    const char *variables; //  --variables, or NULL: all
    bool raw;
    bool tty;
    //  From the last status poll.
    char state[32];
    long long total, ended, failed;
    //  Summary view: job_id -> {frames, seq, values}, in the order jobs were first seen.
    lynx_value_t *running;
    bool dirty;
    int drawn_lines; //  lines of the block now on the terminal
    int64_t next_draw_ms;
} s_watch_t;

//  The broker's PUB endpoint as the gateway reports it; NULL (message printed) when unknown.
static char *s_discover_endpoint(cli_ctx_t *ctx, int *status_p)
{
    cli_http_reply_t reply = {0};
    *status_p = cli_call(ctx, "GET", "/healthz", NULL, &reply);
    if (*status_p != CLI_EXIT_OK)
        return NULL;
    const char *endpoint = lynx_value_get_string(reply.json, "telemetry_endpoint", NULL);
    char *copy = endpoint && *endpoint ? strdup(endpoint) : NULL;
    cli_http_reply_clear(&reply);
    if (!copy) {
        fprintf(stderr, "lynx watch: the broker did not report a telemetry endpoint; "
                        "pass --endpoint\n");
        *status_p = CLI_EXIT_USAGE;
    }
    return copy;
}

//  True when variables (comma list, NULL: all) includes name.
static bool s_wanted(const char *variables, const char *name)
{
    if (!variables)
        return true;
    size_t len = strlen(name);
    for (const char *at = variables; at && *at;) {
        const char *comma = strchr(at, ',');
        size_t item = comma ? (size_t)(comma - at) : strlen(at);
        if (item == len && strncmp(at, name, len) == 0)
            return true;
        at = comma ? comma + 1 : NULL;
    }
    return false;
}

static bool s_job_terminal(const char *status)
{
    return strcmp(status, "Completed") == 0 || strcmp(status, "Failed") == 0 ||
           strcmp(status, "Timeout") == 0 || strcmp(status, "Cancelled") == 0;
}

//  Refresh state (and the batch's counts) from the gateway: the batch, or the --job.
//  Returns an exit status; a failure was printed.
static int s_poll(s_watch_t *self)
{
    cli_http_reply_t reply;
    int status = cli_call_on(self->ctx, "GET", self->job_id ? "/jobs/%s" : "/batches/%s",
                             self->job_id ? self->job_id : self->batch_id, NULL, &reply);
    if (status != CLI_EXIT_OK)
        return status;
    if (self->job_id) {
        snprintf(self->state, sizeof self->state, "%s",
                 lynx_value_get_string(reply.json, "status", "?"));
        const char *batch = lynx_value_get_string(reply.json, "batch_id", "");
        if (strcmp(batch, self->batch_id) != 0) {
            fprintf(stderr, "lynx watch: job %s belongs to batch %s, not %s\n", self->job_id, batch,
                    self->batch_id);
            status = CLI_EXIT_USAGE;
        }
    } else {
        const lynx_value_t *batch = lynx_value_get(reply.json, "batch");
        const lynx_value_t *by_status = lynx_value_get(reply.json, "jobs_by_status");
        snprintf(self->state, sizeof self->state, "%s",
                 lynx_value_get_string(batch, "status", "?"));
        long long total = lynx_value_get_int(batch, "total_jobs", 0);
        long long failed = lynx_value_get_int(batch, "failed_jobs", 0);
        long long ended = lynx_value_get_int(by_status, "Completed", 0) +
                          lynx_value_get_int(by_status, "Failed", 0) +
                          lynx_value_get_int(by_status, "Timeout", 0) +
                          lynx_value_get_int(by_status, "Cancelled", 0);
        self->dirty |= total != self->total || ended != self->ended || failed != self->failed;
        self->total = total, self->ended = ended, self->failed = failed;
    }
    cli_http_reply_clear(&reply);
    return status;
}

static bool s_done(const s_watch_t *self)
{
    return self->job_id ? s_job_terminal(self->state) : cli_batch_terminal(self->state);
}

// --------------------------------------------------------------------------------------------
//  The summary view

//  The row of job_id, created when first seen.
static lynx_value_t *s_row(s_watch_t *self, const char *job_id)
{
    lynx_value_t *row = lynx_value_get(self->running, job_id);
    if (!row) {
        lynx_value_set_owned(self->running, job_id, lynx_value_map());
        row = lynx_value_get(self->running, job_id);
        lynx_value_set_int(row, "frames", 0);
    }
    return row;
}

//  Print the value list of a row or frame into line (bounded).
static void s_append_values(const s_watch_t *self, const lynx_value_t *values, FILE *stream)
{
    for (size_t i = 0; i < lynx_value_size(values); i++) {
        const char *name = lynx_value_key_at(values, i);
        if (!s_wanted(self->variables, name))
            continue;
        fprintf(stream, " %s=", name);
        cli_print_scalar(stream, lynx_value_at(values, i), 6);
    }
}

static int s_terminal_width(void)
{
    struct winsize size;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 20)
        return size.ws_col;
    return 0;
}

//  Write the block: a header with the batch's progress, then one line per running job. On a
//  terminal lines are cut to its width so that redrawing in place stays aligned.
static void s_draw(s_watch_t *self)
{
    int width = self->tty ? s_terminal_width() : 0;
    if (self->tty && self->drawn_lines > 0)
        printf("\033[%dA\033[J", self->drawn_lines); //  back to the block's top, clear below
    self->drawn_lines = 0;
    char *text = NULL;
    size_t length = 0;
    FILE *block = open_memstream(&text, &length);
    if (!block)
        return;
    char now[32];
    lynx_time_rfc3339(lynx_time_now_ms(), now);
    if (self->job_id)
        fprintf(block, "job %s %s  (%s)\n", self->job_id, self->state, now);
    else
        fprintf(block, "batch %s %s  %lld/%lld ended, %lld failed, %zu running  (%s)\n",
                self->batch_id, self->state, self->ended, self->total, self->failed,
                lynx_value_size(self->running), now);
    size_t rows = lynx_value_size(self->running);
    size_t shown = self->tty && rows > WATCH_MAX_ROWS_TTY ? WATCH_MAX_ROWS_TTY : rows;
    for (size_t i = 0; i < shown; i++) {
        const lynx_value_t *row = lynx_value_at(self->running, i);
        fprintf(block, "  %s  frames=%lld", lynx_value_key_at(self->running, i),
                (long long)lynx_value_get_int(row, "frames", 0));
        s_append_values(self, lynx_value_get(row, "values"), block);
        fputc('\n', block);
    }
    if (shown < rows)
        fprintf(block, "  ... and %zu more running\n", rows - shown);
    fclose(block);
    for (char *line = text; line && *line;) {
        char *end = strchr(line, '\n');
        size_t size = end ? (size_t)(end - line) : strlen(line);
        if (width > 0 && size > (size_t)width - 1)
            size = (size_t)width - 1;
        printf("%.*s\n", (int)size, line);
        self->drawn_lines++;
        line = end ? end + 1 : NULL;
    }
    free(text);
    fflush(stdout);
    self->dirty = false;
}

//  A line that scrolls above the block (a job that ended).
static void s_print_above(s_watch_t *self, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

static void s_print_above(s_watch_t *self, const char *format, ...)
{
    if (self->tty && self->drawn_lines > 0) {
        printf("\033[%dA\033[J", self->drawn_lines);
        self->drawn_lines = 0;
        self->dirty = true;
    }
    va_list args;
    va_start(args, format);
    vprintf(format, args);
    va_end(args);
    fflush(stdout);
}

static void s_on_frame(s_watch_t *self, const lynx_value_t *body)
{
    const char *job_id = lynx_value_get_string(body, "job_id", "?");
    if (self->raw) {
        printf("frame job=%s seq=%" PRId64 " t_ns=%" PRId64, job_id,
               lynx_value_get_int(body, "seq", -1), lynx_value_get_int(body, "timestamp_ns", 0));
        s_append_values(self, lynx_value_get(body, "values"), stdout);
        putchar('\n');
        return;
    }
    lynx_value_t *row = s_row(self, job_id);
    lynx_value_set_int(row, "frames", lynx_value_get_int(row, "frames", 0) + 1);
    //  Keep the latest value of each variable (a frame may carry only some of them).
    lynx_value_t *latest = lynx_value_get(row, "values");
    if (!latest) {
        lynx_value_set_owned(row, "values", lynx_value_map());
        latest = lynx_value_get(row, "values");
    }
    const lynx_value_t *values = lynx_value_get(body, "values");
    for (size_t i = 0; i < lynx_value_size(values); i++) {
        lynx_value_t *copy = lynx_value_dup(lynx_value_at(values, i));
        if (lynx_value_set(latest, lynx_value_key_at(values, i), &copy))
            lynx_value_destroy(&copy);
    }
    self->dirty = true;
}

static void s_on_event(s_watch_t *self, const lynx_value_t *event)
{
    const char *job = lynx_value_get_string(event, "job_id", NULL);
    const char *status = lynx_value_get_string(event, "status", "?");
    const char *message = lynx_value_get_string(event, "error_message", NULL);
    if (self->job_id && (!job || strcmp(job, self->job_id) != 0))
        return;
    if (self->raw) {
        printf("event %s%s status=%s",
               job ? "job=" : "batch=", job ? job : lynx_value_get_string(event, "batch_id", "?"),
               status);
        if (message)
            printf(" error=\"%s\"", message);
        putchar('\n');
        return;
    }
    if (!job) {
        snprintf(self->state, sizeof self->state, "%s", status);
        self->dirty = true;
        return;
    }
    if (strcmp(status, "Running") == 0 || strcmp(status, "Claimed") == 0) {
        s_row(self, job);
        self->dirty = true;
        return;
    }
    //  The end line keeps what the job's row showed last: frames seen and latest values.
    lynx_value_t *row = lynx_value_get(self->running, job);
    char *last = NULL;
    size_t length = 0;
    FILE *stream = open_memstream(&last, &length);
    if (stream && row) {
        fprintf(stream, " frames=%lld", (long long)lynx_value_get_int(row, "frames", 0));
        s_append_values(self, lynx_value_get(row, "values"), stream);
    }
    if (stream)
        fclose(stream);
    bool was_running = row != NULL;
    const char *what = s_job_terminal(status) ? status : "requeued";
    if (s_job_terminal(status) || (was_running && strcmp(status, "Pending") == 0))
        s_print_above(self, "job %s %s%s%s%s%s\n", job, what, last ? last : "",
                      message ? " error=\"" : "", message ? message : "", message ? "\"" : "");
    free(last);
    lynx_value_remove(self->running, job);
    self->dirty = true;
}

//  Jobs that were already running when we subscribed get their row before their next frame.
static void s_seed_running(s_watch_t *self)
{
    if (self->job_id) {
        if (strcmp(self->state, "Running") == 0)
            s_row(self, self->job_id);
        return;
    }
    char *base = cli_path(self->ctx, "/batches/%s/jobs", self->batch_id);
    lynx_value_t *jobs = lynx_value_array();
    if (base && jobs && cli_list_all(self->ctx, base, "jobs", "Running", NULL, jobs) == 0)
        for (size_t i = 0; i < lynx_value_size(jobs); i++)
            s_row(self, lynx_value_get_string(lynx_value_at(jobs, i), "id", "?"));
    lynx_value_destroy(&jobs);
    free(base);
}

// --------------------------------------------------------------------------------------------

static void s_on_message(s_watch_t *self, zmsg_t *msg)
{
    zframe_t *topic = zmsg_first(msg);
    zframe_t *payload = zmsg_next(msg);
    if (!topic || !payload)
        return;
    bool is_event = zframe_size(topic) >= 6 && memcmp(zframe_data(topic), "event.", 6) == 0;
    lynx_err_t err;
    if (is_event) {
        lynx_value_t *event = lynx_msgpack_unpack(zframe_data(payload), zframe_size(payload), &err);
        if (event)
            s_on_event(self, event);
        lynx_value_destroy(&event);
    } else {
        lynx_msg_t *frame = lynx_msg_decode(zframe_data(payload), zframe_size(payload), &err);
        if (frame && lynx_msg_id(frame) == LYNX_MSG_TELEMETRY)
            s_on_frame(self, lynx_msg_body(frame));
        lynx_msg_destroy(&frame);
    }
}

static void s_maybe_draw(s_watch_t *self, bool force)
{
    if (self->raw)
        return;
    int64_t now = lynx_time_mono_ms();
    if (force || (self->dirty && now >= self->next_draw_ms)) {
        s_draw(self);
        self->next_draw_ms = now + (self->tty ? WATCH_REDRAW_TTY_MS : WATCH_BLOCK_EVERY_MS);
    }
}

int cli_cmd_watch(cli_ctx_t *ctx, int argc, char **argv)
{
    const char *endpoint = getenv("LYNX_TELEMETRY_ENDPOINT"), *duration = NULL;
    s_watch_t self = {.ctx = ctx, .tty = ctx->stdout_tty};
    const cli_flag_t flags[] = {
        {"--endpoint", &endpoint, NULL}, {"--variables", &self.variables, NULL},
        {"--duration", &duration, NULL}, {"--job", &self.job_id, NULL},
        {"--raw", NULL, &self.raw},      {NULL, NULL, NULL}};
    const char *positional[1];
    size_t count = 0;
    int rc = cli_args_parse(argc, argv, flags, positional, 1, &count);
    if (rc != 0 || count != 1)
        return cli_usage(s_usage, rc == 1);
    long duration_secs = 0;
    if (duration && cli_parse_long("watch", "--duration", duration, 1, 86400, &duration_secs))
        return CLI_EXIT_USAGE;
    self.batch_id = positional[0];
    int status = s_poll(&self); //  also checks that the batch (and job) exist
    if (status != CLI_EXIT_OK)
        return status;
    char *discovered = endpoint && *endpoint ? NULL : s_discover_endpoint(ctx, &status);
    if (!(endpoint && *endpoint) && !discovered)
        return status;
    //  Topics are prefixes: a job's own, or the whole batch's frames and events.
    char topics[2][160];
    const char *suffix = self.job_id ? self.job_id : "";
    snprintf(topics[0], sizeof topics[0], "telemetry.%s.%s", self.batch_id, suffix);
    snprintf(topics[1], sizeof topics[1], "event.%s%s%s", self.batch_id, self.job_id ? "." : "",
             suffix);
    zsock_t *subscriber = zsock_new(ZMQ_SUB);
    //  The broker's PUB is a CURVE server (unless --insecure): present an enrolled subscriber
    //  key (a zcert pair in its data_dir/keys/subscribers/) and check the broker's.
    const char *key_file = getenv("LYNX_SUBSCRIBER_KEY_FILE");
    const char *broker_key = getenv("LYNX_BROKER_PUBLIC_KEY");
    if (key_file && *key_file) {
        zcert_t *cert = zcert_load(key_file);
        if (!cert || !broker_key || strlen(broker_key) != 40) {
            fprintf(stderr, "lynx watch: LYNX_SUBSCRIBER_KEY_FILE=%s: %s\n", key_file,
                    cert ? "LYNX_BROKER_PUBLIC_KEY must hold the broker's public key (40 "
                           "characters, its READY line's public_key=)"
                         : "not a readable zcert key pair");
            zcert_destroy(&cert);
            zsock_destroy(&subscriber);
            free(discovered);
            return CLI_EXIT_USAGE;
        }
        zcert_apply(cert, subscriber);
        zsock_set_curve_serverkey(subscriber, broker_key);
        zcert_destroy(&cert);
    }
    zsock_set_subscribe(subscriber, topics[0]);
    zsock_set_subscribe(subscriber, topics[1]);
    const char *target = discovered ? discovered : endpoint;
    if (zsock_connect(subscriber, "%s", target) < 0) {
        fprintf(stderr, "lynx watch: connect %s: %s\n", target, zmq_strerror(zmq_errno()));
        zsock_destroy(&subscriber);
        free(discovered);
        return CLI_EXIT_USAGE;
    }
    printf("watching %s %s on %s (status %s)\n", self.job_id ? "job" : "batch",
           self.job_id ? self.job_id : self.batch_id, target, self.state);
    fflush(stdout);
    self.running = lynx_value_map();
    if (!self.raw)
        s_seed_running(&self);
    self.dirty = true;
    int64_t stop_at = duration_secs ? lynx_time_mono_ms() + duration_secs * 1000 : 0;
    int64_t next_status = lynx_time_mono_ms() + WATCH_STATUS_EVERY_MS;
    zpoller_t *poller = zpoller_new(subscriber, NULL);
    while (!zsys_interrupted && !s_done(&self) && (!stop_at || lynx_time_mono_ms() < stop_at)) {
        if (zpoller_wait(poller, WATCH_POLL_MS)) {
            //  Take everything queued before drawing: a busy batch sends thousands a second.
            int taken = 0;
            do {
                zmsg_t *msg = zmsg_recv(subscriber);
                if (!msg)
                    break;
                s_on_message(&self, msg);
                zmsg_destroy(&msg);
            } while (++taken < WATCH_DRAIN_MAX && (zsock_events(subscriber) & ZMQ_POLLIN));
            fflush(stdout);
        }
        //  Events tell us when the batch ends, but one may have gone before we subscribed.
        if (lynx_time_mono_ms() >= next_status) {
            next_status = lynx_time_mono_ms() + WATCH_STATUS_EVERY_MS;
            if ((status = s_poll(&self)) != CLI_EXIT_OK)
                break;
        }
        s_maybe_draw(&self, false);
    }
    //  The batch's end may overtake its last jobs' events: take what is still on the way.
    for (int64_t quiet_until = lynx_time_mono_ms() + WATCH_SETTLE_MS;
         status == CLI_EXIT_OK && s_done(&self) && lynx_time_mono_ms() < quiet_until;)
        if (zpoller_wait(poller, WATCH_POLL_MS)) {
            zmsg_t *msg = zmsg_recv(subscriber);
            if (msg)
                s_on_message(&self, msg);
            zmsg_destroy(&msg);
            quiet_until = lynx_time_mono_ms() + WATCH_SETTLE_MS;
        }
    if (status == CLI_EXIT_OK && s_done(&self))
        status = s_poll(&self); //  final counts
    if (!self.raw && status == CLI_EXIT_OK)
        s_maybe_draw(&self, true);
    printf("%s %s %s\n", self.job_id ? "job" : "batch", self.job_id ? self.job_id : self.batch_id,
           self.state);
    if (status == CLI_EXIT_OK && s_done(&self))
        status = self.job_id
                     ? (strcmp(self.state, "Completed") == 0 ? CLI_EXIT_OK : CLI_EXIT_JOBS_FAILED)
                     : cli_batch_exit(self.state);
    zpoller_destroy(&poller);
    zsock_destroy(&subscriber);
    lynx_value_destroy(&self.running);
    free(discovered);
    return status;
}

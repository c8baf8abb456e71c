//  lynx watch: a batch's live telemetry and job events from the broker's PUB socket. One line
//  per frame (or per event); stops when the batch has ended or after --duration.
#include <czmq.h>

#include "cli_commands.h"
#include "lynx_msg.h"
#include "lynx_time.h"

#define WATCH_POLL_MS 200
#define WATCH_STATUS_EVERY_MS 1000

static const char s_usage[] =
    "usage: lynx watch BATCH_ID [--endpoint EP] [--variables a,b] [--duration SECS]\n\n"
    "Print a batch's telemetry frames and job events as they happen, from the broker's\n"
    "telemetry PUB socket (--endpoint, environment LYNX_TELEMETRY_ENDPOINT, or asked from the\n"
    "gateway's /healthz). Stops when the batch has ended (exit 0 if Completed, 1 otherwise)\n"
    "or after --duration seconds (exit 0).\n";

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

static void s_print_frame(const lynx_value_t *body, const char *variables)
{
    printf("frame job=%.13s seq=%" PRId64 " t_ns=%" PRId64,
           lynx_value_get_string(body, "job_id", "?"), lynx_value_get_int(body, "seq", -1),
           lynx_value_get_int(body, "timestamp_ns", 0));
    const lynx_value_t *values = lynx_value_get(body, "values");
    for (size_t i = 0; i < lynx_value_size(values); i++) {
        const char *name = lynx_value_key_at(values, i);
        if (!s_wanted(variables, name))
            continue;
        printf(" %s=", name);
        cli_print_scalar(stdout, lynx_value_at(values, i), 6);
    }
    printf("\n");
}

static void s_print_event(const lynx_value_t *event)
{
    const char *job = lynx_value_get_string(event, "job_id", NULL);
    printf("event %s%.13s status=%s",
           job ? "job=" : "batch=", job ? job : lynx_value_get_string(event, "batch_id", "?"),
           lynx_value_get_string(event, "status", "?"));
    const char *message = lynx_value_get_string(event, "error_message", NULL);
    if (message)
        printf(" error=\"%s\"", message);
    printf("\n");
}

//  The batch's status now, or NULL (message printed, *status_p set) when it cannot be read.
static char *s_batch_status(cli_ctx_t *ctx, const char *batch_id, int *status_p)
{
    char *path = cli_path(ctx, "/batches/%s", batch_id);
    cli_http_reply_t reply = {0};
    *status_p = path ? cli_call(ctx, "GET", path, NULL, &reply) : CLI_EXIT_JOBS_FAILED;
    free(path);
    if (*status_p != CLI_EXIT_OK)
        return NULL;
    char *status =
        strdup(lynx_value_get_string(lynx_value_get(reply.json, "batch"), "status", "?"));
    cli_http_reply_clear(&reply);
    return status;
}

int cli_cmd_watch(cli_ctx_t *ctx, int argc, char **argv)
{
    const char *endpoint = getenv("LYNX_TELEMETRY_ENDPOINT"), *variables = NULL, *duration = NULL;
    const cli_flag_t flags[] = {{"--endpoint", &endpoint, NULL},
                                {"--variables", &variables, NULL},
                                {"--duration", &duration, NULL},
                                {NULL, NULL, NULL}};
    const char *positional[1];
    size_t count = 0;
    int rc = cli_args_parse(argc, argv, flags, positional, 1, &count);
    if (rc != 0 || count != 1)
        return cli_usage(s_usage, rc == 1);
    long duration_secs = 0;
    if (duration && cli_parse_long("watch", "--duration", duration, 1, 86400, &duration_secs))
        return CLI_EXIT_USAGE;
    const char *batch_id = positional[0];
    int status = CLI_EXIT_OK;
    char *state = s_batch_status(ctx, batch_id, &status); //  also checks the batch exists
    if (!state)
        return status;
    char *discovered = endpoint && *endpoint ? NULL : s_discover_endpoint(ctx, &status);
    if (!(endpoint && *endpoint) && !discovered) {
        free(state);
        return status;
    }
    char topics[2][128];
    snprintf(topics[0], sizeof topics[0], "telemetry.%s", batch_id);
    snprintf(topics[1], sizeof topics[1], "event.%s", batch_id);
    zsock_t *subscriber = zsock_new(ZMQ_SUB);
    zsock_set_subscribe(subscriber, topics[0]);
    zsock_set_subscribe(subscriber, topics[1]);
    const char *target = discovered ? discovered : endpoint;
    if (zsock_connect(subscriber, "%s", target) < 0) {
        fprintf(stderr, "lynx watch: connect %s: %s\n", target, zmq_strerror(zmq_errno()));
        zsock_destroy(&subscriber);
        free(discovered);
        free(state);
        return CLI_EXIT_USAGE;
    }
    printf("watching batch %s on %s (status %s)\n", batch_id, target, state);
    fflush(stdout);
    int64_t stop_at = duration_secs ? lynx_time_mono_ms() + duration_secs * 1000 : 0;
    int64_t next_status = 0;
    zpoller_t *poller = zpoller_new(subscriber, NULL);
    while (!zsys_interrupted && !cli_batch_terminal(state) &&
           (!stop_at || lynx_time_mono_ms() < stop_at)) {
        if (zpoller_wait(poller, WATCH_POLL_MS)) {
            zmsg_t *msg = zmsg_recv(subscriber);
            zframe_t *topic = msg ? zmsg_pop(msg) : NULL;
            zframe_t *payload = msg ? zmsg_pop(msg) : NULL;
            bool is_event =
                topic && zframe_size(topic) >= 6 && memcmp(zframe_data(topic), "event.", 6) == 0;
            lynx_err_t err;
            if (payload && is_event) {
                lynx_value_t *event =
                    lynx_msgpack_unpack(zframe_data(payload), zframe_size(payload), &err);
                if (event)
                    s_print_event(event);
                lynx_value_destroy(&event);
            } else if (payload) {
                lynx_msg_t *frame =
                    lynx_msg_decode(zframe_data(payload), zframe_size(payload), &err);
                if (frame && lynx_msg_id(frame) == LYNX_MSG_TELEMETRY)
                    s_print_frame(lynx_msg_body(frame), variables);
                lynx_msg_destroy(&frame);
            }
            zframe_destroy(&topic);
            zframe_destroy(&payload);
            zmsg_destroy(&msg);
            fflush(stdout);
        }
        //  Events tell us when the batch ends, but one may have gone before we subscribed.
        if (lynx_time_mono_ms() >= next_status) {
            next_status = lynx_time_mono_ms() + WATCH_STATUS_EVERY_MS;
            char *now = s_batch_status(ctx, batch_id, &status);
            if (!now)
                break;
            free(state);
            state = now;
        }
    }
    printf("batch %s %s\n", batch_id, state);
    if (status == CLI_EXIT_OK && cli_batch_terminal(state))
        status = cli_batch_exit(state);
    zpoller_destroy(&poller);
    zsock_destroy(&subscriber);
    free(discovered);
    free(state);
    return status;
}

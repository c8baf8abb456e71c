//  runner_telemetry_bench: TELEMETRY frames per second one job's telemetry intake
//  (worker/runner_telemetry) takes in with its watchdog on. A pusher thread in this process
//  plays the scenario's client on a PUSH socket connected to the intake's PULL over loopback
//  TCP: like the real client it never waits (ZMQ_SNDHWM 10,000, ZMQ_DONTWAIT) and counts the
//  frames it drops, whose seq is used anyway. Each frame holds 8 variables; 3 rules (a simple
//  comparison, an all group and an any group, 5 comparisons) read 5 of them and never fire, so
//  every frame is evaluated against them (check_frequency_hz 1000) to the end. Frames are
//  forwarded to a PUB whose SUB another thread reads, decimated to 10 Hz of scenario time (one
//  frame a millisecond: 1 in 100 forwarded) and filtered to 4 variables, or, with
//  --forward-all, every frame with every variable.
//
//      runner_telemetry_bench [--frames N] [--rate R] [--forward-all] [--blocking]
//                             [--timeout-secs T]
//
//  --rate paces the pusher at R frames a second (default: as fast as it can, which mostly
//  measures drops); --blocking makes it wait instead of dropping: the intake's sustained rate
//  with no loss. Frames are encoded once by the codec and patched (seq, timestamp, values) before
//  each send, so the pusher costs little. Prints key=value lines on stdout: frames_per_sec from the
//  first frame taken to the last, and the intake's counters, which must agree with the
//  pusher's (received + dropped_by_client = frames); exits 1 when they do not, 2 on bad flags.
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "lynx_json.h"
#include "lynx_msg.h"
#include "runner_telemetry.h"

#define S_VARIABLES 8
#define S_CLIENT_SNDHWM 10000

static const char s_rules[] =
    "{\"check_frequency_hz\": 1000, \"conditions\": ["
    "{\"name\": \"too_low\", \"variable\": \"v0\", \"operator\": \"lt\", \"threshold\": -1e9,"
    " \"units\": \"km\"},"
    "{\"name\": \"both\", \"all\": [{\"variable\": \"v1\", \"condition\": \"> 1e9\"},"
    " {\"variable\": \"v2\", \"condition\": \"< -1e9\"}]},"
    "{\"name\": \"either\", \"any\": [{\"variable\": \"v3\", \"condition\": \"> 1e9\"},"
    " {\"variable\": \"v4\", \"condition\": \"== -1\"}]}]}";
static const char s_settings[] =
    "{\"sampling_rate_hz\": 10, \"variables\": [\"v0\", \"v1\", \"v5\", \"v6\"]}";

typedef struct {
    int64_t frames;
    double rate; //  frames a second offered, 0: unpaced
    bool forward_all;
    bool blocking;
    int timeout_secs;
} s_options_t;

//  A frame encoded once, with the offsets of the big-endian fields patched per send.
typedef struct {
    unsigned char *data;
    size_t size;
    size_t seq_at, timestamp_at, value_at[S_VARIABLES];
} s_template_t;

typedef struct {
    const s_options_t *options;
    const s_template_t *frame;
    char endpoint[64];
    int64_t dropped; //  written by the pusher before it signals the end
} s_pusher_args_t;

static int64_t s_now_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

static void s_put_be64(unsigned char *at, uint64_t value)
{
    for (int i = 7; i >= 0; i--, value >>= 8)
        at[i] = (unsigned char)value;
}

static uint64_t s_double_bits(double value)
{
    uint64_t bits;
    memcpy(&bits, &value, sizeof bits);
    return bits;
}

//  Where the 8 big-endian bytes of value sit in the frame (after their msgpack marker).
static size_t s_find(const s_template_t *frame, uint64_t value)
{
    unsigned char needle[8];
    s_put_be64(needle, value);
    unsigned char *at = memmem(frame->data, frame->size, needle, sizeof needle);
    if (!at) {
        fprintf(stderr, "runner_telemetry_bench: template field not found\n");
        exit(1);
    }
    return (size_t)(at - frame->data);
}

//  seq and timestamp_ns take 9 bytes (uint64) whatever they hold, values are float 64: the
//  sentinels below make the codec write exactly those forms, and make them easy to find.
static void s_build_template(s_template_t *frame)
{
    const uint64_t seq = 0x0102030405060708ULL, timestamp = 0x1112131415161718ULL;
    lynx_msg_t *msg = lynx_msg_new(LYNX_MSG_TELEMETRY);
    lynx_value_set_int(lynx_msg_body(msg), "seq", (int64_t)seq);
    lynx_value_set_int(lynx_msg_body(msg), "timestamp_ns", (int64_t)timestamp);
    lynx_value_t *values = lynx_value_map();
    char name[8];
    for (int i = 0; i < S_VARIABLES; i++) {
        snprintf(name, sizeof name, "v%d", i);
        lynx_value_set_double(values, name, 1234.5 + i * 0.25);
    }
    lynx_value_set(lynx_msg_body(msg), "values", &values);
    lynx_err_t err;
    zframe_t *encoded = lynx_msg_encode(msg, &err);
    lynx_msg_destroy(&msg);
    frame->size = zframe_size(encoded);
    frame->data = malloc(frame->size);
    memcpy(frame->data, zframe_data(encoded), frame->size);
    zframe_destroy(&encoded);
    frame->seq_at = s_find(frame, seq);
    frame->timestamp_at = s_find(frame, timestamp);
    for (int i = 0; i < S_VARIABLES; i++)
        frame->value_at[i] = s_find(frame, s_double_bits(1234.5 + i * 0.25));
}

//  The scenario's side: push every frame, never waiting unless --blocking; the last one always
//  waits, so the intake sees the final seq and can tell the run is over.
static void s_pusher(zsock_t *pipe, void *arg)
{
    s_pusher_args_t *args = (s_pusher_args_t *)arg;
    const s_options_t *options = args->options;
    zsock_t *push = zsock_new(ZMQ_PUSH);
    zsock_set_sndhwm(push, S_CLIENT_SNDHWM);
    zsock_set_linger(push, 5000);
    zsock_connect(push, "%s", args->endpoint);
    zsock_signal(pipe, 0);
    unsigned char *data = malloc(args->frame->size);
    memcpy(data, args->frame->data, args->frame->size);
    int64_t dropped = 0, start_ns = s_now_ns();
    for (int64_t seq = 0; seq < options->frames; seq++) {
        if (options->rate > 0 && seq % 16 == 0)
            while ((double)(s_now_ns() - start_ns) * options->rate < (double)seq * 1e9)
                ; //  pacing: spin until this frame is due
        s_put_be64(data + args->frame->seq_at, (uint64_t)seq);
        s_put_be64(data + args->frame->timestamp_at, (uint64_t)seq * 1000000); //  1 ms apart
        for (int i = 0; i < S_VARIABLES; i++)
            s_put_be64(data + args->frame->value_at[i], s_double_bits(1000.0 - (seq % 1000) + i));
        bool last = seq == options->frames - 1;
        int flags = options->blocking || last ? 0 : ZMQ_DONTWAIT;
        if (zmq_send(zsock_resolve(push), data, args->frame->size, flags) < 0)
            dropped++;
    }
    args->dropped = dropped;
    free(data);
    zsock_destroy(&push);
    zsock_signal(pipe, 0);
    char *command = zstr_recv(pipe); //  $TERM
    zstr_free(&command);
}

//  The broker's side of the forwarded frames: count them until asked for the COUNT.
static void s_subscriber(zsock_t *pipe, void *arg)
{
    zsock_t *sub = (zsock_t *)arg;
    zsock_signal(pipe, 0);
    int64_t count = 0;
    zpoller_t *poller = zpoller_new(pipe, sub, NULL);
    while (zpoller_wait(poller, -1) == sub) {
        zframe_t *frame = zframe_recv(sub);
        zframe_destroy(&frame);
        count++;
    }
    zpoller_destroy(&poller);
    char *command = zstr_recv(pipe); //  COUNT
    zstr_free(&command);
    zstr_sendf(pipe, "%" PRId64, count);
    command = zstr_recv(pipe); //  $TERM
    zstr_free(&command);
}

static int s_parse_options(int argc, char **argv, s_options_t *options)
{
    *options = (s_options_t){.frames = 2000000, .timeout_secs = 300};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--frames") == 0 && i + 1 < argc)
            options->frames = strtoll(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--rate") == 0 && i + 1 < argc)
            options->rate = strtod(argv[++i], NULL);
        else if (strcmp(argv[i], "--timeout-secs") == 0 && i + 1 < argc)
            options->timeout_secs = atoi(argv[++i]);
        else if (strcmp(argv[i], "--forward-all") == 0)
            options->forward_all = true;
        else if (strcmp(argv[i], "--blocking") == 0)
            options->blocking = true;
        else {
            fprintf(stderr, "usage: runner_telemetry_bench [--frames N] [--rate R] [--forward-all] "
                            "[--blocking] [--timeout-secs T]\n");
            return -1;
        }
    }
    return options->frames > 0 && options->timeout_secs > 0 ? 0 : -1;
}

static lynx_value_t *s_parse(const char *json)
{
    lynx_err_t err;
    return lynx_json_parse(json, strlen(json), &err);
}

int main(int argc, char **argv)
{
    s_options_t options;
    if (s_parse_options(argc, argv, &options))
        return 2;
    zsys_init();
    zsys_set_logstream(stderr);

    lynx_value_t *rules = s_parse(s_rules);
    lynx_value_t *settings = options.forward_all ? NULL : s_parse(s_settings);
    lynx_err_t err;
    runner_telemetry_t *telemetry =
        runner_telemetry_new("bench-job", "bench-batch", rules, settings, zclock_mono(), &err);
    lynx_value_destroy(&rules);
    lynx_value_destroy(&settings);
    if (!telemetry) {
        fprintf(stderr, "runner_telemetry_bench: %s\n", err.message);
        return 1;
    }
    //  The runner's PUB: never waits, refuses when full.
    zsock_t *sub = zsock_new_sub("@tcp://127.0.0.1:*", "");
    zsock_t *pub = zsock_new(ZMQ_PUB);
    int nodrop = 1;
    zsock_set_sndhwm(pub, 1000);
    zsock_set_sndtimeo(pub, 0);
    zmq_setsockopt(zsock_resolve(pub), ZMQ_XPUB_NODROP, &nodrop, sizeof nodrop);
    char *sub_endpoint = zsock_last_endpoint(sub);
    zsock_connect(pub, "%s", sub_endpoint);
    zstr_free(&sub_endpoint);
    zactor_t *subscriber = zactor_new(s_subscriber, sub);
    zclock_sleep(200); //  the SUB's subscription reaches the PUB (a bench, not a test)

    s_template_t frame;
    s_build_template(&frame);
    s_pusher_args_t args = {.options = &options, .frame = &frame};
    snprintf(args.endpoint, sizeof args.endpoint, "%s", runner_telemetry_endpoint(telemetry));
    zactor_t *pusher = zactor_new(s_pusher, &args);

    zpoller_t *poller = zpoller_new(runner_telemetry_socket(telemetry), pusher, NULL);
    int64_t deadline_ns = s_now_ns() + (int64_t)options.timeout_secs * 1000000000;
    int64_t first_ns = 0, last_ns = 0, seen = 0, drains = 0;
    bool pusher_done = false;
    struct rusage before, after;
    getrusage(RUSAGE_SELF, &before);
    while (seen < options.frames && s_now_ns() < deadline_ns) {
        void *ready = zpoller_wait(poller, 1000);
        if (ready == pusher && !pusher_done) {
            zsock_wait(pusher);
            pusher_done = true;
            zpoller_remove(poller, pusher);
        }
        int64_t now_ms = zclock_mono();
        int taken = runner_telemetry_drain(telemetry, zsock_resolve(pub), now_ms);
        runner_telemetry_check(telemetry, now_ms);
        if (taken > 0) {
            drains++;
            last_ns = s_now_ns();
            if (!first_ns)
                first_ns = last_ns;
            lynx_value_t *summary = runner_telemetry_summary(telemetry);
            seen = lynx_value_get_int(summary, "frames_received", 0) +
                   lynx_value_get_int(summary, "frames_dropped_by_client", 0);
            lynx_value_destroy(&summary);
        }
    }
    getrusage(RUSAGE_SELF, &after);
    if (!pusher_done)
        zsock_wait(pusher);
    zactor_destroy(&pusher);
    zclock_sleep(200); //  forwarded frames still in flight reach the subscriber
    zstr_send(subscriber, "COUNT");
    char *forwarded_seen = zstr_recv(subscriber);
    zactor_destroy(&subscriber);

    lynx_value_t *summary = runner_telemetry_summary(telemetry);
    int64_t received = lynx_value_get_int(summary, "frames_received", 0);
    int64_t client_dropped = lynx_value_get_int(summary, "frames_dropped_by_client", 0);
    double secs = (double)(last_ns - first_ns) / 1e9;
    printf("frames=%" PRId64 "\n", options.frames);
    printf("mode=%s%s\n", options.blocking ? "blocking" : "dropping",
           options.forward_all ? ",forward_all" : ",decimated_filtered");
    printf("offered_rate=%.0f\n", options.rate);
    printf("variables_per_frame=%d\nrules=3\ncomparisons=5\ncheck_frequency_hz=1000\n",
           S_VARIABLES);
    printf("frame_bytes=%zu\n", frame.size);
    printf("secs=%.3f\n", secs);
    printf("frames_per_sec=%.0f\n", secs > 0 ? (double)received / secs : 0.0);
    printf("frames_received=%" PRId64 "\n", received);
    printf("frames_dropped_by_client=%" PRId64 "\n", client_dropped);
    printf("pusher_dropped=%" PRId64 "\n", args.dropped);
    printf("frames_invalid=%" PRId64 "\n", lynx_value_get_int(summary, "frames_invalid", 0));
    printf("frames_forwarded=%" PRId64 "\n", lynx_value_get_int(summary, "frames_forwarded", 0));
    printf("frames_forward_dropped=%" PRId64 "\n",
           lynx_value_get_int(summary, "frames_forward_dropped", 0));
    printf("subscriber_received=%s\n", forwarded_seen ? forwarded_seen : "?");
    printf("drains=%" PRId64 "\n", drains);
    printf("cpu_user_secs=%.2f\ncpu_sys_secs=%.2f\n",
           (double)(after.ru_utime.tv_sec - before.ru_utime.tv_sec) +
               (double)(after.ru_utime.tv_usec - before.ru_utime.tv_usec) / 1e6,
           (double)(after.ru_stime.tv_sec - before.ru_stime.tv_sec) +
               (double)(after.ru_stime.tv_usec - before.ru_stime.tv_usec) / 1e6);
    bool consistent = received + client_dropped == options.frames &&
                      client_dropped == args.dropped &&
                      lynx_value_get_int(summary, "frames_invalid", -1) == 0;
    printf("verified=%s\n", consistent ? "true" : "false");
    zstr_free(&forwarded_seen);
    lynx_value_destroy(&summary);
    zpoller_destroy(&poller);
    runner_telemetry_destroy(&telemetry);
    zsock_destroy(&pub);
    zsock_destroy(&sub);
    free(frame.data);
    return consistent ? 0 : 1;
}

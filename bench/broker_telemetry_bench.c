//  broker_telemetry_bench: frames per second the broker's telemetry module stores and
//  republishes.
//
//  The module runs in this thread as the broker runs it: decoded TELEMETRY bodies (8 values:
//  6 doubles, an integer, a boolean) for J jobs of one batch go through
//  broker_telemetry_ingest, which buffers them for their series files and publishes them on
//  its PUB socket (tcp://127.0.0.1:*). One subscriber (a thread, SUB to "telemetry.") counts
//  what it receives and the frames it lost (gaps in each job's seq). The clock runs from the
//  first ingest to the last job's job_ended (every frame on disk). Run once per compression.
//
//      build-release/bench/broker_telemetry_bench [--frames 1000000] [--jobs 8]
//          [--compression both|none|gzip] [--subscribers 1|0] [--data-dir DIR] [--keep]
//          [--curve]
#include <czmq.h>
#include <ftw.h>
#include <math.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "broker_keys.h"
#include "broker_telemetry.h"
#include "lynx_msg.h"
#include "lynx_time.h"

#define S_BATCH "7d0f5a3e-2b1c-4d9e-8f7a-6b5c4d3e2f10"
#define S_JOBS_MAX 1024
#define S_SYNC_MS 5000
#define S_DRAIN_MS 30000

typedef struct {
    int64_t frames;
    int jobs;
    const char *compression; //  both, none or gzip
    int subscribers;
    const char *data_dir;
    bool keep;
    bool curve; //  --curve: the PUB is a CURVE server, the subscriber an enrolled client
} s_options_t;

static int s_parse_options(int argc, char **argv, s_options_t *options)
{
    *options = (s_options_t){.frames = 1000000, .jobs = 8, .compression = "both", .subscribers = 1};
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
        if (!value) {
            fprintf(stderr, "broker_telemetry_bench: %s: missing value\n", flag);
            return -1;
        }
        i++;
        if (streq(flag, "--frames"))
            options->frames = atoll(value);
        else if (streq(flag, "--jobs"))
            options->jobs = atoi(value);
        else if (streq(flag, "--compression"))
            options->compression = value;
        else if (streq(flag, "--subscribers"))
            options->subscribers = atoi(value);
        else if (streq(flag, "--data-dir"))
            options->data_dir = value;
        else {
            fprintf(stderr, "broker_telemetry_bench: unknown flag %s\n", flag);
            return -1;
        }
    }
    if (options->frames < 1 || options->jobs < 1 || options->jobs > S_JOBS_MAX ||
        options->subscribers < 0 || options->subscribers > 1 ||
        !(streq(options->compression, "both") || streq(options->compression, "none") ||
          streq(options->compression, "gzip"))) {
        fprintf(stderr,
                "broker_telemetry_bench: --frames >= 1, --jobs 1..%d, --subscribers 0|1, "
                "--compression both|none|gzip\n",
                S_JOBS_MAX);
        return -1;
    }
    return 0;
}

//  ---------------------------------------------------------------------------------------
//  The subscriber: counts frames and seq gaps per job until the "event.<batch>" sentinel,
//  then reports "<received> <lost>" on its pipe. It signals once its subscription works.

typedef struct {
    char endpoint[256];
    int jobs;
    zcert_t *cert;          //  with --curve: the subscriber's enrolled keypair
    const char *server_key; //  and the broker's public key
} s_subscriber_args_t;

static void s_subscriber(zsock_t *pipe, void *arg)
{
    s_subscriber_args_t *args = (s_subscriber_args_t *)arg;
    zsock_t *sub = zsock_new(ZMQ_SUB);
    zsock_set_rcvhwm(sub, 100000);
    zsock_set_subscribe(sub, "telemetry.");
    zsock_set_subscribe(sub, "event.");
    if (args->cert) {
        zcert_apply(args->cert, sub);
        zsock_set_curve_serverkey(sub, args->server_key);
    }
    zsock_connect(sub, "%s", args->endpoint);
    zsock_signal(pipe, 0);
    int64_t *last_seq = (int64_t *)malloc(S_JOBS_MAX * sizeof *last_seq);
    for (int i = 0; i < S_JOBS_MAX; i++)
        last_seq[i] = -1;
    uint64_t received = 0, lost = 0;
    bool joined = false;
    zpoller_t *poller = zpoller_new(pipe, sub, NULL);
    for (;;) {
        zsock_t *which = (zsock_t *)zpoller_wait(poller, -1);
        if (which == pipe || !which)
            break; //  $TERM
        zmsg_t *msg = zmsg_recv(sub);
        char *topic = msg ? zmsg_popstr(msg) : NULL;
        if (topic && strncmp(topic, "event.", 6) == 0) {
            if (!joined)
                zstr_send(pipe, "JOINED");
            joined = true;
            if (streq(topic, "event." S_BATCH))
                zstr_sendf(pipe, "%" PRIu64 " %" PRIu64, received, lost);
        } else if (topic) {
            //  telemetry.<batch>.job-<n>: gaps in seq are frames this subscriber lost.
            const char *dash = strrchr(topic, '-');
            int job = dash ? atoi(dash + 1) : 0;
            zframe_t *payload = zmsg_pop(msg);
            lynx_msg_t *frame = lynx_msg_decode(zframe_data(payload), zframe_size(payload), NULL);
            int64_t seq = lynx_value_get_int(lynx_msg_body(frame), "seq", 0);
            if (job >= 0 && job < S_JOBS_MAX) {
                lost += (uint64_t)(seq - last_seq[job] - 1);
                last_seq[job] = seq;
            }
            lynx_msg_destroy(&frame);
            zframe_destroy(&payload);
            received++;
        }
        zstr_free(&topic);
        zmsg_destroy(&msg);
    }
    zpoller_destroy(&poller);
    free(last_seq);
    zsock_destroy(&sub);
}

//  ---------------------------------------------------------------------------------------

static int s_remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static uint64_t s_disk_bytes; //  nftw takes no argument
static int s_add_size(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)path, (void)ftw;
    if (flag == FTW_F)
        s_disk_bytes += (uint64_t)st->st_size;
    return 0;
}

static int64_t s_now_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

static int s_compare_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

//  A job's frame, reused: seq, timestamp and values change in place (as cheap as we can
//  make the caller's part, so the figure is the module's).
static lynx_value_t *s_frame(const char *job_id)
{
    lynx_value_t *body = lynx_value_map();
    lynx_value_set_int(body, "seq", 0);
    lynx_value_set_int(body, "timestamp_ns", 0);
    lynx_value_t *values = lynx_value_map();
    const char *names[] = {"orbit.radius_km",          "orbit.speed_m_s",
                           "orbit.semi_major_axis_km", "orbit.eccentricity",
                           "orbit.inclination_deg",    "orbit.true_anomaly_deg"};
    for (int i = 0; i < 6; i++)
        lynx_value_set_double(values, names[i], 0.0);
    lynx_value_set_int(values, "step", 0);
    lynx_value_set_bool(values, "eclipse", false);
    lynx_value_set(body, "values", &values);
    lynx_value_set_string(body, "job_id", job_id);
    lynx_value_set_string(body, "batch_id", S_BATCH);
    return body;
}

static void s_step(lynx_value_t *body, int64_t seq)
{
    lynx_value_set_int(body, "seq", seq);
    lynx_value_set_int(body, "timestamp_ns", INT64_C(1750000000000000000) + seq * 100000000);
    lynx_value_t *values = lynx_value_get(body, "values");
    double t = (double)seq * 0.1;
    lynx_value_set_double(values, "orbit.radius_km", 6983.4 + 12.5 * sin(t));
    lynx_value_set_double(values, "orbit.speed_m_s", 7546.1 + 3.1 * cos(t));
    lynx_value_set_double(values, "orbit.true_anomaly_deg", fmod(t * 57.2957795, 360.0));
    lynx_value_set_int(values, "step", seq);
    lynx_value_set_bool(values, "eclipse", (seq / 300) % 2 == 1);
}

//  One run with one compression setting. Returns 0 when every frame was stored.
static int s_run(const s_options_t *options, const char *compression)
{
    char dir[256];
    if (options->data_dir)
        snprintf(dir, sizeof dir, "%s/%s", options->data_dir, compression);
    else {
        snprintf(dir, sizeof dir, "/tmp/broker-telemetry-bench-XXXXXX");
        if (!mkdtemp(dir)) {
            perror("broker_telemetry_bench: mkdtemp");
            return -1;
        }
    }
    lynx_err_t err;
    lynx_err_clear(&err);
    char keys_dir[300];
    snprintf(keys_dir, sizeof keys_dir, "%s/keys", dir);
    broker_keys_t *keys = options->curve ? broker_keys_new(keys_dir, &err) : NULL;
    if (options->curve && !keys) {
        fprintf(stderr, "broker_telemetry_bench: %s\n", err.message);
        return -1;
    }
    zcert_t *subscriber_cert = options->curve ? zcert_new() : NULL;
    if (subscriber_cert) { //  enrolled as an admin would: its public file in subscribers/
        char path[400];
        snprintf(path, sizeof path, "%s/subscribers/bench.key", keys_dir);
        zcert_save_public(subscriber_cert, path);
    }
    broker_telemetry_t *telemetry = broker_telemetry_new(dir, "tcp://127.0.0.1:*", keys, &err);
    if (!telemetry) {
        fprintf(stderr, "broker_telemetry_bench: %s\n", err.message);
        return -1;
    }
    lynx_value_t *config = lynx_value_map();
    lynx_value_t *storage = lynx_value_map();
    lynx_value_set_string(storage, "s3_prefix", "bench/");
    lynx_value_set_string(storage, "compression", compression);
    lynx_value_set(config, "storage", &storage);
    broker_telemetry_configure_batch(telemetry, S_BATCH, config, NULL);
    lynx_value_destroy(&config);

    s_subscriber_args_t args = {.jobs = options->jobs,
                                .cert = subscriber_cert,
                                .server_key = keys ? broker_keys_public(keys) : NULL};
    snprintf(args.endpoint, sizeof args.endpoint, "%s", broker_telemetry_endpoint(telemetry));
    zactor_t *subscriber = options->subscribers ? zactor_new(s_subscriber, &args) : NULL;
    if (subscriber) {
        //  Publish probes until the subscription has reached the PUB socket.
        zpoller_t *poller = zpoller_new(subscriber, NULL);
        int64_t deadline_ms = lynx_time_mono_ms() + S_SYNC_MS;
        while (!zpoller_wait(poller, 5) && lynx_time_mono_ms() < deadline_ms) {
            if (keys) //  the broker's loop answers handshakes; here, this loop does
                broker_keys_handle_zap(keys);
            broker_republish_batch_event(broker_telemetry_republish(telemetry), "probe", "probe",
                                         NULL);
        }
        zpoller_destroy(&poller);
        char *joined = zstr_recv_nowait(subscriber);
        if (!joined) {
            fprintf(stderr, "broker_telemetry_bench: subscriber did not join\n");
            return -1;
        }
        zstr_free(&joined);
    }

    lynx_value_t *frames[S_JOBS_MAX];
    char job_ids[S_JOBS_MAX][32];
    for (int j = 0; j < options->jobs; j++) {
        snprintf(job_ids[j], sizeof job_ids[j], "job-%d", j);
        frames[j] = s_frame(job_ids[j]);
    }
    uint32_t *latency_ns = (uint32_t *)malloc((size_t)options->frames * sizeof *latency_ns);
    struct rusage before, after;
    getrusage(RUSAGE_SELF, &before);
    int64_t start_ns = s_now_ns();
    int failed = 0;
    for (int64_t i = 0; i < options->frames; i++) {
        int j = (int)(i % options->jobs);
        s_step(frames[j], i / options->jobs);
        int64_t call_ns = s_now_ns();
        failed |= broker_telemetry_ingest(telemetry, frames[j], NULL);
        int64_t spent_ns = s_now_ns() - call_ns;
        latency_ns[i] = spent_ns > UINT32_MAX ? UINT32_MAX : (uint32_t)spent_ns;
    }
    int64_t ingest_ns = s_now_ns() - start_ns;
    for (int j = 0; j < options->jobs; j++)
        failed |= broker_telemetry_job_ended(telemetry, job_ids[j]);
    int64_t total_ns = s_now_ns() - start_ns;
    getrusage(RUSAGE_SELF, &after);

    //  The subscriber reports when the sentinel event arrives, after every frame it got.
    uint64_t received = 0, lost = 0;
    if (subscriber) {
        zpoller_t *poller = zpoller_new(subscriber, NULL);
        int64_t deadline_ms = lynx_time_mono_ms() + S_DRAIN_MS;
        char *report = NULL;
        while (!report && lynx_time_mono_ms() < deadline_ms) {
            broker_republish_batch_event(broker_telemetry_republish(telemetry), S_BATCH,
                                         "Completed", NULL);
            if (zpoller_wait(poller, 100))
                report = zstr_recv(subscriber);
        }
        zpoller_destroy(&poller);
        if (report)
            sscanf(report, "%" SCNu64 " %" SCNu64, &received, &lost);
        zstr_free(&report);
        zactor_destroy(&subscriber);
    }
    broker_telemetry_stats_t stats;
    broker_telemetry_stats(telemetry, &stats);
    broker_telemetry_destroy(&telemetry);
    zcert_destroy(&subscriber_cert);
    broker_keys_destroy(&keys);
    s_disk_bytes = 0;
    nftw(dir, s_add_size, 16, FTW_PHYS);

    qsort(latency_ns, (size_t)options->frames, sizeof *latency_ns, s_compare_u32);
    double secs = (double)total_ns / 1e9;
    printf("curve=%s\n", options->curve ? "on" : "off");
    printf("compression=%s\n", compression);
    printf("frames=%" PRId64 "\njobs=%d\nvariables_per_frame=8\n", options->frames, options->jobs);
    printf("ingest_secs=%.3f\n", (double)ingest_ns / 1e9);
    printf("total_secs=%.3f\n", secs);
    printf("frames_per_sec=%.0f\n", (double)options->frames / secs);
    printf("ingest_p50_us=%.2f\n", latency_ns[options->frames / 2] / 1000.0);
    printf("ingest_p99_us=%.2f\n", latency_ns[options->frames * 99 / 100] / 1000.0);
    printf("ingest_max_us=%.0f\n", latency_ns[options->frames - 1] / 1000.0);
    printf("cpu_secs=%.2f\n", (double)(after.ru_utime.tv_sec - before.ru_utime.tv_sec) +
                                  (double)(after.ru_utime.tv_usec - before.ru_utime.tv_usec) / 1e6 +
                                  (double)(after.ru_stime.tv_sec - before.ru_stime.tv_sec) +
                                  (double)(after.ru_stime.tv_usec - before.ru_stime.tv_usec) / 1e6);
    printf("frames_stored=%" PRIu64 "\nframes_unwritten=%" PRIu64 "\n", stats.frames_stored,
           stats.frames_unwritten);
    printf("frames_published=%" PRIu64 "\nframes_dropped=%" PRIu64 "\n", stats.frames_published,
           stats.frames_dropped);
    printf("flushes=%" PRIu64 "\n", stats.flushes);
    if (options->subscribers)
        printf("subscriber_received=%" PRIu64 "\nsubscriber_lost=%" PRIu64 "\n", received, lost);
    printf("disk_bytes=%" PRIu64 "\nbytes_per_frame=%.1f\n", s_disk_bytes,
           (double)s_disk_bytes / (double)options->frames);
    printf("\n");
    fflush(stdout);

    for (int j = 0; j < options->jobs; j++)
        lynx_value_destroy(&frames[j]);
    free(latency_ns);
    if (options->keep)
        fprintf(stderr, "broker_telemetry_bench: data kept in %s\n", dir);
    else
        nftw(dir, s_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    bool ok = !failed && stats.frames_stored == (uint64_t)options->frames;
    if (!ok)
        fprintf(stderr, "broker_telemetry_bench: stored %" PRIu64 " of %" PRId64 " frames\n",
                stats.frames_stored, options->frames);
    return ok ? 0 : -1;
}

int main(int argc, char **argv)
{
    s_options_t options;
    if (s_parse_options(argc, argv, &options))
        return 2;
    zsys_init();
    zsys_set_logstream(stderr);
    int rc = 0;
    if (!streq(options.compression, "gzip"))
        rc |= s_run(&options, "none");
    if (!streq(options.compression, "none"))
        rc |= s_run(&options, "gzip");
    return rc ? 1 : 0;
}

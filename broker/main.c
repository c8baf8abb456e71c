//  lynx-broker: parse flags and environment, start the broker actor, print READY, wait for
//  SIGINT/SIGTERM.
#include "lynx_daemon.h"
#include "broker.h"
#include "broker_token_command.h"
#include "lynx_options.h"

extern char **environ;

static bool s_is_true(const char *value)
{
    return value &&
           (strcmp(value, "true") == 0 || strcmp(value, "1") == 0 || strcmp(value, "yes") == 0);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "token") == 0)
        return broker_token_command(argc - 1, argv + 1, environ);
    lynx_daemon_tune_memory();
    lynx_option_t options[] = {
        {"--data-dir", "LYNX_BROKER_DATA_DIR", "./lynx-data", "directory of the SQLite store", NULL,
         false},
        {"--runner-endpoint", "LYNX_BROKER_RUNNER_ENDPOINT", "tcp://*:5555",
         "ROUTER endpoint runners connect to (tcp://127.0.0.1:* picks a free port)", NULL, false},
        {"--api-endpoint", "LYNX_BROKER_API_ENDPOINT", "tcp://127.0.0.1:5556",
         "ROUTER endpoint the gateway and API clients connect to", NULL, false},
        {"--events-endpoint", "LYNX_BROKER_EVENTS_ENDPOINT", "",
         "SUB endpoint runners publish heartbeats to (default: the runner endpoint's host, any "
         "free port; runners learn it at registration)",
         NULL, false},
        {"--telemetry-endpoint", "LYNX_BROKER_TELEMETRY_ENDPOINT", "",
         "PUB endpoint scripts subscribe to for telemetry and job/batch events (default: the "
         "runner endpoint's host, any free port; printed in the READY line)",
         NULL, false},
        {"--heartbeat-interval-ms", "LYNX_BROKER_HEARTBEAT_INTERVAL_MS", "2000",
         "heartbeat interval assumed for runners that do not declare one", NULL, false},
        {"--heartbeat-misses", "LYNX_BROKER_HEARTBEAT_MISSES", "3",
         "silent heartbeat intervals before a runner is Offline and its jobs are retried", NULL,
         false},
        {"--timeout-grace-secs", "LYNX_BROKER_TIMEOUT_GRACE_SECS", "30",
         "a job without a result this long past its timeout ends Timeout (backstop for a "
         "runner that cannot enforce it)",
         NULL, false},
        {"--quarantine-after", "LYNX_BROKER_QUARANTINE_AFTER", "5",
         "quarantine a runner whose last N attempts failed while other runners completed jobs of "
         "the same batches (0: never)",
         NULL, false},
        {"--min-free-mb", "LYNX_BROKER_MIN_FREE_MB", "256",
         "below this much free space in the data dir the broker refuses writes (507 "
         "storage_full), serves reads, and resumes by itself at twice as much (0: never)",
         NULL, false},
        {"--insecure", "LYNX_BROKER_INSECURE", NULL,
         "plain sockets: no CURVE, no runner enrollment (trusted test benches only; logged "
         "loudly)",
         NULL, true},
        {"--artifact-retention-days", "LYNX_BROKER_ARTIFACT_RETENTION_DAYS", "0",
         "remove an ended batch's artifacts this many days after its last file was stored, "
         "checked hourly; never a running batch's (0: keep them)",
         NULL, false},
    };
    size_t count = sizeof options / sizeof options[0];
    lynx_err_t err;
    lynx_err_clear(&err);
    int rc = lynx_options_parse(options, count, argc, argv, environ, "lynx-broker",
                                "The Lynx broker: batches, jobs, runners and results.", &err);
    if (rc == 1)
        return 0;
    long interval_ms = 0, misses = 0;
    if (rc == 0)
        rc = lynx_options_int(&options[5], 100, 600000, &interval_ms, &err);
    if (rc == 0)
        rc = lynx_options_int(&options[6], 1, 100, &misses, &err);
    long grace_secs = 0;
    if (rc == 0)
        rc = lynx_options_int(&options[7], 10, 86400, &grace_secs,
                              &err); //  > runner's 5 s kill grace
    long quarantine_after = 0;
    if (rc == 0)
        rc = lynx_options_int(&options[8], 0, 1000, &quarantine_after, &err);
    long retention_days = 0;
    if (rc == 0)
        rc = lynx_options_int(&options[11], 0, 36500, &retention_days, &err);
    long min_free_mb = 0;
    if (rc == 0)
        rc = lynx_options_int(&options[9], 0, 1000000, &min_free_mb, &err);
    if (rc) {
        fprintf(stderr, "lynx-broker: %s\n", err.message);
        return 2;
    }
    zsys_init();
    zsys_set_logstream(stderr); //  stdout carries only machine-readable lines (READY)
    zsys_set_logident("lynx-broker");
    char runner_endpoint[256], api_endpoint[256], telemetry_endpoint[256] = "";
    char public_key[64] = "";
    broker_options_t broker_options = {
        .data_dir = options[0].value,
        .runner_endpoint = options[1].value,
        .api_endpoint = options[2].value,
        .events_endpoint = options[3].value,
        .telemetry_endpoint = options[4].value,
        .telemetry_endpoint_out = telemetry_endpoint,
        .heartbeat_interval_ms = (int)interval_ms,
        .heartbeat_misses = (int)misses,
        .timeout_grace_secs = (int)grace_secs,
        .quarantine_after = quarantine_after == 0 ? -1 : (int)quarantine_after,
        .artifact_retention_days = (int)retention_days,
        .min_free_mb = (int)min_free_mb,
        .curve = !s_is_true(options[10].value),
        .public_key_out = public_key,
    };
    zactor_t *broker = broker_start(&broker_options, runner_endpoint, api_endpoint, &err);
    if (!broker) {
        fprintf(stderr, "lynx-broker: %s\n", err.message);
        return 1;
    }
    //  public_key: what runners and subscribers need (also in data_dir/keys/broker.key);
    //  "insecure" when CURVE is off.
    printf("READY runner_endpoint=%s api_endpoint=%s telemetry_endpoint=%s public_key=%s\n",
           runner_endpoint, api_endpoint, telemetry_endpoint,
           public_key[0] ? public_key : "insecure");
    fflush(stdout);
    //  The actor runs until a signal: czmq's handler sets zsys_interrupted and the wait ends.
    int status = 0;
    while (!zsys_interrupted) {
        char *event = NULL, *reason = NULL;
        if (zstr_recvx(broker, &event, &reason, NULL) < 0)
            break;
        bool fatal = event && streq(event, "FATAL");
        if (fatal)
            fprintf(stderr, "lynx-broker: stopping: %s\n", reason ? reason : "fatal error");
        zstr_free(&event);
        zstr_free(&reason);
        if (fatal) {
            status = 1;
            break;
        }
    }
    zactor_destroy(&broker);
    zsys_info("broker: stopped");
    return status;
}

//  lynx-runner: load the configuration (flags > LYNX_RUNNER_* > YAML > defaults), check what
//  can be checked locally, start the runner actor, print READY once registered, run until
//  SIGINT/SIGTERM. With --check: the same checks plus a broker round trip, then exit 0/1.
#include "lynx_daemon.h"
#include "runner.h"
#include "runner_check.h"
#include "runner_enroll.h"
#include "runner_keys.h"

#define RUNNER_CHECK_BROKER_TIMEOUT_MS 5000

extern char **environ;

//  Start-up: only failures are worth a line, and they go to stderr.
static void s_report_failure(bool ok, const char *field, const char *detail, void *arg)
{
    (void)arg;
    if (!ok)
        fprintf(stderr, "lynx-runner: %s: %s\n", field, detail);
}

//  --check: every check, passed or not, on stdout.
static void s_report_each(bool ok, const char *field, const char *detail, void *arg)
{
    (void)arg;
    printf("%-4s %-20s %s\n", ok ? "ok" : "FAIL", field, detail);
}

//  CURVE set-up before the actor starts: the keypair (made when absent), --enroll's question,
//  and broker_public_key resolved to Z85 in config. *cert_p gets the keypair (NULL when
//  insecure). 0, or -1 with the reason printed.
static int s_prepare_keys(runner_config_t *config, zcert_t **cert_p)
{
    *cert_p = NULL;
    if (config->insecure) {
        zsys_warning("runner: INSECURE: plain connection to the broker; anyone on the path can "
                     "read run configs and pose as the broker");
        return 0;
    }
    lynx_err_t err;
    lynx_err_clear(&err);
    zcert_t *cert = runner_keys_load(config->key_file, true, &err);
    if (!cert) {
        fprintf(stderr, "lynx-runner: %s\n", err.message);
        return -1;
    }
    if (config->enroll) {
        char host[256] = "";
        gethostname(host, sizeof host - 1);
        runner_enrollment_t enrollment;
        if (runner_enroll(config->enroll, config->token, config->cacert, config->runner_id,
                          zcert_public_txt(cert), host, &enrollment, &err)) {
            fprintf(stderr, "lynx-runner: enroll: %s\n", err.message);
            zcert_destroy(&cert);
            return -1;
        }
        if (strcmp(enrollment.status, "approved") == 0)
            fprintf(stderr, "lynx-runner: enrollment %s approved; connecting\n", enrollment.id);
        else
            fprintf(stderr,
                    "lynx-runner: enrollment %s is %s: an admin approves it with POST "
                    "/runners/enrollments/%s/approve (lynx approve %s); this runner "
                    "connects as soon as that happens\n",
                    enrollment.id, enrollment.status, enrollment.id, enrollment.id);
        if (!config->broker_public_key)
            config->broker_public_key = strdup(enrollment.broker_public_key);
        else if (strcmp(config->broker_public_key, enrollment.broker_public_key) != 0)
            zsys_warning("runner: the gateway names broker key %s, not the configured one",
                         enrollment.broker_public_key);
    }
    char key[41];
    if (runner_keys_broker_key(config->broker_public_key, key, &err)) {
        fprintf(stderr, "lynx-runner: %s\n", err.message);
        zcert_destroy(&cert);
        return -1;
    }
    free(config->broker_public_key);
    config->broker_public_key = strdup(key);
    *cert_p = cert;
    return 0;
}

static int s_check(const runner_config_t *config, zcert_t *cert)
{
    printf("lynx-runner --check runner_id=%s\n", config->runner_id);
    int failed = runner_check_setup(config, s_report_each, NULL);
    char version[64] = "";
    lynx_err_t err;
    if (runner_check_broker(config->broker_endpoint, cert, config->broker_public_key,
                            RUNNER_CHECK_BROKER_TIMEOUT_MS, version, sizeof version, &err) == 0) {
        char detail[1024];
        snprintf(detail, sizeof detail, "%s (lynx-broker %s answered PING)",
                 config->broker_endpoint, *version ? version : "of unknown version");
        s_report_each(true, "broker_endpoint", detail, NULL);
    } else {
        s_report_each(false, "broker_endpoint", err.message, NULL);
        printf("     %-20s is lynx-broker running there? Its READY line prints its "
               "runner_endpoint=...; set it with --broker, LYNX_RUNNER_BROKER_ENDPOINT or "
               "broker_endpoint\n",
               "");
        if (cert)
            printf("     %-20s with CURVE on, the broker also drops a key it has not enrolled "
                   "(public_key=%s)\n",
                   "", zcert_public_txt(cert));
        failed++;
    }
    printf("%s\n", failed ? "check failed" : "all checks passed");
    return failed ? 1 : 0;
}

int main(int argc, char **argv)
{
    lynx_daemon_tune_memory();
    lynx_err_t err;
    lynx_err_clear(&err);
    runner_config_t *config = runner_config_load(argc, argv, environ, &err);
    if (!config) {
        if (err.code == LYNX_OK) { //  --help
            fputs(runner_config_usage(), stdout);
            return 0;
        }
        fprintf(stderr, "lynx-runner: %s\n", err.message);
        return 2;
    }
    zsys_init();
    zsys_set_logstream(stderr); //  stdout carries only machine-readable lines (READY)
    zsys_set_logident("lynx-runner");
    if (config->init_keys) {
        zcert_t *cert = runner_keys_load(config->key_file, true, &err);
        if (cert)
            printf("%s\n", zcert_public_txt(cert));
        else
            fprintf(stderr, "lynx-runner: %s\n", err.message);
        int status = cert ? 0 : 1;
        zcert_destroy(&cert);
        runner_config_destroy(&config);
        return status;
    }
    zcert_t *cert = NULL;
    if (s_prepare_keys(config, &cert)) {
        runner_config_destroy(&config);
        return 2;
    }
    if (config->check_only) {
        int status = s_check(config, cert);
        zcert_destroy(&cert);
        runner_config_destroy(&config);
        return status;
    }
    zcert_destroy(&cert); //  the actor loads its own
    int failed = runner_check_setup(config, s_report_failure, NULL);
    if (failed) {
        fprintf(stderr, "lynx-runner: %d setup check%s failed; not starting (see --check)\n",
                failed, failed == 1 ? "" : "s");
        runner_config_destroy(&config);
        return 2;
    }
    zactor_t *runner = runner_start(config);
    int status = 0;
    while (!zsys_interrupted) {
        char *event = NULL, *reason = NULL;
        if (zstr_recvx(runner, &event, &reason, NULL) < 0)
            break;
        if (streq(event, "READY")) {
            printf("READY runner_id=%s broker=%s\n", config->runner_id, config->broker_endpoint);
            fflush(stdout);
        } else if (streq(event, "FATAL")) {
            fprintf(stderr, "lynx-runner: %s\n", reason ? reason : "fatal error");
            status = 1;
        }
        zstr_free(&event);
        zstr_free(&reason);
        if (status)
            break;
    }
    zactor_destroy(&runner);
    runner_config_destroy(&config);
    return status;
}

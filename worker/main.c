//  lynx-runner: load the configuration (flags > LYNX_RUNNER_* > YAML > defaults), start the
//  runner actor, print READY once registered, run until SIGINT/SIGTERM.
#include "runner.h"

extern char **environ;

int main(int argc, char **argv)
{
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

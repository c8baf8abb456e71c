//  runner_check: the setup checks a runner runs at start (and --check reports one by one),
//  and the PING round trip against a peer that answers PONG, something else, or nothing.
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <czmq.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "lynx_msg.h"
#include "runner_check.h"

#define S_ARGC(argv) ((int)(sizeof(argv) / sizeof((argv)[0])) - 1)

typedef struct {
    char dir[PATH_MAX];
    char failures[2048]; //  "field;field;" of failed checks
    int passed;
} s_fixture_t;

static int s_setup(void **state)
{
    s_fixture_t *fx = calloc(1, sizeof *fx);
    snprintf(fx->dir, sizeof fx->dir, "/tmp/runner_check_test.XXXXXX");
    if (!fx || !mkdtemp(fx->dir))
        return -1;
    *state = fx;
    return 0;
}

static int s_teardown(void **state)
{
    s_fixture_t *fx = (s_fixture_t *)*state;
    char command[PATH_MAX + 16];
    snprintf(command, sizeof command, "rm -rf '%s'", fx->dir);
    int rc = system(command);
    free(fx);
    return rc == 0 ? 0 : -1;
}

static void s_collect(bool ok, const char *field, const char *detail, void *arg)
{
    s_fixture_t *fx = (s_fixture_t *)arg;
    assert_non_null(detail);
    if (ok)
        fx->passed++;
    else {
        strncat(fx->failures, field, sizeof fx->failures - strlen(fx->failures) - 1);
        strncat(fx->failures, ";", sizeof fx->failures - strlen(fx->failures) - 1);
    }
}

static void s_write(const char *path, const char *text, mode_t mode)
{
    FILE *file = fopen(path, "w");
    assert_non_null(file);
    fputs(text, file);
    fclose(file);
    chmod(path, mode);
}

static runner_config_t *s_config(s_fixture_t *fx, const char *python, const char *entrypoint,
                                 const char *output_root)
{
    char *argv[] = {"lynx-runner",
                    "--working-directory",
                    fx->dir,
                    "--python-executable",
                    (char *)python,
                    "--basilisk-entrypoint",
                    (char *)entrypoint,
                    "--output-root",
                    (char *)output_root,
                    NULL};
    char *envp[] = {NULL};
    lynx_err_t err;
    runner_config_t *config = runner_config_load(S_ARGC(argv), argv, envp, &err);
    assert_non_null(config);
    return config;
}

static void test_a_good_setup_passes_every_check(void **state)
{
    s_fixture_t *fx = (s_fixture_t *)*state;
    char script[PATH_MAX + 32], output[PATH_MAX + 32];
    snprintf(script, sizeof script, "%s/scenario.py", fx->dir);
    snprintf(output, sizeof output, "%s/not/yet/made", fx->dir);
    s_write(script, "print('hi')\n", 0644);
    //  A relative entrypoint resolves against the working directory; python through PATH.
    runner_config_t *config = s_config(fx, "sh", "scenario.py", output);
    assert_int_equal(runner_check_setup(config, s_collect, fx), 0);
    assert_string_equal(fx->failures, "");
    assert_int_equal(fx->passed, 4); //  working dir, program, script, output root
    struct stat info;
    assert_int_equal(stat(output, &info), 0); //  the output root was created
    runner_config_destroy(&config);
}

static void test_each_broken_piece_is_named(void **state)
{
    s_fixture_t *fx = (s_fixture_t *)*state;
    char program[PATH_MAX + 32], blocker[PATH_MAX + 32], output[PATH_MAX + 64];
    snprintf(program, sizeof program, "%s/python-without-x", fx->dir);
    s_write(program, "#!/bin/sh\n", 0644);
    snprintf(blocker, sizeof blocker, "%s/file", fx->dir);
    s_write(blocker, "x\n", 0644);
    snprintf(output, sizeof output, "%s/runs", blocker);
    runner_config_t *config = s_config(fx, program, "missing.py", output);
    assert_int_equal(runner_check_setup(config, s_collect, fx), 3);
    assert_string_equal(fx->failures, "python_executable;basilisk_entrypoint;output_root;");
    runner_config_destroy(&config);
}

//  A stand-in peer on a real ROUTER: answers PINGs with PONG ("pong"), an ERROR ("error"), or
//  never ("silent"). Its endpoint comes back on the pipe.
static void s_peer(zsock_t *pipe, void *args)
{
    const char *mode = (const char *)args;
    zsock_t *router = zsock_new_router("tcp://127.0.0.1:*");
    zsock_signal(pipe, 0);
    zstr_send(pipe, zsock_endpoint(router));
    zpoller_t *poller = zpoller_new(pipe, router, NULL);
    while (true) {
        void *which = zpoller_wait(poller, -1);
        if (which != router)
            break; //  $TERM or interrupted
        zframe_t *routing_id = NULL;
        lynx_err_t err;
        lynx_msg_t *ping = lynx_msg_recv(zsock_resolve(router), &routing_id, &err);
        lynx_msg_t *answer = NULL;
        if (ping && strcmp(mode, "pong") == 0) {
            answer = lynx_msg_new(LYNX_MSG_PONG);
            lynx_value_set_int(lynx_msg_body(answer), "nonce",
                               lynx_value_get_int(lynx_msg_body(ping), "nonce", 0));
            lynx_value_set_string(lynx_msg_body(answer), "version", "9.9.9");
        } else if (ping && strcmp(mode, "error") == 0) {
            answer = lynx_msg_new(LYNX_MSG_ERROR);
            lynx_value_set_string(lynx_msg_body(answer), "code", "protocol");
            lynx_value_set_string(lynx_msg_body(answer), "message", "unexpected command PING");
        }
        if (answer)
            lynx_msg_send(&answer, zsock_resolve(router), routing_id, &err);
        lynx_msg_destroy(&ping);
        zframe_destroy(&routing_id);
    }
    zpoller_destroy(&poller);
    zsock_destroy(&router);
}

static void s_check_against(const char *mode, int expect_rc, lynx_code_t expect_code,
                            const char *expect_text)
{
    zactor_t *peer = zactor_new(s_peer, (void *)mode);
    assert_non_null(peer);
    char *endpoint = zstr_recv(peer);
    assert_non_null(endpoint);
    char version[32] = "unset";
    lynx_err_t err;
    lynx_err_clear(&err);
    int rc = runner_check_broker(endpoint, NULL, NULL, 1000, version, sizeof version, &err);
    assert_int_equal(rc, expect_rc);
    if (rc == 0)
        assert_string_equal(version, "9.9.9");
    else {
        assert_int_equal(err.code, expect_code);
        assert_non_null(strstr(err.message, endpoint));
        assert_non_null(strstr(err.message, expect_text));
    }
    zstr_free(&endpoint);
    zactor_destroy(&peer);
}

static void test_broker_round_trip(void **state)
{
    (void)state;
    s_check_against("pong", 0, LYNX_OK, "");
    s_check_against("error", -1, LYNX_EPROTOCOL, "answered ERROR");
    s_check_against("silent", -1, LYNX_EUNAVAILABLE, "no answer");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define S_TEST(name) cmocka_unit_test_setup_teardown(name, s_setup, s_teardown)
        S_TEST(test_a_good_setup_passes_every_check),
        S_TEST(test_each_broken_piece_is_named),
        S_TEST(test_broker_round_trip),
#undef S_TEST
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

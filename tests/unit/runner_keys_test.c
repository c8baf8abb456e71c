//  runner_keys: a runner's CURVE keypair on disk (--init-keys, or first start) and the broker's
//  public key as the operator gives it: the key itself or the broker's public key file. Each
//  test works in a fresh temporary directory; the last one makes a real CURVE connection on
//  127.0.0.1 with the runner's side set up by runner_keys_secure.
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <czmq.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "runner_keys.h"

#define S_SLICE_MS 20
#define S_DEADLINE_MS 5000 //  for anything that should happen promptly
#define S_QUIET_MS 300     //  how long "nothing arrives" is watched
//  What an admin may leave in a key file's place: zconfig text without a usable key (czmq 4.2's
//  zconfig_load leaks when a file does not parse at all, so this junk parses).
#define S_JUNK "junk\n"
#define S_HALF_COPIED "curve\n    public-key = \"rq:rM>}U?@Lns47E1%kR\"\n"

typedef struct {
    char root[PATH_MAX];
    char key_file[PATH_MAX + 64];    //  root/etc/lynx/runner.key: its directories do not exist
    char secret_file[PATH_MAX + 96]; //  key_file + "_secret"
} s_fixture_t;

static int s_setup(void **state)
{
    s_fixture_t *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    snprintf(fx->root, sizeof fx->root, "/tmp/runner_keys_test.XXXXXX");
    assert_non_null(mkdtemp(fx->root));
    snprintf(fx->key_file, sizeof fx->key_file, "%s/etc/lynx/runner.key", fx->root);
    snprintf(fx->secret_file, sizeof fx->secret_file, "%s_secret", fx->key_file);
    *state = fx;
    return 0;
}

static int s_remove_entry(const char *path, const struct stat *info, int flag, struct FTW *ftw)
{
    (void)info, (void)flag, (void)ftw;
    return remove(path);
}

static int s_teardown(void **state)
{
    s_fixture_t *fx = *state;
    nftw(fx->root, s_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(fx);
    return 0;
}

static mode_t s_mode(const char *path)
{
    struct stat info;
    if (stat(path, &info) != 0)
        fail_msg("stat %s: %s", path, strerror(errno));
    return info.st_mode & 07777;
}

static void s_write(const char *path, const char *text)
{
    FILE *file = fopen(path, "w");
    assert_non_null(file);
    fputs(text, file);
    assert_int_equal(fclose(file), 0);
}

static zcert_t *s_load(const char *key_file, bool create)
{
    lynx_err_t err;
    lynx_err_clear(&err);
    zcert_t *cert = runner_keys_load(key_file, create, &err);
    if (!cert)
        fail_msg("runner_keys_load %s: %s", key_file, err.message);
    return cert;
}

//  --- the runner's keypair -------------------------------------------------------------------

//  First start: the directory (mode 0700) and a keypair whose secret half is ours alone.
static void test_load_creates_the_keypair(void **state)
{
    s_fixture_t *fx = *state;
    zcert_t *cert = s_load(fx->key_file, true);
    assert_int_equal(s_mode(fx->secret_file), 0600);
    char dir[PATH_MAX + 64];
    snprintf(dir, sizeof dir, "%s/etc/lynx", fx->root);
    assert_int_equal(s_mode(dir), 0700);
    assert_int_equal(strlen(zcert_public_txt(cert)), 40);
    assert_string_not_equal(zcert_secret_txt(cert), "0000000000000000000000000000000000000000");

    //  The public file is what an admin enrolls: it carries the same public key.
    zcert_t *public_only = zcert_load(fx->key_file);
    assert_non_null(public_only);
    assert_string_equal(zcert_public_txt(public_only), zcert_public_txt(cert));
    zcert_destroy(&public_only);
    zcert_destroy(&cert);
}

//  Later starts load the same keypair, whether or not they may create one.
static void test_load_again_gives_the_same_key(void **state)
{
    s_fixture_t *fx = *state;
    zcert_t *first = s_load(fx->key_file, true);
    zcert_t *again = s_load(fx->key_file, false);
    zcert_t *again_create = s_load(fx->key_file, true);
    assert_string_equal(zcert_public_txt(again), zcert_public_txt(first));
    assert_string_equal(zcert_secret_txt(again), zcert_secret_txt(first));
    assert_string_equal(zcert_public_txt(again_create), zcert_public_txt(first));
    zcert_destroy(&first);
    zcert_destroy(&again);
    zcert_destroy(&again_create);
}

//  Without create, a missing keypair is an error that says how to make one.
static void test_load_without_create_needs_init_keys(void **state)
{
    s_fixture_t *fx = *state;
    lynx_err_t err;
    lynx_err_clear(&err);
    assert_null(runner_keys_load(fx->key_file, false, &err));
    assert_int_equal(err.code, LYNX_EINVALID);
    assert_string_equal(err.field, "key_file");
    if (!strstr(err.message, "--init-keys") || !strstr(err.message, fx->secret_file))
        fail_msg("'%s' names neither --init-keys nor %s", err.message, fx->secret_file);
    //  Nothing was made.
    struct stat info;
    assert_int_not_equal(stat(fx->secret_file, &info), 0);
}

//  A secret key others can read is refused, with the file and the fix in the message.
static void test_load_refuses_a_readable_secret(void **state)
{
    s_fixture_t *fx = *state;
    zcert_t *cert = s_load(fx->key_file, true);
    zcert_destroy(&cert);
    static const mode_t modes[] = {0644, 0640, 0604};
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        assert_int_equal(chmod(fx->secret_file, modes[i]), 0);
        for (int create = 0; create <= 1; create++) {
            lynx_err_t err;
            lynx_err_clear(&err);
            if (runner_keys_load(fx->key_file, create, &err))
                fail_msg("loaded a secret key with mode %04o", (unsigned)modes[i]);
            assert_int_equal(err.code, LYNX_EINVALID);
            assert_string_equal(err.field, "key_file");
            if (!strstr(err.message, fx->secret_file) || !strstr(err.message, "chmod 600"))
                fail_msg("'%s' does not name %s and chmod 600", err.message, fx->secret_file);
        }
    }
    assert_int_equal(chmod(fx->secret_file, 0600), 0);
    cert = s_load(fx->key_file, false);
    zcert_destroy(&cert);
}

//  A secret file that holds no keypair is refused, not replaced.
static void test_load_refuses_junk(void **state)
{
    s_fixture_t *fx = *state;
    zcert_t *cert = s_load(fx->key_file, true);
    zcert_destroy(&cert);
    s_write(fx->secret_file, S_HALF_COPIED);
    s_write(fx->key_file, S_JUNK);
    assert_int_equal(chmod(fx->secret_file, 0600), 0);
    lynx_err_t err;
    lynx_err_clear(&err);
    assert_null(runner_keys_load(fx->key_file, true, &err));
    assert_int_equal(err.code, LYNX_EINVALID);
    assert_string_equal(err.field, "key_file");
    assert_non_null(strstr(err.message, fx->key_file));
}

//  --- the broker's public key ----------------------------------------------------------------

static void test_broker_key_as_z85(void **state)
{
    (void)state;
    zcert_t *broker = zcert_new();
    char key[41] = "";
    lynx_err_t err;
    lynx_err_clear(&err);
    assert_int_equal(runner_keys_broker_key(zcert_public_txt(broker), key, &err), 0);
    assert_string_equal(key, zcert_public_txt(broker));
    zcert_destroy(&broker);
}

//  The broker's data_dir/keys/broker.key (a zcert public file), or a copy of it.
static void test_broker_key_from_a_file(void **state)
{
    s_fixture_t *fx = *state;
    zcert_t *broker = zcert_new();
    char public_file[PATH_MAX + 32];
    snprintf(public_file, sizeof public_file, "%s/broker.key", fx->root);
    assert_int_equal(zcert_save_public(broker, public_file), 0);

    char key[41] = "";
    lynx_err_t err;
    lynx_err_clear(&err);
    assert_int_equal(runner_keys_broker_key(public_file, key, &err), 0);
    assert_string_equal(key, zcert_public_txt(broker));
    zcert_destroy(&broker);
}

static void test_broker_key_refuses_garbage(void **state)
{
    s_fixture_t *fx = *state;
    char junk_file[PATH_MAX + 32], missing_file[PATH_MAX + 32];
    snprintf(junk_file, sizeof junk_file, "%s/junk.key", fx->root);
    snprintf(missing_file, sizeof missing_file, "%s/missing.key", fx->root);
    s_write(junk_file, S_HALF_COPIED);
    zcert_t *broker = zcert_new();
    char short_key[40];
    memcpy(short_key, zcert_public_txt(broker), 39); //  one character short
    short_key[39] = '\0';
    zcert_destroy(&broker);

    const char *garbage[] = {"not-a-key", short_key, junk_file, missing_file, fx->root};
    for (size_t i = 0; i < sizeof garbage / sizeof garbage[0]; i++) {
        char key[41] = "untouched";
        lynx_err_t err;
        lynx_err_clear(&err);
        if (runner_keys_broker_key(garbage[i], key, &err) != -1)
            fail_msg("'%s' taken for a broker key '%s'", garbage[i], key);
        assert_int_equal(err.code, LYNX_EINVALID);
        assert_string_equal(err.field, "broker_public_key");
        assert_non_null(strstr(err.message, garbage[i])); //  says what it got
        assert_string_equal(key, "untouched");
    }
}

//  No key at all: the message says it is required and where to find one.
static void test_broker_key_is_required(void **state)
{
    (void)state;
    const char *nothing[] = {NULL, ""};
    for (size_t i = 0; i < 2; i++) {
        char key[41] = "untouched";
        lynx_err_t err;
        lynx_err_clear(&err);
        assert_int_equal(runner_keys_broker_key(nothing[i], key, &err), -1);
        assert_int_equal(err.code, LYNX_EINVALID);
        assert_string_equal(err.field, "broker_public_key");
        assert_non_null(strstr(err.message, "required"));
        assert_non_null(strstr(err.message, "broker.key"));
        assert_string_equal(key, "untouched");
    }
}

//  --- a secured connection -------------------------------------------------------------------

//  The first message a CURVE server receives within timeout_ms, or NULL.
static zmsg_t *s_receive(zsock_t *server, int timeout_ms)
{
    zpoller_t *poller = zpoller_new(server, NULL);
    assert_non_null(poller);
    int64_t deadline_ms = zclock_mono() + timeout_ms;
    zmsg_t *msg = NULL;
    while (!msg && zclock_mono() < deadline_ms)
        if (zpoller_wait(poller, S_SLICE_MS) == server)
            msg = zmsg_recv(server);
    zpoller_destroy(&poller);
    return msg;
}

static zsock_t *s_runner_socket(zcert_t *cert, const char *broker_key, const char *endpoint)
{
    zsock_t *socket = zsock_new(ZMQ_DEALER);
    assert_non_null(socket);
    zsock_set_linger(socket, 0);
    runner_keys_secure(socket, cert, broker_key);
    assert_int_equal(zsock_connect(socket, "%s", endpoint), 0);
    assert_int_equal(zstr_send(socket, "hello"), 0);
    return socket;
}

//  A runner's socket set up with its keypair and the broker's key talks to a CURVE server
//  (no ZAP handler here, so any client key is let in); with the wrong broker key, nothing does.
static void test_secure_talks_curve(void **state)
{
    s_fixture_t *fx = *state;
    zcert_t *broker = zcert_new();
    zsock_t *server = zsock_new(ZMQ_ROUTER);
    assert_non_null(server);
    zsock_set_linger(server, 0);
    zcert_apply(broker, server);
    zsock_set_curve_server(server, 1);
    int port = zsock_bind(server, "tcp://127.0.0.1:*");
    assert_true(port > 0);
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", port);

    zcert_t *cert = s_load(fx->key_file, true);
    char broker_key[41];
    lynx_err_t err;
    assert_int_equal(runner_keys_broker_key(zcert_public_txt(broker), broker_key, &err), 0);
    zsock_t *runner = s_runner_socket(cert, broker_key, endpoint);
    zmsg_t *msg = s_receive(server, S_DEADLINE_MS);
    if (!msg)
        fail_msg("no message over CURVE within %d ms", S_DEADLINE_MS);
    assert_int_equal(zmsg_size(msg), 2); //  routing id, "hello"
    zframe_t *routing_id = zmsg_pop(msg);
    assert_true(zframe_streq(zmsg_first(msg), "hello"));
    zframe_destroy(&routing_id);
    zmsg_destroy(&msg);
    zsock_destroy(&runner);

    zcert_t *impostor = zcert_new();
    runner = s_runner_socket(cert, zcert_public_txt(impostor), endpoint);
    msg = s_receive(server, S_QUIET_MS);
    if (msg)
        fail_msg("a message got through with the wrong broker key");
    zsock_destroy(&runner);

    zcert_destroy(&impostor);
    zcert_destroy(&cert);
    zsock_destroy(&server);
    zcert_destroy(&broker);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_load_creates_the_keypair, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_load_again_gives_the_same_key, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_load_without_create_needs_init_keys, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_load_refuses_a_readable_secret, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_load_refuses_junk, s_setup, s_teardown),
        cmocka_unit_test(test_broker_key_as_z85),
        cmocka_unit_test_setup_teardown(test_broker_key_from_a_file, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_broker_key_refuses_garbage, s_setup, s_teardown),
        cmocka_unit_test(test_broker_key_is_required),
        cmocka_unit_test_setup_teardown(test_secure_talks_curve, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

//  broker_keys: the broker's CURVE keypair and its allow lists of runner and subscriber keys,
//  in a fresh keys directory per test. The lists are plain files an admin may edit by hand, so
//  the tests do that too; the handshake tests bind a real CURVE ROUTER on 127.0.0.1 and answer
//  its ZAP requests from the test's own poll loop, as the broker's zloop does.
//
//  libzmq allows one ZAP handler per process: each test holds at most one broker_keys_t at a
//  time and destroys it before it ends.
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

#include "broker_keys.h"

#define S_LENGTH(array) (sizeof(array) / sizeof(array)[0])
#define S_SLICE_MS 20      //  poll slice of the test's loop
#define S_DEADLINE_MS 5000 //  for anything that should happen promptly
#define S_QUIET_MS 300     //  how long "nothing arrives" is watched
//  What an admin may leave in a key file's place: zconfig text without a usable key (czmq 4.2's
//  zconfig_load leaks when a file does not parse at all, so this junk parses).
#define S_JUNK "junk\n"
#define S_HALF_COPIED "curve\n    public-key = \"rq:rM>}U?@Lns47E1%kR\"\n"
#define S_REVOKED_MAX 8

typedef struct {
    char root[PATH_MAX];
    char keys_dir[PATH_MAX + 16];    //  root/keys, made by broker_keys_new
    char revoked[S_REVOKED_MAX][64]; //  what on_revoked heard, in order
    size_t revoked_count;
} s_fixture_t;

static int s_setup(void **state)
{
    s_fixture_t *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    snprintf(fx->root, sizeof fx->root, "/tmp/broker_keys_test.XXXXXX");
    assert_non_null(mkdtemp(fx->root));
    snprintf(fx->keys_dir, sizeof fx->keys_dir, "%s/keys", fx->root);
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

//  --- helpers --------------------------------------------------------------------------------

static broker_keys_t *s_keys_new(s_fixture_t *fx)
{
    lynx_err_t err;
    lynx_err_clear(&err);
    broker_keys_t *keys = broker_keys_new(fx->keys_dir, &err);
    if (!keys)
        fail_msg("broker_keys_new %s: %s", fx->keys_dir, err.message);
    return keys;
}

//  A path under the keys directory.
static const char *s_path(s_fixture_t *fx, char *path, size_t size, const char *name)
{
    snprintf(path, size, "%s/%s", fx->keys_dir, name);
    return path;
}

static void s_fresh_key(char key[41])
{
    zcert_t *cert = zcert_new();
    assert_non_null(cert);
    snprintf(key, 41, "%s", zcert_public_txt(cert));
    zcert_destroy(&cert);
}

static mode_t s_mode(const char *path)
{
    struct stat info;
    if (stat(path, &info) != 0)
        fail_msg("stat %s: %s", path, strerror(errno));
    return info.st_mode & 07777;
}

static bool s_exists(const char *path)
{
    struct stat info;
    return stat(path, &info) == 0;
}

static void s_write(const char *path, const char *text)
{
    FILE *file = fopen(path, "w");
    assert_non_null(file);
    fputs(text, file);
    assert_int_equal(fclose(file), 0);
}

//  Enroll by hand, the way an admin copies a file in: write a zcert public file (metadata
//  runner_id unless NULL) under a name the broker ignores, then rename it into place.
static void s_drop_key_file(s_fixture_t *fx, const char *subdir, const char *file_name,
                            const char *public_key, const char *runner_id)
{
    uint8_t public_bin[32], secret_bin[32] = {0};
    assert_non_null(zmq_z85_decode(public_bin, public_key));
    zcert_t *cert = zcert_new_from(public_bin, secret_bin);
    assert_non_null(cert);
    if (runner_id)
        zcert_set_meta(cert, "runner_id", "%s", runner_id);
    char temp[PATH_MAX + 512], final[PATH_MAX + 512];
    snprintf(temp, sizeof temp, "%s/%s/%s.tmp", fx->keys_dir, subdir, file_name);
    snprintf(final, sizeof final, "%s/%s/%s", fx->keys_dir, subdir, file_name);
    assert_int_equal(zcert_save_public(cert, temp), 0);
    zcert_destroy(&cert);
    assert_int_equal(rename(temp, final), 0);
}

static void s_on_revoked(const char *runner_id, void *arg)
{
    s_fixture_t *fx = arg;
    assert_true(fx->revoked_count < S_REVOKED_MAX);
    snprintf(fx->revoked[fx->revoked_count++], sizeof fx->revoked[0], "%s", runner_id);
}

//  --- the broker's keypair -------------------------------------------------------------------

//  First start: the directory (mode 0700) with its two allow lists and a keypair whose secret
//  half is ours alone. The public file is a zcert file runners can read the key from.
static void test_new_creates_the_keypair(void **state)
{
    s_fixture_t *fx = *state;
    assert_false(s_exists(fx->keys_dir));
    broker_keys_t *keys = s_keys_new(fx);

    char path[PATH_MAX + 64];
    assert_int_equal(s_mode(fx->keys_dir), 0700);
    assert_int_equal(s_mode(s_path(fx, path, sizeof path, "runners")), 0700);
    assert_int_equal(s_mode(s_path(fx, path, sizeof path, "subscribers")), 0700);
    assert_int_equal(s_mode(s_path(fx, path, sizeof path, "broker.key_secret")), 0600);
    assert_string_equal(broker_keys_public_file(keys), s_path(fx, path, sizeof path, "broker.key"));
    assert_true(s_exists(path));

    const char *public_key = broker_keys_public(keys);
    assert_true(broker_keys_is_z85(public_key));
    zcert_t *cert = zcert_load(broker_keys_public_file(keys));
    assert_non_null(cert);
    assert_string_equal(zcert_public_txt(cert), public_key);
    zcert_destroy(&cert);

    broker_keys_destroy(&keys);
    assert_null(keys);
    broker_keys_destroy(&keys);
    broker_keys_destroy(NULL);
}

//  Later starts load the same keypair: runners that know the key keep connecting.
static void test_new_again_loads_the_same_key(void **state)
{
    s_fixture_t *fx = *state;
    broker_keys_t *keys = s_keys_new(fx);
    char first[41];
    snprintf(first, sizeof first, "%s", broker_keys_public(keys));
    broker_keys_destroy(&keys);

    keys = s_keys_new(fx);
    assert_string_equal(broker_keys_public(keys), first);
    broker_keys_destroy(&keys);
}

//  A secret key others can read is refused, with the file and the fix in the message.
static void test_secret_readable_by_others_is_refused(void **state)
{
    s_fixture_t *fx = *state;
    broker_keys_t *keys = s_keys_new(fx);
    broker_keys_destroy(&keys);

    char secret[PATH_MAX + 64];
    s_path(fx, secret, sizeof secret, "broker.key_secret");
    static const mode_t modes[] = {0644, 0640, 0604, 0660};
    for (size_t i = 0; i < S_LENGTH(modes); i++) {
        assert_int_equal(chmod(secret, modes[i]), 0);
        lynx_err_t err;
        lynx_err_clear(&err);
        keys = broker_keys_new(fx->keys_dir, &err);
        if (keys)
            fail_msg("loaded a secret key with mode %04o", (unsigned)modes[i]);
        assert_int_equal(err.code, LYNX_EINVALID);
        if (!strstr(err.message, secret) || !strstr(err.message, "chmod 600"))
            fail_msg("'%s' does not name %s and chmod 600", err.message, secret);
    }
    assert_int_equal(chmod(secret, 0600), 0);
    keys = s_keys_new(fx);
    broker_keys_destroy(&keys);
}

//  A secret file that is not a keypair (a public file copied over it, or junk) is refused.
static void test_unreadable_keypair_is_refused(void **state)
{
    s_fixture_t *fx = *state;
    broker_keys_t *keys = s_keys_new(fx);
    broker_keys_destroy(&keys);

    char secret[PATH_MAX + 64], public_file[PATH_MAX + 64];
    s_path(fx, secret, sizeof secret, "broker.key_secret");
    s_path(fx, public_file, sizeof public_file, "broker.key");
    assert_int_equal(remove(secret), 0);
    s_write(secret, S_HALF_COPIED);
    assert_int_equal(chmod(secret, 0600), 0);
    s_write(public_file, S_JUNK);
    lynx_err_t err;
    lynx_err_clear(&err);
    assert_null(broker_keys_new(fx->keys_dir, &err));
    assert_int_equal(err.code, LYNX_EINVALID);
    assert_non_null(strstr(err.message, public_file));
}

//  A keys directory that cannot be made: an error naming the path, and NULL without an err
//  too (callers that do not care pass NULL, as everywhere).
static void test_new_fails_where_no_directory_can_be(void **state)
{
    s_fixture_t *fx = *state;
    char file[PATH_MAX + 16], under_file[PATH_MAX + 32];
    snprintf(file, sizeof file, "%s/not-a-dir", fx->root);
    snprintf(under_file, sizeof under_file, "%s/keys", file);
    s_write(file, "");
    lynx_err_t err;
    lynx_err_clear(&err);
    assert_null(broker_keys_new(under_file, &err));
    assert_int_equal(err.code, LYNX_EINTERNAL);
    if (!strstr(err.message, under_file))
        fail_msg("'%s' does not name %s", err.message, under_file);
    assert_null(broker_keys_new(under_file, NULL));
}

//  One ZAP handler per process: a second one is refused with the reason; once the first is
//  destroyed, a new one can bind again at once.
static void test_one_zap_handler_per_process(void **state)
{
    s_fixture_t *fx = *state;
    broker_keys_t *keys = s_keys_new(fx);
    lynx_err_t err;
    lynx_err_clear(&err);
    assert_null(broker_keys_new(fx->keys_dir, &err));
    assert_int_equal(err.code, LYNX_EINTERNAL);
    assert_non_null(strstr(err.message, "ZAP"));
    //  The refused one left the first handler bound: a third is refused too.
    assert_null(broker_keys_new(fx->keys_dir, &err));
    broker_keys_destroy(&keys);

    for (int round = 0; round < 20; round++) {
        keys = s_keys_new(fx);
        broker_keys_destroy(&keys);
    }
}

static void test_is_z85(void **state)
{
    (void)state;
    char key[41];
    s_fresh_key(key);
    assert_true(broker_keys_is_z85(key));
    assert_true(broker_keys_is_z85("rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"));

    char short_key[40], long_key[42], bad_char[41];
    memcpy(short_key, key, 39); //  one character short
    short_key[39] = '\0';
    snprintf(long_key, sizeof long_key, "%s0", key);
    snprintf(bad_char, sizeof bad_char, "%s", key);
    bad_char[7] = '~'; //  not in the Z85 alphabet
    const char *bad[] = {NULL,     "",       short_key,
                         long_key, bad_char, "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf "};
    for (size_t i = 0; i < S_LENGTH(bad); i++)
        if (broker_keys_is_z85(bad[i]))
            fail_msg("'%s' taken for a Z85 key", bad[i] ? bad[i] : "(null)");
}

//  --- enrolling and revoking runners ---------------------------------------------------------

static void test_admit_runner(void **state)
{
    s_fixture_t *fx = *state;
    broker_keys_t *keys = s_keys_new(fx);
    char key[41], other_key[41];
    s_fresh_key(key);
    s_fresh_key(other_key);
    assert_null(broker_keys_key_of(keys, "ws-07"));
    assert_null(broker_keys_runner_of(keys, key));
    assert_null(broker_keys_key_of(keys, NULL));
    assert_null(broker_keys_runner_of(keys, NULL));

    lynx_err_t err;
    lynx_err_clear(&err);
    assert_int_equal(broker_keys_admit_runner(keys, "ws-07", key, &err), 0);
    assert_string_equal(broker_keys_key_of(keys, "ws-07"), key);
    assert_string_equal(broker_keys_runner_of(keys, key), "ws-07");

    //  The allow list is a zcert public file per runner, bound to its id by metadata.
    char path[PATH_MAX + 64];
    zcert_t *cert = zcert_load(s_path(fx, path, sizeof path, "runners/ws-07.key"));
    assert_non_null(cert);
    assert_string_equal(zcert_public_txt(cert), key);
    assert_string_equal(zcert_meta(cert, "runner_id"), "ws-07");
    zcert_destroy(&cert);

    //  The same pair again is a success; any other pairing with either half is a conflict.
    assert_int_equal(broker_keys_admit_runner(keys, "ws-07", key, &err), 0);
    lynx_err_clear(&err);
    assert_int_equal(broker_keys_admit_runner(keys, "ws-07", other_key, &err), -1);
    assert_int_equal(err.code, LYNX_ECONFLICT);
    assert_string_equal(err.field, "runner_id");
    assert_non_null(strstr(err.message, "ws-07"));
    lynx_err_clear(&err);
    assert_int_equal(broker_keys_admit_runner(keys, "ws-08", key, &err), -1);
    assert_int_equal(err.code, LYNX_ECONFLICT);
    assert_string_equal(err.field, "public_key");
    assert_null(broker_keys_key_of(keys, "ws-08"));
    assert_false(s_exists(s_path(fx, path, sizeof path, "runners/ws-08.key")));
    assert_string_equal(broker_keys_key_of(keys, "ws-07"), key);

    //  The list outlives the broker.
    broker_keys_destroy(&keys);
    keys = s_keys_new(fx);
    assert_string_equal(broker_keys_key_of(keys, "ws-07"), key);
    assert_string_equal(broker_keys_runner_of(keys, key), "ws-07");
    broker_keys_destroy(&keys);
}

//  A runner id becomes a file name: anything a path could abuse is refused, as is a key that
//  is not Z85. Nothing is written.
static void test_admit_runner_refuses_bad_input(void **state)
{
    s_fixture_t *fx = *state;
    broker_keys_t *keys = s_keys_new(fx);
    char key[41];
    s_fresh_key(key);
    char too_long[122];
    memset(too_long, 'r', 121);
    too_long[121] = '\0';
    const char *bad_ids[] = {NULL,  "",       ".hidden", "..",          "../ws-07",
                             "a/b", "sp ace", "tab\t",   "caf\xc3\xa9", too_long};
    for (size_t i = 0; i < S_LENGTH(bad_ids); i++) {
        lynx_err_t err;
        lynx_err_clear(&err);
        if (broker_keys_admit_runner(keys, bad_ids[i], key, &err) != -1)
            fail_msg("admitted runner id '%s'", bad_ids[i] ? bad_ids[i] : "(null)");
        assert_int_equal(err.code, LYNX_EINVALID);
        assert_string_equal(err.field, "runner_id");
    }
    char short_key[40];
    memcpy(short_key, key, 39); //  one character short
    short_key[39] = '\0';
    const char *bad_keys[] = {NULL, "", short_key, "not a key",
                              "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf~"};
    for (size_t i = 0; i < S_LENGTH(bad_keys); i++) {
        lynx_err_t err;
        lynx_err_clear(&err);
        if (broker_keys_admit_runner(keys, "ws-07", bad_keys[i], &err) != -1)
            fail_msg("admitted key '%s'", bad_keys[i] ? bad_keys[i] : "(null)");
        assert_int_equal(err.code, LYNX_EINVALID);
        assert_string_equal(err.field, "public_key");
    }
    assert_null(broker_keys_runner_of(keys, key));
    char path[PATH_MAX + 64];
    assert_false(s_exists(s_path(fx, path, sizeof path, "runners/ws-07.key")));

    //  The longest id that fits, 120 characters, is fine.
    too_long[120] = '\0';
    lynx_err_t err;
    assert_int_equal(broker_keys_admit_runner(keys, too_long, key, &err), 0);
    broker_keys_destroy(&keys);
}

static void test_revoke_runner(void **state)
{
    s_fixture_t *fx = *state;
    broker_keys_t *keys = s_keys_new(fx);
    char key[41], new_key[41], copied_key[41];
    s_fresh_key(key);
    s_fresh_key(new_key);
    s_fresh_key(copied_key);
    lynx_err_t err;
    lynx_err_clear(&err);
    assert_int_equal(broker_keys_admit_runner(keys, "ws-07", key, &err), 0);

    char path[PATH_MAX + 64];
    s_path(fx, path, sizeof path, "runners/ws-07.key");
    assert_int_equal(broker_keys_revoke_runner(keys, "ws-07", &err), 1);
    assert_false(s_exists(path));
    assert_null(broker_keys_key_of(keys, "ws-07"));
    assert_null(broker_keys_runner_of(keys, key));
    assert_int_equal(broker_keys_revoke_runner(keys, "ws-07", &err), 0);
    assert_int_equal(broker_keys_revoke_runner(keys, "nobody", &err), 0);
    assert_int_equal(err.code, LYNX_OK);

    //  Revoked, the id may enroll a new key (a rebuilt machine).
    assert_int_equal(broker_keys_admit_runner(keys, "ws-07", new_key, &err), 0);
    assert_string_equal(broker_keys_key_of(keys, "ws-07"), new_key);

    //  A key an admin copied in under another file name: revoking the runner removes that file.
    s_drop_key_file(fx, "runners", "from-the-admin.key", copied_key, "ws-09");
    broker_keys_refresh(keys);
    assert_string_equal(broker_keys_key_of(keys, "ws-09"), copied_key);
    assert_int_equal(broker_keys_revoke_runner(keys, "ws-09", &err), 1);
    assert_false(s_exists(s_path(fx, path, sizeof path, "runners/from-the-admin.key")));
    assert_null(broker_keys_runner_of(keys, copied_key));
    assert_string_equal(broker_keys_key_of(keys, "ws-07"), new_key);
    broker_keys_destroy(&keys);

    //  Gone for good: a restart does not bring the key back.
    keys = s_keys_new(fx);
    assert_null(broker_keys_key_of(keys, "ws-09"));
    assert_string_equal(broker_keys_key_of(keys, "ws-07"), new_key);
    broker_keys_destroy(&keys);
}

//  The admin's hand edits, seen by refresh: a deleted file revokes the runner (and the broker
//  hears of it), a file renamed into place enrolls one, junk is ignored.
static void test_refresh_sees_hand_edits(void **state)
{
    s_fixture_t *fx = *state;
    broker_keys_t *keys = s_keys_new(fx);
    broker_keys_on_revoked(keys, s_on_revoked, fx);
    char key_1[41], key_2[41], key_3[41], key_4[41], replaced[41];
    s_fresh_key(key_1);
    s_fresh_key(key_2);
    s_fresh_key(key_3);
    s_fresh_key(key_4);
    s_fresh_key(replaced);
    lynx_err_t err;
    assert_int_equal(broker_keys_admit_runner(keys, "ws-01", key_1, &err), 0);
    assert_int_equal(broker_keys_admit_runner(keys, "ws-02", key_2, &err), 0);

    //  Nothing changed: nothing to tell.
    broker_keys_refresh(keys);
    assert_int_equal(fx->revoked_count, 0);

    //  rm keys/runners/ws-01.key
    char path[PATH_MAX + 64];
    assert_int_equal(remove(s_path(fx, path, sizeof path, "runners/ws-01.key")), 0);
    broker_keys_refresh(keys);
    assert_int_equal(fx->revoked_count, 1);
    assert_string_equal(fx->revoked[0], "ws-01");
    assert_null(broker_keys_key_of(keys, "ws-01"));
    assert_null(broker_keys_runner_of(keys, key_1));
    assert_string_equal(broker_keys_key_of(keys, "ws-02"), key_2);

    //  A new file renamed into place; one without metadata is bound to its file's name.
    s_drop_key_file(fx, "runners", "ws-03.key", key_3, "ws-03");
    s_drop_key_file(fx, "runners", "ws-04.key", key_4, NULL);
    broker_keys_refresh(keys);
    assert_string_equal(broker_keys_key_of(keys, "ws-03"), key_3);
    assert_string_equal(broker_keys_runner_of(keys, key_3), "ws-03");
    assert_string_equal(broker_keys_key_of(keys, "ws-04"), key_4);
    assert_int_equal(fx->revoked_count, 1);

    //  Junk named like a key file, a hidden file and a non-.key file are ignored.
    s_write(s_path(fx, path, sizeof path, "runners/junk.key"), S_HALF_COPIED);
    s_write(s_path(fx, path, sizeof path, "runners/empty.key"), "");
    s_drop_key_file(fx, "runners", ".hidden.key", key_1, "ws-01");
    s_drop_key_file(fx, "runners", "ws-01.key.bak", key_1, "ws-01");
    broker_keys_refresh(keys);
    assert_null(broker_keys_key_of(keys, "junk"));
    assert_null(broker_keys_key_of(keys, "empty"));
    assert_null(broker_keys_key_of(keys, "ws-01"));
    assert_null(broker_keys_runner_of(keys, key_1));
    assert_string_equal(broker_keys_key_of(keys, "ws-02"), key_2);
    assert_string_equal(broker_keys_key_of(keys, "ws-03"), key_3);
    assert_int_equal(fx->revoked_count, 1);

    //  A runner's key replaced by hand: the old key went away, so the runner is told of.
    s_drop_key_file(fx, "runners", "ws-02.key", replaced, "ws-02");
    broker_keys_refresh(keys);
    assert_int_equal(fx->revoked_count, 2);
    assert_string_equal(fx->revoked[1], "ws-02");
    assert_string_equal(broker_keys_key_of(keys, "ws-02"), replaced);
    assert_null(broker_keys_runner_of(keys, key_2));

    //  A revocation through the API is not a hand edit: no callback.
    assert_int_equal(broker_keys_revoke_runner(keys, "ws-03", &err), 1);
    broker_keys_refresh(keys);
    assert_int_equal(fx->revoked_count, 2);
    broker_keys_destroy(&keys);
}

//  --- real CURVE handshakes ------------------------------------------------------------------

//  A CURVE server socket of the broker's, bound on an ephemeral port of 127.0.0.1.
typedef struct {
    broker_keys_t *keys;
    zsock_t *server;
    char endpoint[64];
    zpoller_t *poller;
    size_t zap_requests;
} s_server_t;

static void s_server_start(s_server_t *server, s_fixture_t *fx, const char *domain)
{
    memset(server, 0, sizeof *server);
    server->keys = s_keys_new(fx);
    server->server = zsock_new(ZMQ_ROUTER);
    assert_non_null(server->server);
    zsock_set_linger(server->server, 0);
    broker_keys_serve(server->keys, server->server, domain);
    int port = zsock_bind(server->server, "tcp://127.0.0.1:*");
    assert_true(port > 0);
    snprintf(server->endpoint, sizeof server->endpoint, "tcp://127.0.0.1:%d", port);
    server->poller = zpoller_new(broker_keys_zap_socket(server->keys), server->server, NULL);
    assert_non_null(server->poller);
}

static void s_server_stop(s_server_t *server)
{
    zpoller_destroy(&server->poller);
    zsock_destroy(&server->server);
    broker_keys_destroy(&server->keys);
}

//  A client with cert, the way a runner connects, sending "hello" once the handshake is done.
static zsock_t *s_client(const s_server_t *server, zcert_t *cert)
{
    zsock_t *client = zsock_new(ZMQ_DEALER);
    assert_non_null(client);
    zsock_set_linger(client, 0);
    zcert_apply(cert, client);
    zsock_set_curve_serverkey(client, broker_keys_public(server->keys));
    assert_int_equal(zsock_connect(client, "%s", server->endpoint), 0);
    assert_int_equal(zstr_send(client, "hello"), 0);
    return client;
}

//  Run the broker's side for up to timeout_ms: answer handshakes, and return the first message
//  the server receives (routing id popped), or NULL. Stops early, with NULL, once the ZAP
//  handler has answered zap_requests handshakes (0: do not stop for that).
static zmsg_t *s_serve(s_server_t *server, int64_t timeout_ms, size_t zap_requests)
{
    int64_t deadline_ms = zclock_mono() + timeout_ms;
    while (zclock_mono() < deadline_ms) {
        void *which = zpoller_wait(server->poller, S_SLICE_MS);
        if (which == broker_keys_zap_socket(server->keys)) {
            broker_keys_handle_zap(server->keys);
            server->zap_requests++;
            if (zap_requests && server->zap_requests >= zap_requests)
                return NULL;
        } else if (which == server->server) {
            zmsg_t *msg = zmsg_recv(server->server);
            assert_non_null(msg);
            zframe_t *routing_id = zmsg_pop(msg);
            zframe_destroy(&routing_id);
            return msg;
        }
    }
    return NULL;
}

//  The message's sender as the ZAP handler named it.
static void s_assert_from(zmsg_t **msg_p, const char *user_id)
{
    assert_non_null(*msg_p);
    zframe_t *frame = zmsg_first(*msg_p);
    assert_non_null(frame);
    assert_true(zframe_streq(frame, "hello"));
    const char *peer = zframe_meta(frame, "User-Id");
    assert_non_null(peer);
    assert_string_equal(peer, user_id);
    zmsg_destroy(msg_p);
}

//  An enrolled runner's messages arrive with its runner id as User-Id.
static void test_handshake_admits_an_enrolled_runner(void **state)
{
    s_fixture_t *fx = *state;
    s_server_t server;
    s_server_start(&server, fx, BROKER_KEYS_DOMAIN_RUNNERS);
    zcert_t *cert = zcert_new();
    lynx_err_t err;
    assert_int_equal(broker_keys_admit_runner(server.keys, "ws-07", zcert_public_txt(cert), &err),
                     0);

    zsock_t *client = s_client(&server, cert);
    zmsg_t *msg = s_serve(&server, S_DEADLINE_MS, 0);
    if (!msg)
        fail_msg("no message from an enrolled runner within %d ms", S_DEADLINE_MS);
    assert_true(server.zap_requests >= 1);
    s_assert_from(&msg, "ws-07");

    zsock_destroy(&client);
    zcert_destroy(&cert);
    s_server_stop(&server);
}

//  An unknown key is refused: the handshake is answered, and no message gets through. Once the
//  admin copies its file in, the next connection is admitted without a refresh by hand.
static void test_handshake_refuses_an_unknown_key(void **state)
{
    s_fixture_t *fx = *state;
    s_server_t server;
    s_server_start(&server, fx, BROKER_KEYS_DOMAIN_RUNNERS);
    zcert_t *cert = zcert_new();

    zsock_t *client = s_client(&server, cert);
    assert_null(s_serve(&server, S_DEADLINE_MS, 1));
    if (server.zap_requests != 1)
        fail_msg("no handshake reached the ZAP handler within %d ms", S_DEADLINE_MS);
    zmsg_t *msg = s_serve(&server, S_QUIET_MS, 0);
    if (msg)
        fail_msg("a message from an unknown key got through");
    zsock_destroy(&client);

    s_drop_key_file(fx, "runners", "ws-11.key", zcert_public_txt(cert), "ws-11");
    client = s_client(&server, cert);
    msg = s_serve(&server, S_DEADLINE_MS, 0);
    if (!msg)
        fail_msg("no message once the key was copied in");
    s_assert_from(&msg, "ws-11");
    assert_string_equal(broker_keys_key_of(server.keys, "ws-11"), zcert_public_txt(cert));

    zsock_destroy(&client);
    zcert_destroy(&cert);
    s_server_stop(&server);
}

//  A revoked runner cannot connect again.
static void test_handshake_refuses_a_revoked_runner(void **state)
{
    s_fixture_t *fx = *state;
    s_server_t server;
    s_server_start(&server, fx, BROKER_KEYS_DOMAIN_RUNNERS);
    zcert_t *cert = zcert_new();
    lynx_err_t err;
    assert_int_equal(broker_keys_admit_runner(server.keys, "ws-07", zcert_public_txt(cert), &err),
                     0);
    assert_int_equal(broker_keys_revoke_runner(server.keys, "ws-07", &err), 1);

    zsock_t *client = s_client(&server, cert);
    assert_null(s_serve(&server, S_DEADLINE_MS, 1));
    assert_int_equal(server.zap_requests, 1);
    assert_null(s_serve(&server, S_QUIET_MS, 0));

    zsock_destroy(&client);
    zcert_destroy(&cert);
    s_server_stop(&server);
}

//  The telemetry domain admits subscribers (named by their file) and runners (by their id);
//  the runners domain admits runners only.
static void test_telemetry_domain_admits_subscribers(void **state)
{
    s_fixture_t *fx = *state;
    zcert_t *subscriber = zcert_new(), *runner = zcert_new();
    s_server_t server;
    s_server_start(&server, fx, BROKER_KEYS_DOMAIN_TELEMETRY);
    s_drop_key_file(fx, "subscribers", "grafana.key", zcert_public_txt(subscriber), NULL);
    lynx_err_t err;
    assert_int_equal(broker_keys_admit_runner(server.keys, "ws-07", zcert_public_txt(runner), &err),
                     0);
    zsock_t *client = s_client(&server, subscriber);
    zmsg_t *msg = s_serve(&server, S_DEADLINE_MS, 0);
    if (!msg)
        fail_msg("no message from a subscriber on the telemetry domain");
    s_assert_from(&msg, "grafana");
    zsock_destroy(&client);
    client = s_client(&server, runner);
    msg = s_serve(&server, S_DEADLINE_MS, 0);
    if (!msg)
        fail_msg("no message from a runner on the telemetry domain");
    s_assert_from(&msg, "ws-07");
    zsock_destroy(&client);
    s_server_stop(&server);

    s_server_start(&server, fx, BROKER_KEYS_DOMAIN_RUNNERS);
    client = s_client(&server, subscriber);
    assert_null(s_serve(&server, S_DEADLINE_MS, 1));
    assert_int_equal(server.zap_requests, 1);
    assert_null(s_serve(&server, S_QUIET_MS, 0));
    zsock_destroy(&client);
    s_server_stop(&server);

    zcert_destroy(&subscriber);
    zcert_destroy(&runner);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_new_creates_the_keypair, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_new_again_loads_the_same_key, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_secret_readable_by_others_is_refused, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_unreadable_keypair_is_refused, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_new_fails_where_no_directory_can_be, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_one_zap_handler_per_process, s_setup, s_teardown),
        cmocka_unit_test(test_is_z85),
        cmocka_unit_test_setup_teardown(test_admit_runner, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_admit_runner_refuses_bad_input, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_revoke_runner, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_refresh_sees_hand_edits, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_handshake_admits_an_enrolled_runner, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_handshake_refuses_an_unknown_key, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_handshake_refuses_a_revoked_runner, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_telemetry_domain_admits_subscribers, s_setup,
                                        s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

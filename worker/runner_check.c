//  runner_check: start-up checks of a runner's setup, and the broker round trip of --check.
#include "runner_check.h"
#include "runner_keys.h"

#include <czmq.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lynx_msg.h"
#include "runner_engine.h"
#include "runner_fs.h"

#define RUNNER_CHECK_PATH_MAX 4096

typedef struct {
    runner_check_report_fn *report;
    void *arg;
    int failed;
} s_checker_t;

static void s_report(s_checker_t *self, bool ok, const char *field, const char *format, ...)
    __attribute__((format(printf, 4, 5)));

static void s_report(s_checker_t *self, bool ok, const char *field, const char *format, ...)
{
    char detail[RUNNER_CHECK_PATH_MAX + 256];
    va_list args;
    va_start(args, format);
    vsnprintf(detail, sizeof detail, format, args);
    va_end(args);
    if (!ok)
        self->failed++;
    self->report(ok, field, detail, self->arg);
}

//  A regular file we may execute. errno-style reason in why on failure.
static bool s_is_executable(const char *path, const char **why)
{
    struct stat info;
    if (stat(path, &info) != 0) {
        *why = strerror(errno);
        return false;
    }
    if (!S_ISREG(info.st_mode)) {
        *why = "not a regular file";
        return false;
    }
    if (access(path, X_OK) != 0) {
        *why = "not executable";
        return false;
    }
    return true;
}

//  Resolve program as the runner will run it: a name with a slash against the working
//  directory (the scenario's cwd) unless absolute, a bare name through PATH.
static bool s_resolve_program(const char *program, const char *working_directory, char *resolved,
                              size_t size, const char **why)
{
    if (strchr(program, '/')) {
        if (program[0] == '/')
            snprintf(resolved, size, "%s", program);
        else
            snprintf(resolved, size, "%s/%s", working_directory, program);
        return s_is_executable(resolved, why);
    }
    const char *path = getenv("PATH");
    if (!path || !*path)
        path = "/usr/local/bin:/usr/bin:/bin";
    *why = "not found in PATH";
    for (const char *start = path; *start;) {
        const char *end = strchr(start, ':');
        size_t length = end ? (size_t)(end - start) : strlen(start);
        const char *why_here;
        snprintf(resolved, size, "%.*s/%s", (int)length, length ? start : ".", program);
        if (s_is_executable(resolved, &why_here))
            return true;
        if (!end)
            break;
        start = end + 1;
    }
    return false;
}

static void s_check_program(s_checker_t *self, const runner_config_t *config, const char *field,
                            const char *program)
{
    char resolved[RUNNER_CHECK_PATH_MAX + 512];
    const char *why = "";
    if (s_resolve_program(program, config->working_directory, resolved, sizeof resolved, &why))
        s_report(self, true, field, "%s", resolved);
    else
        s_report(self, false, field, "%s: %s", program, why);
}

static void s_check_script(s_checker_t *self, const char *field, const char *path)
{
    struct stat info;
    if (stat(path, &info) != 0)
        s_report(self, false, field, "%s: %s", path, strerror(errno));
    else if (!S_ISREG(info.st_mode))
        s_report(self, false, field, "%s: not a regular file", path);
    else if (access(path, R_OK) != 0)
        s_report(self, false, field, "%s: not readable", path);
    else
        s_report(self, true, field, "%s", path);
}

int runner_check_setup(const runner_config_t *config, runner_check_report_fn *report, void *arg)
{
    s_checker_t self = {report, arg, 0};
    struct stat info;
    if (stat(config->working_directory, &info) != 0)
        s_report(&self, false, "working_directory", "%s: %s", config->working_directory,
                 strerror(errno));
    else if (!S_ISDIR(info.st_mode))
        s_report(&self, false, "working_directory", "%s: not a directory",
                 config->working_directory);
    else
        s_report(&self, true, "working_directory", "%s", config->working_directory);

    for (size_t index = 0; index < config->engine_count; index++) {
        const char *engine = config->engines[index];
        runner_command_t command;
        lynx_err_t err;
        if (runner_engine_command(engine, config, &command, &err)) {
            s_report(&self, false, err.field[0] ? err.field : "engines", "%s", err.message);
            continue;
        }
        bool basilisk = strcmp(engine, "basilisk") == 0;
        s_check_program(&self, config, basilisk ? "python_executable" : "command_executable",
                        command.argv[0]);
        if (basilisk)
            s_check_script(&self, "basilisk_entrypoint", command.argv[1]);
    }

    lynx_err_t err;
    if (runner_fs_check_writable(config->output_root, &err))
        s_report(&self, false, "output_root", "%s", err.message);
    else
        s_report(&self, true, "output_root", "%s (writable)", config->output_root);
    return self.failed;
}

int runner_check_broker(const char *endpoint, zcert_t *cert, const char *broker_key, int timeout_ms,
                        char *version, size_t size, lynx_err_t *err)
{
    zsock_t *socket = zsock_new(ZMQ_DEALER);
    if (!socket)
        return lynx_err_set(err, LYNX_EINTERNAL, NULL, "cannot create a socket");
    zsock_set_linger(socket, 0);
    if (cert)
        runner_keys_secure(socket, cert, broker_key);
    int rc = -1;
    if (zsock_connect(socket, "%s", endpoint) != 0) {
        lynx_err_set(err, LYNX_EINVALID, "broker_endpoint", "connect %s: %s", endpoint,
                     zmq_strerror(zmq_errno()));
        zsock_destroy(&socket);
        return -1;
    }
    int64_t nonce = (int64_t)getpid() * 1000 + (zclock_mono() % 1000);
    lynx_msg_t *ping = lynx_msg_new(LYNX_MSG_PING);
    lynx_value_set_int(lynx_msg_body(ping), "nonce", nonce);
    //  DEALER sends queue until the connection is up, so one send is enough.
    if (lynx_msg_send(&ping, zsock_resolve(socket), NULL, err)) {
        lynx_msg_destroy(&ping);
        zsock_destroy(&socket);
        return -1;
    }
    int64_t deadline = zclock_mono() + timeout_ms;
    while (rc != 0) {
        int64_t left = deadline - zclock_mono();
        zmq_pollitem_t item = {zsock_resolve(socket), 0, ZMQ_POLLIN, 0};
        if (left <= 0 || zmq_poll(&item, 1, (long)left) <= 0) {
            lynx_err_set(err, LYNX_EUNAVAILABLE, "broker_endpoint",
                         "no answer from a broker at %s within %d ms", endpoint, timeout_ms);
            break;
        }
        lynx_err_t decode;
        lynx_msg_t *answer = lynx_msg_recv(zsock_resolve(socket), NULL, &decode);
        if (!answer) {
            lynx_err_set(err, LYNX_EPROTOCOL, "broker_endpoint",
                         "%s answered with something that is not the Lynx protocol: %s", endpoint,
                         decode.message);
            break;
        }
        bool pong = lynx_msg_id(answer) == LYNX_MSG_PONG;
        bool ours = lynx_value_get_int(lynx_msg_body(answer), "nonce", -1) == nonce;
        if (pong && ours) {
            snprintf(version, size, "%s",
                     lynx_value_get_string(lynx_msg_body(answer), "version", ""));
            rc = 0;
        } else if (!pong) {
            lynx_err_set(err, LYNX_EPROTOCOL, "broker_endpoint",
                         "%s answered %s to PING (an older broker?)", endpoint,
                         lynx_msg_command(answer));
            lynx_msg_destroy(&answer);
            break;
        }
        lynx_msg_destroy(&answer);
    }
    zsock_destroy(&socket);
    return rc;
}

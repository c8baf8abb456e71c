//  lynx batches and lynx job: the queue as a Slurm or HTCondor user reads it (every batch
//  with its progress, submitter and age) and one job with its attempt history.
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli_commands.h"
#include "lynx_json.h"
#include "lynx_time.h"

static const char s_batches_usage[] =
    "usage: lynx batches [--status S] [--active] [--submitter WHO] [--limit N] [--json]\n\n"
    "List every batch, oldest first: id, name, status, progress (jobs ended of total, with\n"
    "the running ones), submitter and age.\n\n"
    "  --status S       only batches in state S (Pending, Running, Completed, Failed,\n"
    "                   Cancelled)\n"
    "  --active         only batches still Pending or Running\n"
    "  --submitter WHO  only batches whose submitted_by is WHO ('me': $USER@host, as\n"
    "                   lynx submit sends it)\n"
    "  --limit N        batches per page requested from the gateway\n"
    "  --json           print the batches as a JSON array\n";

static const char s_job_usage[] =
    "usage: lynx job JOB_ID [--json]\n\n"
    "Show one job (batch, run, status, runner, times, error) and every attempt it took:\n"
    "runner, start and end, how the scenario ended (exit code or signal), whether it counted\n"
    "against the retries, its error and the early-termination trigger.\n\n"
    "  --json     print GET /jobs/{id} as returned\n";

//  RFC 3339 UTC ("2026-12-03T17:32:35.962Z") to epoch seconds; -1 when it is not one.
static long long s_parse_utc(const char *text)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *rest = text ? strptime(text, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
    if (!rest)
        return -1;
    return (long long)timegm(&tm);
}

//  "42s", "7m", "3h", "12d": how long ago text was, or "-".
static void s_age(const char *text, char *out, size_t size)
{
    long long then = s_parse_utc(text);
    if (then < 0) {
        snprintf(out, size, "-");
        return;
    }
    long long secs = lynx_time_now_ms() / 1000 - then;
    if (secs < 0)
        secs = 0;
    if (secs < 120)
        snprintf(out, size, "%llds", secs);
    else if (secs < 7200)
        snprintf(out, size, "%lldm", secs / 60);
    else if (secs < 172800)
        snprintf(out, size, "%lldh", secs / 3600);
    else
        snprintf(out, size, "%lldd", secs / 86400);
}

static bool s_keep(const lynx_value_t *batch, bool active, const char *submitter)
{
    const char *status = lynx_value_get_string(batch, "status", "");
    if (active && cli_batch_terminal(status))
        return false;
    if (submitter && strcmp(lynx_value_get_string(batch, "submitted_by", ""), submitter) != 0)
        return false;
    return true;
}

static void s_add_progress(lynx_value_t *row, const lynx_value_t *batch)
{
    const lynx_value_t *by_status = lynx_value_get(batch, "jobs_by_status");
    long long total = lynx_value_get_int(batch, "total_jobs", 0), ended = 0;
    const char *final[] = {"Completed", "Failed", "Timeout", "Cancelled"};
    for (size_t i = 0; i < sizeof final / sizeof final[0]; i++)
        ended += lynx_value_get_int(by_status, final[i], 0);
    char text[96];
    snprintf(text, sizeof text, "%lld/%lld %3lld%%", ended, total,
             total > 0 ? ended * 100 / total : 0);
    cli_row_add_text(row, text);
    snprintf(text, sizeof text, "%lld", (long long)lynx_value_get_int(by_status, "Running", 0));
    cli_row_add_text(row, text);
    snprintf(text, sizeof text, "%lld", (long long)lynx_value_get_int(batch, "failed_jobs", 0));
    cli_row_add_text(row, text);
}

static void s_batch_row(lynx_value_t *row, const lynx_value_t *batch)
{
    cli_row_add(row, lynx_value_get(batch, "id"));
    cli_row_add(row, lynx_value_get(batch, "name"));
    cli_row_add(row, lynx_value_get(batch, "status"));
    s_add_progress(row, batch);
    cli_row_add_text(row, lynx_value_get_string(batch, "submitted_by", "-"));
    char age[32];
    s_age(lynx_value_get_string(batch, "created_at", NULL), age, sizeof age);
    cli_row_add_text(row, age);
}

int cli_cmd_batches(cli_ctx_t *ctx, int argc, char **argv)
{
    const char *state = NULL, *limit = NULL, *submitter = NULL;
    bool active = false, json = false;
    const cli_flag_t flags[] = {{"--status", &state, NULL},        {"--limit", &limit, NULL},
                                {"--submitter", &submitter, NULL}, {"--active", NULL, &active},
                                {"--json", NULL, &json},           {NULL, NULL, NULL}};
    size_t npos = 0;
    int rc = cli_args_parse(argc, argv, flags, NULL, 0, &npos);
    if (rc != 0)
        return cli_usage(s_batches_usage, rc == 1);
    long limit_value;
    if (limit && cli_parse_long("batches", "--limit", limit, 1, 100000, &limit_value) != 0)
        return CLI_EXIT_USAGE;
    char me[160];
    if (submitter && strcmp(submitter, "me") == 0) {
        cli_submitter(me, sizeof me);
        submitter = me;
    }
    lynx_value_t *batches = lynx_value_array();
    int status = batches ? cli_list_all(ctx, "/batches", "batches", state, limit, batches)
                         : CLI_EXIT_JOBS_FAILED;
    lynx_value_t *kept = lynx_value_array();
    for (size_t i = 0; status == CLI_EXIT_OK && kept && i < lynx_value_size(batches); i++) {
        const lynx_value_t *batch = lynx_value_at(batches, i);
        lynx_value_t *copy = s_keep(batch, active, submitter) ? lynx_value_dup(batch) : NULL;
        if (copy && lynx_value_append(kept, &copy) != 0)
            lynx_value_destroy(&copy);
    }
    if (status == CLI_EXIT_OK && json) {
        char *text = lynx_json_dump(kept, 2);
        printf("%s\n", text ? text : "[]");
        free(text);
    } else if (status == CLI_EXIT_OK) {
        const char *const titles[] = {"batch_id", "name",      "status", "progress", "running",
                                      "failed",   "submitter", "age",    NULL};
        cli_print_items(stdout, titles, kept, s_batch_row);
        printf("%zu batches\n", lynx_value_size(kept));
    }
    lynx_value_destroy(&kept);
    lynx_value_destroy(&batches);
    return status;
}

//  "exit 0", "signal 9", or "-" for an attempt's scenario end.
static void s_exit_text(const lynx_value_t *attempt, char *out, size_t size)
{
    const lynx_value_t *code = lynx_value_get(attempt, "exit_code");
    const lynx_value_t *signal = lynx_value_get(attempt, "exit_signal");
    if (lynx_value_type(code) == LYNX_VALUE_INT)
        snprintf(out, size, "exit %lld", (long long)lynx_value_as_int(code));
    else if (lynx_value_type(signal) == LYNX_VALUE_INT)
        snprintf(out, size, "signal %lld", (long long)lynx_value_as_int(signal));
    else
        snprintf(out, size, "-");
}

static void s_attempt_row(lynx_value_t *row, const lynx_value_t *attempt)
{
    cli_row_add(row, lynx_value_get(attempt, "attempt"));
    cli_row_add_text(row, lynx_value_get_string(attempt, "runner_id", "-"));
    cli_row_add(row, lynx_value_get(attempt, "status"));
    cli_row_add_text(row, lynx_value_get_string(attempt, "started_at", "-"));
    cli_row_add_text(row, lynx_value_get_string(attempt, "ended_at", "-"));
    char exit_text[48];
    s_exit_text(attempt, exit_text, sizeof exit_text);
    cli_row_add_text(row, exit_text);
    cli_row_add_text(row, lynx_value_get_bool(attempt, "charged", true) ? "yes" : "no");
    const char *error = lynx_value_get_string(attempt, "error_message", "");
    const char *rule = lynx_value_get_string(lynx_value_get(attempt, "trigger"), "rule_name", NULL);
    char text[600];
    snprintf(text, sizeof text, "%.*s%s%s%s", (int)strcspn(error, "\n"), error,
             rule && *error ? "; " : "", rule ? "rule " : "", rule ? rule : "");
    cli_row_add_text(row, *text ? text : "-");
}

static void s_print_attempts(const lynx_value_t *attempts)
{
    const char *const titles[] = {"attempt", "runner",  "status",          "started", "ended",
                                  "exit",    "charged", "error / trigger", NULL};
    cli_print_items(stdout, titles, attempts, s_attempt_row);
}

int cli_cmd_job(cli_ctx_t *ctx, int argc, char **argv)
{
    const char *id = NULL;
    bool json = false;
    const cli_flag_t flags[] = {{"--json", NULL, &json}, {NULL, NULL, NULL}};
    size_t npos = 0;
    int rc = cli_args_parse(argc, argv, flags, &id, 1, &npos);
    if (rc != 0 || npos != 1)
        return cli_usage(s_job_usage, rc == 1);
    cli_http_reply_t reply;
    int status = cli_call_on(ctx, "GET", "/jobs/%s", id, NULL, &reply);
    if (status != CLI_EXIT_OK)
        return status;
    const lynx_value_t *job = reply.json;
    if (json) {
        printf("%s\n", reply.body);
    } else {
        const char *error = lynx_value_get_string(job, "error_message", NULL);
        printf("job         %s\nbatch       %s\nrun_id      %lld\nstatus      %s\n"
               "attempt     %lld (retries %lld of %lld)\nrunner      %s\ncreated     %s\n"
               "started     %s\ncompleted   %s\n",
               lynx_value_get_string(job, "id", id), lynx_value_get_string(job, "batch_id", "-"),
               (long long)lynx_value_get_int(job, "run_id", -1),
               lynx_value_get_string(job, "status", "?"),
               (long long)lynx_value_get_int(job, "attempt", 0),
               (long long)lynx_value_get_int(job, "retries", 0),
               (long long)lynx_value_get_int(job, "max_retries", 0),
               lynx_value_get_string(job, "assigned_runner", "-"),
               lynx_value_get_string(job, "created_at", "-"),
               lynx_value_get_string(job, "started_at", "-"),
               lynx_value_get_string(job, "completed_at", "-"));
        if (error)
            printf("error       %s\n", error);
        printf("\n");
        s_print_attempts(lynx_value_get(job, "attempts"));
    }
    cli_http_reply_clear(&reply);
    return status;
}

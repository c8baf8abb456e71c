//  lynx submit and lynx validate: turn a JSON or YAML study file into a POST /jobs body, send
//  it, and (submit --wait) follow the batch to its end with a progress bar or progress lines.
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "cli_commands.h"
#include "lynx_json.h"
#include "lynx_yaml.h"

#define CLI_POLL_INTERVAL_MS 500
#define CLI_PLAIN_LINE_INTERVAL_SECS 5.0

static const char *const s_job_states[] = {"Pending", "Claimed", "Running",  "Completed",
                                           "Failed",  "Timeout", "Cancelled"};

static const char s_submit_usage[] =
    "usage: lynx submit CONFIG.{json,yaml,yml} [--name N] [--runs N] [--wait]\n\n"
    "Submit a study. The file is a whole POST /jobs body ({name, config, runs_override}) or\n"
    "just its config, in JSON or YAML. Prints the batch id and its number of jobs.\n\n"
    "  --name N   batch name (default: the file's, or the file name without extension)\n"
    "  --runs N   number of runs (runs_override), 1..10000000\n"
    "  --wait     follow the batch until it ends (a live progress bar on a terminal, a\n"
    "             progress line every few seconds otherwise), then print a summary;\n"
    "             exit 1 when any job did not complete\n";

static const char s_validate_usage[] =
    "usage: lynx validate CONFIG.{json,yaml,yml} [--name N] [--runs N]\n\n"
    "Check a study without creating anything (POST /jobs?dry_run=true): prints the number of\n"
    "jobs, the seed, warnings and the first parameter sets; on an invalid config prints every\n"
    "problem as field.path: message and exits 2.\n";

static double s_now_secs(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void s_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static bool s_ends_with(const char *text, const char *suffix)
{
    size_t len = strlen(text), slen = strlen(suffix);
    return len >= slen && strcasecmp(text + len - slen, suffix) == 0;
}

//  The file's name without directory and extension, as a default batch name.
static char *s_stem(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    size_t len = dot && dot != base ? (size_t)(dot - base) : strlen(base);
    return strndup(base, len);
}

//  Read a study file: JSON for .json, YAML otherwise (YAML accepts JSON too).
static lynx_value_t *s_load_file(const char *path, lynx_err_t *err)
{
    if (!s_ends_with(path, ".json"))
        return lynx_yaml_load_file(path, err);
    FILE *file = fopen(path, "rb");
    if (!file) {
        lynx_err_set(err, LYNX_EINVALID, NULL, "%s: %m", path);
        return NULL;
    }
    char *text = NULL;
    size_t len = 0;
    FILE *copy = open_memstream(&text, &len);
    char chunk[8192];
    size_t n;
    while (copy && (n = fread(chunk, 1, sizeof chunk, file)) > 0)
        fwrite(chunk, 1, n, copy);
    bool failed = ferror(file) || !copy;
    fclose(file);
    if (copy)
        fclose(copy);
    lynx_value_t *value = NULL;
    if (failed)
        lynx_err_set(err, LYNX_EINVALID, NULL, "%s: cannot read", path);
    else if (!(value = lynx_json_parse(text, len, err))) {
        char reason[LYNX_ERR_MESSAGE_MAX];
        snprintf(reason, sizeof reason, "%s", err->message);
        lynx_err_set(err, LYNX_EINVALID, NULL, "%s: %s", path, reason);
    }
    free(text);
    return value;
}

char *cli_submit_body(lynx_value_t **doc_p, const char *path, const char *name, long runs,
                      lynx_err_t *err)
{
    lynx_value_t *doc = *doc_p;
    *doc_p = NULL;
    if (lynx_value_type(doc) != LYNX_VALUE_MAP) {
        lynx_err_set(err, LYNX_EINVALID, NULL, "%s: must hold an object, not %s", path,
                     lynx_value_type_name(lynx_value_type(doc)));
        lynx_value_destroy(&doc);
        return NULL;
    }
    lynx_value_t *body = doc;
    if (!lynx_value_get(doc, "config")) {
        //  Just a config: wrap it in a body named after the file.
        body = lynx_value_map();
        if (body && lynx_value_set(body, "config", &doc) != 0)
            lynx_value_destroy(&body);
        lynx_value_destroy(&doc);
    }
    char *stem = s_stem(path);
    int rc = body && stem ? 0 : -1;
    if (rc == 0 && name)
        rc = lynx_value_set_string(body, "name", name);
    else if (rc == 0 && !lynx_value_get(body, "name"))
        rc = lynx_value_set_string(body, "name", stem);
    if (rc == 0 && runs > 0)
        rc = lynx_value_set_int(body, "runs_override", runs);
    char submitter[160];
    cli_submitter(submitter, sizeof submitter);
    if (rc == 0 && !lynx_value_get(body, "submitted_by") && *submitter)
        rc = lynx_value_set_string(body, "submitted_by", submitter);
    char *json = rc == 0 ? lynx_json_dump(body, 0) : NULL;
    if (!json)
        lynx_err_set(err, LYNX_EINTERNAL, NULL, "out of memory");
    free(stem);
    lynx_value_destroy(&body);
    return json;
}

//  Build the POST /jobs body as JSON text from the file and the overrides; NULL after
//  printing the reason.
static char *s_build_body(const char *cmd, const char *path, const char *name, const char *runs)
{
    long runs_value = 0;
    if (runs && cli_parse_long(cmd, "--runs", runs, 1, 10000000, &runs_value) != 0)
        return NULL;
    lynx_err_t err;
    lynx_err_clear(&err);
    lynx_value_t *doc = s_load_file(path, &err);
    char *json = doc ? cli_submit_body(&doc, path, name, runs_value, &err) : NULL;
    if (!json)
        fprintf(stderr, "lynx %s: %s\n", cmd, err.message);
    return json;
}

static void s_print_warnings(FILE *stream, const lynx_value_t *warnings)
{
    for (size_t i = 0; i < lynx_value_size(warnings); i++) {
        const lynx_value_t *w = lynx_value_at(warnings, i);
        const char *field = lynx_value_get_string(w, "field", NULL);
        fputs("  warning: ", stream);
        if (field && *field)
            fprintf(stream, "%s: ", field);
        if (lynx_value_type(w) == LYNX_VALUE_MAP)
            fputs(lynx_value_get_string(w, "message", ""), stream);
        else
            cli_print_scalar(stream, w, 6);
        fputc('\n', stream);
    }
}

//  -- progress -----------------------------------------------------------------------------

typedef struct {
    const char *status;
    int64_t total;
    int64_t done;
    int64_t counts[sizeof s_job_states / sizeof s_job_states[0]];
    const lynx_value_t *throughput; //  jobs per minute, or null
    const lynx_value_t *eta_mins;   //  or null
} s_progress_t;

static void s_progress_read(const lynx_value_t *body, s_progress_t *p)
{
    const lynx_value_t *batch = lynx_value_get(body, "batch");
    const lynx_value_t *by_status = lynx_value_get(body, "jobs_by_status");
    p->status = lynx_value_get_string(batch, "status", "?");
    p->total = lynx_value_get_int(batch, "total_jobs", 0);
    p->done = 0;
    for (size_t i = 0; i < sizeof s_job_states / sizeof s_job_states[0]; i++) {
        p->counts[i] = lynx_value_get_int(by_status, s_job_states[i], 0);
        if (i >= 3)
            p->done += p->counts[i];
    }
    p->throughput = lynx_value_get(body, "throughput_jobs_per_minute");
    p->eta_mins = lynx_value_get(body, "estimated_completion_time_mins");
}

//  "Completed 5, Running 2" (non-zero states only) then throughput and ETA.
static void s_progress_details(FILE *stream, const s_progress_t *p, const char *sep)
{
    bool first = true;
    for (size_t i = 0; i < sizeof s_job_states / sizeof s_job_states[0]; i++) {
        if (p->counts[i] == 0)
            continue;
        fprintf(stream, "%s%s %lld", first ? "" : sep, s_job_states[i], (long long)p->counts[i]);
        first = false;
    }
    if (lynx_value_is_number(p->throughput))
        fprintf(stream, " | %.1f jobs/min", lynx_value_as_double(p->throughput));
    if (lynx_value_is_number(p->eta_mins) && !cli_batch_terminal(p->status)) {
        long secs = (long)(lynx_value_as_double(p->eta_mins) * 60.0 + 0.5);
        fprintf(stream, " | ETA %ldm%02lds", secs / 60, secs % 60);
    }
}

static int s_terminal_columns(void)
{
    struct winsize ws;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20)
        return ws.ws_col;
    return 80;
}

//  One line redrawn in place: [#####.....] done/total states | throughput | ETA.
static void s_progress_bar(const s_progress_t *p)
{
    char *line = NULL;
    size_t len = 0;
    FILE *stream = open_memstream(&line, &len);
    if (!stream)
        return;
    enum { BAR_WIDTH = 24 };
    int filled = p->total > 0 ? (int)(p->done * BAR_WIDTH / p->total) : 0;
    fputc('[', stream);
    for (int i = 0; i < BAR_WIDTH; i++)
        fputc(i < filled ? '#' : '.', stream);
    fprintf(stream, "] %lld/%lld ", (long long)p->done, (long long)p->total);
    s_progress_details(stream, p, " ");
    fclose(stream);
    int width = s_terminal_columns() - 1;
    printf("\r\033[K%.*s", width, line);
    fflush(stdout);
    free(line);
}

static void s_progress_line(const s_progress_t *p, double elapsed_secs)
{
    printf("[%6.1fs] %s %lld/%lld done: ", elapsed_secs, p->status, (long long)p->done,
           (long long)p->total);
    s_progress_details(stdout, p, ", ");
    putchar('\n');
    fflush(stdout);
}

//  Poll GET /batches/{id} until the batch ends, then print a summary.
static int s_wait(cli_ctx_t *ctx, const char *batch_id, double started_secs)
{
    char *path = cli_path(ctx, "/batches/%s", batch_id);
    if (!path)
        return CLI_EXIT_JOBS_FAILED;
    double last_line_secs = -1e9;
    bool drawn = false;
    int status;
    s_progress_t p;
    while (true) {
        cli_http_reply_t reply;
        if ((status = cli_call(ctx, "GET", path, NULL, &reply)) != CLI_EXIT_OK)
            break;
        s_progress_read(reply.json, &p);
        double now = s_now_secs();
        bool terminal = cli_batch_terminal(p.status);
        if (ctx->stdout_tty) {
            s_progress_bar(&p);
            drawn = true;
        } else if (terminal || now - last_line_secs >= CLI_PLAIN_LINE_INTERVAL_SECS) {
            s_progress_line(&p, now - started_secs);
            last_line_secs = now;
        }
        if (terminal) {
            if (drawn)
                putchar('\n');
            printf("batch %s %s in %.1f s: %lld completed, %lld failed, %lld timeout, "
                   "%lld cancelled (of %lld)\n",
                   batch_id, p.status, now - started_secs, (long long)p.counts[3],
                   (long long)p.counts[4], (long long)p.counts[5], (long long)p.counts[6],
                   (long long)p.total);
            status = strcmp(p.status, "Completed") == 0 && p.counts[3] == p.total
                         ? CLI_EXIT_OK
                         : CLI_EXIT_JOBS_FAILED;
            cli_http_reply_clear(&reply);
            break;
        }
        cli_http_reply_clear(&reply);
        s_sleep_ms(CLI_POLL_INTERVAL_MS);
    }
    if (status != CLI_EXIT_OK && drawn && !cli_batch_terminal(p.status))
        putchar('\n');
    free(path);
    return status;
}

//  -- commands -----------------------------------------------------------------------------

int cli_cmd_submit(cli_ctx_t *ctx, int argc, char **argv)
{
    const char *name = NULL, *runs = NULL, *file = NULL;
    bool wait = false;
    const cli_flag_t flags[] = {
        {"--name", &name, NULL}, {"--runs", &runs, NULL}, {"--wait", NULL, &wait}, {NULL}};
    size_t npos = 0;
    int rc = cli_args_parse(argc, argv, flags, &file, 1, &npos);
    if (rc != 0 || npos != 1)
        return cli_usage(s_submit_usage, rc == 1);
    char *body = s_build_body("submit", file, name, runs);
    if (!body)
        return CLI_EXIT_USAGE;
    double started_secs = s_now_secs();
    cli_http_reply_t reply;
    int status = cli_call(ctx, "POST", "/jobs", body, &reply);
    free(body);
    if (status != CLI_EXIT_OK)
        return status;
    const char *batch_id = lynx_value_get_string(reply.json, "batch_id", "");
    printf("submitted batch %s: %lld jobs, seed ", batch_id,
           (long long)lynx_value_get_int(reply.json, "total_jobs", 0));
    cli_print_scalar(stdout, lynx_value_get(reply.json, "seed"), 17);
    putchar('\n');
    s_print_warnings(stderr, lynx_value_get(reply.json, "warnings"));
    fflush(stdout);
    if (wait)
        status = s_wait(ctx, batch_id, started_secs);
    cli_http_reply_clear(&reply);
    return status;
}

int cli_cmd_validate(cli_ctx_t *ctx, int argc, char **argv)
{
    const char *name = NULL, *runs = NULL, *file = NULL;
    const cli_flag_t flags[] = {{"--name", &name, NULL}, {"--runs", &runs, NULL}, {NULL}};
    size_t npos = 0;
    int rc = cli_args_parse(argc, argv, flags, &file, 1, &npos);
    if (rc != 0 || npos != 1)
        return cli_usage(s_validate_usage, rc == 1);
    char *body = s_build_body("validate", file, name, runs);
    if (!body)
        return CLI_EXIT_USAGE;
    cli_http_reply_t reply;
    int status = cli_call(ctx, "POST", "/jobs?dry_run=true", body, &reply);
    free(body);
    if (status != CLI_EXIT_OK)
        return status;
    const lynx_value_t *warnings = lynx_value_get(reply.json, "warnings");
    printf("valid: %lld jobs, seed ", (long long)lynx_value_get_int(reply.json, "total_jobs", 0));
    cli_print_scalar(stdout, lynx_value_get(reply.json, "seed"), 17);
    printf(", sampling %s, %zu warning%s\n",
           lynx_value_get_string(reply.json, "sampling_method", "?"), lynx_value_size(warnings),
           lynx_value_size(warnings) == 1 ? "" : "s");
    s_print_warnings(stdout, warnings);
    const lynx_value_t *sets = lynx_value_get(reply.json, "parameters");
    lynx_value_t *rows = lynx_value_array();
    for (size_t i = 0; rows && i < lynx_value_size(sets); i++) {
        const lynx_value_t *set = lynx_value_at(sets, i);
        lynx_value_t *row = lynx_value_array();
        if (i == 0) {
            lynx_value_t *header = lynx_value_array();
            cli_row_add_text(header, "run");
            for (size_t k = 0; k < lynx_value_size(set); k++)
                cli_row_add_text(header, lynx_value_key_at(set, k));
            cli_table_append(rows, &header);
            lynx_value_destroy(&header);
        }
        char run[32];
        snprintf(run, sizeof run, "%zu", i);
        cli_row_add_text(row, run);
        for (size_t k = 0; k < lynx_value_size(set); k++)
            cli_row_add(row, lynx_value_at(set, k));
        cli_table_append(rows, &row);
        lynx_value_destroy(&row);
    }
    if (lynx_value_size(rows) > 0) {
        printf("first %zu parameter sets:\n", lynx_value_size(sets));
        cli_print_table(stdout, rows);
    }
    lynx_value_destroy(&rows);
    cli_http_reply_clear(&reply);
    return CLI_EXIT_OK;
}

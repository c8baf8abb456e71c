//  lynx status, results, jobs and cancel: reading and stopping one batch.
#include <stdlib.h>
#include <string.h>

#include "cli_commands.h"
#include "lynx_json.h"

static const char s_status_usage[] =
    "usage: lynx status BATCH_ID [--json]\n\n"
    "Show a batch's progress: status, submitter, jobs per state, throughput, ETA and, while\n"
    "jobs wait, why (waiting_reason). Exits 1 when the batch ended and not Completed.\n\n"
    "  --json     print GET /batches/{id} as returned\n";

static const char s_results_usage[] =
    "usage: lynx results BATCH_ID [--csv | --json]\n\n"
    "Show a batch's results, one row per job in run_id order: run_id, job_id, status,\n"
    "success, execution time, the job's parameters and its error. Exits 1 when the batch\n"
    "ended and not Completed.\n\n"
    "  --csv      the same as CSV with a header row (pandas.read_csv reads it)\n"
    "  --json     print GET /batches/{id}/results as returned\n";

static const char s_jobs_usage[] =
    "usage: lynx jobs BATCH_ID [--status S] [--limit N]\n\n"
    "List a batch's jobs in run_id order, following every page of the cursor.\n\n"
    "  --status S  only jobs in state S (Pending, Claimed, Running, Completed, Failed,\n"
    "              Timeout, Cancelled)\n"
    "  --limit N   jobs per page requested from the gateway (default: the gateway's)\n";

static const char s_cancel_usage[] =
    "usage: lynx cancel BATCH_ID\n"
    "       lynx cancel --job JOB_ID\n\n"
    "Cancel a batch (Pending jobs end Cancelled, running ones are killed) or one job. Exits 2\n"
    "when it had already ended (409).\n";

//  Parse "CMD ID [flags]" with exactly one positional id; returns -1 when usage was printed
//  (with *exit_p set) and 0 otherwise.
static int s_parse_id(int argc, char **argv, const cli_flag_t *flags, const char *usage,
                      const char **id_p, int *exit_p)
{
    size_t npos = 0;
    int rc = cli_args_parse(argc, argv, flags, id_p, 1, &npos);
    if (rc != 0 || npos != 1) {
        *exit_p = cli_usage(usage, rc == 1);
        return -1;
    }
    return 0;
}

//  Append every job of the batch (all pages) to jobs. Returns an exit status.
static int s_walk_jobs(cli_ctx_t *ctx, const char *batch_id, const char *state, const char *limit,
                       lynx_value_t *jobs)
{
    char *base = cli_path(ctx, "/batches/%s/jobs", batch_id);
    int status = base ? cli_list_all(ctx, base, "jobs", state, limit, jobs) : CLI_EXIT_JOBS_FAILED;
    free(base);
    return status;
}

int cli_cmd_status(cli_ctx_t *ctx, int argc, char **argv)
{
    const char *id = NULL;
    bool json = false;
    const cli_flag_t flags[] = {{"--json", NULL, &json}, {NULL}};
    int status;
    if (s_parse_id(argc, argv, flags, s_status_usage, &id, &status) != 0)
        return status;
    cli_http_reply_t reply;
    status = cli_call_on(ctx, "GET", "/batches/%s", id, NULL, &reply);
    if (status != CLI_EXIT_OK)
        return status;
    const lynx_value_t *batch = lynx_value_get(reply.json, "batch");
    const char *state = lynx_value_get_string(batch, "status", "?");
    if (json) {
        printf("%s\n", reply.body);
    } else {
        const lynx_value_t *by_status = lynx_value_get(reply.json, "jobs_by_status");
        printf("batch       %s\nname        %s\nstatus      %s\nsubmitter   %s\ncreated     %s\n"
               "seed        ",
               lynx_value_get_string(batch, "id", id), lynx_value_get_string(batch, "name", ""),
               state, lynx_value_get_string(batch, "submitted_by", "-"),
               lynx_value_get_string(batch, "created_at", ""));
        cli_print_scalar(stdout, lynx_value_get(batch, "seed"), 17);
        printf("\njobs        %lld total, %lld completed, %lld failed\nby status  ",
               (long long)lynx_value_get_int(batch, "total_jobs", 0),
               (long long)lynx_value_get_int(batch, "completed_jobs", 0),
               (long long)lynx_value_get_int(batch, "failed_jobs", 0));
        for (size_t i = 0; i < lynx_value_size(by_status); i++) {
            printf(" %s %lld", lynx_value_key_at(by_status, i),
                   (long long)lynx_value_as_int(lynx_value_at(by_status, i)));
        }
        const lynx_value_t *throughput = lynx_value_get(reply.json, "throughput_jobs_per_minute");
        const lynx_value_t *eta = lynx_value_get(reply.json, "estimated_completion_time_mins");
        printf("\nthroughput  ");
        if (lynx_value_is_number(throughput))
            printf("%.1f jobs/min", lynx_value_as_double(throughput));
        else
            printf("-");
        printf("\neta         ");
        if (lynx_value_is_number(eta))
            printf("%.1f min", lynx_value_as_double(eta));
        else
            printf("-");
        //  Why Pending jobs are not taken (no runner with the engine, all busy, ...).
        const char *waiting = lynx_value_get_string(reply.json, "waiting_reason", NULL);
        if (waiting && *waiting)
            printf("\nwaiting     %s", waiting);
        putchar('\n');
    }
    status = cli_batch_exit(state);
    cli_http_reply_clear(&reply);
    return status;
}

//  The result of job_id in a results array, or NULL.
static const lynx_value_t *s_find_result(const lynx_value_t *results, const char *job_id)
{
    for (size_t i = 0; i < lynx_value_size(results); i++) {
        const lynx_value_t *result = lynx_value_at(results, i);
        if (strcmp(lynx_value_get_string(result, "job_id", ""), job_id) == 0)
            return result;
    }
    return NULL;
}

//  One row per job: run_id, job_id, status, success, execution_time_secs, parameters...,
//  error_message. Rows are arrays of values (not yet formatted).
static lynx_value_t *s_result_rows(const lynx_value_t *jobs, const lynx_value_t *results)
{
    lynx_value_t *rows = lynx_value_array();
    const lynx_value_t *first_params =
        lynx_value_get_path(lynx_value_at(jobs, 0), "run_config.parameters");
    lynx_value_t *header = lynx_value_array();
    const char *fixed[] = {"run_id", "job_id", "status", "success", "execution_time_secs"};
    for (size_t i = 0; header && i < sizeof fixed / sizeof fixed[0]; i++)
        cli_row_add_text(header, fixed[i]);
    for (size_t k = 0; header && k < lynx_value_size(first_params); k++)
        cli_row_add_text(header, lynx_value_key_at(first_params, k));
    cli_row_add_text(header, "error_message");
    if (!rows || !header || cli_table_append(rows, &header) != 0) {
        lynx_value_destroy(&header);
        lynx_value_destroy(&rows);
        return NULL;
    }
    for (size_t j = 0; j < lynx_value_size(jobs); j++) {
        const lynx_value_t *job = lynx_value_at(jobs, j);
        const char *job_id = lynx_value_get_string(job, "id", "");
        const lynx_value_t *result = s_find_result(results, job_id);
        const lynx_value_t *params = lynx_value_get_path(job, "run_config.parameters");
        const lynx_value_t *error = lynx_value_get(result, "error_message");
        if (!error || lynx_value_type(error) == LYNX_VALUE_NULL)
            error = lynx_value_get(job, "error_message");
        const lynx_value_t *cells[] = {
            lynx_value_get(job, "run_id"),
            lynx_value_get(job, "id"),
            lynx_value_get(job, "status"),
            lynx_value_get(result, "success"),
            lynx_value_get(result, "execution_time_secs"),
        };
        lynx_value_t *row = lynx_value_array();
        int rc = row ? 0 : -1;
        for (size_t i = 0; rc == 0 && i < sizeof cells / sizeof cells[0]; i++) {
            lynx_value_t *cell = cells[i] ? lynx_value_dup(cells[i]) : lynx_value_null();
            rc = lynx_value_append(row, &cell);
            lynx_value_destroy(&cell);
        }
        for (size_t k = 0; rc == 0 && k < lynx_value_size(first_params); k++) {
            const lynx_value_t *v = lynx_value_get(params, lynx_value_key_at(first_params, k));
            lynx_value_t *cell = v ? lynx_value_dup(v) : lynx_value_null();
            rc = lynx_value_append(row, &cell);
            lynx_value_destroy(&cell);
        }
        lynx_value_t *cell = error ? lynx_value_dup(error) : lynx_value_null();
        if (rc == 0)
            rc = lynx_value_append(row, &cell);
        lynx_value_destroy(&cell);
        if (rc == 0)
            rc = cli_table_append(rows, &row);
        lynx_value_destroy(&row);
        if (rc != 0) {
            lynx_value_destroy(&rows);
            return NULL;
        }
    }
    return rows;
}

static void s_print_csv(const lynx_value_t *rows)
{
    for (size_t r = 0; r < lynx_value_size(rows); r++) {
        const lynx_value_t *row = lynx_value_at(rows, r);
        for (size_t c = 0; c < lynx_value_size(row); c++) {
            if (c > 0)
                putchar(',');
            cli_print_csv_field(stdout, lynx_value_at(row, c));
        }
        putchar('\n');
    }
}

//  The table form: cells formatted, the error cut to its first line.
static void s_print_results_table(const lynx_value_t *rows)
{
    lynx_value_t *table = lynx_value_array();
    for (size_t r = 0; table && r < lynx_value_size(rows); r++) {
        const lynx_value_t *row = lynx_value_at(rows, r);
        lynx_value_t *out = lynx_value_array();
        size_t n = lynx_value_size(row);
        for (size_t c = 0; out && c < n; c++) {
            const lynx_value_t *cell = lynx_value_at(row, c);
            if (c + 1 == n && lynx_value_type(cell) == LYNX_VALUE_STRING) {
                const char *text = lynx_value_as_string(cell);
                char *line = strndup(text, strcspn(text, "\n"));
                cli_row_add_text(out, line);
                free(line);
            } else {
                cli_row_add(out, cell);
            }
        }
        cli_table_append(table, &out);
        lynx_value_destroy(&out);
    }
    cli_print_table(stdout, table);
    lynx_value_destroy(&table);
}

int cli_cmd_results(cli_ctx_t *ctx, int argc, char **argv)
{
    const char *id = NULL;
    bool json = false, csv = false;
    const cli_flag_t flags[] = {{"--json", NULL, &json}, {"--csv", NULL, &csv}, {NULL}};
    int status;
    if (s_parse_id(argc, argv, flags, s_results_usage, &id, &status) != 0)
        return status;
    if (json && csv) {
        fprintf(stderr, "lynx results: --json and --csv exclude each other\n");
        return CLI_EXIT_USAGE;
    }
    cli_http_reply_t reply;
    status = cli_call_on(ctx, "GET", "/batches/%s/results", id, NULL, &reply);
    if (status != CLI_EXIT_OK)
        return status;
    const char *state = lynx_value_get_string(reply.json, "status", "?");
    if (json) {
        printf("%s\n", reply.body);
    } else {
        lynx_value_t *jobs = lynx_value_array();
        status = jobs ? s_walk_jobs(ctx, id, NULL, NULL, jobs) : CLI_EXIT_JOBS_FAILED;
        lynx_value_t *rows = NULL;
        if (status == CLI_EXIT_OK) {
            rows = s_result_rows(jobs, lynx_value_get(reply.json, "results"));
            if (!rows)
                status = CLI_EXIT_JOBS_FAILED;
        }
        if (rows && csv)
            s_print_csv(rows);
        else if (rows)
            s_print_results_table(rows);
        lynx_value_destroy(&rows);
        lynx_value_destroy(&jobs);
    }
    if (status == CLI_EXIT_OK)
        status = cli_batch_exit(state);
    cli_http_reply_clear(&reply);
    return status;
}

//  run_id, job_id, status, retries, runner, and the error's first line.
static void s_job_row(lynx_value_t *row, const lynx_value_t *job)
{
    const char *keys[] = {"run_id", "id", "status", "retries", "assigned_runner"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        cli_row_add(row, lynx_value_get(job, keys[i]));
    const char *error = lynx_value_get_string(job, "error_message", "");
    char *line = strndup(error, strcspn(error, "\n"));
    cli_row_add_text(row, line ? line : "");
    free(line);
}

int cli_cmd_jobs(cli_ctx_t *ctx, int argc, char **argv)
{
    const char *id = NULL, *state = NULL, *limit = NULL;
    const cli_flag_t flags[] = {{"--status", &state, NULL}, {"--limit", &limit, NULL}, {NULL}};
    int status;
    if (s_parse_id(argc, argv, flags, s_jobs_usage, &id, &status) != 0)
        return status;
    long limit_value;
    if (limit && cli_parse_long("jobs", "--limit", limit, 1, 100000, &limit_value) != 0)
        return CLI_EXIT_USAGE;
    lynx_value_t *jobs = lynx_value_array();
    status = jobs ? s_walk_jobs(ctx, id, state, limit, jobs) : CLI_EXIT_JOBS_FAILED;
    const char *const titles[] = {"run_id", "job_id", "status", "retries", "runner", "error", NULL};
    if (status == CLI_EXIT_OK) {
        cli_print_items(stdout, titles, jobs, s_job_row);
        printf("%zu jobs\n", lynx_value_size(jobs));
    }
    lynx_value_destroy(&jobs);
    return status;
}

int cli_cmd_cancel(cli_ctx_t *ctx, int argc, char **argv)
{
    const char *job = NULL, *batch = NULL;
    const cli_flag_t flags[] = {{"--job", &job, NULL}, {NULL}};
    size_t npos = 0;
    int rc = cli_args_parse(argc, argv, flags, &batch, 1, &npos);
    if (rc != 0 || (job ? npos != 0 : npos != 1))
        return cli_usage(s_cancel_usage, rc == 1);
    cli_http_reply_t reply;
    int status = cli_call_on(ctx, "POST", job ? "/jobs/%s/cancel" : "/batches/%s/cancel",
                             job ? job : batch, "{}", &reply);
    if (status != CLI_EXIT_OK)
        return status;
    if (job) {
        printf("job %s: cancel requested, status ", job);
        cli_print_scalar(stdout, lynx_value_get(reply.json, "status"), 6);
        putchar('\n');
    } else {
        printf("batch %s: %lld pending jobs cancelled, %lld running jobs stopping\n", batch,
               (long long)lynx_value_get_int(reply.json, "cancelled_jobs", 0),
               (long long)lynx_value_get_int(reply.json, "stopping_jobs", 0));
    }
    cli_http_reply_clear(&reply);
    return CLI_EXIT_OK;
}

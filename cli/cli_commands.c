#include "cli_commands.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lynx_json.h"
#include "lynx_options.h"

const cli_command_t cli_commands[] = {
    {"submit", cli_cmd_submit, "submit a study (JSON or YAML) and optionally --wait for it"},
    {"validate", cli_cmd_validate, "check a study config without creating anything"},
    {"batches", cli_cmd_batches, "list every batch: status, progress, submitter, age"},
    {"status", cli_cmd_status, "show a batch's progress and why its jobs wait"},
    {"watch", cli_cmd_watch, "follow a batch live: a line per running job (--raw: stream)"},
    {"results", cli_cmd_results, "show a batch's results as a table, --csv or --json"},
    {"jobs", cli_cmd_jobs, "list a batch's jobs (every page), optionally --status S"},
    {"job", cli_cmd_job, "show one job and its attempt history"},
    {"cancel", cli_cmd_cancel, "cancel a batch, or one job with --job JOB_ID"},
    {"runners", cli_cmd_runners, "list the runners"},
    {"drain", cli_cmd_drain, "put a runner in Maintenance (running jobs finish)"},
    {"resume", cli_cmd_resume, "take a runner out of Maintenance or quarantine"},
    {"enrollments", cli_cmd_enrollments, "list runners' requests to join (admin)"},
    {"approve", cli_cmd_approve, "enroll a runner's key (admin)"},
    {"reject", cli_cmd_reject, "refuse a runner's request to join (admin)"},
    {"revoke", cli_cmd_revoke, "revoke a runner's key: drop it, retry its jobs (admin)"},
    {"artifacts", cli_cmd_artifacts, "list or download a job's files (or one file of every run)"},
    {"logs", cli_cmd_logs, "print a job's stdout (--stderr), or its last --tail N lines"},
    {NULL, NULL, NULL},
};

int cli_args_parse(int argc, char **argv, const cli_flag_t *flags, const char **positional,
                   size_t max_positional, size_t *npositional)
{
    lynx_option_t options[CLI_FLAGS_MAX];
    size_t count = 0;
    for (const cli_flag_t *flag = flags; flag && flag->flag && count < CLI_FLAGS_MAX; flag++)
        options[count++] = (lynx_option_t){.flag = flag->flag, .is_switch = flag->bool_p != NULL};
    //  positional may be NULL with max 0: still a command, whose stray words are unexpected.
    const char *none[1];
    lynx_err_t err;
    int rc = lynx_options_scan(options, count, argc, argv, positional ? positional : none,
                               max_positional, npositional, &err);
    if (rc < 0) {
        fprintf(stderr, "lynx %s: %s\n", argv[0], err.message);
        return -1;
    }
    for (size_t i = 0; rc == 0 && i < count; i++) {
        if (!options[i].value)
            continue;
        if (flags[i].bool_p)
            *flags[i].bool_p = true;
        else
            *flags[i].value_p = options[i].value;
    }
    return rc;
}

int cli_usage(const char *usage, bool want_help)
{
    fputs(usage, want_help ? stdout : stderr);
    return want_help ? CLI_EXIT_OK : CLI_EXIT_USAGE;
}

//  Who submits: $USER@host (LOGNAME, then the uid, when USER is unset), printable ASCII only
//  and at most 128 characters, as POST /jobs accepts for submitted_by.
void cli_submitter(char *out, size_t size)
{
    const char *user = getenv("USER");
    if (!user || !*user)
        user = getenv("LOGNAME");
    char uid[32], host[256] = "";
    if (!user || !*user) {
        snprintf(uid, sizeof uid, "uid%ld", (long)getuid());
        user = uid;
    }
    gethostname(host, sizeof host - 1);
    char raw[512];
    snprintf(raw, sizeof raw, "%s%s%s", user, *host ? "@" : "", host);
    size_t length = 0;
    for (const char *at = raw; *at && length + 1 < size && length < 128; at++)
        if (*at > ' ' && *at < 0x7f)
            out[length++] = *at;
    out[length] = '\0';
}

int cli_parse_long(const char *cmd, const char *flag, const char *text, long min, long max,
                   long *value_p)
{
    char *end = NULL;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (errno || end == text || *end != '\0' || value < min || value > max) {
        fprintf(stderr, "lynx %s: %s: must be an integer between %ld and %ld, got '%s'\n", cmd,
                flag, min, max, text);
        return -1;
    }
    *value_p = value;
    return 0;
}

//  "field: message" when there is a field, else "message".
static void s_print_problem(const lynx_value_t *problem)
{
    const char *field = lynx_value_get_string(problem, "field", NULL);
    const char *message = lynx_value_get_string(problem, "message", "(no message)");
    if (field && *field)
        fprintf(stderr, "  %s: %s\n", field, message);
    else
        fprintf(stderr, "  %s\n", message);
}

//  Print an API error body: the error line, then each entry of "errors".
static void s_print_api_error(const char *method, const char *path, const cli_http_reply_t *reply)
{
    const lynx_value_t *error = lynx_value_get(reply->json, "error");
    if (!error) {
        fprintf(stderr, "lynx: %s %s: HTTP %ld: %.200s\n", method, path, reply->status,
                reply->body ? reply->body : "");
        return;
    }
    const char *field = lynx_value_get_string(error, "field", NULL);
    const char *message = lynx_value_get_string(error, "message", "(no message)");
    size_t field_len = field ? strlen(field) : 0;
    bool named = field_len > 0 && strncmp(message, field, field_len) == 0 &&
                 message[field_len] == ':'; //  the message already starts with the field
    if (field_len > 0 && !named)
        fprintf(stderr, "error: %s: %s\n", field, message);
    else
        fprintf(stderr, "error: %s\n", message);
    const lynx_value_t *errors = lynx_value_get(reply->json, "errors");
    for (size_t i = 0; i < lynx_value_size(errors); i++)
        s_print_problem(lynx_value_at(errors, i));
}

int cli_list_all(cli_ctx_t *ctx, const char *base, const char *key, const char *state,
                 const char *limit, lynx_value_t *items)
{
    char *cursor = NULL;
    int status = CLI_EXIT_OK;
    while (status == CLI_EXIT_OK) {
        char *path = NULL;
        size_t len = 0;
        FILE *stream = open_memstream(&path, &len);
        if (!stream) {
            status = CLI_EXIT_JOBS_FAILED;
            break;
        }
        fprintf(stream, "%s?", base);
        const char *keys[] = {"status", "limit", "cursor"};
        const char *values[] = {state, limit, cursor};
        for (size_t i = 0; i < 3; i++) {
            char *escaped = values[i] ? cli_http_escape(ctx->http, values[i]) : NULL;
            if (escaped)
                fprintf(stream, "&%s=%s", keys[i], escaped);
            free(escaped);
        }
        fclose(stream);
        cli_http_reply_t reply;
        status = cli_call(ctx, "GET", path, NULL, &reply);
        free(path);
        if (status != CLI_EXIT_OK)
            break;
        const lynx_value_t *page = lynx_value_get(reply.json, key);
        for (size_t i = 0; i < lynx_value_size(page); i++) {
            lynx_value_t *item = lynx_value_dup(lynx_value_at(page, i));
            if (!item || lynx_value_append(items, &item) != 0) {
                lynx_value_destroy(&item);
                status = CLI_EXIT_JOBS_FAILED;
            }
        }
        const lynx_value_t *next = lynx_value_get(reply.json, "next_cursor");
        free(cursor);
        cursor = NULL;
        if (lynx_value_type(next) == LYNX_VALUE_STRING)
            cursor = strdup(lynx_value_as_string(next));
        else if (lynx_value_type(next) == LYNX_VALUE_INT &&
                 asprintf(&cursor, "%lld", (long long)lynx_value_as_int(next)) < 0)
            cursor = NULL;
        bool more = lynx_value_type(next) != LYNX_VALUE_NULL && lynx_value_size(page) > 0;
        cli_http_reply_clear(&reply);
        if (!more)
            break;
        if (!cursor)
            status = CLI_EXIT_JOBS_FAILED;
    }
    free(cursor);
    return status;
}

int cli_call(cli_ctx_t *ctx, const char *method, const char *path, const char *json_body,
             cli_http_reply_t *reply)
{
    lynx_err_t err;
    lynx_err_clear(&err);
    if (cli_http_request(ctx->http, method, path, json_body, reply, &err) != 0) {
        fprintf(stderr, "lynx: gateway unreachable: %s\n", err.message);
        return err.code == LYNX_EUNAVAILABLE ? CLI_EXIT_UNREACHABLE : CLI_EXIT_JOBS_FAILED;
    }
    if (reply->status >= 200 && reply->status < 300 && reply->json)
        return CLI_EXIT_OK;
    return cli_call_failed(ctx, method, path, reply);
}

int cli_call_failed(cli_ctx_t *ctx, const char *method, const char *path, cli_http_reply_t *reply)
{
    int status = CLI_EXIT_JOBS_FAILED;
    if (reply->status == 503) {
        fprintf(stderr, "lynx: gateway at %s answers 503 (broker unreachable)\n",
                cli_http_url(ctx->http));
        status = CLI_EXIT_UNREACHABLE;
    } else {
        s_print_api_error(method, path, reply);
        if (reply->status >= 400 && reply->status < 500)
            status = CLI_EXIT_USAGE;
    }
    cli_http_reply_clear(reply);
    return status;
}

char *cli_path(cli_ctx_t *ctx, const char *format, const char *id)
{
    char *escaped = cli_http_escape(ctx->http, id);
    if (!escaped)
        return NULL;
    char *path = NULL;
    if (asprintf(&path, format, escaped) < 0)
        path = NULL;
    free(escaped);
    return path;
}

int cli_call_on(cli_ctx_t *ctx, const char *method, const char *format, const char *id,
                const char *json_body, cli_http_reply_t *reply)
{
    char *path = cli_path(ctx, format, id);
    *reply = (cli_http_reply_t){0};
    int status = path ? cli_call(ctx, method, path, json_body, reply) : CLI_EXIT_JOBS_FAILED;
    free(path);
    return status;
}

void cli_print_scalar(FILE *stream, const lynx_value_t *value, int digits)
{
    switch (lynx_value_type(value)) {
    case LYNX_VALUE_NULL:
        break;
    case LYNX_VALUE_BOOL:
        fputs(lynx_value_as_bool(value) ? "true" : "false", stream);
        break;
    case LYNX_VALUE_INT:
        fprintf(stream, "%" PRId64, lynx_value_as_int(value));
        break;
    case LYNX_VALUE_DOUBLE: {
        //  The shortest form that reads back as the same double, within digits.
        double number = lynx_value_as_double(value);
        char text[64];
        for (int d = digits < 15 ? digits : 15; d <= digits; d++) {
            snprintf(text, sizeof text, "%.*g", d, number);
            if (strtod(text, NULL) == number)
                break;
        }
        fputs(text, stream);
    } break;
    case LYNX_VALUE_STRING:
        fputs(lynx_value_as_string(value), stream);
        break;
    default: {
        char *json = lynx_json_dump(value, 0);
        fputs(json ? json : "", stream);
        free(json);
        break;
    }
    }
}

void cli_print_csv_field(FILE *stream, const lynx_value_t *value)
{
    if (lynx_value_type(value) != LYNX_VALUE_STRING) {
        cli_print_scalar(stream, value, 17);
        return;
    }
    const char *text = lynx_value_as_string(value);
    if (!strpbrk(text, ",\"\r\n")) {
        fputs(text, stream);
        return;
    }
    fputc('"', stream);
    for (const char *p = text; *p; p++) {
        if (*p == '"')
            fputc('"', stream);
        fputc(*p, stream);
    }
    fputc('"', stream);
}

bool cli_batch_terminal(const char *status)
{
    return status && (strcmp(status, "Completed") == 0 || strcmp(status, "Failed") == 0 ||
                      strcmp(status, "Cancelled") == 0);
}

int cli_batch_exit(const char *status)
{
    if (cli_batch_terminal(status) && strcmp(status, "Completed") != 0)
        return CLI_EXIT_JOBS_FAILED;
    return CLI_EXIT_OK;
}

int cli_row_add_text(lynx_value_t *row, const char *text)
{
    lynx_value_t *cell = lynx_value_string(text ? text : "");
    if (!cell || lynx_value_append(row, &cell) != 0) {
        lynx_value_destroy(&cell);
        return -1;
    }
    return 0;
}

int cli_row_add(lynx_value_t *row, const lynx_value_t *value)
{
    char *text = NULL;
    size_t len = 0;
    FILE *stream = open_memstream(&text, &len);
    if (!stream)
        return -1;
    cli_print_scalar(stream, value, 6);
    fclose(stream);
    int rc = cli_row_add_text(row, text);
    free(text);
    return rc;
}

int cli_table_append(lynx_value_t *rows, lynx_value_t **row_p)
{
    return lynx_value_append(rows, row_p);
}

lynx_value_t *cli_table_new(const char *const titles[])
{
    lynx_value_t *rows = lynx_value_array();
    lynx_value_t *header = lynx_value_array();
    for (size_t i = 0; header && titles[i]; i++)
        if (cli_row_add_text(header, titles[i]))
            lynx_value_destroy(&header);
    if (!rows || !header || cli_table_append(rows, &header)) {
        lynx_value_destroy(&header);
        lynx_value_destroy(&rows);
    }
    return rows;
}

void cli_print_items(FILE *stream, const char *const titles[], const lynx_value_t *items,
                     cli_row_fn *fill)
{
    lynx_value_t *rows = cli_table_new(titles);
    for (size_t i = 0; rows && i < lynx_value_size(items); i++) {
        lynx_value_t *row = lynx_value_array();
        if (row)
            fill(row, lynx_value_at(items, i));
        if (row)
            cli_table_append(rows, &row);
        lynx_value_destroy(&row);
    }
    cli_print_table(stream, rows);
    lynx_value_destroy(&rows);
}

void cli_print_table(FILE *stream, const lynx_value_t *rows)
{
    size_t ncols = 0;
    for (size_t r = 0; r < lynx_value_size(rows); r++)
        if (lynx_value_size(lynx_value_at(rows, r)) > ncols)
            ncols = lynx_value_size(lynx_value_at(rows, r));
    size_t *widths = calloc(ncols ? ncols : 1, sizeof *widths);
    if (!widths)
        return;
    for (size_t r = 0; r < lynx_value_size(rows); r++) {
        const lynx_value_t *row = lynx_value_at(rows, r);
        for (size_t c = 0; c < lynx_value_size(row); c++)
            if (lynx_value_string_len(lynx_value_at(row, c)) > widths[c])
                widths[c] = lynx_value_string_len(lynx_value_at(row, c));
    }
    for (size_t r = 0; r < lynx_value_size(rows); r++) {
        const lynx_value_t *row = lynx_value_at(rows, r);
        size_t n = lynx_value_size(row);
        for (size_t c = 0; c < n; c++) {
            const char *text = lynx_value_as_string(lynx_value_at(row, c));
            if (c + 1 == n)
                fprintf(stream, "%s\n", text);
            else
                fprintf(stream, "%-*s  ", (int)widths[c], text);
        }
    }
    free(widths);
}

int cli_act(cli_ctx_t *ctx, int argc, char **argv, const char *method, const char *format,
            const char *usage, const char *what, const char *field)
{
    const char *id = NULL;
    size_t npos = 0;
    int rc = cli_args_parse(argc, argv, NULL, &id, 1, &npos);
    if (rc != 0 || npos != 1)
        return cli_usage(usage, rc == 1);
    cli_http_reply_t reply;
    int status =
        cli_call_on(ctx, method, format, id, strcmp(method, "POST") == 0 ? "{}" : NULL, &reply);
    if (status != CLI_EXIT_OK)
        return status;
    const lynx_value_t *value = lynx_value_get(reply.json, field);
    printf("%s %s: %s\n", what, id,
           lynx_value_type(value) == LYNX_VALUE_BOOL
               ? "revoked"
               : lynx_value_get_string(reply.json, field, "?"));
    cli_http_reply_clear(&reply);
    return CLI_EXIT_OK;
}

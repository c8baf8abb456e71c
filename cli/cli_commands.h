//  cli_commands: the subcommands of the lynx client and the helpers they share (argument
//  parsing, calling the gateway, printing its errors, mapping outcomes to exit codes).
//
//  Each command group lives in its own source: cli_submit.c (submit, validate), cli_batch.c
//  (status, results, jobs, cancel), cli_queue.c (batches, job), cli_runners.c (runners,
//  drain, resume), cli_watch.c (watch), cli_artifacts.c (artifacts, logs).
#ifndef CLI_COMMANDS_H_INCLUDED
#define CLI_COMMANDS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "cli_http.h"
#include "lynx_value.h"

//  Exit statuses of every command (documented in `lynx --help`).
enum {
    CLI_EXIT_OK = 0,          //  the command succeeded; every job of the batch Completed
    CLI_EXIT_JOBS_FAILED = 1, //  a job ended Failed, Timeout or Cancelled; or another failure
    CLI_EXIT_USAGE = 2,       //  bad arguments, unreadable config, 4xx from the API
    CLI_EXIT_UNREACHABLE = 3, //  no connection to the gateway, or 503 (broker down)
};

//  What every command gets: the gateway and whether stdout is a terminal.
typedef struct {
    cli_http_t *http;
    bool stdout_tty;
} cli_ctx_t;

//  A command: argv[0] is the command name. Returns an exit status.
typedef int(cli_command_fn)(cli_ctx_t *ctx, int argc, char **argv);

typedef struct {
    const char *name;
    cli_command_fn *run;
    const char *summary; //  one line for `lynx --help`
} cli_command_t;

//  The command table, terminated by an entry with a NULL name.
extern const cli_command_t cli_commands[];

//  -- argument parsing -------------------------------------------------------------------

//  Most flags a command has.
#define CLI_FLAGS_MAX 16

//  One flag of a command: "--name" with a value (value_p set) or a switch (bool_p set).
typedef struct {
    const char *flag;
    const char **value_p;
    bool *bool_p;
} cli_flag_t;

//  Parse argv[1..] into flags (terminated by a NULL flag) and positional arguments (at most
//  max_positional, count in *npositional), with lynx_options_scan. Returns 0; 1 when --help/-h was
//  given (the caller prints its usage); -1 after printing "lynx CMD: reason" to stderr on a bad
//  argument.
int cli_args_parse(int argc, char **argv, const cli_flag_t *flags, const char **positional,
                   size_t max_positional, size_t *npositional);

//  Print usage to stdout when want_help, or to stderr after a usage error; returns the
//  matching exit status (0 or 2).
int cli_usage(const char *usage, bool want_help);

//  Who submits, as lynx submit sends it in submitted_by: $USER@host (printable, at most 128).
void cli_submitter(char *out, size_t size);

//  Parse a decimal integer in [min, max]; -1 after printing "lynx CMD: FLAG: reason".
int cli_parse_long(const char *cmd, const char *flag, const char *text, long min, long max,
                   long *value_p);

//  The POST /jobs body lynx submit and lynx validate send, as JSON text (caller frees), for
//  the study document read from path: a whole body ({name, config, ...}) or just its config,
//  which is wrapped. name (may be NULL) replaces the body's name, which defaults to the file
//  name without extension; runs > 0 sets runs_override; submitted_by is cli_submitter's unless
//  the body has one. Takes *doc_p (sets it to NULL). NULL with err when the document is not an
//  object, or on out-of-memory.
char *cli_submit_body(lynx_value_t **doc_p, const char *path, const char *name, long runs,
                      lynx_err_t *err);

//  -- calling the gateway ----------------------------------------------------------------

//  Send a request and expect a 2xx JSON answer. Returns 0 with *reply filled; otherwise
//  prints what went wrong to stderr (every "field: message" of a 400) and returns the exit
//  status (2 for 4xx, 3 when unreachable or 503, 1 otherwise) with *reply cleared.
int cli_call(cli_ctx_t *ctx, const char *method, const char *path, const char *json_body,
             cli_http_reply_t *reply);

//  What cli_call does with an answer that is not a 2xx JSON one: print why, clear reply, and
//  return the exit status.
int cli_call_failed(cli_ctx_t *ctx, const char *method, const char *path, cli_http_reply_t *reply);

//  GET base (a path without a query) page after page, following next_cursor, with the
//  optional status and limit query arguments; append every element of each page's key array
//  to items. Returns an exit status (errors printed as cli_call).
int cli_list_all(cli_ctx_t *ctx, const char *base, const char *key, const char *state,
                 const char *limit, lynx_value_t *items);

//  Build a path from a format whose %s arguments are escaped first, e.g.
//  cli_path(ctx, "/batches/%s/jobs", id). Caller frees; NULL on OOM.
char *cli_path(cli_ctx_t *ctx, const char *format, const char *id);
//  cli_call on cli_path(ctx, format, id): cli_call_on(ctx, "GET", "/jobs/%s", id, NULL, &reply).
int cli_call_on(cli_ctx_t *ctx, const char *method, const char *format, const char *id,
                const char *json_body, cli_http_reply_t *reply);

//  A command of one id argument (usage printed otherwise): method on format with it, then
//  print "<what> <id>: <field of the answer>" ("revoked" for a boolean field). Exit status.
int cli_act(cli_ctx_t *ctx, int argc, char **argv, const char *method, const char *format,
            const char *usage, const char *what, const char *field);

//  -- printing ---------------------------------------------------------------------------

//  Print a scalar value to a stream: a string as is, null as nothing, a double with at most
//  digits significant digits (17 round-trips), an array or object as its JSON text.
void cli_print_scalar(FILE *stream, const lynx_value_t *value, int digits);

//  Write a scalar as one CSV field (quoted when it holds a comma, quote or newline); doubles
//  keep full precision.
void cli_print_csv_field(FILE *stream, const lynx_value_t *value);

//  Tables: rows is an array of rows (the first is the header), each an array of strings.
//  cli_row_add formats a scalar as cli_print_scalar with 6 digits; both return -1 on OOM.
int cli_row_add(lynx_value_t *row, const lynx_value_t *value);
int cli_row_add_text(lynx_value_t *row, const char *text);
//  Append row to rows (taking ownership on success, as lynx_value_append).
int cli_table_append(lynx_value_t *rows, lynx_value_t **row_p);
//  A new table (rows) whose first row holds titles (NULL-terminated). NULL on OOM.
lynx_value_t *cli_table_new(const char *const titles[]);
//  Print rows as left-aligned columns separated by two spaces.
void cli_print_table(FILE *stream, const lynx_value_t *rows);
//  Print a table of items (an array), one row each: titles above, fill adds an item's cells
//  with cli_row_add and cli_row_add_text.
typedef void(cli_row_fn)(lynx_value_t *row, const lynx_value_t *item);
void cli_print_items(FILE *stream, const char *const titles[], const lynx_value_t *items,
                     cli_row_fn *fill);

//  True for a terminal batch status (Completed, Failed, Cancelled).
bool cli_batch_terminal(const char *status);

//  Exit status for a batch: 1 when it ended and not Completed, 0 otherwise.
int cli_batch_exit(const char *status);

//  Command entry points.
int cli_cmd_submit(cli_ctx_t *ctx, int argc, char **argv);
int cli_cmd_watch(cli_ctx_t *ctx, int argc, char **argv);
int cli_cmd_validate(cli_ctx_t *ctx, int argc, char **argv);
int cli_cmd_status(cli_ctx_t *ctx, int argc, char **argv);
int cli_cmd_results(cli_ctx_t *ctx, int argc, char **argv);
int cli_cmd_jobs(cli_ctx_t *ctx, int argc, char **argv);
int cli_cmd_cancel(cli_ctx_t *ctx, int argc, char **argv);
int cli_cmd_runners(cli_ctx_t *ctx, int argc, char **argv);
int cli_cmd_drain(cli_ctx_t *ctx, int argc, char **argv);
int cli_cmd_resume(cli_ctx_t *ctx, int argc, char **argv);
//  cli_enroll.c
int cli_cmd_enrollments(cli_ctx_t *ctx, int argc, char **argv);
int cli_cmd_approve(cli_ctx_t *ctx, int argc, char **argv);
int cli_cmd_reject(cli_ctx_t *ctx, int argc, char **argv);
int cli_cmd_revoke(cli_ctx_t *ctx, int argc, char **argv);
int cli_cmd_batches(cli_ctx_t *ctx, int argc, char **argv);
int cli_cmd_job(cli_ctx_t *ctx, int argc, char **argv);
int cli_cmd_artifacts(cli_ctx_t *ctx, int argc, char **argv);
int cli_cmd_logs(cli_ctx_t *ctx, int argc, char **argv);

#endif

//  lynx runners, drain and resume: the runner pool.
#include <stdlib.h>
#include <string.h>

#include "cli_commands.h"

static const char s_runners_usage[] =
    "usage: lynx runners\n\n"
    "List the runners: id, status (Idle, Busy, Offline, Maintenance, Quarantined), active and\n"
    "finished jobs, last heartbeat and name; then, for each quarantined runner, why and its\n"
    "last error.\n";

static const char s_drain_usage[] =
    "usage: lynx drain RUNNER_ID\n\n"
    "Put a runner in Maintenance: its running jobs finish, it gets no new ones.\n";

static const char s_resume_usage[] =
    "usage: lynx resume RUNNER_ID\n\n"
    "Take a runner out of Maintenance or out of quarantine: it takes work again.\n";

static void s_runner_row(lynx_value_t *row, const lynx_value_t *runner)
{
    cli_row_add(row, lynx_value_get(runner, "runner_id"));
    cli_row_add(row, lynx_value_get(runner, "status"));
    char active[32];
    snprintf(active, sizeof active, "%zu", lynx_value_size(lynx_value_get(runner, "active_jobs")));
    cli_row_add_text(row, active);
    const char *keys[] = {"jobs_completed", "jobs_failed", "last_heartbeat", "name"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        cli_row_add(row, lynx_value_get(runner, keys[i]));
}

int cli_cmd_runners(cli_ctx_t *ctx, int argc, char **argv)
{
    size_t npos = 0;
    int rc = cli_args_parse(argc, argv, NULL, NULL, 0, &npos);
    if (rc != 0)
        return cli_usage(s_runners_usage, rc == 1);
    cli_http_reply_t reply;
    int status = cli_call(ctx, "GET", "/runners", NULL, &reply);
    if (status != CLI_EXIT_OK)
        return status;
    const lynx_value_t *runners = lynx_value_get(reply.json, "runners");
    const char *const titles[] = {"runner_id", "status",         "active", "completed",
                                  "failed",    "last_heartbeat", "name",   NULL};
    cli_print_items(stdout, titles, runners, s_runner_row);
    //  A quarantined runner takes no work until resumed: say why, and how to resume it.
    for (size_t r = 0; r < lynx_value_size(runners); r++) {
        const lynx_value_t *runner = lynx_value_at(runners, r);
        const lynx_value_t *quarantine = lynx_value_get(runner, "quarantine");
        if (lynx_value_type(quarantine) != LYNX_VALUE_MAP)
            continue;
        const char *id = lynx_value_get_string(runner, "runner_id", "?");
        const char *last = lynx_value_get_string(quarantine, "last_error", "");
        printf("\nrunner %s quarantined since %s: %s\n  last error: %.*s\n  after fixing it: "
               "lynx resume %s\n",
               id, lynx_value_get_string(quarantine, "since", "?"),
               lynx_value_get_string(quarantine, "reason", ""), (int)strcspn(last, "\n"), last, id);
    }
    cli_http_reply_clear(&reply);
    return CLI_EXIT_OK;
}

int cli_cmd_drain(cli_ctx_t *ctx, int argc, char **argv)
{
    return cli_act(ctx, argc, argv, "POST", "/runners/%s/drain", s_drain_usage, "runner", "status");
}

int cli_cmd_resume(cli_ctx_t *ctx, int argc, char **argv)
{
    return cli_act(ctx, argc, argv, "POST", "/runners/%s/resume", s_resume_usage, "runner",
                   "status");
}

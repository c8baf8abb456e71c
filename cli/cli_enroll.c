//  lynx enrollments, approve, reject and revoke: who may join the grid (admin token).
#include <string.h>

#include "cli_commands.h"

static const char s_enrollments_usage[] =
    "usage: lynx enrollments [--status pending|approved|rejected]\n\n"
    "List runners' requests to join (lynx-runner --enroll), newest first: id, status, runner\n"
    "id, host, who asked and when. Needs an admin token.\n";

static const char s_approve_usage[] =
    "usage: lynx approve ENROLLMENT_ID\n\n"
    "Enroll the runner's key: it joins on its next connection attempt (within 10 s).\n";

static const char s_reject_usage[] = "usage: lynx reject ENROLLMENT_ID\n\n"
                                     "Refuse a pending enrollment.\n";

static const char s_revoke_usage[] =
    "usage: lynx revoke RUNNER_ID\n\n"
    "Revoke a runner's key: it is dropped at once, its jobs are retried elsewhere, and it\n"
    "cannot reconnect until enrolled again.\n";

static void s_enrollment_row(lynx_value_t *row, const lynx_value_t *enrollment)
{
    const char *keys[] = {"id", "status", "runner_id", "host", "requested_by", "created_at"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        cli_row_add(row, lynx_value_get(enrollment, keys[i]));
}

int cli_cmd_enrollments(cli_ctx_t *ctx, int argc, char **argv)
{
    const char *status_filter = NULL;
    const cli_flag_t flags[] = {{"--status", &status_filter, NULL}, {NULL, NULL, NULL}};
    size_t npos = 0;
    int rc = cli_args_parse(argc, argv, flags, NULL, 0, &npos);
    if (rc != 0)
        return cli_usage(s_enrollments_usage, rc == 1);
    cli_http_reply_t reply;
    int status = status_filter ? cli_call_on(ctx, "GET", "/runners/enrollments?status=%s",
                                             status_filter, NULL, &reply)
                               : cli_call(ctx, "GET", "/runners/enrollments", NULL, &reply);
    if (status != CLI_EXIT_OK)
        return status;
    const char *const titles[] = {"id",           "status",     "runner_id", "host",
                                  "requested_by", "created_at", NULL};
    cli_print_items(stdout, titles, lynx_value_get(reply.json, "enrollments"), s_enrollment_row);
    cli_http_reply_clear(&reply);
    return CLI_EXIT_OK;
}

int cli_cmd_approve(cli_ctx_t *ctx, int argc, char **argv)
{
    return cli_act(ctx, argc, argv, "POST", "/runners/enrollments/%s/approve", s_approve_usage,
                   "enrollment", "status");
}

int cli_cmd_reject(cli_ctx_t *ctx, int argc, char **argv)
{
    return cli_act(ctx, argc, argv, "POST", "/runners/enrollments/%s/reject", s_reject_usage,
                   "enrollment", "status");
}

int cli_cmd_revoke(cli_ctx_t *ctx, int argc, char **argv)
{
    return cli_act(ctx, argc, argv, "DELETE", "/runners/%s/key", s_revoke_usage, "runner key",
                   "revoked");
}

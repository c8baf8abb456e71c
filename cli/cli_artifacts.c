//  lynx artifacts, lynx logs: the files the broker holds for a job (brought from whichever
//  runner ran it), listed, downloaded with their SHA-256 checked, or printed.
#include "cli_commands.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lynx_digest.h"
#include "lynx_path.h"

static const char s_artifacts_usage[] =
    "usage: lynx artifacts JOB_ID [--name NAME] [--out DIR]\n"
    "       lynx artifacts BATCH_ID --name NAME --out DIR\n\n"
    "A job's files, as the broker holds them (GET /jobs/{id}/artifacts):\n"
    "  without --out   list them (name, size, type, sha256) and what was skipped\n"
    "  --out DIR       download them into DIR (subdirectories as in the job's output\n"
    "                  directory), each checked against its sha256\n"
    "  --name NAME     only that file; without --out it is written to stdout\n"
    "With a batch id, --name and --out: that file of every run of the batch, as\n"
    "DIR/run-<run_id>/NAME (runs without it are named and skipped).\n";

static const char s_logs_usage[] = "usage: lynx logs JOB_ID [--stderr] [--tail N]\n\n"
                                   "Print the job's standard output (--stderr: its standard "
                                   "error), or its last N lines,\nas the broker holds them "
                                   "(GET /jobs/{id}/logs/stdout).\n";

//  "/jobs/<job>/artifacts/<name>", both escaped. Caller frees; NULL on OOM.
static char *s_artifact_path(cli_ctx_t *ctx, const char *job_id, const char *name)
{
    char *job = cli_http_escape(ctx->http, job_id);
    char *file = cli_http_escape(ctx->http, name);
    char *path = NULL;
    if (job && file && asprintf(&path, "/jobs/%s/artifacts/%s", job, file) < 0)
        path = NULL;
    free(job);
    free(file);
    return path;
}

//  GET path into out. An exit status; what went wrong is printed.
static int s_download(cli_ctx_t *ctx, const char *path, FILE *out)
{
    cli_http_reply_t reply;
    lynx_err_t err;
    lynx_err_clear(&err);
    if (cli_http_download(ctx->http, path, out, &reply, &err) != 0) {
        fprintf(stderr, "lynx: %s\n", err.message);
        return err.code == LYNX_EUNAVAILABLE ? CLI_EXIT_UNREACHABLE : CLI_EXIT_JOBS_FAILED;
    }
    if (reply.status >= 200 && reply.status < 300) {
        cli_http_reply_clear(&reply);
        return CLI_EXIT_OK;
    }
    return cli_call_failed(ctx, "GET", path, &reply);
}

static void s_file_digest(const char *path, char hex[LYNX_DIGEST_HEX_SIZE])
{
    lynx_digest_t digest;
    lynx_digest_init(&digest);
    FILE *file = fopen(path, "rb");
    char block[65536];
    size_t got;
    while (file && (got = fread(block, 1, sizeof block, file)) > 0)
        lynx_digest_update(&digest, block, got);
    if (file)
        fclose(file);
    lynx_digest_final_hex(&digest, hex);
}

//  Download one artifact (an entry of the listing) to target, then check its digest. The file
//  is written beside the target and renamed, so a failed download leaves no half file.
static int s_fetch_to(cli_ctx_t *ctx, const char *job_id, const lynx_value_t *artifact,
                      const char *target)
{
    const char *name = lynx_value_get_string(artifact, "name", "");
    char partial[PATH_MAX + 16];
    snprintf(partial, sizeof partial, "%s.partial", target);
    char *path = s_artifact_path(ctx, job_id, name);
    FILE *out = path && lynx_path_make_dirs(target, true) == 0 ? fopen(partial, "wb") : NULL;
    if (!out) {
        fprintf(stderr, "lynx artifacts: cannot write %s: %s\n", partial, strerror(errno));
        free(path);
        return CLI_EXIT_JOBS_FAILED;
    }
    int status = s_download(ctx, path, out);
    free(path);
    if (fclose(out) != 0 && status == CLI_EXIT_OK) {
        fprintf(stderr, "lynx artifacts: cannot write %s: %s\n", partial, strerror(errno));
        status = CLI_EXIT_JOBS_FAILED;
    }
    char hex[LYNX_DIGEST_HEX_SIZE];
    if (status == CLI_EXIT_OK) {
        s_file_digest(partial, hex);
        if (strcmp(hex, lynx_value_get_string(artifact, "sha256", "")) != 0) {
            fprintf(stderr, "lynx artifacts: %s: sha256 %s, the broker lists %s\n", name, hex,
                    lynx_value_get_string(artifact, "sha256", ""));
            status = CLI_EXIT_JOBS_FAILED;
        }
    }
    if (status == CLI_EXIT_OK && rename(partial, target) != 0) {
        fprintf(stderr, "lynx artifacts: cannot write %s: %s\n", target, strerror(errno));
        status = CLI_EXIT_JOBS_FAILED;
    }
    if (status != CLI_EXIT_OK)
        unlink(partial);
    else
        printf("%s  %" PRId64 " bytes  sha256 ok\n", target,
               lynx_value_get_int(artifact, "size", 0));
    return status;
}

static void s_artifact_row(lynx_value_t *row, const lynx_value_t *artifact)
{
    cli_row_add(row, lynx_value_get(artifact, "name"));
    cli_row_add(row, lynx_value_get(artifact, "size"));
    cli_row_add(row, lynx_value_get(artifact, "content_type"));
    cli_row_add(row, lynx_value_get(artifact, "sha256"));
}

static void s_skipped_row(lynx_value_t *row, const lynx_value_t *skipped)
{
    cli_row_add(row, lynx_value_get(skipped, "name"));
    cli_row_add(row, lynx_value_get(skipped, "reason"));
}

//  The listing entry named name, or NULL.
static const lynx_value_t *s_find(const lynx_value_t *artifacts, const char *name)
{
    for (size_t i = 0; i < lynx_value_size(artifacts); i++)
        if (strcmp(lynx_value_get_string(lynx_value_at(artifacts, i), "name", ""), name) == 0)
            return lynx_value_at(artifacts, i);
    return NULL;
}

//  One job: list, download all, or one file (to --out or stdout).
static int s_job(cli_ctx_t *ctx, const char *job_id, const cli_http_reply_t *listing,
                 const char *name, const char *out_dir)
{
    const lynx_value_t *artifacts = lynx_value_get(listing->json, "artifacts");
    if (name && !s_find(artifacts, name)) {
        fprintf(stderr, "lynx artifacts: job %s has no file '%s'\n", job_id, name);
        return CLI_EXIT_USAGE;
    }
    if (!out_dir && !name) {
        const char *const titles[] = {"name", "size", "type", "sha256", NULL};
        cli_print_items(stdout, titles, artifacts, s_artifact_row);
        printf("%zu files\n", lynx_value_size(artifacts));
        const lynx_value_t *skipped = lynx_value_get(listing->json, "skipped");
        if (lynx_value_size(skipped)) {
            const char *const skipped_titles[] = {"skipped", "reason", NULL};
            printf("\n");
            cli_print_items(stdout, skipped_titles, skipped, s_skipped_row);
        }
        return CLI_EXIT_OK;
    }
    if (!out_dir) { //  one file to stdout
        char *path = s_artifact_path(ctx, job_id, name);
        int status = path ? s_download(ctx, path, stdout) : CLI_EXIT_JOBS_FAILED;
        free(path);
        return status;
    }
    int status = CLI_EXIT_OK;
    for (size_t i = 0; i < lynx_value_size(artifacts); i++) {
        const lynx_value_t *artifact = lynx_value_at(artifacts, i);
        const char *file = lynx_value_get_string(artifact, "name", "");
        if (name && strcmp(file, name) != 0)
            continue;
        //  A name that could leave DIR is not written (the broker never lists one).
        if (!lynx_path_name_ok(file, strlen(file))) {
            fprintf(stderr, "lynx artifacts: %s: not a safe file name, skipped\n", file);
            status = CLI_EXIT_JOBS_FAILED;
            continue;
        }
        char target[PATH_MAX];
        snprintf(target, sizeof target, "%s/%s", out_dir, file);
        int rc = s_fetch_to(ctx, job_id, artifact, target);
        if (rc != CLI_EXIT_OK)
            status = rc;
    }
    return status;
}

//  One file of every run of a batch: DIR/run-<run_id>/NAME.
static int s_batch(cli_ctx_t *ctx, const char *batch_id, const char *name, const char *out_dir)
{
    char *base = cli_path(ctx, "/batches/%s/jobs", batch_id);
    lynx_value_t *jobs = lynx_value_array();
    int status =
        base && jobs ? cli_list_all(ctx, base, "jobs", NULL, NULL, jobs) : CLI_EXIT_JOBS_FAILED;
    free(base);
    size_t fetched = 0, missing = 0;
    for (size_t i = 0; status == CLI_EXIT_OK && i < lynx_value_size(jobs); i++) {
        const lynx_value_t *job = lynx_value_at(jobs, i);
        const char *job_id = lynx_value_get_string(job, "id", "");
        cli_http_reply_t listing;
        int rc = cli_call_on(ctx, "GET", "/jobs/%s/artifacts", job_id, NULL, &listing);
        if (rc != CLI_EXIT_OK) {
            status = rc;
            break;
        }
        const lynx_value_t *artifact = s_find(lynx_value_get(listing.json, "artifacts"), name);
        if (!artifact) {
            fprintf(stderr, "lynx artifacts: run %" PRId64 " (job %s) has no '%s'\n",
                    lynx_value_get_int(job, "run_id", -1), job_id, name);
            missing++;
        } else {
            char target[PATH_MAX];
            snprintf(target, sizeof target, "%s/run-%" PRId64 "/%s", out_dir,
                     lynx_value_get_int(job, "run_id", -1), name);
            rc = s_fetch_to(ctx, job_id, artifact, target);
            if (rc == CLI_EXIT_OK)
                fetched++;
            else
                status = rc;
        }
        cli_http_reply_clear(&listing);
    }
    if (status == CLI_EXIT_OK)
        printf("%zu of %zu runs: %s fetched%s\n", fetched, lynx_value_size(jobs), name,
               missing ? " (the others have no such file)" : "");
    lynx_value_destroy(&jobs);
    return status == CLI_EXIT_OK && missing ? CLI_EXIT_JOBS_FAILED : status;
}

int cli_cmd_artifacts(cli_ctx_t *ctx, int argc, char **argv)
{
    const char *id = NULL, *name = NULL, *out_dir = NULL;
    const cli_flag_t flags[] = {{"--name", &name, NULL}, {"--out", &out_dir, NULL}, {NULL}};
    size_t npos = 0;
    int rc = cli_args_parse(argc, argv, flags, &id, 1, &npos);
    if (rc != 0 || npos != 1)
        return cli_usage(s_artifacts_usage, rc == 1);
    if (name && !lynx_path_name_ok(name, strlen(name))) {
        fprintf(stderr, "lynx artifacts: --name: must be a file name relative to the job's output "
                        "directory\n");
        return CLI_EXIT_USAGE;
    }
    //  A job id lists; a batch id (404 as a job) needs --name and --out.
    char *path = cli_path(ctx, "/jobs/%s/artifacts", id);
    cli_http_reply_t listing;
    lynx_err_t err;
    lynx_err_clear(&err);
    if (!path || cli_http_request(ctx->http, "GET", path, NULL, &listing, &err) != 0) {
        free(path);
        fprintf(stderr, "lynx: gateway unreachable: %s\n", err.message);
        return CLI_EXIT_UNREACHABLE;
    }
    int status;
    if (listing.status == 200 && listing.json)
        status = s_job(ctx, id, &listing, name, out_dir);
    else if (listing.status == 404 && name && out_dir) {
        cli_http_reply_t batch;
        status = cli_call_on(ctx, "GET", "/batches/%s", id, NULL, &batch);
        cli_http_reply_clear(&batch);
        if (status == CLI_EXIT_OK)
            status = s_batch(ctx, id, name, out_dir);
    } else
        status = cli_call_failed(ctx, "GET", path, &listing); //  clears listing
    free(path);
    cli_http_reply_clear(&listing);
    return status;
}

int cli_cmd_logs(cli_ctx_t *ctx, int argc, char **argv)
{
    const char *id = NULL, *tail = NULL;
    bool err_stream = false;
    const cli_flag_t flags[] = {{"--stderr", NULL, &err_stream}, {"--tail", &tail, NULL}, {NULL}};
    size_t npos = 0;
    int rc = cli_args_parse(argc, argv, flags, &id, 1, &npos);
    if (rc != 0 || npos != 1)
        return cli_usage(s_logs_usage, rc == 1);
    long lines = 0;
    if (tail && cli_parse_long("logs", "--tail", tail, 1, 100000, &lines) != 0)
        return CLI_EXIT_USAGE;
    char *job = cli_http_escape(ctx->http, id);
    char *path = NULL;
    if (job &&
        (tail ? asprintf(&path, "/jobs/%s/logs/%s?tail=%ld", job, err_stream ? "stderr" : "stdout",
                         lines)
              : asprintf(&path, "/jobs/%s/logs/%s", job, err_stream ? "stderr" : "stdout")) < 0)
        path = NULL;
    free(job);
    int status = path ? s_download(ctx, path, stdout) : CLI_EXIT_JOBS_FAILED;
    free(path);
    fflush(stdout);
    return status;
}

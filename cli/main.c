//  lynx: the command-line client of a Lynx-C grid, over the gateway's REST API.
//  main only finds the gateway URL and the command, then hands over to the command table.
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_commands.h"
#include "cli_http.h"

#define CLI_DEFAULT_URL "http://127.0.0.1:8080"

static void s_print_help(FILE *stream)
{
    fprintf(stream, "usage: lynx [--url URL] [--token TOKEN] [--cacert FILE] COMMAND [ARGS]\n\n"
                    "The command-line client of a Lynx-C grid, over the gateway's REST API.\n\n"
                    "commands:\n");
    for (const cli_command_t *c = cli_commands; c->name; c++)
        fprintf(stream, "  %-12s %s\n", c->name, c->summary);
    fprintf(stream,
            "\noptions:\n"
            "  --url URL      the gateway (environment LYNX_URL, default %s);\n"
            "                 https://... is verified against the system's CAs or --cacert\n"
            "  --cacert FILE  PEM CA certificate(s) that signed an HTTPS gateway's certificate\n"
            "                 (environment LYNX_CACERT)\n"
            "  --token T      API token sent as Authorization: Bearer (environment LYNX_TOKEN;\n"
            "                 lynx-broker token create makes one)\n"
            "  --help         this help; `lynx COMMAND --help` for a command's own\n\n"
            "exit status:\n"
            "  0  the command succeeded (for a batch: every job Completed)\n"
            "  1  a job ended Failed, Timeout or Cancelled (submit --wait, status and results\n"
            "     of an ended batch), or the gateway failed in another way\n"
            "  2  usage error, unreadable config, or the API refused the request (4xx)\n"
            "  3  gateway unreachable, or it answers 503 (broker down)\n",
            CLI_DEFAULT_URL);
}

//  Take the global options --url, --cacert and --token (anywhere on the line, so `lynx status ID
//  --url U` works too) out of argv. Returns the number of arguments left, or -1 with *missing_p set
//  to the option that lacks its value.
static int s_take_globals(int argc, char **argv, const char **url_p, const char **cacert_p,
                          const char **token_p, const char **missing_p)
{
    const struct {
        const char *flag;
        const char **value_p;
    } globals[] = {{"--url", url_p}, {"--cacert", cacert_p}, {"--token", token_p}};
    int kept = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) {
            while (i < argc)
                argv[kept++] = argv[i++];
            break;
        }
        bool taken = false;
        for (size_t g = 0; g < sizeof globals / sizeof globals[0] && !taken; g++) {
            size_t len = strlen(globals[g].flag);
            if (strcmp(argv[i], globals[g].flag) == 0) {
                if (i + 1 >= argc) {
                    *missing_p = globals[g].flag;
                    return -1;
                }
                *globals[g].value_p = argv[++i];
                taken = true;
            } else if (strncmp(argv[i], globals[g].flag, len) == 0 && argv[i][len] == '=') {
                *globals[g].value_p = argv[i] + len + 1;
                taken = true;
            }
        }
        if (!taken)
            argv[kept++] = argv[i];
    }
    return kept;
}

int main(int argc, char **argv)
{
    const char *url = getenv("LYNX_URL");
    if (!url || !*url)
        url = CLI_DEFAULT_URL;
    const char *cacert = getenv("LYNX_CACERT");
    if (cacert && !*cacert)
        cacert = NULL;
    const char *missing = NULL, *token = NULL;
    argc = s_take_globals(argc, argv, &url, &cacert, &token, &missing);
    if (argc < 0) {
        fprintf(stderr, "lynx: %s needs a value\n", missing);
        return CLI_EXIT_USAGE;
    }
    if (token) //  cli_http reads it with the rest of the request settings
        setenv("LYNX_TOKEN", token, 1);
    if (argc < 2) {
        s_print_help(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 || strcmp(name, "help") == 0) {
        s_print_help(stdout);
        return CLI_EXIT_OK;
    }
    const cli_command_t *command = NULL;
    for (const cli_command_t *c = cli_commands; c->name; c++)
        if (strcmp(c->name, name) == 0)
            command = c;
    if (!command) {
        fprintf(stderr, "lynx: unknown command '%s' (see lynx --help)\n", name);
        return CLI_EXIT_USAGE;
    }
    if (cli_http_global_init() != 0) {
        fprintf(stderr, "lynx: cannot initialise libcurl\n");
        return CLI_EXIT_JOBS_FAILED;
    }
    lynx_err_t err;
    lynx_err_clear(&err);
    cli_ctx_t ctx = {.http = cli_http_new(url, cacert, &err), .stdout_tty = isatty(STDOUT_FILENO)};
    int status = CLI_EXIT_JOBS_FAILED;
    if (ctx.http)
        status = command->run(&ctx, argc - 1, argv + 1);
    else {
        fprintf(stderr, "lynx: %s\n", err.message);
        status = err.code == LYNX_EINVALID ? CLI_EXIT_USAGE : status;
    }
    cli_http_destroy(&ctx.http);
    cli_http_global_cleanup();
    return status;
}

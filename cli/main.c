//  lynx: the command-line client of a Lynx-C grid, over the gateway's REST API.
//  main only finds the gateway URL and the command, then hands over to the command table.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_commands.h"
#include "cli_http.h"

#define CLI_DEFAULT_URL "http://127.0.0.1:8080"

static void s_print_help(FILE *stream)
{
    fprintf(stream, "usage: lynx [--url URL] [--token TOKEN] COMMAND [ARGS]\n\n"
                    "The command-line client of a Lynx-C grid, over the gateway's REST API.\n\n"
                    "commands:\n");
    for (const cli_command_t *c = cli_commands; c->name; c++)
        fprintf(stream, "  %-10s %s\n", c->name, c->summary);
    fprintf(stream,
            "\noptions:\n"
            "  --url URL  the gateway (environment LYNX_URL, default %s)\n"
            "  --token T  API token sent as Authorization: Bearer (environment LYNX_TOKEN;\n"
            "             lynx-broker token create makes one)\n"
            "  --help     this help; `lynx COMMAND --help` for a command's own\n\n"
            "exit status:\n"
            "  0  the command succeeded (for a batch: every job Completed)\n"
            "  1  a job ended Failed, Timeout or Cancelled (submit --wait, status and results\n"
            "     of an ended batch), or the gateway failed in another way\n"
            "  2  usage error, unreadable config, or the API refused the request (4xx)\n"
            "  3  gateway unreachable, or it answers 503 (broker down)\n",
            CLI_DEFAULT_URL);
}

//  Take a global option (--url, --token: anywhere on the line, so `lynx status ID --url U`
//  works too) out of argv. Returns the number of arguments left, or -1 when it lacks its value.
static int s_take_option(int argc, char **argv, const char *flag, const char **value_p)
{
    int kept = 0;
    size_t flag_len = strlen(flag);
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) {
            while (i < argc)
                argv[kept++] = argv[i++];
            break;
        }
        if (strcmp(argv[i], flag) == 0) {
            if (i + 1 >= argc)
                return -1;
            *value_p = argv[++i];
        } else if (strncmp(argv[i], flag, flag_len) == 0 && argv[i][flag_len] == '=') {
            *value_p = argv[i] + flag_len + 1;
        } else {
            argv[kept++] = argv[i];
        }
    }
    return kept;
}

int main(int argc, char **argv)
{
    const char *url = getenv("LYNX_URL");
    if (!url || !*url)
        url = CLI_DEFAULT_URL;
    argc = s_take_option(argc, argv, "--url", &url);
    if (argc < 0) {
        fprintf(stderr, "lynx: --url needs a value\n");
        return CLI_EXIT_USAGE;
    }
    const char *token = NULL;
    argc = s_take_option(argc, argv, "--token", &token);
    if (argc < 0) {
        fprintf(stderr, "lynx: --token needs a value\n");
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
    cli_ctx_t ctx = {.http = cli_http_new(url, &err), .stdout_tty = isatty(STDOUT_FILENO)};
    int status = CLI_EXIT_JOBS_FAILED;
    if (ctx.http)
        status = command->run(&ctx, argc - 1, argv + 1);
    else
        fprintf(stderr, "lynx: %s\n", err.message);
    cli_http_destroy(&ctx.http);
    cli_http_global_cleanup();
    return status;
}

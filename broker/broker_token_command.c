#include "broker_token_command.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "broker_store.h"
#include "broker_tokens.h"
#include "lynx_options.h"

static const char s_usage[] =
    "usage: lynx-broker token create --name NAME --role read|submit|admin [--data-dir DIR]\n"
    "       lynx-broker token list [--data-dir DIR]\n"
    "       lynx-broker token revoke --name NAME [--data-dir DIR]\n"
    "create prints the new token on stdout, once: only its hash is stored.\n";

static void s_format_time(int64_t ms, char *out, size_t size)
{
    if (ms <= 0) {
        snprintf(out, size, "-");
        return;
    }
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int s_print_token(const broker_token_rec_t *token, void *arg)
{
    (void)arg;
    char created[32], used[32];
    s_format_time(token->created_at_ms, created, sizeof created);
    s_format_time(token->last_used_at_ms, used, sizeof used);
    printf("%-24s %-7s %-13s %-21s %-21s %s\n", token->name, token->role, token->id, created, used,
           token->revoked_at_ms ? "revoked" : "live");
    return 0;
}

static int s_run(const char *verb, broker_store_t *store, const char *name, const char *role)
{
    lynx_err_t err;
    lynx_err_clear(&err);
    if (strcmp(verb, "create") == 0) {
        char text[LYNX_TOKEN_TEXT_SIZE];
        if (broker_tokens_create(store, name, role, text, &err)) {
            fprintf(stderr, "lynx-broker: token create: %s\n", err.message);
            return err.code == LYNX_EINTERNAL ? 1 : 2;
        }
        printf("%s\n", text);
        fprintf(stderr,
                "lynx-broker: token '%s' (role %s) created; it is shown only now: keep it "
                "(e.g. export LYNX_TOKEN=...)\n",
                name, role);
        return 0;
    }
    if (strcmp(verb, "list") == 0) {
        printf("%-24s %-7s %-13s %-21s %-21s %s\n", "NAME", "ROLE", "ID", "CREATED", "LAST_USED",
               "STATUS");
        if (broker_store_foreach_token(store, s_print_token, NULL)) {
            fprintf(stderr, "lynx-broker: token list: %s\n", broker_store_error(store));
            return 1;
        }
        return 0;
    }
    if (!name) {
        fprintf(stderr, "lynx-broker: token revoke: --name: required\n");
        return 2;
    }
    int64_t count = broker_tokens_revoke(store, name, &err);
    if (count < 0) {
        fprintf(stderr, "lynx-broker: token revoke: %s\n", err.message);
        return 1;
    }
    if (count == 0) {
        fprintf(stderr, "lynx-broker: token revoke: no live token named '%s'\n", name);
        return 1;
    }
    fprintf(stderr, "lynx-broker: token '%s' revoked; the gateway refuses it within 5 s\n", name);
    return 0;
}

int broker_token_command(int argc, char **argv, char **envp)
{
    const char *verb = argc > 1 ? argv[1] : "";
    if (strcmp(verb, "create") != 0 && strcmp(verb, "list") != 0 && strcmp(verb, "revoke") != 0) {
        fprintf(strcmp(verb, "--help") == 0 ? stdout : stderr, "%s", s_usage);
        return strcmp(verb, "--help") == 0 ? 0 : 2;
    }
    lynx_option_t options[] = {
        {"--data-dir", "LYNX_BROKER_DATA_DIR", "./lynx-data", "the broker's data directory", NULL,
         false},
        {"--name", NULL, NULL, "the token's name (who or what uses it: ci, alice)", NULL, false},
        {"--role", NULL, NULL, "read (GETs), submit (also POST /jobs), admin (everything)", NULL,
         false},
    };
    lynx_err_t err;
    lynx_err_clear(&err);
    int rc = lynx_options_parse(options, 3, argc - 1, argv + 1, envp, "lynx-broker token",
                                "Manage the gateway's API tokens.", &err);
    if (rc == 1)
        return 0;
    if (rc == 0 && strcmp(verb, "create") == 0 && (!options[1].value || !options[2].value))
        rc = lynx_err_set(&err, LYNX_EINVALID, NULL, "create needs --name and --role");
    if (rc) {
        fprintf(stderr, "lynx-broker: token %s: %s\n%s", verb, err.message, s_usage);
        return 2;
    }
    broker_store_t *store = broker_store_new(options[0].value, &err);
    if (!store) {
        fprintf(stderr, "lynx-broker: token %s: %s\n", verb, err.message);
        return 1;
    }
    rc = s_run(verb, store, options[1].value, options[2].value);
    broker_store_destroy(&store);
    return rc;
}

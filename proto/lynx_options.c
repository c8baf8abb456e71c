#include "lynx_options.h"
#include "lynx_check.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *lynx_options_getenv(char **envp, const char *name)
{
    size_t len = strlen(name);
    for (char **entry = envp; entry && *entry; entry++)
        if (strncmp(*entry, name, len) == 0 && (*entry)[len] == '=')
            return *entry + len + 1;
    return NULL;
}

static void s_usage(const lynx_option_t *options, size_t count, const char *program,
                    const char *summary)
{
    printf("Usage: %s [options]\n%s\n\nOptions (flag > environment > default):\n", program,
           summary);
    for (size_t i = 0; i < count; i++)
        printf("  %-26s %s\n  %-26s env %s, default %s\n", options[i].flag, options[i].help, "",
               options[i].env ? options[i].env : "-",
               options[i].fallback ? options[i].fallback : "none");
    printf("  %-26s show this help\n", "-h, --help");
}

int lynx_options_scan(lynx_option_t *options, size_t count, int argc, char **argv,
                      const char **positional, size_t max_positional, size_t *npositional,
                      lynx_err_t *err)
{
    size_t taken = 0;
    bool only_positional = false;
    int rc = 0;
    for (int arg = 1; rc == 0 && arg < argc; arg++) {
        const char *word = argv[arg];
        //  Without a positional array (the daemons) every word must be a flag.
        if (positional && (only_positional || word[0] != '-' || word[1] == '\0')) {
            if (taken == max_positional) {
                rc = lynx_err_set(err, LYNX_EINVALID, word, "unexpected argument '%s'", word);
                break;
            }
            positional[taken++] = word;
            continue;
        }
        if (positional && strcmp(word, "--") == 0) {
            only_positional = true;
            continue;
        }
        if (strcmp(word, "-h") == 0 || strcmp(word, "--help") == 0) {
            rc = 1;
            break;
        }
        const char *equals = strchr(word, '=');
        size_t name_len = equals ? (size_t)(equals - word) : strlen(word);
        lynx_option_t *option = NULL;
        for (size_t i = 0; i < count; i++)
            if (strlen(options[i].flag) == name_len &&
                strncmp(options[i].flag, word, name_len) == 0)
                option = &options[i];
        if (!option) {
            char flag[LYNX_ERR_FIELD_MAX];
            snprintf(flag, sizeof flag, "%.*s", (int)name_len, word);
            rc = lynx_err_set(err, LYNX_EINVALID, flag, "%s: unknown option (see --help)", flag);
        } else if (option->is_switch && equals)
            rc = lynx_err_set(err, LYNX_EINVALID, option->flag, "%s: takes no value", option->flag);
        else if (option->is_switch)
            option->value = "true";
        else if (equals)
            option->value = equals + 1;
        else if (arg + 1 < argc)
            option->value = argv[++arg];
        else
            rc = lynx_err_set(err, LYNX_EINVALID, option->flag, "%s: missing value", option->flag);
    }
    if (npositional)
        *npositional = taken;
    return rc;
}

int lynx_options_parse(lynx_option_t *options, size_t count, int argc, char **argv, char **envp,
                       const char *program, const char *summary, lynx_err_t *err)
{
    for (size_t i = 0; i < count; i++) {
        const char *from_env = options[i].env ? lynx_options_getenv(envp, options[i].env) : NULL;
        options[i].value = from_env && *from_env ? from_env : options[i].fallback;
    }
    int rc = lynx_options_scan(options, count, argc, argv, NULL, 0, NULL, err);
    if (rc == 1)
        s_usage(options, count, program, summary);
    return rc;
}

int lynx_options_int(const lynx_option_t *option, long min, long max, long *value_p,
                     lynx_err_t *err)
{
    int64_t value = 0;
    if (!lynx_check_parse_integer(option->value, &value) || value < min || value > max)
        return lynx_err_set(err, LYNX_EINVALID, option->flag,
                            "%s: must be an integer between %ld and %ld, got '%s'", option->flag,
                            min, max, option->value ? option->value : "");
    *value_p = (long)value;
    return 0;
}

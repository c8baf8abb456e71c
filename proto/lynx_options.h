//  lynx_options: command-line flags with environment fallbacks for our daemons, from one
//  table: each option has a flag, an environment variable, a default and a help line, and
//  precedence is flag > environment > default.
#ifndef LYNX_OPTIONS_H_INCLUDED
#define LYNX_OPTIONS_H_INCLUDED

#include <stddef.h>

#include "lynx_err.h"

typedef struct {
    const char *flag;     //  "--data-dir"
    const char *env;      //  "LYNX_BROKER_DATA_DIR", or NULL
    const char *fallback; //  default value, or NULL
    const char *help;     //  one line
    const char *value;    //  result: borrowed from argv, environment or fallback
} lynx_option_t;

//  Fill each option's value from argv ("--flag value" or "--flag=value") and envp. Returns 0;
//  1 when --help was given (usage already printed to stdout); -1 with err naming the flag for
//  an unknown flag or a missing value.
int lynx_options_parse(lynx_option_t *options, size_t count, int argc, char **argv, char **envp,
                       const char *program, const char *summary, lynx_err_t *err);

//  Parse a decimal integer option within [min, max]; -1 with err naming the flag otherwise.
int lynx_options_int(const lynx_option_t *option, long min, long max, long *value_p,
                     lynx_err_t *err);

#endif

//  lynx_options: command-line flags from one table, for the daemons (with environment
//  fallbacks: precedence is flag > environment > default) and for the lynx CLI's commands
//  (switches and positional arguments too). Each option has a flag, an optional environment
//  variable, a default and a help line.
#ifndef LYNX_OPTIONS_H_INCLUDED
#define LYNX_OPTIONS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#include "lynx_err.h"

typedef struct {
    const char *flag;     //  "--data-dir"
    const char *env;      //  "LYNX_BROKER_DATA_DIR", or NULL
    const char *fallback; //  default value, or NULL
    const char *help;     //  one line
    const char *value;    //  result: borrowed from argv, environment or fallback
    bool is_switch;       //  takes no value: value becomes "true" when the flag is given
} lynx_option_t;

//  Fill each option's value from argv ("--flag value" or "--flag=value") and envp. Returns 0;
//  1 when --help was given (usage already printed to stdout); -1 with err naming the flag for
//  an unknown flag or a missing value.
int lynx_options_parse(lynx_option_t *options, size_t count, int argc, char **argv, char **envp,
                       const char *program, const char *summary, lynx_err_t *err);

//  Scan argv[1..] (argv[0] is the program or command): "--flag value", "--flag=value" and
//  switches into options, other words into positional (at most max_positional; "--" makes
//  every later word positional, "-" alone is positional). With positional NULL every word
//  must be a known flag. Environment and defaults are not touched. Returns 0; 1 for -h/--help; -1
//  with err (field: the flag or word) for an unknown flag, a missing value, a value given to a
//  switch, or one positional too many.
int lynx_options_scan(lynx_option_t *options, size_t count, int argc, char **argv,
                      const char **positional, size_t max_positional, size_t *npositional,
                      lynx_err_t *err);

//  The value of variable name in envp (a NULL-terminated "KEY=VALUE" array such as environ;
//  tests pass their own), or NULL. Borrowed from envp.
const char *lynx_options_getenv(char **envp, const char *name);

//  Parse a decimal integer option within [min, max]; -1 with err naming the flag otherwise.
int lynx_options_int(const lynx_option_t *option, long min, long max, long *value_p,
                     lynx_err_t *err);

#endif

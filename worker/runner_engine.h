//  runner_engine: how each engine turns a job into a command line. A small table, so adding
//  an engine (the generic `command` engine, px4_sitl, ...) is one entry, not an if-chain.
#ifndef RUNNER_ENGINE_H_INCLUDED
#define RUNNER_ENGINE_H_INCLUDED

#include "lynx_err.h"
#include "runner_config.h"

//  argv slots: the program and its arguments.
#define RUNNER_ENGINE_MAX_ARGS (RUNNER_CONFIG_MAX_COMMAND_ARGS + 1)

typedef struct {
    const char *argv[RUNNER_ENGINE_MAX_ARGS + 1]; //  NULL-ended, borrowed from the config
    char entrypoint[4096];                        //  what the result's metadata names
    char resolved[4096];                          //  absolute path storage for argv entries
} runner_command_t;

//  True when the engine is known to this runner build.
bool runner_engine_known(const char *engine);
//  Build the command for engine from config:
//    basilisk  <python_executable> <basilisk_entrypoint resolved against working_directory>
//    command   <command_executable> <command_args...>, the executable as configured
//  -1 with err (field names the config field) when the engine is unknown, not enabled on this
//  runner, or missing its settings.
int runner_engine_command(const char *engine, const runner_config_t *config,
                          runner_command_t *command, lynx_err_t *err);

#endif

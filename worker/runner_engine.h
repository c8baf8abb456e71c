//  runner_engine: how each engine turns a job into a command line. A small table, so adding
//  an engine (the generic `command` engine, px4_sitl, ...) is one entry, not an if-chain.
#ifndef RUNNER_ENGINE_H_INCLUDED
#define RUNNER_ENGINE_H_INCLUDED

#include "lynx_err.h"
#include "runner_config.h"

#define RUNNER_ENGINE_MAX_ARGS 64

typedef struct {
    const char *argv[RUNNER_ENGINE_MAX_ARGS + 1]; //  NULL-ended, borrowed from the config
    char entrypoint[4096];                        //  what the result's metadata names
    char resolved[4096];                          //  absolute path storage for argv entries
} runner_command_t;

//  True when the engine is known to this runner build.
bool runner_engine_known(const char *engine);
//  Build the command for engine from config. -1 with err when the engine is unknown or not
//  configured on this runner.
int runner_engine_command(const char *engine, const runner_config_t *config,
                          runner_command_t *command, lynx_err_t *err);

#endif

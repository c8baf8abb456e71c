#include "runner_engine.h"

#include <stdio.h>
#include <string.h>

typedef int(s_build_fn)(const runner_config_t *config, runner_command_t *command, lynx_err_t *err);

//  basilisk: <python_executable> <basilisk_entrypoint>, the entrypoint resolved against the
//  working directory so the scenario runs the same whatever the runner's own cwd.
static int s_build_basilisk(const runner_config_t *config, runner_command_t *command,
                            lynx_err_t *err)
{
    if (!config->basilisk_entrypoint || !*config->basilisk_entrypoint)
        return lynx_err_set(err, LYNX_EINVALID, "basilisk_entrypoint",
                            "engine basilisk needs basilisk_entrypoint in the runner config");
    const char *entrypoint = config->basilisk_entrypoint;
    if (entrypoint[0] != '/') {
        snprintf(command->resolved, sizeof command->resolved, "%s/%s", config->working_directory,
                 entrypoint);
        entrypoint = command->resolved;
    }
    snprintf(command->entrypoint, sizeof command->entrypoint, "%s", config->basilisk_entrypoint);
    command->argv[0] = config->python_executable;
    command->argv[1] = entrypoint;
    command->argv[2] = NULL;
    return 0;
}

//  command: any program with the arguments of the runner config, for scenarios that are not
//  Python scripts. The program is kept as configured; runner_proc searches PATH for a bare
//  name, and the child's cwd (working_directory) anchors a relative path.
static int s_build_command(const runner_config_t *config, runner_command_t *command,
                           lynx_err_t *err)
{
    if (!config->command_executable || !*config->command_executable)
        return lynx_err_set(err, LYNX_EINVALID, "command_executable",
                            "engine command needs command_executable in the runner config");
    if (config->command_arg_count + 1 > RUNNER_ENGINE_MAX_ARGS)
        return lynx_err_set(err, LYNX_EINVALID, "command_args",
                            "engine command takes at most %d arguments, command_args has %zu",
                            RUNNER_ENGINE_MAX_ARGS - 1, config->command_arg_count);
    snprintf(command->entrypoint, sizeof command->entrypoint, "%s", config->command_executable);
    command->argv[0] = config->command_executable;
    for (size_t i = 0; i < config->command_arg_count; i++)
        command->argv[i + 1] = config->command_args[i];
    command->argv[config->command_arg_count + 1] = NULL;
    return 0;
}

static const struct {
    const char *name;
    s_build_fn *build;
} s_engines[] = {
    {"basilisk", s_build_basilisk},
    {"command", s_build_command},
};

static s_build_fn *s_find(const char *engine)
{
    for (size_t i = 0; engine && i < sizeof s_engines / sizeof s_engines[0]; i++)
        if (strcmp(s_engines[i].name, engine) == 0)
            return s_engines[i].build;
    return NULL;
}

bool runner_engine_known(const char *engine)
{
    return s_find(engine) != NULL;
}

int runner_engine_command(const char *engine, const runner_config_t *config,
                          runner_command_t *command, lynx_err_t *err)
{
    memset(command, 0, sizeof *command);
    s_build_fn *build = s_find(engine);
    bool configured = false;
    for (size_t i = 0; i < config->engine_count; i++)
        configured |= strcmp(config->engines[i], engine) == 0;
    if (!build || !configured)
        return lynx_err_set(err, LYNX_EINVALID, "engine", "engine '%s' is not %s on this runner",
                            engine, build ? "enabled" : "known");
    return build(config, command, err);
}

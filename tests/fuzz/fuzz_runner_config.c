//  fuzz_runner_config: a lynx-runner configuration -> runner_config_load, the whole merge and
//  check the runner does at start. The input is the YAML file's text, then optionally a NUL
//  and command-line arguments separated by NULs (flags win over the file). The file is handed
//  over as an in-memory file (memfd) named by --config; the environment is empty, and
//  arguments naming another config file are dropped (the fuzzer must not read the disk).
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "runner_config.h"

#define S_MAX_ARGS 32

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    const char *nul = memchr(text, '\0', size);
    size_t yaml_len = nul ? (size_t)(nul - text) : size;
    int fd = memfd_create("fuzz-runner-config", MFD_CLOEXEC);
    if (fd < 0)
        return 0;
    if (write(fd, text, yaml_len) != (ssize_t)yaml_len) {
        close(fd);
        return 0;
    }
    char config_flag[64];
    snprintf(config_flag, sizeof config_flag, "--config=/proc/self/fd/%d", fd);

    //  argv: the program, --config, then the input's arguments (copied: they need a NUL).
    size_t rest_len = nul ? size - yaml_len - 1 : 0;
    char *rest = nul ? malloc(rest_len + 1) : NULL;
    if (rest) {
        memcpy(rest, nul + 1, rest_len);
        rest[rest_len] = '\0';
    }
    char *argv[S_MAX_ARGS + 3] = {"lynx-runner", config_flag};
    int argc = 2;
    for (size_t at = 0; rest && at < rest_len && argc < S_MAX_ARGS + 2;) {
        char *arg = rest + at;
        size_t len = strnlen(arg, rest_len - at);
        arg[len] = '\0';
        if (strncmp(arg, "--config", 8) != 0)
            argv[argc++] = arg;
        at += len + 1;
    }
    argv[argc] = NULL;
    char *envp[] = {NULL};

    lynx_err_t err;
    runner_config_t *config = runner_config_load(argc, argv, envp, &err);
    if (config) {
        const char *const *types = NULL;
        size_t count = runner_config_simulation_types(config, &types);
        for (size_t i = 0; i < count; i++)
            if (!types[i])
                abort();
    } else if (err.code != LYNX_OK && !err.message[0])
        abort(); //  a refusal always says why
    runner_config_destroy(&config);
    free(rest);
    close(fd);
    return 0;
}

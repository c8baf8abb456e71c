//  runner_config: the lynx-runner configuration, merged field by field with the precedence
//  command-line flag > LYNX_RUNNER_* environment > YAML file > built-in default.
//
//  The YAML file is named by --config or LYNX_RUNNER_CONFIG. Its fields are those of
//  lynx-docs/tutorial-basic-orbit.txt plus runner_id, name, broker_endpoint, events_endpoint,
//  command_executable, command_args and clients_dir. Each field's environment variable is
//  LYNX_RUNNER_<FIELD IN UPPER CASE>; list fields take a comma-separated list in the
//  environment and on the command line.
#ifndef RUNNER_CONFIG_H_INCLUDED
#define RUNNER_CONFIG_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#include "lynx_err.h"

//  Most arguments command_args may hold (the executable takes one more argv slot).
#define RUNNER_CONFIG_MAX_COMMAND_ARGS 63

typedef struct {
    char *runner_id;       //  default: the host name
    char *name;            //  default: runner_id
    char *broker_endpoint; //  default: tcp://127.0.0.1:5555
    char *events_endpoint; //  default: none (broker_endpoint's host, the port REGISTERED names)
    char **engines;        //  default: [basilisk]
    size_t engine_count;
    char **capabilities; //  default: []
    size_t capability_count;
    char *working_directory;   //  default: "." (resolved to an absolute path)
    char *output_root;         //  default: /tmp/tetryx-runs (made absolute)
    char *python_executable;   //  default: /usr/bin/python3
    char *basilisk_entrypoint; //  default: none; required when engines has basilisk
    char *command_executable;  //  default: none; required when engines has command
    char **command_args;       //  default: []; items kept verbatim, at most 63
    size_t command_arg_count;
    int max_concurrent_jobs;        //  default: 1; 1..1024
    double heartbeat_interval_secs; //  default: 2; > 0
    int cpu_cores;                  //  default: detected (online processors)
    double memory_gb;               //  default: detected (physical memory)
    bool gpu_available;             //  default: false
    bool keep_local_outputs; //  default: true; false removes a job's output dir once acknowledged
    char *clients_dir; //  default: detected (the Python telemetry client's directory), or NULL
    char *key_file;    //  default: <working_directory>/.lynx/runner.key
    char *broker_public_key; //  Z85 or a zcert file; required unless insecure or enroll
    bool insecure;           //  default: false (CURVE on)
    char *enroll;            //  gateway URL to ask for enrollment at start, or NULL
    char *token;             //  API token for enroll, or NULL
    char *cacert;            //  CA file for an https enroll URL, or NULL
    bool check_only;         //  --check: check the setup and the broker link, then exit
    bool init_keys;          //  --init-keys: make the keypair, print its public key, exit
} runner_config_t;

//  Build the configuration from argv (flags), envp (a NULL-terminated "KEY=VALUE" array such
//  as environ; tests pass their own) and the YAML file they name. Returns NULL with err
//  (LYNX_EINVALID, field path such as "max_concurrent_jobs" or "--max-concurrent-jobs", and a
//  reason naming the source: file path, variable or flag) on a bad value, an unknown YAML
//  field or flag, or an unreadable file. --help is reported as err->code LYNX_OK and NULL.
runner_config_t *runner_config_load(int argc, char **argv, char **envp, lynx_err_t *err);

//  Destroy; sets *self_p to NULL. NULL-safe.
void runner_config_destroy(runner_config_t **self_p);

//  Usage text for --help (flags, environment variables, precedence); in runner_usage.c.
const char *runner_config_usage(void);

//  supported_simulation_types: the engines followed by the capabilities, without duplicates.
//  Returns the count; *types_p is a borrowed array valid while self lives.
size_t runner_config_simulation_types(runner_config_t *self, const char *const **types_p);

#endif

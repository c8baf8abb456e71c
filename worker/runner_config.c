//  runner_config: merge flags, LYNX_RUNNER_* variables, the YAML file and defaults.
//
//  Every field is one row of s_fields; the loaders for each source walk that table, so adding a
//  field is adding a row (and a paragraph of usage text in runner_usage.c). Layers are applied from
//  the weakest up — defaults, file, environment, flags — each overwriting what the previous one
//  set, so precedence falls out of the order of the calls in runner_config_load.
#include "runner_config.h"
#include "lynx_check.h"
#include "lynx_options.h"
#include "lynx_yaml.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

//  What a field accepts is the field-checking kit's (lynx_check) typed field; a path is a
//  string made absolute against the current directory.
typedef struct {
    const char *key;  //  YAML field
    const char *env;  //  environment variable
    const char *flag; //  command-line flag
    lynx_check_type_t type;
    bool is_path;
    size_t offset;       //  of the value in runner_config_t
    size_t count_offset; //  of the element count, for lists
} s_field_t;

#define S_AT(member) offsetof(runner_config_t, member)
#define S_STRING                                                                                   \
    {                                                                                              \
        LYNX_CHECK_KIND_STRING, 0, 0                                                               \
    }
#define S_STRINGS                                                                                  \
    {                                                                                              \
        LYNX_CHECK_KIND_STRINGS, 0, 0                                                              \
    }
#define S_POSITIVE                                                                                 \
    {                                                                                              \
        LYNX_CHECK_KIND_POSITIVE, 0, 0                                                             \
    }
#define S_BOOL                                                                                     \
    {                                                                                              \
        LYNX_CHECK_KIND_BOOL, 0, 0                                                                 \
    }
#define S_INTEGER(min, max)                                                                        \
    {                                                                                              \
        LYNX_CHECK_KIND_INTEGER, min, max                                                          \
    }

//  key, environment variable, flag, type, is a path, value offset, count offset
static const s_field_t s_fields[] = {
    {"runner_id", "LYNX_RUNNER_RUNNER_ID", "--runner-id", S_STRING, false, S_AT(runner_id), 0},
    {"name", "LYNX_RUNNER_NAME", "--name", S_STRING, false, S_AT(name), 0},
    {"broker_endpoint", "LYNX_RUNNER_BROKER_ENDPOINT", "--broker", S_STRING, false,
     S_AT(broker_endpoint), 0},
    {"events_endpoint", "LYNX_RUNNER_EVENTS_ENDPOINT", "--events-endpoint", S_STRING, false,
     S_AT(events_endpoint), 0},
    {"engines", "LYNX_RUNNER_ENGINES", "--engines", S_STRINGS, false, S_AT(engines),
     S_AT(engine_count)},
    {"capabilities", "LYNX_RUNNER_CAPABILITIES", "--capabilities", S_STRINGS, false,
     S_AT(capabilities), S_AT(capability_count)},
    {"working_directory", "LYNX_RUNNER_WORKING_DIRECTORY", "--working-directory", S_STRING, true,
     S_AT(working_directory), 0},
    {"output_root", "LYNX_RUNNER_OUTPUT_ROOT", "--output-root", S_STRING, true, S_AT(output_root),
     0},
    {"python_executable", "LYNX_RUNNER_PYTHON_EXECUTABLE", "--python-executable", S_STRING, false,
     S_AT(python_executable), 0},
    {"basilisk_entrypoint", "LYNX_RUNNER_BASILISK_ENTRYPOINT", "--basilisk-entrypoint", S_STRING,
     false, S_AT(basilisk_entrypoint), 0},
    {"command_executable", "LYNX_RUNNER_COMMAND_EXECUTABLE", "--command-executable", S_STRING,
     false, S_AT(command_executable), 0},
    {"command_args",
     "LYNX_RUNNER_COMMAND_ARGS",
     "--command-args",
     {LYNX_CHECK_KIND_ARGS, 0, 0},
     false,
     S_AT(command_args),
     S_AT(command_arg_count)},
    {"max_concurrent_jobs", "LYNX_RUNNER_MAX_CONCURRENT_JOBS", "--max-concurrent-jobs",
     S_INTEGER(1, 1024), false, S_AT(max_concurrent_jobs), 0},
    {"heartbeat_interval_secs", "LYNX_RUNNER_HEARTBEAT_INTERVAL_SECS", "--heartbeat-interval-secs",
     S_POSITIVE, false, S_AT(heartbeat_interval_secs), 0},
    {"cpu_cores", "LYNX_RUNNER_CPU_CORES", "--cpu-cores", S_INTEGER(1, 65536), false,
     S_AT(cpu_cores), 0},
    {"memory_gb", "LYNX_RUNNER_MEMORY_GB", "--memory-gb", S_POSITIVE, false, S_AT(memory_gb), 0},
    {"gpu_available", "LYNX_RUNNER_GPU_AVAILABLE", "--gpu-available", S_BOOL, false,
     S_AT(gpu_available), 0},
    {"keep_local_outputs", "LYNX_RUNNER_KEEP_LOCAL_OUTPUTS", "--keep-local-outputs", S_BOOL, false,
     S_AT(keep_local_outputs), 0},
    {"clients_dir", "LYNX_RUNNER_CLIENTS_DIR", "--clients-dir", S_STRING, true, S_AT(clients_dir),
     0},
    {"key_file", "LYNX_RUNNER_KEY_FILE", "--key-file", S_STRING, true, S_AT(key_file), 0},
    {"broker_public_key", "LYNX_RUNNER_BROKER_PUBLIC_KEY", "--broker-public-key", S_STRING, false,
     S_AT(broker_public_key), 0},
    {"insecure", "LYNX_RUNNER_INSECURE", "--insecure", S_BOOL, false, S_AT(insecure), 0},
    {"enroll", "LYNX_RUNNER_ENROLL", "--enroll", S_STRING, false, S_AT(enroll), 0},
    {"token", "LYNX_RUNNER_TOKEN", "--token", S_STRING, false, S_AT(token), 0},
    {"cacert", "LYNX_RUNNER_CACERT", "--cacert", S_STRING, true, S_AT(cacert), 0},
};

#define S_FIELD_COUNT (sizeof s_fields / sizeof s_fields[0])
#define S_CONFIG_ENV "LYNX_RUNNER_CONFIG"
#define S_CONFIG_FLAG "--config"

//  The public struct plus what runner_config_simulation_types lends out. runner_config_load
//  hands out &self->config, so destroy can get back to the whole.
typedef struct {
    runner_config_t config;
    const char **types;
    size_t type_count;
} s_self_t;

//  Where a value came from, for error messages.
typedef struct {
    const char *file; //  config path as the user gave it, or NULL for env and flags
    const char *name; //  YAML key, variable or flag as the user wrote it
} s_origin_t;

static int s_out_of_memory(lynx_err_t *err)
{
    return lynx_err_set(err, LYNX_EINTERNAL, "", "out of memory");
}

//  Fields held as a char ** and a count; the others of kind STRING are one char *.
static bool s_is_list(const s_field_t *field)
{
    return field->type.kind == LYNX_CHECK_KIND_STRINGS || field->type.kind == LYNX_CHECK_KIND_ARGS;
}

static char **s_string_slot(runner_config_t *config, const s_field_t *field)
{
    return (char **)((char *)config + field->offset);
}

static char ***s_list_slot(runner_config_t *config, const s_field_t *field, size_t **count_p)
{
    *count_p = (size_t *)((char *)config + field->count_offset);
    return (char ***)((char *)config + field->offset);
}

//  Report a bad value: "runner.yaml: max_concurrent_jobs: reason" for the file,
//  "LYNX_RUNNER_X: reason" or "--flag: reason" otherwise. The field is the name as written.
static int s_fail(lynx_err_t *err, const s_origin_t *origin, const char *reason)
{
    if (origin->file)
        return lynx_err_set(err, LYNX_EINVALID, origin->name, "%s: %s: %s", origin->file,
                            origin->name, reason);
    return lynx_err_set(err, LYNX_EINVALID, origin->name, "%s: %s", origin->name, reason);
}

//  Lexically clean an absolute path in place: drop "." and empty components and apply "..".
//  Symbolic links are deliberately not resolved; the directory may not exist yet.
static void s_normalize_path(char *path)
{
    char *out = path; //  writes "/component" pairs; path[0] is '/'
    const char *in = path;
    while (*in) {
        while (*in == '/')
            in++;
        const char *end = in;
        while (*end && *end != '/')
            end++;
        size_t len = (size_t)(end - in);
        if (len == 0 || (len == 1 && in[0] == '.')) {
            //  nothing to keep
        } else if (len == 2 && in[0] == '.' && in[1] == '.') {
            while (out > path && *--out != '/')
                ;
        } else {
            *out++ = '/';
            memmove(out, in, len);
            out += len;
        }
        in = end;
    }
    if (out == path)
        *out++ = '/';
    *out = '\0';
}

//  Absolute form of path: as is when it starts with '/', else joined to the current
//  directory. Returns an owned string or NULL with err.
static char *s_absolute_path(const char *path, lynx_err_t *err)
{
    char *cwd = NULL;
    if (path[0] != '/') {
        cwd = getcwd(NULL, 0);
        if (!cwd) {
            lynx_err_set(err, LYNX_EINTERNAL, "", "%s: cannot make absolute: getcwd: %s", path,
                         strerror(errno));
            return NULL;
        }
    }
    size_t size = strlen(path) + (cwd ? strlen(cwd) + 1 : 0) + 2;
    char *absolute = malloc(size);
    if (absolute) {
        if (cwd)
            snprintf(absolute, size, "%s/%s", cwd, path);
        else
            snprintf(absolute, size, "%s", path);
        s_normalize_path(absolute);
    } else
        s_out_of_memory(err);
    free(cwd);
    return absolute;
}

//  Store a checked value into its field; owned items are taken.
static int s_store(runner_config_t *config, const s_field_t *field, lynx_check_value_t *value,
                   lynx_err_t *err)
{
    char *base = (char *)config + field->offset;
    switch (field->type.kind) {
    case LYNX_CHECK_KIND_STRING: {
        char *copy = field->is_path ? s_absolute_path(value->text, err) : strdup(value->text);
        if (!copy)
            return field->is_path ? -1 : s_out_of_memory(err);
        char **slot = s_string_slot(config, field);
        free(*slot);
        *slot = copy;
        return 0;
    }
    case LYNX_CHECK_KIND_STRINGS:
    case LYNX_CHECK_KIND_ARGS: {
        size_t *count_p;
        char ***slot = s_list_slot(config, field, &count_p);
        lynx_check_items_free(*slot, *count_p);
        *slot = value->items;
        *count_p = value->count;
        value->items = NULL;
        return 0;
    }
    case LYNX_CHECK_KIND_INTEGER:
        *(int *)base = (int)value->integer;
        return 0;
    case LYNX_CHECK_KIND_POSITIVE:
        *(double *)base = value->number;
        return 0;
    case LYNX_CHECK_KIND_BOOL:
        *(bool *)base = value->boolean;
        return 0;
    }
    return s_out_of_memory(err);
}

//  Check a value with the kit and store it: member from the YAML file (types are strict, so
//  max_concurrent_jobs: "4" is refused, but a list may be a comma-separated string; null
//  leaves the field as it was), or text from the environment or a flag when member is NULL.
static int s_apply(runner_config_t *config, const s_field_t *field, const lynx_value_t *member,
                   const char *text, const s_origin_t *origin, lynx_err_t *err)
{
    lynx_value_t *errors = lynx_value_array();
    if (!errors)
        return s_out_of_memory(err);
    lynx_check_t check = {.errors = errors};
    lynx_check_value_t value;
    int rc = member ? lynx_check_value(&check, member, NULL, origin->name, &field->type, &value)
                    : lynx_check_text(&check, text, NULL, origin->name, &field->type, &value);
    if (check.out_of_memory)
        rc = s_out_of_memory(err);
    else if (rc < 0)
        rc = s_fail(err, origin, lynx_value_get_string(lynx_value_at(errors, 0), "message", ""));
    else if (rc == 1)
        rc = s_store(config, field, &value, err);
    lynx_check_items_free(value.items, value.count); //  NULL once taken
    lynx_value_destroy(&errors);
    return rc;
}

static const s_field_t *s_field_by_key(const char *key)
{
    for (size_t index = 0; index < S_FIELD_COUNT; index++)
        if (strcmp(s_fields[index].key, key) == 0)
            return &s_fields[index];
    return NULL;
}

//  Match "--flag" or "--flag=value" against a flag name. Sets *inline_p to the value after '='
//  or NULL.
static bool s_flag_matches(const char *arg, const char *flag, const char **inline_p)
{
    size_t len = strlen(flag);
    if (strncmp(arg, flag, len) != 0 || (arg[len] != '\0' && arg[len] != '='))
        return false;
    *inline_p = arg[len] == '=' ? arg + len + 1 : NULL;
    return true;
}

static bool s_has_telemetry_client(const char *dir)
{
    char path[PATH_MAX];
    int len = snprintf(path, sizeof path, "%s/lynx_telemetry_client.py", dir);
    return len > 0 && (size_t)len < sizeof path && access(path, R_OK) == 0;
}

//  Where scenarios import the Python telemetry client from unless configured: installed
//  beside the executable (<bin>/../share/lynx/python), else the source tree it was built from
//  (LYNX_CLIENTS_PYTHON_DIR). NULL when neither holds it.
static char *s_detect_clients_dir(void)
{
    char exe[PATH_MAX], installed[PATH_MAX + 32], resolved[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[len > 0 ? len : 0] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash)
        *slash = '\0';
    snprintf(installed, sizeof installed, "%s/../share/lynx/python", exe);
    const char *candidates[] = {*exe ? installed : "",
#ifdef LYNX_CLIENTS_PYTHON_DIR
                                LYNX_CLIENTS_PYTHON_DIR,
#endif
                                NULL};
    for (size_t i = 0; candidates[i]; i++)
        if (*candidates[i] && s_has_telemetry_client(candidates[i]) &&
            realpath(candidates[i], resolved))
            return strdup(resolved);
    return NULL;
}

static int s_apply_defaults(runner_config_t *config, lynx_err_t *err)
{
    char host[256] = "";
    if (gethostname(host, sizeof host - 1) != 0 || !*host)
        snprintf(host, sizeof host, "runner");
    config->runner_id = strdup(host);
    config->broker_endpoint = strdup("tcp://127.0.0.1:5555");
    config->engines = calloc(1, sizeof *config->engines);
    if (config->engines) {
        config->engines[0] = strdup("basilisk");
        config->engine_count = config->engines[0] ? 1 : 0;
    }
    config->capabilities = calloc(1, sizeof *config->capabilities);
    config->command_args = calloc(1, sizeof *config->command_args);
    config->working_directory = s_absolute_path(".", err);
    if (!config->working_directory)
        return -1;
    config->output_root = strdup("/tmp/tetryx-runs");
    config->python_executable = strdup("/usr/bin/python3");
    config->max_concurrent_jobs = 1;
    config->keep_local_outputs = true;
    config->heartbeat_interval_secs = 2;
    config->clients_dir = s_detect_clients_dir();

    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    config->cpu_cores = cores < 1 ? 1 : cores > 65536 ? 65536 : (int)cores;
    long pages = sysconf(_SC_PHYS_PAGES);
    long page_size = sysconf(_SC_PAGESIZE);
    double gib = pages > 0 && page_size > 0 ? (double)pages * (double)page_size / 1073741824.0 : 0;
    config->memory_gb = round(gib * 10) / 10;
    if (config->memory_gb <= 0)
        config->memory_gb = 0.1;

    if (!config->runner_id || !config->broker_endpoint || config->engine_count != 1 ||
        !config->capabilities || !config->command_args || !config->output_root ||
        !config->python_executable)
        return s_out_of_memory(err);
    return 0;
}

static int s_apply_file(runner_config_t *config, const char *path, const char *source,
                        lynx_err_t *err)
{
    lynx_err_t load_err;
    lynx_err_clear(&load_err);
    lynx_value_t *root = lynx_yaml_load_file(path, &load_err);
    if (!root)
        return lynx_err_set(err, LYNX_EINVALID, source, "%s", load_err.message);

    int rc = 0;
    if (lynx_value_type(root) != LYNX_VALUE_NULL && lynx_value_type(root) != LYNX_VALUE_MAP)
        rc = lynx_err_set(err, LYNX_EINVALID, source,
                          "%s: must be a mapping of runner fields, not %s", path,
                          lynx_value_type_name(lynx_value_type(root)));

    for (size_t index = 0; rc == 0 && index < lynx_value_size(root); index++) {
        const char *key = lynx_value_key_at(root, index);
        s_origin_t origin = {.file = path, .name = key};
        const s_field_t *field = s_field_by_key(key);
        if (!field)
            rc = s_fail(err, &origin, "unknown field");
        else
            rc = s_apply(config, field, lynx_value_at(root, index), NULL, &origin, err);
    }
    lynx_value_destroy(&root);
    return rc;
}

static int s_apply_env(runner_config_t *config, char **envp, lynx_err_t *err)
{
    for (size_t index = 0; index < S_FIELD_COUNT; index++) {
        const char *text = lynx_options_getenv(envp, s_fields[index].env);
        s_origin_t origin = {.name = s_fields[index].env};
        if (text && s_apply(config, &s_fields[index], NULL, text, &origin, err) != 0)
            return -1;
    }
    return 0;
}

//  One flag occurrence, remembered while argv is scanned and applied after the file and the
//  environment.
typedef struct {
    const s_field_t *field; //  NULL for --config
    const char *flag;       //  as written, without "=value"
    const char *value;
} s_flag_t;

//  Scan argv. Fills flags (room for argc entries); returns their count, -1 with err on an
//  unknown flag or a missing value, and -2 for --help.
static int s_scan_flags(int argc, char **argv, s_flag_t *flags, runner_config_t *config,
                        lynx_err_t *err)
{
    int count = 0;
    for (int index = 1; index < argc; index++) {
        const char *arg = argv[index];
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0)
            return -2;
        if (strcmp(arg, "--check") == 0) { //  a mode, not a setting: takes no value
            config->check_only = true;
            continue;
        }
        if (strcmp(arg, "--init-keys") == 0) {
            config->init_keys = true;
            continue;
        }
        if (strncmp(arg, "--", 2) != 0)
            return lynx_err_set(err, LYNX_EINVALID, arg, "%s: unexpected argument (see --help)",
                                arg);
        const char *value = NULL;
        const s_field_t *field = NULL;
        const char *flag = NULL;
        if (s_flag_matches(arg, S_CONFIG_FLAG, &value))
            flag = S_CONFIG_FLAG;
        for (size_t row = 0; !flag && row < S_FIELD_COUNT; row++)
            if (s_flag_matches(arg, s_fields[row].flag, &value)) {
                field = &s_fields[row];
                flag = field->flag;
            }
        if (!flag) {
            const char *equals = strchr(arg, '=');
            int len = equals ? (int)(equals - arg) : (int)strlen(arg);
            char name[LYNX_ERR_FIELD_MAX];
            snprintf(name, sizeof name, "%.*s", len, arg);
            return lynx_err_set(err, LYNX_EINVALID, name, "%s: unknown flag (see --help)", name);
        }
        if (!value) {
            if (index + 1 >= argc)
                return lynx_err_set(err, LYNX_EINVALID, flag, "%s: requires a value", flag);
            value = argv[++index];
        }
        flags[count++] = (s_flag_t){.field = field, .flag = flag, .value = value};
    }
    return count;
}

static int s_check(runner_config_t *config, lynx_err_t *err)
{
    if (!config->name && !(config->name = strdup(config->runner_id)))
        return s_out_of_memory(err);
    if (!config->key_file) {
        size_t size = strlen(config->working_directory) + sizeof "/.lynx/runner.key";
        if (!(config->key_file = malloc(size)))
            return s_out_of_memory(err);
        snprintf(config->key_file, size, "%s/.lynx/runner.key", config->working_directory);
    }
    bool basilisk = false, command = false;
    for (size_t index = 0; index < config->engine_count; index++) {
        basilisk = basilisk || strcmp(config->engines[index], "basilisk") == 0;
        command = command || strcmp(config->engines[index], "command") == 0;
    }
    if (basilisk && !config->basilisk_entrypoint)
        return lynx_err_set(err, LYNX_EINVALID, "basilisk_entrypoint",
                            "basilisk_entrypoint: required when engines include basilisk");
    if (command && !config->command_executable)
        return lynx_err_set(err, LYNX_EINVALID, "command_executable",
                            "command_executable: required when engines include command");
    if (config->clients_dir && !s_has_telemetry_client(config->clients_dir))
        return lynx_err_set(err, LYNX_EINVALID, "clients_dir",
                            "clients_dir: no lynx_telemetry_client.py in %s", config->clients_dir);
    if (config->command_arg_count > RUNNER_CONFIG_MAX_COMMAND_ARGS)
        return lynx_err_set(err, LYNX_EINVALID, "command_args",
                            "command_args: %zu arguments, at most %d are allowed",
                            config->command_arg_count, RUNNER_CONFIG_MAX_COMMAND_ARGS);
    return 0;
}

//  Engines then capabilities, first occurrence wins. The strings are borrowed from config.
static int s_build_types(s_self_t *self, lynx_err_t *err)
{
    runner_config_t *config = &self->config;
    size_t total = config->engine_count + config->capability_count;
    self->types = calloc(total + 1, sizeof *self->types);
    if (!self->types)
        return s_out_of_memory(err);
    for (size_t index = 0; index < total; index++) {
        const char *type = index < config->engine_count
                               ? config->engines[index]
                               : config->capabilities[index - config->engine_count];
        bool seen = false;
        for (size_t prior = 0; !seen && prior < self->type_count; prior++)
            seen = strcmp(self->types[prior], type) == 0;
        if (!seen)
            self->types[self->type_count++] = type;
    }
    return 0;
}

runner_config_t *runner_config_load(int argc, char **argv, char **envp, lynx_err_t *err)
{
    lynx_err_clear(err);
    s_self_t *self = calloc(1, sizeof *self);
    s_flag_t *flags = calloc((size_t)(argc > 0 ? argc : 1), sizeof *flags);
    if (!self || !flags) {
        free(self);
        free(flags);
        s_out_of_memory(err);
        return NULL;
    }
    runner_config_t *config = &self->config;
    int flag_count = s_scan_flags(argc, argv, flags, config, err);
    int rc = flag_count < 0 ? -1 : 0; //  for --help (-2) err stays LYNX_OK

    if (rc == 0)
        rc = s_apply_defaults(config, err);

    if (rc == 0) {
        const char *config_path = lynx_options_getenv(envp, S_CONFIG_ENV);
        const char *source = S_CONFIG_ENV;
        for (int index = 0; index < flag_count; index++)
            if (!flags[index].field) {
                config_path = flags[index].value;
                source = S_CONFIG_FLAG;
            }
        if (config_path && !*config_path)
            rc = lynx_err_set(err, LYNX_EINVALID, source, "%s: must name a file", source);
        else if (config_path)
            rc = s_apply_file(config, config_path, source, err);
    }
    if (rc == 0)
        rc = s_apply_env(config, envp, err);
    for (int index = 0; rc == 0 && index < flag_count; index++) {
        s_origin_t origin = {.name = flags[index].flag};
        if (flags[index].field)
            rc = s_apply(config, flags[index].field, NULL, flags[index].value, &origin, err);
    }
    if (rc == 0)
        rc = s_check(config, err);
    if (rc == 0)
        rc = s_build_types(self, err);

    free(flags);
    if (rc != 0)
        runner_config_destroy(&config);
    return config;
}

void runner_config_destroy(runner_config_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    s_self_t *self = (s_self_t *)*self_p;
    runner_config_t *config = &self->config;
    for (size_t index = 0; index < S_FIELD_COUNT; index++) {
        const s_field_t *field = &s_fields[index];
        if (s_is_list(field)) {
            size_t *count_p;
            char ***slot = s_list_slot(config, field, &count_p);
            lynx_check_items_free(*slot, *count_p);
        } else if (field->type.kind == LYNX_CHECK_KIND_STRING)
            free(*s_string_slot(config, field));
    }
    free(self->types);
    free(self);
    *self_p = NULL;
}

size_t runner_config_simulation_types(runner_config_t *self, const char *const **types_p)
{
    s_self_t *whole = (s_self_t *)self;
    if (types_p)
        *types_p = whole->types;
    return whole->type_count;
}

//  runner_config: merge flags, LYNX_RUNNER_* variables, the YAML file and defaults.
//
//  Every field is one row of s_fields; the loaders for each source walk that table, so adding a
//  field is adding a row (and a paragraph of usage text in runner_usage.c). Layers are applied from
//  the weakest up — defaults, file, environment, flags — each overwriting what the previous one
//  set, so precedence falls out of the order of the calls in runner_config_load.
#include "runner_config.h"
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

typedef enum {
    S_KIND_STRING, //  non-empty string, kept as given
    S_KIND_PATH,   //  non-empty string, made absolute against the current directory
    S_KIND_LIST,   //  YAML list of strings, or a comma-separated string
    S_KIND_ARGS,   //  argument list: as S_KIND_LIST, but items are kept verbatim (see usage)
    S_KIND_INT,    //  integer in [min, max]
    S_KIND_DOUBLE, //  finite number > 0
    S_KIND_BOOL,   //  true or false
} s_kind_t;

typedef struct {
    const char *key;  //  YAML field
    const char *env;  //  environment variable
    const char *flag; //  command-line flag
    s_kind_t kind;
    size_t offset;       //  of the value in runner_config_t
    size_t count_offset; //  of the element count, for lists
    int min, max;        //  for integers
} s_field_t;

#define S_AT(member) offsetof(runner_config_t, member)

//  key, environment variable, flag, kind, value offset, count offset, min, max
static const s_field_t s_fields[] = {
    {"runner_id", "LYNX_RUNNER_RUNNER_ID", "--runner-id", S_KIND_STRING, S_AT(runner_id), 0, 0, 0},
    {"name", "LYNX_RUNNER_NAME", "--name", S_KIND_STRING, S_AT(name), 0, 0, 0},
    {"broker_endpoint", "LYNX_RUNNER_BROKER_ENDPOINT", "--broker", S_KIND_STRING,
     S_AT(broker_endpoint), 0, 0, 0},
    {"events_endpoint", "LYNX_RUNNER_EVENTS_ENDPOINT", "--events-endpoint", S_KIND_STRING,
     S_AT(events_endpoint), 0, 0, 0},
    {"engines", "LYNX_RUNNER_ENGINES", "--engines", S_KIND_LIST, S_AT(engines), S_AT(engine_count),
     0, 0},
    {"capabilities", "LYNX_RUNNER_CAPABILITIES", "--capabilities", S_KIND_LIST, S_AT(capabilities),
     S_AT(capability_count), 0, 0},
    {"working_directory", "LYNX_RUNNER_WORKING_DIRECTORY", "--working-directory", S_KIND_PATH,
     S_AT(working_directory), 0, 0, 0},
    {"output_root", "LYNX_RUNNER_OUTPUT_ROOT", "--output-root", S_KIND_PATH, S_AT(output_root), 0,
     0, 0},
    {"python_executable", "LYNX_RUNNER_PYTHON_EXECUTABLE", "--python-executable", S_KIND_STRING,
     S_AT(python_executable), 0, 0, 0},
    {"basilisk_entrypoint", "LYNX_RUNNER_BASILISK_ENTRYPOINT", "--basilisk-entrypoint",
     S_KIND_STRING, S_AT(basilisk_entrypoint), 0, 0, 0},
    {"command_executable", "LYNX_RUNNER_COMMAND_EXECUTABLE", "--command-executable", S_KIND_STRING,
     S_AT(command_executable), 0, 0, 0},
    {"command_args", "LYNX_RUNNER_COMMAND_ARGS", "--command-args", S_KIND_ARGS, S_AT(command_args),
     S_AT(command_arg_count), 0, 0},
    {"max_concurrent_jobs", "LYNX_RUNNER_MAX_CONCURRENT_JOBS", "--max-concurrent-jobs", S_KIND_INT,
     S_AT(max_concurrent_jobs), 0, 1, 1024},
    {"heartbeat_interval_secs", "LYNX_RUNNER_HEARTBEAT_INTERVAL_SECS", "--heartbeat-interval-secs",
     S_KIND_DOUBLE, S_AT(heartbeat_interval_secs), 0, 0, 0},
    {"cpu_cores", "LYNX_RUNNER_CPU_CORES", "--cpu-cores", S_KIND_INT, S_AT(cpu_cores), 0, 1, 65536},
    {"memory_gb", "LYNX_RUNNER_MEMORY_GB", "--memory-gb", S_KIND_DOUBLE, S_AT(memory_gb), 0, 0, 0},
    {"gpu_available", "LYNX_RUNNER_GPU_AVAILABLE", "--gpu-available", S_KIND_BOOL,
     S_AT(gpu_available), 0, 0, 0},
    {"clients_dir", "LYNX_RUNNER_CLIENTS_DIR", "--clients-dir", S_KIND_PATH, S_AT(clients_dir), 0,
     0, 0},
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

static void s_strings_free(char **strings, size_t count)
{
    for (size_t index = 0; index < count; index++)
        free(strings[index]);
    free(strings);
}

//  Fields held as one char *.
static bool s_is_string(const s_field_t *field)
{
    return field->kind == S_KIND_STRING || field->kind == S_KIND_PATH;
}

//  Fields held as a char ** and a count.
static bool s_is_list(const s_field_t *field)
{
    return field->kind == S_KIND_LIST || field->kind == S_KIND_ARGS;
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

//  What a field accepts, in the words every source's error uses.
static int s_fail_value(lynx_err_t *err, const s_origin_t *origin, const s_field_t *field)
{
    char reason[128];
    switch (field->kind) {
    case S_KIND_STRING:
    case S_KIND_PATH:
        snprintf(reason, sizeof reason, "must be a non-empty string");
        break;
    case S_KIND_LIST:
    case S_KIND_ARGS:
        snprintf(reason, sizeof reason, "must be a list of strings or a comma-separated string");
        break;
    case S_KIND_INT:
        snprintf(reason, sizeof reason, "must be an integer between %d and %d", field->min,
                 field->max);
        break;
    case S_KIND_DOUBLE:
        snprintf(reason, sizeof reason, "must be a number greater than 0");
        break;
    case S_KIND_BOOL:
        snprintf(reason, sizeof reason, "must be true or false");
        break;
    }
    return s_fail(err, origin, reason);
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

static int s_set_string(runner_config_t *config, const s_field_t *field, const char *value,
                        lynx_err_t *err)
{
    char *copy = strdup(value);
    if (!copy)
        return s_out_of_memory(err);
    char **slot = s_string_slot(config, field);
    free(*slot);
    *slot = copy;
    return 0;
}

static int s_set_list(runner_config_t *config, const s_field_t *field, char **items, size_t count)
{
    size_t *count_p;
    char ***slot = s_list_slot(config, field, &count_p);
    s_strings_free(*slot, *count_p);
    *slot = items;
    *count_p = count;
    return 0;
}

//  Split "a, b,,c" into ["a", "b", "c"]: items are trimmed and empty ones skipped, so "" is
//  the empty list. Returns an owned array (never NULL on success, even when empty).
static char **s_split_list(const char *text, size_t *count_p)
{
    size_t capacity = 1;
    for (const char *cursor = text; *cursor; cursor++)
        capacity += *cursor == ',';
    char **items = calloc(capacity, sizeof *items);
    if (!items)
        return NULL;
    size_t count = 0;
    const char *cursor = text;
    while (true) {
        const char *end = strchr(cursor, ',');
        if (!end)
            end = cursor + strlen(cursor);
        const char *first = cursor, *last = end;
        while (first < last && (*first == ' ' || *first == '\t'))
            first++;
        while (last > first && (last[-1] == ' ' || last[-1] == '\t'))
            last--;
        if (last > first) {
            items[count] = strndup(first, (size_t)(last - first));
            if (!items[count]) {
                s_strings_free(items, count);
                return NULL;
            }
            count++;
        }
        if (!*end)
            break;
        cursor = end + 1;
    }
    *count_p = count;
    return items;
}

//  Split "-c,echo hi, x" into ["-c", "echo hi", " x"]: an argument list is split at every comma
//  and nothing else is touched, since a program may care about spaces or empty arguments. ""
//  is the empty list. Returns an owned array, or NULL on out-of-memory.
static char **s_split_args(const char *text, size_t *count_p)
{
    size_t capacity = 2;
    for (const char *cursor = text; *cursor; cursor++)
        capacity += *cursor == ',';
    char **items = calloc(capacity, sizeof *items);
    if (!items)
        return NULL;
    size_t count = 0;
    const char *cursor = text;
    while (*text) {
        const char *end = strchr(cursor, ',');
        size_t len = end ? (size_t)(end - cursor) : strlen(cursor);
        items[count] = strndup(cursor, len);
        if (!items[count]) {
            s_strings_free(items, count);
            return NULL;
        }
        count++;
        if (!end)
            break;
        cursor = end + 1;
    }
    *count_p = count;
    return items;
}

//  Whole-string integer, so "4x", "" and "2.5" are refused.
static bool s_parse_int(const char *text, long long *value_p)
{
    char *end;
    errno = 0;
    long long value = strtoll(text, &end, 10);
    if (errno || end == text || *end)
        return false;
    *value_p = value;
    return true;
}

static bool s_parse_double(const char *text, double *value_p)
{
    char *end;
    errno = 0;
    double value = strtod(text, &end);
    if (errno || end == text || *end)
        return false;
    *value_p = value;
    return true;
}

static int s_set_int(runner_config_t *config, const s_field_t *field, long long value,
                     const s_origin_t *origin, lynx_err_t *err)
{
    if (value < field->min || value > field->max)
        return s_fail_value(err, origin, field);
    *(int *)((char *)config + field->offset) = (int)value;
    return 0;
}

static int s_set_double(runner_config_t *config, const s_field_t *field, double value,
                        const s_origin_t *origin, lynx_err_t *err)
{
    if (!isfinite(value) || value <= 0)
        return s_fail_value(err, origin, field);
    *(double *)((char *)config + field->offset) = value;
    return 0;
}

//  Apply a value given as text (environment, flag, or a YAML string for a text field).
static int s_apply_text(runner_config_t *config, const s_field_t *field, const char *text,
                        const s_origin_t *origin, lynx_err_t *err)
{
    switch (field->kind) {
    case S_KIND_STRING:
        if (!*text)
            return s_fail_value(err, origin, field);
        return s_set_string(config, field, text, err);
    case S_KIND_PATH: {
        if (!*text)
            return s_fail_value(err, origin, field);
        char *absolute = s_absolute_path(text, err);
        if (!absolute)
            return -1;
        char **slot = s_string_slot(config, field);
        free(*slot);
        *slot = absolute;
        return 0;
    }
    case S_KIND_LIST:
    case S_KIND_ARGS: {
        size_t count = 0;
        char **items =
            field->kind == S_KIND_ARGS ? s_split_args(text, &count) : s_split_list(text, &count);
        if (!items)
            return s_out_of_memory(err);
        return s_set_list(config, field, items, count);
    }
    case S_KIND_INT: {
        long long value;
        if (!s_parse_int(text, &value))
            return s_fail_value(err, origin, field);
        return s_set_int(config, field, value, origin, err);
    }
    case S_KIND_DOUBLE: {
        double value;
        if (!s_parse_double(text, &value))
            return s_fail_value(err, origin, field);
        return s_set_double(config, field, value, origin, err);
    }
    case S_KIND_BOOL:
        if (strcmp(text, "true") != 0 && strcmp(text, "false") != 0)
            return s_fail_value(err, origin, field);
        *(bool *)((char *)config + field->offset) = strcmp(text, "true") == 0;
        return 0;
    }
    return s_fail_value(err, origin, field);
}

//  Apply a YAML value. Types are strict (max_concurrent_jobs: "4" is refused) except that a
//  list may be a comma-separated string; null leaves the field as it was. Argument lists may
//  hold empty strings; other lists may not.
static int s_apply_yaml(runner_config_t *config, const s_field_t *field, const lynx_value_t *value,
                        const s_origin_t *origin, lynx_err_t *err)
{
    lynx_value_type_t type = lynx_value_type(value);
    if (type == LYNX_VALUE_NULL)
        return 0;
    if ((s_is_string(field) || s_is_list(field)) && type == LYNX_VALUE_STRING)
        return s_apply_text(config, field, lynx_value_as_string(value), origin, err);

    switch (field->kind) {
    case S_KIND_LIST:
    case S_KIND_ARGS: {
        if (type != LYNX_VALUE_ARRAY)
            break;
        size_t count = lynx_value_size(value);
        for (size_t index = 0; index < count; index++) {
            const char *item = lynx_value_as_string(lynx_value_at(value, index));
            if (!item || (!*item && field->kind == S_KIND_LIST))
                return s_fail_value(err, origin, field);
        }
        char **items = calloc(count + 1, sizeof *items);
        if (!items)
            return s_out_of_memory(err);
        for (size_t index = 0; index < count; index++) {
            items[index] = strdup(lynx_value_as_string(lynx_value_at(value, index)));
            if (!items[index]) {
                s_strings_free(items, index);
                return s_out_of_memory(err);
            }
        }
        return s_set_list(config, field, items, count);
    }
    case S_KIND_INT:
        if (type != LYNX_VALUE_INT)
            break;
        return s_set_int(config, field, lynx_value_as_int(value), origin, err);
    case S_KIND_DOUBLE:
        if (!lynx_value_is_number(value))
            break;
        return s_set_double(config, field, lynx_value_as_double(value), origin, err);
    case S_KIND_BOOL:
        if (type != LYNX_VALUE_BOOL)
            break;
        *(bool *)((char *)config + field->offset) = lynx_value_as_bool(value);
        return 0;
    default:
        break;
    }
    return s_fail_value(err, origin, field);
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

static const char *s_env_get(char **envp, const char *name)
{
    size_t len = strlen(name);
    for (char **entry = envp; entry && *entry; entry++)
        if (strncmp(*entry, name, len) == 0 && (*entry)[len] == '=')
            return *entry + len + 1;
    return NULL;
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
            rc = s_apply_yaml(config, field, lynx_value_at(root, index), &origin, err);
    }
    lynx_value_destroy(&root);
    return rc;
}

static int s_apply_env(runner_config_t *config, char **envp, lynx_err_t *err)
{
    for (size_t index = 0; index < S_FIELD_COUNT; index++) {
        const char *text = s_env_get(envp, s_fields[index].env);
        s_origin_t origin = {.name = s_fields[index].env};
        if (text && s_apply_text(config, &s_fields[index], text, &origin, err) != 0)
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
static int s_scan_flags(int argc, char **argv, s_flag_t *flags, bool *check_only, lynx_err_t *err)
{
    int count = 0;
    for (int index = 1; index < argc; index++) {
        const char *arg = argv[index];
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0)
            return -2;
        if (strcmp(arg, "--check") == 0) { //  a mode, not a setting: takes no value
            *check_only = true;
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
    int flag_count = s_scan_flags(argc, argv, flags, &config->check_only, err);
    int rc = flag_count < 0 ? -1 : 0; //  for --help (-2) err stays LYNX_OK

    if (rc == 0)
        rc = s_apply_defaults(config, err);

    if (rc == 0) {
        const char *config_path = s_env_get(envp, S_CONFIG_ENV);
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
            rc = s_apply_text(config, flags[index].field, flags[index].value, &origin, err);
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
        if (s_is_string(field))
            free(*s_string_slot(config, field));
        else if (s_is_list(field)) {
            size_t *count_p;
            char ***slot = s_list_slot(config, field, &count_p);
            s_strings_free(*slot, *count_p);
        }
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

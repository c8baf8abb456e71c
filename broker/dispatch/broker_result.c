//  broker_result: a runner's JobResult as the broker stores it (see the header).
#include "broker_result.h"

#include <czmq.h>
#include <stdbool.h>
#include <string.h>

//  True for a path inside the job's output directory as a runner lists it: absolute, no "."
//  or ".." component, and under a directory named by the job id (<output_root>/<job_id>/...).
static bool s_output_path_ok(const char *path, const char *job_id)
{
    if (!path || path[0] != '/')
        return false;
    bool under_job = false;
    size_t id_len = strlen(job_id);
    for (const char *at = path + 1; *at;) {
        const char *slash = strchr(at, '/');
        size_t len = slash ? (size_t)(slash - at) : strlen(at);
        if (len == 0 || (len == 1 && at[0] == '.') || (len == 2 && at[0] == '.' && at[1] == '.'))
            return false;
        under_job = under_job || (slash && len == id_len && strncmp(at, job_id, len) == 0);
        at = slash ? slash + 1 : at + len;
    }
    return under_job;
}

//  The runner's output_files, without entries that point outside the job's output directory
//  (logged: a runner that lists ../../etc/passwd is broken or hostile).
static lynx_value_t *s_output_files(const char *job_id, const lynx_value_t *sent)
{
    lynx_value_t *files = lynx_value_array();
    for (size_t i = 0; i < lynx_value_size(sent); i++) {
        const lynx_value_t *entry = lynx_value_at(sent, i);
        const char *path = lynx_value_as_string(entry);
        if (path && lynx_value_string_len(entry) == strlen(path) && s_output_path_ok(path, job_id))
            lynx_value_append_owned(files, lynx_value_string(path));
        else
            zsys_warning("broker: output_files entry dropped job=%s path=\"%.200s\": not inside "
                         "the job's output directory",
                         job_id, path ? path : "(not a string)");
    }
    return files;
}

//  A result as we store it: only documented fields, each of the documented type, whatever the
//  runner sent.
lynx_value_t *broker_result_clean(const char *job_id, const lynx_value_t *sent, bool success,
                                  const char *error_message)
{
    lynx_value_t *result = lynx_value_map();
    lynx_value_set_string(result, "job_id", job_id);
    lynx_value_set_bool(result, "success", success);
    lynx_value_set_double(result, "execution_time_secs",
                          lynx_value_get_double(sent, "execution_time_secs", 0.0));
    //  artifacts and artifacts_skipped are the broker's own (broker_collect), not the runner's.
    const char *names[] = {"output_files", "telemetry_data", "metadata", "artifacts",
                           "artifacts_skipped"};
    const lynx_value_type_t types[] = {LYNX_VALUE_ARRAY, LYNX_VALUE_MAP, LYNX_VALUE_MAP,
                                       LYNX_VALUE_ARRAY, LYNX_VALUE_ARRAY};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const lynx_value_t *field = lynx_value_get(sent, names[i]);
        lynx_value_t *copy = i == 0                               ? s_output_files(job_id, field)
                             : lynx_value_type(field) == types[i] ? lynx_value_dup(field)
                             : types[i] == LYNX_VALUE_ARRAY       ? lynx_value_array()
                                                                  : lynx_value_null();
        if (lynx_value_set(result, names[i], &copy))
            lynx_value_destroy(&copy);
    }
    lynx_value_set_string(result, "error_message", success ? NULL : error_message);
    return result;
}

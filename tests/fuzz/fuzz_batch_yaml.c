//  fuzz_batch_yaml: a study file as `lynx submit study.yaml` reads it: YAML text ->
//  lynx_yaml_parse -> cli_submit_body (wrap a bare config, name, submitted_by) -> the JSON
//  the CLI sends -> the gateway's route and the broker's batch.submit checks (fuzz_submit.h).
#include <stdint.h>
#include "cli_commands.h"
#include "fuzz_submit.h"
#include "lynx_json.h"
#include "lynx_yaml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lynx_err_t err;
    lynx_err_clear(&err);
    lynx_value_t *doc = lynx_yaml_parse((const char *)data, size, &err);
    if (!doc)
        return 0;
    //  --runs is the CLI's own flag, checked before the file is read: leave it unset.
    char *json = cli_submit_body(&doc, "fuzz/study.yaml", NULL, 0, &err);
    if (json)
        fuzz_submit_json(json, strlen(json));
    free(json);
    lynx_value_destroy(&doc);
    return 0;
}

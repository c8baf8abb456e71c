//  fuzz_submit: what fuzz_batch_config and fuzz_batch_yaml share. A POST /jobs body goes the
//  way the gateway and the broker take it short of the store: the gateway's route (JSON parse,
//  must be an object), the broker's batch.submit checks, the error body a refusal gets, and
//  for a study small enough to be quick the sampling and first parameter sets of a dry run.
#ifndef FUZZ_SUBMIT_H_INCLUDED
#define FUZZ_SUBMIT_H_INCLUDED

#include <stdlib.h>

#include "broker_core.h"
#include "broker_study.h"
#include "gateway_routes.h"
#include "lynx_json.h"

//  Larger designs are checked but not sampled: sampling is linear in runs x dimensions and
//  the fuzzer looks for wrong answers, not for slow ones.
#define FUZZ_SUBMIT_SAMPLE_MAX 4096
#define FUZZ_SUBMIT_PREVIEW 5

static void fuzz_submit_json(const char *text, size_t len)
{
    gateway_call_t call = {0};
    lynx_err_t err;
    lynx_err_clear(&err);
    if (gateway_routes_match("POST", "/jobs", "application/json", text, len, &call, &err)) {
        free(gateway_routes_error_json(&err, NULL));
        return;
    }
    lynx_value_t *errors = lynx_value_array();
    lynx_value_t *warnings = lynx_value_array();
    broker_study_t *study = broker_submit_check(call.args, errors, warnings);
    if (!study) {
        const lynx_value_t *first = lynx_value_at(errors, 0);
        lynx_err_set(&err, LYNX_EINVALID, lynx_value_get_string(first, "field", ""), "%s: %s",
                     lynx_value_get_string(first, "field", ""),
                     lynx_value_get_string(first, "message", ""));
        free(gateway_routes_error_json(&err, errors));
    } else if (broker_study_runs(study) * (int64_t)(broker_study_dimensions(study) + 1) <=
                   FUZZ_SUBMIT_SAMPLE_MAX &&
               broker_study_sample(study) == 0) {
        for (int64_t run = 0; run < broker_study_runs(study) && run < FUZZ_SUBMIT_PREVIEW; run++) {
            lynx_value_t *parameters = broker_study_run_parameters(study, run);
            free(lynx_json_dump(parameters, 0));
            lynx_value_destroy(&parameters);
        }
    }
    broker_study_destroy(&study);
    lynx_value_destroy(&warnings);
    lynx_value_destroy(&errors);
    lynx_value_destroy(&call.args);
}

#endif

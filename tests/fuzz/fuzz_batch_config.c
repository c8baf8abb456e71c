//  fuzz_batch_config: the JSON body of POST /jobs -> the gateway's route -> the broker's
//  batch.submit checks (submission fields, study design, sampling settings) and, for a small
//  study, its sampling (fuzz_submit.h).
#include <stdint.h>
#include "fuzz_submit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_submit_json((const char *)data, size);
    return 0;
}

//  broker_result: a runner's JobResult as the broker stores it: only the documented fields
//  (plus the broker's own artifacts and artifacts_skipped), each of the documented type, and
//  output_files without entries outside the job's output directory, whatever the runner sent.
#ifndef BROKER_RESULT_H_INCLUDED
#define BROKER_RESULT_H_INCLUDED

#include <stdbool.h>

#include "lynx_value.h"

//  The result to store for job_id from what the runner sent (may be NULL), with success and
//  error_message as the broker decided them. NULL on out-of-memory.
lynx_value_t *broker_result_clean(const char *job_id, const lynx_value_t *sent, bool success,
                                  const char *error_message);

#endif

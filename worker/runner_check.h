//  runner_check: what a runner can verify about its own setup before it takes work, and the
//  PING/PONG round trip behind `lynx-runner --check`. A missing script or interpreter found
//  here is one clear message at start instead of every job failing later.
#ifndef RUNNER_CHECK_H_INCLUDED
#define RUNNER_CHECK_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#include <czmq.h>

#include "lynx_err.h"
#include "runner_config.h"

//  Called once per check: field is the runner config field checked (output_root, ...), detail
//  says what was found (a resolved path) or what is wrong.
typedef void(runner_check_report_fn)(bool ok, const char *field, const char *detail, void *arg);

//  Check the working directory, each configured engine's program (it resolves, through PATH
//  for a bare name, to an executable file) and script (exists and is readable), and that the
//  output root is writable (creating it). Calls report for every check; returns how many failed.
int runner_check_setup(const runner_config_t *config, runner_check_report_fn *report, void *arg);

//  Send PING to the broker's runner endpoint and wait at most timeout_ms for its PONG. 0 with
//  the broker's version in version (may be "") on success; -1 with err (LYNX_EUNAVAILABLE and
//  the endpoint, or LYNX_EPROTOCOL for an answer that is not a PONG). With cert, over CURVE to
//  broker_key (runner_keys); NULL for a plain connection.
int runner_check_broker(const char *endpoint, zcert_t *cert, const char *broker_key, int timeout_ms,
                        char *version, size_t size, lynx_err_t *err);

#endif

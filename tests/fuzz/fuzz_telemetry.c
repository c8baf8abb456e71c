//  fuzz_telemetry: TELEMETRY frames a scenario sends -> the runner's intake
//  (runner_telemetry_take: decode, checks, latest values, watchdog, decimated and filtered
//  forwarding), then the check timer and the result's telemetry summary.
//
//  Input: one byte choosing the job's early_termination and telemetry sections (s_setups),
//  then records of [milliseconds since the previous frame: 1 byte][length: 2 bytes, big
//  endian][frame: length bytes]; a last record shorter than its length takes what is left.
#include <stdint.h>
#include <stdlib.h>

#include "lynx_json.h"
#include "lynx_yaml.h"
#include "runner_telemetry.h"

//  The ASSIGN's optional sections, as YAML: {early_termination, telemetry}.
static const char *const s_setups[] = {
    "{}",
    "early_termination: {conditions: [{variable: x, condition: '< 0', description: down}]}",
    ("early_termination:\n"
     "  check_frequency_hz: 1000\n"
     "  conditions:\n"
     "    - {name: band, description: d, any: [{variable: x, condition: '>= 10'},\n"
     "       {all: [{variable: y, condition: '== 1'}, {variable: z, condition: '!= 0'}]}]}\n"
     "telemetry: {sampling_rate_hz: 10, variables: [x, y, w]}"),
    ("early_termination: {enabled: false, conditions: [{variable: x, condition: '> 0'}]}\n"
     "telemetry: {sampling_rate_hz: 1.0e-300, variables: []}"),
    "telemetry: {sampling_rate_hz: 1000000000, variables: [a]}",
};
#define S_SETUP_COUNT (sizeof s_setups / sizeof s_setups[0])

//  Where forwarded frames go: a PUB with no subscriber, which drops them after encoding. One
//  per process (sockets are slow to make); never closed, reachable to the leak checker.
static void *s_forward(void)
{
    static void *context, *socket;
    if (!socket && (context = zmq_ctx_new()))
        socket = zmq_socket(context, ZMQ_PUB);
    return socket;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    lynx_err_t err;
    const char *setup = s_setups[data[0] % S_SETUP_COUNT];
    lynx_value_t *sections = lynx_yaml_parse(setup, strlen(setup), &err);
    if (!sections)
        abort();
    int64_t now_ms = 1000000;
    runner_telemetry_t *telemetry =
        runner_telemetry_new("job-1", "batch-1", lynx_value_get(sections, "early_termination"),
                             lynx_value_get(sections, "telemetry"), now_ms, &err);
    lynx_value_destroy(&sections);
    if (!telemetry)
        return 0; //  no socket (descriptors exhausted): not the input's fault
    void *forward = s_forward();
    for (size_t at = 1; at + 3 <= size;) {
        now_ms += data[at];
        size_t len = (size_t)data[at + 1] << 8 | data[at + 2];
        at += 3;
        if (len > size - at)
            len = size - at;
        runner_telemetry_take(telemetry, data + at, len, forward, now_ms);
        at += len;
    }
    runner_telemetry_check(telemetry, now_ms + 1000);
    lynx_value_t *summary = runner_telemetry_summary(telemetry);
    free(lynx_json_dump(summary, 0));
    lynx_value_destroy(&summary);
    runner_telemetry_destroy(&telemetry);
    return 0;
}

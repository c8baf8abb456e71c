//  broker_telemetry_config: what a batch's `telemetry` section means to the telemetry store
//  (where its series go, compressed or not, how often buffers flush), and the rules for the
//  ids and variable names telemetry carries. Pure: no sockets, no files; the study checks a
//  submitted section with it, the telemetry store configures a batch with it.
#ifndef BROKER_TELEMETRY_CONFIG_H_INCLUDED
#define BROKER_TELEMETRY_CONFIG_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lynx_err.h"
#include "lynx_value.h"

//  Ids (batch_id, job_id) are 1-64 characters of [A-Za-z0-9_-]: no path or topic separators.
#define BROKER_TELEMETRY_ID_MAX 64
//  Variable names are 1-128 bytes without control characters (scenarios choose them).
#define BROKER_TELEMETRY_NAME_MAX 128
//  A frame carries at most this many values.
#define BROKER_TELEMETRY_VALUES_MAX 1024
//  A storage prefix (relative path under <data_dir>/telemetry) is at most this long.
#define BROKER_TELEMETRY_PREFIX_MAX 200
//  Room for an untrusted text quoted into a message by broker_telemetry_config_quote.
#define BROKER_TELEMETRY_QUOTE_MAX (BROKER_TELEMETRY_NAME_MAX + 8)

//  A batch's storage settings.
typedef struct {
    char prefix[BROKER_TELEMETRY_PREFIX_MAX + 1]; //  "" or "a/b": no leading, trailing or '//'
    bool gzip;
    int64_t flush_interval_ms;
} broker_telemetry_config_t;

//  Parse a batch config's `telemetry` section (NULL or null: absent, all defaults: no prefix,
//  plain files, flush every 30 s) into config (may be NULL: check only). Bad fields keep their
//  defaults and the first problem goes to err with a field path such as
//  config.telemetry.storage.s3_prefix. Returns 0 or -1.
int broker_telemetry_config_parse(const lynx_value_t *section, broker_telemetry_config_t *config,
                                  lynx_err_t *err);

//  True when id is 1-BROKER_TELEMETRY_ID_MAX characters of [A-Za-z0-9_-].
bool broker_telemetry_config_id_valid(const char *id, size_t len);
//  Variable names are what scenarios chose; only control characters are refused, which no CSV
//  header or terminal should carry.
bool broker_telemetry_config_name_valid(const char *name, size_t len);
//  Quote untrusted text for a message into out (BROKER_TELEMETRY_QUOTE_MAX bytes): at most
//  BROKER_TELEMETRY_QUOTE_MAX - 4 bytes, non-printables as '?'. Returns out.
const char *broker_telemetry_config_quote(const char *text, size_t len, char *out);

#endif

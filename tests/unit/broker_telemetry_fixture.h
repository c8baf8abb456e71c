//  broker_telemetry_fixture: what the telemetry test programs share (broker_telemetry_test,
//  broker_republish_test, broker_telemetry_config_test): a store on a temporary data dir with
//  a PUB socket on 127.0.0.1 (ephemeral port), frames built as a runner forwards them with
//  values computed from (job, seq) so every read can be checked against what was sent, and
//  direct readers of the files (gzread + the codec) so the on-disk format is tested apart from
//  the module's own reader.
#ifndef BROKER_TELEMETRY_FIXTURE_H_INCLUDED
#define BROKER_TELEMETRY_FIXTURE_H_INCLUDED

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include "broker_telemetry.h"
#include "lynx_msg.h"
#include "lynx_time.h"

#define S_FIXTURE static __attribute__((unused))

#define S_B1 "0b7c9a52-1d8e-4f3a-9c21-6a5b4e3d2c11"
#define S_B2 "5e2d1c0b-9a8f-4e7d-8c6b-5a4f3e2d1c22"
#define S_J1 "a1a1a1a1-0000-4000-8000-000000000001"
#define S_J2 "b2b2b2b2-0000-4000-8000-000000000002"
#define S_J3 "c3c3c3c3-0000-4000-8000-000000000003"
#define S_T0 INT64_C(1750000000000000000)
#define S_RECV_MS 5000 //  deadline for anything the PUB socket should deliver
#define S_PROBE_MS 10  //  slice while waiting for a subscription to take effect
#define S_SYNC_MS 5000 //  deadline for a subscription to take effect

typedef struct {
    char dir[64];
    char root[96]; //  <dir>/telemetry
    broker_telemetry_t *telemetry;
    int64_t probe_seq; //  next seq of the subscription probe job
} s_fixture_t;

S_FIXTURE int s_remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

S_FIXTURE int s_setup(void **state)
{
    s_fixture_t *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    snprintf(fx->dir, sizeof fx->dir, "/tmp/broker-telemetry-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->root, sizeof fx->root, "%s/telemetry", fx->dir);
    lynx_err_t err;
    fx->telemetry = broker_telemetry_new(fx->dir, "tcp://127.0.0.1:*", NULL, &err);
    if (!fx->telemetry)
        fail_msg("broker_telemetry_new: %s", err.message);
    *state = fx;
    return 0;
}

S_FIXTURE int s_teardown(void **state)
{
    s_fixture_t *fx = *state;
    broker_telemetry_destroy(&fx->telemetry);
    nftw(fx->dir, s_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(fx);
    return 0;
}

//  ---------------------------------------------------------------------------------------
//  Frames and configs.

//  The value of "x" in frame seq of a job: distinct per job, not round in decimal.
S_FIXTURE double s_x(double salt, int64_t seq)
{
    return 6371.0 + salt + (double)seq * 0.1 + 1e-9 / (double)(seq + 3);
}

//  A frame as a runner forwards it: x (double), step (int), ok (bool) in every frame, and
//  sparse (double) only when seq % 3 == 1, so it first appears in the second frame.
S_FIXTURE lynx_value_t *s_frame(const char *batch_id, const char *job_id, int64_t seq, double salt)
{
    lynx_value_t *body = lynx_value_map();
    lynx_value_t *values = lynx_value_map();
    assert_non_null(body);
    assert_non_null(values);
    assert_int_equal(lynx_value_set_double(values, "x", s_x(salt, seq)), 0);
    assert_int_equal(lynx_value_set_int(values, "step", seq), 0);
    assert_int_equal(lynx_value_set_bool(values, "ok", seq % 2 == 0), 0);
    if (seq % 3 == 1)
        assert_int_equal(lynx_value_set_double(values, "sparse", -1.0 / (double)(seq + 1)), 0);
    assert_int_equal(lynx_value_set_int(body, "seq", seq), 0);
    assert_int_equal(lynx_value_set_int(body, "timestamp_ns", S_T0 + seq * 1000000), 0);
    assert_int_equal(lynx_value_set(body, "values", &values), 0);
    assert_int_equal(lynx_value_set_string(body, "job_id", job_id), 0);
    assert_int_equal(lynx_value_set_string(body, "batch_id", batch_id), 0);
    return body;
}

S_FIXTURE void s_ingest(s_fixture_t *fx, const char *batch_id, const char *job_id, int64_t seq,
                        double salt)
{
    lynx_value_t *body = s_frame(batch_id, job_id, seq, salt);
    lynx_err_t err;
    if (broker_telemetry_ingest(fx->telemetry, body, &err))
        fail_msg("ingest %s seq=%" PRId64 ": %s: %s", job_id, seq, err.field, err.message);
    lynx_value_destroy(&body);
}

//  {storage: {s3_prefix, compression}, buffer_flush_interval_seconds}; NULL/negative: absent.
S_FIXTURE lynx_value_t *s_config(const char *prefix, const char *compression, double interval_secs)
{
    lynx_value_t *config = lynx_value_map();
    lynx_value_t *storage = lynx_value_map();
    assert_int_equal(lynx_value_set_string(storage, "s3_bucket", "your-telemetry-bucket"), 0);
    if (prefix)
        assert_int_equal(lynx_value_set_string(storage, "s3_prefix", prefix), 0);
    if (compression)
        assert_int_equal(lynx_value_set_string(storage, "compression", compression), 0);
    assert_int_equal(lynx_value_set(config, "storage", &storage), 0);
    if (interval_secs >= 0)
        assert_int_equal(
            lynx_value_set_double(config, "buffer_flush_interval_seconds", interval_secs), 0);
    return config;
}

S_FIXTURE void s_configure(s_fixture_t *fx, const char *batch_id, const char *prefix,
                           const char *compression, double interval_secs)
{
    lynx_value_t *config = s_config(prefix, compression, interval_secs);
    lynx_err_t err;
    if (broker_telemetry_configure_batch(fx->telemetry, batch_id, config, &err))
        fail_msg("configure %s: %s: %s", batch_id, err.field, err.message);
    lynx_value_destroy(&config);
}

S_FIXTURE bool s_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

//  Records in a series file, read with zlib and the codec only; -1 when one does not decode.
S_FIXTURE int s_count_records(const char *path, int64_t *last_seq)
{
    gzFile file = gzopen(path, "rb");
    if (!file)
        return -1;
    int count = 0;
    unsigned char header[4];
    while (gzread(file, header, 4) == 4) {
        size_t size =
            (size_t)header[0] << 24 | (size_t)header[1] << 16 | (size_t)header[2] << 8 | header[3];
        unsigned char *data = malloc(size);
        assert_non_null(data);
        assert_int_equal(gzread(file, data, (unsigned)size), (int)size);
        lynx_value_t *record = lynx_msgpack_unpack(data, size, NULL);
        free(data);
        if (!record) {
            count = -1;
            break;
        }
        assert_non_null(lynx_value_get(record, "timestamp_ns"));
        assert_int_equal(lynx_value_type(lynx_value_get(record, "values")), LYNX_VALUE_MAP);
        if (last_seq)
            *last_seq = lynx_value_get_int(record, "seq", -1);
        lynx_value_destroy(&record);
        count++;
    }
    gzclose(file);
    return count;
}

S_FIXTURE broker_telemetry_stats_t s_stats(s_fixture_t *fx)
{
    broker_telemetry_stats_t stats;
    broker_telemetry_stats(fx->telemetry, &stats);
    return stats;
}

//  ---------------------------------------------------------------------------------------
//  Checking a read against what s_frame sent for seq 0..count-1.

S_FIXTURE void s_check_json(const lynx_value_t *result, const char *job_id, int count, double salt)
{
    assert_non_null(result);
    assert_string_equal(lynx_value_get_string(result, "job_id", ""), job_id);
    assert_int_equal(lynx_value_get_int(result, "count", -1), count);
    const lynx_value_t *timestamps = lynx_value_get(result, "timestamp_ns");
    const lynx_value_t *seq = lynx_value_get(result, "seq");
    const lynx_value_t *values = lynx_value_get(result, "values");
    assert_int_equal(lynx_value_size(timestamps), count);
    assert_int_equal(lynx_value_size(seq), count);
    //  Columns in order of first appearance; sparse first came in frame 1.
    assert_int_equal(lynx_value_size(values), 4);
    assert_string_equal(lynx_value_key_at(values, 0), "x");
    assert_string_equal(lynx_value_key_at(values, 1), "step");
    assert_string_equal(lynx_value_key_at(values, 2), "ok");
    assert_string_equal(lynx_value_key_at(values, 3), "sparse");
    for (int i = 0; i < count; i++) {
        assert_int_equal(lynx_value_as_int(lynx_value_at(timestamps, i)), S_T0 + i * 1000000);
        assert_int_equal(lynx_value_as_int(lynx_value_at(seq, i)), i);
        const lynx_value_t *x = lynx_value_at(lynx_value_get(values, "x"), i);
        assert_int_equal(lynx_value_type(x), LYNX_VALUE_DOUBLE);
        assert_true(lynx_value_as_double(x) == s_x(salt, i));
        const lynx_value_t *step = lynx_value_at(lynx_value_get(values, "step"), i);
        assert_int_equal(lynx_value_type(step), LYNX_VALUE_INT);
        assert_int_equal(lynx_value_as_int(step), i);
        const lynx_value_t *ok = lynx_value_at(lynx_value_get(values, "ok"), i);
        assert_int_equal(lynx_value_type(ok), LYNX_VALUE_BOOL);
        assert_int_equal(lynx_value_as_bool(ok), i % 2 == 0);
        const lynx_value_t *sparse = lynx_value_at(lynx_value_get(values, "sparse"), i);
        if (i % 3 == 1)
            assert_true(lynx_value_as_double(sparse) == -1.0 / (double)(i + 1));
        else
            assert_int_equal(lynx_value_type(sparse), LYNX_VALUE_NULL);
    }
}

//  The next CSV cell of *line_p (which moves past it), NUL-terminated in place.
S_FIXTURE char *s_cell(char **line_p)
{
    char *cell = *line_p;
    char *comma = strchr(cell, ',');
    if (comma) {
        *comma = '\0';
        *line_p = comma + 1;
    } else
        *line_p = cell + strlen(cell);
    return cell;
}

S_FIXTURE void s_check_csv(const char *text, int count, double salt)
{
    assert_non_null(text);
    char *copy = strdup(text);
    char *save = NULL;
    char *line = strtok_r(copy, "\n", &save);
    assert_string_equal(line, "timestamp_ns,x,step,ok,sparse");
    for (int i = 0; i < count; i++) {
        line = strtok_r(NULL, "\n", &save);
        assert_non_null(line);
        assert_int_equal(strtoll(s_cell(&line), NULL, 10), S_T0 + i * 1000000);
        assert_true(strtod(s_cell(&line), NULL) == s_x(salt, i));
        assert_int_equal(strtoll(s_cell(&line), NULL, 10), i);
        assert_string_equal(s_cell(&line), i % 2 == 0 ? "true" : "false");
        char *sparse = s_cell(&line);
        if (i % 3 == 1)
            assert_true(strtod(sparse, NULL) == -1.0 / (double)(i + 1));
        else
            assert_string_equal(sparse, "");
    }
    assert_null(strtok_r(NULL, "\n", &save));
    free(copy);
}

//  ---------------------------------------------------------------------------------------
//  Storage and retrieval.

//  Two batches, one plain under a prefix and one gzip without, each with a job of 300 frames,
//  interleaved and flushed in many small pieces: both read back exactly as sent.
#endif

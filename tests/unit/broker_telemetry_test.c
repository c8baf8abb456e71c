//  broker_telemetry: the broker's telemetry store and fan-out, on a temporary data dir and a
//  PUB socket on 127.0.0.1 (ephemeral port).
//
//  Frames are built as a runner forwards them ({job_id, batch_id, seq, timestamp_ns, values}),
//  with values computed from (job, seq) so every read can be checked against what was sent.
//  Files are also read directly (gzread + the codec), so the on-disk format is tested apart
//  from the module's own reader. Subscribers synchronise with a probe and a sentinel, never a
//  sleep: a SUB socket joins asynchronously, and ZeroMQ keeps order on each connection.
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

static int s_remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static int s_setup(void **state)
{
    s_fixture_t *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    snprintf(fx->dir, sizeof fx->dir, "/tmp/broker-telemetry-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->root, sizeof fx->root, "%s/telemetry", fx->dir);
    lynx_err_t err;
    fx->telemetry = broker_telemetry_new(fx->dir, "tcp://127.0.0.1:*", &err);
    if (!fx->telemetry)
        fail_msg("broker_telemetry_new: %s", err.message);
    *state = fx;
    return 0;
}

static int s_teardown(void **state)
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
static double s_x(double salt, int64_t seq)
{
    return 6371.0 + salt + (double)seq * 0.1 + 1e-9 / (double)(seq + 3);
}

//  A frame as a runner forwards it: x (double), step (int), ok (bool) in every frame, and
//  sparse (double) only when seq % 3 == 1, so it first appears in the second frame.
static lynx_value_t *s_frame(const char *batch_id, const char *job_id, int64_t seq, double salt)
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

static void s_ingest(s_fixture_t *fx, const char *batch_id, const char *job_id, int64_t seq,
                     double salt)
{
    lynx_value_t *body = s_frame(batch_id, job_id, seq, salt);
    lynx_err_t err;
    if (broker_telemetry_ingest(fx->telemetry, body, &err))
        fail_msg("ingest %s seq=%" PRId64 ": %s: %s", job_id, seq, err.field, err.message);
    lynx_value_destroy(&body);
}

//  {storage: {s3_prefix, compression}, buffer_flush_interval_seconds}; NULL/negative: absent.
static lynx_value_t *s_config(const char *prefix, const char *compression, double interval_secs)
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

static void s_configure(s_fixture_t *fx, const char *batch_id, const char *prefix,
                        const char *compression, double interval_secs)
{
    lynx_value_t *config = s_config(prefix, compression, interval_secs);
    lynx_err_t err;
    if (broker_telemetry_configure_batch(fx->telemetry, batch_id, config, &err))
        fail_msg("configure %s: %s: %s", batch_id, err.field, err.message);
    lynx_value_destroy(&config);
}

static bool s_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

//  Records in a series file, read with zlib and the codec only; -1 when one does not decode.
static int s_count_records(const char *path, int64_t *last_seq)
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

static broker_telemetry_stats_t s_stats(s_fixture_t *fx)
{
    broker_telemetry_stats_t stats;
    broker_telemetry_stats(fx->telemetry, &stats);
    return stats;
}

//  ---------------------------------------------------------------------------------------
//  Checking a read against what s_frame sent for seq 0..count-1.

static void s_check_json(const lynx_value_t *result, const char *job_id, int count, double salt)
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
static char *s_cell(char **line_p)
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

static void s_check_csv(const char *text, int count, double salt)
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
static void test_roundtrip_plain_and_gzip(void **state)
{
    s_fixture_t *fx = *state;
    s_configure(fx, S_B1, "spacecraft/", "none", -1);
    s_configure(fx, S_B2, NULL, "gzip", -1);
    broker_telemetry_set_limits(fx->telemetry, 2048, 0, 0); //  many flushes, many gzip members
    for (int seq = 0; seq < 300; seq++) {
        s_ingest(fx, S_B1, S_J1, seq, 0.0);
        s_ingest(fx, S_B2, S_J2, seq, 1000.0);
    }
    broker_telemetry_stats_t stats = s_stats(fx);
    assert_int_equal(stats.frames_received, 600);
    assert_int_equal(stats.frames_rejected, 0);
    assert_true(stats.flushes > 10);

    lynx_err_t err;
    lynx_value_t *result = broker_telemetry_read(fx->telemetry, S_B1, S_J1, NULL, &err);
    s_check_json(result, S_J1, 300, 0.0);
    assert_string_equal(lynx_value_get_string(result, "batch_id", ""), S_B1);
    lynx_value_destroy(&result);
    result = broker_telemetry_read(fx->telemetry, S_B2, S_J2, "", &err);
    s_check_json(result, S_J2, 300, 1000.0);
    lynx_value_destroy(&result);

    char *csv = broker_telemetry_read_csv(fx->telemetry, S_B1, S_J1, NULL, &err);
    s_check_csv(csv, 300, 0.0);
    free(csv);
    csv = broker_telemetry_read_csv(fx->telemetry, S_B2, S_J2, NULL, &err);
    s_check_csv(csv, 300, 1000.0);
    free(csv);

    //  Reading flushed everything; the files are where the docs say, in their format.
    stats = s_stats(fx);
    assert_int_equal(stats.frames_stored, 600);
    assert_int_equal(stats.buffered_bytes, 0);
    char path[256];
    snprintf(path, sizeof path, "%s/spacecraft/%s/%s.msgpack", fx->root, S_B1, S_J1);
    int64_t last_seq = -1;
    assert_int_equal(s_count_records(path, &last_seq), 300);
    assert_int_equal(last_seq, 299);
    snprintf(path, sizeof path, "%s/%s/%s.msgpack.gz", fx->root, S_B2, S_J2);
    assert_int_equal(s_count_records(path, &last_seq), 300);
    FILE *file = fopen(path, "rb");
    assert_non_null(file);
    assert_int_equal(fgetc(file), 0x1f); //  gzip magic
    assert_int_equal(fgetc(file), 0x8b);
    fclose(file);
    snprintf(path, sizeof path, "%s/%s/%s.msgpack", fx->root, S_B2, S_J2);
    assert_false(s_exists(path));
}

static void test_variables_filter(void **state)
{
    s_fixture_t *fx = *state;
    s_configure(fx, S_B1, NULL, NULL, -1);
    for (int seq = 0; seq < 20; seq++)
        s_ingest(fx, S_B1, S_J1, seq, 0.0);
    lynx_err_t err;

    //  Chosen order, spaces trimmed, duplicates once, unknown names as columns of nulls.
    lynx_value_t *result =
        broker_telemetry_read(fx->telemetry, S_B1, S_J1, " step,x , step,nope", &err);
    assert_non_null(result);
    const lynx_value_t *values = lynx_value_get(result, "values");
    assert_int_equal(lynx_value_size(values), 3);
    assert_string_equal(lynx_value_key_at(values, 0), "step");
    assert_string_equal(lynx_value_key_at(values, 1), "x");
    assert_string_equal(lynx_value_key_at(values, 2), "nope");
    assert_int_equal(lynx_value_get_int(result, "count", 0), 20);
    for (int i = 0; i < 20; i++) {
        assert_int_equal(lynx_value_as_int(lynx_value_at(lynx_value_get(values, "step"), i)), i);
        assert_true(lynx_value_as_double(lynx_value_at(lynx_value_get(values, "x"), i)) ==
                    s_x(0.0, i));
        assert_int_equal(lynx_value_type(lynx_value_at(lynx_value_get(values, "nope"), i)),
                         LYNX_VALUE_NULL);
    }
    lynx_value_destroy(&result);

    char *csv = broker_telemetry_read_csv(fx->telemetry, S_B1, S_J1, "ok,sparse", &err);
    assert_non_null(csv);
    assert_memory_equal(csv, "timestamp_ns,ok,sparse\n1750000000000000000,true,\n", 48);
    free(csv);

    const char *bad[] = {"a,,b", "x,", ",", "tab\there", "new\nline", "del\x7f"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        lynx_err_clear(&err);
        assert_null(broker_telemetry_read(fx->telemetry, S_B1, S_J1, bad[i], &err));
        assert_int_equal(err.code, LYNX_EINVALID);
        assert_string_equal(err.field, "variables");
        lynx_err_clear(&err);
        assert_null(broker_telemetry_read_csv(fx->telemetry, S_B1, S_J1, bad[i], &err));
        assert_int_equal(err.code, LYNX_EINVALID);
    }
}

//  Doubles in CSV in their shortest exact form; NaN and infinities by name.
static void test_csv_number_forms(void **state)
{
    s_fixture_t *fx = *state;
    s_configure(fx, S_B1, NULL, NULL, -1);
    lynx_value_t *body = s_frame(S_B1, S_J1, 0, 0.0);
    lynx_value_t *values = lynx_value_map();
    lynx_value_set_double(values, "tenth", 0.1);
    lynx_value_set_double(values, "third", 1.0 / 3.0);
    lynx_value_set_double(values, "big", 1e21);
    lynx_value_set_double(values, "whole", 8.0);
    lynx_value_set_double(values, "nan", NAN);
    lynx_value_set_double(values, "ninf", -INFINITY);
    lynx_value_set_int(values, "neg", -5);
    lynx_value_set_bool(values, "flag", true);
    lynx_value_set(body, "values", &values);
    assert_int_equal(broker_telemetry_ingest(fx->telemetry, body, NULL), 0);
    lynx_value_destroy(&body);
    lynx_err_t err;
    char *csv = broker_telemetry_read_csv(fx->telemetry, S_B1, S_J1, NULL, &err);
    assert_string_equal(csv, "timestamp_ns,tenth,third,big,whole,nan,ninf,neg,flag\n"
                             "1750000000000000000,0.1,0.3333333333333333,1e+21,8,nan,-inf,-5,"
                             "true\n");
    free(csv);
    //  JSON keeps the types; NaN stays a double (the gateway's JSON writes null).
    lynx_value_t *result = broker_telemetry_read(fx->telemetry, S_B1, S_J1, "whole,nan", &err);
    const lynx_value_t *whole = lynx_value_at(lynx_value_get_path(result, "values.whole"), 0);
    assert_int_equal(lynx_value_type(whole), LYNX_VALUE_DOUBLE);
    assert_true(
        isnan(lynx_value_as_double(lynx_value_at(lynx_value_get_path(result, "values.nan"), 0))));
    lynx_value_destroy(&result);
}

//  Names are the scenario's: spaces, punctuation and UTF-8 are kept; CSV quotes what needs it.
static void test_names_as_scenarios_choose(void **state)
{
    s_fixture_t *fx = *state;
    s_configure(fx, S_B1, NULL, NULL, -1);
    lynx_value_t *body = s_frame(S_B1, S_J1, 0, 0.0);
    lynx_value_t *values = lynx_value_map();
    lynx_value_set_int(values, "temp (C)", 21);
    lynx_value_set_int(values, "a,b", 1);
    lynx_value_set_int(values, "say \"hi\"", 2);
    lynx_value_set_int(values, "caf\xc3\xa9", 3);
    lynx_value_set(body, "values", &values);
    lynx_err_t err;
    assert_int_equal(broker_telemetry_ingest(fx->telemetry, body, &err), 0);
    lynx_value_destroy(&body);
    char *csv = broker_telemetry_read_csv(fx->telemetry, S_B1, S_J1, NULL, &err);
    assert_string_equal(csv, "timestamp_ns,temp (C),\"a,b\",\"say \"\"hi\"\"\",caf\xc3\xa9\n"
                             "1750000000000000000,21,1,2,3\n");
    free(csv);
    csv = broker_telemetry_read_csv(fx->telemetry, S_B1, S_J1, "caf\xc3\xa9, temp (C)", &err);
    assert_string_equal(csv, "timestamp_ns,caf\xc3\xa9,temp (C)\n1750000000000000000,3,21\n");
    free(csv);
}

static void test_read_unknown_job_is_empty(void **state)
{
    s_fixture_t *fx = *state;
    s_configure(fx, S_B1, NULL, "gzip", -1);
    lynx_err_t err;
    //  A known batch without this job, and a batch never configured.
    const char *batches[] = {S_B1, S_B2};
    for (size_t i = 0; i < 2; i++) {
        lynx_value_t *result = broker_telemetry_read(fx->telemetry, batches[i], S_J3, NULL, &err);
        assert_non_null(result);
        assert_int_equal(lynx_value_get_int(result, "count", -1), 0);
        assert_int_equal(lynx_value_size(lynx_value_get(result, "timestamp_ns")), 0);
        assert_int_equal(lynx_value_type(lynx_value_get(result, "values")), LYNX_VALUE_MAP);
        assert_int_equal(lynx_value_size(lynx_value_get(result, "values")), 0);
        lynx_value_destroy(&result);
        char *csv = broker_telemetry_read_csv(fx->telemetry, batches[i], S_J3, "a,b", &err);
        assert_string_equal(csv, "timestamp_ns,a,b\n");
        free(csv);
    }
}

static void test_read_limit(void **state)
{
    s_fixture_t *fx = *state;
    s_configure(fx, S_B1, NULL, NULL, -1);
    for (int seq = 0; seq < 50; seq++)
        s_ingest(fx, S_B1, S_J1, seq, 0.0);
    broker_telemetry_set_limits(fx->telemetry, 0, 0, 100);
    lynx_err_t err;
    //  50 frames x (4 variables + timestamps) = 250 cells: over.
    assert_null(broker_telemetry_read(fx->telemetry, S_B1, S_J1, NULL, &err));
    assert_int_equal(err.code, LYNX_ETOOLARGE);
    assert_null(broker_telemetry_read_csv(fx->telemetry, S_B1, S_J1, NULL, &err));
    assert_int_equal(err.code, LYNX_ETOOLARGE);
    //  One variable: 100 cells, at the limit.
    lynx_value_t *result = broker_telemetry_read(fx->telemetry, S_B1, S_J1, "x", &err);
    assert_non_null(result);
    assert_int_equal(lynx_value_get_int(result, "count", 0), 50);
    lynx_value_destroy(&result);
}

//  A crash during a flush can leave a torn record at the end: what precedes it still reads.
static void test_damaged_tail_reads_what_precedes(void **state)
{
    s_fixture_t *fx = *state;
    s_configure(fx, S_B1, NULL, NULL, -1);
    for (int seq = 0; seq < 10; seq++)
        s_ingest(fx, S_B1, S_J1, seq, 0.0);
    assert_int_equal(broker_telemetry_job_ended(fx->telemetry, S_J1), 0);
    char path[256];
    snprintf(path, sizeof path, "%s/%s/%s.msgpack", fx->root, S_B1, S_J1);
    FILE *file = fopen(path, "ab");
    assert_non_null(file);
    fwrite("\x00\x00\x00\x64\x85\xa3", 1, 6, file); //  a record of 100 bytes, 2 present
    fclose(file);
    lynx_err_t err;
    lynx_value_t *result = broker_telemetry_read(fx->telemetry, S_B1, S_J1, NULL, &err);
    assert_non_null(result);
    assert_int_equal(lynx_value_get_int(result, "count", 0), 10);
    lynx_value_destroy(&result);

    //  gzip: a second member cut short.
    s_configure(fx, S_B2, NULL, "gzip", -1);
    for (int seq = 0; seq < 10; seq++)
        s_ingest(fx, S_B2, S_J2, seq, 0.0);
    assert_int_equal(broker_telemetry_job_ended(fx->telemetry, S_J2), 0);
    snprintf(path, sizeof path, "%s/%s/%s.msgpack.gz", fx->root, S_B2, S_J2);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    off_t first_member = st.st_size;
    for (int seq = 10; seq < 20; seq++)
        s_ingest(fx, S_B2, S_J2, seq, 0.0);
    assert_int_equal(broker_telemetry_job_ended(fx->telemetry, S_J2), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(truncate(path, first_member + (st.st_size - first_member) / 2), 0);
    result = broker_telemetry_read(fx->telemetry, S_B2, S_J2, NULL, &err);
    assert_non_null(result);
    assert_true(lynx_value_get_int(result, "count", 0) >= 10);
    assert_true(lynx_value_get_int(result, "count", 0) < 20);
    lynx_value_destroy(&result);
}

//  ---------------------------------------------------------------------------------------
//  Flushing and memory.

static void test_flush_by_interval(void **state)
{
    s_fixture_t *fx = *state;
    s_configure(fx, S_B1, NULL, NULL, 2);    //  every 2 s
    s_configure(fx, S_B2, NULL, "gzip", -1); //  the default, 30 s
    int64_t start_ms = lynx_time_mono_ms();
    for (int seq = 0; seq < 10; seq++) {
        s_ingest(fx, S_B1, S_J1, seq, 0.0);
        s_ingest(fx, S_B2, S_J2, seq, 0.0);
    }
    char path1[256], path2[256];
    snprintf(path1, sizeof path1, "%s/%s/%s.msgpack", fx->root, S_B1, S_J1);
    snprintf(path2, sizeof path2, "%s/%s/%s.msgpack.gz", fx->root, S_B2, S_J2);
    assert_false(s_exists(path1));
    assert_int_equal(broker_telemetry_flush_due(fx->telemetry, start_ms + 1000), 0);
    assert_false(s_exists(path1));

    int64_t now_ms = lynx_time_mono_ms();
    assert_int_equal(broker_telemetry_flush_due(fx->telemetry, now_ms + 2000), 1);
    assert_int_equal(s_count_records(path1, NULL), 10);
    assert_false(s_exists(path2));
    assert_int_equal(s_stats(fx).frames_stored, 10);
    assert_int_equal(broker_telemetry_flush_due(fx->telemetry, now_ms + 29000), 0);
    assert_false(s_exists(path2));
    assert_int_equal(broker_telemetry_flush_due(fx->telemetry, now_ms + 30000), 1);
    assert_int_equal(s_count_records(path2, NULL), 10);
    assert_int_equal(s_stats(fx).buffered_bytes, 0);
    //  Nothing left: nothing to do.
    assert_int_equal(broker_telemetry_flush_due(fx->telemetry, now_ms + 60000), 0);
}

//  Job end flushes and forgets; a later attempt appends to the same series (seq restarts).
static void test_flush_at_job_end(void **state)
{
    s_fixture_t *fx = *state;
    s_configure(fx, S_B1, "runs", "gzip", -1);
    for (int seq = 0; seq < 5; seq++)
        s_ingest(fx, S_B1, S_J1, seq, 0.0);
    assert_int_equal(s_stats(fx).jobs, 1);
    assert_int_equal(broker_telemetry_job_ended(fx->telemetry, S_J1), 0);
    assert_int_equal(s_stats(fx).jobs, 0);
    char path[256];
    snprintf(path, sizeof path, "%s/runs/%s/%s.msgpack.gz", fx->root, S_B1, S_J1);
    assert_int_equal(s_count_records(path, NULL), 5);
    assert_int_equal(broker_telemetry_job_ended(fx->telemetry, S_J1), 0); //  unknown: fine

    for (int seq = 0; seq < 5; seq++)
        s_ingest(fx, S_B1, S_J1, seq, 0.0);
    assert_int_equal(broker_telemetry_job_ended(fx->telemetry, S_J1), 0);
    assert_int_equal(s_count_records(path, NULL), 10);
    assert_int_equal(s_stats(fx).frames_lost, 0);
    lynx_err_t err;
    lynx_value_t *result = broker_telemetry_read(fx->telemetry, S_B1, S_J1, "step", &err);
    assert_int_equal(lynx_value_get_int(result, "count", 0), 10);
    assert_int_equal(lynx_value_as_int(lynx_value_at(lynx_value_get(result, "seq"), 5)), 0);
    lynx_value_destroy(&result);
}

static void test_memory_is_bounded(void **state)
{
    s_fixture_t *fx = *state;
    s_configure(fx, S_B1, NULL, NULL, -1);
    //  One job past its own cap flushes at once, without waiting for the interval.
    broker_telemetry_set_limits(fx->telemetry, 8192, 65536, 0);
    char path[256];
    snprintf(path, sizeof path, "%s/%s/%s.msgpack", fx->root, S_B1, S_J1);
    int seq = 0;
    while (!s_exists(path))
        s_ingest(fx, S_B1, S_J1, seq++, 0.0);
    assert_true(seq > 20);
    assert_true(s_stats(fx).buffered_bytes < 8192);

    //  Many jobs under their own cap: all together stay under the total cap, the oldest
    //  buffers going first.
    broker_telemetry_set_limits(fx->telemetry, 1 << 20, 16384, 0);
    const char *jobs[] = {S_J1, S_J2, S_J3, "d4d4", "e5e5", "f6f6"};
    for (int round = 0; round < 100; round++)
        for (size_t j = 0; j < 6; j++) {
            s_ingest(fx, S_B1, jobs[j], seq + round, 0.0);
            assert_true(s_stats(fx).buffered_bytes <= 16384);
        }
    for (size_t j = 0; j < 6; j++)
        assert_int_equal(broker_telemetry_job_ended(fx->telemetry, jobs[j]), 0);
    broker_telemetry_stats_t stats = s_stats(fx);
    assert_int_equal(stats.frames_unwritten, 0);
    assert_int_equal(stats.frames_stored, stats.frames_received);
}

static void test_idle_jobs_forgotten(void **state)
{
    s_fixture_t *fx = *state;
    s_configure(fx, S_B1, NULL, NULL, 1);
    s_ingest(fx, S_B1, S_J1, 0, 0.0);
    s_ingest(fx, S_B1, S_J2, 0, 0.0);
    int64_t now_ms = lynx_time_mono_ms();
    assert_int_equal(broker_telemetry_flush_due(fx->telemetry, now_ms + 5000), 2);
    assert_int_equal(s_stats(fx).jobs, 2);
    assert_int_equal(broker_telemetry_flush_due(fx->telemetry, now_ms + 11 * 60 * 1000), 0);
    assert_int_equal(s_stats(fx).jobs, 0);
    assert_int_equal(s_stats(fx).frames_stored, 2);
}

static void test_destroy_flushes(void **state)
{
    s_fixture_t *fx = *state;
    s_configure(fx, S_B1, NULL, "gzip", -1);
    for (int seq = 0; seq < 7; seq++)
        s_ingest(fx, S_B1, S_J1, seq, 0.0);
    broker_telemetry_destroy(&fx->telemetry);
    assert_null(fx->telemetry);
    broker_telemetry_destroy(&fx->telemetry); //  NULL-safe

    //  A new broker process: it configures the batch again and finds the series.
    lynx_err_t err;
    fx->telemetry = broker_telemetry_new(fx->dir, NULL, &err);
    assert_non_null(fx->telemetry);
    assert_string_equal(broker_telemetry_endpoint(fx->telemetry), "");
    s_configure(fx, S_B1, NULL, "gzip", -1);
    lynx_value_t *result = broker_telemetry_read(fx->telemetry, S_B1, S_J1, NULL, &err);
    s_check_json(result, S_J1, 7, 0.0);
    lynx_value_destroy(&result);
}

//  A write that fails (here: a file where the batch directory should be) loses that buffer,
//  counted, and the next flush works once the cause is gone.
static void test_write_error_counted(void **state)
{
    s_fixture_t *fx = *state;
    s_configure(fx, S_B1, "blocked", NULL, -1);
    char blocker[256];
    snprintf(blocker, sizeof blocker, "%s/blocked", fx->root);
    FILE *file = fopen(blocker, "w");
    assert_non_null(file);
    fclose(file);
    for (int seq = 0; seq < 3; seq++)
        s_ingest(fx, S_B1, S_J1, seq, 0.0);
    assert_int_equal(broker_telemetry_job_ended(fx->telemetry, S_J1), -1);
    broker_telemetry_stats_t stats = s_stats(fx);
    assert_int_equal(stats.frames_unwritten, 3);
    assert_int_equal(stats.frames_stored, 0);
    assert_int_equal(stats.buffered_bytes, 0);

    assert_int_equal(remove(blocker), 0);
    for (int seq = 3; seq < 5; seq++)
        s_ingest(fx, S_B1, S_J1, seq, 0.0);
    assert_int_equal(broker_telemetry_job_ended(fx->telemetry, S_J1), 0);
    assert_int_equal(s_stats(fx).frames_stored, 2);
}

//  ---------------------------------------------------------------------------------------
//  Validation: configs, ids and bodies from the network.

static void test_prefix_rules(void **state)
{
    s_fixture_t *fx = *state;
    static const struct {
        const char *prefix;
        const char *directory; //  under telemetry/, NULL: refused (files go to the top)
    } cases[] = {
        {"spacecraft/", "spacecraft"},
        {"a/b/c", "a/b/c"},
        {"a//b/", "a/b"},
        {"", ""},
        {"v1.2/run_3-x", "v1.2/run_3-x"},
        {"a/.../b", "a/.../b"},
        {"../x", NULL},
        {"/etc", NULL},
        {"a/../b", NULL},
        {"./a", NULL},
        {"..", NULL},
        {"a/..", NULL},
        {"a b", NULL},
        {"a\\b", NULL},
        {"~/x", NULL},
        {"a:b", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char job[16];
        snprintf(job, sizeof job, "job-%zu", i);
        lynx_value_t *config = s_config(cases[i].prefix, NULL, -1);
        lynx_err_t err;
        lynx_err_clear(&err);
        int rc = broker_telemetry_configure_batch(fx->telemetry, S_B1, config, &err);
        assert_int_equal(broker_telemetry_config_parse(config, NULL, NULL), rc);
        lynx_value_destroy(&config);
        if (cases[i].directory)
            assert_int_equal(rc, 0);
        else {
            assert_int_equal(rc, -1);
            assert_int_equal(err.code, LYNX_EINVALID);
            assert_string_equal(err.field, "config.telemetry.storage.s3_prefix");
        }
        s_ingest(fx, S_B1, job, 0, 0.0);
        assert_int_equal(broker_telemetry_job_ended(fx->telemetry, job), 0);
        const char *directory = cases[i].directory ? cases[i].directory : "";
        char path[256];
        snprintf(path, sizeof path, "%s/%s%s%s/%s.msgpack", fx->root, directory,
                 *directory ? "/" : "", S_B1, job);
        if (!s_exists(path))
            fail_msg("prefix '%s': no %s", cases[i].prefix, path);
    }
    //  Nothing escaped the data dir.
    char outside[256];
    snprintf(outside, sizeof outside, "%s/x", fx->dir);
    assert_false(s_exists(outside));
}

static void test_config_errors(void **state)
{
    (void)state;
    assert_int_equal(broker_telemetry_config_parse(NULL, NULL, NULL), 0);
    lynx_err_t err;

    //  The documentation's example is valid.
    lynx_value_t *config = s_config("spacecraft/", "gzip", 30);
    lynx_value_set_double(config, "sampling_rate_hz", 10.0);
    lynx_value_t *variables = lynx_value_array();
    const char *names[] = {"altitude", "velocity", "battery_state_of_charge"};
    for (size_t i = 0; i < 3; i++) {
        lynx_value_t *name = lynx_value_string(names[i]);
        lynx_value_append(variables, &name);
    }
    lynx_value_set(config, "variables", &variables);
    assert_int_equal(broker_telemetry_config_parse(config, NULL, &err), 0);
    lynx_value_destroy(&config);

    static const struct {
        const char *key; //  a dotted path set to the value below
        int kind;        //  0: string, 1: number, 2: array with one bad name, 3: boolean
        const char *text;
        double number;
        const char *field;
    } cases[] = {
        {"storage.compression", 0, "zstd", 0, "config.telemetry.storage.compression"},
        {"storage.compression", 3, NULL, 0, "config.telemetry.storage.compression"},
        {"storage.s3_prefix", 1, NULL, 3, "config.telemetry.storage.s3_prefix"},
        {"storage.s3_bucket", 1, NULL, 3, "config.telemetry.storage.s3_bucket"},
        {"buffer_flush_interval_seconds", 1, NULL, 0,
         "config.telemetry.buffer_flush_interval_seconds"},
        {"buffer_flush_interval_seconds", 1, NULL, -5,
         "config.telemetry.buffer_flush_interval_seconds"},
        {"buffer_flush_interval_seconds", 1, NULL, 1e9,
         "config.telemetry.buffer_flush_interval_seconds"},
        {"buffer_flush_interval_seconds", 0, "30", 0,
         "config.telemetry.buffer_flush_interval_seconds"},
        {"sampling_rate_hz", 1, NULL, 0, "config.telemetry.sampling_rate_hz"},
        {"variables", 2, "has\ttab", 0, "config.telemetry.variables"},
        {"variables", 0, "altitude", 0, "config.telemetry.variables"},
        {"storage", 0, "s3://bucket", 0, "config.telemetry.storage"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        config = s_config(NULL, NULL, -1);
        lynx_value_t *parent = config;
        const char *key = cases[i].key;
        if (strncmp(key, "storage.", 8) == 0) {
            parent = lynx_value_get(config, "storage");
            key += 8;
        }
        lynx_value_t *value = cases[i].kind == 0   ? lynx_value_string(cases[i].text)
                              : cases[i].kind == 1 ? lynx_value_double(cases[i].number)
                              : cases[i].kind == 3 ? lynx_value_bool(true)
                                                   : lynx_value_array();
        if (cases[i].kind == 2) {
            lynx_value_t *name = lynx_value_string(cases[i].text);
            lynx_value_append(value, &name);
        }
        assert_int_equal(lynx_value_set(parent, key, &value), 0);
        lynx_err_clear(&err);
        assert_int_equal(broker_telemetry_config_parse(config, NULL, &err), -1);
        assert_int_equal(err.code, LYNX_EINVALID);
        if (strcmp(err.field, cases[i].field) != 0)
            fail_msg("case %zu: field '%s', expected '%s'", i, err.field, cases[i].field);
        lynx_value_destroy(&config);
    }
    config = lynx_value_string("gzip");
    assert_int_equal(broker_telemetry_config_parse(config, NULL, &err), -1);
    assert_string_equal(err.field, "config.telemetry");
    lynx_value_destroy(&config);
}

//  nftw takes no argument: the count lives here.
static int s_entries;
static int s_count_entries(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)path, (void)st, (void)flag, (void)ftw;
    s_entries++;
    return 0;
}

//  Ids come from runners over the network: anything that could name a path (or split a topic)
//  is refused, and nothing is created anywhere.
static void test_hostile_ids_rejected(void **state)
{
    s_fixture_t *fx = *state;
    s_configure(fx, S_B1, NULL, NULL, -1);
    static const char *hostile[] = {
        "../x",
        "/etc",
        "a/b",
        "",
        "..",
        "a.b",
        "a b",
        "x\\y",
        "tele\nmetry",
        "%s%s",
        "0123456789012345678901234567890123456789012345678901234567890123456789", //  70
    };
    lynx_err_t err;
    for (size_t i = 0; i < sizeof hostile / sizeof hostile[0]; i++) {
        lynx_value_t *body = s_frame(hostile[i], S_J1, 0, 0.0);
        assert_int_equal(broker_telemetry_ingest(fx->telemetry, body, &err), -1);
        assert_string_equal(err.field, "body.batch_id");
        lynx_value_destroy(&body);
        body = s_frame(S_B1, hostile[i], 0, 0.0);
        assert_int_equal(broker_telemetry_ingest(fx->telemetry, body, &err), -1);
        assert_string_equal(err.field, "body.job_id");
        lynx_value_destroy(&body);
        assert_int_equal(broker_telemetry_configure_batch(fx->telemetry, hostile[i], NULL, &err),
                         -1);
        assert_null(broker_telemetry_read(fx->telemetry, S_B1, hostile[i], NULL, &err));
        assert_int_equal(err.code, LYNX_EINVALID);
        assert_null(broker_telemetry_read_csv(fx->telemetry, hostile[i], S_J1, NULL, &err));
        assert_int_equal(err.code, LYNX_EINVALID);
        assert_int_equal(broker_republish_job_event(broker_telemetry_republish(fx->telemetry), S_B1,
                                                    hostile[i], "Running", NULL),
                         -1);
        assert_int_equal(broker_republish_batch_event(broker_telemetry_republish(fx->telemetry),
                                                      hostile[i], "Running", NULL),
                         -1);
    }
    //  A NUL inside an id.
    lynx_value_t *body = s_frame(S_B1, S_J1, 0, 0.0);
    lynx_value_t *id = lynx_value_stringn("abc\0/../x", 9);
    lynx_value_set(body, "job_id", &id);
    assert_int_equal(broker_telemetry_ingest(fx->telemetry, body, &err), -1);
    lynx_value_destroy(&body);

    broker_telemetry_stats_t stats = s_stats(fx);
    assert_int_equal(stats.frames_rejected, 2 * (sizeof hostile / sizeof hostile[0]) + 1);
    assert_int_equal(stats.jobs, 0);
    broker_telemetry_destroy(&fx->telemetry);
    s_entries = 0;
    nftw(fx->dir, s_count_entries, 16, FTW_PHYS);
    assert_int_equal(s_entries, 2); //  the data dir and its empty telemetry dir
}

//  Malformed bodies are refused with a field path, counted, and change nothing.
static void test_malformed_bodies_counted(void **state)
{
    s_fixture_t *fx = *state;
    s_configure(fx, S_B1, NULL, NULL, -1);
    s_configure(fx, S_B2, NULL, NULL, -1);
    s_ingest(fx, S_B1, S_J1, 0, 0.0); //  binds J1 to B1
    static const struct {
        const char *key;  //  field of the frame to change (values.<name> for a value)
        int kind;         //  0: remove, 1: string, 2: int, 3: double, 4: array, 5: map, 6: null
        const char *text; //  for kind 1
        int64_t number;
        const char *field;
    } cases[] = {
        {"seq", 0, NULL, 0, "body.seq"},
        {"seq", 1, "7", 0, "body.seq"},
        {"seq", 2, NULL, -1, "body.seq"},
        {"seq", 3, NULL, 1, "body.seq"},
        {"timestamp_ns", 0, NULL, 0, "body.timestamp_ns"},
        {"timestamp_ns", 3, NULL, 1, "body.timestamp_ns"},
        {"values", 0, NULL, 0, "body.values"},
        {"values", 4, NULL, 0, "body.values"},
        {"values.x", 1, "6371", 0, "body.values"},
        {"values.x", 5, NULL, 0, "body.values"},
        {"values.x", 6, NULL, 0, "body.values"},
        {"values.a\tb", 2, NULL, 1, "body.values"},
        {"values.\x1b[2J", 2, NULL, 1, "body.values"},
        {"values.", 2, NULL, 1, "body.values"},
        {"job_id", 0, NULL, 0, "body.job_id"},
        {"job_id", 2, NULL, 7, "body.job_id"},
        {"batch_id", 0, NULL, 0, "body.batch_id"},
        {"batch_id", 1, "unknown-batch", 0, "body.batch_id"},
        {"batch_id", 1, S_B2, 0, "body.batch_id"}, //  J1 belongs to B1
        {"dropped", 1, "3", 0, "body.dropped"},
    };
    lynx_err_t err;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        lynx_value_t *body = s_frame(S_B1, S_J1, 1, 0.0);
        lynx_value_t *parent = body;
        const char *key = cases[i].key;
        if (strncmp(key, "values.", 7) == 0) {
            parent = lynx_value_get(body, "values");
            key += 7;
        }
        lynx_value_t *value = NULL;
        switch (cases[i].kind) {
        case 1:
            value = lynx_value_string(cases[i].text);
            break;
        case 2:
            value = lynx_value_int(cases[i].number);
            break;
        case 3:
            value = lynx_value_double((double)cases[i].number);
            break;
        case 4:
            value = lynx_value_array();
            break;
        case 5:
            value = lynx_value_map();
            break;
        case 6:
            value = lynx_value_null();
            break;
        }
        if (value)
            assert_int_equal(lynx_value_set(parent, key, &value), 0);
        else
            assert_int_equal(lynx_value_remove(parent, key), 0);
        lynx_err_clear(&err);
        assert_int_equal(broker_telemetry_ingest(fx->telemetry, body, &err), -1);
        assert_int_equal(err.code, LYNX_EINVALID);
        if (strcmp(err.field, cases[i].field) != 0)
            fail_msg("case %zu (%s): field '%s' (%s), expected '%s'", i, cases[i].key, err.field,
                     err.message, cases[i].field);
        lynx_value_destroy(&body);
    }
    //  Not an object at all; too many values.
    lynx_value_t *body = lynx_value_int(5);
    assert_int_equal(broker_telemetry_ingest(fx->telemetry, body, &err), -1);
    assert_string_equal(err.field, "body");
    lynx_value_destroy(&body);
    assert_int_equal(broker_telemetry_ingest(fx->telemetry, NULL, NULL), -1);
    body = s_frame(S_B1, S_J1, 1, 0.0);
    lynx_value_t *values = lynx_value_get(body, "values");
    for (int i = 0; i <= BROKER_TELEMETRY_VALUES_MAX; i++) {
        char name[16];
        snprintf(name, sizeof name, "v%d", i);
        lynx_value_set_int(values, name, i);
    }
    assert_int_equal(broker_telemetry_ingest(fx->telemetry, body, &err), -1);
    assert_string_equal(err.field, "body.values");
    lynx_value_destroy(&body);

    size_t refused = sizeof cases / sizeof cases[0] + 3;
    broker_telemetry_stats_t stats = s_stats(fx);
    assert_int_equal(stats.frames_received, 1 + refused);
    assert_int_equal(stats.frames_rejected, refused);
    lynx_value_t *result = broker_telemetry_read(fx->telemetry, S_B1, S_J1, NULL, &err);
    assert_int_equal(lynx_value_get_int(result, "count", 0), 1); //  only the valid frame
    lynx_value_destroy(&result);
}

static void test_seq_gaps_counted(void **state)
{
    s_fixture_t *fx = *state;
    s_configure(fx, S_B1, NULL, NULL, -1);
    const int64_t seqs[] = {0, 1, 5, 6}; //  2, 3, 4 lost
    for (size_t i = 0; i < 4; i++)
        s_ingest(fx, S_B1, S_J1, seqs[i], 0.0);
    assert_int_equal(s_stats(fx).frames_lost, 3);
    s_ingest(fx, S_B1, S_J2, 2, 0.0); //  first frame seen is seq 2: 0 and 1 lost
    assert_int_equal(s_stats(fx).frames_lost, 5);
    s_ingest(fx, S_B1, S_J1, 0, 0.0); //  a new attempt restarts at 0: nothing lost
    s_ingest(fx, S_B1, S_J1, 1, 0.0);
    assert_int_equal(s_stats(fx).frames_lost, 5);
}

//  ---------------------------------------------------------------------------------------
//  Publishing.

static zsock_t *s_subscriber(s_fixture_t *fx, const char *topic)
{
    zsock_t *sub = zsock_new(ZMQ_SUB);
    assert_non_null(sub);
    zsock_set_linger(sub, 0);
    zsock_set_rcvhwm(sub, 0);
    zsock_set_subscribe(sub, topic);
    assert_int_equal(zsock_connect(sub, "%s", broker_telemetry_endpoint(fx->telemetry)), 0);
    return sub;
}

//  Receive [topic][payload]; fails after S_RECV_MS.
static void s_recv(zsock_t *sub, char **topic_p, zframe_t **payload_p)
{
    zsock_set_rcvtimeo(sub, S_RECV_MS);
    zmsg_t *msg = zmsg_recv(sub);
    if (!msg)
        fail_msg("nothing published within %d ms", S_RECV_MS);
    assert_int_equal(zmsg_size(msg), 2);
    *topic_p = zmsg_popstr(msg);
    *payload_p = zmsg_pop(msg);
    zmsg_destroy(&msg);
}

//  Wait until sub receives what publish() sends (its subscription has reached the PUB), then
//  discard everything up to a sentinel with topic end_topic, sent by publish_end().
static void s_sync(zsock_t *sub, void (*publish)(s_fixture_t *), void (*publish_end)(s_fixture_t *),
                   const char *end_topic, s_fixture_t *fx)
{
    int64_t deadline_ms = lynx_time_mono_ms() + S_SYNC_MS;
    zsock_set_rcvtimeo(sub, S_PROBE_MS);
    zmsg_t *msg = NULL;
    while (!msg && lynx_time_mono_ms() < deadline_ms) {
        publish(fx);
        msg = zmsg_recv(sub);
    }
    if (!msg)
        fail_msg("subscription not effective within %d ms", S_SYNC_MS);
    zmsg_destroy(&msg);
    publish_end(fx);
    for (;;) {
        char *topic = NULL;
        zframe_t *payload = NULL;
        s_recv(sub, &topic, &payload);
        bool end = strcmp(topic, end_topic) == 0;
        zstr_free(&topic);
        zframe_destroy(&payload);
        if (end)
            break;
    }
}

static void s_publish_probe(s_fixture_t *fx)
{
    s_ingest(fx, S_B1, "probe", fx->probe_seq++, 0.0);
}
static void s_publish_probe_end(s_fixture_t *fx)
{
    s_ingest(fx, S_B1, "probe-end", 0, 0.0);
}
static void s_publish_event_probe(s_fixture_t *fx)
{
    assert_int_equal(
        broker_republish_batch_event(broker_telemetry_republish(fx->telemetry), "probe", "x", NULL),
        0);
}
static void s_publish_event_probe_end(s_fixture_t *fx)
{
    assert_int_equal(broker_republish_batch_event(broker_telemetry_republish(fx->telemetry),
                                                  "probe-end", "x", NULL),
                     0);
}

//  A subscriber to "telemetry.<batch>" gets exactly that batch's frames, as codec TELEMETRY
//  messages with the job's ids, in order.
static void test_subscriber_gets_one_batch(void **state)
{
    s_fixture_t *fx = *state;
    assert_non_null(strstr(broker_telemetry_endpoint(fx->telemetry), "tcp://127.0.0.1:"));
    s_configure(fx, S_B1, NULL, NULL, -1);
    s_configure(fx, S_B2, NULL, "gzip", -1);
    zsock_t *sub = s_subscriber(fx, "telemetry." S_B1);
    s_sync(sub, s_publish_probe, s_publish_probe_end, "telemetry." S_B1 ".probe-end", fx);

    for (int seq = 0; seq < 200; seq++) {
        s_ingest(fx, S_B2, S_J2, seq, 1000.0);
        s_ingest(fx, S_B1, S_J1, seq, 0.0);
        s_ingest(fx, S_B2, S_J3, seq, 2000.0);
    }
    s_ingest(fx, S_B1, "end", 0, 0.0);
    int received = 0;
    for (;;) {
        char *topic = NULL;
        zframe_t *payload = NULL;
        s_recv(sub, &topic, &payload);
        if (strcmp(topic, "telemetry." S_B1 ".end") == 0) {
            zstr_free(&topic);
            zframe_destroy(&payload);
            break;
        }
        assert_string_equal(topic, "telemetry." S_B1 "." S_J1);
        lynx_err_t err;
        lynx_msg_t *msg = lynx_msg_decode(zframe_data(payload), zframe_size(payload), &err);
        if (!msg)
            fail_msg("published frame does not decode: %s: %s", err.field, err.message);
        assert_int_equal(lynx_msg_id(msg), LYNX_MSG_TELEMETRY);
        lynx_value_t *body = lynx_msg_body(msg);
        assert_string_equal(lynx_value_get_string(body, "job_id", ""), S_J1);
        assert_string_equal(lynx_value_get_string(body, "batch_id", ""), S_B1);
        assert_int_equal(lynx_value_get_int(body, "seq", -1), received);
        assert_int_equal(lynx_value_get_int(body, "timestamp_ns", 0), S_T0 + received * 1000000);
        assert_true(lynx_value_get_double(lynx_value_get(body, "values"), "x", 0) ==
                    s_x(0.0, received));
        lynx_msg_destroy(&msg);
        zstr_free(&topic);
        zframe_destroy(&payload);
        received++;
    }
    assert_int_equal(received, 200);
    broker_telemetry_stats_t stats = s_stats(fx);
    assert_int_equal(stats.frames_published, stats.frames_received);
    assert_int_equal(stats.frames_dropped, 0);
    zsock_destroy(&sub);
}

//  A subscriber to "event." gets job events on event.<batch>.<job> and batch events on
//  event.<batch>, as msgpack maps; extra fields never replace the standard ones.
static void test_events(void **state)
{
    s_fixture_t *fx = *state;
    zsock_t *sub = s_subscriber(fx, "event.");
    s_sync(sub, s_publish_event_probe, s_publish_event_probe_end, "event.probe-end", fx);
    //  Telemetry is not an event.
    s_configure(fx, S_B1, NULL, NULL, -1);
    s_ingest(fx, S_B1, S_J1, 0, 0.0);

    uint64_t published = s_stats(fx).events_published;
    lynx_value_t *extra = lynx_value_map();
    lynx_value_set_string(extra, "runner_id", "ws-07");
    lynx_value_set_int(extra, "attempt", 2);
    lynx_value_set_string(extra, "status", "Hijacked");
    lynx_value_set_string(extra, "type", "other");
    assert_int_equal(broker_republish_job_event(broker_telemetry_republish(fx->telemetry), S_B1,
                                                S_J1, "Running", extra),
                     0);
    lynx_value_destroy(&extra);
    assert_int_equal(broker_republish_job_event(broker_telemetry_republish(fx->telemetry), S_B1,
                                                S_J1, "Completed", NULL),
                     0);
    assert_int_equal(broker_republish_batch_event(broker_telemetry_republish(fx->telemetry), S_B1,
                                                  "Completed", NULL),
                     0);

    static const struct {
        const char *topic, *type, *status;
    } expected[] = {
        {"event." S_B1 "." S_J1, "job", "Running"},
        {"event." S_B1 "." S_J1, "job", "Completed"},
        {"event." S_B1, "batch", "Completed"},
    };
    for (size_t i = 0; i < 3; i++) {
        char *topic = NULL;
        zframe_t *payload = NULL;
        s_recv(sub, &topic, &payload);
        assert_string_equal(topic, expected[i].topic);
        lynx_err_t err;
        lynx_value_t *event = lynx_msgpack_unpack(zframe_data(payload), zframe_size(payload), &err);
        assert_non_null(event);
        assert_string_equal(lynx_value_get_string(event, "type", ""), expected[i].type);
        assert_string_equal(lynx_value_get_string(event, "status", ""), expected[i].status);
        assert_string_equal(lynx_value_get_string(event, "batch_id", ""), S_B1);
        assert_true(lynx_value_get_int(event, "time_ms", 0) > 0);
        if (i < 2)
            assert_string_equal(lynx_value_get_string(event, "job_id", ""), S_J1);
        else
            assert_null(lynx_value_get(event, "job_id"));
        if (i == 0) {
            assert_string_equal(lynx_value_get_string(event, "runner_id", ""), "ws-07");
            assert_int_equal(lynx_value_get_int(event, "attempt", 0), 2);
        }
        lynx_value_destroy(&event);
        zstr_free(&topic);
        zframe_destroy(&payload);
    }
    assert_int_equal(s_stats(fx).events_published, published + 3);
    assert_int_equal(s_stats(fx).events_dropped, 0);
    zsock_destroy(&sub);
}

static void test_no_pub_socket_and_bind_errors(void **state)
{
    s_fixture_t *fx = *state;
    lynx_err_t err;
    //  The same endpoint twice.
    char endpoint[256];
    snprintf(endpoint, sizeof endpoint, "%s", broker_telemetry_endpoint(fx->telemetry));
    broker_telemetry_t *other = broker_telemetry_new(fx->dir, endpoint, &err);
    assert_null(other);
    assert_int_equal(err.code, LYNX_EINTERNAL);
    assert_non_null(strstr(err.message, "bind tcp://127.0.0.1:"));
    assert_non_null(strstr(err.message, "Address already in use"));
    //  A data dir that cannot be created.
    char blocked[128];
    snprintf(blocked, sizeof blocked, "%s/file", fx->dir);
    FILE *file = fopen(blocked, "w");
    assert_non_null(file);
    fclose(file);
    assert_null(broker_telemetry_new(blocked, NULL, &err));
    assert_non_null(strstr(err.message, "/file/telemetry"));
    assert_null(broker_telemetry_new("", NULL, &err));
    assert_int_equal(err.code, LYNX_EINVALID);

    //  Without a PUB socket everything works; nothing is published.
    other = broker_telemetry_new(fx->dir, NULL, &err);
    assert_non_null(other);
    assert_string_equal(broker_telemetry_endpoint(other), "");
    assert_int_equal(broker_telemetry_configure_batch(other, S_B1, NULL, &err), 0);
    lynx_value_t *body = s_frame(S_B1, S_J1, 0, 0.0);
    assert_int_equal(broker_telemetry_ingest(other, body, &err), 0);
    lynx_value_destroy(&body);
    assert_int_equal(
        broker_republish_job_event(broker_telemetry_republish(other), S_B1, S_J1, "Running", NULL),
        0);
    broker_telemetry_stats_t stats;
    broker_telemetry_stats(other, &stats);
    assert_int_equal(stats.frames_published, 0);
    assert_int_equal(stats.frames_dropped, 0);
    assert_int_equal(stats.events_published, 0);
    broker_telemetry_destroy(&other);
}

int main(void)
{
#define S_TEST(name) cmocka_unit_test_setup_teardown(name, s_setup, s_teardown)
    const struct CMUnitTest tests[] = {
        S_TEST(test_roundtrip_plain_and_gzip),
        S_TEST(test_variables_filter),
        S_TEST(test_csv_number_forms),
        S_TEST(test_names_as_scenarios_choose),
        S_TEST(test_read_unknown_job_is_empty),
        S_TEST(test_read_limit),
        S_TEST(test_damaged_tail_reads_what_precedes),
        S_TEST(test_flush_by_interval),
        S_TEST(test_flush_at_job_end),
        S_TEST(test_memory_is_bounded),
        S_TEST(test_idle_jobs_forgotten),
        S_TEST(test_destroy_flushes),
        S_TEST(test_write_error_counted),
        S_TEST(test_prefix_rules),
        S_TEST(test_config_errors),
        S_TEST(test_hostile_ids_rejected),
        S_TEST(test_malformed_bodies_counted),
        S_TEST(test_seq_gaps_counted),
        S_TEST(test_subscriber_gets_one_batch),
        S_TEST(test_events),
        S_TEST(test_no_pub_socket_and_bind_errors),
    };
    zsys_init();
    zsys_set_logstream(stderr); //  refused frames and write errors are logged: expected here
    return cmocka_run_group_tests(tests, NULL, NULL);
}

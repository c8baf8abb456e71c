//  broker_telemetry: the broker's telemetry store. Frames go in as runners forward them, come
//  back as JSON columns and CSV, are flushed by age, size, job end and destroy, stay bounded in
//  memory, and anything hostile or malformed is refused and counted (fixture:
//  broker_telemetry_fixture.h).
#include "broker_telemetry_fixture.h"

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
    fx->telemetry = broker_telemetry_new(fx->dir, NULL, NULL, &err);
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
        S_TEST(test_hostile_ids_rejected),
        S_TEST(test_malformed_bodies_counted),
        S_TEST(test_seq_gaps_counted),
    };
    zsys_init();
    zsys_set_logstream(stderr); //  refused frames and write errors are logged: expected here
    return cmocka_run_group_tests(tests, NULL, NULL);
}

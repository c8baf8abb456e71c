//  broker_store_history: what the store keeps besides batches, jobs and results: the attempts
//  of a job that were followed by a retry (the job row holds only the last one), how the last
//  attempt's scenario ended, and the operator's marks on runners (drained, quarantined).
#include "broker_store_internal.h"

#include <stdio.h>
#include <string.h>

#include "lynx_msg.h"

static void s_bind_optional_int(sqlite3_stmt *stmt, int index, int64_t value)
{
    if (value >= 0)
        sqlite3_bind_int64(stmt, index, value);
}

static int64_t s_column_optional_int(sqlite3_stmt *stmt, int column)
{
    return sqlite3_column_type(stmt, column) == SQLITE_NULL ? -1
                                                            : sqlite3_column_int64(stmt, column);
}

int broker_store_result_exit(broker_store_t *self, const char *job_id, broker_exit_t *exit)
{
    sqlite3_stmt *stmt = broker_store_sql_cached(
        self, "SELECT exit_code, exit_signal FROM results WHERE job_id = ?1");
    if (!stmt)
        return -1;
    sqlite3_bind_text(stmt, 1, job_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(stmt), result = 1;
    if (rc == SQLITE_ROW) {
        exit->code = s_column_optional_int(stmt, 0);
        exit->signal = s_column_optional_int(stmt, 1);
        result = 0;
    } else if (rc != SQLITE_DONE)
        result = broker_store_sql_fail(self, "read result of");
    sqlite3_reset(stmt);
    return result;
}

int broker_store_add_attempt(broker_store_t *self, const broker_attempt_rec_t *attempt)
{
    sqlite3_stmt *stmt = broker_store_sql_cached(
        self, "INSERT OR REPLACE INTO attempts (job_id, attempt, runner_id, status,"
              " claimed_at_ms, started_at_ms, ended_at_ms, exit_code, exit_signal,"
              " error_message, trigger, charged)"
              " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)");
    if (!stmt)
        return -1;
    sqlite3_bind_text(stmt, 1, attempt->job_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 2, attempt->attempt);
    if (attempt->runner_id[0])
        sqlite3_bind_text(stmt, 3, attempt->runner_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 4, lynx_job_state_name(attempt->status), -1, SQLITE_STATIC);
    broker_store_sql_bind_time(stmt, 5, attempt->claimed_at_ms);
    broker_store_sql_bind_time(stmt, 6, attempt->started_at_ms);
    broker_store_sql_bind_time(stmt, 7, attempt->ended_at_ms);
    s_bind_optional_int(stmt, 8, attempt->exit.code);
    s_bind_optional_int(stmt, 9, attempt->exit.signal);
    if (attempt->error_message)
        sqlite3_bind_text(stmt, 10, attempt->error_message, -1, SQLITE_STATIC);
    if (attempt->trigger && broker_store_sql_bind_value(self, stmt, 11, attempt->trigger)) {
        sqlite3_reset(stmt);
        sqlite3_clear_bindings(stmt);
        return -1;
    }
    sqlite3_bind_int(stmt, 12, attempt->charged);
    return broker_store_sql_step_done(self, stmt, "record attempt in");
}

int broker_store_uncharge_attempt(broker_store_t *self, const char *job_id, int64_t attempt)
{
    sqlite3_stmt *stmt = broker_store_sql_cached(
        self, "UPDATE attempts SET charged = 0 WHERE job_id = ?1 AND attempt = ?2");
    if (!stmt)
        return -1;
    sqlite3_bind_text(stmt, 1, job_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 2, attempt);
    return broker_store_sql_step_done(self, stmt, "update attempt in");
}

int broker_store_foreach_attempt(broker_store_t *self, const char *job_id,
                                 broker_store_attempt_fn *fn, void *arg)
{
    sqlite3_stmt *stmt = NULL;
    if (broker_store_sql_prepare(
            self, &stmt,
            "SELECT job_id, attempt, runner_id, status, claimed_at_ms, started_at_ms,"
            " ended_at_ms, exit_code, exit_signal, error_message, trigger, charged"
            " FROM attempts WHERE job_id = ?1 ORDER BY attempt"))
        return -1;
    sqlite3_bind_text(stmt, 1, job_id, -1, SQLITE_STATIC);
    int rc, result = 0;
    while (result == 0 && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        broker_attempt_rec_t attempt = {.attempt = sqlite3_column_int64(stmt, 1)};
        broker_store_sql_copy_text(attempt.job_id, sizeof attempt.job_id, stmt, 0);
        broker_store_sql_copy_text(attempt.runner_id, sizeof attempt.runner_id, stmt, 2);
        int status = lynx_job_state_parse((const char *)sqlite3_column_text(stmt, 3));
        attempt.status = status < 0 ? LYNX_JOB_FAILED : (lynx_job_state_t)status;
        attempt.claimed_at_ms = sqlite3_column_int64(stmt, 4);
        attempt.started_at_ms = sqlite3_column_int64(stmt, 5);
        attempt.ended_at_ms = sqlite3_column_int64(stmt, 6);
        attempt.exit =
            (broker_exit_t){s_column_optional_int(stmt, 7), s_column_optional_int(stmt, 8)};
        attempt.error_message = (const char *)sqlite3_column_text(stmt, 9);
        lynx_value_t *trigger = NULL;
        if (sqlite3_column_type(stmt, 10) != SQLITE_NULL)
            trigger = lynx_msgpack_unpack(sqlite3_column_blob(stmt, 10),
                                          (size_t)sqlite3_column_bytes(stmt, 10), NULL);
        attempt.trigger = trigger;
        attempt.charged = sqlite3_column_int(stmt, 11) != 0;
        result = fn(&attempt, arg);
        lynx_value_destroy(&trigger);
    }
    if (result == 0 && rc != SQLITE_DONE)
        result = broker_store_sql_fail(self, "list attempts in");
    sqlite3_finalize(stmt);
    return result < 0 ? -1 : 0;
}

int broker_store_set_runner_quarantine(broker_store_t *self, const char *runner_id,
                                       const broker_quarantine_rec_t *quarantine)
{
    sqlite3_stmt *stmt = broker_store_sql_cached(
        self, quarantine ? "INSERT OR REPLACE INTO quarantined_runners (id, reason, last_error,"
                           " since_ms, failed_attempts) VALUES (?1, ?2, ?3, ?4, ?5)"
                         : "DELETE FROM quarantined_runners WHERE id = ?1");
    if (!stmt)
        return -1;
    sqlite3_bind_text(stmt, 1, runner_id, -1, SQLITE_STATIC);
    if (quarantine) {
        sqlite3_bind_text(stmt, 2, quarantine->reason, -1, SQLITE_STATIC);
        if (quarantine->last_error)
            sqlite3_bind_text(stmt, 3, quarantine->last_error, -1, SQLITE_STATIC);
        sqlite3_bind_int64(stmt, 4, quarantine->since_ms);
        sqlite3_bind_int64(stmt, 5, quarantine->failed_attempts);
    }
    return broker_store_sql_step_done(self, stmt, "record quarantined runner in");
}

int broker_store_foreach_quarantined_runner(broker_store_t *self, broker_store_quarantine_fn *fn,
                                            void *arg)
{
    sqlite3_stmt *stmt = NULL;
    if (broker_store_sql_prepare(self, &stmt,
                                 "SELECT id, reason, last_error, since_ms, failed_attempts"
                                 " FROM quarantined_runners ORDER BY id"))
        return -1;
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        broker_quarantine_rec_t quarantine = {
            .runner_id = (const char *)sqlite3_column_text(stmt, 0),
            .reason = (const char *)sqlite3_column_text(stmt, 1),
            .last_error = (const char *)sqlite3_column_text(stmt, 2),
            .since_ms = sqlite3_column_int64(stmt, 3),
            .failed_attempts = sqlite3_column_int64(stmt, 4),
        };
        fn(&quarantine, arg);
    }
    int result = rc == SQLITE_DONE ? 0 : broker_store_sql_fail(self, "list quarantined runners in");
    sqlite3_finalize(stmt);
    return result;
}

int broker_store_set_runner_drained(broker_store_t *self, const char *runner_id, bool drained)
{
    sqlite3_stmt *stmt = NULL;
    if (broker_store_sql_prepare(self, &stmt,
                                 drained ? "INSERT OR IGNORE INTO drained_runners (id) VALUES (?1)"
                                         : "DELETE FROM drained_runners WHERE id = ?1"))
        return -1;
    sqlite3_bind_text(stmt, 1, runner_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(stmt) == SQLITE_DONE
                 ? 0
                 : broker_store_sql_fail(self, "record drained runner in");
    sqlite3_finalize(stmt);
    return rc;
}

int broker_store_foreach_drained_runner(broker_store_t *self, broker_store_id_fn *fn, void *arg)
{
    sqlite3_stmt *stmt = NULL;
    if (broker_store_sql_prepare(self, &stmt, "SELECT id FROM drained_runners ORDER BY id"))
        return -1;
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
        fn((const char *)sqlite3_column_text(stmt, 0), arg);
    int result = rc == SQLITE_DONE ? 0 : broker_store_sql_fail(self, "list drained runners in");
    sqlite3_finalize(stmt);
    return result;
}

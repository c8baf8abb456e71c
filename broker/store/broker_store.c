#include "broker_store_internal.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lynx_msg.h"

static const char *s_schema =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=NORMAL;"
    //  A big batch is one transaction: keep its pages in memory rather than spilling and
    //  re-reading them through system calls.
    "PRAGMA cache_size=-131072;"
    "PRAGMA mmap_size=1073741824;"
    "PRAGMA foreign_keys=ON;"
    "CREATE TABLE IF NOT EXISTS batches ("
    "  id TEXT PRIMARY KEY, name TEXT NOT NULL, status TEXT NOT NULL,"
    "  total_jobs INTEGER NOT NULL, created_at_ms INTEGER NOT NULL,"
    "  config BLOB NOT NULL, config_hash TEXT NOT NULL, seed INTEGER NOT NULL,"
    "  cancelled INTEGER NOT NULL DEFAULT 0, submitted_by TEXT, token_name TEXT);"
    "CREATE TABLE IF NOT EXISTS jobs ("
    "  id TEXT PRIMARY KEY, batch_id TEXT NOT NULL REFERENCES batches(id),"
    "  run_id INTEGER NOT NULL, status TEXT NOT NULL, parameters BLOB NOT NULL,"
    "  retries INTEGER NOT NULL, max_retries INTEGER NOT NULL, timeout_secs INTEGER NOT NULL,"
    "  attempt INTEGER NOT NULL, created_at_ms INTEGER NOT NULL, claimed_at_ms INTEGER,"
    "  started_at_ms INTEGER, completed_at_ms INTEGER, assigned_runner TEXT, last_runner TEXT,"
    "  error_message TEXT);"
    "CREATE INDEX IF NOT EXISTS jobs_by_batch_status ON jobs(batch_id, status, run_id);"
    "CREATE INDEX IF NOT EXISTS jobs_by_batch_run ON jobs(batch_id, run_id);"
    "CREATE TABLE IF NOT EXISTS results ("
    "  job_id TEXT PRIMARY KEY REFERENCES jobs(id), batch_id TEXT NOT NULL,"
    "  result BLOB NOT NULL, exit_code INTEGER, exit_signal INTEGER);"
    "CREATE INDEX IF NOT EXISTS results_by_batch ON results(batch_id);"
    "CREATE TABLE IF NOT EXISTS drained_runners (id TEXT PRIMARY KEY);"
    "CREATE TABLE IF NOT EXISTS attempts ("
    "  job_id TEXT NOT NULL, attempt INTEGER NOT NULL, runner_id TEXT, status TEXT NOT NULL,"
    "  claimed_at_ms INTEGER, started_at_ms INTEGER, ended_at_ms INTEGER, exit_code INTEGER,"
    "  exit_signal INTEGER, error_message TEXT, trigger BLOB, charged INTEGER NOT NULL,"
    "  PRIMARY KEY (job_id, attempt)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS artifacts ("
    "  job_id TEXT NOT NULL, name TEXT NOT NULL, attempt INTEGER NOT NULL,"
    "  size INTEGER NOT NULL, sha256 TEXT NOT NULL, content_type TEXT NOT NULL,"
    "  path TEXT NOT NULL, PRIMARY KEY (job_id, name));"
    "CREATE TABLE IF NOT EXISTS answers ("
    "  key TEXT PRIMARY KEY, op TEXT NOT NULL, request_hash TEXT NOT NULL,"
    "  answer BLOB NOT NULL, is_error INTEGER NOT NULL, created_at_ms INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS quarantined_runners ("
    "  id TEXT PRIMARY KEY, reason TEXT NOT NULL, last_error TEXT, since_ms INTEGER NOT NULL,"
    "  failed_attempts INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS tokens ("
    "  id TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL, hash TEXT NOT NULL,"
    "  created_at_ms INTEGER NOT NULL, last_used_at_ms INTEGER, revoked_at_ms INTEGER);"
    "CREATE TABLE IF NOT EXISTS enrollments ("
    "  id TEXT PRIMARY KEY, runner_id TEXT NOT NULL, public_key TEXT NOT NULL, host TEXT,"
    "  status TEXT NOT NULL, token_name TEXT, created_at_ms INTEGER NOT NULL,"
    "  decided_at_ms INTEGER);";

static const char *s_job_columns =
    "id, batch_id, run_id, status, retries, max_retries, timeout_secs, attempt, created_at_ms,"
    " claimed_at_ms, started_at_ms, completed_at_ms, assigned_runner, last_runner";

//  Record SQLite's reason with the operation; always returns -1.
int broker_store_sql_fail(broker_store_t *self, const char *operation)
{
    snprintf(self->error, sizeof self->error, "%s %s: %s", operation, self->path,
             sqlite3_errmsg(self->db));
    return -1;
}

//  A prepared statement for sql, kept for the store's lifetime; reset it after use, never
//  finalize it. NULL (error recorded) when it cannot be prepared or the cache is full.
sqlite3_stmt *broker_store_sql_cached(broker_store_t *self, const char *sql)
{
    size_t slot = 0;
    for (; slot < BROKER_STORE_CACHE_SIZE && self->cache[slot].sql; slot++)
        if (self->cache[slot].sql == sql)
            return self->cache[slot].stmt;
    if (slot == BROKER_STORE_CACHE_SIZE) {
        snprintf(self->error, sizeof self->error, "statement cache of %s is full", self->path);
        return NULL;
    }
    if (broker_store_sql_prepare(self, &self->cache[slot].stmt, sql))
        return NULL;
    self->cache[slot].sql = sql;
    return self->cache[slot].stmt;
}

int broker_store_sql_prepare(broker_store_t *self, sqlite3_stmt **stmt, const char *sql)
{
    if (sqlite3_prepare_v3(self->db, sql, -1, SQLITE_PREPARE_PERSISTENT, stmt, NULL) != SQLITE_OK)
        return broker_store_sql_fail(self, "prepare");
    return 0;
}

static int s_make_dir(const char *path, lynx_err_t *err)
{
    if (zsys_dir_create("%s", path))
        return lynx_err_set(err, LYNX_EINTERNAL, NULL, "create %s: %s", path, strerror(errno));
    return 0;
}

//  Columns added after the first release of a table: a data dir written by an older broker
//  gets them on open (CREATE TABLE IF NOT EXISTS leaves an existing table alone).
static const struct {
    const char *table;
    const char *column;
    const char *definition;
} s_added_columns[] = {
    {"jobs", "last_runner", "TEXT"},     {"batches", "cancelled", "INTEGER NOT NULL DEFAULT 0"},
    {"batches", "submitted_by", "TEXT"}, {"results", "exit_code", "INTEGER"},
    {"batches", "token_name", "TEXT"},   {"results", "exit_signal", "INTEGER"},
};

static int s_add_missing_columns(broker_store_t *self)
{
    for (size_t i = 0; i < sizeof s_added_columns / sizeof s_added_columns[0]; i++) {
        char sql[256];
        snprintf(sql, sizeof sql, "SELECT 1 FROM pragma_table_info('%s') WHERE name = '%s'",
                 s_added_columns[i].table, s_added_columns[i].column);
        sqlite3_stmt *stmt = NULL;
        if (broker_store_sql_prepare(self, &stmt, sql))
            return -1;
        bool present = sqlite3_step(stmt) == SQLITE_ROW;
        sqlite3_finalize(stmt);
        if (present)
            continue;
        snprintf(sql, sizeof sql, "ALTER TABLE %s ADD COLUMN %s %s", s_added_columns[i].table,
                 s_added_columns[i].column, s_added_columns[i].definition);
        if (sqlite3_exec(self->db, sql, NULL, NULL, NULL) != SQLITE_OK)
            return broker_store_sql_fail(self, "upgrade schema of");
    }
    return 0;
}

broker_store_t *broker_store_new(const char *data_dir, lynx_err_t *err)
{
    if (s_make_dir(data_dir, err))
        return NULL;
    broker_store_t *self = calloc(1, sizeof *self);
    if (!self) {
        lynx_err_set(err, LYNX_EINTERNAL, NULL, "out of memory");
        return NULL;
    }
    snprintf(self->path, sizeof self->path, "%s/lynx.db", data_dir);
    int rc =
        sqlite3_open_v2(self->path, &self->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc == SQLITE_OK)
        sqlite3_busy_timeout(self->db, 5000);
    if (rc != SQLITE_OK || sqlite3_exec(self->db, s_schema, NULL, NULL, NULL) != SQLITE_OK) {
        broker_store_sql_fail(self, "open");
        goto failed;
    }
    if (s_add_missing_columns(self))
        goto failed;
    char sql[1024];
    snprintf(sql, sizeof sql,
             "SELECT %s FROM jobs WHERE batch_id = ?1 AND status = ?2 AND run_id > ?3"
             " ORDER BY run_id LIMIT ?4",
             s_job_columns);
    if (broker_store_sql_prepare(self, &self->pending_jobs, sql))
        goto failed;
    snprintf(sql, sizeof sql,
             "SELECT %s FROM jobs WHERE batch_id = ?1 AND run_id > ?3 ORDER BY run_id LIMIT ?4",
             s_job_columns);
    if (broker_store_sql_prepare(self, &self->all_jobs, sql))
        goto failed;
    snprintf(sql, sizeof sql, "SELECT %s FROM jobs WHERE id = ?1", s_job_columns);
    if (broker_store_sql_prepare(self, &self->get_job, sql) ||
        broker_store_sql_prepare(
            self, &self->insert_batch,
            "INSERT INTO batches (id, name, status, total_jobs, created_at_ms, config,"
            " config_hash, seed, submitted_by, token_name)"
            " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)") ||
        broker_store_sql_prepare(
            self, &self->insert_job,
            "INSERT INTO jobs (id, batch_id, run_id, status, parameters, retries,"
            " max_retries, timeout_secs, attempt, created_at_ms)"
            " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)") ||
        broker_store_sql_prepare(
            self, &self->update_job,
            "UPDATE jobs SET status = ?2, retries = ?3, attempt = ?4, claimed_at_ms = ?5,"
            " started_at_ms = ?6, completed_at_ms = ?7, assigned_runner = ?8, last_runner = ?10,"
            " error_message = ?9 WHERE id = ?1") ||
        broker_store_sql_prepare(self, &self->update_batch,
                                 "UPDATE batches SET status = ?2 WHERE id = ?1") ||
        broker_store_sql_prepare(
            self, &self->put_result,
            "INSERT OR REPLACE INTO results (job_id, batch_id, result, exit_code,"
            " exit_signal) VALUES (?1, ?2, ?3, ?4, ?5)"))
        goto failed;
    return self;

failed:
    lynx_err_set(err, LYNX_EINTERNAL, NULL, "%s", self->error);
    broker_store_destroy(&self);
    return NULL;
}

void broker_store_destroy(broker_store_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    broker_store_t *self = *self_p;
    sqlite3_stmt *statements[] = {self->insert_batch, self->insert_job, self->update_job,
                                  self->update_batch, self->put_result, self->get_job,
                                  self->pending_jobs, self->all_jobs};
    for (size_t i = 0; i < sizeof statements / sizeof statements[0]; i++)
        sqlite3_finalize(statements[i]);
    for (size_t slot = 0; slot < BROKER_STORE_CACHE_SIZE; slot++)
        sqlite3_finalize(self->cache[slot].stmt);
    sqlite3_close_v2(self->db);
    free(self);
    *self_p = NULL;
}

const char *broker_store_error(const broker_store_t *self)
{
    return self->error;
}

static int s_exec(broker_store_t *self, const char *sql)
{
    if (sqlite3_exec(self->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return broker_store_sql_fail(self, sql);
    return 0;
}

//  Run a cached statement that returns no rows.
static int s_run_cached(broker_store_t *self, const char *sql)
{
    sqlite3_stmt *stmt = broker_store_sql_cached(self, sql);
    if (!stmt)
        return -1;
    int rc = sqlite3_step(stmt) == SQLITE_DONE ? 0 : broker_store_sql_fail(self, sql);
    sqlite3_reset(stmt);
    return rc;
}

int broker_store_begin(broker_store_t *self)
{
    return self->in_turn ? s_run_cached(self, "SAVEPOINT step") : s_exec(self, "BEGIN IMMEDIATE");
}

int broker_store_commit(broker_store_t *self)
{
    return self->in_turn ? s_run_cached(self, "RELEASE step") : s_exec(self, "COMMIT");
}

void broker_store_rollback(broker_store_t *self)
{
    if (self->in_turn) {
        s_exec(self, "ROLLBACK TO step");
        s_exec(self, "RELEASE step");
    } else if (!sqlite3_get_autocommit(self->db))
        s_exec(self, "ROLLBACK");
}

int broker_store_turn_begin(broker_store_t *self)
{
    if (s_exec(self, "BEGIN IMMEDIATE"))
        return -1;
    self->in_turn = true;
    return 0;
}

int broker_store_turn_commit(broker_store_t *self)
{
    self->in_turn = false;
    return s_exec(self, "COMMIT");
}

//  Run a prepared write statement to completion and reset it.
int broker_store_sql_step_done(broker_store_t *self, sqlite3_stmt *stmt, const char *operation)
{
    int rc = sqlite3_step(stmt);
    int result = rc == SQLITE_DONE ? 0 : broker_store_sql_fail(self, operation);
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    return result;
}

//  Bind a value as msgpack. The packed buffer is handed to SQLite with free() as destructor.
int broker_store_sql_bind_value(broker_store_t *self, sqlite3_stmt *stmt, int index,
                                const lynx_value_t *value)
{
    unsigned char *data = NULL;
    size_t size = 0;
    if (lynx_msgpack_pack(value, &data, &size)) {
        snprintf(self->error, sizeof self->error, "pack value for %s: out of memory", self->path);
        return -1;
    }
    sqlite3_bind_blob64(stmt, index, data, size, free);
    return 0;
}

//  0 means "not yet": stored as NULL.
void broker_store_sql_bind_time(sqlite3_stmt *stmt, int index, int64_t ms)
{
    if (ms > 0)
        sqlite3_bind_int64(stmt, index, ms);
    else
        sqlite3_bind_null(stmt, index);
}

int broker_store_insert_batch(broker_store_t *self, const broker_batch_rec_t *batch)
{
    sqlite3_stmt *stmt = self->insert_batch;
    sqlite3_bind_text(stmt, 1, batch->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, batch->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 3, batch->creating ? "Creating" : lynx_batch_state_name(batch->status),
                      -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 4, batch->total_jobs);
    sqlite3_bind_int64(stmt, 5, batch->created_at_ms);
    if (broker_store_sql_bind_value(self, stmt, 6, batch->config)) {
        sqlite3_reset(stmt);
        return -1;
    }
    sqlite3_bind_text(stmt, 7, batch->config_hash, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 8, (int64_t)batch->seed);
    if (batch->submitted_by)
        sqlite3_bind_text(stmt, 9, batch->submitted_by, -1, SQLITE_STATIC);
    if (batch->token_name)
        sqlite3_bind_text(stmt, 10, batch->token_name, -1, SQLITE_STATIC);
    return broker_store_sql_step_done(self, stmt, "insert batch into");
}

//  Delete the rows of the batches selected by where (a condition on batches, with ?1 bound to
//  arg when arg is not NULL), results and jobs first. Returns the number of batches.
static int64_t s_delete_batches(broker_store_t *self, const char *where, const char *arg)
{
    const char *tables[] = {"results WHERE batch_id", "jobs WHERE batch_id", "batches WHERE id"};
    bool own_transaction = sqlite3_get_autocommit(self->db);
    if (own_transaction && broker_store_begin(self))
        return -1;
    int64_t deleted = 0;
    for (size_t i = 0; i < 3; i++) {
        char sql[256];
        snprintf(sql, sizeof sql, "DELETE FROM %s IN (SELECT id FROM batches WHERE %s)", tables[i],
                 where);
        sqlite3_stmt *stmt = NULL;
        if (broker_store_sql_prepare(self, &stmt, sql))
            goto failed;
        if (arg)
            sqlite3_bind_text(stmt, 1, arg, -1, SQLITE_STATIC);
        int rc = sqlite3_step(stmt);
        sqlite3_finalize(stmt);
        if (rc != SQLITE_DONE) {
            broker_store_sql_fail(self, "delete from");
            goto failed;
        }
        deleted = sqlite3_changes(self->db);
    }
    if (own_transaction && broker_store_commit(self))
        goto failed;
    return deleted;

failed:
    if (own_transaction)
        broker_store_rollback(self);
    return -1;
}

int broker_store_delete_batch(broker_store_t *self, const char *batch_id)
{
    return s_delete_batches(self, "id = ?1", batch_id) < 0 ? -1 : 0;
}

int64_t broker_store_discard_incomplete(broker_store_t *self)
{
    return s_delete_batches(self, "status = 'Creating'", NULL);
}

int broker_store_insert_job(broker_store_t *self, const broker_job_rec_t *job,
                            const lynx_value_t *parameters)
{
    sqlite3_stmt *stmt = self->insert_job;
    sqlite3_bind_text(stmt, 1, job->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, job->batch_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 3, job->run_id);
    sqlite3_bind_text(stmt, 4, lynx_job_state_name(job->status), -1, SQLITE_STATIC);
    if (broker_store_sql_bind_value(self, stmt, 5, parameters)) {
        sqlite3_reset(stmt);
        return -1;
    }
    sqlite3_bind_int64(stmt, 6, job->retries);
    sqlite3_bind_int64(stmt, 7, job->max_retries);
    sqlite3_bind_int64(stmt, 8, job->timeout_secs);
    sqlite3_bind_int64(stmt, 9, job->attempt);
    sqlite3_bind_int64(stmt, 10, job->created_at_ms);
    return broker_store_sql_step_done(self, stmt, "insert job into");
}

int broker_store_update_job(broker_store_t *self, const broker_job_rec_t *job,
                            const char *error_message)
{
    sqlite3_stmt *stmt = self->update_job;
    sqlite3_bind_text(stmt, 1, job->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, lynx_job_state_name(job->status), -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 3, job->retries);
    sqlite3_bind_int64(stmt, 4, job->attempt);
    broker_store_sql_bind_time(stmt, 5, job->claimed_at_ms);
    broker_store_sql_bind_time(stmt, 6, job->started_at_ms);
    broker_store_sql_bind_time(stmt, 7, job->completed_at_ms);
    if (job->assigned_runner[0])
        sqlite3_bind_text(stmt, 8, job->assigned_runner, -1, SQLITE_STATIC);
    if (job->last_runner[0])
        sqlite3_bind_text(stmt, 10, job->last_runner, -1, SQLITE_STATIC);
    if (error_message)
        sqlite3_bind_text(stmt, 9, error_message, -1, SQLITE_STATIC);
    if (broker_store_sql_step_done(self, stmt, "update job in"))
        return -1;
    if (sqlite3_changes(self->db) != 1) {
        snprintf(self->error, sizeof self->error, "update job %s in %s: no such job", job->id,
                 self->path);
        return -1;
    }
    return 0;
}

int broker_store_update_batch_status(broker_store_t *self, const char *batch_id,
                                     lynx_batch_state_t status)
{
    sqlite3_stmt *stmt = self->update_batch;
    sqlite3_bind_text(stmt, 1, batch_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, lynx_batch_state_name(status), -1, SQLITE_STATIC);
    if (broker_store_sql_step_done(self, stmt, "update batch in"))
        return -1;
    if (sqlite3_changes(self->db) != 1) {
        snprintf(self->error, sizeof self->error, "update batch %.64s in %s: no such batch",
                 batch_id, self->path);
        return -1;
    }
    return 0;
}

int broker_store_put_result(broker_store_t *self, const char *job_id, const char *batch_id,
                            const lynx_value_t *result, broker_exit_t exit)
{
    sqlite3_stmt *stmt = self->put_result;
    sqlite3_bind_text(stmt, 1, job_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, batch_id, -1, SQLITE_STATIC);
    if (broker_store_sql_bind_value(self, stmt, 3, result)) {
        sqlite3_reset(stmt);
        return -1;
    }
    if (exit.code >= 0)
        sqlite3_bind_int64(stmt, 4, exit.code);
    if (exit.signal >= 0)
        sqlite3_bind_int64(stmt, 5, exit.signal);
    return broker_store_sql_step_done(self, stmt, "store result in");
}

void broker_store_sql_copy_text(char *target, size_t size, sqlite3_stmt *stmt, int column)
{
    const unsigned char *text = sqlite3_column_text(stmt, column);
    snprintf(target, size, "%s", text ? (const char *)text : "");
}

//  Fill a job record from a row selected with s_job_columns.
static void s_read_job(sqlite3_stmt *stmt, broker_job_rec_t *job)
{
    memset(job, 0, sizeof *job);
    broker_store_sql_copy_text(job->id, sizeof job->id, stmt, 0);
    broker_store_sql_copy_text(job->batch_id, sizeof job->batch_id, stmt, 1);
    job->run_id = sqlite3_column_int64(stmt, 2);
    int status = lynx_job_state_parse((const char *)sqlite3_column_text(stmt, 3));
    job->status = status < 0 ? LYNX_JOB_PENDING : (lynx_job_state_t)status;
    job->retries = sqlite3_column_int64(stmt, 4);
    job->max_retries = sqlite3_column_int64(stmt, 5);
    job->timeout_secs = sqlite3_column_int64(stmt, 6);
    job->attempt = sqlite3_column_int64(stmt, 7);
    job->created_at_ms = sqlite3_column_int64(stmt, 8);
    job->claimed_at_ms = sqlite3_column_int64(stmt, 9);
    job->started_at_ms = sqlite3_column_int64(stmt, 10);
    job->completed_at_ms = sqlite3_column_int64(stmt, 11);
    broker_store_sql_copy_text(job->assigned_runner, sizeof job->assigned_runner, stmt, 12);
    broker_store_sql_copy_text(job->last_runner, sizeof job->last_runner, stmt, 13);
}

int broker_store_get_job(broker_store_t *self, const char *job_id, broker_job_rec_t *job)
{
    sqlite3_stmt *stmt = self->get_job;
    sqlite3_bind_text(stmt, 1, job_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(stmt);
    int result = 1;
    if (rc == SQLITE_ROW) {
        s_read_job(stmt, job);
        result = 0;
    } else if (rc != SQLITE_DONE)
        result = broker_store_sql_fail(self, "read job from");
    sqlite3_reset(stmt);
    return result;
}

//  Run a one-off query with one text parameter and unpack the blob in column 0 of the first
//  row. NULL when there is no row.
static lynx_value_t *s_query_blob(broker_store_t *self, const char *sql, const char *key)
{
    sqlite3_stmt *stmt = broker_store_sql_cached(self, sql);
    if (!stmt)
        return NULL;
    sqlite3_bind_text(stmt, 1, key, -1, SQLITE_STATIC);
    lynx_value_t *value = NULL;
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW)
        value = lynx_msgpack_unpack(sqlite3_column_blob(stmt, 0),
                                    (size_t)sqlite3_column_bytes(stmt, 0), NULL);
    else if (rc != SQLITE_DONE)
        broker_store_sql_fail(self, "query");
    sqlite3_reset(stmt);
    return value;
}

lynx_value_t *broker_store_job_parameters(broker_store_t *self, const char *job_id)
{
    return s_query_blob(self, "SELECT parameters FROM jobs WHERE id = ?1", job_id);
}

//  A result row as GET /batches/{id}/results shows it: the stored JobResult with its job's
//  run_id, status and attempt beside the documented fields (columns 1-3 after the blob).
static lynx_value_t *s_read_result(sqlite3_stmt *stmt)
{
    lynx_value_t *result = lynx_msgpack_unpack(sqlite3_column_blob(stmt, 0),
                                               (size_t)sqlite3_column_bytes(stmt, 0), NULL);
    if (result &&
        (lynx_value_set_int(result, "run_id", sqlite3_column_int64(stmt, 1)) ||
         lynx_value_set_string(result, "status", (const char *)sqlite3_column_text(stmt, 2)) ||
         lynx_value_set_int(result, "attempt", sqlite3_column_int64(stmt, 3))))
        lynx_value_destroy(&result);
    return result;
}

#define RESULT_COLUMNS "r.result, j.run_id, j.status, j.attempt"

lynx_value_t *broker_store_get_result(broker_store_t *self, const char *job_id)
{
    return s_query_blob(self, "SELECT result FROM results WHERE job_id = ?1", job_id);
}

char *broker_store_job_error(broker_store_t *self, const char *job_id)
{
    sqlite3_stmt *stmt =
        broker_store_sql_cached(self, "SELECT error_message FROM jobs WHERE id = ?1");
    if (!stmt)
        return NULL;
    sqlite3_bind_text(stmt, 1, job_id, -1, SQLITE_STATIC);
    char *message = NULL;
    if (sqlite3_step(stmt) == SQLITE_ROW && sqlite3_column_type(stmt, 0) != SQLITE_NULL)
        message = strdup((const char *)sqlite3_column_text(stmt, 0));
    sqlite3_reset(stmt);
    return message;
}

lynx_value_t *broker_store_batch_results(broker_store_t *self, const char *batch_id)
{
    sqlite3_stmt *stmt = NULL;
    if (broker_store_sql_prepare(self, &stmt,
                                 "SELECT " RESULT_COLUMNS
                                 " FROM results r JOIN jobs j ON j.id = r.job_id"
                                 " WHERE r.batch_id = ?1 ORDER BY j.run_id"))
        return NULL;
    sqlite3_bind_text(stmt, 1, batch_id, -1, SQLITE_STATIC);
    lynx_value_t *results = lynx_value_array();
    int rc;
    while (results && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        lynx_value_t *result = s_read_result(stmt);
        if (result && lynx_value_append(results, &result))
            lynx_value_destroy(&result);
    }
    if (results && rc != SQLITE_DONE) {
        broker_store_sql_fail(self, "read results from");
        lynx_value_destroy(&results);
    }
    sqlite3_finalize(stmt);
    return results;
}

//  Build the batch map from a row of BATCH_COLUMNS.
static lynx_value_t *s_read_batch(sqlite3_stmt *stmt)
{
    lynx_value_t *batch = lynx_value_map();
    lynx_value_set_string(batch, "id", (const char *)sqlite3_column_text(stmt, 0));
    lynx_value_set_string(batch, "name", (const char *)sqlite3_column_text(stmt, 1));
    lynx_value_set_string(batch, "status", (const char *)sqlite3_column_text(stmt, 2));
    lynx_value_set_int(batch, "total_jobs", sqlite3_column_int64(stmt, 3));
    lynx_value_set_int(batch, "created_at_ms", sqlite3_column_int64(stmt, 4));
    lynx_value_t *config = lynx_msgpack_unpack(sqlite3_column_blob(stmt, 5),
                                               (size_t)sqlite3_column_bytes(stmt, 5), NULL);
    if (!config)
        config = lynx_value_null();
    if (lynx_value_set(batch, "config", &config))
        lynx_value_destroy(&config);
    lynx_value_set_string(batch, "config_hash", (const char *)sqlite3_column_text(stmt, 6));
    lynx_value_set_int(batch, "seed", sqlite3_column_int64(stmt, 7));
    lynx_value_set_bool(batch, "cancelled", sqlite3_column_int(stmt, 8) != 0);
    if (sqlite3_column_type(stmt, 9) != SQLITE_NULL)
        lynx_value_set_string(batch, "submitted_by", (const char *)sqlite3_column_text(stmt, 9));
    if (sqlite3_column_type(stmt, 10) != SQLITE_NULL)
        lynx_value_set_string(batch, "token_name", (const char *)sqlite3_column_text(stmt, 10));
    return batch;
}

#define BATCH_COLUMNS                                                                              \
    "id, name, status, total_jobs, created_at_ms, config, config_hash, seed, cancelled,"           \
    " submitted_by, token_name"

lynx_value_t *broker_store_get_batch(broker_store_t *self, const char *batch_id)
{
    sqlite3_stmt *stmt = NULL;
    if (broker_store_sql_prepare(self, &stmt,
                                 "SELECT " BATCH_COLUMNS " FROM batches WHERE id = ?1"))
        return NULL;
    sqlite3_bind_text(stmt, 1, batch_id, -1, SQLITE_STATIC);
    lynx_value_t *batch = NULL;
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW)
        batch = s_read_batch(stmt);
    else if (rc != SQLITE_DONE)
        broker_store_sql_fail(self, "read batch from");
    sqlite3_finalize(stmt);
    return batch;
}

static int s_count_jobs(broker_store_t *self, sqlite3_stmt *count, const char *batch_id,
                        int64_t *counts)
{
    memset(counts, 0, LYNX_JOB_STATE_COUNT * sizeof *counts);
    sqlite3_bind_text(count, 1, batch_id, -1, SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step(count)) == SQLITE_ROW) {
        int state = lynx_job_state_parse((const char *)sqlite3_column_text(count, 0));
        if (state >= 0)
            counts[state] = sqlite3_column_int64(count, 1);
    }
    sqlite3_reset(count);
    return rc == SQLITE_DONE ? 0 : broker_store_sql_fail(self, "count jobs in");
}

int broker_store_foreach_batch(broker_store_t *self, broker_store_batch_fn *fn, void *arg)
{
    sqlite3_stmt *list = NULL, *count = NULL;
    if (broker_store_sql_prepare(
            self, &list, "SELECT " BATCH_COLUMNS " FROM batches ORDER BY created_at_ms, rowid") ||
        broker_store_sql_prepare(
            self, &count,
            "SELECT status, count(*) FROM jobs WHERE batch_id = ?1 GROUP BY status")) {
        sqlite3_finalize(list);
        return -1;
    }
    int result = 0, rc;
    while (result == 0 && (rc = sqlite3_step(list)) == SQLITE_ROW) {
        lynx_value_t *batch = s_read_batch(list);
        int64_t counts[LYNX_JOB_STATE_COUNT];
        result = s_count_jobs(self, count, lynx_value_get_string(batch, "id", ""), counts);
        if (result == 0)
            result = fn(batch, counts, arg);
        lynx_value_destroy(&batch);
    }
    if (result == 0 && rc != SQLITE_DONE)
        result = broker_store_sql_fail(self, "list batches in");
    sqlite3_finalize(list);
    sqlite3_finalize(count);
    return result;
}

int64_t broker_store_foreach_job(broker_store_t *self, const char *batch_id,
                                 lynx_job_state_t status, int64_t after_run_id, int64_t limit,
                                 broker_store_job_fn *fn, void *arg)
{
    return broker_store_list_jobs(self, batch_id, (int)status, after_run_id, limit, fn, arg);
}

int64_t broker_store_list_jobs(broker_store_t *self, const char *batch_id, int status,
                               int64_t after_run_id, int64_t limit, broker_store_job_fn *fn,
                               void *arg)
{
    sqlite3_stmt *stmt = status < 0 ? self->all_jobs : self->pending_jobs;
    sqlite3_bind_text(stmt, 1, batch_id, -1, SQLITE_STATIC);
    if (status >= 0)
        sqlite3_bind_text(stmt, 2, lynx_job_state_name((lynx_job_state_t)status), -1,
                          SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 3, after_run_id);
    sqlite3_bind_int64(stmt, 4, limit > 0 ? limit : -1);
    int64_t visited = 0;
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        broker_job_rec_t job;
        s_read_job(stmt, &job);
        visited++;
        if (fn(&job, arg))
            break;
    }
    int64_t result = rc == SQLITE_ROW || rc == SQLITE_DONE
                         ? visited
                         : broker_store_sql_fail(self, "list jobs in");
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    return result;
}

int broker_store_set_batch_cancelled(broker_store_t *self, const char *batch_id)
{
    sqlite3_stmt *stmt = NULL;
    if (broker_store_sql_prepare(self, &stmt, "UPDATE batches SET cancelled = 1 WHERE id = ?1"))
        return -1;
    sqlite3_bind_text(stmt, 1, batch_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(stmt) == SQLITE_DONE ? 0 : broker_store_sql_fail(self, "cancel batch in");
    sqlite3_finalize(stmt);
    if (rc == 0 && sqlite3_changes(self->db) != 1) {
        snprintf(self->error, sizeof self->error, "cancel batch %.64s in %s: no such batch",
                 batch_id, self->path);
        rc = -1;
    }
    return rc;
}

int64_t broker_store_cancel_pending(broker_store_t *self, const char *batch_id, const char *job_id,
                                    int64_t now_ms)
{
    sqlite3_stmt *stmt = NULL;
    if (broker_store_sql_prepare(
            self, &stmt,
            "UPDATE jobs SET status = 'Cancelled', completed_at_ms = ?3"
            " WHERE batch_id = ?1 AND status = 'Pending' AND (?2 IS NULL OR id = ?2)"))
        return -1;
    sqlite3_bind_text(stmt, 1, batch_id, -1, SQLITE_STATIC);
    if (job_id)
        sqlite3_bind_text(stmt, 2, job_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 3, now_ms);
    int64_t changed = sqlite3_step(stmt) == SQLITE_DONE
                          ? sqlite3_changes64(self->db)
                          : broker_store_sql_fail(self, "cancel jobs in");
    sqlite3_finalize(stmt);
    return changed;
}

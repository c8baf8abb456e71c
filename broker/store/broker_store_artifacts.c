//  broker_store_artifacts: the files of a job's last ended attempt that the broker holds
//  (name, size, sha256, content type, and where under data_dir they are). A job's set is
//  replaced whole, in the transaction that ends the attempt, so what is listed is always one
//  attempt's complete set.
#include "broker_store_internal.h"

#include <string.h>

int broker_store_put_artifacts(broker_store_t *self, const char *job_id, int64_t attempt,
                               const lynx_value_t *artifacts)
{
    sqlite3_stmt *clear = broker_store_sql_cached(self, "DELETE FROM artifacts WHERE job_id = ?1");
    if (!clear)
        return -1;
    sqlite3_bind_text(clear, 1, job_id, -1, SQLITE_STATIC);
    if (broker_store_sql_step_done(self, clear, "replace artifacts in"))
        return -1;
    for (size_t i = 0; i < lynx_value_size(artifacts); i++) {
        const lynx_value_t *file = lynx_value_at(artifacts, i);
        sqlite3_stmt *stmt = broker_store_sql_cached(
            self, "INSERT INTO artifacts (job_id, name, attempt, size, sha256, content_type, path)"
                  " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
        if (!stmt)
            return -1;
        sqlite3_bind_text(stmt, 1, job_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 2, lynx_value_get_string(file, "name", ""), -1, SQLITE_STATIC);
        sqlite3_bind_int64(stmt, 3, attempt);
        sqlite3_bind_int64(stmt, 4, lynx_value_get_int(file, "size", 0));
        sqlite3_bind_text(stmt, 5, lynx_value_get_string(file, "sha256", ""), -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 6, lynx_value_get_string(file, "content_type", ""), -1,
                          SQLITE_STATIC);
        sqlite3_bind_text(stmt, 7, lynx_value_get_string(file, "path", ""), -1, SQLITE_STATIC);
        if (broker_store_sql_step_done(self, stmt, "record artifact in"))
            return -1;
    }
    return 0;
}

int broker_store_forget_batch_artifacts(broker_store_t *self, const char *batch_id)
{
    sqlite3_stmt *stmt = broker_store_sql_cached(
        self, "DELETE FROM artifacts WHERE job_id IN (SELECT id FROM jobs WHERE batch_id = ?1)");
    if (!stmt)
        return -1;
    sqlite3_bind_text(stmt, 1, batch_id, -1, SQLITE_STATIC);
    return broker_store_sql_step_done(self, stmt, "forget artifacts in");
}

//  The rows of the job (every one, or the one named name) as [{name, attempt, size, sha256,
//  content_type, path}].
static lynx_value_t *s_select(broker_store_t *self, const char *job_id, const char *name)
{
    sqlite3_stmt *stmt = broker_store_sql_cached(
        self, name ? "SELECT name, attempt, size, sha256, content_type, path FROM artifacts"
                     " WHERE job_id = ?1 AND name = ?2"
                   : "SELECT name, attempt, size, sha256, content_type, path FROM artifacts"
                     " WHERE job_id = ?1 ORDER BY name");
    lynx_value_t *list = stmt ? lynx_value_array() : NULL;
    if (!list)
        return NULL;
    sqlite3_bind_text(stmt, 1, job_id, -1, SQLITE_STATIC);
    if (name)
        sqlite3_bind_text(stmt, 2, name, -1, SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        lynx_value_t *file = lynx_value_map();
        lynx_value_set_string(file, "name", (const char *)sqlite3_column_text(stmt, 0));
        lynx_value_set_int(file, "attempt", sqlite3_column_int64(stmt, 1));
        lynx_value_set_int(file, "size", sqlite3_column_int64(stmt, 2));
        lynx_value_set_string(file, "sha256", (const char *)sqlite3_column_text(stmt, 3));
        lynx_value_set_string(file, "content_type", (const char *)sqlite3_column_text(stmt, 4));
        lynx_value_set_string(file, "path", (const char *)sqlite3_column_text(stmt, 5));
        if (lynx_value_append_owned(list, file) != 0)
            rc = SQLITE_NOMEM;
    }
    sqlite3_reset(stmt);
    if (rc != SQLITE_DONE) {
        broker_store_sql_fail(self, "list artifacts in");
        lynx_value_destroy(&list);
    }
    return list;
}

lynx_value_t *broker_store_batch_artifact(broker_store_t *self, const char *batch_id,
                                          const char *name, int64_t after_run_id, int64_t limit)
{
    sqlite3_stmt *stmt =
        broker_store_sql_cached(self, "SELECT a.job_id, j.run_id, a.size, a.sha256 FROM artifacts a"
                                      " JOIN jobs j ON j.id = a.job_id"
                                      " WHERE j.batch_id = ?1 AND a.name = ?2 AND j.run_id > ?3"
                                      " ORDER BY j.run_id LIMIT ?4");
    lynx_value_t *list = stmt ? lynx_value_array() : NULL;
    if (!list)
        return NULL;
    sqlite3_bind_text(stmt, 1, batch_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 3, after_run_id);
    sqlite3_bind_int64(stmt, 4, limit);
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        lynx_value_t *file = lynx_value_map();
        lynx_value_set_string(file, "job_id", (const char *)sqlite3_column_text(stmt, 0));
        lynx_value_set_int(file, "run_id", sqlite3_column_int64(stmt, 1));
        lynx_value_set_int(file, "size", sqlite3_column_int64(stmt, 2));
        lynx_value_set_string(file, "sha256", (const char *)sqlite3_column_text(stmt, 3));
        if (lynx_value_append_owned(list, file) != 0)
            rc = SQLITE_NOMEM;
    }
    sqlite3_reset(stmt);
    if (rc != SQLITE_DONE) {
        broker_store_sql_fail(self, "list a batch's artifacts in");
        lynx_value_destroy(&list);
    }
    return list;
}

lynx_value_t *broker_store_job_artifacts(broker_store_t *self, const char *job_id)
{
    return s_select(self, job_id, NULL);
}

lynx_value_t *broker_store_job_artifact(broker_store_t *self, const char *job_id, const char *name)
{
    return s_select(self, job_id, name);
}

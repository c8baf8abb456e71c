//  broker_store_security: API tokens (hashes only) and runner enrollments. Both are written
//  rarely (an admin's command, a runner asking to join) and read by id.
#include "broker_store_internal.h"

#include <string.h>

static void s_bind_optional(sqlite3_stmt *stmt, int index, const char *text)
{
    if (text && *text)
        sqlite3_bind_text(stmt, index, text, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(stmt, index);
}

int broker_store_put_token(broker_store_t *self, const broker_token_rec_t *token)
{
    sqlite3_stmt *stmt = broker_store_sql_cached(
        self,
        "INSERT INTO tokens (id, name, role, hash, created_at_ms) VALUES (?1, ?2, ?3, ?4, ?5)");
    if (!stmt)
        return -1;
    sqlite3_bind_text(stmt, 1, token->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, token->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 3, token->role, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 4, token->hash, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 5, token->created_at_ms);
    return broker_store_sql_step_done(self, stmt, "store token in");
}

static void s_read_token(sqlite3_stmt *stmt, broker_token_rec_t *token)
{
    memset(token, 0, sizeof *token);
    broker_store_sql_copy_text(token->id, sizeof token->id, stmt, 0);
    broker_store_sql_copy_text(token->name, sizeof token->name, stmt, 1);
    broker_store_sql_copy_text(token->role, sizeof token->role, stmt, 2);
    broker_store_sql_copy_text(token->hash, sizeof token->hash, stmt, 3);
    token->created_at_ms = sqlite3_column_int64(stmt, 4);
    token->last_used_at_ms = sqlite3_column_int64(stmt, 5);
    token->revoked_at_ms = sqlite3_column_int64(stmt, 6);
}

#define S_TOKEN_COLUMNS "id, name, role, hash, created_at_ms, last_used_at_ms, revoked_at_ms"

int broker_store_get_token(broker_store_t *self, const char *id, broker_token_rec_t *token)
{
    sqlite3_stmt *stmt =
        broker_store_sql_cached(self, "SELECT " S_TOKEN_COLUMNS " FROM tokens WHERE id = ?1");
    if (!stmt)
        return -1;
    sqlite3_bind_text(stmt, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(stmt), result = 1;
    if (rc == SQLITE_ROW) {
        s_read_token(stmt, token);
        result = 0;
    } else if (rc != SQLITE_DONE)
        result = broker_store_sql_fail(self, "read token from");
    sqlite3_reset(stmt);
    return result;
}

int64_t broker_store_count_live_tokens(broker_store_t *self, const char *name)
{
    sqlite3_stmt *stmt = broker_store_sql_cached(
        self, "SELECT count(*) FROM tokens WHERE name = ?1 AND revoked_at_ms IS NULL");
    if (!stmt)
        return -1;
    sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
    int64_t count = -1;
    if (sqlite3_step(stmt) == SQLITE_ROW)
        count = sqlite3_column_int64(stmt, 0);
    else
        broker_store_sql_fail(self, "count tokens in");
    sqlite3_reset(stmt);
    return count;
}

int broker_store_foreach_token(broker_store_t *self, broker_store_token_fn *fn, void *arg)
{
    sqlite3_stmt *stmt = broker_store_sql_cached(self, "SELECT " S_TOKEN_COLUMNS
                                                       " FROM tokens ORDER BY created_at_ms, id");
    if (!stmt)
        return -1;
    int rc, result = 0;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        broker_token_rec_t token;
        s_read_token(stmt, &token);
        if (fn(&token, arg))
            break;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        result = broker_store_sql_fail(self, "list tokens in");
    sqlite3_reset(stmt);
    return result;
}

int64_t broker_store_revoke_tokens(broker_store_t *self, const char *name, int64_t now_ms)
{
    sqlite3_stmt *stmt = broker_store_sql_cached(
        self, "UPDATE tokens SET revoked_at_ms = ?2 WHERE name = ?1 AND revoked_at_ms IS NULL");
    if (!stmt)
        return -1;
    sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 2, now_ms);
    if (broker_store_sql_step_done(self, stmt, "revoke token in"))
        return -1;
    return sqlite3_changes(self->db);
}

int broker_store_touch_token(broker_store_t *self, const char *id, int64_t now_ms)
{
    sqlite3_stmt *stmt =
        broker_store_sql_cached(self, "UPDATE tokens SET last_used_at_ms = ?2 WHERE id = ?1");
    if (!stmt)
        return -1;
    sqlite3_bind_text(stmt, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 2, now_ms);
    return broker_store_sql_step_done(self, stmt, "record token use in");
}

int broker_store_put_enrollment(broker_store_t *self, const broker_enrollment_rec_t *enrollment)
{
    sqlite3_stmt *stmt = broker_store_sql_cached(
        self, "INSERT OR REPLACE INTO enrollments (id, runner_id, public_key, host, status,"
              " token_name, created_at_ms, decided_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
    if (!stmt)
        return -1;
    sqlite3_bind_text(stmt, 1, enrollment->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, enrollment->runner_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 3, enrollment->public_key, -1, SQLITE_STATIC);
    s_bind_optional(stmt, 4, enrollment->host);
    sqlite3_bind_text(stmt, 5, enrollment->status, -1, SQLITE_STATIC);
    s_bind_optional(stmt, 6, enrollment->token_name);
    sqlite3_bind_int64(stmt, 7, enrollment->created_at_ms);
    broker_store_sql_bind_time(stmt, 8, enrollment->decided_at_ms);
    return broker_store_sql_step_done(self, stmt, "store enrollment in");
}

#define S_ENROLLMENT_COLUMNS                                                                       \
    "id, runner_id, public_key, host, status, token_name, created_at_ms, decided_at_ms"

static void s_read_enrollment(sqlite3_stmt *stmt, broker_enrollment_rec_t *enrollment)
{
    memset(enrollment, 0, sizeof *enrollment);
    broker_store_sql_copy_text(enrollment->id, sizeof enrollment->id, stmt, 0);
    broker_store_sql_copy_text(enrollment->runner_id, sizeof enrollment->runner_id, stmt, 1);
    broker_store_sql_copy_text(enrollment->public_key, sizeof enrollment->public_key, stmt, 2);
    broker_store_sql_copy_text(enrollment->host, sizeof enrollment->host, stmt, 3);
    broker_store_sql_copy_text(enrollment->status, sizeof enrollment->status, stmt, 4);
    broker_store_sql_copy_text(enrollment->token_name, sizeof enrollment->token_name, stmt, 5);
    enrollment->created_at_ms = sqlite3_column_int64(stmt, 6);
    enrollment->decided_at_ms = sqlite3_column_int64(stmt, 7);
}

int broker_store_get_enrollment(broker_store_t *self, const char *id,
                                broker_enrollment_rec_t *enrollment)
{
    sqlite3_stmt *stmt = broker_store_sql_cached(self, "SELECT " S_ENROLLMENT_COLUMNS
                                                       " FROM enrollments WHERE id = ?1");
    if (!stmt)
        return -1;
    sqlite3_bind_text(stmt, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(stmt), result = 1;
    if (rc == SQLITE_ROW) {
        s_read_enrollment(stmt, enrollment);
        result = 0;
    } else if (rc != SQLITE_DONE)
        result = broker_store_sql_fail(self, "read enrollment from");
    sqlite3_reset(stmt);
    return result;
}

int broker_store_foreach_enrollment(broker_store_t *self, const char *status,
                                    broker_store_enrollment_fn *fn, void *arg)
{
    sqlite3_stmt *stmt = broker_store_sql_cached(
        self, "SELECT " S_ENROLLMENT_COLUMNS " FROM enrollments WHERE ?1 IS NULL OR status = ?1"
              " ORDER BY created_at_ms DESC, id DESC");
    if (!stmt)
        return -1;
    s_bind_optional(stmt, 1, status);
    int rc, result = 0;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        broker_enrollment_rec_t enrollment;
        s_read_enrollment(stmt, &enrollment);
        if (fn(&enrollment, arg))
            break;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        result = broker_store_sql_fail(self, "list enrollments in");
    sqlite3_reset(stmt);
    return result;
}

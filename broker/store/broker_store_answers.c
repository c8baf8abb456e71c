//  broker_store_answers: the first answer to each request sent with an Idempotency-Key, so a
//  client that retries (after a 503, a lost connection) gets that answer instead of a second
//  batch or cancel. Kept 24 hours.
#include "broker_store_internal.h"

#include <string.h>

#include "lynx_msgpack.h"

int broker_store_put_answer(broker_store_t *self, const broker_answer_t *answer)
{
    sqlite3_stmt *stmt = broker_store_sql_cached(
        self, "INSERT OR REPLACE INTO answers (key, op, request_hash, answer, is_error,"
              " created_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
    if (!stmt)
        return -1;
    sqlite3_bind_text(stmt, 1, answer->key, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, answer->op, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 3, answer->request_hash, -1, SQLITE_STATIC);
    if (broker_store_sql_bind_value(self, stmt, 4, answer->answer)) {
        sqlite3_reset(stmt);
        sqlite3_clear_bindings(stmt);
        return -1;
    }
    sqlite3_bind_int(stmt, 5, answer->is_error);
    sqlite3_bind_int64(stmt, 6, answer->created_at_ms);
    return broker_store_sql_step_done(self, stmt, "record answer in");
}

int broker_store_get_answer(broker_store_t *self, const char *key, broker_answer_t *answer)
{
    sqlite3_stmt *stmt = broker_store_sql_cached(
        self, "SELECT op, request_hash, answer, is_error, created_at_ms FROM answers"
              " WHERE key = ?1");
    if (!stmt)
        return -1;
    sqlite3_bind_text(stmt, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(stmt), result = 1;
    if (rc == SQLITE_ROW) {
        memset(answer, 0, sizeof *answer);
        broker_store_sql_copy_text(answer->op_buffer, sizeof answer->op_buffer, stmt, 0);
        broker_store_sql_copy_text(answer->hash_buffer, sizeof answer->hash_buffer, stmt, 1);
        answer->op = answer->op_buffer;
        answer->request_hash = answer->hash_buffer;
        answer->owned = lynx_msgpack_unpack(sqlite3_column_blob(stmt, 2),
                                            (size_t)sqlite3_column_bytes(stmt, 2), NULL);
        answer->answer = answer->owned;
        answer->is_error = sqlite3_column_int(stmt, 3) != 0;
        answer->created_at_ms = sqlite3_column_int64(stmt, 4);
        result = answer->owned ? 0 : -1;
    } else if (rc != SQLITE_DONE)
        result = broker_store_sql_fail(self, "read answer from");
    sqlite3_reset(stmt);
    return result;
}

int broker_store_expire_answers(broker_store_t *self, int64_t before_ms)
{
    sqlite3_stmt *stmt =
        broker_store_sql_cached(self, "DELETE FROM answers WHERE created_at_ms < ?1");
    if (!stmt)
        return -1;
    sqlite3_bind_int64(stmt, 1, before_ms);
    return broker_store_sql_step_done(self, stmt, "expire answers in");
}

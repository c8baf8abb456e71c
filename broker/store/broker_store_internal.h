//  broker_store_internal: what the store's sources share (broker_store.c: schema, batches,
//  jobs and results; broker_store_history.c: attempt history and runner records). Only those
//  files include this header; everyone else uses broker_store.h.
#ifndef BROKER_STORE_INTERNAL_H_INCLUDED
#define BROKER_STORE_INTERNAL_H_INCLUDED

#include <sqlite3.h>

#include "broker_store.h"

#define BROKER_STORE_CACHE_SIZE 64

struct _broker_store_t {
    sqlite3 *db;
    char path[1024];
    char error[2048];
    bool in_turn; //  a group commit is open: begin/commit nest as savepoints
    //  Statements for queries on hot paths, prepared on first use (keyed by the SQL text's
    //  address: the callers pass string literals).
    struct {
        const char *sql;
        sqlite3_stmt *stmt;
    } cache[BROKER_STORE_CACHE_SIZE];
    sqlite3_stmt *insert_batch;
    sqlite3_stmt *insert_job;
    sqlite3_stmt *update_job;
    sqlite3_stmt *update_batch;
    sqlite3_stmt *put_result;
    sqlite3_stmt *get_job;
    sqlite3_stmt *pending_jobs;
    sqlite3_stmt *all_jobs;
};

//  Record SQLite's reason with the operation; always returns -1.
int broker_store_sql_fail(broker_store_t *self, const char *operation);
//  Prepare a statement kept until destroy. 0 or -1 (error recorded).
int broker_store_sql_prepare(broker_store_t *self, sqlite3_stmt **stmt, const char *sql);
//  A prepared statement for sql (a string literal: cached by its address), kept for the
//  store's lifetime; reset it after use, never finalize it. NULL (error recorded) on failure.
sqlite3_stmt *broker_store_sql_cached(broker_store_t *self, const char *sql);
//  Run a prepared write statement to completion, reset it and clear its bindings. 0 or -1.
int broker_store_sql_step_done(broker_store_t *self, sqlite3_stmt *stmt, const char *operation);
//  Bind a value as msgpack. 0, or -1 out of memory (error recorded).
int broker_store_sql_bind_value(broker_store_t *self, sqlite3_stmt *stmt, int index,
                                const lynx_value_t *value);
//  A time in ms; 0 ("not yet") is bound as NULL.
void broker_store_sql_bind_time(sqlite3_stmt *stmt, int index, int64_t ms);
//  Copy a text column into target (size bytes), "" for NULL.
void broker_store_sql_copy_text(char *target, size_t size, sqlite3_stmt *stmt, int column);

#endif

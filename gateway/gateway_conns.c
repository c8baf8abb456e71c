//  gateway_conns: connections in three lists. READING and LINGERING are queues in deadline
//  order (every entry waits the same length, so appending at start keeps them sorted); OTHER
//  holds connections without a deadline (an answer is being prepared or sent, or the
//  connection was handed out to be closed).
#include "gateway_conns.h"

#include <assert.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

typedef enum { S_READING, S_LINGERING, S_OTHER, S_LISTS } s_list_id_t;

typedef struct {
    gateway_conn_t *head, *tail;
    size_t size;
} s_list_t;

struct _gateway_conn_t {
    gateway_conn_t *prev, *next;
    s_list_id_t list;
    int64_t since_ms; //  when its wait started (READING, LINGERING)
    int fd;
    bool closing; //  handed out by gateway_conns_overdue
    bool lingered;
    void *user;
    char client[64];
};

struct _gateway_conns_t {
    int64_t request_deadline_ms;
    int64_t linger_ms;
    s_list_t lists[S_LISTS];
};

static void s_unlink(gateway_conns_t *self, gateway_conn_t *conn)
{
    s_list_t *list = &self->lists[conn->list];
    if (conn->prev)
        conn->prev->next = conn->next;
    else
        list->head = conn->next;
    if (conn->next)
        conn->next->prev = conn->prev;
    else
        list->tail = conn->prev;
    conn->prev = conn->next = NULL;
    list->size--;
}

static void s_append(gateway_conns_t *self, gateway_conn_t *conn, s_list_id_t id, int64_t now_ms)
{
    s_list_t *list = &self->lists[id];
    conn->list = id;
    conn->since_ms = now_ms;
    conn->prev = list->tail;
    conn->next = NULL;
    if (list->tail)
        list->tail->next = conn;
    else
        list->head = conn;
    list->tail = conn;
    list->size++;
}

static void s_move(gateway_conns_t *self, gateway_conn_t *conn, s_list_id_t id, int64_t now_ms)
{
    s_unlink(self, conn);
    s_append(self, conn, id, now_ms);
}

gateway_conns_t *gateway_conns_new(int64_t request_deadline_ms, int64_t linger_ms)
{
    assert(request_deadline_ms >= 0 && linger_ms >= 0);
    gateway_conns_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->request_deadline_ms = request_deadline_ms;
    self->linger_ms = linger_ms;
    return self;
}

void gateway_conns_destroy(gateway_conns_t **self_p)
{
    gateway_conns_t *self = *self_p;
    if (!self)
        return;
    for (int id = 0; id < S_LISTS; id++)
        while (self->lists[id].head) {
            gateway_conn_t *conn = self->lists[id].head;
            gateway_conns_remove(self, &conn);
        }
    free(self);
    *self_p = NULL;
}

gateway_conn_t *gateway_conns_add(gateway_conns_t *self, int fd, const char *client, int64_t now_ms)
{
    assert(self);
    gateway_conn_t *conn = calloc(1, sizeof *conn);
    if (!conn)
        return NULL;
    conn->fd = fd;
    snprintf(conn->client, sizeof conn->client, "%s", client ? client : "?");
    s_append(self, conn, self->request_deadline_ms > 0 ? S_READING : S_OTHER, now_ms);
    return conn;
}

void gateway_conns_remove(gateway_conns_t *self, gateway_conn_t **conn_p)
{
    assert(self);
    gateway_conn_t *conn = *conn_p;
    if (!conn)
        return;
    s_unlink(self, conn);
    free(conn);
    *conn_p = NULL;
}

void gateway_conns_start(gateway_conns_t *self, gateway_conn_t *conn, int64_t now_ms)
{
    assert(self && conn);
    if (conn->closing || conn->list == S_LINGERING || self->request_deadline_ms == 0)
        return;
    s_move(self, conn, S_READING, now_ms);
}

void gateway_conns_stop(gateway_conns_t *self, gateway_conn_t *conn)
{
    assert(self && conn);
    if (conn->list == S_READING)
        s_move(self, conn, S_OTHER, 0);
}

void gateway_conns_linger(gateway_conns_t *self, gateway_conn_t *conn, int64_t now_ms)
{
    assert(self && conn);
    if (!conn->closing)
        s_move(self, conn, S_LINGERING, now_ms);
}

//  The first deadline of one queue, or INT64_MAX when it is empty.
static int64_t s_first_deadline(const gateway_conns_t *self, s_list_id_t id)
{
    const gateway_conn_t *head = self->lists[id].head;
    if (!head)
        return INT64_MAX;
    return head->since_ms + (id == S_READING ? self->request_deadline_ms : self->linger_ms);
}

long gateway_conns_timeout_ms(const gateway_conns_t *self, int64_t now_ms)
{
    assert(self);
    int64_t reading = s_first_deadline(self, S_READING);
    int64_t lingering = s_first_deadline(self, S_LINGERING);
    int64_t first = reading < lingering ? reading : lingering;
    if (first == INT64_MAX)
        return -1;
    if (first <= now_ms)
        return 0;
    return first - now_ms > LONG_MAX ? LONG_MAX : (long)(first - now_ms);
}

gateway_conn_t *gateway_conns_overdue(gateway_conns_t *self, int64_t now_ms)
{
    assert(self);
    const s_list_id_t waits[] = {S_LINGERING, S_READING};
    for (size_t i = 0; i < sizeof waits / sizeof waits[0]; i++) {
        if (s_first_deadline(self, waits[i]) > now_ms)
            continue;
        gateway_conn_t *conn = self->lists[waits[i]].head;
        conn->lingered = waits[i] == S_LINGERING;
        conn->closing = true;
        s_move(self, conn, S_OTHER, 0);
        return conn;
    }
    return NULL;
}

size_t gateway_conns_size(const gateway_conns_t *self)
{
    assert(self);
    return self->lists[S_READING].size + self->lists[S_LINGERING].size + self->lists[S_OTHER].size;
}

size_t gateway_conns_reading(const gateway_conns_t *self)
{
    assert(self);
    return self->lists[S_READING].size;
}

int gateway_conn_fd(const gateway_conn_t *conn)
{
    assert(conn);
    return conn->fd;
}

const char *gateway_conn_client(const gateway_conn_t *conn)
{
    assert(conn);
    return conn->client;
}

bool gateway_conn_lingered(const gateway_conn_t *conn)
{
    assert(conn);
    return conn->lingered;
}

void *gateway_conn_user(const gateway_conn_t *conn)
{
    assert(conn);
    return conn->user;
}

void gateway_conn_set_user(gateway_conn_t *conn, void *user)
{
    assert(conn);
    conn->user = user;
}

bool gateway_log_limit_pass(gateway_log_limit_t *self, int64_t now_ms, int64_t interval_ms,
                            unsigned int burst, unsigned long *held_out)
{
    assert(self);
    if (self->window_ms == 0 || now_ms - self->window_ms >= interval_ms) {
        self->window_ms = now_ms ? now_ms : 1;
        self->passed = 0;
    }
    if (self->passed >= burst) {
        self->held++;
        return false;
    }
    self->passed++;
    if (held_out)
        *held_out = self->held;
    self->held = 0;
    return true;
}

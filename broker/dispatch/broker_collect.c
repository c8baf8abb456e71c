//  broker_collect: FINISHED, then the attempt's files, then the job's end (see the header).
#include "broker_collect.h"

#include <inttypes.h>

#include "broker_outbox.h"

static void s_send_fetches(broker_core_t *core, broker_runner_t *runner, lynx_value_t *fetches)
{
    for (size_t i = 0; i < lynx_value_size(fetches); i++) {
        lynx_msg_t *fetch = lynx_msg_new(LYNX_MSG_FETCH);
        lynx_value_t *body = lynx_value_dup(lynx_value_at(fetches, i));
        if (fetch && body && lynx_msg_set_body(fetch, &body) == 0)
            broker_sched_send(core, runner, &fetch);
        lynx_value_destroy(&body);
        lynx_msg_destroy(&fetch);
    }
}

//  The result as the job ends with it: the runner's, plus the files the broker holds (with
//  the URLs to fetch them) and what was skipped.
static lynx_value_t *s_result(const broker_upload_view_t *view)
{
    lynx_value_t *result = lynx_value_dup(lynx_value_get(view->finished, "result"));
    if (lynx_value_type(result) != LYNX_VALUE_MAP) {
        lynx_value_destroy(&result);
        result = lynx_value_map();
    }
    lynx_value_t *artifacts = lynx_value_array();
    for (size_t i = 0; i < lynx_value_size(view->files); i++) {
        const lynx_value_t *file = lynx_value_at(view->files, i);
        lynx_value_t *entry = lynx_value_map();
        const char *name = lynx_value_get_string(file, "name", "");
        lynx_value_set_string(entry, "name", name);
        lynx_value_set_int(entry, "size", lynx_value_get_int(file, "size", 0));
        lynx_value_set_string(entry, "sha256", lynx_value_get_string(file, "sha256", ""));
        lynx_value_set_string(entry, "content_type",
                              lynx_value_get_string(file, "content_type", ""));
        char url[4096];
        broker_artifacts_url(url, sizeof url, view->job_id, name);
        lynx_value_set_string(entry, "url", url);
        lynx_value_append_owned(artifacts, entry);
    }
    lynx_value_set_owned(result, "artifacts", artifacts);
    lynx_value_set_owned(result, "artifacts_skipped", lynx_value_dup(view->skipped));
    return result;
}

//  Every file is in (or there were none): record them with the attempt's end.
static void s_end(broker_core_t *core, broker_runner_t *runner, zframe_t *routing_id,
                  broker_inflight_t *inflight, const broker_upload_view_t *view)
{
    lynx_value_t *result = s_result(view);
    int rc = result
                 ? broker_store_put_artifacts(core->store, view->job_id, view->attempt, view->files)
                 : -1;
    if (rc == 0)
        rc = broker_sched_finished(core, runner, routing_id, inflight, view->finished, result);
    else
        zsys_error("broker: cannot record artifacts job=%s: %s", view->job_id,
                   broker_store_error(core->store));
    if (rc == 0)
        broker_artifacts_done(core->artifacts, view->job_id, view->attempt);
    lynx_value_destroy(&result);
}

void broker_collect_finished(broker_core_t *core, broker_runner_t *runner, zframe_t *routing_id,
                             const lynx_value_t *body)
{
    if (core->storage_full) //  no ACK: the runner keeps the result and sends it again
        return;
    broker_inflight_t *inflight = broker_sched_current_attempt(core, runner, body, "FINISHED");
    if (!inflight) { //  stale: the runner may forget it
        broker_sched_ack(core, routing_id, lynx_value_get_string(body, "job_id", ""),
                         lynx_value_get_int(body, "attempt", -1));
        return;
    }
    lynx_value_t *fetches = lynx_value_array();
    broker_upload_view_t view;
    lynx_err_t err;
    lynx_err_clear(&err);
    broker_upload_rc_t rc =
        fetches ? broker_artifacts_begin(core->artifacts, runner->id, inflight->rec.batch_id, body,
                                         inflight->batch->sections[BROKER_SECTION_ARTIFACTS],
                                         fetches, &view, &err)
                : BROKER_UPLOAD_ERROR;
    if (rc == BROKER_UPLOAD_NONE)
        s_end(core, runner, routing_id, inflight, &view);
    else if (rc == BROKER_UPLOAD_STARTED)
        s_send_fetches(core, runner, fetches);
    else if (rc == BROKER_UPLOAD_ERROR) //  no ACK: the runner sends it again later
        zsys_error("broker: cannot take the files of job=%s attempt=%" PRId64 ": %s",
                   inflight->rec.id, inflight->rec.attempt, err.message);
    lynx_value_destroy(&fetches);
}

void broker_collect_chunk(broker_core_t *core, broker_runner_t *runner, zframe_t *routing_id,
                          const lynx_value_t *body)
{
    lynx_value_t *fetches = lynx_value_array();
    broker_upload_view_t view;
    lynx_err_t err;
    lynx_err_clear(&err);
    broker_chunk_rc_t rc =
        fetches ? broker_artifacts_chunk(core->artifacts, runner->id, body, fetches, &view, &err)
                : BROKER_CHUNK_FAILED;
    if (rc == BROKER_CHUNK_MORE)
        s_send_fetches(core, runner, fetches);
    else if (rc == BROKER_CHUNK_DONE) {
        broker_inflight_t *inflight =
            broker_sched_current_attempt(core, runner, view.finished, "FINISHED");
        if (inflight)
            s_end(core, runner, routing_id, inflight, &view);
        else { //  ended meanwhile (cancelled, timed out): nothing to record
            broker_sched_ack(core, routing_id, view.job_id, view.attempt);
            broker_artifacts_done(core->artifacts, view.job_id, view.attempt);
        }
    } else
        broker_send_error(core->runner_socket, routing_id, 0, &err, NULL);
    lynx_value_destroy(&fetches);
}

void broker_collect_tick(broker_core_t *core, int64_t now_mono_ms)
{
    lynx_value_t *stalled = lynx_value_array();
    if (stalled)
        broker_artifacts_expire(core->artifacts, now_mono_ms, stalled);
    for (size_t i = 0; i < lynx_value_size(stalled); i++) {
        const lynx_value_t *entry = lynx_value_at(stalled, i);
        broker_runner_t *runner =
            broker_runners_lookup(core->runners, lynx_value_get_string(entry, "runner_id", ""));
        if (!runner || !runner->routing_id)
            continue;
        lynx_err_t err;
        lynx_err_set(&err, LYNX_EUNAVAILABLE, "job_id", "job %s attempt %" PRId64 ": %s",
                     lynx_value_get_string(entry, "job_id", ""),
                     lynx_value_get_int(entry, "attempt", 0),
                     lynx_value_get_string(entry, "reason", ""));
        broker_send_error(core->runner_socket, runner->routing_id, 0, &err, NULL);
    }
    lynx_value_destroy(&stalled);
}

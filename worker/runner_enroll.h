//  runner_enroll: `lynx-runner --enroll URL --token T`: ask the gateway to enroll this
//  runner's public key (POST /runners/enrollments) and learn the broker's public key from the
//  answer. An admin then approves it (POST /runners/enrollments/{id}/approve); until then the
//  broker refuses the runner's handshakes and libzmq keeps retrying.
#ifndef RUNNER_ENROLL_H_INCLUDED
#define RUNNER_ENROLL_H_INCLUDED

#include <stddef.h>

#include "lynx_err.h"

typedef struct {
    char id[64];                //  the enrollment's id (enr-...)
    char status[16];            //  pending or approved
    char broker_public_key[48]; //  Z85
} runner_enrollment_t;

//  POST {url}/runners/enrollments {runner_id, public_key, host} with the token; cacert (or
//  NULL) verifies an https URL. 0 with *enrollment filled; -1 with err naming the URL and the
//  gateway's error (401 bad token, 403 role, 409 id enrolled with another key).
int runner_enroll(const char *url, const char *token, const char *cacert, const char *runner_id,
                  const char *public_key, const char *host, runner_enrollment_t *enrollment,
                  lynx_err_t *err);

#endif

//  value_map_bench: time to build, look up, msgpack-decode and JSON-parse maps of N keys. Maps
//  with many keys are what a hostile client sends to stall the broker, so every phase must stay
//  close to linear in N.
//
//      value_map_bench [N ...]      (default 40000 200000)
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lynx_json.h"
#include "lynx_msg.h"
#include "lynx_value.h"

static double s_now_secs(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec * 1e-9;
}

static void s_key(char *buffer, size_t size, size_t index)
{
    snprintf(buffer, size, "k%zu", index);
}

//  A HEARTBEAT frame whose body holds runner_id and n extra keys, packed by hand so building
//  the input does not itself go through lynx_value maps.
static unsigned char *s_heartbeat_frame(size_t n, size_t *size_p)
{
    unsigned char *frame = malloc(64 + n * 16);
    if (!frame)
        return NULL;
    size_t at = 0;
    frame[at++] = 0x94; //  array of 4
    frame[at++] = 0xa4;
    memcpy(frame + at, "LYNX", 4);
    at += 4;
    frame[at++] = 0x01;
    frame[at++] = 0xa9;
    memcpy(frame + at, "HEARTBEAT", 9);
    at += 9;
    uint32_t entries = (uint32_t)n + 1;
    frame[at++] = 0xdf; //  map 32
    for (int shift = 24; shift >= 0; shift -= 8)
        frame[at++] = (unsigned char)(entries >> shift);
    frame[at++] = 0xa9;
    memcpy(frame + at, "runner_id", 9);
    at += 9;
    frame[at++] = 0xa2;
    memcpy(frame + at, "r1", 2);
    at += 2;
    for (size_t i = 0; i < n; i++) {
        char key[32];
        s_key(key, sizeof key, i);
        size_t len = strlen(key);
        frame[at++] = (unsigned char)(0xa0 | len);
        memcpy(frame + at, key, len);
        at += len;
        frame[at++] = (unsigned char)(i & 0x7f); //  positive fixint
    }
    *size_p = at;
    return frame;
}

static char *s_json_object(size_t n, size_t *len_p)
{
    char *text = malloc(16 + n * 24);
    if (!text)
        return NULL;
    size_t at = 0;
    text[at++] = '{';
    for (size_t i = 0; i < n; i++)
        at += (size_t)sprintf(text + at, "%s\"k%zu\":%zu", i ? "," : "", i, i);
    text[at++] = '}';
    *len_p = at;
    return text;
}

static int s_run(size_t n)
{
    char key[32];
    double start = s_now_secs();
    lynx_value_t *map = lynx_value_map();
    for (size_t i = 0; i < n; i++) {
        s_key(key, sizeof key, i);
        if (lynx_value_set_int(map, key, (int64_t)i))
            return -1;
    }
    double built = s_now_secs();
    for (size_t i = 0; i < n; i++) {
        s_key(key, sizeof key, i);
        if (lynx_value_get_int(map, key, -1) != (int64_t)i)
            return -1;
    }
    double looked_up = s_now_secs();
    lynx_value_destroy(&map);

    size_t size = 0;
    unsigned char *frame = s_heartbeat_frame(n, &size);
    lynx_err_t err;
    double decode_start = s_now_secs();
    lynx_msg_t *msg = frame ? lynx_msg_decode(frame, size, &err) : NULL;
    double decoded = s_now_secs();
    if (!msg || lynx_value_size(lynx_msg_body(msg)) != n + 1) {
        fprintf(stderr, "value_map_bench: decode failed: %s\n", msg ? "wrong size" : err.message);
        return -1;
    }
    lynx_msg_destroy(&msg);
    free(frame);

    size_t len = 0;
    char *text = s_json_object(n, &len);
    double parse_start = s_now_secs();
    lynx_value_t *parsed = text ? lynx_json_parse(text, len, &err) : NULL;
    double parsed_at = s_now_secs();
    if (lynx_value_size(parsed) != n)
        return -1;
    lynx_value_destroy(&parsed);
    free(text);

    printf("keys=%zu set=%.3fs get=%.3fs msg_decode=%.3fs (%zu bytes) json_parse=%.3fs (%zu "
           "bytes)\n",
           n, built - start, looked_up - built, decoded - decode_start, size,
           parsed_at - parse_start, len);
    return 0;
}

int main(int argc, char **argv)
{
    size_t defaults[] = {40000, 200000};
    size_t count = argc > 1 ? (size_t)argc - 1 : sizeof defaults / sizeof defaults[0];
    for (size_t i = 0; i < count; i++) {
        size_t n = argc > 1 ? strtoull(argv[i + 1], NULL, 10) : defaults[i];
        if (s_run(n)) {
            fprintf(stderr, "value_map_bench: failed for %zu keys\n", n);
            return 1;
        }
        fflush(stdout);
    }
    return 0;
}

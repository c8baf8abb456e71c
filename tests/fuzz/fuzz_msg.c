//  fuzz_msg: bytes of one ZeroMQ frame -> lynx_msg_decode. What decodes must encode, and the
//  encoded frame must decode again and re-encode to the same bytes: the codec never accepts
//  what it would not write, nor writes what it would not accept. (Bytes, not lynx_value_equal:
//  a NaN is not equal to itself.)
#include <assert.h>
#include <stdint.h>
#include <string.h>

#include "lynx_msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lynx_err_t err;
    lynx_err_clear(&err);
    lynx_msg_t *msg = lynx_msg_decode(data, size, &err);
    if (!msg) {
        assert(err.code == LYNX_EPROTOCOL);
        return 0;
    }
    zframe_t *frame = lynx_msg_encode(msg, &err);
    assert(frame);
    lynx_msg_t *copy = lynx_msg_decode(zframe_data(frame), zframe_size(frame), &err);
    assert(copy);
    assert(lynx_msg_id(copy) == lynx_msg_id(msg));
    zframe_t *again = lynx_msg_encode(copy, &err);
    assert(again);
    assert(zframe_size(again) == zframe_size(frame));
    assert(memcmp(zframe_data(again), zframe_data(frame), zframe_size(frame)) == 0);
    zframe_destroy(&again);
    zframe_destroy(&frame);
    lynx_msg_destroy(&copy);
    lynx_msg_destroy(&msg);
    return 0;
}

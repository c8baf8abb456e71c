//  broker_ids: version 7 UUIDs that sort in the order they were issued, also past 4096 ids in
//  one millisecond, with the RFC 9562 version and variant bits.
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "broker_ids.h"

#define S_COUNT 20000

static void test_ids_are_ordered_unique_and_v7(void **state)
{
    (void)state;
    broker_ids_t *ids = broker_ids_new(42);
    assert_non_null(ids);
    static char issued[S_COUNT][BROKER_ID_SIZE];
    for (int i = 0; i < S_COUNT; i++) { //  far more than 4096 per millisecond
        broker_ids_next(ids, issued[i]);
        assert_int_equal(strlen(issued[i]), 36);
        assert_int_equal(issued[i][14], '7');               //  version
        assert_true(strchr("89ab", issued[i][19]) != NULL); //  variant 10xx
        if (i > 0 && strcmp(issued[i - 1], issued[i]) >= 0)
            fail_msg("id %d (%s) does not sort after %s", i, issued[i], issued[i - 1]);
    }
    broker_ids_destroy(&ids);
    assert_null(ids);
    broker_ids_destroy(&ids);
}

static void test_seeds_give_different_random_parts(void **state)
{
    (void)state;
    broker_ids_t *a = broker_ids_new(1), *b = broker_ids_new(2);
    char x[BROKER_ID_SIZE], y[BROKER_ID_SIZE];
    broker_ids_next(a, x);
    broker_ids_next(b, y);
    assert_string_not_equal(x + 19, y + 19); //  the random tail differs
    broker_ids_destroy(&a);
    broker_ids_destroy(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ids_are_ordered_unique_and_v7),
        cmocka_unit_test(test_seeds_give_different_random_parts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

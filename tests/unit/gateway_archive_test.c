//  gateway_archive: tar headers as every tar reads them: ustar fields and checksum, and a pax
//  record (whose length counts its own digits) for a path longer than 100 bytes.
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway_archive.h"

static unsigned s_checksum(const char *block)
{
    unsigned sum = 0;
    for (size_t i = 0; i < 512; i++)
        sum += (i >= 148 && i < 156) ? ' ' : (unsigned char)block[i];
    return sum;
}

static void test_short_path_is_one_ustar_block(void **state)
{
    (void)state;
    char out[4096];
    size_t len =
        gateway_archive_tar_header("run-7/summary.json", 1234, 1700000000, out, sizeof out);
    assert_int_equal(len, 512);
    assert_string_equal(out, "run-7/summary.json");
    assert_int_equal(strtoull(out + 124, NULL, 8), 1234);
    assert_int_equal(strtoull(out + 136, NULL, 8), 1700000000);
    assert_int_equal(out[156], '0');
    assert_memory_equal(out + 257,
                        "ustar\0"
                        "00",
                        8);
    assert_int_equal(strtoul(out + 148, NULL, 8), s_checksum(out));
}

static void test_long_path_gets_a_pax_record(void **state)
{
    (void)state;
    char path[400], out[8192];
    memset(path, 'a', sizeof path - 1);
    path[sizeof path - 1] = '\0';
    memcpy(path, "run-1/", 6);
    size_t len = gateway_archive_tar_header(path, 10, 0, out, sizeof out);
    assert_int_equal(len % 512, 0);
    assert_true(len >= 3 * 512);
    assert_int_equal(out[156], 'x');
    assert_int_equal(strtoul(out + 148, NULL, 8), s_checksum(out));
    size_t record_len = (size_t)strtoull(out + 124, NULL, 8);
    const char *record = out + 512;
    //  "<len> path=<path>\n", len counting itself.
    assert_int_equal(strtoul(record, NULL, 10), record_len);
    assert_int_equal(record[record_len - 1], '\n');
    assert_memory_equal(strchr(record, ' ') + 1, "path=", 5);
    assert_memory_equal(strstr(record, "path=") + 5, path, strlen(path));
    const char *ustar = out + len - 512;
    assert_int_equal(ustar[156], '0');
    assert_int_equal(strtoull(ustar + 124, NULL, 8), 10);
    assert_int_equal(strtoul(ustar + 148, NULL, 8), s_checksum(ustar));
    assert_int_equal(gateway_archive_tar_header(path, 10, 0, out, 600), 0); //  too small
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_short_path_is_one_ustar_block),
        cmocka_unit_test(test_long_path_gets_a_pax_record),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

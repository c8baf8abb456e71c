//  data_cases: run every file of a tests/data folder as a cmocka test case of its own, named
//  after the file, so a new golden input is a new file, not new code. The case gets the file's
//  path as its state.
#ifndef DATA_CASES_H_INCLUDED
#define DATA_CASES_H_INCLUDED

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DATA_CASES_MAX 512

static inline int data_cases_compare(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

//  Run test on every file of directory ending in suffix, in name order, as group. Returns the
//  number of failures; an unreadable or empty directory is one failure.
static inline int data_cases_run(const char *group, const char *directory, const char *suffix,
                                 CMUnitTestFunction test)
{
    DIR *dir = opendir(directory);
    if (!dir) {
        fprintf(stderr, "cannot open %s\n", directory);
        return 1;
    }
    static char *paths[DATA_CASES_MAX];
    size_t count = 0, suffix_len = strlen(suffix);
    struct dirent *entry;
    while ((entry = readdir(dir)) && count < DATA_CASES_MAX) {
        size_t len = strlen(entry->d_name);
        if (len > suffix_len && strcmp(entry->d_name + len - suffix_len, suffix) == 0 &&
            asprintf(&paths[count], "%s/%s", directory, entry->d_name) > 0)
            count++;
    }
    closedir(dir);
    qsort(paths, count, sizeof paths[0], data_cases_compare);
    static struct CMUnitTest tests[DATA_CASES_MAX];
    for (size_t i = 0; i < count; i++)
        tests[i] = (struct CMUnitTest){strrchr(paths[i], '/') + 1, test, NULL, NULL, paths[i]};
    int failures = count ? _cmocka_run_group_tests(group, tests, count, NULL, NULL) : 1;
    for (size_t i = 0; i < count; i++)
        free(paths[i]);
    return failures;
}

#endif

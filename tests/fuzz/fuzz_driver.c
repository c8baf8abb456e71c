//  fuzz_driver: a main for the fuzz targets when libFuzzer is not there (gcc, the sanitizer
//  build). It runs LLVMFuzzerTestOneInput once over every file named on the command line and
//  every regular file in the directories named, in name order, and exits non-zero when one
//  cannot be read. A crash, a leak or a UBSan report ends the run through the sanitizers, so
//  ctest's fuzz.<target> is a regression run of the corpus: no mutation, no new inputs.
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

//  Run the target over one file's bytes; -1 when it cannot be read.
static int s_run_file(const char *path)
{
    FILE *file = fopen(path, "rb");
    if (!file) {
        perror(path);
        return -1;
    }
    uint8_t *data = NULL;
    size_t size = 0, used = 0;
    for (;;) {
        if (used == size) {
            size = size ? size * 2 : 4096;
            uint8_t *grown = realloc(data, size);
            if (!grown) {
                fprintf(stderr, "%s: out of memory\n", path);
                free(data);
                fclose(file);
                return -1;
            }
            data = grown;
        }
        size_t got = fread(data + used, 1, size - used, file);
        used += got;
        if (got == 0)
            break;
    }
    int failed = ferror(file);
    fclose(file);
    if (failed) {
        fprintf(stderr, "%s: read error\n", path);
        free(data);
        return -1;
    }
    //  A copy of exactly the input's size, so ASan sees a read past its end as libFuzzer would.
    uint8_t *exact = malloc(used ? used : 1);
    int rc = exact ? 0 : -1;
    if (exact) {
        memcpy(exact, data, used);
        LLVMFuzzerTestOneInput(exact, used);
    }
    free(exact);
    free(data);
    return rc;
}

static int s_by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

//  Run the target over a directory's regular files in name order; returns how many failed.
static int s_run_dir(const char *dir, size_t *runs_p)
{
    DIR *handle = opendir(dir);
    if (!handle) {
        perror(dir);
        return 1;
    }
    char **paths = NULL;
    size_t count = 0, alloc = 0;
    int failed = 0;
    struct dirent *entry;
    while ((entry = readdir(handle))) {
        if (entry->d_name[0] == '.')
            continue;
        char *path = NULL;
        struct stat info;
        if (asprintf(&path, "%s/%s", dir, entry->d_name) < 0)
            path = NULL;
        if (!path || stat(path, &info) != 0 || !S_ISREG(info.st_mode)) {
            free(path);
            continue;
        }
        if (count == alloc) {
            alloc = alloc ? alloc * 2 : 64;
            char **grown = realloc(paths, alloc * sizeof *paths);
            if (!grown) {
                free(path);
                failed++;
                break;
            }
            paths = grown;
        }
        paths[count++] = path;
    }
    closedir(handle);
    qsort(paths, count, sizeof *paths, s_by_name);
    for (size_t i = 0; i < count; i++) {
        failed += s_run_file(paths[i]) != 0;
        free(paths[i]);
    }
    free(paths);
    *runs_p += count;
    return failed;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE_OR_DIR...\n", argv[0]);
        return 2;
    }
    size_t runs = 0;
    int failed = 0;
    for (int i = 1; i < argc; i++) {
        struct stat info;
        if (stat(argv[i], &info) == 0 && S_ISDIR(info.st_mode))
            failed += s_run_dir(argv[i], &runs);
        else {
            failed += s_run_file(argv[i]) != 0;
            runs++;
        }
    }
    printf("%s: %zu inputs run, %d unreadable\n", argv[0], runs, failed);
    return failed || runs == 0 ? 1 : 0;
}

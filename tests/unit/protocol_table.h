//  protocol_table: read a state x event table out of proto/PROTOCOL.md, for the tests that hold
//  the document to the code. A table follows a line "<!-- protocol-table: NAME -->": a header
//  row "| event | STATE | STATE |", a separator row, then one row per event.
#ifndef PROTOCOL_TABLE_H_INCLUDED
#define PROTOCOL_TABLE_H_INCLUDED

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROTOCOL_TABLE_MAX 32
#define PROTOCOL_TABLE_WORD 64

typedef struct {
    size_t states, events;
    char state[PROTOCOL_TABLE_MAX][PROTOCOL_TABLE_WORD];
    char event[PROTOCOL_TABLE_MAX][PROTOCOL_TABLE_WORD];
    char cell[PROTOCOL_TABLE_MAX][PROTOCOL_TABLE_MAX][PROTOCOL_TABLE_WORD];
} protocol_table_t;

//  Split "| a | b |" into trimmed words; returns how many (at most max).
static inline size_t protocol_table_split(const char *line, char words[][PROTOCOL_TABLE_WORD],
                                          size_t max)
{
    size_t count = 0;
    const char *at = strchr(line, '|');
    while (at && count < max) {
        const char *next = strchr(at + 1, '|');
        if (!next)
            break;
        const char *start = at + 1, *end = next;
        while (start < end && *start == ' ')
            start++;
        while (end > start && end[-1] == ' ')
            end--;
        snprintf(words[count++], PROTOCOL_TABLE_WORD, "%.*s", (int)(end - start), start);
        at = next;
    }
    return count;
}

//  Load table name from path into table. 0, or -1 (with a line on stderr) when missing.
static inline int protocol_table_load(const char *path, const char *name, protocol_table_t *table)
{
    memset(table, 0, sizeof *table);
    FILE *file = fopen(path, "r");
    if (!file) {
        fprintf(stderr, "cannot open %s\n", path);
        return -1;
    }
    char marker[128], line[1024];
    snprintf(marker, sizeof marker, "<!-- protocol-table: %s -->", name);
    bool found = false;
    size_t row = 0;
    while (fgets(line, sizeof line, file)) {
        if (!found) {
            found = strncmp(line, marker, strlen(marker)) == 0;
            continue;
        }
        if (line[0] != '|')
            break;
        char words[PROTOCOL_TABLE_MAX + 1][PROTOCOL_TABLE_WORD];
        size_t count = protocol_table_split(line, words, PROTOCOL_TABLE_MAX + 1);
        if (row == 0) {
            for (size_t i = 1; i < count; i++)
                snprintf(table->state[table->states++], PROTOCOL_TABLE_WORD, "%s", words[i]);
        } else if (row > 1 && count > 0 && table->events < PROTOCOL_TABLE_MAX) {
            size_t e = table->events++;
            snprintf(table->event[e], PROTOCOL_TABLE_WORD, "%s", words[0]);
            for (size_t i = 1; i < count && i - 1 < PROTOCOL_TABLE_MAX; i++)
                snprintf(table->cell[e][i - 1], PROTOCOL_TABLE_WORD, "%s", words[i]);
        }
        row++;
    }
    fclose(file);
    if (!found)
        fprintf(stderr, "%s: no table '%s'\n", path, name);
    return found && table->events > 0 ? 0 : -1;
}

#endif

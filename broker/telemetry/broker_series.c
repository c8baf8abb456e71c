//  broker_series: the telemetry series file format. A series file is a sequence of records,
//  each a 4-byte big-endian length and that many bytes of msgpack (lynx_msgpack_pack of {seq,
//  timestamp_ns, values}). The length prefix is ours, not msgpack: it lets the codec decode one
//  record at a time (it refuses trailing bytes) and lets a reader skip records without parsing
//  them. Appends are whole records: plain files through zlib's transparent mode, gzip files as
//  one more gzip member (a multi-member stream reads back as one). A failed append is cut back
//  to the previous size, so a disk error never leaves half a record in the middle of a file.
//  Reading loads records into columns of compact cells, rendered as JSON columns or CSV; a
//  variables filter selects and orders the columns before any record is read. The only module
//  that includes zlib.h.
#include "broker_series.h"
#include "lynx_grow.h"

#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <unistd.h>
#include <zlib.h>

#include "broker_telemetry_config.h"
#include "lynx_msg.h"

#define S_RECORD_HEADER BROKER_SERIES_RECORD_HEADER
#define S_FILE_BUFFER (128 * 1024) //  zlib's buffer, reading and writing
#define S_GZIP_WRITE_MODE "ab1" //  level 1: the loop thread compresses (bench: docs/telemetry.md)

int broker_series_encode(const lynx_value_t *record, unsigned char **buffer_p, size_t *size_p,
                         size_t *capacity_p)
{
    unsigned char *packed = NULL;
    size_t packed_size = 0;
    if (lynx_msgpack_pack(record, &packed, &packed_size))
        return -1;
    size_t need = *size_p + S_RECORD_HEADER + packed_size;
    if (need > *capacity_p) {
        size_t capacity = *capacity_p ? *capacity_p : 4096;
        while (capacity < need)
            capacity *= 2;
        unsigned char *buffer = (unsigned char *)realloc(*buffer_p, capacity);
        if (!buffer) {
            free(packed);
            return -1;
        }
        *buffer_p = buffer;
        *capacity_p = capacity;
    }
    unsigned char *at = *buffer_p + *size_p;
    at[0] = (unsigned char)(packed_size >> 24);
    at[1] = (unsigned char)(packed_size >> 16);
    at[2] = (unsigned char)(packed_size >> 8);
    at[3] = (unsigned char)packed_size;
    memcpy(at + S_RECORD_HEADER, packed, packed_size);
    free(packed);
    *size_p = need;
    return 0;
}

//  Append size bytes to path, compressed or not. On failure the file is cut back to its
//  previous size and why says what failed.
int broker_series_append(const char *path, bool gzip, const unsigned char *data, size_t size,
                         char *why, size_t why_size)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(why, why_size, "open %s: %s", path, strerror(errno));
        return -1;
    }
    off_t start = lseek(fd, 0, SEEK_END);
    gzFile file = gzdopen(fd, gzip ? S_GZIP_WRITE_MODE : "abT");
    if (!file) {
        snprintf(why, why_size, "open %s: out of memory", path);
        close(fd);
        return -1;
    }
    gzbuffer(file, S_FILE_BUFFER);
    int written = gzwrite(file, data, (unsigned)size);
    int errnum = Z_OK;
    if (written != (int)size) {
        const char *message = gzerror(file, &errnum);
        snprintf(why, why_size, "write %s: %s", path,
                 errnum == Z_ERRNO ? strerror(errno) : message);
    }
    int closed = gzclose(file);
    if (written == (int)size && closed != Z_OK)
        snprintf(why, why_size, "write %s: %s", path,
                 closed == Z_ERRNO ? strerror(errno) : zError(closed));
    if (written == (int)size && closed == Z_OK)
        return 0;
    if (start >= 0 && truncate(path, start) != 0)
        zsys_warning("broker: cannot cut back telemetry file path=%s: %s", path, strerror(errno));
    return -1;
}

//  Parse "a, b,c" into a new array of unique names; NULL array for "all". -1 with err.
static int s_parse_variables(const char *csv, lynx_value_t **names_p, lynx_err_t *err)
{
    *names_p = NULL;
    if (!csv || strspn(csv, " \t") == strlen(csv))
        return 0;
    lynx_value_t *names = lynx_value_array();
    if (!names)
        return lynx_err_set(err, LYNX_EINTERNAL, NULL, "out of memory");
    size_t position = 0;
    for (const char *start = csv;; position++) {
        const char *end = strchr(start, ',');
        size_t len = end ? (size_t)(end - start) : strlen(start);
        const char *name = start;
        while (len > 0 && (*name == ' ' || *name == '\t'))
            name++, len--;
        while (len > 0 && (name[len - 1] == ' ' || name[len - 1] == '\t'))
            len--;
        char quoted[BROKER_TELEMETRY_QUOTE_MAX];
        if (!broker_telemetry_config_name_valid(name, len) ||
            position >= BROKER_TELEMETRY_VALUES_MAX) {
            lynx_value_destroy(&names);
            if (position >= BROKER_TELEMETRY_VALUES_MAX)
                return lynx_err_set(err, LYNX_EINVALID, "variables", "more than %d names",
                                    BROKER_TELEMETRY_VALUES_MAX);
            return lynx_err_set(err, LYNX_EINVALID, "variables",
                                "item %zu: invalid variable name %s", position + 1,
                                broker_telemetry_config_quote(name, len, quoted));
        }
        bool seen = false;
        for (size_t i = 0; i < lynx_value_size(names) && !seen; i++) {
            const lynx_value_t *other = lynx_value_at(names, i);
            seen = lynx_value_string_len(other) == len &&
                   memcmp(lynx_value_as_string(other), name, len) == 0;
        }
        lynx_value_t *item = seen ? NULL : lynx_value_stringn(name, len);
        if (!seen && (!item || lynx_value_append(names, &item))) {
            lynx_value_destroy(&item);
            lynx_value_destroy(&names);
            return lynx_err_set(err, LYNX_EINTERNAL, NULL, "out of memory");
        }
        if (!end)
            break;
        start = end + 1;
    }
    *names_p = names;
    return 0;
}

//  ---------------------------------------------------------------------------------------
//  Reading a series back: records into columns of compact cells.

typedef struct {
    lynx_value_type_t type; //  NULL, BOOL, INT or DOUBLE
    union {
        int64_t integer;
        double number;
    } u;
} s_cell_t;

typedef struct {
    char *name;
    s_cell_t *cells;
    size_t count;
    size_t capacity;
} s_column_t;

typedef struct {
    s_column_t *columns;
    size_t column_count;
    size_t column_capacity;
    zhashx_t *index; //  name -> column index + 1
    bool fixed;      //  a variables filter: no new columns
    int64_t *seq;
    int64_t *timestamps;
    size_t rows;
    size_t row_capacity;
    size_t max_cells;
} s_series_t;

static void s_series_destroy(s_series_t *series)
{
    for (size_t i = 0; i < series->column_count; i++) {
        free(series->columns[i].name);
        free(series->columns[i].cells);
    }
    free(series->columns);
    zhashx_destroy(&series->index);
    free(series->seq);
    free(series->timestamps);
}

static int s_column_push(s_column_t *column, s_cell_t cell)
{
    s_cell_t *cells =
        lynx_grow(column->cells, &column->capacity, column->count, sizeof *cells, 256);
    if (!cells)
        return -1;
    column->cells = cells;
    column->cells[column->count++] = cell;
    return 0;
}

//  A new column, with nulls for the rows before (backfill). Index or -1.
static ssize_t s_series_add_column(s_series_t *series, const char *name, size_t backfill)
{
    s_column_t *columns = lynx_grow(series->columns, &series->column_capacity, series->column_count,
                                    sizeof *columns, 16);
    if (!columns)
        return -1;
    series->columns = columns;
    s_column_t *column = &series->columns[series->column_count];
    *column = (s_column_t){.name = strdup(name)};
    if (!column->name)
        return -1;
    series->column_count++;
    for (size_t i = 0; i < backfill; i++)
        if (s_column_push(column, (s_cell_t){.type = LYNX_VALUE_NULL}))
            return -1;
    zhashx_insert(series->index, name, (void *)(uintptr_t)series->column_count);
    return (ssize_t)series->column_count - 1;
}

static int s_series_init(s_series_t *series, const char *variables_csv, size_t max_cells,
                         lynx_err_t *err)
{
    *series = (s_series_t){.max_cells = max_cells, .index = zhashx_new()};
    lynx_value_t *names = NULL;
    if (!series->index)
        return lynx_err_set(err, LYNX_EINTERNAL, NULL, "out of memory");
    if (s_parse_variables(variables_csv, &names, err))
        return -1;
    series->fixed = names != NULL;
    for (size_t i = 0; i < lynx_value_size(names); i++)
        if (s_series_add_column(series, lynx_value_as_string(lynx_value_at(names, i)), 0) < 0) {
            lynx_value_destroy(&names);
            return lynx_err_set(err, LYNX_EINTERNAL, NULL, "out of memory");
        }
    lynx_value_destroy(&names);
    return 0;
}

//  Add one decoded record as a row. 1 to skip a record of the wrong shape, -1 with err.
static int s_series_add(s_series_t *series, const lynx_value_t *record, lynx_err_t *err)
{
    const lynx_value_t *values = lynx_value_get(record, "values");
    if (lynx_value_type(lynx_value_get(record, "seq")) != LYNX_VALUE_INT ||
        lynx_value_type(lynx_value_get(record, "timestamp_ns")) != LYNX_VALUE_INT ||
        lynx_value_type(values) != LYNX_VALUE_MAP)
        return 1;
    size_t row = series->rows;
    if ((row + 1) * (series->column_count + 1) > series->max_cells)
        return lynx_err_set(err, LYNX_ETOOLARGE, "variables",
                            "more than %zu values (frames x variables): select fewer variables",
                            series->max_cells);
    if (row == series->row_capacity) {
        size_t capacity = row ? row * 2 : 256;
        int64_t *seq = (int64_t *)realloc(series->seq, capacity * sizeof *seq);
        if (seq)
            series->seq = seq;
        int64_t *timestamps =
            seq ? (int64_t *)realloc(series->timestamps, capacity * sizeof *timestamps) : NULL;
        if (!timestamps)
            return lynx_err_set(err, LYNX_EINTERNAL, NULL, "out of memory");
        series->timestamps = timestamps;
        series->row_capacity = capacity;
    }
    series->seq[row] = lynx_value_get_int(record, "seq", 0);
    series->timestamps[row] = lynx_value_get_int(record, "timestamp_ns", 0);
    series->rows++;
    for (size_t i = 0; i < lynx_value_size(values); i++) {
        const char *name = lynx_value_key_at(values, i);
        uintptr_t found = (uintptr_t)zhashx_lookup(series->index, name);
        if (!found && series->fixed)
            continue;
        if (!found) {
            if (series->rows * (series->column_count + 2) > series->max_cells)
                return lynx_err_set(err, LYNX_ETOOLARGE, "variables",
                                    "more than %zu values (frames x variables): select fewer "
                                    "variables",
                                    series->max_cells);
            ssize_t index = s_series_add_column(series, name, row);
            if (index < 0)
                return lynx_err_set(err, LYNX_EINTERNAL, NULL, "out of memory");
            found = (uintptr_t)index + 1;
        }
        s_column_t *column = &series->columns[found - 1];
        if (column->count > row)
            continue; //  a stored record never repeats a name; keep the first if one did
        const lynx_value_t *value = lynx_value_at(values, i);
        s_cell_t cell = {.type = lynx_value_type(value)};
        if (cell.type == LYNX_VALUE_DOUBLE)
            cell.u.number = lynx_value_as_double(value);
        else if (cell.type == LYNX_VALUE_INT)
            cell.u.integer = lynx_value_as_int(value);
        else if (cell.type == LYNX_VALUE_BOOL)
            cell.u.integer = lynx_value_as_bool(value);
        else
            cell.type = LYNX_VALUE_NULL;
        if (s_column_push(column, cell))
            return lynx_err_set(err, LYNX_EINTERNAL, NULL, "out of memory");
    }
    for (size_t i = 0; i < series->column_count; i++)
        if (series->columns[i].count <= row &&
            s_column_push(&series->columns[i], (s_cell_t){.type = LYNX_VALUE_NULL}))
            return lynx_err_set(err, LYNX_EINTERNAL, NULL, "out of memory");
    return 0;
}

//  Read exactly size bytes: 1, 0 at a clean end of file, -1 for a short read or an error.
static int s_read_exactly(gzFile file, void *data, size_t size)
{
    int got = gzread(file, data, (unsigned)size);
    if (got == (int)size)
        return 1;
    return got == 0 && gzeof(file) ? 0 : -1;
}

//  Read the file's records into series. A damaged tail (a crash during a flush) ends the
//  series with what came before it, with a warning.
static int s_read_file(const char *path, s_series_t *series, lynx_err_t *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT)
        return 0;
    gzFile file = fd < 0 ? NULL : gzdopen(fd, "rb");
    if (!file) {
        lynx_err_set(err, LYNX_EINTERNAL, NULL, "open %s: %s", path,
                     fd < 0 ? strerror(errno) : "out of memory");
        if (fd >= 0)
            close(fd);
        return -1;
    }
    gzbuffer(file, S_FILE_BUFFER);
    unsigned char header[S_RECORD_HEADER];
    unsigned char *data = NULL;
    size_t capacity = 0;
    int rc = 0;
    const char *damage = NULL;
    while (rc == 0 && !damage) {
        int got = s_read_exactly(file, header, sizeof header);
        if (got <= 0) {
            damage = got < 0 ? "truncated record header" : NULL;
            break;
        }
        size_t size =
            (size_t)header[0] << 24 | (size_t)header[1] << 16 | (size_t)header[2] << 8 | header[3];
        if (size == 0 || size > LYNX_MSG_MAX_BYTES) {
            damage = "bad record length";
            break;
        }
        if (size > capacity) {
            unsigned char *grown = (unsigned char *)realloc(data, size);
            if (!grown) {
                rc = lynx_err_set(err, LYNX_EINTERNAL, NULL, "out of memory");
                break;
            }
            data = grown;
            capacity = size;
        }
        if (s_read_exactly(file, data, size) != 1) {
            damage = "truncated record";
            break;
        }
        lynx_value_t *record = lynx_msgpack_unpack(data, size, NULL);
        if (!record)
            damage = "undecodable record";
        else if (s_series_add(series, record, err) < 0)
            rc = -1;
        lynx_value_destroy(&record);
    }
    if (damage)
        zsys_warning("broker: telemetry file damaged path=%s frames_read=%zu: %s", path,
                     series->rows, damage);
    free(data);
    gzclose(file);
    return rc;
}

//  Load a series file (a missing one is an empty series). -1 with err.
static int s_load(const char *path, const char *variables_csv, size_t max_cells, s_series_t *series,
                  lynx_err_t *err)
{
    *series = (s_series_t){0};
    if (s_series_init(series, variables_csv, max_cells, err))
        return -1;
    return s_read_file(path, series, err);
}

static void s_format_double(double value, char *out, size_t size)
{
    if (isnan(value))
        snprintf(out, size, "nan");
    else if (isinf(value))
        snprintf(out, size, value > 0 ? "inf" : "-inf");
    else
        for (int precision = 15; precision <= 17; precision++) {
            snprintf(out, size, "%.*g", precision, value);
            if (strtod(out, NULL) == value)
                break;
        }
}

//  A header cell: as is, or quoted (RFC 4180) when it holds ',' or '"' or starts or ends with
//  a space.
static void s_csv_name(FILE *out, const char *name)
{
    size_t len = strlen(name);
    if (!strpbrk(name, ",\"") && name[0] != ' ' && name[len - 1] != ' ') {
        fputs(name, out);
        return;
    }
    fputc('"', out);
    for (const char *c = name; *c; c++) {
        if (*c == '"')
            fputc('"', out);
        fputc(*c, out);
    }
    fputc('"', out);
}

static lynx_value_t *s_cell_value(const s_cell_t *cell)
{
    switch (cell->type) {
    case LYNX_VALUE_BOOL:
        return lynx_value_bool(cell->u.integer != 0);
    case LYNX_VALUE_INT:
        return lynx_value_int(cell->u.integer);
    case LYNX_VALUE_DOUBLE:
        return lynx_value_double(cell->u.number);
    default:
        return lynx_value_null();
    }
}

//  Append item to an array or set it under key in a map (key NULL: append). Takes item.
static int s_put(lynx_value_t *parent, const char *key, lynx_value_t *item)
{
    int rc = !item ? -1
             : key ? lynx_value_set(parent, key, &item)
                   : lynx_value_append(parent, &item);
    lynx_value_destroy(&item);
    return rc;
}

static lynx_value_t *s_int_column(const int64_t *items, size_t count)
{
    lynx_value_t *array = lynx_value_array();
    for (size_t i = 0; array && i < count; i++)
        if (s_put(array, NULL, lynx_value_int(items[i])))
            lynx_value_destroy(&array);
    return array;
}

lynx_value_t *broker_series_read(const char *path, const char *batch_id, const char *job_id,
                                 const char *variables_csv, size_t max_cells, lynx_err_t *err)
{
    s_series_t series;
    if (s_load(path, variables_csv, max_cells, &series, err)) {
        s_series_destroy(&series);
        return NULL;
    }
    lynx_value_t *result = lynx_value_map();
    lynx_value_t *values = lynx_value_map();
    int rc = result && values ? 0 : -1;
    rc = rc ? rc : lynx_value_set_string(result, "job_id", job_id);
    rc = rc ? rc : lynx_value_set_string(result, "batch_id", batch_id);
    rc = rc ? rc : lynx_value_set_int(result, "count", (int64_t)series.rows);
    rc = rc ? rc : s_put(result, "seq", s_int_column(series.seq, series.rows));
    rc = rc ? rc : s_put(result, "timestamp_ns", s_int_column(series.timestamps, series.rows));
    for (size_t i = 0; rc == 0 && i < series.column_count; i++) {
        lynx_value_t *column = lynx_value_array();
        for (size_t row = 0; column && row < series.rows; row++)
            if (s_put(column, NULL, s_cell_value(&series.columns[i].cells[row])))
                lynx_value_destroy(&column);
        rc = s_put(values, series.columns[i].name, column);
    }
    rc = rc ? rc : lynx_value_set(result, "values", &values);
    s_series_destroy(&series);
    lynx_value_destroy(&values);
    if (rc) {
        lynx_value_destroy(&result);
        lynx_err_set(err, LYNX_EINTERNAL, NULL, "out of memory reading telemetry of job %s",
                     job_id);
    }
    return result;
}

char *broker_series_read_csv(const char *path, const char *job_id, const char *variables_csv,
                             size_t max_cells, lynx_err_t *err)
{
    s_series_t series;
    if (s_load(path, variables_csv, max_cells, &series, err)) {
        s_series_destroy(&series);
        return NULL;
    }
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);
    if (out) {
        fputs("timestamp_ns", out);
        for (size_t i = 0; i < series.column_count; i++) {
            fputc(',', out);
            s_csv_name(out, series.columns[i].name);
        }
        fputc('\n', out);
        char number[40];
        for (size_t row = 0; row < series.rows; row++) {
            fprintf(out, "%" PRId64, series.timestamps[row]);
            for (size_t i = 0; i < series.column_count; i++) {
                const s_cell_t *cell = &series.columns[i].cells[row];
                fputc(',', out);
                if (cell->type == LYNX_VALUE_DOUBLE) {
                    s_format_double(cell->u.number, number, sizeof number);
                    fputs(number, out);
                } else if (cell->type == LYNX_VALUE_INT)
                    fprintf(out, "%" PRId64, cell->u.integer);
                else if (cell->type == LYNX_VALUE_BOOL)
                    fputs(cell->u.integer ? "true" : "false", out);
            }
            fputc('\n', out);
        }
    }
    s_series_destroy(&series);
    if (!out || ferror(out)) {
        if (out)
            fclose(out);
        free(text);
        lynx_err_set(err, LYNX_EINTERNAL, NULL, "out of memory reading telemetry of job %s",
                     job_id);
        return NULL;
    }
    fclose(out);
    return text;
}

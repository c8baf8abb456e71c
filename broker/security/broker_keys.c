#include "broker_keys.h"

#include <dirent.h>
#include <sys/stat.h>

#include "lynx_time.h"

#define S_ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define S_PATH_MAX 4352
#define S_REFUSAL_LOG_INTERVAL_MS 1000

struct _broker_keys_t {
    char dir[S_PATH_MAX];
    char runners_dir[S_PATH_MAX];
    char subscribers_dir[S_PATH_MAX];
    char public_file[S_PATH_MAX];
    zcert_t *cert;
    zsock_t *zap;
    zhashx_t *runner_of_key; //  Z85 -> runner id
    zhashx_t *key_of_runner; //  runner id -> Z85
    zhashx_t *subscribers;   //  Z85 -> name
    struct timespec runners_mtime, subscribers_mtime;
    //  A key file did not parse (perhaps half copied): read again once a second, ten times,
    //  then only when the directory changes. Retries do not repeat the warning.
    bool unreadable;
    int unreadable_retries;
    int64_t retry_at_mono_ms;
    bool quiet; //  this load is a retry
    broker_keys_revoked_fn *revoked;
    void *revoked_arg;
    int64_t last_refusal_log_ms;
    int64_t refusals_unlogged;
};

bool broker_keys_is_z85(const char *text)
{
    static const char alphabet[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                   ".-:+=^!/*?&<>()[]{}@%$#";
    if (!text || strlen(text) != 40)
        return false;
    uint8_t bytes[32];
    return strspn(text, alphabet) == 40 && zmq_z85_decode(bytes, text) != NULL;
}

//  A runner id as a file name: what REGISTER accepts, minus anything a path could abuse.
static bool s_is_file_safe(const char *id)
{
    size_t len = id ? strlen(id) : 0;
    if (len == 0 || len > 120 || id[0] == '.')
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

static int s_make_private_dir(const char *path, lynx_err_t *err)
{
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        return lynx_err_set(err, LYNX_EINTERNAL, NULL, "create %s: %s", path, strerror(errno));
    return 0;
}

static zhashx_t *s_string_map(void)
{
    zhashx_t *map = zhashx_new();
    if (map) {
        zhashx_set_duplicator(map, (zhashx_duplicator_fn *)strdup);
        zhashx_set_destructor(map, (zhashx_destructor_fn *)zstr_free);
    }
    return map;
}

//  Read the keypair, or make one on first start. The secret file must be ours alone.
static int s_load_identity(broker_keys_t *self, lynx_err_t *err)
{
    char secret_file[S_PATH_MAX + 8];
    snprintf(secret_file, sizeof secret_file, "%s_secret", self->public_file);
    struct stat info;
    if (stat(secret_file, &info) != 0) {
        if (errno != ENOENT)
            return lynx_err_set(err, LYNX_EINTERNAL, NULL, "%s: %s", secret_file, strerror(errno));
        self->cert = zcert_new();
        if (!self->cert)
            return lynx_err_set(err, LYNX_EINTERNAL, NULL, "generate the broker's keypair");
        zcert_set_meta(self->cert, "role", "lynx-broker");
        if (zcert_save(self->cert, self->public_file) != 0 || chmod(secret_file, 0600) != 0)
            return lynx_err_set(err, LYNX_EINTERNAL, NULL, "write %s: %s", secret_file,
                                strerror(errno));
        zsys_notice("broker: created keypair public_key=%s file=%s", zcert_public_txt(self->cert),
                    self->public_file);
        return 0;
    }
    if (info.st_mode & 077)
        return lynx_err_set(err, LYNX_EINVALID, NULL,
                            "%s has mode %04o: the broker's secret key must not be readable by "
                            "group or others; run chmod 600 %s",
                            secret_file, (unsigned)(info.st_mode & 07777), secret_file);
    self->cert = zcert_load(self->public_file);
    if (!self->cert || !broker_keys_is_z85(zcert_secret_txt(self->cert)) ||
        strcmp(zcert_secret_txt(self->cert), "0000000000000000000000000000000000000000") == 0)
        return lynx_err_set(err, LYNX_EINVALID, NULL, "%s: not a readable zcert key pair (with %s)",
                            self->public_file, secret_file);
    return 0;
}

static void s_mtime(const char *dir, struct timespec *mtime)
{
    struct stat info;
    memset(mtime, 0, sizeof *mtime);
    if (stat(dir, &info) == 0)
        *mtime = info.st_mtim;
}

//  Every "*.key" public file in dir, sorted, so the first of two conflicting files wins.
static zlistx_t *s_key_files(const char *dir)
{
    zlistx_t *files = zlistx_new();
    zlistx_set_duplicator(files, (zlistx_duplicator_fn *)strdup);
    zlistx_set_destructor(files, (zlistx_destructor_fn *)zstr_free);
    zlistx_set_comparator(files, (zlistx_comparator_fn *)strcmp);
    DIR *handle = opendir(dir);
    struct dirent *entry;
    while (handle && (entry = readdir(handle))) {
        size_t len = strlen(entry->d_name);
        if (len > 4 && strcmp(entry->d_name + len - 4, ".key") == 0 && entry->d_name[0] != '.')
            zlistx_add_end(files, entry->d_name);
    }
    if (handle)
        closedir(handle);
    zlistx_sort(files);
    return files;
}

//  A zcert public file names its key as: public-key = "<40 characters>".
static bool s_looks_like_zcert(const char *path)
{
    char text[8192];
    FILE *file = fopen(path, "r");
    if (!file)
        return false;
    size_t size = fread(text, 1, sizeof text - 1, file);
    bool whole = feof(file);
    fclose(file);
    text[size] = '\0';
    const char *key = whole ? strstr(text, "public-key = \"") : NULL;
    if (!key)
        return false;
    key += strlen("public-key = \"");
    return strlen(key) > 40 && key[40] == '"' && memchr(key, '"', 40) == NULL;
}

//  Load one directory's public keys: key -> name (runner_id metadata, else the file's stem);
//  with by_name, also name -> key, refusing a second key for a name.
static void s_load_dir(broker_keys_t *self, const char *dir, zhashx_t *by_key, zhashx_t *by_name)
{
    zlistx_t *files = s_key_files(dir);
    for (const char *file = (const char *)zlistx_first(files); file;
         file = (const char *)zlistx_next(files)) {
        char path[S_PATH_MAX + 256];
        snprintf(path, sizeof path, "%s/%s", dir, file);
        //  zcert_load leaks on text it cannot parse (czmq 4.2): look at the file first.
        zcert_t *cert = s_looks_like_zcert(path) ? zcert_load(path) : NULL;
        const char *key = cert ? zcert_public_txt(cert) : NULL;
        char stem[256];
        snprintf(stem, sizeof stem, "%.*s", (int)(strlen(file) - 4), file);
        const char *name =
            cert && zcert_meta(cert, "runner_id") ? zcert_meta(cert, "runner_id") : stem;
        if (!key || !broker_keys_is_z85(key)) {
            if (!self->quiet)
                zsys_warning("broker: key file ignored file=%s: not a zcert public key", path);
            self->unreadable = true;
        } else if (zhashx_lookup(by_key, key) || (by_name && zhashx_lookup(by_name, name)))
            zsys_warning("broker: key file ignored file=%s: its key or runner id %s is enrolled "
                         "by another file",
                         path, name);
        else {
            zhashx_insert(by_key, key, (void *)name);
            if (by_name)
                zhashx_insert(by_name, name, (void *)key);
        }
        zcert_destroy(&cert);
    }
    zlistx_destroy(&files);
}

static void s_load_lists(broker_keys_t *self)
{
    s_mtime(self->runners_dir, &self->runners_mtime);
    s_mtime(self->subscribers_dir, &self->subscribers_mtime);
    zhashx_purge(self->runner_of_key);
    zhashx_purge(self->key_of_runner);
    zhashx_purge(self->subscribers);
    self->unreadable = false;
    s_load_dir(self, self->runners_dir, self->runner_of_key, self->key_of_runner);
    s_load_dir(self, self->subscribers_dir, self->subscribers, NULL);
}

broker_keys_t *broker_keys_new(const char *keys_dir, lynx_err_t *err)
{
    broker_keys_t *self = (broker_keys_t *)calloc(1, sizeof *self);
    if (!self) {
        lynx_err_set(err, LYNX_EINTERNAL, NULL, "out of memory");
        return NULL;
    }
    snprintf(self->dir, sizeof self->dir, "%s", keys_dir);
    snprintf(self->runners_dir, sizeof self->runners_dir, "%s/runners", keys_dir);
    snprintf(self->subscribers_dir, sizeof self->subscribers_dir, "%s/subscribers", keys_dir);
    snprintf(self->public_file, sizeof self->public_file, "%s/broker.key", keys_dir);
    self->runner_of_key = s_string_map();
    self->key_of_runner = s_string_map();
    self->subscribers = s_string_map();
    if (!self->runner_of_key || !self->key_of_runner || !self->subscribers ||
        s_make_private_dir(self->dir, err) || s_make_private_dir(self->runners_dir, err) ||
        s_make_private_dir(self->subscribers_dir, err) || s_load_identity(self, err)) {
        if (err && err->code == LYNX_OK)
            lynx_err_set(err, LYNX_EINTERNAL, NULL, "out of memory");
        broker_keys_destroy(&self);
        return NULL;
    }
    s_load_lists(self);
    //  One ZAP handler per process (libzmq's rule): bind before any CURVE socket exists.
    self->zap = zsock_new(ZMQ_REP);
    if (!self->zap || zsock_bind(self->zap, S_ZAP_ENDPOINT) != 0) {
        lynx_err_set(err, LYNX_EINTERNAL, NULL, "bind ZAP handler %s: %s", S_ZAP_ENDPOINT,
                     zmq_strerror(zmq_errno()));
        broker_keys_destroy(&self);
        return NULL;
    }
    zsys_info("broker: CURVE on public_key=%s runners_enrolled=%zu subscribers=%zu",
              zcert_public_txt(self->cert), zhashx_size(self->key_of_runner),
              zhashx_size(self->subscribers));
    return self;
}

void broker_keys_destroy(broker_keys_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    broker_keys_t *self = *self_p;
    //  Unbind before closing: libzmq frees a closed socket's inproc endpoint later, in its
    //  reaper thread, so a broker_keys_new right after would find the ZAP endpoint taken.
    if (self->zap)
        zsock_unbind(self->zap, "%s", S_ZAP_ENDPOINT);
    zsock_destroy(&self->zap);
    zcert_destroy(&self->cert);
    zhashx_destroy(&self->runner_of_key);
    zhashx_destroy(&self->key_of_runner);
    zhashx_destroy(&self->subscribers);
    free(self);
    *self_p = NULL;
}

const char *broker_keys_public(const broker_keys_t *self)
{
    return zcert_public_txt(self->cert);
}

const char *broker_keys_public_file(const broker_keys_t *self)
{
    return self->public_file;
}

void broker_keys_serve(broker_keys_t *self, zsock_t *socket, const char *domain)
{
    zcert_apply(self->cert, socket);
    zsock_set_curve_server(socket, 1);
    zsock_set_zap_domain(socket, domain);
}

zsock_t *broker_keys_zap_socket(broker_keys_t *self)
{
    return self->zap;
}

//  Refused handshakes are logged with the peer's address, at most once a second (a scan
//  of the port must not flood the log); the rest are counted into the next line.
static void s_log_refusal(broker_keys_t *self, const char *domain, const char *address,
                          const char *key, const char *why)
{
    int64_t now = lynx_time_mono_ms();
    if (now - self->last_refusal_log_ms < S_REFUSAL_LOG_INTERVAL_MS) {
        self->refusals_unlogged++;
        return;
    }
    zsys_warning("broker: connection refused domain=%s peer=%s key=%s reason=\"%s\" "
                 "also_refused=%" PRId64,
                 domain, address, key, why, self->refusals_unlogged);
    self->last_refusal_log_ms = now;
    self->refusals_unlogged = 0;
}

//  Decide one handshake: the user id to admit it with, or NULL with why.
static const char *s_decide(broker_keys_t *self, const char *domain, const char *mechanism,
                            const char *key, const char **why)
{
    if (strcmp(domain, "") == 0)
        return ""; //  a socket we did not secure (the loopback API socket): libzmq asks anyway
    if (strcmp(mechanism, "CURVE") != 0) {
        *why = "not CURVE";
        return NULL;
    }
    if (!zhashx_lookup(self->runner_of_key, key) && !zhashx_lookup(self->subscribers, key))
        broker_keys_refresh(self); //  enrolled by hand a moment ago?
    const char *runner = (const char *)zhashx_lookup(self->runner_of_key, key);
    if (strcmp(domain, BROKER_KEYS_DOMAIN_RUNNERS) == 0 && runner)
        return runner;
    if (strcmp(domain, BROKER_KEYS_DOMAIN_TELEMETRY) == 0) {
        const char *subscriber = (const char *)zhashx_lookup(self->subscribers, key);
        if (subscriber || runner)
            return subscriber ? subscriber : runner;
    }
    *why = strcmp(domain, BROKER_KEYS_DOMAIN_RUNNERS) == 0 ? "key not enrolled"
                                                           : "key not a known subscriber";
    return NULL;
}

void broker_keys_handle_zap(broker_keys_t *self)
{
    zmsg_t *request = zmsg_recv_nowait(self->zap);
    if (!request)
        return;
    char *version = zmsg_popstr(request), *sequence = zmsg_popstr(request);
    char *domain = zmsg_popstr(request), *address = zmsg_popstr(request);
    zframe_t *identity = zmsg_pop(request);
    char *mechanism = zmsg_popstr(request);
    zframe_t *credentials = zmsg_pop(request);
    char key[41] = "";
    if (credentials && zframe_size(credentials) == 32)
        zmq_z85_encode(key, zframe_data(credentials), 32);
    const char *why = "malformed ZAP request";
    const char *user = version && streq(version, "1.0") && domain && mechanism
                           ? s_decide(self, domain, mechanism, key, &why)
                           : NULL;
    if (!user)
        s_log_refusal(self, domain ? domain : "?", address ? address : "?", key[0] ? key : "-",
                      why);
    zmsg_t *reply = zmsg_new();
    zmsg_addstr(reply, "1.0");
    zmsg_addstr(reply, sequence ? sequence : "");
    zmsg_addstr(reply, user ? "200" : "400");
    zmsg_addstr(reply, user ? "OK" : why);
    zmsg_addstr(reply, user ? user : "");
    zmsg_addmem(reply, "", 0); //  no metadata
    zmsg_send(&reply, self->zap);
    zstr_free(&version);
    zstr_free(&sequence);
    zstr_free(&domain);
    zstr_free(&address);
    zstr_free(&mechanism);
    zframe_destroy(&identity);
    zframe_destroy(&credentials);
    zmsg_destroy(&request);
}

const char *broker_keys_runner_of(const broker_keys_t *self, const char *public_key)
{
    return public_key ? (const char *)zhashx_lookup(self->runner_of_key, public_key) : NULL;
}

const char *broker_keys_key_of(const broker_keys_t *self, const char *runner_id)
{
    return runner_id ? (const char *)zhashx_lookup(self->key_of_runner, runner_id) : NULL;
}

int broker_keys_admit_runner(broker_keys_t *self, const char *runner_id, const char *public_key,
                             lynx_err_t *err)
{
    if (!s_is_file_safe(runner_id))
        return lynx_err_set(err, LYNX_EINVALID, "runner_id",
                            "runner_id: 1 to 120 of letters, digits, '.', '_', '-' (not first "
                            "'.'), got '%.64s'",
                            runner_id ? runner_id : "");
    if (!broker_keys_is_z85(public_key))
        return lynx_err_set(err, LYNX_EINVALID, "public_key",
                            "public_key: must be a Z85-encoded CURVE key (40 characters)");
    const char *held = broker_keys_key_of(self, runner_id);
    const char *owner = broker_keys_runner_of(self, public_key);
    if (held && strcmp(held, public_key) == 0)
        return 0;
    if (held)
        return lynx_err_set(err, LYNX_ECONFLICT, "runner_id",
                            "runner_id: '%s' is enrolled with another key; revoke it first",
                            runner_id);
    if (owner)
        return lynx_err_set(err, LYNX_ECONFLICT, "public_key",
                            "public_key: already enrolled for another runner");
    uint8_t public_bin[32], secret_bin[32] = {0};
    zmq_z85_decode(public_bin, public_key);
    zcert_t *cert = zcert_new_from(public_bin, secret_bin);
    zcert_set_meta(cert, "runner_id", "%s", runner_id);
    char path[S_PATH_MAX + 256];
    snprintf(path, sizeof path, "%s/%s.key", self->runners_dir, runner_id);
    int rc = zcert_save_public(cert, path);
    zcert_destroy(&cert);
    if (rc != 0)
        return lynx_err_set(err, LYNX_EINTERNAL, NULL, "write %s: %s", path, strerror(errno));
    zhashx_insert(self->runner_of_key, public_key, (void *)runner_id);
    zhashx_insert(self->key_of_runner, runner_id, (void *)public_key);
    s_mtime(self->runners_dir, &self->runners_mtime);
    zsys_notice("broker: runner key enrolled runner=%s key=%s", runner_id, public_key);
    return 0;
}

int broker_keys_revoke_runner(broker_keys_t *self, const char *runner_id, lynx_err_t *err)
{
    const char *held = broker_keys_key_of(self, runner_id);
    if (!held)
        return 0;
    //  The file may be named otherwise (an admin's copy): remove whichever holds the key.
    zlistx_t *files = s_key_files(self->runners_dir);
    int result = 1;
    for (const char *file = (const char *)zlistx_first(files); file;
         file = (const char *)zlistx_next(files)) {
        char path[S_PATH_MAX + 256];
        snprintf(path, sizeof path, "%s/%s", self->runners_dir, file);
        zcert_t *cert = zcert_load(path);
        if (cert && streq(zcert_public_txt(cert), held) && unlink(path) != 0)
            result =
                lynx_err_set(err, LYNX_EINTERNAL, NULL, "remove %s: %s", path, strerror(errno));
        zcert_destroy(&cert);
    }
    zlistx_destroy(&files);
    if (result < 0)
        return -1;
    zhashx_delete(self->runner_of_key, held);
    zhashx_delete(self->key_of_runner, runner_id);
    s_mtime(self->runners_dir, &self->runners_mtime);
    zsys_notice("broker: runner key revoked runner=%s", runner_id);
    return 1;
}

void broker_keys_on_revoked(broker_keys_t *self, broker_keys_revoked_fn *revoked, void *arg)
{
    self->revoked = revoked;
    self->revoked_arg = arg;
}

void broker_keys_refresh(broker_keys_t *self)
{
    struct timespec runners, subscribers;
    s_mtime(self->runners_dir, &runners);
    s_mtime(self->subscribers_dir, &subscribers);
    bool changed = memcmp(&runners, &self->runners_mtime, sizeof runners) != 0 ||
                   memcmp(&subscribers, &self->subscribers_mtime, sizeof subscribers) != 0;
    int64_t now = lynx_time_mono_ms();
    bool retry = self->unreadable && self->unreadable_retries < 10 && now >= self->retry_at_mono_ms;
    if (!changed && !retry)
        return;
    self->unreadable_retries = changed ? 0 : self->unreadable_retries + 1;
    self->retry_at_mono_ms = now + 1000;
    self->quiet = !changed;
    //  "runner\tkey" of every enrolled runner before the reload.
    zlistx_t *before = zlistx_new();
    zlistx_set_destructor(before, (zlistx_destructor_fn *)zstr_free);
    for (const char *key = (const char *)zhashx_first(self->key_of_runner); key;
         key = (const char *)zhashx_next(self->key_of_runner))
        zlistx_add_end(
            before, zsys_sprintf("%s\t%s", (const char *)zhashx_cursor(self->key_of_runner), key));
    s_load_lists(self);
    self->quiet = false;
    for (char *pair = (char *)zlistx_first(before); pair; pair = (char *)zlistx_next(before)) {
        char *tab = strchr(pair, '\t');
        *tab = '\0';
        const char *now = broker_keys_key_of(self, pair);
        if (!now || strcmp(now, tab + 1) != 0) {
            zsys_notice("broker: runner key removed from %s runner=%s", self->runners_dir, pair);
            if (self->revoked)
                self->revoked(pair, self->revoked_arg);
        }
    }
    zlistx_destroy(&before);
}

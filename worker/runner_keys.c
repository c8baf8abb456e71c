#include "runner_keys.h"

#include <sys/stat.h>

static bool s_is_z85_key(const char *text)
{
    uint8_t bytes[32];
    return text && strlen(text) == 40 && zmq_z85_decode(bytes, text) != NULL;
}

static int s_make_parent(const char *file, lynx_err_t *err)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", file);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return 0;
    *slash = '\0';
    if (zsys_dir_create("%s", dir) != 0)
        return lynx_err_set(err, LYNX_EINTERNAL, "key_file", "key_file: create %s: %s", dir,
                            strerror(errno));
    chmod(dir, 0700);
    return 0;
}

zcert_t *runner_keys_load(const char *key_file, bool create, lynx_err_t *err)
{
    char secret_file[4200];
    snprintf(secret_file, sizeof secret_file, "%s_secret", key_file);
    struct stat info;
    if (stat(secret_file, &info) != 0) {
        if (errno != ENOENT || !create) {
            lynx_err_set(err, LYNX_EINVALID, "key_file",
                         "key_file: %s: %s (lynx-runner --init-keys makes a keypair)", secret_file,
                         strerror(errno));
            return NULL;
        }
        if (s_make_parent(key_file, err))
            return NULL;
        zcert_t *cert = zcert_new();
        if (!cert || zcert_save(cert, key_file) != 0 || chmod(secret_file, 0600) != 0) {
            lynx_err_set(err, LYNX_EINTERNAL, "key_file", "key_file: write %s: %s", key_file,
                         strerror(errno));
            zcert_destroy(&cert);
            return NULL;
        }
        zsys_notice("runner: created keypair public_key=%s file=%s", zcert_public_txt(cert),
                    key_file);
        return cert;
    }
    if (info.st_mode & 077) {
        lynx_err_set(err, LYNX_EINVALID, "key_file",
                     "key_file: %s has mode %04o: a secret key must not be readable by group or "
                     "others; run chmod 600 %s",
                     secret_file, (unsigned)(info.st_mode & 07777), secret_file);
        return NULL;
    }
    zcert_t *cert = zcert_load(key_file);
    if (!cert || !s_is_z85_key(zcert_secret_txt(cert)) ||
        strcmp(zcert_secret_txt(cert), "0000000000000000000000000000000000000000") == 0) {
        lynx_err_set(err, LYNX_EINVALID, "key_file", "key_file: %s: not a zcert key pair",
                     key_file);
        zcert_destroy(&cert);
        return NULL;
    }
    return cert;
}

int runner_keys_broker_key(const char *text, char key[41], lynx_err_t *err)
{
    if (!text || !*text)
        return lynx_err_set(err, LYNX_EINVALID, "broker_public_key",
                            "broker_public_key: required: the broker's public key (its READY "
                            "line's public_key=, or the file data_dir/keys/broker.key), or "
                            "--enroll URL --token T to fetch it; --insecure for a broker "
                            "started with --insecure");
    if (s_is_z85_key(text)) {
        snprintf(key, 41, "%s", text);
        return 0;
    }
    zcert_t *cert = zcert_load(text);
    const char *loaded = cert ? zcert_public_txt(cert) : NULL;
    int rc = 0;
    if (!s_is_z85_key(loaded))
        rc = lynx_err_set(err, LYNX_EINVALID, "broker_public_key",
                          "broker_public_key: '%.200s' is neither a Z85 key (40 characters) nor "
                          "a readable zcert public key file",
                          text);
    else
        snprintf(key, 41, "%s", loaded);
    zcert_destroy(&cert);
    return rc;
}

void runner_keys_secure(zsock_t *socket, zcert_t *cert, const char *broker_key)
{
    zcert_apply(cert, socket);
    zsock_set_curve_serverkey(socket, broker_key);
}

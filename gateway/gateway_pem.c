//  gateway_pem: two small files read whole, with the checks that give a clear message.
#include "gateway_pem.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

//  A certificate chain or key file larger than this is not one.
#define GATEWAY_PEM_MAX_BYTES (1024 * 1024)

//  The text of a PEM file that holds marker ("-----BEGIN CERTIFICATE-----"), NUL-terminated
//  and owned by the caller; NULL with err naming what the file is for, its path and the cause.
static char *s_read_pem(const char *what, const char *path, const char *marker, lynx_err_t *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        lynx_err_set(err, LYNX_EINVALID, NULL, "%s %s: %s", what, path, strerror(errno));
        return NULL;
    }
    struct stat st;
    char *text = NULL;
    const char *problem = NULL;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        problem = "not a regular file";
    else if (st.st_size > GATEWAY_PEM_MAX_BYTES)
        problem = "larger than 1 MiB: not a PEM file";
    else if (!(text = malloc((size_t)st.st_size + 1)))
        problem = "out of memory";
    size_t len = 0;
    while (!problem && len < (size_t)st.st_size) {
        ssize_t got = read(fd, text + len, (size_t)st.st_size - len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            problem = got < 0 ? strerror(errno) : "file shrank while being read";
            break;
        }
        len += (size_t)got;
    }
    close(fd);
    if (!problem) {
        text[len] = '\0';
        if (len == 0)
            problem = "empty file";
        else if (strlen(text) != len || !strstr(text, marker))
            problem = "not PEM";
        else if (strstr(text, "-----BEGIN ENCRYPTED PRIVATE KEY-----") ||
                 strstr(text, "Proc-Type: 4,ENCRYPTED"))
            problem = "the key is encrypted: give the gateway an unencrypted key file readable "
                      "only by its user";
    }
    if (problem) {
        if (strcmp(problem, "not PEM") == 0)
            lynx_err_set(err, LYNX_EINVALID, NULL, "%s %s: not PEM (no '%s' line)", what, path,
                         marker);
        else
            lynx_err_set(err, LYNX_EINVALID, NULL, "%s %s: %s", what, path, problem);
        if (text)
            explicit_bzero(text, len);
        free(text);
        return NULL;
    }
    return text;
}

int gateway_pem_load(const char *cert_path, const char *key_path, char **cert_p, char **key_p,
                     lynx_err_t *err)
{
    *cert_p = *key_p = NULL;
    if (!cert_path && !key_path)
        return 0;
    if (!cert_path || !key_path)
        return lynx_err_set(err, LYNX_EINVALID, NULL,
                            "TLS needs both a certificate and a key file, got only the %s",
                            cert_path ? "certificate" : "key");
    *cert_p = s_read_pem("TLS certificate", cert_path, "-----BEGIN CERTIFICATE-----", err);
    if (!*cert_p)
        return -1;
    //  "-----BEGIN PRIVATE KEY-----", or RSA, EC ... PRIVATE KEY
    *key_p = s_read_pem("TLS key", key_path, "PRIVATE KEY-----", err);
    if (!*key_p) {
        gateway_pem_free(cert_p);
        return -1;
    }
    return 0;
}

void gateway_pem_free(char **pem_p)
{
    if (!*pem_p)
        return;
    explicit_bzero(*pem_p, strlen(*pem_p));
    free(*pem_p);
    *pem_p = NULL;
}

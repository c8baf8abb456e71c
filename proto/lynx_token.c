#include "lynx_token.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include <openssl/crypto.h>

#define S_PREFIX "lynx_"
#define S_SECRET_BYTES 32

static const char *const s_role_names[] = {
    [LYNX_ROLE_NONE] = "none",
    [LYNX_ROLE_READ] = "read",
    [LYNX_ROLE_SUBMIT] = "submit",
    [LYNX_ROLE_ADMIN] = "admin",
};

const char *lynx_role_name(lynx_role_t role)
{
    if ((size_t)role >= sizeof s_role_names / sizeof s_role_names[0])
        return "none";
    return s_role_names[role];
}

int lynx_role_parse(const char *name, lynx_role_t *role)
{
    for (lynx_role_t candidate = LYNX_ROLE_READ; candidate <= LYNX_ROLE_ADMIN; candidate++)
        if (name && strcmp(name, s_role_names[candidate]) == 0) {
            *role = candidate;
            return 0;
        }
    return -1;
}

static void s_hex(const unsigned char *bytes, size_t count, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < count; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 15];
    }
    out[2 * count] = '\0';
}

int lynx_token_generate(char text[LYNX_TOKEN_TEXT_SIZE], char id[LYNX_TOKEN_ID_SIZE],
                        lynx_err_t *err)
{
    unsigned char bytes[6 + S_SECRET_BYTES];
    if (getrandom(bytes, sizeof bytes, 0) != (ssize_t)sizeof bytes)
        return lynx_err_set(err, LYNX_EINTERNAL, NULL, "read random bytes for a token: %s",
                            strerror(errno));
    char secret[2 * S_SECRET_BYTES + 1];
    s_hex(bytes, 6, id);
    s_hex(bytes + 6, S_SECRET_BYTES, secret);
    snprintf(text, LYNX_TOKEN_TEXT_SIZE, S_PREFIX "%s_%s", id, secret);
    OPENSSL_cleanse(bytes, sizeof bytes);
    OPENSSL_cleanse(secret, sizeof secret);
    return 0;
}

static bool s_all_hex(const char *text, size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (!((text[i] >= '0' && text[i] <= '9') || (text[i] >= 'a' && text[i] <= 'f')))
            return false;
    return true;
}

bool lynx_token_parse(const char *text, char id[LYNX_TOKEN_ID_SIZE])
{
    size_t prefix = strlen(S_PREFIX), id_len = LYNX_TOKEN_ID_SIZE - 1;
    if (!text || strlen(text) != LYNX_TOKEN_TEXT_SIZE - 1 || strncmp(text, S_PREFIX, prefix) != 0)
        return false;
    const char *id_text = text + prefix, *secret = id_text + id_len + 1;
    if (!s_all_hex(id_text, id_len) || id_text[id_len] != '_' ||
        !s_all_hex(secret, 2 * S_SECRET_BYTES))
        return false;
    memcpy(id, id_text, id_len);
    id[id_len] = '\0';
    return true;
}

void lynx_token_hash(const char *text, char hex[LYNX_DIGEST_HEX_SIZE])
{
    lynx_digest_t digest;
    lynx_digest_init(&digest);
    lynx_digest_update(&digest, text, strlen(text));
    lynx_digest_final_hex(&digest, hex);
}

bool lynx_token_digest_equal(const char *a, const char *b)
{
    size_t len = strlen(a);
    if (len != strlen(b))
        return false;
    return CRYPTO_memcmp(a, b, len) == 0;
}

int lynx_token_from_bearer(const char *header, char *token, size_t size)
{
    if (!header)
        return -1;
    while (*header == ' ' || *header == '\t')
        header++;
    if (strncasecmp(header, "Bearer", 6) != 0 || (header[6] != ' ' && header[6] != '\t'))
        return -1;
    const char *start = header + 6;
    while (*start == ' ' || *start == '\t')
        start++;
    size_t len = strcspn(start, " \t");
    const char *rest = start + len;
    while (*rest == ' ' || *rest == '\t')
        rest++;
    if (len == 0 || len >= size || *rest)
        return -1;
    memcpy(token, start, len);
    token[len] = '\0';
    return 0;
}

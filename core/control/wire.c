/* Control protocol wire format: framing and the encode/decode of each frame
 * type (layouts in lathe/control.h). Every byte that comes off a socket passes
 * through lt_ctl_decode_header and lt_ctl_decode_payload, which treat it as
 * untrusted: lengths are checked before use, text must be UTF-8 without NUL
 * (a COMMAND's words each end in one),
 * and nothing is read past the buffer. */
#include "lathe/control.h"

#include <stdlib.h>
#include <string.h>

static const uint8_t ctl_magic[4] = {'L', 'T', 'C', 'P'};

static void put_u32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

const char *lt_ctl_type_name(int type) {
    switch (type) {
    case LT_CTL_HELLO: return "HELLO";
    case LT_CTL_COMMAND: return "COMMAND";
    case LT_CTL_REPLY: return "REPLY";
    case LT_CTL_EVENT: return "EVENT";
    case LT_CTL_SNAPSHOT: return "SNAPSHOT";
    default: return "unknown";
    }
}

/* Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above
 * U+10FFFF; NUL is refused too so text bodies can be C strings. */
int lt_ctl_text_valid(const char *s, size_t n) {
    const uint8_t *p = (const uint8_t *)s;
    size_t i = 0;
    while (i < n) {
        uint8_t c = p[i];
        if (c == 0) return 0;
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t extra;
        uint32_t cp;
        if (c >= 0xC2 && c <= 0xDF) {
            extra = 1;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            extra = 2;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            extra = 3;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (n - i <= extra) return 0;
        for (size_t k = 1; k <= extra; k++) {
            if ((p[i + k] & 0xC0) != 0x80) return 0;
            cp = cp << 6 | (p[i + k] & 0x3F);
        }
        if ((extra == 2 && cp < 0x800) || (extra == 3 && cp < 0x10000)) return 0;
        if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
        i += extra + 1;
    }
    return 1;
}

static int kind_valid(const char *k, size_t n) {
    if (n == 0 || n > LT_CTL_KIND_MAX) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = k[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
                 c == '-';
        if (!ok) return 0;
    }
    return 1;
}

/* Bytes of the fixed part of each payload before its text/body, and whether
 * the text may be empty. */
static size_t fixed_size(int type) {
    switch (type) {
    case LT_CTL_HELLO: return 8;
    case LT_CTL_COMMAND: return 4;
    case LT_CTL_REPLY: return 5;
    default: return 0;
    }
}

/* The COMMAND words, each followed by a NUL, into a new buffer. */
static int join_words(const lt_ctl_msg *m, char **out, size_t *len, lt_err *err) {
    if (m->argc < 1 || m->argc > LT_CTL_ARGS_MAX || !m->argv)
        return lt_seterr(err, LT_EINVAL, "control: a COMMAND has 1 to %d words, not %d", LT_CTL_ARGS_MAX, m->argc);
    size_t n = 0;
    for (int i = 0; i < m->argc; i++) {
        size_t k = m->argv[i] ? strlen(m->argv[i]) : 0;
        if (!m->argv[i] || !lt_ctl_text_valid(m->argv[i], k))
            return lt_seterr(err, LT_EINVAL, "control: COMMAND word %d is not UTF-8 text", i + 1);
        if (k >= LT_CTL_MAX_PAYLOAD - n)
            return lt_seterr(err, LT_EINVAL, "control: COMMAND exceeds the %u-byte limit", LT_CTL_MAX_PAYLOAD);
        n += k + 1;
    }
    char *b = lt_malloc(n, err);
    if (!b) return LT_ENOMEM;
    size_t o = 0;
    for (int i = 0; i < m->argc; i++) {
        size_t k = strlen(m->argv[i]) + 1;
        memcpy(b + o, m->argv[i], k);
        o += k;
    }
    *out = b;
    *len = n;
    return LT_OK;
}

int lt_ctl_encode(const lt_ctl_msg *m, uint8_t **out, size_t *out_len, lt_err *err) {
    *out = NULL;
    *out_len = 0;
    const char *body = m->body ? m->body : "";
    size_t blen = m->body ? m->body_len : 0;
    size_t kind_len = 0;
    char *words = NULL;
    if (m->type < LT_CTL_HELLO || m->type > LT_CTL_SNAPSHOT)
        return lt_seterr(err, LT_EINVAL, "control: cannot encode frame of unknown type %d", m->type);
    if (m->type == LT_CTL_COMMAND) {
        int rc = join_words(m, &words, &blen, err);
        if (rc) return rc;
        body = words;
    } else if (m->type == LT_CTL_SNAPSHOT) {
        kind_len = strnlen(m->kind, sizeof m->kind);
        if (!kind_valid(m->kind, kind_len))
            return lt_seterr(err, LT_EINVAL, "control: snapshot kind \"%.*s\" must be 1..%d of [A-Za-z0-9_.-]",
                             (int)kind_len, m->kind, LT_CTL_KIND_MAX);
    } else {
        if (!lt_ctl_text_valid(body, blen))
            return lt_seterr(err, LT_EINVAL, "control: %s text is not UTF-8 without NUL bytes",
                             lt_ctl_type_name(m->type));
        if (blen == 0 && m->type == LT_CTL_EVENT)
            return lt_seterr(err, LT_EINVAL, "control: empty %s text", lt_ctl_type_name(m->type));
    }
    if (m->type == LT_CTL_REPLY && m->ok != 0 && m->ok != 1)
        return lt_seterr(err, LT_EINVAL, "control: REPLY ok flag must be 0 or 1, not %d", m->ok);
    size_t head = m->type == LT_CTL_SNAPSHOT ? 1 + kind_len : fixed_size(m->type);
    if (blen > LT_CTL_MAX_PAYLOAD - head) {
        free(words);
        return lt_seterr(err, LT_EINVAL, "control: %s payload of %zu bytes exceeds the %u-byte limit",
                         lt_ctl_type_name(m->type), head + blen, LT_CTL_MAX_PAYLOAD);
    }
    size_t plen = head + blen;
    uint8_t *buf = lt_malloc(LT_CTL_HEADER_SIZE + plen, err);
    if (!buf) {
        free(words);
        return LT_ENOMEM;
    }
    memcpy(buf, ctl_magic, 4);
    buf[4] = (uint8_t)m->type;
    put_u32(buf + 5, (uint32_t)plen);
    uint8_t *p = buf + LT_CTL_HEADER_SIZE;
    switch (m->type) {
    case LT_CTL_HELLO:
        put_u32(p, m->version);
        put_u32(p + 4, m->id);
        break;
    case LT_CTL_COMMAND: put_u32(p, m->id); break;
    case LT_CTL_REPLY:
        put_u32(p, m->id);
        p[4] = (uint8_t)m->ok;
        break;
    case LT_CTL_SNAPSHOT:
        p[0] = (uint8_t)kind_len;
        memcpy(p + 1, m->kind, kind_len);
        break;
    default: break;
    }
    if (blen) memcpy(p + head, body, blen);
    free(words);
    *out = buf;
    *out_len = LT_CTL_HEADER_SIZE + plen;
    return LT_OK;
}

int lt_ctl_decode_header(const uint8_t *hdr, int *type, uint32_t *len, lt_err *err) {
    if (memcmp(hdr, ctl_magic, 4) != 0)
        return lt_seterr(err, LT_EFORMAT, "control: bad frame magic %02x %02x %02x %02x (expected \"LTCP\")", hdr[0],
                         hdr[1], hdr[2], hdr[3]);
    int t = hdr[4];
    if (t < LT_CTL_HELLO || t > LT_CTL_SNAPSHOT) return lt_seterr(err, LT_EFORMAT, "control: unknown frame type %d", t);
    uint32_t n = get_u32(hdr + 5);
    if (n > LT_CTL_MAX_PAYLOAD)
        return lt_seterr(err, LT_EFORMAT, "control: %s payload length %u exceeds the %u-byte limit",
                         lt_ctl_type_name(t), n, LT_CTL_MAX_PAYLOAD);
    *type = t;
    *len = n;
    return LT_OK;
}

void lt_ctl_msg_clear(lt_ctl_msg *m) {
    free(m->body);
    free(m->argv);
    memset(m, 0, sizeof *m);
}

/* COMMAND words: 1..LT_CTL_ARGS_MAX pieces of UTF-8 text, each ending in NUL. */
static int check_words(const char *w, size_t n, lt_err *err) {
    if (n == 0 || w[n - 1] != '\0')
        return lt_seterr(err, LT_EFORMAT, "control: COMMAND words must each end with a NUL byte");
    int count = 0;
    for (size_t i = 0; i < n; count++) {
        size_t k = strnlen(w + i, n - i);
        if (count == LT_CTL_ARGS_MAX)
            return lt_seterr(err, LT_EFORMAT, "control: COMMAND has more than %d words", LT_CTL_ARGS_MAX);
        if (!lt_ctl_text_valid(w + i, k))
            return lt_seterr(err, LT_EFORMAT, "control: COMMAND word %d is not UTF-8", count + 1);
        i += k + 1;
    }
    return LT_OK;
}

int lt_ctl_decode_payload(int type, const uint8_t *p, uint32_t len, lt_ctl_msg *out, lt_err *err) {
    memset(out, 0, sizeof *out);
    const char *tn = lt_ctl_type_name(type);
    size_t head;
    if (type == LT_CTL_SNAPSHOT) {
        if (len < 2) return lt_seterr(err, LT_EFORMAT, "control: SNAPSHOT payload of %u bytes is too short", len);
        size_t kl = p[0];
        if (kl == 0 || kl > LT_CTL_KIND_MAX || 1 + kl > len)
            return lt_seterr(err, LT_EFORMAT, "control: SNAPSHOT kind length %zu invalid for a %u-byte payload", kl,
                             len);
        if (!kind_valid((const char *)p + 1, kl))
            return lt_seterr(err, LT_EFORMAT, "control: SNAPSHOT kind has bytes outside [A-Za-z0-9_.-]");
        memcpy(out->kind, p + 1, kl);
        out->kind[kl] = '\0';
        head = 1 + kl;
    } else if (type >= LT_CTL_HELLO && type <= LT_CTL_EVENT) {
        head = fixed_size(type);
        int empty_ok = type == LT_CTL_HELLO || type == LT_CTL_REPLY;
        if (len < head + (empty_ok ? 0 : 1))
            return lt_seterr(err, LT_EFORMAT, "control: %s payload of %u bytes is too short", tn, len);
        if (type == LT_CTL_COMMAND) {
            int rc = check_words((const char *)p + head, len - head, err);
            if (rc) return rc;
        } else if (!lt_ctl_text_valid((const char *)p + head, len - head)) {
            return lt_seterr(err, LT_EFORMAT, "control: %s text is not UTF-8 without NUL bytes", tn);
        }
        if (type == LT_CTL_HELLO) {
            out->version = get_u32(p);
            out->id = get_u32(p + 4);
        } else if (type != LT_CTL_EVENT) {
            out->id = get_u32(p);
        }
        if (type == LT_CTL_REPLY) {
            if (p[4] > 1) return lt_seterr(err, LT_EFORMAT, "control: REPLY ok flag %u is not 0 or 1", p[4]);
            out->ok = p[4];
        }
    } else {
        return lt_seterr(err, LT_EFORMAT, "control: unknown frame type %d", type);
    }
    size_t blen = len - head;
    out->body = lt_malloc(blen + 1, err);
    if (!out->body) return LT_ENOMEM;
    if (blen) memcpy(out->body, p + head, blen);
    out->body[blen] = '\0';
    out->body_len = blen;
    out->type = type;
    if (type == LT_CTL_COMMAND) { /* argv into the body, which check_words made sure ends with a NUL */
        int n = 0;
        for (size_t i = 0; i < blen; i++) n += out->body[i] == '\0';
        out->argv = lt_malloc(((size_t)n + 1) * sizeof *out->argv, err);
        if (!out->argv) {
            lt_ctl_msg_clear(out);
            return LT_ENOMEM;
        }
        for (size_t i = 0; i < blen; i += strlen(out->body + i) + 1) out->argv[out->argc++] = out->body + i;
        out->argv[out->argc] = NULL;
    }
    return LT_OK;
}

int lt_ctl_decode(const uint8_t *buf, size_t n, lt_ctl_msg *out, size_t *used, lt_err *err) {
    *used = 0;
    if (n == 0) return 0;
    if (n < LT_CTL_HEADER_SIZE) {
        /* A wrong magic is known before the whole header arrives. */
        if (memcmp(buf, ctl_magic, n < 4 ? n : 4) != 0) {
            uint8_t hdr[LT_CTL_HEADER_SIZE] = {0};
            memcpy(hdr, buf, n);
            return lt_ctl_decode_header(hdr, &(int){0}, &(uint32_t){0}, err);
        }
        return 0;
    }
    int type;
    uint32_t len;
    int rc = lt_ctl_decode_header(buf, &type, &len, err);
    if (rc) return rc;
    if (n - LT_CTL_HEADER_SIZE < len) return 0;
    rc = lt_ctl_decode_payload(type, buf + LT_CTL_HEADER_SIZE, len, out, err);
    if (rc) return rc;
    *used = LT_CTL_HEADER_SIZE + (size_t)len;
    return 1;
}

/* The growable buffer of lathe/strbuf.h: appends of every kind, growth across
 * many reallocations, JSON string escapes, and out of memory (a size limit,
 * a size that overflows, an allocation that fails) keeping what was there. */
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "lathe/strbuf.h"

static void test_appends(void) {
    lt_sb b = {0};
    CHECK(b.p == NULL);
    lt_sb_printf(&b, "%s=%d", "step", 12);
    CHECK(b.n == 7 && !strcmp(b.p, "step=12"));
    lt_sb_puts(&b, ";");
    lt_sb_append(&b, "ab\0cd", 5); /* bytes, a NUL among them */
    CHECK(b.n == 13 && !memcmp(b.p, "step=12;ab\0cd", 14));
    lt_sb_reset(&b);
    CHECK(b.n == 0 && b.p && b.p[0] == '\0' && !b.oom);
    lt_sb_printf(&b, "%s", "");
    lt_sb_append(&b, NULL, 0);
    CHECK(b.n == 0 && b.p[0] == '\0');
    lt_sb_free(&b);
    CHECK(b.p == NULL && b.n == 0 && b.cap == 0);
}

/* Many pieces of every size: the text is what snprintf into one big array makes. */
static void test_growth(void) {
    lt_sb b = {0};
    size_t cap = 8 << 20, o = 0; /* enough for the 2000 pieces: about 3 MB */
    char *want = malloc(cap), piece[3000];
    for (int i = 0; i < 2000; i++) {
        int len = (i * 37) % (int)sizeof piece;
        memset(piece, 'a' + i % 26, (size_t)len);
        piece[len] = '\0';
        if (i % 2) {
            lt_sb_printf(&b, "%d:%s,", i, piece);
        } else {
            lt_sb_puts(&b, piece);
            lt_sb_puts(&b, ",");
        }
        o += (size_t)(i % 2 ? snprintf(want + o, cap - o, "%d:%s,", i, piece)
                            : snprintf(want + o, cap - o, "%s,", piece));
    }
    CHECK(o < cap && !b.oom && b.n == o && b.cap > b.n && !strcmp(b.p, want));
    free(want);
    lt_sb_free(&b);
}

static void test_json(void) {
    lt_sb b = {0};
    lt_sb_json_str(&b, "plain \xc3\xa9");
    lt_sb_json_str(&b, "q\"b\\n\nr\rt\tb\bf\f\x01\x1f\x7f");
    lt_sb_json_str(&b, "");
    lt_sb_json_str(&b, "\xff|\xc3|\xed\xa0\x80|\xf0\x9f\x98\x80"); /* bad byte, cut sequence, surrogate, emoji */
    CHECK_MSG(!strcmp(b.p, "\"plain "
                           "\xc3\xa9\"\"q\\\"b\\\\n\\nr\\rt\\tb\\bf\\f\\u0001\\u001f\x7f\"\"\"\"\\ufffd|\\ufffd|"
                           "\\ufffd\\ufffd\\ufffd|\xf0\x9f\x98\x80\""),
              "%s", b.p);
    lt_sb_free(&b);
}

/* Out of memory keeps what the buffer had, NUL-terminated, and ignores every
 * later append until a reset. */
static void test_out_of_memory(void) {
    lt_sb b = {.max = 16};
    lt_sb_puts(&b, "0123456789");
    lt_sb_printf(&b, "%s", "abcdefghij"); /* past max: nothing of it is kept */
    CHECK(b.oom && b.n == 10 && !strcmp(b.p, "0123456789"));
    lt_sb_puts(&b, "x"); /* fits, but the buffer is already out of memory */
    lt_sb_json_str(&b, "y");
    CHECK(b.oom && b.n == 10 && !strcmp(b.p, "0123456789"));
    lt_sb_reset(&b);
    CHECK(!b.oom && b.max == 16);
    lt_sb_printf(&b, "%016d", 7); /* exactly max */
    CHECK(!b.oom && b.n == 16);
    lt_sb_append(&b, "z", 1);
    CHECK(b.oom && b.n == 16 && b.p[16] == '\0');
    lt_sb_free(&b);

    /* a length that would overflow size_t: refused without allocating */
    lt_sb c = {0};
    lt_sb_puts(&c, "kept");
    lt_sb_append(&c, "never read", SIZE_MAX - 2);
    CHECK(c.oom && c.n == 4 && !strcmp(c.p, "kept"));
    lt_sb_free(&c);

#if !defined(__SANITIZE_ADDRESS__) /* ASan aborts on such a request instead of failing it */
    /* an allocation the system refuses (2^62 bytes); nothing is read from the pointer */
    lt_sb d = {0};
    lt_sb_puts(&d, "kept");
    if (sizeof(size_t) == 8) {
        lt_sb_append(&d, "never read", (size_t)1 << 62);
        CHECK(d.oom && d.n == 4 && !strcmp(d.p, "kept"));
    }
    lt_sb_free(&d);
#endif
}

int main(void) {
    RUN(test_appends);
    RUN(test_growth);
    RUN(test_json);
    RUN(test_out_of_memory);
    return check_done();
}

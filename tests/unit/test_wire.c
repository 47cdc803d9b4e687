/* Control protocol wire format and command-line tokeniser: round trips of
 * every frame type, rejection of malformed frames with a message, and the
 * tokeniser's quoting rules and errors. */
#include "check.h"
#include "lathe/control.h"

#include <stdlib.h>
#include <string.h>

static int roundtrip(const lt_ctl_msg *in, lt_ctl_msg *out) {
    uint8_t *buf;
    size_t len, used;
    lt_err err = {0};
    if (lt_ctl_encode(in, &buf, &len, &err)) {
        fprintf(stderr, "encode: %s\n", err.msg);
        return -1;
    }
    /* Every proper prefix asks for more bytes; the whole frame decodes. */
    for (size_t k = 0; k < len; k++) {
        int rc = lt_ctl_decode(buf, k, out, &used, &err);
        if (rc != 0) {
            fprintf(stderr, "prefix %zu of %zu gave %d\n", k, len, rc);
            free(buf);
            return -1;
        }
    }
    int rc = lt_ctl_decode(buf, len, out, &used, &err);
    free(buf);
    if (rc != 1 || used != len) {
        fprintf(stderr, "decode rc %d used %zu of %zu: %s\n", rc, used, len, err.msg);
        return -1;
    }
    return 0;
}

static void test_roundtrip_all_types(void) {
    lt_ctl_msg out;
    lt_ctl_msg hello = {.type = LT_CTL_HELLO, .version = 1, .id = 7, .body = "workbench", .body_len = 9};
    CHECK(roundtrip(&hello, &out) == 0);
    CHECK(out.type == LT_CTL_HELLO && out.version == 1 && out.id == 7);
    CHECK(strcmp(out.body, "workbench") == 0 && out.body_len == 9);
    lt_ctl_msg_clear(&out);

    lt_ctl_msg empty_hello = {.type = LT_CTL_HELLO, .version = 3}; /* empty name is allowed */
    CHECK(roundtrip(&empty_hello, &out) == 0);
    CHECK(out.version == 3 && out.body_len == 0 && out.body && out.body[0] == '\0');
    lt_ctl_msg_clear(&out);

    /* words, not a line: blanks and quotes inside a word stay, an empty word too; UTF-8 é and € */
    char *words[] = {"feed", "text", "a b 'c\"", "", "\xc3\xa9\xe2\x82\xac", NULL};
    lt_ctl_msg command = {.type = LT_CTL_COMMAND, .id = 0xDEADBEEF, .argc = 5, .argv = words};
    CHECK(roundtrip(&command, &out) == 0);
    CHECK(out.type == LT_CTL_COMMAND && out.id == 0xDEADBEEF && out.argc == 5 && out.argv[5] == NULL);
    for (int i = 0; i < 5 && out.argc == 5; i++) CHECK_MSG(strcmp(out.argv[i], words[i]) == 0, "word %d", i);
    lt_ctl_msg_clear(&out);

    for (int ok = 0; ok <= 1; ok++) {
        lt_ctl_msg reply = {.type = LT_CTL_REPLY, .id = 42, .ok = ok, .body = "lr=0.05\nstep=120\n", .body_len = 17};
        CHECK(roundtrip(&reply, &out) == 0);
        CHECK(out.type == LT_CTL_REPLY && out.id == 42 && out.ok == ok);
        CHECK(strcmp(out.body, "lr=0.05\nstep=120\n") == 0);
        lt_ctl_msg_clear(&out);
    }

    lt_ctl_msg event = {.type = LT_CTL_EVENT, .body = "hparam lr 0.1 -> 0.05 at step 120 by client 3", .body_len = 45};
    CHECK(roundtrip(&event, &out) == 0);
    CHECK(out.type == LT_CTL_EVENT && strcmp(out.body, event.body) == 0);
    lt_ctl_msg_clear(&out);

    uint8_t bin[300];
    for (int i = 0; i < 300; i++) bin[i] = (uint8_t)(i * 7); /* includes NUL bytes */
    lt_ctl_msg snap = {.type = LT_CTL_SNAPSHOT, .kind = "layers", .body = (char *)bin, .body_len = sizeof bin};
    CHECK(roundtrip(&snap, &out) == 0);
    CHECK(out.type == LT_CTL_SNAPSHOT && strcmp(out.kind, "layers") == 0);
    CHECK(out.body_len == sizeof bin && memcmp(out.body, bin, sizeof bin) == 0);
    CHECK(out.body[out.body_len] == '\0');
    lt_ctl_msg_clear(&out);
}

static void test_two_frames_in_one_buffer(void) {
    lt_ctl_msg a = {.type = LT_CTL_EVENT, .body = "first", .body_len = 5};
    lt_ctl_msg b = {.type = LT_CTL_SNAPSHOT, .kind = "status", .body = "step=1", .body_len = 6};
    uint8_t *ba, *bb;
    size_t la, lb, used;
    lt_err err;
    CHECK(lt_ctl_encode(&a, &ba, &la, &err) == 0);
    CHECK(lt_ctl_encode(&b, &bb, &lb, &err) == 0);
    uint8_t *both = malloc(la + lb);
    memcpy(both, ba, la);
    memcpy(both + la, bb, lb);
    lt_ctl_msg m;
    CHECK(lt_ctl_decode(both, la + lb, &m, &used, &err) == 1 && used == la);
    CHECK(m.type == LT_CTL_EVENT && strcmp(m.body, "first") == 0);
    lt_ctl_msg_clear(&m);
    CHECK(lt_ctl_decode(both + used, la + lb - used, &m, &used, &err) == 1 && used == lb);
    CHECK(m.type == LT_CTL_SNAPSHOT && strcmp(m.kind, "status") == 0);
    lt_ctl_msg_clear(&m);
    free(ba);
    free(bb);
    free(both);
}

/* Builds a frame from raw parts, bypassing the encoder's checks. */
static size_t raw_frame(uint8_t *buf, const char *magic, int type, uint32_t len, const void *payload, size_t plen) {
    memcpy(buf, magic, 4);
    buf[4] = (uint8_t)type;
    buf[5] = (uint8_t)len;
    buf[6] = (uint8_t)(len >> 8);
    buf[7] = (uint8_t)(len >> 16);
    buf[8] = (uint8_t)(len >> 24);
    if (plen) memcpy(buf + 9, payload, plen);
    return 9 + plen;
}

static void expect_reject(const uint8_t *buf, size_t n, const char *needle) {
    lt_ctl_msg m;
    size_t used;
    lt_err err = {0};
    int rc = lt_ctl_decode(buf, n, &m, &used, &err);
    CHECK_MSG(rc < 0, "rc %d for a frame that should say \"%s\"", rc, needle);
    if (rc < 0) CHECK_STR_CONTAINS(err.msg, needle);
    if (rc == 1) lt_ctl_msg_clear(&m);
}

static void test_malformed_frames(void) {
    uint8_t buf[256];
    size_t n;
    n = raw_frame(buf, "GET ", LT_CTL_EVENT, 2, "hi", 2);
    expect_reject(buf, n, "bad frame magic");
    expect_reject(buf, 2, "bad frame magic"); /* known from two bytes */
    n = raw_frame(buf, "LTCP", 9, 2, "hi", 2);
    expect_reject(buf, n, "unknown frame type 9");
    n = raw_frame(buf, "LTCP", 0, 2, "hi", 2);
    expect_reject(buf, n, "unknown frame type 0");
    n = raw_frame(buf, "LTCP", LT_CTL_EVENT, LT_CTL_MAX_PAYLOAD + 1, NULL, 0);
    expect_reject(buf, n, "exceeds");
    n = raw_frame(buf, "LTCP", LT_CTL_COMMAND, 0xFFFFFFFFu, NULL, 0);
    expect_reject(buf, n, "exceeds");
    /* Zero length where a payload is required. */
    n = raw_frame(buf, "LTCP", LT_CTL_COMMAND, 0, NULL, 0);
    expect_reject(buf, n, "COMMAND payload of 0 bytes is too short");
    n = raw_frame(buf, "LTCP", LT_CTL_COMMAND, 4, "\1\0\0\0", 4); /* id but no line */
    expect_reject(buf, n, "too short");
    n = raw_frame(buf, "LTCP", LT_CTL_COMMAND, 6, "\1\0\0\0ab", 6); /* a word without its NUL */
    expect_reject(buf, n, "must each end with a NUL");
    n = raw_frame(buf, "LTCP", LT_CTL_COMMAND, 7, "\1\0\0\0\xff\0", 7);
    expect_reject(buf, n, "word 1 is not UTF-8");
    {
        uint8_t many[9 + 4 + 2 * (LT_CTL_ARGS_MAX + 1)];
        char words[4 + 2 * (LT_CTL_ARGS_MAX + 1)] = {1};
        for (int i = 0; i <= LT_CTL_ARGS_MAX; i++) words[4 + 2 * i] = 'w';
        n = raw_frame(many, "LTCP", LT_CTL_COMMAND, sizeof words, words, sizeof words);
        expect_reject(many, n, "more than 256 words");
    }
    n = raw_frame(buf, "LTCP", LT_CTL_EVENT, 0, NULL, 0);
    expect_reject(buf, n, "EVENT payload of 0 bytes");
    n = raw_frame(buf, "LTCP", LT_CTL_HELLO, 7, "\1\0\0\0\0\0\0", 7);
    expect_reject(buf, n, "HELLO payload of 7 bytes");
    n = raw_frame(buf, "LTCP", LT_CTL_REPLY, 4, "\1\0\0\0", 4);
    expect_reject(buf, n, "REPLY payload");
    n = raw_frame(buf, "LTCP", LT_CTL_REPLY, 6, "\1\0\0\0\2x", 6);
    expect_reject(buf, n, "ok flag 2");
    n = raw_frame(buf, "LTCP", LT_CTL_SNAPSHOT, 0, NULL, 0);
    expect_reject(buf, n, "SNAPSHOT payload of 0 bytes");
    n = raw_frame(buf, "LTCP", LT_CTL_SNAPSHOT, 4, "\7abc", 4); /* kind runs past the payload */
    expect_reject(buf, n, "kind length 7");
    n = raw_frame(buf, "LTCP", LT_CTL_SNAPSHOT, 4, "\2a/x", 4);
    expect_reject(buf, n, "outside");
    /* Text must be UTF-8 without NUL. */
    n = raw_frame(buf, "LTCP", LT_CTL_EVENT, 3, "a\0b", 3);
    expect_reject(buf, n, "not UTF-8");
    n = raw_frame(buf, "LTCP", LT_CTL_EVENT, 2, "\xc0\xaf", 2); /* overlong '/' */
    expect_reject(buf, n, "not UTF-8");
    n = raw_frame(buf, "LTCP", LT_CTL_EVENT, 3, "\xed\xa0\x80", 3); /* surrogate */
    expect_reject(buf, n, "not UTF-8");
    n = raw_frame(buf, "LTCP", LT_CTL_EVENT, 2, "\xe2\x82", 2); /* truncated sequence */
    expect_reject(buf, n, "not UTF-8");

    /* Truncated payload: not an error, just not a frame yet. */
    lt_ctl_msg m;
    size_t used = 99;
    lt_err err;
    n = raw_frame(buf, "LTCP", LT_CTL_EVENT, 10, "abc", 3);
    CHECK(lt_ctl_decode(buf, n, &m, &used, &err) == 0 && used == 0);
    /* The same frame's payload decoder refuses the short buffer it is given. */
    CHECK(lt_ctl_decode_payload(LT_CTL_HELLO, (const uint8_t *)"abc", 3, &m, &err) < 0);
    CHECK_STR_CONTAINS(err.msg, "too short");
}

static void test_encoder_refuses_bad_messages(void) {
    uint8_t *buf;
    size_t len;
    lt_err err = {0};
    lt_ctl_msg m = {.type = LT_CTL_COMMAND, .id = 1, .argc = 0};
    CHECK(lt_ctl_encode(&m, &buf, &len, &err) == LT_EINVAL);
    CHECK_STR_CONTAINS(err.msg, "1 to 256 words");
    char *bad_word[] = {"set", "\xff", NULL};
    lt_ctl_msg mb = {.type = LT_CTL_COMMAND, .id = 1, .argc = 2, .argv = bad_word};
    CHECK(lt_ctl_encode(&mb, &buf, &len, &err) == LT_EINVAL);
    CHECK_STR_CONTAINS(err.msg, "word 2");
    lt_ctl_msg bad = {.type = LT_CTL_EVENT, .body = "\xff", .body_len = 1};
    CHECK(lt_ctl_encode(&bad, &buf, &len, &err) == LT_EINVAL);
    lt_ctl_msg snap = {.type = LT_CTL_SNAPSHOT, .kind = "no spaces", .body = "x", .body_len = 1};
    CHECK(lt_ctl_encode(&snap, &buf, &len, &err) == LT_EINVAL);
    CHECK_STR_CONTAINS(err.msg, "kind");
    lt_ctl_msg unk = {.type = 17};
    CHECK(lt_ctl_encode(&unk, &buf, &len, &err) == LT_EINVAL);
    CHECK(strcmp(lt_ctl_type_name(LT_CTL_SNAPSHOT), "SNAPSHOT") == 0);
    CHECK(strcmp(lt_ctl_type_name(0), "unknown") == 0);
}

/* ---- tokeniser ---- */

static int split_is(const char *line, int n, const char *const *want) {
    int argc;
    char **argv;
    lt_err err = {0};
    if (lt_cmdline_split(line, &argc, &argv, &err)) {
        fprintf(stderr, "split(%s): %s\n", line, err.msg);
        return 0;
    }
    int same = argc == n && argv[argc] == NULL;
    for (int i = 0; same && i < n; i++) same = strcmp(argv[i], want[i]) == 0;
    if (!same) {
        fprintf(stderr, "split(%s) gave %d words:", line, argc);
        for (int i = 0; i < argc; i++) fprintf(stderr, " [%s]", argv[i]);
        fputc('\n', stderr);
    }
    lt_cmdline_free(argc, argv);
    return same;
}

static void test_cmdline_words_and_quotes(void) {
    CHECK(split_is("set lr 0.05", 3, (const char *[]){"set", "lr", "0.05"}));
    CHECK(split_is("  \tset\t\tlr   0.05 \n", 3, (const char *[]){"set", "lr", "0.05"}));
    CHECK(split_is("", 0, NULL));
    CHECK(split_is(" \t ", 0, NULL));
    CHECK(split_is("feed \"a b  c\" x", 3, (const char *[]){"feed", "a b  c", "x"}));
    CHECK(split_is("note 'it''s' ok", 3, (const char *[]){"note", "its", "ok"}));
    CHECK(split_is("x 'a \"b\" \\n'", 2, (const char *[]){"x", "a \"b\" \\n"})); /* literal */
    CHECK(split_is("x \"say \\\"hi\\\" \\\\ \\n\\t\\q\"", 2, (const char *[]){"x", "say \"hi\" \\ \n\tq"}));
    CHECK(split_is("a\\ b c\\\"d", 2, (const char *[]){"a b", "c\"d"}));
    CHECK(split_is("pre\"mid dle\"'post'", 1, (const char *[]){"premid dlepost"}));
    CHECK(split_is("\"\" ''", 2, (const char *[]){"", ""}));
    CHECK(split_is("tag \xc3\xa9t\xc3\xa9", 2, (const char *[]){"tag", "\xc3\xa9t\xc3\xa9"}));
}

static void test_cmdline_errors(void) {
    int argc = 5;
    char **argv = (char **)1;
    lt_err err = {0};
    CHECK(lt_cmdline_split("set name \"unfinished", &argc, &argv, &err) == LT_EINVAL);
    CHECK_STR_CONTAINS(err.msg, "unterminated double quote starting at column 10");
    CHECK(argc == 0 && argv == NULL);
    CHECK(lt_cmdline_split("a 'b", &argc, &argv, &err) == LT_EINVAL);
    CHECK_STR_CONTAINS(err.msg, "unterminated single quote starting at column 3");
    CHECK(lt_cmdline_split("a \"b\\\"", &argc, &argv, &err) == LT_EINVAL);
    CHECK_STR_CONTAINS(err.msg, "unterminated double quote");
    CHECK(lt_cmdline_split("a b\\", &argc, &argv, &err) == LT_EINVAL);
    CHECK_STR_CONTAINS(err.msg, "trailing backslash at column 4");
    CHECK(lt_cmdline_split(NULL, &argc, &argv, &err) == LT_EINVAL);
}

int main(void) {
    RUN(test_roundtrip_all_types);
    RUN(test_two_frames_in_one_buffer);
    RUN(test_malformed_frames);
    RUN(test_encoder_refuses_bad_messages);
    RUN(test_cmdline_words_and_quotes);
    RUN(test_cmdline_errors);
    return check_done();
}

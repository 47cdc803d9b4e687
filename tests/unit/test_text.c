/* The character corpus (lathe/text.h): fortune parsing (entries split at "%"
 * lines, overstrike and control-byte cleaning), the vocabulary, encode/decode,
 * folder reading (indexes, .u8 names, duplicates, binaries and sub-folders
 * skipped), the seeded split by entry, and the truncated-BPTT batcher's windows
 * continuing across chunks; then the real /usr/share/games/fortunes if present. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "lathe/text.h"

static const char crafted[] = "First entry\nline two\n%\nSecond\r\n%\n%\n  \n%\n"
                              "Third with _\bu_\bn_\bd__\b\ber overstrike\x01\n% not a separator\nlast no newline";
static const char crafted_clean[] = "First entry\nline two\n%\nSecond\n%\n"
                                    "Third with under overstrike\n% not a separator\nlast no newline\n%\n";

static void test_parse(void) {
    lt_text t;
    lt_err err = {0};
    CHECK_MSG(lt_text_from_fortune_bytes(crafted, sizeof crafted - 1, &t, &err) == LT_OK, "%s", err.msg);
    CHECK(t.n_entries == 3);
    CHECK(t.n == strlen(crafted_clean));
    char buf[256];
    lt_text_decode(&t, t.ids, t.n, buf, sizeof buf);
    CHECK_MSG(strcmp(buf, crafted_clean) == 0, "decoded:\n%s", buf);
    /* entry boundaries */
    CHECK(t.entry_off[0] == 0 && t.entry_off[1] == strlen("First entry\nline two\n%\n"));
    CHECK(t.entry_off[3] == t.n);
    lt_text_decode(&t, t.ids + t.entry_off[1], t.entry_off[2] - t.entry_off[1], buf, sizeof buf);
    CHECK(strcmp(buf, "Second\n%\n") == 0);
    /* vocabulary: the distinct bytes, ascending, ids by rank */
    int distinct = 0, present[256] = {0};
    for (const char *p = crafted_clean; *p; p++) present[(unsigned char)*p] = 1;
    for (int c = 0; c < 256; c++) distinct += present[c];
    CHECK(t.vocab_size == distinct);
    for (int i = 1; i < t.vocab_size; i++) CHECK(t.chars[i - 1] < t.chars[i]);
    for (int i = 0; i < t.vocab_size; i++) CHECK(t.id_of[t.chars[i]] == i);
    CHECK(t.id_of['\b'] == -1 && t.id_of['\r'] == -1 && t.id_of[1] == -1 && t.id_of['z'] == -1);
    CHECK(t.id_of['\n'] == 0); /* the smallest byte present */
    /* encode / decode round trip; unknown byte refused */
    const char *s = "line two\n%\n";
    int32_t ids[32];
    CHECK(lt_text_encode(&t, s, strlen(s), ids, &err) == LT_OK);
    lt_text_decode(&t, ids, strlen(s), buf, sizeof buf);
    CHECK(strcmp(buf, s) == 0);
    CHECK(lt_text_encode(&t, "jazz", 4, ids, &err) == LT_EINVAL);
    CHECK_STR_CONTAINS(err.msg, "0x6a");
    /* decode truncates to the buffer and marks bad ids */
    int32_t odd[3] = {t.id_of['F'], 999, -1};
    CHECK(lt_text_decode(&t, odd, 3, buf, 3) == 3 && strcmp(buf, "F?") == 0);
    lt_text_free(&t);
}

static void test_parse_errors(void) {
    lt_text t;
    lt_err err = {0};
    CHECK(lt_text_from_fortune_bytes("a\0b\n%\n", 6, &t, &err) == LT_EFORMAT);
    CHECK(lt_text_from_fortune_bytes("%\n%\n \n%\n", 8, &t, &err) == LT_ENOTFOUND);
    CHECK(lt_text_from_fortune_bytes("", 0, &t, &err) == LT_ENOTFOUND);
    CHECK(lt_text_from_fortune_bytes(NULL, 5, &t, &err) == LT_ENOTFOUND);
    CHECK(t.ids == NULL && t.n == 0);
    /* a "%" line with a carriage return still separates; "%%" does not */
    CHECK(lt_text_from_fortune_bytes("a\r\n%\r\nb\n%%\nc", 12, &t, &err) == LT_OK);
    CHECK(t.n_entries == 2);
    lt_text_free(&t);
    /* random bytes from an alphabet rich in separators and control bytes: either
     * entries (every id in range, the corpus ending in "%\n") or none; no crash */
    static const char alpha[] = "%%%\n\n\n\b\b\r\t a\x80\xff\x01";
    uint64_t x = 12345;
    char buf[300];
    for (int iter = 0; iter < 3000; iter++) {
        size_t n = (size_t)(iter % 300);
        for (size_t i = 0; i < n; i++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            buf[i] = alpha[(x >> 33) % (sizeof alpha - 1)];
        }
        int rc = lt_text_from_fortune_bytes(buf, n, &t, &err);
        CHECK(rc == LT_OK || rc == LT_ENOTFOUND);
        if (rc != LT_OK) continue;
        CHECK(t.n >= 2 && t.ids[t.n - 1] == t.id_of['\n'] && t.ids[t.n - 2] == t.id_of['%']);
        for (size_t i = 0; i < t.n; i++) CHECK(t.ids[i] >= 0 && t.ids[i] < t.vocab_size);
        CHECK(t.id_of['\b'] < 0 && t.id_of['\r'] < 0 && t.id_of[1] < 0);
        lt_text_free(&t);
    }
}

static void write_file(const char *dir, const char *name, const char *data, size_t n) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    fwrite(data, 1, n, f);
    fclose(f);
}

static void test_folder(void) {
    char dir[] = "/tmp/lathe_text_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char sub[600], path[600], target[600];
    write_file(dir, "beta", "b one\n%\nb two\n", 14);
    write_file(dir, "alpha", "a one\n%\n", 8);
    write_file(dir, "alpha.dat", "\x00\x00\x00\x02%\n", 6);
    write_file(dir, "binary", "x\0y\n%\nz\n", 8);
    write_file(dir, ".hidden", "hidden\n%\n", 9);
    snprintf(sub, sizeof sub, "%s/off", dir);
    mkdir(sub, 0700);
    write_file(sub, "rude", "rude\n%\n", 7);
    snprintf(path, sizeof path, "%s/alpha.u8", dir);
    CHECK(symlink("alpha", path) == 0);
    snprintf(path, sizeof path, "%s/gamma", dir); /* a second name of beta */
    snprintf(target, sizeof target, "%s/beta", dir);
    CHECK(symlink(target, path) == 0);
    lt_text t;
    lt_err err = {0};
    CHECK_MSG(lt_text_load_fortunes(dir, &t, &err) == LT_OK, "%s", err.msg);
    CHECK(t.n_files == 2 && t.n_entries == 3);
    char buf[128];
    lt_text_decode(&t, t.ids, t.n, buf, sizeof buf);
    CHECK_MSG(strcmp(buf, "a one\n%\nb one\n%\nb two\n%\n") == 0, "%s", buf);
    lt_text_free(&t);
    CHECK(lt_text_load_fortunes("/nonexistent/lathe", &t, &err) == LT_EIO);
    CHECK_STR_CONTAINS(err.msg, "/nonexistent/lathe");
    CHECK(lt_text_load_fortunes(sub, &t, &err) == LT_OK && t.n_entries == 1);
    lt_text_free(&t);
    const char *names[] = {"beta", "alpha", "alpha.dat", "binary", ".hidden", "alpha.u8", "gamma", "off/rude"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(sub);
    CHECK(lt_text_load_fortunes(dir, &t, &err) == LT_ENOTFOUND);
    rmdir(dir);
}

/* 40 entries of different lengths: split determinism and whole entries. */
static void test_split(void) {
    char corpus[4096];
    size_t o = 0;
    for (int k = 0; k < 40; k++)
        o += (size_t)snprintf(corpus + o, sizeof corpus - o, "entry %d %.*s\n%%\n", k, k % 7, "xxxxxxx");
    lt_text t;
    lt_err err = {0};
    CHECK(lt_text_from_fortune_bytes(corpus, o, &t, &err) == LT_OK && t.n_entries == 40);
    lt_text_stream tr, va, tr2, va2, tr3, va3;
    CHECK(lt_text_split(&t, 0.25, 7, &tr, &va, &err) == LT_OK);
    CHECK(tr.n_entries == 30 && va.n_entries == 10 && tr.n + va.n == t.n);
    CHECK(lt_text_split(&t, 0.25, 7, &tr2, &va2, &err) == LT_OK);
    CHECK(tr2.n == tr.n && memcmp(tr2.ids, tr.ids, tr.n * sizeof(int32_t)) == 0);
    CHECK(va2.n == va.n && memcmp(va2.ids, va.ids, va.n * sizeof(int32_t)) == 0);
    CHECK(lt_text_split(&t, 0.25, 8, &tr3, &va3, &err) == LT_OK);
    CHECK(va3.n != va.n || memcmp(va3.ids, va.ids, va.n * sizeof(int32_t)) != 0);
    /* each stream is whole entries: it ends with "%\n" and holds n_entries of them */
    int32_t pct = t.id_of['%'], nl = t.id_of['\n'];
    const lt_text_stream *ss[2] = {&tr, &va};
    for (int s = 0; s < 2; s++) {
        size_t seps = 0;
        for (size_t i = 1; i < ss[s]->n; i++) seps += ss[s]->ids[i - 1] == pct && ss[s]->ids[i] == nl;
        CHECK(seps == ss[s]->n_entries);
        CHECK(ss[s]->ids[ss[s]->n - 1] == nl && ss[s]->ids[ss[s]->n - 2] == pct);
    }
    lt_text_stream_free(&tr), lt_text_stream_free(&va), lt_text_stream_free(&tr2), lt_text_stream_free(&va2);
    lt_text_stream_free(&tr3), lt_text_stream_free(&va3);
    CHECK(lt_text_split(&t, 1.0, 7, &tr3, &va3, &err) == LT_EINVAL && tr3.ids == NULL);
    CHECK(lt_text_split(&t, 0.0, 7, &tr, &va, &err) == LT_OK && va.n == 0 && tr.n == t.n);
    lt_text_stream_free(&tr), lt_text_stream_free(&va);
    lt_text_free(&t);
}

/* Windows over the stream 0, 1, 2, ...: row b of chunk k starts at o + b*L + k*T,
 * and chunk k+1 starts where chunk k's inputs ended. */
static void test_batcher(void) {
    enum { N = 203, B = 3, T = 5 };
    int32_t ids[N];
    for (int i = 0; i < N; i++) ids[i] = i;
    lt_err err = {0};
    for (int jitter = 0; jitter <= 1; jitter++) {
        lt_text_batcher *b = lt_text_batcher_create(ids, N, B, T, jitter, 99, &err);
        CHECK_MSG(b != NULL, "%s", err.msg);
        if (!b) return;
        int32_t prev[B][T + 1];
        size_t first_off[3];
        for (size_t epoch = 0; epoch < 3; epoch++) {
            size_t chunks = lt_text_batcher_chunks(b), k = 0;
            lt_text_window w;
            while (lt_text_batcher_next(b, &w) == 1) {
                CHECK(w.epoch == epoch && w.index == k && w.B == B && w.T == T);
                if (k == 0) first_off[epoch] = (size_t)w.ids[0];
                size_t off = first_off[epoch], L = (N - off) / B;
                CHECK(chunks == (L - 1) / T);
                for (int r = 0; r < B; r++) {
                    const int32_t *row = w.ids + r * (T + 1);
                    CHECK(row[0] == (int32_t)(off + r * L + k * T));
                    for (int j = 1; j <= T; j++) CHECK(row[j] == row[j - 1] + 1);
                    CHECK(row[T] < (int32_t)(off + (r + 1) * L)); /* stays in its own stream */
                    if (k > 0) CHECK(row[0] == prev[r][T]);       /* continues the previous chunk */
                    memcpy(prev[r], row, sizeof prev[r]);
                }
                k++;
            }
            CHECK(k == chunks && k > 0);
            CHECK(w.epoch == epoch && w.ids == NULL);
            size_t e, i;
            lt_text_batcher_position(b, &e, &i);
            CHECK(e == epoch + 1 && i == 0);
        }
        if (!jitter) CHECK(first_off[0] == 0 && first_off[1] == 0);
        if (jitter) CHECK(first_off[0] < T && first_off[1] < T && first_off[2] < T);
        if (jitter) CHECK(first_off[0] != first_off[1] || first_off[1] != first_off[2]);
        /* seeking replays: epoch 1, chunk 2 */
        lt_text_window w1, w2;
        CHECK(lt_text_batcher_seek(b, 1, 2, &err) == LT_OK);
        CHECK(lt_text_batcher_next(b, &w1) == 1 && w1.epoch == 1 && w1.index == 2);
        int32_t keep0 = w1.ids[0];
        lt_text_batcher *b2 = lt_text_batcher_create(ids, N, B, T, jitter, 99, &err);
        while (lt_text_batcher_next(b2, &w2) == 1) {
        }
        for (int s = 0; s < 3; s++) lt_text_batcher_next(b2, &w2);
        CHECK(w2.epoch == 1 && w2.index == 2 && w2.ids[0] == keep0);
        CHECK(lt_text_batcher_seek(b, 0, 1000, &err) == LT_EINVAL);
        lt_text_batcher_free(b2);
        lt_text_batcher_free(b);
    }
    /* too short: B * (T + 1) ids are the minimum without jitter */
    lt_text_batcher *tight = lt_text_batcher_create(ids, B * (T + 1), B, T, 0, 1, &err);
    CHECK(tight != NULL && lt_text_batcher_chunks(tight) == 1);
    lt_text_batcher_free(tight);
    CHECK(lt_text_batcher_create(ids, B * (T + 1) - 1, B, T, 0, 1, &err) == NULL && err.code == LT_EINVAL);
    CHECK(lt_text_batcher_create(ids, B * (T + 1), B, T, 1, 1, &err) == NULL);
    CHECK(lt_text_batcher_create(ids, N, 0, T, 0, 1, &err) == NULL);
}

static void test_real_fortunes(void) {
    const char *dir = "/usr/share/games/fortunes";
    struct stat st;
    if (stat(dir, &st) != 0) {
        printf("(no %s: real-corpus case skipped)\n", dir);
        return;
    }
    lt_text t;
    lt_err err = {0};
    CHECK_MSG(lt_text_load_fortunes(dir, &t, &err) == LT_OK, "%s", err.msg);
    if (!t.ids) return;
    printf("fortunes: %d files, %zu entries, %zu chars, vocabulary %d\n", t.n_files, t.n_entries, t.n, t.vocab_size);
    CHECK(t.n_entries > 100 && t.vocab_size > 40 && t.vocab_size <= 256);
    CHECK(t.id_of['%'] >= 0 && t.id_of['\n'] >= 0 && t.id_of['\b'] < 0 && t.id_of['\r'] < 0);
    for (size_t i = 0; i < t.n; i++)
        if (t.ids[i] < 0 || t.ids[i] >= t.vocab_size) {
            CHECK(0);
            break;
        }
    lt_text_stream tr, va;
    CHECK(lt_text_split(&t, 0.1, 1, &tr, &va, &err) == LT_OK && va.n_entries > 0);
    lt_text_batcher *b = lt_text_batcher_create(tr.ids, tr.n, 32, 64, 1, 1, &err);
    CHECK_MSG(b != NULL, "%s", err.msg);
    lt_text_window w;
    CHECK(b && lt_text_batcher_next(b, &w) == 1);
    lt_text_batcher_free(b);
    lt_text_stream_free(&tr), lt_text_stream_free(&va);
    lt_text_free(&t);
}

int main(void) {
    RUN(test_parse);
    RUN(test_parse_errors);
    RUN(test_folder);
    RUN(test_split);
    RUN(test_batcher);
    RUN(test_real_fortunes);
    return check_done();
}

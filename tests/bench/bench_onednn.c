/* bench_onednn.c: oneDNN's matmul and convolution primitives (its C API,
 * <dnnl.h>) against lathe's own CPU kernels, f32 and bf16, on the shapes the
 * mnist_cnn experiment runs at batch 128. One table, one row per operation:
 *
 *   matmul  the dense layer (9216 -> 128) forward and its two backward GEMMs
 *           as linear.c calls them, conv2's three im2col GEMMs at the chunk
 *           size conv2d.c picks at batch 128 (6 samples), 1024^3 and 2048^3;
 *           lathe: lt_cpu_sgemm (OpenBLAS in f32, the bf16 GEMM in bf16 mode)
 *           with beta 0; oneDNN: a matmul primitive over the same memory (the
 *           transposed operands described by strides)
 *   conv    conv1 (1->32, 3x3, 28x28) and conv2 (32->64, 3x3, 26x26), forward
 *           (bias and ReLU fused in both), backward data and backward weights
 *           (+ bias gradient); lathe: lt_conv2d_forward / lt_conv2d_backward
 *           (its own choice of path: Winograd for conv2, the direct dW for
 *           conv1, unless --conv gemm); oneDNN: convolution primitives in NCHW
 *           (lathe's layout) and in the layouts oneDNN prefers (format tag
 *           any), timed once without and once with the reorders between NCHW
 *           and those layouts (weights included: they change every step)
 *
 * Columns: GFLOP/s (2*M*N*K, or a direct convolution's 2*OC*C*KH*KW*B*OH*OW)
 * and its % of the fp32 FMA peak measured on the same threads (peak.h) of
 * oneDNN f32, lathe f32, oneDNN bf16 (bf16 inputs, f32 outputs; the inputs are
 * converted before timing) and lathe bf16 (f32 inputs rounded while packing,
 * timed), the ratios lathe / oneDNN, the max relative error of each result
 * against lathe's f32 result (max |x - ref| / max |ref|), the implementation
 * oneDNN picked (dnnl_query_impl_info_str) and the layouts it reordered to.
 * oneDNN bf16 is run only where the CPU has bf16 units (AVX512-BF16 or AMX);
 * lathe bf16 only on real kernels (lt_bf16_available): the C models
 * (LATHE_CPU_BF16=emulate) are checked in --smoke and never timed.
 *
 * Each time is the median (--stat best: the least) of --reps runs (default 10)
 * after --warmup runs (default 2), lathe's and oneDNN's runs of a row taken in
 * turns so that both see the same load from other processes (so lathe's
 * figure for a convolution pass is measured again in each layout's row). Threads: --threads (default 2) for
 * OpenBLAS, lathe's OpenMP loops and oneDNN (Debian's libdnnl is built on
 * OpenMP: the same libgomp pool). Exit status 1 when a result is
 * off by more than 1e-4 (f32) or 2e-2 (bf16) relative to max |ref|.
 *
 * Usage: bench_onednn [--threads N] [--reps R] [--warmup W] [--peak-gflops F]
 *                     [--stat median|best] [--conv auto|gemm] [--smoke] [--perturb]
 * --smoke: tiny shapes, 1 run each, a quick peak probe: a correctness check.
 * --perturb: adds 0.01 to one element of every oneDNN f32 result before it is
 * checked, so the run must fail (a test of the check). */
#include <dnnl.h>
#include <dnnl_debug.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lathe/common.h"
#include "lathe/ops.h"
#include "ops/cpu/bf16_gemm.h"
#include "ops/cpu/winograd.h"
#include "ops/kernels.h"
#include "peak.h"

#define TOL_F32 1e-4
#define TOL_BF16 2e-2
#define MAX_REPS 101

static int g_reps = 10, g_warmup = 2, g_smoke, g_best;
static lt_conv_algo g_algo = LT_CONV_AUTO;
static double g_peak;
static int g_fail, g_perturb;
static lt_bf16_impl g_lbf16; /* lathe's bf16 kernels here, or NONE */
static int g_cpu_bf16;       /* the CPU has bf16 units */
static dnnl_engine_t g_eng;
static dnnl_stream_t g_strm;

static void die(const char *what, dnnl_status_t s, int line) {
    fprintf(stderr, "bench_onednn: %s: %s (line %d)\n", what, dnnl_status2str(s), line);
    exit(2);
}
#define DN(call)                                                                                                       \
    do {                                                                                                               \
        dnnl_status_t s_ = (call);                                                                                     \
        if (s_ != dnnl_success) die(#call, s_, __LINE__);                                                              \
    } while (0)

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "bench_onednn: out of memory (%zu bytes)\n", n);
        exit(2);
    }
    return p;
}

static float *randbuf(size_t n, unsigned *s) {
    float *p = xmalloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++) {
        *s = *s * 1664525u + 1013904223u;
        p[i] = (float)((*s >> 8) & 0xffff) / 65536.0f - 0.5f;
    }
    return p;
}

static uint16_t *to_bf16(const float *x, size_t n) {
    uint16_t *p = xmalloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = lt_bf16_from_f32(x[i]);
    return p;
}

/* max |x - ref| / max |ref|; infinite where x holds a NaN */
static double rel_err(const float *x, const float *ref, size_t n) {
    double m = 0, e = 0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(x[i]) || isnan(ref[i])) return INFINITY;
        m = fmax(m, fabs(ref[i]));
        e = fmax(e, fabs((double)x[i] - ref[i]));
    }
    return m > 0 ? e / m : e;
}

/* --perturb: a wrong element in each oneDNN f32 result, to show the check fails */
static void perturb(float *x, size_t n) {
    if (g_perturb && n) x[n / 2] += 0.01f;
}

static int cmp_dbl(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef void (*run_fn)(void *ctx);

static double pick(double *t) {
    qsort(t, (size_t)g_reps, sizeof t[0], cmp_dbl);
    if (g_best) return t[0];
    return g_reps % 2 ? t[g_reps / 2] : 0.5 * (t[g_reps / 2 - 1] + t[g_reps / 2]);
}

/* Times a (lathe) and b (oneDNN), either may be NULL, run by run in turns
 * (a first in even runs, b first in odd ones) so both see the same load from
 * other processes: g_warmup runs each, then the median (--stat best: the
 * least) of g_reps runs each, in seconds. */
static void time_pair(run_fn fa, void *ca, double *ta, run_fn fb, void *cb, double *tb) {
    double t[2][MAX_REPS];
    for (int i = 0; i < g_warmup; i++) {
        if (fa) fa(ca);
        if (fb) fb(cb);
    }
    for (int r = 0; r < g_reps; r++)
        for (int k = 0; k < 2; k++) {
            int which = (k + r) % 2; /* 0: a, 1: b */
            run_fn f = which ? fb : fa;
            if (!f) continue;
            double t0 = lt_now();
            f(which ? cb : ca);
            t[which][r] = lt_now() - t0;
        }
    if (fa) *ta = pick(t[0]);
    if (fb) *tb = pick(t[1]);
}

/* ---- the table ---- */
enum { C_DF32, C_LF32, C_DBF16, C_LBF16, NCOL };
typedef struct row {
    char op[48], shape[32];
    double flop;
    double t[NCOL];       /* seconds; <= 0: no figure */
    char note[NCOL][120]; /* why there is no figure ("" when there is one) */
    double err[NCOL];     /* vs lathe f32; < 0: not checked */
    char impl[400];
} row;
static row g_rows[64];
static int g_nrows;
static const char *g_notes[32];
static int g_nnotes;

static row *new_row(const char *op, const char *shape, double flop) {
    if (g_nrows == (int)(sizeof g_rows / sizeof g_rows[0])) {
        fprintf(stderr, "bench_onednn: too many rows\n");
        exit(2);
    }
    row *r = &g_rows[g_nrows++];
    memset(r, 0, sizeof *r);
    snprintf(r->op, sizeof r->op, "%s", op);
    snprintf(r->shape, sizeof r->shape, "%s", shape);
    r->flop = flop;
    for (int c = 0; c < NCOL; c++) r->err[c] = -1;
    return r;
}

/* records an error and whether it is within its bound */
static void check(row *r, int col, double err, const char *what) {
    double tol = col == C_DBF16 || col == C_LBF16 ? TOL_BF16 : TOL_F32;
    if (err > r->err[col]) r->err[col] = err;
    if (!(err <= tol)) {
        fprintf(stderr, "bench_onednn: FAIL %s %s: %s max relative error %.3g > %.0e\n", r->op, r->shape, what, err,
                tol);
        g_fail = 1;
    }
}

static int note_index(const char *s) {
    for (int i = 0; i < g_nnotes; i++)
        if (!strcmp(g_notes[i], s)) return i + 1;
    if (g_nnotes == (int)(sizeof g_notes / sizeof g_notes[0])) return 0;
    g_notes[g_nnotes++] = s;
    return g_nnotes;
}

static void cell(char *buf, size_t n, const row *r, int c) {
    if (r->t[c] > 0) {
        double g = r->flop / r->t[c] * 1e-9;
        snprintf(buf, n, "%.1f (%.0f%%)", g, 100.0 * g / g_peak);
    } else if (r->note[c][0])
        snprintf(buf, n, "n/a [%d]", note_index(r->note[c]));
    else
        snprintf(buf, n, "-");
}

static void ratio(char *buf, size_t n, double tl, double td) {
    if (tl > 0 && td > 0)
        snprintf(buf, n, "%.2f", td / tl);
    else
        snprintf(buf, n, "-");
}

static void errcell(char *buf, size_t n, double e) {
    if (e < 0)
        snprintf(buf, n, "-");
    else
        snprintf(buf, n, "%.1e", e);
}

static void print_table(void) {
    printf("%-34s %-22s %14s %14s %5s %14s %14s %5s %8s %8s %8s  %s\n", "op", "shape", "oneDNN f32", "lathe f32", "l/o",
           "oneDNN bf16", "lathe bf16", "l/o", "err o32", "err o16", "err l16", "oneDNN impl (f32 / bf16); lathe");
    for (int i = 0; i < g_nrows; i++) {
        const row *r = &g_rows[i];
        char c[NCOL][40], r32[16], r16[16], e[3][16];
        for (int k = 0; k < NCOL; k++) cell(c[k], sizeof c[k], r, k);
        ratio(r32, sizeof r32, r->t[C_LF32], r->t[C_DF32]);
        ratio(r16, sizeof r16, r->t[C_LBF16], r->t[C_DBF16]);
        errcell(e[0], sizeof e[0], r->err[C_DF32]);
        errcell(e[1], sizeof e[1], r->err[C_DBF16]);
        errcell(e[2], sizeof e[2], r->err[C_LBF16]);
        printf("%-34s %-22s %14s %14s %5s %14s %14s %5s %8s %8s %8s  %s\n", r->op, r->shape, c[0], c[1], r32, c[2],
               c[3], r16, e[0], e[1], e[2], r->impl);
    }
    for (int i = 0; i < g_nnotes; i++) printf("[%d] %s\n", i + 1, g_notes[i]);
}

/* ---- oneDNN primitives over the benchmark's buffers ---- */
typedef struct dn_op {
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t prim;
    int nargs, nin, nout, nmem, count_reorders;
    dnnl_exec_arg_t args[8];
    dnnl_primitive_t rin[8], rout[8]; /* reorders: user -> primitive, primitive -> user */
    dnnl_memory_t rin_from[8], rin_to[8], rout_from[8], rout_to[8];
    dnnl_memory_t mem[16];
    char layouts[120]; /* the arguments oneDNN wanted in another layout */
} dn_op;

static const char *impl_name(const_dnnl_primitive_desc_t pd) {
    const char *s = NULL;
    if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &s) != dnnl_success || !s) return "?";
    return s;
}

/* oneDNN's name of a blocked layout, e.g. aBcd8b: dims outermost first, a
 * blocked dim in capitals, then the inner blocks */
static void layout_name(char *buf, size_t n, const dnnl_memory_desc_t *md) {
    if (md->format_kind != dnnl_blocked) {
        snprintf(buf, n, "opaque");
        return;
    }
    const dnnl_blocking_desc_t *bd = &md->format_desc.blocking;
    int order[DNNL_MAX_NDIMS], nd = md->ndims;
    for (int i = 0; i < nd; i++) order[i] = i;
    for (int i = 1; i < nd; i++) /* by stride, descending; stable */
        for (int j = i; j > 0 && bd->strides[order[j]] > bd->strides[order[j - 1]]; j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    size_t len = 0;
    for (int i = 0; i < nd && len + 1 < n; i++) {
        int blocked = 0;
        for (int k = 0; k < bd->inner_nblks; k++) blocked |= bd->inner_idxs[k] == order[i];
        buf[len++] = (char)((blocked ? 'A' : 'a') + order[i]);
    }
    buf[len] = 0;
    for (int k = 0; k < bd->inner_nblks && len + 1 < n; k++)
        len +=
            (size_t)snprintf(buf + len, n - len, "%lld%c", (long long)bd->inner_blks[k], 'a' + (int)bd->inner_idxs[k]);
}

static dnnl_memory_t dn_mem(dn_op *o, const dnnl_memory_desc_t *md, void *buf) {
    dnnl_memory_t m;
    DN(dnnl_memory_create(&m, md, g_eng, buf));
    o->mem[o->nmem++] = m;
    return m;
}

static dnnl_primitive_t dn_reorder(const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to) {
    dnnl_primitive_desc_t rpd;
    dnnl_primitive_t r;
    DN(dnnl_reorder_primitive_desc_create(&rpd, from, g_eng, to, g_eng, NULL));
    DN(dnnl_primitive_create(&r, rpd));
    DN(dnnl_primitive_desc_destroy(rpd));
    return r;
}

/* Binds the primitive's argument `arg` (its memory desc: query q, index idx)
 * to buf, laid out as user; where the primitive wants another layout, to a
 * memory of its own with a reorder from (input) or to (output) buf. */
static void dn_bind(dn_op *o, int arg, dnnl_query_t q, int idx, const dnnl_memory_desc_t *user, void *buf, int out,
                    const char *name) {
    const dnnl_memory_desc_t *want = dnnl_primitive_desc_query_md(o->pd, q, idx);
    dnnl_memory_t um = dn_mem(o, user, buf), use = um;
    if (!dnnl_memory_desc_equal(want, user)) {
        dnnl_memory_t im = dn_mem(o, want, DNNL_MEMORY_ALLOCATE);
        if (out) {
            o->rout[o->nout] = dn_reorder(want, user);
            o->rout_from[o->nout] = im, o->rout_to[o->nout++] = um;
        } else {
            o->rin[o->nin] = dn_reorder(user, want);
            o->rin_from[o->nin] = um, o->rin_to[o->nin++] = im;
        }
        char ln[32];
        layout_name(ln, sizeof ln, want);
        size_t len = strlen(o->layouts);
        snprintf(o->layouts + len, sizeof o->layouts - len, "%s%s %s", len ? " " : "", name, ln);
        use = im;
    }
    o->args[o->nargs++] = (dnnl_exec_arg_t){arg, use};
}

static void dn_reorders(dnnl_primitive_t *r, dnnl_memory_t *from, dnnl_memory_t *to, int n) {
    for (int i = 0; i < n; i++) {
        dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, from[i]}, {DNNL_ARG_TO, to[i]}};
        DN(dnnl_primitive_execute(r[i], g_strm, 2, a));
    }
}

static void dn_run(void *ctx) {
    dn_op *o = ctx;
    if (o->count_reorders) dn_reorders(o->rin, o->rin_from, o->rin_to, o->nin);
    DN(dnnl_primitive_execute(o->prim, g_strm, o->nargs, o->args));
    if (o->count_reorders) dn_reorders(o->rout, o->rout_from, o->rout_to, o->nout);
    DN(dnnl_stream_wait(g_strm));
}

/* once, with the reorders: the inputs into the primitive's layouts and the
 * result back into the caller's buffers */
static void dn_run_all(dn_op *o) {
    int c = o->count_reorders;
    o->count_reorders = 1;
    dn_run(o);
    o->count_reorders = c;
}

static void dn_free(dn_op *o) {
    for (int i = 0; i < o->nin; i++) dnnl_primitive_destroy(o->rin[i]);
    for (int i = 0; i < o->nout; i++) dnnl_primitive_destroy(o->rout[i]);
    for (int i = 0; i < o->nmem; i++) dnnl_memory_destroy(o->mem[i]);
    if (o->prim) dnnl_primitive_destroy(o->prim);
    if (o->pd) dnnl_primitive_desc_destroy(o->pd);
    memset(o, 0, sizeof *o);
}

/* Why oneDNN's bf16 column is empty, or NULL when it is to be measured.
 * st/impl: the outcome of creating the bf16 primitive. */
static const char *bf16_na(char *buf, size_t n, dnnl_status_t st, const char *impl) {
    const char *isa = dnnl_cpu_isa2str(dnnl_get_effective_cpu_isa());
    if (!g_cpu_bf16) {
        if (st == dnnl_success)
            snprintf(buf, n, "no bf16 units on this CPU (oneDNN on %s would run %s)", isa, impl);
        else
            snprintf(buf, n, "no bf16 units on this CPU (oneDNN on %s: bf16 primitive %s)", isa, dnnl_status2str(st));
        return buf;
    }
    if (st != dnnl_success) {
        snprintf(buf, n, "oneDNN on %s: bf16 primitive %s", isa, dnnl_status2str(st));
        return buf;
    }
    return NULL;
}

static const char *lathe_bf16_na(void) {
    switch (g_lbf16) {
    case LT_BF16_AMX:
    case LT_BF16_AVX512: return NULL;
    case LT_BF16_EMULATED:
    case LT_BF16_EMULATED_AVX512:
        return "emulated, not a speed (LATHE_CPU_BF16 picks lathe's C model of the bf16 kernels)";
    default: break;
    }
    if (lt_bf16_cpu_has_amx() || lt_bf16_cpu_has_avx512bf16()) return "LATHE_CPU_BF16=off";
    return "no AMX-BF16 or AVX512-BF16 on this CPU (lathe's bf16 mode runs f32 here)";
}

/* ---- matmul ---- */
typedef struct mm_shape {
    const char *name;
    int M, N, K, ta, tb; /* C [M, N] = A [M, K] x B [K, N]; ta: A stored K x M, tb: B stored N x K */
} mm_shape;

typedef struct mm_ctx {
    const mm_shape *s;
    const float *A, *B;
    float *C;
} mm_ctx;

static void lathe_mm(void *p) {
    mm_ctx *c = p;
    const mm_shape *s = c->s;
    lt_cpu_sgemm(s->ta, s->tb, s->M, s->N, s->K, c->A, s->ta ? s->M : s->K, c->B, s->tb ? s->K : s->N, 0.0f, c->C,
                 s->N);
}

static dnnl_status_t mm_op(dn_op *o, const mm_shape *s, dnnl_data_type_t dt, void *A, void *B, float *C) {
    dnnl_memory_desc_t a, b, c;
    dnnl_dims_t ad = {s->M, s->K}, bd = {s->K, s->N}, cd = {s->M, s->N};
    dnnl_dims_t as = {s->ta ? 1 : s->K, s->ta ? s->M : 1}, bs = {s->tb ? 1 : s->N, s->tb ? s->K : 1};
    dnnl_dims_t cs = {s->N, 1};
    DN(dnnl_memory_desc_init_by_strides(&a, 2, ad, dt, as));
    DN(dnnl_memory_desc_init_by_strides(&b, 2, bd, dt, bs));
    DN(dnnl_memory_desc_init_by_strides(&c, 2, cd, dnnl_f32, cs));
    dnnl_matmul_desc_t d;
    DN(dnnl_matmul_desc_init(&d, &a, &b, NULL, &c));
    memset(o, 0, sizeof *o);
    dnnl_status_t st = dnnl_primitive_desc_create(&o->pd, &d, NULL, g_eng, NULL);
    if (st != dnnl_success) return st;
    DN(dnnl_primitive_create(&o->prim, o->pd));
    dn_bind(o, DNNL_ARG_SRC, dnnl_query_src_md, 0, &a, A, 0, "src");
    dn_bind(o, DNNL_ARG_WEIGHTS, dnnl_query_weights_md, 0, &b, B, 0, "wei");
    dn_bind(o, DNNL_ARG_DST, dnnl_query_dst_md, 0, &c, C, 1, "dst");
    return dnnl_success;
}

static void bench_matmul(const mm_shape *s) {
    char shape[32];
    snprintf(shape, sizeof shape, "%dx%dx%d%s%s", s->M, s->N, s->K, s->ta ? " At" : "", s->tb ? " Bt" : "");
    row *r = new_row(s->name, shape, 2.0 * s->M * s->N * s->K);
    size_t na = (size_t)s->M * s->K, nb = (size_t)s->K * s->N, nc = (size_t)s->M * s->N;
    unsigned seed = 42;
    float *A = randbuf(na, &seed), *B = randbuf(nb, &seed), *ref = xmalloc(nc * sizeof *ref),
          *C = xmalloc(nc * sizeof *C);
    uint16_t *A16 = to_bf16(A, na), *B16 = to_bf16(B, nb);
    mm_ctx lc = {s, A, B, ref};
    lathe_mm(&lc); /* the reference */
    lc.C = C;

    /* every result checked first */
    char impl32[64] = "-", impl16[64] = "-", why[120];
    dn_op o32, o16;
    int have32 = 0, have16 = 0;
    dnnl_status_t st = mm_op(&o32, s, dnnl_f32, A, B, C);
    if (st == dnnl_success) {
        snprintf(impl32, sizeof impl32, "%s", impl_name(o32.pd));
        memset(C, 0, nc * sizeof *C);
        dn_run_all(&o32);
        perturb(C, nc);
        check(r, C_DF32, rel_err(C, ref, nc), "oneDNN f32");
        have32 = 1;
    } else
        snprintf(r->note[C_DF32], sizeof r->note[0], "oneDNN f32 matmul: %s", dnnl_status2str(st));
    st = mm_op(&o16, s, dnnl_bf16, A16, B16, C);
    const char *nab = bf16_na(why, sizeof why, st, st == dnnl_success ? impl_name(o16.pd) : "");
    if (!nab) {
        snprintf(impl16, sizeof impl16, "%s", impl_name(o16.pd));
        memset(C, 0, nc * sizeof *C);
        dn_run_all(&o16);
        check(r, C_DBF16, rel_err(C, ref, nc), "oneDNN bf16");
        have16 = 1;
    } else
        snprintf(r->note[C_DBF16], sizeof r->note[0], "%s", nab);
    const char *nal = lathe_bf16_na();
    int emulated = g_lbf16 == LT_BF16_EMULATED || g_lbf16 == LT_BF16_EMULATED_AVX512;
    if (!nal || (emulated && g_smoke)) {
        lt_cpu_gemm_set_bf16(g_lbf16);
        memset(C, 0, nc * sizeof *C);
        lathe_mm(&lc);
        check(r, C_LBF16, rel_err(C, ref, nc), "lathe bf16");
        lt_cpu_gemm_set_bf16(LT_BF16_NONE);
    }
    if (nal) snprintf(r->note[C_LBF16], sizeof r->note[0], "%s", nal);

    /* then timed, lathe and oneDNN in turns */
    time_pair(lathe_mm, &lc, &r->t[C_LF32], have32 ? dn_run : NULL, &o32, &r->t[C_DF32]);
    if (!nal) lt_cpu_gemm_set_bf16(g_lbf16);
    time_pair(nal ? NULL : lathe_mm, &lc, &r->t[C_LBF16], have16 ? dn_run : NULL, &o16, &r->t[C_DBF16]);
    lt_cpu_gemm_set_bf16(LT_BF16_NONE);
    dn_free(&o32);
    dn_free(&o16);
    snprintf(r->impl, sizeof r->impl, "%s / %s; lt_cpu_sgemm", impl32, impl16);
    free(A), free(B), free(ref), free(C), free(A16), free(B16);
}

/* ---- convolution ---- */
typedef struct layer {
    const char *name;
    int B, C, H, W, OC, KH, KW;
} layer;
enum { FWD, BWD_DATA, BWD_WEIGHTS };
static const char *pass_name[] = {"fwd", "bwd-data", "bwd-weights"};

typedef struct conv_bufs {
    const layer *L;
    int OH, OW;
    size_t nin, nw, nout;
    float *inp, *w, *b, *dout, *out, *dinp, *dw, *db, *scratch;
    void *inp16, *w16, *dout16;
    int pass;
} conv_bufs;

static void lathe_conv(void *p) {
    conv_bufs *c = p;
    const layer *L = c->L;
    if (c->pass == FWD)
        lt_conv2d_forward(c->out, c->inp, c->w, c->b, L->B, L->C, L->H, L->W, L->OC, L->KH, L->KW, 1, 0, LT_ACT_RELU,
                          c->scratch);
    else
        lt_conv2d_backward(c->pass == BWD_DATA ? c->dinp : NULL, c->pass == BWD_WEIGHTS ? c->dw : NULL,
                           c->pass == BWD_WEIGHTS ? c->db : NULL, c->dout, c->out, c->inp, c->w, L->B, L->C, L->H, L->W,
                           L->OC, L->KH, L->KW, 1, 0, LT_ACT_NONE, c->scratch);
}

/* zeroes what lathe's backward accumulates into, runs the pass once */
static void lathe_conv_once(conv_bufs *c) {
    if (c->pass == BWD_DATA) memset(c->dinp, 0, c->nin * sizeof(float));
    if (c->pass == BWD_WEIGHTS) {
        memset(c->dw, 0, c->nw * sizeof(float));
        memset(c->db, 0, (size_t)c->L->OC * sizeof(float));
    }
    lathe_conv(c);
}

static const char *lathe_conv_path(const layer *L, int pass) {
    if (g_algo == LT_CONV_AUTO && lt_winograd_ok(L->C, L->OC, L->KH, L->KW, 1)) return "winograd";
    if (pass == BWD_WEIGHTS && L->C <= 3 && L->KH == 3 && L->KW == 3) return "direct dW";
    return "im2col+gemm";
}

static void conv_mds(const conv_bufs *c, int any, dnnl_data_type_t dt, dnnl_memory_desc_t *src, dnnl_memory_desc_t *wei,
                     dnnl_memory_desc_t *bia, dnnl_memory_desc_t *dst, int pass) {
    const layer *L = c->L;
    dnnl_dims_t sd = {L->B, L->C, L->H, L->W}, wd = {L->OC, L->C, L->KH, L->KW}, bd = {L->OC},
                dd = {L->B, L->OC, c->OH, c->OW};
    /* inputs in dt, outputs (and the bias) in f32 */
    dnnl_data_type_t st = pass == BWD_DATA ? dnnl_f32 : dt, wt = pass == BWD_WEIGHTS ? dnnl_f32 : dt,
                     dtt = pass == FWD ? dnnl_f32 : dt;
    DN(dnnl_memory_desc_init_by_tag(src, 4, sd, st, any ? dnnl_format_tag_any : dnnl_nchw));
    DN(dnnl_memory_desc_init_by_tag(wei, 4, wd, wt, any ? dnnl_format_tag_any : dnnl_oihw));
    DN(dnnl_memory_desc_init_by_tag(bia, 1, bd, dnnl_f32, dnnl_x));
    DN(dnnl_memory_desc_init_by_tag(dst, 4, dd, dtt, any ? dnnl_format_tag_any : dnnl_nchw));
}

static dnnl_status_t conv_op(dn_op *o, conv_bufs *c, int pass, int any, dnnl_data_type_t dt) {
    static const dnnl_dims_t strides = {1, 1}, pad = {0, 0};
    dnnl_memory_desc_t s, w, b, d, us, uw, ub, ud;
    conv_mds(c, any, dt, &s, &w, &b, &d, pass);
    conv_mds(c, 0, dt, &us, &uw, &ub, &ud, pass); /* the caller's buffers: NCHW */
    memset(o, 0, sizeof *o);
    dnnl_convolution_desc_t fd, bdsc;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_status_t st;
    if (pass == FWD) {
        dnnl_post_ops_t po;
        DN(dnnl_post_ops_create(&po));
        DN(dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f));
        DN(dnnl_primitive_attr_create(&attr));
        DN(dnnl_primitive_attr_set_post_ops(attr, po));
        DN(dnnl_post_ops_destroy(po));
        DN(dnnl_convolution_forward_desc_init(&fd, dnnl_forward_training, dnnl_convolution_auto, &s, &w, &b, &d,
                                              strides, pad, pad));
        st = dnnl_primitive_desc_create(&o->pd, &fd, attr, g_eng, NULL);
        DN(dnnl_primitive_attr_destroy(attr));
    } else {
        /* the forward primitive it is the gradient of (the hint): inputs and
         * output in dt */
        dnnl_memory_desc_t hs, hw, hb, hd;
        conv_mds(c, any, dt, &hs, &hw, &hb, &hd, FWD);
        hd.data_type = dt;
        DN(dnnl_convolution_forward_desc_init(&fd, dnnl_forward_training, dnnl_convolution_auto, &hs, &hw, &hb, &hd,
                                              strides, pad, pad));
        dnnl_primitive_desc_t hint;
        st = dnnl_primitive_desc_create(&hint, &fd, NULL, g_eng, NULL);
        if (st != dnnl_success) return st;
        if (pass == BWD_DATA)
            DN(dnnl_convolution_backward_data_desc_init(&bdsc, dnnl_convolution_auto, &s, &w, &d, strides, pad, pad));
        else
            DN(dnnl_convolution_backward_weights_desc_init(&bdsc, dnnl_convolution_auto, &s, &w, &b, &d, strides, pad,
                                                           pad));
        st = dnnl_primitive_desc_create(&o->pd, &bdsc, NULL, g_eng, hint);
        DN(dnnl_primitive_desc_destroy(hint));
    }
    if (st != dnnl_success) return st;
    DN(dnnl_primitive_create(&o->prim, o->pd));
    int bf = dt == dnnl_bf16;
    void *inp = bf ? c->inp16 : c->inp, *w16 = bf ? c->w16 : c->w, *dout = bf ? c->dout16 : c->dout;
    if (pass == FWD) {
        dn_bind(o, DNNL_ARG_SRC, dnnl_query_src_md, 0, &us, inp, 0, "src");
        dn_bind(o, DNNL_ARG_WEIGHTS, dnnl_query_weights_md, 0, &uw, w16, 0, "wei");
        dn_bind(o, DNNL_ARG_BIAS, dnnl_query_weights_md, 1, &ub, c->b, 0, "bias");
        dn_bind(o, DNNL_ARG_DST, dnnl_query_dst_md, 0, &ud, c->out, 1, "dst");
    } else if (pass == BWD_DATA) {
        dn_bind(o, DNNL_ARG_DIFF_DST, dnnl_query_diff_dst_md, 0, &ud, dout, 0, "diff_dst");
        dn_bind(o, DNNL_ARG_WEIGHTS, dnnl_query_weights_md, 0, &uw, w16, 0, "wei");
        dn_bind(o, DNNL_ARG_DIFF_SRC, dnnl_query_diff_src_md, 0, &us, c->dinp, 1, "diff_src");
    } else {
        dn_bind(o, DNNL_ARG_SRC, dnnl_query_src_md, 0, &us, inp, 0, "src");
        dn_bind(o, DNNL_ARG_DIFF_DST, dnnl_query_diff_dst_md, 0, &ud, dout, 0, "diff_dst");
        dn_bind(o, DNNL_ARG_DIFF_WEIGHTS, dnnl_query_diff_weights_md, 0, &uw, c->dw, 1, "diff_wei");
        dn_bind(o, DNNL_ARG_DIFF_BIAS, dnnl_query_diff_weights_md, 1, &ub, c->db, 1, "diff_bias");
    }
    return dnnl_success;
}

/* the error of this pass's outputs in c against the references */
static double conv_err(const conv_bufs *c, const conv_bufs *ref) {
    switch (c->pass) {
    case FWD: return rel_err(c->out, ref->out, c->nout);
    case BWD_DATA: return rel_err(c->dinp, ref->dinp, c->nin);
    default: return fmax(rel_err(c->dw, ref->dw, c->nw), rel_err(c->db, ref->db, (size_t)c->L->OC));
    }
}

static void clear_outputs(conv_bufs *c) {
    memset(c->out, 0, c->nout * sizeof(float));
    memset(c->dinp, 0, c->nin * sizeof(float));
    memset(c->dw, 0, c->nw * sizeof(float));
    memset(c->db, 0, (size_t)c->L->OC * sizeof(float));
}

static void bench_conv_layer(const layer *L) {
    conv_bufs c = {.L = L, .OH = L->H - L->KH + 1, .OW = L->W - L->KW + 1};
    c.nin = (size_t)L->B * L->C * L->H * L->W, c.nw = (size_t)L->OC * L->C * L->KH * L->KW;
    c.nout = (size_t)L->B * L->OC * c.OH * c.OW;
    unsigned seed = 7;
    c.inp = randbuf(c.nin, &seed), c.w = randbuf(c.nw, &seed), c.b = randbuf((size_t)L->OC, &seed);
    c.dout = randbuf(c.nout, &seed), c.out = randbuf(c.nout, &seed), c.dinp = randbuf(c.nin, &seed);
    c.dw = randbuf(c.nw, &seed), c.db = randbuf((size_t)L->OC, &seed);
    c.scratch = xmalloc(lt_conv2d_scratch_floats(L->B, L->C, L->H, L->W, L->OC, L->KH, L->KW, 1, 0) * sizeof(float));
    c.inp16 = to_bf16(c.inp, c.nin), c.w16 = to_bf16(c.w, c.nw), c.dout16 = to_bf16(c.dout, c.nout);
    /* lathe's f32 results, the reference: separate output buffers */
    conv_bufs ref = c;
    ref.out = xmalloc(c.nout * sizeof(float)), ref.dinp = xmalloc(c.nin * sizeof(float));
    ref.dw = xmalloc(c.nw * sizeof(float)), ref.db = xmalloc((size_t)L->OC * sizeof(float));
    ref.dout = xmalloc(c.nout * sizeof(float));
    memcpy(ref.dout, c.dout, c.nout * sizeof(float));
    lt_conv2d_set_algo(g_algo);
    for (int p = 0; p < 3; p++) ref.pass = p, lathe_conv_once(&ref);

    char shape[32];
    snprintf(shape, sizeof shape, "B%d %d->%d %dx%d", L->B, L->C, L->OC, L->H, L->W);
    double flop = 2.0 * L->OC * L->C * L->KH * L->KW * (double)L->B * c.OH * c.OW;
    const char *nal = lathe_bf16_na();
    int emulated = g_lbf16 == LT_BF16_EMULATED || g_lbf16 == LT_BF16_EMULATED_AVX512;
    for (int p = 0; p < 3; p++) {
        c.pass = p;
        double el16 = -1;
        if (!nal || (emulated && g_smoke)) {
            lt_cpu_gemm_set_bf16(g_lbf16);
            clear_outputs(&c);
            lathe_conv_once(&c);
            el16 = conv_err(&c, &ref);
            lt_cpu_gemm_set_bf16(LT_BF16_NONE);
        }
        /* oneDNN: NCHW, then its own layouts without and with the reorders */
        for (int lay = 0; lay < 3; lay++) {
            char op[48];
            static const char *lname[] = {"nchw", "any", "any+reorders"};
            snprintf(op, sizeof op, "%s %s %s", L->name, pass_name[p], lname[lay]);
            row *r = new_row(op, shape, flop);
            if (el16 >= 0) check(r, C_LBF16, el16, "lathe bf16");
            if (nal) snprintf(r->note[C_LBF16], sizeof r->note[0], "%s", nal);
            char impl[2][180] = {"-", "-"};
            for (int bf = 0; bf < 2; bf++) {
                dn_op o;
                int col = bf ? C_DBF16 : C_DF32;
                int lathe = !bf || !nal, lcol = bf ? C_LBF16 : C_LF32; /* lathe's figure, if any */
                dnnl_status_t st = conv_op(&o, &c, p, lay > 0, bf ? dnnl_bf16 : dnnl_f32);
                const char *why = NULL;
                char wbuf[120];
                if (bf)
                    why = bf16_na(wbuf, sizeof wbuf, st, st == dnnl_success ? impl_name(o.pd) : "");
                else if (st != dnnl_success) {
                    snprintf(wbuf, sizeof wbuf, "oneDNN f32 convolution: %s", dnnl_status2str(st));
                    why = wbuf;
                }
                if (why) {
                    snprintf(r->note[col], sizeof r->note[0], "%s", why);
                    dn_free(&o);
                    if (lathe) { /* lathe alone */
                        if (bf) lt_cpu_gemm_set_bf16(g_lbf16);
                        time_pair(lathe_conv, &c, &r->t[lcol], NULL, NULL, NULL);
                        lt_cpu_gemm_set_bf16(LT_BF16_NONE);
                    }
                    continue;
                }
                snprintf(impl[bf], sizeof impl[bf], "%s%s%s%s", impl_name(o.pd), o.layouts[0] ? " [" : "", o.layouts,
                         o.layouts[0] ? "]" : "");
                clear_outputs(&c);
                dn_run_all(&o);
                if (!bf)
                    perturb(p == FWD        ? c.out
                            : p == BWD_DATA ? c.dinp
                                            : c.dw,
                            p == FWD        ? c.nout
                            : p == BWD_DATA ? c.nin
                                            : c.nw);
                check(r, col, conv_err(&c, &ref), bf ? "oneDNN bf16" : "oneDNN f32");
                /* timed in turns with lathe's pass (lathe's figure is this
                 * row's: each row measures it again) */
                o.count_reorders = lay == 2;
                if (bf && lathe) lt_cpu_gemm_set_bf16(g_lbf16);
                time_pair(lathe ? lathe_conv : NULL, &c, &r->t[lcol], dn_run, &o, &r->t[col]);
                lt_cpu_gemm_set_bf16(LT_BF16_NONE);
                dn_free(&o);
            }
            snprintf(r->impl, sizeof r->impl, "%s / %s; %s", impl[0], impl[1], lathe_conv_path(L, p));
        }
    }
    lt_conv2d_set_algo(LT_CONV_AUTO);
    free(c.inp), free(c.w), free(c.b), free(c.dout), free(c.out), free(c.dinp), free(c.dw), free(c.db);
    free(c.scratch), free(c.inp16), free(c.w16), free(c.dout16);
    free(ref.out), free(ref.dinp), free(ref.dw), free(ref.db), free(ref.dout);
}

/* /proc/loadavg's first three figures and /proc/pressure/cpu's: other
 * processes move every timing */
static void print_load(const char *when) {
    char buf[64] = "?";
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (!fgets(buf, sizeof buf, f)) snprintf(buf, sizeof buf, "?");
        fclose(f);
    }
    char *sp = buf;
    for (int i = 0; i < 3 && sp; i++) sp = strchr(sp + 1, ' ');
    if (sp) *sp = 0;
    /* the share of time some task waited for a CPU, last 10 s (PSI) */
    char psi[160] = "";
    f = fopen("/proc/pressure/cpu", "r");
    if (f) {
        char line[128];
        if (fgets(line, sizeof line, f) && !strncmp(line, "some ", 5)) {
            char *e = strchr(line + 5, ' ');
            if (e) *e = 0;
            snprintf(psi, sizeof psi, ", cpu pressure %s%%", line + 5);
        }
        fclose(f);
    }
    printf("load average %s: %s%s\n", when, buf, psi);
}

static void usage(void) {
    fprintf(stderr, "usage: bench_onednn [--threads N] [--reps R] [--warmup W] [--peak-gflops F] [--stat median|best] "
                    "[--conv auto|gemm] [--smoke] [--perturb]\n");
}

static int int_arg(const char *flag, const char *v, int lo, int hi) {
    char *end;
    long x = v ? strtol(v, &end, 10) : 0;
    if (!v || *end || x < lo || x > hi) {
        fprintf(stderr, "bench_onednn: %s wants an integer from %d to %d, not '%s'\n", flag, lo, hi, v ? v : "");
        exit(2);
    }
    return (int)x;
}

int main(int argc, char **argv) {
    int threads = 2;
    double peak = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--smoke") || !strcmp(a, "--perturb")) {
            *(a[2] == 's' ? &g_smoke : &g_perturb) = 1;
            continue;
        }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage();
            return 0;
        }
        i++;
        if (!strcmp(a, "--threads"))
            threads = int_arg(a, v, 1, 1024);
        else if (!strcmp(a, "--reps"))
            g_reps = int_arg(a, v, 1, MAX_REPS);
        else if (!strcmp(a, "--warmup"))
            g_warmup = int_arg(a, v, 0, 1000);
        else if (!strcmp(a, "--peak-gflops")) {
            char *end;
            peak = v ? strtod(v, &end) : 0;
            if (!v || *end || !(peak > 0)) {
                fprintf(stderr, "bench_onednn: --peak-gflops wants a positive number, not '%s'\n", v ? v : "");
                return 2;
            }
        } else if (!strcmp(a, "--stat")) {
            if (v && (!strcmp(v, "median") || !strcmp(v, "best")))
                g_best = v[0] == 'b';
            else {
                fprintf(stderr, "bench_onednn: --stat wants median or best, not '%s'\n", v ? v : "");
                return 2;
            }
        } else if (!strcmp(a, "--conv")) {
            if (v && !strcmp(v, "auto"))
                g_algo = LT_CONV_AUTO;
            else if (v && !strcmp(v, "gemm"))
                g_algo = LT_CONV_GEMM;
            else {
                fprintf(stderr, "bench_onednn: --conv wants auto or gemm, not '%s'\n", v ? v : "");
                return 2;
            }
        } else {
            fprintf(stderr, "bench_onednn: unknown argument '%s'\n", a);
            usage();
            return 2;
        }
    }
    if (g_smoke) g_reps = 1, g_warmup = 0;
    lt_cpu_set_threads(threads); /* OpenBLAS and the OpenMP pool oneDNN runs on */
    g_peak = peak > 0 ? peak : peak_fp32_gflops(threads, g_smoke ? 0.02 : 0.2, g_smoke ? 1 : 3);
    if (!(g_peak > 0)) {
        fprintf(stderr, "bench_onednn: no fp32 FMA peak measured on this CPU; give --peak-gflops\n");
        return 2;
    }
    g_cpu_bf16 = peak_has_avx512bf16() || peak_has_amx_bf16();
    g_lbf16 = lt_bf16_available();
    DN(dnnl_engine_create(&g_eng, dnnl_cpu, 0));
    DN(dnnl_stream_create(&g_strm, g_eng, dnnl_stream_default_flags));

    const dnnl_version_t *ver = dnnl_version();
    printf("cpu: %s (%s), %d online CPUs, %d threads\n", peak_cpu_model(), peak_cpu_id(), peak_online_cpus(), threads);
    printf("fp32 peak: %.1f GFLOP/s (%s, %d threads, %s); bf16 units: %s%s%s\n", g_peak, peak_fp32_isa(), threads,
           peak > 0 ? "given" : "measured", peak_has_amx_bf16() ? "amx-bf16 " : "",
           peak_has_avx512bf16() ? "avx512-bf16" : "", g_cpu_bf16 ? "" : "none");
    printf("oneDNN %d.%d.%d (%s threads), dispatching to %s; lathe bf16: %s; lathe conv: %s\n", ver->major, ver->minor,
           ver->patch, ver->cpu_runtime == DNNL_RUNTIME_OMP ? "OpenMP" : "non-OpenMP",
           dnnl_cpu_isa2str(dnnl_get_effective_cpu_isa()), lt_bf16_impl_name(g_lbf16),
           g_algo == LT_CONV_AUTO ? "auto (bf16 mode: every layer im2col + bf16 GEMM)" : "gemm");
    printf("GFLOP/s (%% of the fp32 peak), %s of %d after %d warm-up; l/o: lathe / oneDNN; err: max relative "
           "error vs lathe f32 (bounds %.0e f32, %.0e bf16)\n",
           g_best ? "best" : "median", g_reps, g_warmup, TOL_F32, TOL_BF16);
    print_load("before");
    fflush(stdout);

    if (g_smoke) {
        static const mm_shape mm[] = {
            {"matmul", 33, 17, 45, 0, 0},
            {"matmul", 33, 17, 45, 1, 0},
            {"matmul", 33, 17, 45, 0, 1},
            {"matmul", 33, 17, 45, 1, 1},
        };
        static const layer cl[] = {{"conv1", 2, 1, 12, 12, 32, 3, 3}, {"conv2", 2, 32, 10, 10, 64, 3, 3}};
        for (size_t i = 0; i < sizeof mm / sizeof mm[0]; i++) bench_matmul(&mm[i]);
        for (size_t i = 0; i < sizeof cl / sizeof cl[0]; i++) bench_conv_layer(&cl[i]);
    } else {
        /* mnist_cnn at batch 128: dense_1 (9216 -> 128) as linear.c calls it,
         * conv2's im2col GEMMs on a 6-sample chunk (conv2d.c's pick), squares */
        static const mm_shape mm[] = {
            {"matmul dense fwd", 128, 128, 9216, 0, 1},      {"matmul dense dW", 128, 9216, 128, 1, 0},
            {"matmul dense dX", 128, 9216, 128, 0, 0},       {"matmul conv2 im2col fwd", 64, 3456, 288, 0, 0},
            {"matmul conv2 im2col dW", 64, 288, 3456, 0, 1}, {"matmul conv2 im2col dX", 288, 3456, 64, 1, 0},
            {"matmul square", 1024, 1024, 1024, 0, 0},       {"matmul square", 2048, 2048, 2048, 0, 0},
        };
        static const layer cl[] = {{"conv1", 128, 1, 28, 28, 32, 3, 3}, {"conv2", 128, 32, 26, 26, 64, 3, 3}};
        for (size_t i = 0; i < sizeof mm / sizeof mm[0]; i++) bench_matmul(&mm[i]);
        for (size_t i = 0; i < sizeof cl / sizeof cl[0]; i++) bench_conv_layer(&cl[i]);
    }
    print_table();
    print_load("after");
    dnnl_stream_destroy(g_strm);
    dnnl_engine_destroy(g_eng);
    if (g_fail) {
        printf("FAIL: a result is off by more than its bound (see stderr)\n");
        return 1;
    }
    printf("all results within their bounds\n");
    return 0;
}

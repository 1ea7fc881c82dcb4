/* Hand-written CPU kernels of seglosses (see seglosses/_native.py, which builds and loads this file).

   Region statistics of a softmax over classes with class-index targets, float32 logits x (N, C, S) contiguous,
   targets t (N, S) contiguous of any of the integer types below. A pixel counts when 0 <= t < C and t != ignore
   (has_ignore); the others add nothing and get a zero gradient, whatever their logits (NaN and inf included: their
   values are dropped by selects, never multiplied by a 0/1 mask, as NaN * 0 is NaN). A NaN logit at a pixel that
   counts makes that pixel's probabilities, hence the sums, NaN (as torch's softmax). Labels outside [0, C) that
   are not ignore are counted and the kernels return 2 (the caller raises), after treating them as ignored: no
   label is ever used as an address.

   Forward:  P[n, c] = sum_s p,  T[n, c] = sum_s p [t == c],  G[n, c] = sum_s [t == c],  p = softmax(x[n, :, s])_c.
   Backward: dx[n, c, s] = p_c (a_c + [t == c] m_c - sum_k p_k a_k - p_t m_t) for dL/dP = a, dL/dT = m.

   Pixel weights: W NULL (none), or float32 contiguous (N, WC, S) with WC = 1 (one per pixel) or C (per pixel and
   class): every term of the sums is multiplied by its w (selected to 0 at pixels that do not count: a NaN weight
   there has no effect), and dL/dp_c becomes w_c (a_c + [t == c] m_c) before the softmax's Jacobian.

   Each job is one block of pixels of one image: the logits of the block are read once per pass, the softmax's
   exponentials are computed once per element and kept in a per-thread buffer (C x BLK floats, in L1/L2), sums of
   a block are float32 over at most 512 pixels and then added in double. exp_neg is a vectorizable exponential for
   the softmax's arguments (x - max <= 0); its relative error is below 2 ulp, and it is 0 below -87.3. */

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

static inline float exp_neg(float x) {
    float xc = x > -87.3f ? x : -87.3f; /* (NaN: -87.3, no undefined conversion below; NaN is returned at the end) */
    /* k = round(x / ln 2) by adding and subtracting 1.5 * 2^23 (any SIMD level vectorizes it, unlike roundf) */
    float k = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = xc - k * 0.693359375f; /* ln 2 in two parts (Cody-Waite) */
    r = r - k * -2.12194440e-4f;
    float r2 = r * r;
    float p = 1.9875691500e-4f; /* Cephes expf polynomial */
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r2 + r + 1.0f;
    union { float f; int32_t i; } u;
    u.i = ((int32_t)k + 127) << 23;
    float y = p * u.f;
    return x >= -87.3f ? y : (x < -87.3f ? 0.0f : x);
}

/* pixels per job: C x BLK floats of exponentials stay within 64 KiB per thread */
static int64_t block_of(int64_t C) {
    int64_t b = 16384 / (C > 0 ? C : 1);
    b = b < 32 ? 32 : (b > 512 ? 512 : b);
    return b & ~(int64_t)15;
}

/* Per-thread buffers of a job loop: C x B exponentials and `rows` more rows of B floats, B class indices. Returns 0
   and sets *failed where memory ran out (the thread then skips its jobs: every thread must still meet the omp for). */
static int thread_buffers(int64_t C, int64_t B, int64_t rows, float **e, int32_t **tt, int *failed) {
    *e = (float *)malloc(sizeof(float) * (C + rows) * B);
    *tt = (int32_t *)malloc(sizeof(int32_t) * B);
    int ok = *e != NULL && *tt != NULL;
    if (!ok) {
        #pragma omp atomic write
        *failed = 1;
    }
    return ok;
}

static void release_buffers(float *e, int32_t *tt) {
    free(e);
    free(tt);
}

/* The softmax of one block: e[c * B + s] = exp(x - max) / sum for valid pixels, exactly 0 for the others (their
   exponentials are selected away as they are computed: their logits may be NaN or inf, and NaN * 0 is NaN); tt[s] the
   class or -1. Returns the number of labels outside [0, C) that are not ignore; x points at the block's first pixel
   of class 0 of image n. */
#define SOFTMAX_BLOCK(TT)                                                                                          \
    static int64_t softmax_block_##TT(const float *xn, const TT *tn, int64_t C, int64_t S, int64_t L,                   \
                                   int64_t ignore, int has_ignore, float *e, float *mx, float *inv, int32_t *tt,     \
                                   int64_t B) {                                                                     \
        int64_t bad = 0, nvalid = 0;                                                                                \
        for (int64_t s = 0; s < L; s++) {                                                                           \
            int64_t ts = (int64_t)tn[s];                                                                            \
            int ignored = has_ignore && ts == ignore, valid = !ignored && ts >= 0 && ts < C;                        \
            bad += !ignored && !valid;                                                                              \
            nvalid += valid;                                                                                        \
            tt[s] = valid ? (int32_t)ts : -1;                                                                       \
            mx[s] = -INFINITY;                                                                                      \
            inv[s] = 0.0f;                                                                                          \
        }                                                                                                           \
        for (int64_t c = 0; c < C; c++) {                                                                           \
            const float *xc = xn + c * S;                                                                           \
            _Pragma("omp simd") for (int64_t s = 0; s < L; s++) mx[s] = xc[s] > mx[s] ? xc[s] : mx[s];              \
        }                                                                                                           \
        for (int64_t c = 0; c < C; c++) {                                                                           \
            const float *xc = xn + c * S;                                                                           \
            float *ec = e + c * B;                                                                                  \
            if (nvalid == L) { /* every pixel counts (most blocks): no select, 10-15% faster */                     \
                _Pragma("omp simd") for (int64_t s = 0; s < L; s++) {                                               \
                    float v = exp_neg(xc[s] - mx[s]);                                                               \
                    ec[s] = v;                                                                                      \
                    inv[s] += v;                                                                                    \
                }                                                                                                   \
            } else {                                                                                                \
                _Pragma("omp simd") for (int64_t s = 0; s < L; s++) {                                               \
                    float v = tt[s] >= 0 ? exp_neg(xc[s] - mx[s]) : 0.0f;                                           \
                    ec[s] = v;                                                                                      \
                    inv[s] += v;                                                                                    \
                }                                                                                                   \
            }                                                                                                       \
        }                                                                                                           \
        _Pragma("omp simd") for (int64_t s = 0; s < L; s++) inv[s] = tt[s] >= 0 ? 1.0f / inv[s] : 0.0f;             \
        for (int64_t c = 0; c < C; c++) { /* (ignored pixels: 0 * 0) */                                             \
            float *ec = e + c * B;                                                                                  \
            _Pragma("omp simd") for (int64_t s = 0; s < L; s++) ec[s] *= inv[s];                                    \
        }                                                                                                           \
        return bad;                                                                                                 \
    }

#define REGION_KERNELS(TT)                                                                                         \
    SOFTMAX_BLOCK(TT)                                                                                               \
    int segl_softmax_index_sums_##TT(const float *x, const TT *t, int64_t N, int64_t C, int64_t S, int64_t ignore,  \
                                     int has_ignore, float *P, float *T, float *G, const float *W, int64_t WC,      \
                                     int nthreads) {                                                                \
        int64_t B = block_of(C), nb = (S + B - 1) / B, jobs = N * nb, NC3 = N * C * 3, bad = 0;                    \
        int th = nthreads > 0 ? nthreads : 1;                                                                       \
        if (NC3 == 0) return 0;                                                                                     \
        double *acc = (double *)calloc((size_t)NC3, sizeof(double));                                                \
        int failed = acc == NULL;                                                                                   \
        if (!failed) {                                                                                              \
            _Pragma("omp parallel num_threads(th) reduction(+ : bad)") {                                            \
                /* each thread sums into its own (N, C, 3) doubles, added to acc at the end */                    \
                double *a = (double *)calloc((size_t)NC3, sizeof(double));                                          \
                float *e;                                                                                           \
                int32_t *tt;                                                                                        \
                int ok = thread_buffers(C, B, 2, &e, &tt, &failed) && a != NULL;                                    \
                if (a == NULL) {                                                                                    \
                    _Pragma("omp atomic write") failed = 1;                                                         \
                }                                                                                                   \
                {                                                                                                   \
                    float *mx = e + C * B, *inv = mx + B;                                                           \
                    _Pragma("omp for schedule(static)") for (int64_t job = 0; job < jobs; job++) {                  \
                        if (!ok) continue;                                                                          \
                        int64_t n = job / nb, s0 = (job % nb) * B, L = S - s0 < B ? S - s0 : B;                     \
                        bad += softmax_block_##TT(x + n * C * S + s0, t + n * S + s0, C, S, L, ignore, has_ignore,  \
                                                  e, mx, inv, tt, B);                                               \
                        for (int64_t c = 0; c < C; c++) {                                                           \
                            const float *ec = e + c * B;                                                            \
                            float ps = 0.f, ts = 0.f, gs = 0.f;                                                     \
                            if (W == NULL) {                                                                        \
                                _Pragma("omp simd reduction(+ : ps, ts, gs)") for (int64_t s = 0; s < L; s++) {     \
                                    int h = tt[s] == c;                                                             \
                                    ps += ec[s];                                                                    \
                                    ts += h ? ec[s] : 0.f;                                                          \
                                    gs += h ? 1.f : 0.f;                                                            \
                                }                                                                                   \
                            } else {                                                                                \
                                const float *wc = W + (n * WC + (WC > 1 ? c : 0)) * S + s0;                         \
                                _Pragma("omp simd reduction(+ : ps, ts, gs)") for (int64_t s = 0; s < L; s++) {     \
                                    int h = tt[s] == c;                                                             \
                                    float wv = tt[s] >= 0 ? wc[s] : 0.f, pw = ec[s] * wv;                           \
                                    ps += pw;                                                                       \
                                    ts += h ? pw : 0.f;                                                             \
                                    gs += h ? wv : 0.f;                                                             \
                                }                                                                                   \
                            }                                                                                       \
                            double *ac = a + (n * C + c) * 3;                                                       \
                            ac[0] += ps;                                                                            \
                            ac[1] += ts;                                                                            \
                            ac[2] += gs;                                                                            \
                        }                                                                                           \
                    }                                                                                               \
                }                                                                                                   \
                if (ok) {                                                                                           \
                    _Pragma("omp critical(segl_sums)") for (int64_t i = 0; i < NC3; i++) acc[i] += a[i];            \
                }                                                                                                   \
                free(a);                                                                                            \
                release_buffers(e, tt);                                                                             \
            }                                                                                                       \
        }                                                                                                           \
        if (!failed) {                                                                                              \
            for (int64_t i = 0; i < N * C; i++) {                                                                   \
                P[i] = (float)acc[i * 3];                                                                           \
                T[i] = (float)acc[i * 3 + 1];                                                                       \
                G[i] = (float)acc[i * 3 + 2];                                                                       \
            }                                                                                                       \
        }                                                                                                           \
        free(acc);                                                                                                  \
        return failed ? 1 : (bad ? 2 : 0); /* 2: class indices outside [0, C) that are not ignore */               \
    }                                                                                                               \
    int segl_softmax_index_grad_##TT(const float *x, const TT *t, int64_t N, int64_t C, int64_t S, int64_t ignore,  \
                                     int has_ignore, const float *A, const float *M, float *dx, const float *W,     \
                                     int64_t WC, int nthreads) {                                                    \
        int64_t B = block_of(C), nb = (S + B - 1) / B, jobs = N * nb, bad = 0;                                      \
        int th = nthreads > 0 ? nthreads : 1;                                                                       \
        int failed = 0;                                                                                             \
        _Pragma("omp parallel num_threads(th) reduction(+ : bad)") {                                                \
            float *e;                                                                                               \
            int32_t *tt;                                                                                            \
            int ok = thread_buffers(C, B, 3, &e, &tt, &failed);                                                     \
            {                                                                                                       \
                float *mx = e + C * B, *inv = mx + B, *w = inv + B;                                                 \
                _Pragma("omp for schedule(static)") for (int64_t job = 0; job < jobs; job++) {                      \
                    if (!ok) continue;                                                                              \
                    int64_t n = job / nb, s0 = (job % nb) * B, L = S - s0 < B ? S - s0 : B;                         \
                    const float *an = A + n * C, *mn = M + n * C;                                                   \
                    float *dn = dx + n * C * S + s0;                                                                \
                    bad += softmax_block_##TT(x + n * C * S + s0, t + n * S + s0, C, S, L, ignore, has_ignore, e, mx, \
                                              inv, tt, B);                                                          \
                    for (int64_t s = 0; s < L; s++) w[s] = 0.f;                                                     \
                    if (W == NULL) {                                                                                \
                        for (int64_t c = 0; c < C; c++) { /* w = sum_k p_k a_k + p_t m_t */                         \
                            const float *ec = e + c * B;                                                            \
                            float ac = an[c], mc = mn[c];                                                           \
                            _Pragma("omp simd") for (int64_t s = 0; s < L; s++)                                     \
                                w[s] += ec[s] * (tt[s] == c ? ac + mc : ac);                                        \
                        }                                                                                           \
                        for (int64_t c = 0; c < C; c++) {                                                           \
                            const float *ec = e + c * B;                                                            \
                            float ac = an[c], mc = mn[c], *dc = dn + c * S;                                         \
                            _Pragma("omp simd") for (int64_t s = 0; s < L; s++)                                     \
                                dc[s] = tt[s] >= 0 ? ec[s] * ((tt[s] == c ? ac + mc : ac) - w[s]) : 0.0f;           \
                        }                                                                                           \
                    } else { /* dL/dp_c = w_c (a_c + [t == c] m_c) */                                               \
                        for (int64_t c = 0; c < C; c++) {                                                           \
                            const float *ec = e + c * B, *wc = W + (n * WC + (WC > 1 ? c : 0)) * S + s0;            \
                            float ac = an[c], mc = mn[c];                                                           \
                            _Pragma("omp simd") for (int64_t s = 0; s < L; s++)                                     \
                                w[s] += tt[s] >= 0 ? ec[s] * wc[s] * (tt[s] == c ? ac + mc : ac) : 0.0f;            \
                        }                                                                                           \
                        for (int64_t c = 0; c < C; c++) {                                                           \
                            const float *ec = e + c * B, *wc = W + (n * WC + (WC > 1 ? c : 0)) * S + s0;            \
                            float ac = an[c], mc = mn[c], *dc = dn + c * S;                                         \
                            _Pragma("omp simd") for (int64_t s = 0; s < L; s++)                                     \
                                dc[s] = tt[s] >= 0 ? ec[s] * (wc[s] * (tt[s] == c ? ac + mc : ac) - w[s]) : 0.0f;   \
                        }                                                                                           \
                    }                                                                                               \
                }                                                                                                   \
            }                                                                                                       \
            release_buffers(e, tt);                                                                                 \
        }                                                                                                           \
        return failed ? 1 : (bad ? 2 : 0); /* 2: as the sums (their pixels get a zero gradient) */                  \
    }

REGION_KERNELS(int64_t)
REGION_KERNELS(int32_t)
REGION_KERNELS(int16_t)
REGION_KERNELS(int8_t)
REGION_KERNELS(uint8_t)

/* Lovasz-softmax rows with class indices (seglosses/lovasz.py). q: probabilities (N, C, S) float32; lab: (N, S)
   int16 class indices; valid: (N, S) bytes, 0 at ignored pixels, or NULL (all valid); cols: the K classes of the
   rows. A row is (image n, class j) with per_image (R = N rows of length L = S), else (class j) over the batch
   (R = 1, L = N * S, position i = n * S + s). The error of a pixel is 1 - p on its class, p off it, and -inf where
   ignored: valid 0, or a label outside [0, C) (the caller's -1 at ignored pixels, or labels that were not
   range-checked, as under torch.compile: treated as ignored, as the region kernels do); an ignored pixel sorts last,
   adds 0 and gets a zero derivative whatever its q (a select: NaN there is dropped). Labels are only compared,
   never used as an address; classes outside [0, C) in cols return 2 before anything is read or written.

   keys: each error as a 64-bit key, (32-bit key whose unsigned order is the errors' descending order) << 32 | i,
   sorted by the caller (NumPy); G[r * K + j]: the row's foreground count (exact: int64). */

static inline uint32_t desc_key(float e) {
    union { float f; int32_t i; } u;
    u.f = e;
    u.i = e != e ? 0x7FC00000 : u.i; /* every NaN (x86's are negative) as +NaN: first, as torch.sort puts NaN */
    int32_t m = ~(u.i >> 31) & 0x7FFFFFFF; /* x >= 0: bits ^ 0x7FFFFFFF (larger first); x < 0: bits */
    return (uint32_t)(u.i ^ m);
}

static inline float desc_value(uint32_t k) {
    union { float f; int32_t i; } u;
    int32_t b = (int32_t)k;
    u.i = b ^ (~(b >> 31) & 0x7FFFFFFF); /* the same map, an involution */
    return u.f;
}

int segl_lovasz_index_keys(const float *q, const int16_t *lab, const uint8_t *valid, int64_t N, int64_t C, int64_t S,
                           const int64_t *cols, int64_t K, int per_image, uint64_t *keys, int64_t *G, int nthreads) {
    int64_t R = per_image ? N : 1, L = per_image ? S : N * S;
    int th = nthreads > 0 ? nthreads : 1;
    for (int64_t j = 0; j < K; j++)
        if (cols[j] < 0 || cols[j] >= C) return 2;
    #pragma omp parallel for num_threads(th) schedule(dynamic, 1)
    for (int64_t row = 0; row < R * K; row++) {
        int64_t r = row / K, j = row % K, k = cols[j];
        uint64_t *kr = keys + row * L;
        int64_t count = 0;
        for (int64_t n = per_image ? r : 0; n < (per_image ? r + 1 : N); n++) {
            const float *qn = q + (n * C + k) * S;
            const int16_t *ln = lab + n * S;
            const uint8_t *vn = valid == NULL ? NULL : valid + n * S;
            uint64_t *kn = kr + (per_image ? 0 : n * S);
            uint64_t base = per_image ? 0 : (uint64_t)(n * S);
            int64_t cn = 0;
            #pragma omp simd reduction(+ : cn)
            for (int64_t s = 0; s < S; s++) {
                int ok = (vn == NULL || vn[s]) && ln[s] >= 0 && ln[s] < C;
                int hit = ok && ln[s] == k;
                float e = ok ? (hit ? 1.0f - qn[s] : qn[s]) : -INFINITY;
                kn[s] = ((uint64_t)desc_key(e) << 32) | (base + (uint64_t)s);
                cn += hit;
            }
            count += cn;
        }
        G[row] = count;
    }
    return 0;
}

/* After the sort: each row's Lovasz loss sum_i max(e_i, 0) (J_i - J_{i-1}), J_i = i / (G - c_i + i) with c_i the
   foreground count of the first i sorted pixels, and the loss's derivative in q for a unit upstream gradient,
   unit[n, j, s] = (J_i - J_{i-1}) [e_i > 0] (-1 on the pixel's class, +1 off it), in one pass over the sorted keys.
   Ignored pixels (-inf, sorted last; never counted as the class, whatever their label) add nothing and get 0; a NaN
   error (a NaN probability at a valid pixel) makes the loss NaN, as in the torch path. A key whose position is
   outside the row (not written by segl_lovasz_index_keys) is skipped and returns 2: nothing out of bounds. */
int segl_lovasz_index_scan(const uint64_t *keys, const int16_t *lab, int64_t N, int64_t S, const int64_t *cols,
                           int64_t K, int per_image, const int64_t *G, float *loss, float *unit, int nthreads) {
    int64_t R = per_image ? N : 1, L = per_image ? S : N * S, bad = 0;
    int th = nthreads > 0 ? nthreads : 1;
    #pragma omp parallel for num_threads(th) schedule(dynamic, 1) reduction(+ : bad)
    for (int64_t row = 0; row < R * K; row++) {
        int64_t r = row / K, j = row % K, k = cols[j];
        const uint64_t *kr = keys + row * L;
        double g = (double)G[row], cum = 0.0, prev = 0.0, acc = 0.0;
        for (int64_t i = 0; i < L; i++) {
            uint64_t key = kr[i];
            uint64_t pos = key & 0xFFFFFFFFu;
            float e = desc_value((uint32_t)(key >> 32));
            if (pos >= (uint64_t)L) { /* not a position of this row (and below, pos < L: S > 0) */
                bad++;
                continue;
            }
            int64_t n = per_image ? r : (int64_t)(pos / (uint64_t)S), s = per_image ? (int64_t)pos : (int64_t)(pos % (uint64_t)S);
            int hit = e != -INFINITY && lab[n * S + s] == k;
            cum += hit;
            double jac = (double)(i + 1) / (g - cum + (double)(i + 1));
            double d = jac - prev;
            prev = jac;
            float dq = 0.0f;
            if (!(e <= 0.0f)) { /* e > 0, or NaN */
                acc += (double)e * d;
                dq = (float)(hit ? -d : d);
            }
            unit[(n * K + j) * S + s] = dq;
        }
        loss[row] = (float)acc;
    }
    return bad ? 2 : 0;
}

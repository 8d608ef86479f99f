/* The runtime support a library built by `kiln build` links in place of Kiln's own (see
 * src/codegen/library.rs): the step compiled by Cranelift calls these symbols, as the JIT's step
 * calls the Rust functions of src/codegen/support.rs. `kiln build` compiles this file with the
 * system's C compiler for the building machine (-O3 -march=native) and without contracting
 * multiplies and adds into FMAs (-ffp-contract=off), so that every product computes exactly what
 * the emitted Cranelift kernel computes: each output element its own sum over k in order,
 * acc = acc + a·b, starting from zero. Only the order the tiles are visited in and their width
 * differ, which changes no result.
 *
 * The definitions are weak so that two Kiln libraries linked into one program share them.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Rust's `ln` and `powf` on f32 are libm's `logf` and `powf`. */
__attribute__((weak, visibility("hidden"))) float kiln_logf(float x) { return logf(x); }

__attribute__((weak, visibility("hidden"))) float kiln_powf(float x, float y) { return powf(x, y); }

/* One vector register of floats: 16 with AVX-512 (32 registers, so a 4×48 tile fits), else 8
 * (AVX2's 16 registers take a 4×16 tile; without AVX the compiler splits the vector); and half
 * of one, for the columns left over. */
#ifdef __AVX512F__
#define LANES 16
#define ROW_VECTORS 3
#else
#define LANES 8
#define ROW_VECTORS 2
#endif
#define HALF (LANES / 2)
typedef float vec __attribute__((vector_size(LANES * 4)));
typedef float half __attribute__((vector_size(HALF * 4)));

/* c[R × W·NV] = a[R × k] · b[k × W·NV] in vectors of type T (W floats), b with unit column
 * stride; R and NV are constants at each call, so the accumulators live in registers. */
#define DEFINE_TILE(NAME, T, W)                                                               \
    static inline __attribute__((always_inline)) void NAME(                                   \
        const int R, const int NV, int64_t k, float *c, int64_t n, const float *a,            \
        int64_t a_rs, int64_t a_cs, const float *b, int64_t b_rs) {                           \
        T acc[4][8];                                                                          \
        for (int r = 0; r < R; r++)                                                           \
            for (int v = 0; v < NV; v++) acc[r][v] = (T){0};                                  \
        for (int64_t p = 0; p < k; p++) {                                                     \
            T bv[8];                                                                          \
            for (int v = 0; v < NV; v++) memcpy(&bv[v], b + p * b_rs + W * v, sizeof(T));    \
            for (int r = 0; r < R; r++) {                                                     \
                float x = a[r * a_rs + p * a_cs];                                             \
                for (int v = 0; v < NV; v++) acc[r][v] = acc[r][v] + x * bv[v];               \
            }                                                                                 \
        }                                                                                     \
        for (int r = 0; r < R; r++)                                                           \
            for (int v = 0; v < NV; v++) memcpy(c + r * n + W * v, &acc[r][v], sizeof(T));    \
    }

DEFINE_TILE(tile, vec, LANES)
DEFINE_TILE(half_tile, half, HALF)

/* The last `cols` (< HALF) columns of R rows, one column at a time with its R sums in flight
 * together (in registers: R is a constant at each call). */
static inline __attribute__((always_inline)) void tail(const int R, int64_t cols, int64_t k,
                                                       float *c, int64_t n, const float *a,
                                                       int64_t a_rs, int64_t a_cs,
                                                       const float *b, int64_t b_rs) {
    for (int64_t j = 0; j < cols; j++) {
        float acc[4] = {0};
        for (int64_t p = 0; p < k; p++) {
            float y = b[p * b_rs + j];
            for (int r = 0; r < R; r++) acc[r] = acc[r] + a[r * a_rs + p * a_cs] * y;
        }
        for (int r = 0; r < R; r++) c[r * n + j] = acc[r];
    }
}

/* One element, the same sum one multiply and add at a time. */
static inline float element(int64_t k, const float *a, int64_t a_cs, const float *b,
                            int64_t b_rs) {
    float acc = 0.0f;
    for (int64_t p = 0; p < k; p++) acc = acc + a[p * a_cs] * b[p * b_rs];
    return acc;
}

/* Columns 0..n of R rows (R = 4 or 1) at row i, in the widest tiles that fit: ROW_VECTORS
 * vectors for 4 rows; for one row 8, then 4 vectors, so that at batch 1 (a matrix-vector
 * product) several independent sums hide the adds' latency; then one vector, half a vector,
 * and the last columns together. */
#define ROWS(R, ...)                                                                          \
    do {                                                                                      \
        const float *ai = a + i * a_rs;                                                       \
        float *ci = dst + i * n;                                                              \
        const int widths[] = {__VA_ARGS__, 1};                                                \
        j = 0;                                                                                \
        for (size_t w = 0; w < sizeof widths / sizeof widths[0]; w++)                         \
            for (; j + LANES * widths[w] <= n; j += LANES * widths[w]) switch (widths[w]) {   \
                case 8: tile(R, 8, k, ci + j, n, ai, a_rs, a_cs, b + j, b_rs); break;         \
                case 4: tile(R, 4, k, ci + j, n, ai, a_rs, a_cs, b + j, b_rs); break;         \
                case 3: tile(R, 3, k, ci + j, n, ai, a_rs, a_cs, b + j, b_rs); break;         \
                case 2: tile(R, 2, k, ci + j, n, ai, a_rs, a_cs, b + j, b_rs); break;         \
                default: tile(R, 1, k, ci + j, n, ai, a_rs, a_cs, b + j, b_rs); break;        \
                }                                                                             \
        if (j + HALF <= n) {                                                                  \
            half_tile(R, 1, k, ci + j, n, ai, a_rs, a_cs, b + j, b_rs);                       \
            j += HALF;                                                                        \
        }                                                                                     \
        if (j < n) tail(R, n - j, k, ci + j, n, ai, a_rs, a_cs, b + j, b_rs);                 \
    } while (0)

/* dst[m×n] (row-major) = op(a)[m×k] · op(b)[k×n], the operands given by row and column strides
 * in elements: the signature of src/codegen/gemm.rs's kiln_sgemm. */
__attribute__((weak, visibility("hidden"))) void kiln_sgemm(int64_t m, int64_t n, int64_t k,
                                                            float *dst, const float *a,
                                                            int64_t a_rs, int64_t a_cs,
                                                            const float *b, int64_t b_rs,
                                                            int64_t b_cs) {
    if (m <= 0 || n <= 0) return;
    int64_t i = 0, j;
    if (b_cs == 1) {
        for (; i + 4 <= m; i += 4) ROWS(4, ROW_VECTORS);
        for (; i < m; i++) ROWS(1, 8, 4);
        return;
    }
    for (; i < m; i++)
        for (j = 0; j < n; j++)
            dst[i * n + j] = element(k, a + i * a_rs, a_cs, b + j * b_cs, b_rs);
}

/* The windowed ops of src/codegen/window.rs that inference runs (`unfold`, the patches of a
 * convolution, and max and mean pooling), over channels-last samples, by the same rules:
 * `WindowOp`'s codes, `Plane::source` for where a tap reads (None in the padding), taps in
 * row-major order, a mean the sum of the taps inside in that order divided by their count, a
 * maximum that lets a NaN through. Gradients (`fold`, the pooling gradients) are training's
 * and have no library counterpart: `library.rs` refuses a graph that holds one. */
enum { WINDOW_UNFOLD = 0, WINDOW_MAX_POOL = 2, WINDOW_MEAN_POOL = 3 };

/* Where tap k of output position o reads along one axis, or -1 in the padding. */
static inline int64_t window_source(int64_t o, int64_t k, int64_t stride, int64_t dilation,
                                    int64_t pad, int64_t input) {
    int64_t v = o * stride + k * dilation - pad;
    return v >= 0 && v < input ? v : -1;
}

static inline int beats(float v, float best) { return (v > best || isnan(v)) && !isnan(best); }

__attribute__((weak, visibility("hidden"))) void kiln_window(
    int64_t op, const float *x, const float *y, const float *dy, float *dst, int64_t batch,
    int64_t ih, int64_t iw, int64_t c, int64_t oh, int64_t ow, int64_t kh, int64_t kw,
    int64_t sh, int64_t sw, int64_t dh, int64_t dw, int64_t ph, int64_t pw) {
    (void)y;
    (void)dy;
    const int64_t taps = kh * kw, in_len = ih * iw * c;
    const int64_t out_len = op == WINDOW_UNFOLD ? oh * ow * taps * c : oh * ow * c;
    for (int64_t b = 0; b < batch; b++) {
        const float *xs = x + b * in_len;
        float *out = dst + b * out_len;
        for (int64_t oy = 0; oy < oh; oy++)
            for (int64_t ox = 0; ox < ow; ox++) {
                const int64_t position = oy * ow + ox;
                float *d = out + (op == WINDOW_UNFOLD ? position * taps * c : position * c);
                int64_t inside = 0;
                if (op == WINDOW_MEAN_POOL)
                    for (int64_t ch = 0; ch < c; ch++) d[ch] = 0.0f;
                for (int64_t ky = 0; ky < kh; ky++)
                    for (int64_t kx = 0; kx < kw; kx++) {
                        const int64_t sy = window_source(oy, ky, sh, dh, ph, ih);
                        const int64_t sx = window_source(ox, kx, sw, dw, pw, iw);
                        const float *s = sy < 0 || sx < 0 ? NULL : xs + (sy * iw + sx) * c;
                        if (op == WINDOW_UNFOLD) {
                            float *t = d + (ky * kw + kx) * c;
                            for (int64_t ch = 0; ch < c; ch++) t[ch] = s ? s[ch] : 0.0f;
                            continue;
                        }
                        if (!s) continue;
                        if (op == WINDOW_MAX_POOL)
                            for (int64_t ch = 0; ch < c; ch++)
                                d[ch] = inside == 0 || beats(s[ch], d[ch]) ? s[ch] : d[ch];
                        else
                            for (int64_t ch = 0; ch < c; ch++) d[ch] = d[ch] + s[ch];
                        inside++;
                    }
                if (op == WINDOW_MEAN_POOL) {
                    const float n = (float)(inside > 0 ? inside : 1);
                    for (int64_t ch = 0; ch < c; ch++) d[ch] = d[ch] / n;
                }
            }
    }
}

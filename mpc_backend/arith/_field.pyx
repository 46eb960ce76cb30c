# cython: language_level=3
"""Compiled GF(2^61 - 1) kernels over contiguous uint64 buffers.

The loops are C in the block below so that each can carry GCC's `target_clones`:
one binary holds AVX-512, AVX2 and baseline versions and the dynamic loader picks
the one for the CPU. Products are built from 32-bit limbs, which vectorise (4x
vpmullq per product), where `unsigned __int128` keeps the loop scalar: 1.3 ns vs
0.3 ns per element measured. Every kernel runs without the GIL and folds the
canonical-input check into its single pass: it ORs `x | (x + 1)` over its inputs,
which has a bit >= 61 set iff some x >= p. Callers have checked dtype and shape.
"""

from libc.stdint cimport uint64_t
from libc.stdlib cimport free, malloc

cdef extern from *:
    """
    #include <stdint.h>
    #if defined(__SSE2__)
    #  include <emmintrin.h>
    #endif

    /* Streaming kernels stay at 256 bits: GCC re-reads each input from memory for every
       use, and unaligned 512-bit re-reads halve throughput. Multiplying kernels are
       compute-bound and gain from AVX-512DQ's vpmullq. */
    #if defined(__x86_64__) && defined(__GLIBC__) && !defined(__clang__) && __GNUC__ >= 11
    #  define HF_STREAM __attribute__((target_clones("avx2", "default")))
    #  define HF_MULTIPLY __attribute__((target_clones("arch=x86-64-v4", "avx2", "default")))
    #endif
    #ifndef HF_STREAM
    #  define HF_STREAM
    #  define HF_MULTIPLY
    #endif

    #define HF_P ((uint64_t)0x1FFFFFFFFFFFFFFFull)
    #define HF_M32 ((uint64_t)0xFFFFFFFFull)
    /* Columns per block: a block of output stays in L1 while rows stream past it. */
    #define HF_BLOCK ((Py_ssize_t)1024)
    #define HF_INLINE static inline __attribute__((always_inline))

    static inline Py_ssize_t hf_min(Py_ssize_t a, Py_ssize_t b) { return a < b ? a : b; }

    /* Elements before p's first 64-byte boundary (at most n). Starting the vector loop
       there keeps its loads from straddling cache lines (numpy arrays sit at 16 mod 64). */
    static inline Py_ssize_t hf_head(const uint64_t *p, Py_ssize_t n) {
        return hf_min((Py_ssize_t)((-(uintptr_t)p & 63) / 8), n);
    }

    /* s < 2p  ->  s mod p */
    static inline uint64_t hf_canon(uint64_t s) {
        uint64_t d = s - HF_P;
        return d < s ? d : s;
    }

    /* any s  ->  value < p + 8 congruent to s, because 2^61 = 1 (mod p) */
    static inline uint64_t hf_fold(uint64_t s) {
        return (s & HF_P) + (s >> 61);
    }

    /* x < 2^61 given as limbs x0 = x mod 2^32, x1 = x >> 32; y < 2^62.
       Returns a value < p + 8 congruent to x*y: 2^64 = 8 and 2^61 = 1 (mod p). */
    static inline uint64_t hf_mul_lazy(uint64_t x0, uint64_t x1, uint64_t y) {
        uint64_t y0 = y & HF_M32, y1 = y >> 32;
        uint64_t lo = x0 * y0, mid = x1 * y0 + x0 * y1, hi = x1 * y1;
        return hf_fold((hi << 3) + (mid >> 29) + ((mid << 32) & HF_P) + hf_fold(lo));
    }

    /* hf_mul_lazy when x < 2^32 (x1 = 0): two products instead of four. Share
       x-coordinates are small, so Horner evaluation mostly takes this path. */
    static inline uint64_t hf_mul_by(uint64_t x0, uint64_t x1, uint64_t y) {
        if (x1) return hf_mul_lazy(x0, x1, y);
        uint64_t lo = x0 * (y & HF_M32), mid = x0 * (y >> 32);
        return hf_fold((mid >> 29) + ((mid << 32) & HF_P) + hf_fold(lo));
    }

    HF_STREAM static int hf_add(const uint64_t *restrict a, const uint64_t *restrict b,
                                uint64_t *restrict out, Py_ssize_t n) {
        uint64_t bad = 0;
        for (Py_ssize_t i = 0; i < n; i++) {
            uint64_t x = a[i], y = b[i];
            bad |= x | (x + 1) | y | (y + 1);
            out[i] = hf_canon(x + y);
        }
        return (bad >> 61) != 0;
    }

    HF_STREAM static int hf_sub(const uint64_t *restrict a, const uint64_t *restrict b,
                                uint64_t *restrict out, Py_ssize_t n) {
        uint64_t bad = 0;
        for (Py_ssize_t i = 0; i < n; i++) {
            uint64_t x = a[i], y = b[i];
            bad |= x | (x + 1) | y | (y + 1);
            out[i] = hf_canon(x + (HF_P - y));
        }
        return (bad >> 61) != 0;
    }

    HF_STREAM static int hf_neg(const uint64_t *restrict a, uint64_t *restrict out, Py_ssize_t n) {
        uint64_t bad = 0;
        for (Py_ssize_t i = 0; i < n; i++) {
            uint64_t x = a[i];
            bad |= x | (x + 1);
            out[i] = hf_canon(HF_P - x);
        }
        return (bad >> 61) != 0;
    }

    static inline uint64_t hf_mul_run(const uint64_t *restrict a, const uint64_t *restrict b,
                                      uint64_t *restrict out, Py_ssize_t n) {
        uint64_t bad = 0;
        for (Py_ssize_t i = 0; i < n; i++) {
            uint64_t x = a[i], y = b[i];
            bad |= x | (x + 1) | y | (y + 1);
            out[i] = hf_canon(hf_mul_lazy(x & HF_M32, x >> 32, y));
        }
        return bad;
    }

    HF_MULTIPLY static int hf_mul(const uint64_t *a, const uint64_t *b, uint64_t *out,
                                  Py_ssize_t n) {
        Py_ssize_t h = hf_head(a, n);
        uint64_t bad = hf_mul_run(a, b, out, h) | hf_mul_run(a + h, b + h, out + h, n - h);
        return (bad >> 61) != 0;
    }

    /* c must be canonical (checked by the caller, it is a single Python int). */
    HF_MULTIPLY static int hf_scale(const uint64_t *restrict a, uint64_t c,
                                    uint64_t *restrict out, Py_ssize_t n) {
        uint64_t bad = 0, c0 = c & HF_M32, c1 = c >> 32;
        for (Py_ssize_t i = 0; i < n; i++) {
            uint64_t x = a[i];
            bad |= x | (x + 1);
            out[i] = hf_canon(hf_mul_lazy(c0, c1, x));
        }
        return (bad >> 61) != 0;
    }

    /* out[i] = sum_j x[j, i] for a C-contiguous (m, n) x, m >= 1. */
    HF_STREAM static int hf_sum_rows(const uint64_t *restrict x, Py_ssize_t m, Py_ssize_t n,
                                     uint64_t *restrict out) {
        uint64_t bad = 0;
        for (Py_ssize_t i0 = 0; i0 < n; i0 += HF_BLOCK) {
            Py_ssize_t len = hf_min(HF_BLOCK, n - i0);
            uint64_t *o = out + i0;
            const uint64_t *r = x + i0;
            for (Py_ssize_t i = 0; i < len; i++) {
                uint64_t v = r[i];
                bad |= v | (v + 1);
                o[i] = v;
            }
            for (Py_ssize_t j = 1; j < m; j++) {
                r = x + j * n + i0;
                for (Py_ssize_t i = 0; i < len; i++) {
                    uint64_t v = r[i];
                    bad |= v | (v + 1);
                    o[i] = hf_canon(o[i] + v);
                }
            }
        }
        return (bad >> 61) != 0;
    }

    /* Shamir sharing works through the secrets a tile at a time, so that everything but
       the output stays in L1. The tile's coefficients come as raw keystream words, secret
       i's coefficient of x^m (m = 1..T) in word i*T + m - 1; hf_share_prep masks them into
       rows C[m - 1][i]. With xs = 1..k (the default) and T <= 4, the shares are f(1..k),
       which forward differences give with additions only: row j + 1 is row j plus the first
       differences, which are updated likewise (0.9 ns per 2-of-5 secret in cache, where
       Horner's rule takes 2.1). Otherwise Horner's rule. Every loop runs over i innermost,
       which is what GCC vectorises (with vpminuq for hf_canon). */

    #define HF_TILE ((Py_ssize_t)512)  /* secrets per tile; 128-1024 measured, 512 best */
    /* Outputs from this size on are written with streaming stores (hf_emit). Measured on a
       32 MiB L3: below it, plain stores win once the caller reads the shares back. */
    #define HF_STREAM_BYTES ((Py_ssize_t)1 << 24)
    #if defined(__SSE2__)
    #  define HF_CAN_STREAM 1
    #else
    #  define HF_CAN_STREAM 0
    #endif

    /* canonical a, b  ->  a + b mod p */
    static inline uint64_t hf_addc(uint64_t a, uint64_t b) { return hf_canon(a + b); }

    /* K c mod p for canonical c and a constant K >= 1 (a literal once inlined). */
    HF_INLINE uint64_t hf_times(uint64_t c, unsigned K) {
        uint64_t r = c;
        _Pragma("GCC unroll 8")
        for (int b = 30 - __builtin_clz(K); b >= 0; b--) {
            r = hf_addc(r, r);
            if ((K >> b) & 1) r = hf_addc(r, c);
        }
        return r;
    }

    /* HF_DIFF[m][i]: the m-th forward difference (step 1) of x^i at x = 1, which is
       m! S(i + 1, m + 1) with S the Stirling numbers of the second kind; zero for i < m.
       So Delta^m f(1) = sum_i HF_DIFF[m][i] c_i for f = sum_i c_i x^i. */
    static const unsigned char HF_DIFF[5][5] = {
        {1, 1, 1, 1, 1},
        {0, 1, 3, 7, 15},
        {0, 0, 2, 12, 50},
        {0, 0, 0, 6, 60},
        {0, 0, 0, 0, 24},
    };

    /* C[m][i] = w[i*T + m] & p; ORs c + 1 into *hit, whose bit 61 is then set iff some
       c = p, a draw the caller must reject. */
    HF_INLINE void hf_share_prep(const uint64_t *restrict w, const Py_ssize_t T, Py_ssize_t len,
                                 uint64_t *restrict C, uint64_t *restrict hit) {
        uint64_t h = 0;
        for (Py_ssize_t i = 0; i < len; i++) {
            _Pragma("GCC unroll 4")
            for (Py_ssize_t m = 0; m < T; m++) {
                uint64_t c = w[i * T + m] & HF_P;
                h |= c + 1;
                C[m * HF_TILE + i] = c;
            }
        }
        *hit |= h;
    }

    /* Row 0 = f(1) into o, and the differences Delta^m f(1), m = 1..T, into rows D[m - 1]. */
    HF_INLINE void hf_share_diff_init(const uint64_t *restrict s, const uint64_t *restrict C,
                                      const Py_ssize_t T, Py_ssize_t len, uint64_t *restrict o,
                                      uint64_t *restrict D, uint64_t *restrict bad) {
        uint64_t b = 0;
        for (Py_ssize_t i = 0; i < len; i++) {
            uint64_t c[5];
            c[0] = s[i];
            b |= c[0] | (c[0] + 1);
            _Pragma("GCC unroll 4")
            for (Py_ssize_t m = 1; m <= T; m++) c[m] = C[(m - 1) * HF_TILE + i];
            _Pragma("GCC unroll 5")
            for (Py_ssize_t m = 0; m <= T; m++) {
                uint64_t d = c[T];  /* every HF_DIFF[m][T] is nonzero */
                if (HF_DIFF[m][T] != 1) d = hf_times(d, HF_DIFF[m][T]);
                _Pragma("GCC unroll 4")
                for (Py_ssize_t e = m; e < T; e++) {
                    if (HF_DIFF[m][e] == 1) d = hf_addc(d, c[e]);
                    else if (HF_DIFF[m][e]) d = hf_addc(d, hf_times(c[e], HF_DIFF[m][e]));
                }
                if (m == 0) o[i] = d;
                else D[(m - 1) * HF_TILE + i] = d;
            }
        }
        *bad |= b;
    }

    /* Row j + 1 from row j (prev): add the first differences, then advance the differences
       unless this is the last row. */
    HF_INLINE void hf_share_diff_step(const uint64_t *restrict prev, uint64_t *restrict D,
                                      const Py_ssize_t T, Py_ssize_t len, const int last,
                                      uint64_t *restrict o) {
        for (Py_ssize_t i = 0; i < len; i++) {
            o[i] = hf_addc(prev[i], D[i]);
            if (!last) {
                _Pragma("GCC unroll 3")
                for (Py_ssize_t m = 0; m + 1 < T; m++)
                    D[m * HF_TILE + i] = hf_addc(D[m * HF_TILE + i], D[(m + 1) * HF_TILE + i]);
            }
        }
    }

    /* One row by Horner's rule: o[i] = s[i] + sum_m C[m - 1][i] x^m, x < 2^61 given as
       limbs x0, x1; small (a literal) says x1 = 0. The running value lives in o and stays
       below 2p + 7, where the limb products cannot overflow. */
    HF_INLINE void hf_share_horner_row(const uint64_t *restrict s, const uint64_t *restrict C,
                                       Py_ssize_t T, uint64_t x0, uint64_t x1, const int small,
                                       Py_ssize_t len, uint64_t *restrict o,
                                       uint64_t *restrict bad) {
        uint64_t b = 0;
        const uint64_t *acc = C + (T - 1) * HF_TILE;
        for (Py_ssize_t m = T - 2; m >= 0; m--) {
            const uint64_t *c = C + m * HF_TILE;
            for (Py_ssize_t i = 0; i < len; i++)
                o[i] = (small ? hf_mul_by(x0, 0, acc[i]) : hf_mul_lazy(x0, x1, acc[i])) + c[i];
            acc = o;
        }
        for (Py_ssize_t i = 0; i < len; i++) {
            uint64_t v = s[i];
            b |= v | (v + 1);
            o[i] = hf_canon(hf_fold((small ? hf_mul_by(x0, 0, acc[i])
                                           : hf_mul_lazy(x0, x1, acc[i])) + v));
        }
        *bad |= b;
    }

    /* Copy a finished row of a tile to its place in the output with streaming
       (non-temporal) stores, which skip reading each output line into the cache before
       overwriting it and leave the cache to the working set: 1.4 instead of 3.2 ns per 2-of-5
       secret into a reused 40 MB output. SSE2's 16-byte form is in every x86-64. */
    HF_INLINE void hf_emit(uint64_t *restrict dst, const uint64_t *restrict src, Py_ssize_t len) {
    #if HF_CAN_STREAM
        Py_ssize_t i = 0;
        if ((uintptr_t)dst & 15) dst[i] = src[i], i++;
        for (; i + 8 <= len; i += 8) {  /* a cache line per step */
            __m128i a = _mm_loadu_si128((const __m128i *)(src + i));
            __m128i b = _mm_loadu_si128((const __m128i *)(src + i + 2));
            __m128i c = _mm_loadu_si128((const __m128i *)(src + i + 4));
            __m128i d = _mm_loadu_si128((const __m128i *)(src + i + 6));
            _mm_stream_si128((__m128i *)(dst + i), a);
            _mm_stream_si128((__m128i *)(dst + i + 2), b);
            _mm_stream_si128((__m128i *)(dst + i + 4), c);
            _mm_stream_si128((__m128i *)(dst + i + 6), d);
        }
        for (; i < len; i++) dst[i] = src[i];
    #else
        __builtin_memcpy(dst, src, len * sizeof *dst);  /* not called: stream stays 0 */
    #endif
    }

    HF_INLINE void hf_share_tiles(const uint64_t *restrict s, const uint64_t *restrict w,
                                  const Py_ssize_t T, const uint64_t *restrict xs, Py_ssize_t k,
                                  const int diff, const int stream, Py_ssize_t len,
                                  uint64_t *restrict out, Py_ssize_t stride,
                                  uint64_t *restrict bad, uint64_t *restrict hit,
                                  uint64_t *restrict C) {
        uint64_t *D = C + T * HF_TILE, *row[2] = {D + T * HF_TILE, D + (T + 1) * HF_TILE};
        for (Py_ssize_t i0 = 0; i0 < len; i0 += HF_TILE) {
            Py_ssize_t tl = hf_min(HF_TILE, len - i0);
            const uint64_t *si = s + i0;
            hf_share_prep(w + i0 * T, T, tl, C, hit);
            for (Py_ssize_t j = 0; j < k; j++) {
                /* Streamed rows are built in L1 and copied out; others built in place. */
                uint64_t *o = stream ? row[j & 1] : out + j * stride + i0;
                if (diff && j == 0)
                    hf_share_diff_init(si, C, T, tl, o, D, bad);
                else if (diff) {
                    const uint64_t *prev = stream ? row[(j - 1) & 1] : o - stride;
                    if (j + 1 < k)
                        hf_share_diff_step(prev, D, T, tl, 0, o);
                    else
                        hf_share_diff_step(prev, D, T, tl, 1, o);
                } else if (xs[j] >> 32)
                    hf_share_horner_row(si, C, T, xs[j] & HF_M32, xs[j] >> 32, 0, tl, o, bad);
                else
                    hf_share_horner_row(si, C, T, xs[j], 0, 1, tl, o, bad);
                if (stream) hf_emit(out + j * stride + i0, o, tl);
            }
        }
    #if HF_CAN_STREAM
        if (stream) _mm_sfence();  /* order the streamed rows before anything that follows */
    #endif
    }

    /* Shares of len secrets s at the k canonical points xs into rows stride apart, from
       len * t keystream words w, using (2t + 2) * HF_TILE words of scratch C. diff says
       xs = 1..k; stream, to write rows with streaming stores (needs HF_CAN_STREAM).
       Returns nonzero if a masked word equals p (the caller rejects it and recomputes);
       ORs the secrets' canonical check into *bad. T is a literal in each case below, so
       each copy is unrolled for its degree. */
    HF_MULTIPLY static int hf_share(const uint64_t *s, const uint64_t *w, Py_ssize_t t,
                                    const uint64_t *xs, Py_ssize_t k, int diff, int stream,
                                    Py_ssize_t len, uint64_t *out, Py_ssize_t stride,
                                    uint64_t *bad, uint64_t *C) {
        uint64_t hit = 0;
        #define HF_SHARE_TILES(T, diff) \
            hf_share_tiles(s, w, T, xs, k, diff, stream, len, out, stride, bad, &hit, C)
        switch (t) {
            case 1: HF_SHARE_TILES(1, diff); break;
            case 2: HF_SHARE_TILES(2, diff); break;
            case 3: HF_SHARE_TILES(3, diff); break;
            case 4: HF_SHARE_TILES(4, diff); break;
            default: HF_SHARE_TILES(t, 0);  /* HF_DIFF stops at degree 4 */
        }
        #undef HF_SHARE_TILES
        return (hit >> 61) != 0;
    }

    /* out[i] = sum_j coef[j] * rows[j][i], m >= 1; coef canonical (computed by the library). */
    HF_MULTIPLY static int hf_lincomb(const uint64_t *const *rows, const uint64_t *restrict coef,
                                      Py_ssize_t m, Py_ssize_t n, uint64_t *restrict out) {
        uint64_t bad = 0;
        Py_ssize_t len;
        for (Py_ssize_t i0 = 0; i0 < n; i0 += len) {
            len = i0 ? hf_min(HF_BLOCK, n - i0) : hf_head(rows[0], n);
            if (len == 0) len = hf_min(HF_BLOCK, n);
            uint64_t *o = out + i0;
            for (Py_ssize_t j = 0; j < m; j++) {
                uint64_t c0 = coef[j] & HF_M32, c1 = coef[j] >> 32;
                const uint64_t *restrict r = rows[j] + i0;
                if (j == 0) {
                    for (Py_ssize_t i = 0; i < len; i++) {
                        uint64_t v = r[i];
                        bad |= v | (v + 1);
                        o[i] = hf_mul_lazy(c0, c1, v);
                    }
                } else {
                    for (Py_ssize_t i = 0; i < len; i++) {
                        uint64_t v = r[i];
                        bad |= v | (v + 1);
                        o[i] = hf_fold(o[i] + hf_mul_lazy(c0, c1, v));
                    }
                }
            }
            for (Py_ssize_t i = 0; i < len; i++) o[i] = hf_canon(o[i]);
        }
        return (bad >> 61) != 0;
    }

    /* Keep the low 61 bits of each word in place; count words that became p (to be rejected). */
    HF_STREAM static Py_ssize_t hf_mask61(uint64_t *restrict w, Py_ssize_t n) {
        Py_ssize_t hits = 0;
        for (Py_ssize_t i = 0; i < n; i++) {
            uint64_t v = w[i] & HF_P;
            w[i] = v;
            hits += v == HF_P;
        }
        return hits;
    }
    """
    int hf_add(const uint64_t *a, const uint64_t *b, uint64_t *out, Py_ssize_t n) nogil
    int hf_sub(const uint64_t *a, const uint64_t *b, uint64_t *out, Py_ssize_t n) nogil
    int hf_neg(const uint64_t *a, uint64_t *out, Py_ssize_t n) nogil
    int hf_mul(const uint64_t *a, const uint64_t *b, uint64_t *out, Py_ssize_t n) nogil
    int hf_scale(const uint64_t *a, uint64_t c, uint64_t *out, Py_ssize_t n) nogil
    int hf_sum_rows(const uint64_t *x, Py_ssize_t m, Py_ssize_t n, uint64_t *out) nogil
    int hf_share(const uint64_t *s, const uint64_t *w, Py_ssize_t t, const uint64_t *xs,
                 Py_ssize_t k, int diff, int stream, Py_ssize_t len, uint64_t *out,
                 Py_ssize_t stride, uint64_t *bad, uint64_t *C) nogil
    Py_ssize_t HF_TILE, HF_STREAM_BYTES
    int HF_CAN_STREAM
    int hf_lincomb(const uint64_t **rows, const uint64_t *coef, Py_ssize_t m, Py_ssize_t n,
                   uint64_t *out) nogil
    Py_ssize_t hf_mask61(uint64_t *w, Py_ssize_t n) nogil


cdef inline void _same_length(Py_ssize_t n, Py_ssize_t other) except *:
    # Last line of defence against out-of-bounds access; the public wrappers say more.
    if other != n:
        raise ValueError(f"kernel length mismatch: {other} != {n}")


def add(const uint64_t[::1] a, const uint64_t[::1] b, uint64_t[::1] out) -> bool:
    """out = a + b mod p; returns True if an input was not canonical (out is then garbage)."""
    cdef Py_ssize_t n = a.shape[0]
    cdef int bad
    _same_length(n, b.shape[0])
    _same_length(n, out.shape[0])
    with nogil:
        bad = hf_add(&a[0], &b[0], &out[0], n)
    return bad != 0


def sub(const uint64_t[::1] a, const uint64_t[::1] b, uint64_t[::1] out) -> bool:
    """out = a - b mod p; returns True if an input was not canonical."""
    cdef Py_ssize_t n = a.shape[0]
    cdef int bad
    _same_length(n, b.shape[0])
    _same_length(n, out.shape[0])
    with nogil:
        bad = hf_sub(&a[0], &b[0], &out[0], n)
    return bad != 0


def neg(const uint64_t[::1] a, uint64_t[::1] out) -> bool:
    """out = -a mod p; returns True if an input was not canonical."""
    cdef Py_ssize_t n = a.shape[0]
    cdef int bad
    _same_length(n, out.shape[0])
    with nogil:
        bad = hf_neg(&a[0], &out[0], n)
    return bad != 0


def mul(const uint64_t[::1] a, const uint64_t[::1] b, uint64_t[::1] out) -> bool:
    """out = a * b mod p; returns True if an input was not canonical."""
    cdef Py_ssize_t n = a.shape[0]
    cdef int bad
    _same_length(n, b.shape[0])
    _same_length(n, out.shape[0])
    with nogil:
        bad = hf_mul(&a[0], &b[0], &out[0], n)
    return bad != 0


def scale(const uint64_t[::1] a, uint64_t c, uint64_t[::1] out) -> bool:
    """out = c * a mod p for a canonical scalar c; returns True if a was not canonical."""
    cdef Py_ssize_t n = a.shape[0]
    cdef int bad
    _same_length(n, out.shape[0])
    with nogil:
        bad = hf_scale(&a[0], c, &out[0], n)
    return bad != 0


def sum_rows(const uint64_t[:, ::1] x, uint64_t[::1] out) -> bool:
    """out = column sums of x mod p (x has at least one row); True if x was not canonical."""
    cdef Py_ssize_t m = x.shape[0], n = x.shape[1]
    cdef int bad
    _same_length(n, out.shape[0])
    if m < 1:
        raise ValueError("sum_rows needs at least one row")
    with nogil:
        bad = hf_sum_rows(&x[0, 0], m, n, &out[0])
    return bad != 0


def share(
    const uint64_t[::1] secrets,
    Py_ssize_t t,
    const uint64_t[::1] xs,
    uint64_t[:, ::1] out,
    scratch,
    draw,
    accept,
) -> bool:
    """out[j] = shares at xs[j] of the secrets, under degree-t polynomials drawn at random.

    Works through the secrets a block at a time, the block being the 1-D uint64 array
    `scratch` (t * block words) divided by t: draw(words) overwrites words with raw
    keystream, secret i of the block taking its coefficients of x^1..x^t from words
    i*t .. i*t + t - 1 masked to 61 bits. If a masked word equals p, accept(words) must turn
    the raw words into field elements in place (mask, reject, top up from the stream) and
    the block is recomputed. xs must be canonical and out must not overlap secrets.
    Returns True if secrets was not canonical.
    """
    cdef Py_ssize_t n = secrets.shape[0], k = xs.shape[0], block, start, length, j
    cdef const uint64_t[::1] w = scratch
    cdef uint64_t bad = 0
    cdef uint64_t *tile
    cdef int hit, diff = 1, stream = HF_CAN_STREAM and k * n * 8 >= HF_STREAM_BYTES
    _same_length(k, out.shape[0])
    _same_length(n, out.shape[1])
    if t < 1 or w.shape[0] < t or w.shape[0] % t:
        raise ValueError(f"share needs t >= 1 and a multiple of t scratch words, got t = {t}")
    for j in range(k):
        diff = diff and xs[j] == <uint64_t>(j + 1)
    block = w.shape[0] // t
    tile = <uint64_t *>malloc((2 * t + 2) * HF_TILE * sizeof(uint64_t))
    if tile == NULL:
        raise MemoryError()
    try:
        words = scratch
        for start in range(0, n, block):
            length = min(block, n - start)
            if length < block:
                words = scratch[: length * t]
            draw(words)
            with nogil:
                hit = hf_share(&secrets[start], &w[0], t, &xs[0], k, diff, stream, length,
                               &out[0, start], n, &bad, tile)
            if hit:
                accept(words)
                with nogil:
                    hf_share(&secrets[start], &w[0], t, &xs[0], k, diff, stream, length,
                             &out[0, start], n, &bad, tile)
    finally:
        free(tile)
    return (bad >> 61) != 0


def lincomb(rows: list, const uint64_t[::1] coef, uint64_t[::1] out) -> bool:
    """out = sum_j coef[j] * rows[j] mod p for 1-D contiguous uint64 rows.

    coef must be canonical. Returns True if a row was not canonical.
    """
    cdef Py_ssize_t m = len(rows), n = out.shape[0], j
    cdef const uint64_t[::1] row
    cdef const uint64_t **ptrs
    cdef int bad
    _same_length(m, coef.shape[0])
    if m < 1:
        raise ValueError("lincomb needs at least one row")
    ptrs = <const uint64_t **>malloc(m * sizeof(uint64_t *))
    if ptrs == NULL:
        raise MemoryError()
    try:
        for j in range(m):
            row = rows[j]  # the list keeps each array, hence each pointer, alive
            _same_length(n, row.shape[0])
            ptrs[j] = &row[0]
        with nogil:
            bad = hf_lincomb(ptrs, &coef[0], m, n, &out[0])
    finally:
        free(ptrs)
    return bad != 0


def mask61(uint64_t[::1] words) -> int:
    """Keep the low 61 bits of each word in place; return how many now equal p."""
    cdef Py_ssize_t hits
    with nogil:
        hits = hf_mask61(&words[0], words.shape[0])
    return hits

/* conv_kernels.h - 2-D convolution (cross-correlation, PyTorch's Conv2d) as kernels over
 * ranges of samples, for any kernel size, stride, zero padding and channel count; the dense
 * layer is the convolution whose kernel covers its whole input.
 *
 * Each output is computed in one fixed order (below), the same in the fast kernels (im2col
 * into scratch, then gemm.h's multiply) and in the plain reference kernels (conv_ref_*), which
 * the tests hold the fast ones to, bit for bit. t = (c, ky, kx) runs over the taps of a filter
 * in that order, p = (oy, ox) over the output positions of a sample, row-major; x(p, t) is
 * the input under tap t at position p, +0 in the padding.
 *   forward   out[n][f][p] = bias[f] + sum over t of w[f][t] * x(p, t): one multiply-add
 *             chain (ku_fma) in t order, then the fused relu if any. A dense layer's geometry
 *             (conv_is_dense: one position, the kernel covering the input) instead takes the
 *             lane dot: tap t into lane t % 16 by a chain in t order, the lanes added pairwise
 *             (vec16.h's ku_lanes_dot, ku_lanes_total), then bias[f] + that.
 *   grad      sample n's dw[f][t] = sum over p of dout[n][f][p] * x(p, t), a chain in p order
 *             from +0; db[f] = sum over p of dout[n][f][p]: p added into lane p % 16 in order,
 *             the 16 lanes then added pairwise (vec16.h's ku_lanes_total).
 *   data      d(p, t) = sum over f of dout[n][f][p] * w[f][t], a chain in f order from +0;
 *             din[n] = 0, then for p in order, for t in order, d(p, t) is added to the input
 *             element under tap t at position p (taps in the padding dropped). */
#ifndef CONV_KERNELS_H
#define CONV_KERNELS_H

#include <stddef.h>

/* The shapes of one convolution. */
typedef struct conv_geom {
    int C, H, W;   /* input channels, height, width */
    int F;         /* filters (output channels) */
    int KH, KW;    /* kernel height, width */
    int S, P;      /* stride, zero padding (both directions) */
    int OH, OW;    /* output height, width */
    int T;         /* taps per filter: C * KH * KW */
    int NP;        /* output positions per sample: OH * OW */
} conv_geom;

/* The geometry of a convolution with these settings; OH, OW, T, NP derived (the caller has
 * checked that the kernel fits and every size fits an int). */
conv_geom conv_geom_make(int C, int H, int W, int F, int KH, int KW, int S, int P);

/* Floats of scratch one call of any fast kernel needs. */
size_t conv_scratch_floats(const conv_geom *g);

/* The fast kernels, samples [lo, hi) of the batch tensors. w: [F][T], bias: [F];
 * in: B x [C][H][W], out: B x [F][OH][OW]; relu: write relu(out) (a fused relu layer). */
void conv_forward(const conv_geom *g, const float *w, const float *bias, const float *in,
                  float *out, int lo, int hi, int relu, float *scratch);

/* din: B x [C][H][W], overwritten for samples [lo, hi); dout: B x [F][OH][OW]. */
void conv_backward_data(const conv_geom *g, const float *w, const float *dout, float *din,
                        int lo, int hi, float *scratch);

/* Sample n's parameter gradient: dw [F][T], db [F], overwritten. */
void conv_grad_sample(const conv_geom *g, const float *in, const float *dout, int n, float *dw,
                      float *db, float *scratch);

/* Whether the geometry is a dense layer's: one output position whose kernel covers the
 * unpadded input exactly (then the input is the sample's taps, in order). */
int conv_is_dense(const conv_geom *g);

/* Dense geometry only: for filters [r0, r1), the sum over samples [n0, n1) (one node of
 * gradtree.h's tree: a power-of-two count, aligned) of their gradients, in the tree's order,
 * into dw ([F][T]) and db ([F]): the same bits as conv_grad_sample's sums. in: B x [T],
 * dout: B x [F]. */
void conv_grad_rows(const conv_geom *g, const float *in, const float *dout, int n0, int n1,
                    int r0, int r1, float *dw, float *db);

/* The plain reference kernels: the same arguments and bits (no scratch). */
void conv_ref_forward(const conv_geom *g, const float *w, const float *bias, const float *in,
                      float *out, int lo, int hi, int relu);
void conv_ref_backward_data(const conv_geom *g, const float *w, const float *dout, float *din,
                            int lo, int hi);
void conv_ref_grad_sample(const conv_geom *g, const float *in, const float *dout, int n,
                          float *dw, float *db);

#endif

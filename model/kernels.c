// fedtune's own wasm SIMD kernels for the tfjs wasm backend (see model/kernels.ts). Built by scripts/build-kernels.js
// into model/kernels-wasm.ts. The module imports the backend's memory and must never touch linear memory it was not
// handed: no static data, no stack (the build checks both), so every buffer, scratch included, is a parameter.
#include <wasm_simd128.h>

typedef float f32;
#define EXPORT(name) __attribute__((export_name(#name)))

// exp(x) for x <= 0 (softmax after subtracting the row's max): 2^k · p(r), r = x − k·ln2 in [−ln2/2, ln2/2], p of
// degree 6 (relative error ~2e-7). Below −87 the result is 0.
static f32 exp_neg(f32 x) {
  if (x < -87.0f) return 0.0f;
  f32 k = __builtin_nearbyintf(x * 1.44269504088896341f);
  f32 r = x - k * 0.693145751953125f - k * 1.428606765330187045e-06f;
  f32 p = 1.0f + r * (1.0f + r * (0.5f + r * (0.16666666f + r * (0.041666668f + r * (0.008333334f + r * 0.0013888889f)))));
  union {
    f32 f;
    int i;
  } u;
  u.i = ((int)k + 127) << 23;
  return p * u.f;
}

// exp_neg on four lanes: the same operations in the same order as exp_neg, lane by lane, so the same bits.
#define SPLAT wasm_f32x4_splat
static v128_t exp_neg4(v128_t x) {
  const v128_t k = wasm_f32x4_nearest(wasm_f32x4_mul(x, SPLAT(1.44269504088896341f)));
  const v128_t r = wasm_f32x4_sub(wasm_f32x4_sub(x, wasm_f32x4_mul(k, SPLAT(0.693145751953125f))),
                                  wasm_f32x4_mul(k, SPLAT(1.428606765330187045e-06f)));
  v128_t p = wasm_f32x4_add(SPLAT(0.008333334f), wasm_f32x4_mul(r, SPLAT(0.0013888889f)));
  p = wasm_f32x4_add(SPLAT(0.041666668f), wasm_f32x4_mul(r, p));
  p = wasm_f32x4_add(SPLAT(0.16666666f), wasm_f32x4_mul(r, p));
  p = wasm_f32x4_add(SPLAT(0.5f), wasm_f32x4_mul(r, p));
  p = wasm_f32x4_add(SPLAT(1.0f), wasm_f32x4_mul(r, p));
  p = wasm_f32x4_add(SPLAT(1.0f), wasm_f32x4_mul(r, p));
  // Lanes below −87 are 0 whatever k is; a NaN lane stays NaN.
  const v128_t two_k = wasm_i32x4_shl(wasm_i32x4_add(wasm_i32x4_trunc_sat_f32x4(k), wasm_i32x4_splat(127)), 23);
  return wasm_v128_bitselect(SPLAT(0), wasm_f32x4_mul(p, two_k), wasm_f32x4_lt(x, SPLAT(-87.0f)));
}

// p[j] = exp_neg(p[j] − mx) for j < len: four at a time, then one at a time.
static void exp_shifted(f32 *p, int len, f32 mx) {
  int j = 0;
  for (; j + 4 <= len; j += 4)
    wasm_v128_store(p + j, exp_neg4(wasm_f32x4_sub(wasm_v128_load(p + j), SPLAT(mx))));
  for (; j < len; j++) p[j] = exp_neg(p[j] - mx);
}

// One k step of a 4×8 tile: c[r][h] += a_r · b_h (a macro: a function taking the accumulators would spill them to the
// stack, which this module must not use).
#define TILE_STEP()                                     \
  do {                                                  \
    c00 = wasm_f32x4_add(c00, wasm_f32x4_mul(a0, b0));  \
    c01 = wasm_f32x4_add(c01, wasm_f32x4_mul(a0, b1));  \
    c10 = wasm_f32x4_add(c10, wasm_f32x4_mul(a1, b0));  \
    c11 = wasm_f32x4_add(c11, wasm_f32x4_mul(a1, b1));  \
    c20 = wasm_f32x4_add(c20, wasm_f32x4_mul(a2, b0));  \
    c21 = wasm_f32x4_add(c21, wasm_f32x4_mul(a2, b1));  \
    c30 = wasm_f32x4_add(c30, wasm_f32x4_mul(a3, b0));  \
    c31 = wasm_f32x4_add(c31, wasm_f32x4_mul(a3, b1));  \
  } while (0)

// C[m,n] = op(A)·op(B). A is [m,k] (ta = 0) or stored [k,m] (ta = 1); B is [k,n] (tb = 0) or stored [n,k] (tb = 1).
// m % 4 == 0 and n % 4 == 0. bias: n floats added to every row, or null. pack: k·(n rounded up to 8) floats of
// scratch, B laid out as panels of [k][8].
EXPORT(gemm)
void gemm(const f32 *a, const f32 *b, const f32 *bias, f32 *c, int m, int n, int k, int ta, int tb, f32 *pack) {
  for (int jp = 0; jp < n; jp += 8) {
    f32 *panel = pack + jp * k;
    const int w = n - jp < 8 ? n - jp : 8; // 8, or 4 in a last, half panel (zero-padded)
    if (tb) {
      for (int p = 0; p < k; p++)
        for (int j = 0; j < 8; j++) panel[p * 8 + j] = j < w ? b[(jp + j) * k + p] : 0.0f;
    } else {
      for (int p = 0; p < k; p++) {
        wasm_v128_store(panel + p * 8, wasm_v128_load(b + p * n + jp));
        wasm_v128_store(panel + p * 8 + 4, w == 8 ? wasm_v128_load(b + p * n + jp + 4) : wasm_f32x4_splat(0));
      }
    }
  }
  for (int i = 0; i < m; i += 4) {
    for (int jp = 0; jp < n; jp += 8) {
      const f32 *panel = pack + jp * k;
      v128_t c00 = wasm_f32x4_splat(0), c01 = c00;
      const int full = jp + 8 <= n;
      if (bias) {
        c00 = wasm_v128_load(bias + jp);
        if (full) c01 = wasm_v128_load(bias + jp + 4);
      }
      v128_t c10 = c00, c11 = c01, c20 = c00, c21 = c01, c30 = c00, c31 = c01;
      if (ta) {
        for (int p = 0; p < k; p++) {
          v128_t av = wasm_v128_load(a + p * m + i);
          v128_t b0 = wasm_v128_load(panel + p * 8), b1 = wasm_v128_load(panel + p * 8 + 4);
          v128_t a0 = wasm_i32x4_shuffle(av, av, 0, 0, 0, 0);
          v128_t a1 = wasm_i32x4_shuffle(av, av, 1, 1, 1, 1);
          v128_t a2 = wasm_i32x4_shuffle(av, av, 2, 2, 2, 2);
          v128_t a3 = wasm_i32x4_shuffle(av, av, 3, 3, 3, 3);
          TILE_STEP();
        }
      } else {
        const f32 *r0 = a + i * k, *r1 = r0 + k, *r2 = r1 + k, *r3 = r2 + k;
        for (int p = 0; p < k; p++) {
          v128_t b0 = wasm_v128_load(panel + p * 8), b1 = wasm_v128_load(panel + p * 8 + 4);
          v128_t a0 = wasm_f32x4_splat(r0[p]), a1 = wasm_f32x4_splat(r1[p]);
          v128_t a2 = wasm_f32x4_splat(r2[p]), a3 = wasm_f32x4_splat(r3[p]);
          TILE_STEP();
        }
      }
      f32 *o = c + i * n + jp;
      wasm_v128_store(o, c00);
      wasm_v128_store(o + n, c10);
      wasm_v128_store(o + 2 * n, c20);
      wasm_v128_store(o + 3 * n, c30);
      if (full) {
        wasm_v128_store(o + 4, c01);
        wasm_v128_store(o + n + 4, c11);
        wasm_v128_store(o + 2 * n + 4, c21);
        wasm_v128_store(o + 3 * n + 4, c31);
      }
    }
  }
}

// Σ_c x[c]·y[c·stride + j] for j in [0, len), into out: a row of x·Yᵀ where Y is laid out transposed ([hd][stride]).
static void row_times(const f32 *x, const f32 *yt, int stride, int hd, int len, f32 *out) {
  int j = 0;
  for (; j + 4 <= len; j += 4) {
    v128_t acc = wasm_f32x4_splat(0);
    for (int c = 0; c < hd; c++) acc = wasm_f32x4_add(acc, wasm_f32x4_mul(wasm_f32x4_splat(x[c]), wasm_v128_load(yt + c * stride + j)));
    wasm_v128_store(out + j, acc);
  }
  for (; j < len; j++) {
    f32 acc = 0;
    for (int c = 0; c < hd; c++) acc += x[c] * yt[c * stride + j];
    out[j] = acc;
  }
}

// acc[0..hd) (+)= Σ_j w[j]·rows[j·stride + (0..hd)], hd % 4 == 0.
static void weighted_rows(const f32 *w, const f32 *rows, int stride, int len, int hd, f32 *out) {
  for (int c = 0; c < hd; c += 4) {
    v128_t acc = wasm_f32x4_splat(0);
    for (int j = 0; j < len; j++) acc = wasm_f32x4_add(acc, wasm_f32x4_mul(wasm_f32x4_splat(w[j]), wasm_v128_load(rows + j * stride + c)));
    wasm_v128_store(out + c, acc);
  }
}

// Causal self-attention. qkv: [b·t, 3d] (q | k | v, heads contiguous inside each), d = nh·hd, hd % 4 == 0.
// out: [b·t, d]; probs: [b·nh, t, t] (row i holds the softmax over j <= i, zeros after); kt: hd·t floats of scratch.
EXPORT(attn_fwd)
void attn_fwd(const f32 *qkv, f32 *out, f32 *probs, f32 *kt, int b, int t, int nh, int hd) {
  const int d = nh * hd, row = 3 * d;
  const f32 scale = 1.0f / __builtin_sqrtf((f32)hd);
  for (int s = 0; s < b; s++) {
    const f32 *base = qkv + s * t * row;
    for (int h = 0; h < nh; h++) {
      const f32 *kb = base + d + h * hd, *vb = base + 2 * d + h * hd;
      for (int j = 0; j < t; j++)
        for (int c = 0; c < hd; c++) kt[c * t + j] = kb[j * row + c];
      f32 *pm = probs + (s * nh + h) * t * t;
      for (int i = 0; i < t; i++) {
        f32 *p = pm + i * t;
        const int len = i + 1;
        row_times(base + i * row + h * hd, kt, t, hd, len, p);
        f32 mx = -3.4e38f;
        for (int j = 0; j < len; j++) {
          p[j] *= scale;
          if (p[j] > mx) mx = p[j];
        }
        exp_shifted(p, len, mx);
        f32 sum = 0;
        for (int j = 0; j < len; j++) sum += p[j];
        const f32 inv = 1.0f / sum;
        for (int j = 0; j < len; j++) p[j] *= inv;
        for (int j = len; j < t; j++) p[j] = 0;
        weighted_rows(p, vb, row, len, hd, out + (s * t + i) * d + h * hd);
      }
    }
  }
}

// The gradient of attn_fwd: dy [b·t, d] → dqkv [b·t, 3d] (overwritten). vt: hd·t floats, dp: t floats of scratch.
EXPORT(attn_bwd)
void attn_bwd(const f32 *qkv, const f32 *probs, const f32 *dy, f32 *dqkv, f32 *vt, f32 *dp, int b, int t, int nh, int hd) {
  const int d = nh * hd, row = 3 * d;
  const f32 scale = 1.0f / __builtin_sqrtf((f32)hd);
  for (int i = 0; i < b * t * row; i += 4) wasm_v128_store(dqkv + i, wasm_f32x4_splat(0));
  for (int s = 0; s < b; s++) {
    const f32 *base = qkv + s * t * row;
    f32 *gbase = dqkv + s * t * row;
    for (int h = 0; h < nh; h++) {
      const f32 *kb = base + d + h * hd, *vb = base + 2 * d + h * hd;
      f32 *dkb = gbase + d + h * hd, *dvb = gbase + 2 * d + h * hd;
      for (int j = 0; j < t; j++)
        for (int c = 0; c < hd; c++) vt[c * t + j] = vb[j * row + c];
      const f32 *pm = probs + (s * nh + h) * t * t;
      for (int i = 0; i < t; i++) {
        const f32 *p = pm + i * t;
        const f32 *g = dy + (s * t + i) * d + h * hd;
        const f32 *q = base + i * row + h * hd;
        const int len = i + 1;
        row_times(g, vt, t, hd, len, dp); // dP = dO·Vᵀ
        f32 dot = 0;
        for (int j = 0; j < len; j++) dot += p[j] * dp[j];
        for (int j = 0; j < len; j++) dp[j] = p[j] * (dp[j] - dot) * scale; // dS
        weighted_rows(dp, kb, row, len, hd, gbase + i * row + h * hd); // dQ_i = Σ_j dS_ij K_j
        for (int c = 0; c < hd; c += 4) {
          const v128_t qc = wasm_v128_load(q + c), gc = wasm_v128_load(g + c);
          for (int j = 0; j < len; j++) {
            f32 *dk = dkb + j * row + c, *dv = dvb + j * row + c;
            wasm_v128_store(dk, wasm_f32x4_add(wasm_v128_load(dk), wasm_f32x4_mul(wasm_f32x4_splat(dp[j]), qc)));
            wasm_v128_store(dv, wasm_f32x4_add(wasm_v128_load(dv), wasm_f32x4_mul(wasm_f32x4_splat(p[j]), gc)));
          }
        }
      }
    }
  }
}

// GELU, GPT-2's tanh form: x·sigmoid(2u), u = k(x + c·x³); s(z) computed from exp of a non-positive argument.
#define GELU_K 0.7978845608028654f
#define GELU_C 0.044715f
static f32 sigmoid(f32 z) {
  if (z >= 0) return 1.0f / (1.0f + exp_neg(-z));
  const f32 e = exp_neg(z);
  return e / (1.0f + e);
}

// sigmoid on four lanes, as sigmoid does it lane by lane.
static v128_t sigmoid4(v128_t z) {
  const v128_t e = exp_neg4(wasm_f32x4_neg(wasm_f32x4_abs(z)));
  const v128_t d = wasm_f32x4_add(SPLAT(1.0f), e);
  return wasm_v128_bitselect(wasm_f32x4_div(SPLAT(1.0f), d), wasm_f32x4_div(e, d), wasm_f32x4_ge(z, SPLAT(0)));
}

// The argument of GELU's sigmoid, 2k·x·(1 + c·x²), on four lanes in the scalar expression's order.
static v128_t gelu_arg4(v128_t x) {
  return wasm_f32x4_mul(wasm_f32x4_mul(SPLAT(2.0f * GELU_K), x),
                        wasm_f32x4_add(SPLAT(1.0f), wasm_f32x4_mul(wasm_f32x4_mul(SPLAT(GELU_C), x), x)));
}

// y = gelu(u), elementwise over len floats.
EXPORT(gelu_fwd)
void gelu_fwd(const f32 *u, f32 *y, int len) {
  int i = 0;
  for (; i + 4 <= len; i += 4) {
    const v128_t x = wasm_v128_load(u + i);
    wasm_v128_store(y + i, wasm_f32x4_mul(x, sigmoid4(gelu_arg4(x))));
  }
  for (; i < len; i++) {
    const f32 x = u[i];
    y[i] = x * sigmoid(2.0f * GELU_K * x * (1.0f + GELU_C * x * x));
  }
}

// du = dy · gelu'(u): s + x·s(1−s)·2k(1 + 3c·x²).
EXPORT(gelu_bwd)
void gelu_bwd(const f32 *u, const f32 *dy, f32 *du, int len) {
  int i = 0;
  for (; i + 4 <= len; i += 4) {
    const v128_t x = wasm_v128_load(u + i);
    const v128_t s = sigmoid4(gelu_arg4(x));
    // x·s·(1 − s)·2·k·(1 + 3c·x·x), left to right as below
    v128_t t = wasm_f32x4_mul(wasm_f32x4_mul(x, s), wasm_f32x4_sub(SPLAT(1.0f), s));
    t = wasm_f32x4_mul(wasm_f32x4_mul(t, SPLAT(2.0f)), SPLAT(GELU_K));
    t = wasm_f32x4_mul(t, wasm_f32x4_add(SPLAT(1.0f), wasm_f32x4_mul(wasm_f32x4_mul(SPLAT(3.0f * GELU_C), x), x)));
    wasm_v128_store(du + i, wasm_f32x4_mul(wasm_v128_load(dy + i), wasm_f32x4_add(s, t)));
  }
  for (; i < len; i++) {
    const f32 x = u[i];
    const f32 s = sigmoid(2.0f * GELU_K * x * (1.0f + GELU_C * x * x));
    du[i] = dy[i] * (s + x * s * (1.0f - s) * 2.0f * GELU_K * (1.0f + 3.0f * GELU_C * x * x));
  }
}

// out[c] = Σ_r x[r·cols + c] (a bias's gradient), cols % 4 == 0.
EXPORT(col_sum)
void col_sum(const f32 *x, f32 *out, int rows, int cols) {
  for (int c = 0; c < cols; c += 4) wasm_v128_store(out + c, wasm_f32x4_splat(0));
  for (int r = 0; r < rows; r++)
    for (int c = 0; c < cols; c += 4)
      wasm_v128_store(out + c, wasm_f32x4_add(wasm_v128_load(out + c), wasm_v128_load(x + r * cols + c)));
}

// Layer norm over rows of d: y = x̂·g + b, x̂ = (x − mean)·rstd. Keeps x̂ and rstd for the gradient.
EXPORT(layernorm_fwd)
void layernorm_fwd(const f32 *x, const f32 *g, const f32 *b, f32 *y, f32 *xhat, f32 *rstd, int n, int d, f32 eps) {
  for (int r = 0; r < n; r++) {
    const f32 *xr = x + r * d;
    double sum = 0;
    for (int c = 0; c < d; c++) sum += xr[c];
    const f32 mean = (f32)(sum / d);
    double sq = 0;
    for (int c = 0; c < d; c++) {
      const f32 v = xr[c] - mean;
      sq += (double)v * v;
    }
    const f32 rs = (f32)(1.0 / __builtin_sqrt(sq / d + eps));
    rstd[r] = rs;
    for (int c = 0; c < d; c++) {
      const f32 h = (xr[c] - mean) * rs;
      xhat[r * d + c] = h;
      y[r * d + c] = h * g[c] + b[c];
    }
  }
}

// The layer norm's gradient: dx = rstd·(dy·g − mean(dy·g) − x̂·mean(dy·g·x̂)); dg = Σ dy·x̂, db = Σ dy over rows.
EXPORT(layernorm_bwd)
void layernorm_bwd(const f32 *dy, const f32 *xhat, const f32 *rstd, const f32 *g, f32 *dx, f32 *dg, f32 *db, int n, int d) {
  for (int c = 0; c < d; c++) dg[c] = db[c] = 0;
  for (int r = 0; r < n; r++) {
    const f32 *dyr = dy + r * d, *hr = xhat + r * d;
    f32 m1 = 0, m2 = 0;
    for (int c = 0; c < d; c++) {
      const f32 gy = dyr[c], h = hr[c], dh = gy * g[c];
      dg[c] += gy * h;
      db[c] += gy;
      m1 += dh;
      m2 += dh * h;
    }
    m1 /= d;
    m2 /= d;
    const f32 rs = rstd[r];
    for (int c = 0; c < d; c++) dx[r * d + c] = rs * (dyr[c] * g[c] - m1 - hr[c] * m2);
  }
}

// Softmax over rows (cross-entropy's forward; the caller reads −log p[target] from probs).
EXPORT(softmax_rows)
void softmax_rows(const f32 *logits, f32 *probs, int n, int classes) {
  for (int r = 0; r < n; r++) {
    const f32 *l = logits + r * classes;
    f32 *p = probs + r * classes;
    f32 mx = -3.4e38f;
    for (int c = 0; c < classes; c++)
      if (l[c] > mx) mx = l[c];
    for (int c = 0; c < classes; c++) p[c] = l[c];
    exp_shifted(p, classes, mx);
    f32 sum = 0;
    for (int c = 0; c < classes; c++) sum += p[c];
    const f32 inv = 1.0f / sum;
    for (int c = 0; c < classes; c++) p[c] *= inv;
  }
}

// Its gradient, times k (upstream gradient / rows): (probs − onehot(targets))·k.
EXPORT(xent_bwd)
void xent_bwd(const f32 *probs, const int *targets, f32 *grad, int n, int classes, f32 k) {
  const v128_t kv = wasm_f32x4_splat(k);
  int len = n * classes, i = 0;
  for (; i + 4 <= len; i += 4) wasm_v128_store(grad + i, wasm_f32x4_mul(wasm_v128_load(probs + i), kv));
  for (; i < len; i++) grad[i] = probs[i] * k;
  for (int r = 0; r < n; r++) grad[r * classes + targets[r]] -= k;
}

// Embedding: out[i] = table[ids[i]] (rows of d); its gradient scatter-adds dy's rows into a zeroed [vocab, d].
EXPORT(embed_fwd)
void embed_fwd(const f32 *table, const int *ids, f32 *out, int n, int d) {
  for (int i = 0; i < n; i++)
    for (int c = 0; c < d; c++) out[i * d + c] = table[ids[i] * d + c];
}

EXPORT(embed_bwd)
void embed_bwd(const f32 *dy, const int *ids, f32 *grad, int n, int d, int vocab) {
  for (int i = 0; i < vocab * d; i++) grad[i] = 0;
  for (int i = 0; i < n; i++)
    for (int c = 0; c < d; c++) grad[ids[i] * d + c] += dy[i * d + c];
}

// The optimiser step, in double arithmetic with float storage in the order model/host-optim.ts computes it, so the
// two give the same bits. FedProx: g' = g + mu·(w − anchor) (a float), when mu > 0.
static f32 prox(const f32 *g, const f32 *w, const f32 *a, double mu, int j) {
  return mu > 0 ? (f32)((double)g[j] + mu * ((double)w[j] - (double)a[j])) : g[j];
}

// Σ g'² over n elements, in double.
EXPORT(prox_sumsq)
double prox_sumsq(const f32 *g, const f32 *w, const f32 *a, double mu, int n) {
  double sq = 0;
  for (int j = 0; j < n; j++) {
    const double gj = prox(g, w, a, mu, j);
    sq += gj * gj;
  }
  return sq;
}

// AdamW: m, s the moments; c1, c2 the bias corrections; decay the weight decay; scale the clipping factor.
EXPORT(adamw_step)
void adamw_step(const f32 *w, const f32 *g, const f32 *a, const f32 *m, const f32 *s, f32 *w2, f32 *m2, f32 *s2, int n,
                double lr, double b1, double b2, double eps, double c1, double c2, double decay, double scale,
                double mu) {
  for (int j = 0; j < n; j++) {
    const double gj = (double)prox(g, w, a, mu, j) * scale;
    const f32 mj = (f32)(b1 * m[j] + (1 - b1) * gj);
    const f32 sj = (f32)(b2 * s[j] + (1 - b2) * gj * gj);
    const double wj = w[j];
    m2[j] = mj;
    s2[j] = sj;
    w2[j] = (f32)(wj - (lr * (mj / c1)) / (__builtin_sqrt(sj / c2) + eps) - lr * decay * wj);
  }
}

// SGD with momentum: buf = g'·scale + decay·w (first step) or momentum·buf + that; w −= lr·buf.
EXPORT(sgd_step)
void sgd_step(const f32 *w, const f32 *g, const f32 *a, const f32 *buf, f32 *w2, f32 *buf2, int n, int first, double lr,
              double momentum, double decay, double scale, double mu) {
  for (int j = 0; j < n; j++) {
    const double gd = (double)prox(g, w, a, mu, j) * scale + decay * w[j];
    const f32 b = first ? (f32)gd : (f32)(momentum * buf[j] + gd);
    buf2[j] = b;
    w2[j] = (f32)(w[j] - lr * b);
  }
}

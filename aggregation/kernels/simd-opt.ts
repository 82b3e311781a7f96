// The server optimisers' step kernels' source (wasm SIMD, f32x4): plain SGD, and momentum, Adam, Yogi and Adagrad
// fused with their state update, each returning the step's Σd².
import { Body, F32, F64, I32, V128, simd, type FunctionDef } from './wasm.ts';

/** The server optimisers with state, as server.ts names them. */
export type OptKind = 'momentum' | 'adam' | 'yogi' | 'adagrad';

/** Zeroes the two Σd² accumulators and opens the loop over [d, end), left at once when it is empty. */
function openLoop(b: Body, acc: number[], d: number, end: number): void {
  b.vZero().set(acc[0]!).vZero().set(acc[1]!);
  b.block().get(d).get(end).i32GeU().brIf(0).loop();
}

/** What every server step starts a vector with: d <- d / q at d + off (the mean), kept in dv, and ac += d·d. */
function mean(b: Body, d: number, off: number, vq: number, dv: number, ac: number): void {
  b.get(d).get(d).vLoad(off).get(vq).v(simd.f32x4_div).tee(dv).vStore(off);
  b.get(ac).get(dv).get(dv).v(simd.f32x4_mul).v(simd.f32x4_add).set(ac);
}

/** Moves each pointer a block (64 bytes) on, closes the loop, and leaves Σd² (f64) on the stack. */
function closeLoop(b: Body, pointers: number[], d: number, end: number, acc: number[]): void {
  for (const p of pointers) b.get(p).i32(64).i32Add().set(p);
  b.get(d).get(end).i32LtU().brIf(0).end().end();
  b.get(acc[0]!).get(acc[1]!).v(simd.f32x4_add).set(acc[0]!);
  b.hsumF32x4AsF64(acc[0]!);
}

/**
 * The mean and the plain server step fused, over [d, end) (a multiple of 16 floats): d[i] <- d[i] / q,
 * x[i] <- x[i] + lr·d[i], returning Σd² of the new d in the lanes of axpy_sumsq.
 */
export function sgdStep(): FunctionDef {
  const b = new Body([I32, I32, I32, F32, F32]);
  const [d, x, end, q, lr] = [0, 1, 2, 3, 4];
  const vq = b.local(V128);
  const vlr = b.local(V128);
  const acc = [b.local(V128), b.local(V128)];
  const dv = b.local(V128);
  b.get(q).v(simd.f32x4_splat).set(vq);
  b.get(lr).v(simd.f32x4_splat).set(vlr);
  openLoop(b, acc, d, end);
  for (let u = 0; u < 4; u++) {
    const off = 16 * u;
    const ac = acc[u & 1]!;
    mean(b, d, off, vq, dv, ac);
    b.get(x).get(x).vLoad(off).get(vlr).get(dv).v(simd.f32x4_mul).v(simd.f32x4_add).vStore(off);
  }
  closeLoop(b, [d, x], d, end, acc);
  return { name: 'sgd_step', results: [F64], body: b };
}

/**
 * The mean and a stateful server step fused, over [d, end) (a multiple of 16 floats), the float32 operations of
 * server.ts in the same order: d <- d / q, then momentum (v <- beta·v + d; x <- x + lr·v) or Reddi et al.'s
 * (m <- b1·m + c1·d; v by the variant; x <- x + (lr·m) / (sqrt(v) + tau)); returns Σd² in the lanes of axpy_sumsq.
 */
export function optStep(kind: OptKind): FunctionDef {
  const b = new Body([I32, I32, I32, I32, I32, F32, F32, F32, F32, F32, F32, F32]);
  const [d, x, s0, s1, end] = [0, 1, 2, 3, 4];
  const fparams = [5, 6, 7, 8, 9, 10, 11];
  const [vq, vlr, p1, p2, p3, p4, p5] = fparams.map((p) => {
    const l = b.local(V128);
    b.get(p).v(simd.f32x4_splat).set(l);
    return l;
  }) as [number, number, number, number, number, number, number];
  const acc = [b.local(V128), b.local(V128)];
  const dv = b.local(V128);
  const mv = b.local(V128);
  const vv = b.local(V128);
  const t = b.local(V128);
  const one = b.local(V128);
  const minusOne = b.local(V128);
  const zero = b.local(V128);
  b.f32(1).v(simd.f32x4_splat).set(one);
  b.f32(-1).v(simd.f32x4_splat).set(minusOne);
  b.vZero().set(zero);
  openLoop(b, acc, d, end);
  for (let u = 0; u < 4; u++) {
    const off = 16 * u;
    const ac = acc[u & 1]!;
    mean(b, d, off, vq, dv, ac);
    if (kind === 'momentum') {
      // v <- beta·v + d; x <- x + lr·v
      b.get(s0).get(p1).get(s0).vLoad(off).v(simd.f32x4_mul).get(dv).v(simd.f32x4_add).tee(vv).vStore(off);
      b.get(x).get(x).vLoad(off).get(vlr).get(vv).v(simd.f32x4_mul).v(simd.f32x4_add).vStore(off);
      continue;
    }
    // m <- b1·m + c1·d
    b.get(s0).get(p1).get(s0).vLoad(off).v(simd.f32x4_mul);
    b.get(p2).get(dv).v(simd.f32x4_mul).v(simd.f32x4_add).tee(mv).vStore(off);
    // t = d² (the gradient's square)
    b.get(dv).get(dv).v(simd.f32x4_mul).set(t);
    b.get(s1).vLoad(off).set(vv);
    if (kind === 'adam') {
      // v <- b2·v + c2·d²
      b.get(p3).get(vv).v(simd.f32x4_mul).get(p4).get(t).v(simd.f32x4_mul).v(simd.f32x4_add).set(vv);
    } else if (kind === 'yogi') {
      // v <- v - (c2·d²)·sign(v - d²), sign as Math.sign: 1, -1, or the difference itself (±0, NaN)
      b.get(vv);
      b.get(p4).get(t).v(simd.f32x4_mul);
      b.get(one);
      b.get(minusOne);
      b.get(vv).get(t).v(simd.f32x4_sub).tee(t);
      b.get(t).get(zero).v(simd.f32x4_lt);
      b.v(simd.v128_bitselect);
      b.get(t).get(zero).v(simd.f32x4_gt);
      b.v(simd.v128_bitselect);
      b.v(simd.f32x4_mul).v(simd.f32x4_sub).set(vv);
    } else {
      // v <- v + d²
      b.get(vv).get(t).v(simd.f32x4_add).set(vv);
    }
    b.get(s1).get(vv).vStore(off);
    // x <- x + (lr·m) / (sqrt(v) + tau)
    b.get(x).get(x).vLoad(off);
    b.get(vlr).get(mv).v(simd.f32x4_mul);
    b.get(vv).v(simd.f32x4_sqrt).get(p5).v(simd.f32x4_add);
    b.v(simd.f32x4_div).v(simd.f32x4_add).vStore(off);
  }
  closeLoop(b, [d, x, s0, s1], d, end, acc);
  return { name: `${kind}_step`, results: [F64], body: b };
}

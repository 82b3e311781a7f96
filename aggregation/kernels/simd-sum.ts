// The vector kernels' source (wasm SIMD, f32x4): the fused weighted sum with Σx², Σx² alone, scaling in place, and
// the squared distances from one vector to four (Krum).
import { Body, F32, F64, I32, V128, simd, type FunctionDef } from './wasm.ts';

/**
 * out[i] = a[i] + w·x[i] over [x, end), returning Σx² (f32 lanes, f64 total). Four vectors an iteration with static
 * offsets (one pointer bump per stream per 64 bytes); the caller passes a multiple of 16 floats. With `empty`, a is
 * not read: out[i] = +0 + w·x[i] (the first update of a round writes over the sum instead of adding to zeros).
 */
export function axpySumsq(empty = false): FunctionDef {
  const b = new Body([I32, I32, I32, I32, F32]);
  const [out, a, x, end, w] = [0, 1, 2, 3, 4];
  const vw = b.local(V128);
  const acc = [b.local(V128), b.local(V128)];
  const xv = b.local(V128);
  b.get(w).v(simd.f32x4_splat).set(vw);
  b.vZero().set(acc[0]!).vZero().set(acc[1]!);
  b.block().get(x).get(end).i32GeU().brIf(0).loop();
  for (let u = 0; u < 4; u++) {
    const off = 16 * u;
    const ac = acc[u & 1]!;
    b.get(x).vLoad(off).set(xv);
    b.get(out);
    if (empty) b.vZero();
    else b.get(a).vLoad(off);
    b.get(xv).get(vw).v(simd.f32x4_mul).v(simd.f32x4_add).vStore(off);
    b.get(ac).get(xv).get(xv).v(simd.f32x4_mul).v(simd.f32x4_add).set(ac);
  }
  for (const p of [x, a, out]) b.get(p).i32(64).i32Add().set(p);
  b.get(x).get(end).i32LtU().brIf(0).end().end();
  b.get(acc[0]!).get(acc[1]!).v(simd.f32x4_add).set(acc[0]!);
  b.hsumF32x4AsF64(acc[0]!);
  return { name: empty ? 'zaxpy_sumsq' : 'axpy_sumsq', results: [F64], body: b };
}

export function sumsq(): FunctionDef {
  const b = new Body([I32, I32]);
  const [x, end] = [0, 1];
  const acc0 = b.local(V128);
  const acc1 = b.local(V128);
  const xv = b.local(V128);
  b.vZero().set(acc0).vZero().set(acc1);
  // Two accumulators over 16 floats an iteration; the caller passes a multiple of 16 floats.
  b.block().get(x).get(end).i32GeU().brIf(0).loop();
  for (let u = 0; u < 4; u++) {
    const ac = u & 1 ? acc1 : acc0;
    b.get(x)
      .vLoad(16 * u)
      .tee(xv)
      .get(xv)
      .v(simd.f32x4_mul)
      .get(ac)
      .v(simd.f32x4_add)
      .set(ac);
  }
  b.get(x).i32(64).i32Add().set(x);
  b.get(x).get(end).i32LtU().brIf(0).end().end();
  b.get(acc0).get(acc1).v(simd.f32x4_add).set(acc0);
  b.hsumF32x4AsF64(acc0);
  return { name: 'sumsq', results: [F64], body: b };
}

export function scale(): FunctionDef {
  const b = new Body([I32, I32, F32]);
  const [x, end, s] = [0, 1, 2];
  const vs = b.local(V128);
  b.get(s).v(simd.f32x4_splat).set(vs);
  b.block().get(x).get(end).i32GeU().brIf(0).loop();
  b.get(x).get(x).vLoad().get(vs).v(simd.f32x4_mul).vStore();
  b.get(x).i32(16).i32Add().set(x);
  b.get(x).get(end).i32LtU().brIf(0).end().end();
  return { name: 'scale', results: [], body: b };
}

/** Squared distances from a to four vectors b0..b3 over [a, end), written as four f64 at out. */
export function dist4(): FunctionDef {
  const b = new Body([I32, I32, I32, I32, I32, I32, I32]);
  const [a, end, out] = [0, 1, 6];
  const bs = [2, 3, 4, 5];
  const accs = bs.map(() => b.local(V128));
  const av = b.local(V128);
  const d = b.local(V128);
  for (const acc of accs) b.vZero().set(acc);
  b.block().get(a).get(end).i32GeU().brIf(0).loop();
  b.get(a).vLoad().set(av);
  bs.forEach((p, k) => {
    b.get(av).get(p).vLoad().v(simd.f32x4_sub).tee(d).get(d).v(simd.f32x4_mul);
    b.get(accs[k]!).v(simd.f32x4_add).set(accs[k]!);
    b.get(p).i32(16).i32Add().set(p);
  });
  b.get(a).i32(16).i32Add().set(a);
  b.get(a).get(end).i32LtU().brIf(0).end().end();
  accs.forEach((acc, k) => {
    b.get(out);
    b.hsumF32x4AsF64(acc);
    b.f64Store(8 * k);
  });
  return { name: 'dist4', results: [], body: b };
}

// A tiny WebAssembly encoder for the few opcodes the kernels use (MVP integer/float ops and 128-bit SIMD), so kernels are generated from TypeScript, not shipped as binaries.

export const I32 = 0x7f;
export const F32 = 0x7d;
export const F64 = 0x7c;
export const V128 = 0x7b;
export type ValType = typeof I32 | typeof F32 | typeof F64 | typeof V128;

export function uleb(n: number, out: number[] = []): number[] {
  do {
    let b = n & 0x7f;
    n = Math.floor(n / 128);
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

export function sleb(n: number, out: number[] = []): number[] {
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

/** 0xfd-prefixed SIMD opcodes (the fixed-width SIMD proposal, shipped in V8 since 9.1). */
export const simd = {
  load: 0x00,
  store: 0x0b,
  const: 0x0c,
  f32x4_splat: 0x13,
  f32x4_lt: 0x43,
  f32x4_gt: 0x44,
  v128_bitselect: 0x52,
  f32x4_sqrt: 0xe3,
  f32x4_extract_lane: 0x1f,
  f64x2_extract_lane: 0x21,
  f64x2_promote_low_f32x4: 0x5f,
  f32x4_add: 0xe4,
  f32x4_sub: 0xe5,
  f32x4_mul: 0xe6,
  f32x4_div: 0xe7,
  f32x4_pmin: 0xea,
  f32x4_pmax: 0xeb,
  f64x2_add: 0xf0,
} as const;

/** A function body under construction: each method appends one instruction. */
export class Body {
  readonly code: number[] = [];
  private readonly locals: ValType[] = [];
  constructor(readonly params: ValType[]) {}

  /** Declares a new local and returns its index. */
  local(type: ValType): number {
    this.locals.push(type);
    return this.params.length + this.locals.length - 1;
  }
  op(...bytes: number[]): this {
    this.code.push(...bytes);
    return this;
  }
  get(i: number): this {
    return this.op(0x20, ...uleb(i));
  }
  set(i: number): this {
    return this.op(0x21, ...uleb(i));
  }
  tee(i: number): this {
    return this.op(0x22, ...uleb(i));
  }
  i32(n: number): this {
    return this.op(0x41, ...sleb(n | 0));
  }
  f32(x: number): this {
    const b = new Uint8Array(new Float32Array([x]).buffer);
    return this.op(0x43, ...b);
  }
  f64(x: number): this {
    const b = new Uint8Array(new Float64Array([x]).buffer);
    return this.op(0x44, ...b);
  }
  i32Add(): this {
    return this.op(0x6a);
  }
  i32Mul(): this {
    return this.op(0x6c);
  }
  i32LtU(): this {
    return this.op(0x49);
  }
  i32GeU(): this {
    return this.op(0x4f);
  }
  f64Add(): this {
    return this.op(0xa0);
  }
  f64PromoteF32(): this {
    return this.op(0xbb);
  }
  f64Store(offset = 0): this {
    return this.op(0x39, 3, ...uleb(offset));
  }
  block(): this {
    return this.op(0x02, 0x40);
  }
  loop(): this {
    return this.op(0x03, 0x40);
  }
  br(depth: number): this {
    return this.op(0x0c, ...uleb(depth));
  }
  brIf(depth: number): this {
    return this.op(0x0d, ...uleb(depth));
  }
  end(): this {
    return this.op(0x0b);
  }
  v(opcode: number): this {
    return this.op(0xfd, ...uleb(opcode));
  }
  vLoad(offset = 0): this {
    return this.op(0xfd, ...uleb(simd.load), 4, ...uleb(offset));
  }
  vStore(offset = 0): this {
    return this.op(0xfd, ...uleb(simd.store), 4, ...uleb(offset));
  }
  vZero(): this {
    return this.op(0xfd, ...uleb(simd.const), ...new Array<number>(16).fill(0));
  }
  lane(opcode: number, lane: number): this {
    return this.op(0xfd, ...uleb(opcode), lane);
  }
  /** Pushes the f64 sum of the four f32 lanes of local `v`. */
  hsumF32x4AsF64(v: number): this {
    for (let lane = 0; lane < 4; lane++) {
      this.get(v).lane(simd.f32x4_extract_lane, lane).f64PromoteF32();
      if (lane > 0) this.f64Add();
    }
    return this;
  }

  /** Local declarations followed by the code, as a code-section entry. */
  encode(): number[] {
    const groups: [number, ValType][] = [];
    for (const t of this.locals) {
      const last = groups[groups.length - 1];
      if (last && last[1] === t) last[0]++;
      else groups.push([1, t]);
    }
    const body: number[] = uleb(groups.length);
    for (const [count, type] of groups) body.push(...uleb(count), type);
    body.push(...this.code, 0x0b);
    return [...uleb(body.length), ...body];
  }
}

export interface FunctionDef {
  name: string;
  results: ValType[];
  body: Body;
}

function section(id: number, payload: number[]): number[] {
  return [id, ...uleb(payload.length), ...payload];
}

function str(s: string): number[] {
  const b = [...new TextEncoder().encode(s)];
  return [...uleb(b.length), ...b];
}

/** A module importing its memory as env.memory and exporting every function by name. */
export function encodeModule(funcs: FunctionDef[]): Uint8Array {
  const types: number[] = uleb(funcs.length);
  for (const f of funcs)
    types.push(
      0x60,
      ...uleb(f.body.params.length),
      ...f.body.params,
      ...uleb(f.results.length),
      ...f.results,
    );
  const imports = [...uleb(1), ...str('env'), ...str('memory'), 0x02, 0x00, ...uleb(1)];
  const fnsec = [...uleb(funcs.length), ...funcs.flatMap((_, i) => uleb(i))];
  const exports = [...uleb(funcs.length), ...funcs.flatMap((f, i) => [...str(f.name), 0x00, ...uleb(i)])];
  const code = [...uleb(funcs.length), ...funcs.flatMap((f) => f.body.encode())];
  return new Uint8Array([
    0x00,
    0x61,
    0x73,
    0x6d,
    0x01,
    0x00,
    0x00,
    0x00,
    ...section(1, types),
    ...section(2, imports),
    ...section(3, fnsec),
    ...section(7, exports),
    ...section(10, code),
  ]);
}

// The robust rules' base: every accepted update of the round is kept (n x params float32), because median, trimmed mean and Krum need them all at once.
import { BaseStrategy, median, type ClientUpdate, type StrategyEnv } from './strategy.ts';
import type { StrategySpec } from './spec.ts';
import type { ServerOptimiser } from './server.ts';
import type { NamedTensor } from './tensors.ts';
import type { UpdateStore } from './kernels/types.ts';
import { JsUpdateStore } from './kernels/reference.ts';
import { WasmUpdateStore, simdAvailable } from './kernels/simd.ts';

export abstract class BufferedStrategy extends BaseStrategy {
  protected store: UpdateStore;
  protected clipBound: number | null = null;
  get backend(): 'wasm' | 'js' {
    return this.store.backend;
  }

  constructor(spec: StrategySpec, weights: NamedTensor[], server: ServerOptimiser, env: StrategyEnv) {
    super(spec, weights, server);
    this.store =
      env.backend === 'js' || !simdAvailable()
        ? new JsUpdateStore(this.layout.size)
        : new WasmUpdateStore(this.layout.size);
  }

  protected openRound(): void {
    this.store.reset();
    this.clipBound = this.clipAtOpen();
  }
  protected closeRound(): void {
    this.store.reset();
  }

  /** Adaptive clipping here uses the round's own median norm, known only once every update is in. */
  protected override roundClip(): number | null {
    return this.spec.options.clip?.mode === 'adaptive' ? null : this.clipAtOpen();
  }

  /** wasm32 memory ends at 4 GiB (or the host refuses to grow it): the round's updates move to plain arrays and the JS kernels. */
  private moveToJs(): void {
    const s = this.store;
    if (!(s instanceof WasmUpdateStore)) return;
    const js = new JsUpdateStore(this.layout.size);
    for (let i = 0; i < s.count; i++) js.push(s.read(i));
    s.dispose();
    this.store = js;
  }

  protected ingest(_update: ClientUpdate, parts: Float32Array[]): { norm: number; clipped: boolean } {
    if (this.store instanceof WasmUpdateStore && !this.store.canGrow()) this.moveToJs();
    let ss: number;
    try {
      ss = this.store.stage(parts, this.layout.offsets);
    } catch (e) {
      if (!(e instanceof RangeError) || !(this.store instanceof WasmUpdateStore)) throw e;
      this.moveToJs();
      ss = this.store.stage(parts, this.layout.offsets);
    }
    const norm = this.normOf(ss, parts);
    this.store.commit();
    const fixed = this.spec.options.clip?.mode === 'fixed' ? this.clipBound : null;
    const clipped = fixed !== null && norm > fixed;
    if (clipped) this.store.scale(this.store.count - 1, fixed / norm);
    return { norm, clipped };
  }

  /** Applies adaptive clipping (multiplier x this round's median norm) before the rule runs. */
  protected clipAdaptive(): Record<string, number> {
    const clip = this.spec.options.clip;
    if (clip === null) return {};
    if (clip.mode === 'fixed') return { clipBound: clip.norm };
    const bound = clip.multiplier * median(this.norms);
    this.norms.forEach((norm, i) => {
      if (norm > bound) {
        this.store.scale(i, bound / norm);
        this.clippedCount++;
      }
    });
    return { clipBound: bound };
  }

  protected heldBytes(): number {
    return this.store.bytes;
  }
  dispose(): void {
    this.store.dispose();
  }
}

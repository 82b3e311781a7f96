// Faster Slice and Unpack kernels for the wasm backend: tfjs 4.22's copy the whole input out of the wasm heap
// (readSync) for every slice, so unstacking [16,128,128] took ~40 ms; these read the heap in place.
import * as tf from '@tensorflow/tfjs';

interface WasmBackendLike {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
}

type SliceArgs = {
  inputs: { x: tf.TensorInfo };
  attrs: { begin: number[]; size: number[] };
  backend: WasmBackendLike;
};
type KernelFn = (args: SliceArgs) => tf.TensorInfo;

let installed = false;

/** Replaces the wasm backend's Slice and Unpack kernels (idempotent). Non-contiguous slices use the original. */
export function installWasmKernels(): void {
  if (installed) return;
  const original = tf.getKernel('Slice', 'wasm');
  if (original === undefined || tf.getKernel('Unpack', 'wasm') === undefined) return;
  const originalSlice = original.kernelFunc as unknown as KernelFn;

  const slice: KernelFn = (args) => {
    const { x } = args.inputs;
    const [begin, size] = tf.slice_util.parseSliceParams(x as tf.Tensor, args.attrs.begin, args.attrs.size);
    if (x.dtype === 'string' || !tf.slice_util.isSliceContinous(x.shape, begin, size))
      return originalSlice(args);
    const out = args.backend.makeOutput(size, x.dtype);
    const n = size.reduce((a, b) => a * b, 1);
    const offset = tf.slice_util.computeFlatOffset(begin, tf.util.computeStrides(x.shape));
    // Views taken after makeOutput: allocating may grow the heap and detach older views.
    args.backend.typedArrayFromHeap(out).set(args.backend.typedArrayFromHeap(x).subarray(offset, offset + n));
    return out;
  };

  const unpack = (args: {
    inputs: { value: tf.TensorInfo };
    attrs: { axis: number };
    backend: WasmBackendLike;
  }) => {
    const { value } = args.inputs;
    const rank = value.shape.length;
    const axis = args.attrs.axis < 0 ? args.attrs.axis + rank : args.attrs.axis;
    const outShape = value.shape.filter((_, i) => i !== axis);
    const begin = new Array<number>(rank).fill(0);
    const size = value.shape.slice();
    size[axis] = 1;
    const outs: tf.TensorInfo[] = [];
    for (let i = 0; i < value.shape[axis]!; i++) {
      begin[axis] = i;
      const o = slice({ inputs: { x: value }, attrs: { begin: begin.slice(), size }, backend: args.backend });
      outs.push({ dataId: o.dataId, dtype: o.dtype, shape: outShape });
    }
    return outs;
  };

  tf.unregisterKernel('Slice', 'wasm');
  tf.registerKernel({
    kernelName: 'Slice',
    backendName: 'wasm',
    kernelFunc: slice as unknown as tf.KernelFunc,
  });
  tf.unregisterKernel('Unpack', 'wasm');
  tf.registerKernel({
    kernelName: 'Unpack',
    backendName: 'wasm',
    kernelFunc: unpack as unknown as tf.KernelFunc,
  });
  installed = true;
}

/** A full garbage collection from a test, without starting node with --expose-gc. */
import v8 from 'node:v8';
import vm from 'node:vm';

v8.setFlagsFromString('--expose-gc');
const collect = vm.runInNewContext('gc') as () => void;

/** Collects twice after the current job, so WeakRefs made in it can clear. */
export async function fullGc(): Promise<void> {
  await new Promise((r) => setImmediate(r));
  collect();
  collect();
  await new Promise((r) => setImmediate(r));
}

/** Bytes held by JS objects and array buffers, after a full collection. */
export async function heldBytes(): Promise<number> {
  await fullGc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

/**
 * Time as a seam: everything that waits or decides from time takes a Clock, so tests drive it
 * with a fake clock instead of sleeping.
 */
export type TimerHandle = { readonly __timer: unique symbol } | NodeJS.Timeout;

export interface Clock {
  /** Milliseconds, monotonic. */
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle | undefined): void;
}

export const systemClock: Clock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    return t;
  },
  clearTimeout: (h) => { if (h !== undefined) clearTimeout(h as NodeJS.Timeout); },
};

/** Timers that do not keep the process alive (background sampling, sweeps). */
export function unrefTimer(h: TimerHandle): TimerHandle {
  (h as NodeJS.Timeout).unref?.();
  return h;
}

/** Simulated labelled traffic for the selection-policy tests (not a test file itself). */
import { seededRandom } from '../../../src/query/selection/random.ts';
import type { ModelOutput, Params, SelectionPolicy } from '../../../src/query/selection/types.ts';

export interface SimOptions {
  /** Probability that each model predicts the right class. */
  accuracy: Record<string, number>;
  events: number;
  seed: number;
  params?: Params;
  /** Models linked (default: the keys of `accuracy`). */
  models?: string[];
  uid?: string;
}

export interface World {
  /** The world's own randomness (labels, model errors), separate from the policy's. */
  next(): { label: string; feedback: ModelOutput[] };
}

const CLASSES = ['cat', 'dog', 'bird'];

export function world(accuracy: Record<string, number>, seed: number): World {
  const rand = seededRandom(seed);
  return {
    next() {
      const label = CLASSES[Math.floor(rand() * CLASSES.length)]!;
      const feedback = Object.entries(accuracy).map(([model, acc]) => {
        const wrong = CLASSES.filter((c) => c !== label);
        const output = rand() < acc ? label : wrong[Math.floor(rand() * wrong.length)]!;
        return { model, output };
      });
      return { label, feedback };
    },
  };
}

/**
 * select → feedback with every model's output → update, `events` times. Returns the final state
 * and the model chosen (primary[0]) at each event.
 */
export function simulate<S>(policy: SelectionPolicy<S>, o: SimOptions, start?: S, w?: World, rand?: () => number) {
  const models = o.models ?? Object.keys(o.accuracy);
  const params = policy.validateParams(o.params ?? {}, models);
  const policyRand = rand ?? seededRandom(o.seed * 7919 + 1);
  const env = w ?? world(o.accuracy, o.seed);
  let state = start ?? policy.init(models, params);
  const picks: string[] = [];
  for (let i = 0; i < o.events; i++) {
    const sel = policy.select(state, models, params, { uid: o.uid, rand: policyRand });
    picks.push(sel.primary[0]!);
    const { label, feedback } = env.next();
    state = policy.update(state, feedback.filter((f) => models.includes(f.model)), label, params);
  }
  return { state, picks, params, models };
}

export function share(picks: readonly string[], model: string): number {
  return picks.filter((p) => p === model).length / picks.length;
}

/** The selection policies by name. */
import { epsilonGreedy, ucb1 } from './bandits.ts';
import { exp3, exp4 } from './hedge.ts';
import { shadow, single, weighted } from './static.ts';
import type { PolicyName, SelectionPolicy } from './types.ts';

export type { Combined, ModelOutput, Params, PolicyName, SelectContext, Selection, SelectionPolicy } from './types.ts';
export { combineOutputs, kindOf } from './combine.ts';
export { loss } from './loss.ts';
export { seededRandom } from './random.ts';

export const POLICY_NAMES: readonly PolicyName[] = ['single', 'weighted', 'shadow', 'exp3', 'exp4', 'epsilon-greedy', 'ucb1'];

const POLICIES: Record<PolicyName, SelectionPolicy<unknown>> = {
  single: single as SelectionPolicy<unknown>,
  weighted: weighted as SelectionPolicy<unknown>,
  shadow: shadow as SelectionPolicy<unknown>,
  exp3: exp3 as SelectionPolicy<unknown>,
  exp4: exp4 as SelectionPolicy<unknown>,
  'epsilon-greedy': epsilonGreedy as SelectionPolicy<unknown>,
  ucb1: ucb1 as SelectionPolicy<unknown>,
};

export function isPolicyName(name: unknown): name is PolicyName {
  return typeof name === 'string' && (POLICY_NAMES as readonly string[]).includes(name);
}

/** The policy called `name`; throws for an unknown name, listing the valid ones. */
export function getPolicy(name: string): SelectionPolicy<unknown> {
  if (!isPolicyName(name)) {
    throw new Error(`unknown selection policy ${JSON.stringify(name)} (valid: ${POLICY_NAMES.join(', ')})`);
  }
  return POLICIES[name];
}

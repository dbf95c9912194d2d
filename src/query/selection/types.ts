/**
 * Model-selection policies: per application, which linked model(s) answer a query, how their
 * outputs combine, and how feedback (`POST /{app}/update {uid?, input, label}`) changes what is
 * learned. Policies are pure: no I/O, no clocks, randomness only through `ctx.rand`. Their state is
 * plain JSON (stored per app and per uid, reloaded after restarts); `update` returns a new state
 * and never mutates the one it was given.
 *
 * Models may be linked and unlinked at any time: every method receives the currently linked
 * models, a model unknown to the state starts at a neutral weight, and state kept for a model that
 * is no longer linked is ignored (and used again if the model is linked again).
 */

export type PolicyName = 'single' | 'weighted' | 'shadow' | 'exp3' | 'exp4' | 'epsilon-greedy' | 'ucb1';

export type Params = Record<string, unknown>;

export interface ModelOutput {
  model: string;
  output: unknown;
}

export interface Selection {
  /** Models whose outputs form the answer (1 for choosers, all linked models for exp4). */
  primary: string[];
  /** Models also asked; their outputs are recorded but never answer. */
  shadow: string[];
}

export interface SelectContext {
  uid?: string;
  /** Uniform in [0, 1). */
  rand: () => number;
}

export interface Combined {
  /** `null` with no contributors: nothing usable arrived (the caller falls back to its default). */
  output: unknown;
  /** In [0, 1]: how much the contributors agree (see combine.ts); 1 for a single contributor. */
  confidence: number;
  contributors: string[];
}

export interface SelectionPolicy<S> {
  name: PolicyName;
  /** Returns the params with defaults filled in; throws an Error naming the bad parameter. */
  validateParams(params: unknown, models: string[]): Params;
  /** Fresh state. */
  init(models: string[], params: Params): S;
  /** Throws when `models` is empty. */
  select(state: S, models: string[], params: Params, ctx: SelectContext): Selection;
  /** `outputs`: what arrived by the deadline (possibly a subset of the selection). */
  combine(state: S, outputs: ModelOutput[], params: Params): Combined;
  /** `feedback`: the models' outputs for the labelled input. Returns the new state. */
  update(state: S, feedback: ModelOutput[], label: unknown, params: Params): S;
  /** Current weight or probability per linked model, for visibility. */
  weights(state: S, models: string[], params: Params): Record<string, number>;
}

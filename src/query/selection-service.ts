/**
 * Applies an application's selection policy: which linked models answer a query (and which only
 * shadow it), how their outputs combine, and how feedback updates the policy's state.
 * The policies themselves are pure (src/query/selection/); this class owns their state
 * (per app, and per uid for contextual selection) and the shadow records.
 */
import { ServingError } from '../errors.ts';
import type { Application } from '../registry/types.ts';
import type { RegistryService } from '../registry/registry-service.ts';
import type { PolicyStateStore, StateRef } from './policy-state.ts';
import { getPolicy, POLICY_NAMES } from './selection/index.ts';
import type { Selection, SelectionPolicy } from './selection/types.ts';

const LEARNING = new Set(['exp3', 'exp4', 'epsilon-greedy', 'ucb1']);
const SHADOW_RECORDS = 200;

export interface ShadowRecord {
  at: string;
  query_id: number;
  primary: { model: string; output: unknown };
  candidates: Array<{ model: string; output?: unknown; error?: string }>;
}

export interface Combined { output: unknown; confidence: number; contributors: string[] }

export class SelectionService {
  private readonly shadowLog = new Map<string, ShadowRecord[]>();

  constructor(private readonly registry: RegistryService, private readonly states: PolicyStateStore) {
    registry.on('app-deleted', (name: string) => {
      this.states.forgetApp(name);
      this.shadowLog.delete(name);
    });
  }

  /** Validates and applies a new policy; its learned state starts fresh. */
  async setPolicy(appName: string, policyName: unknown, params: unknown): Promise<Application> {
    const app = this.registry.requireApp(appName);
    if (typeof policyName !== 'string' || !(POLICY_NAMES as readonly string[]).includes(policyName)) {
      throw new ServingError('INVALID_INPUT', `policy must be one of ${POLICY_NAMES.join(', ')} (got ${JSON.stringify(policyName)})`);
    }
    const policy = getPolicy(policyName);
    if (params !== undefined && params !== null && (typeof params !== 'object' || Array.isArray(params))) {
      throw new ServingError('INVALID_INPUT', 'params must be a JSON object');
    }
    // The confidence threshold belongs to the application (any combining policy), not to one policy.
    const { confidence_threshold: threshold, ...own } = (params ?? {}) as Record<string, unknown>;
    if (threshold !== undefined && (typeof threshold !== 'number' || threshold < 0 || threshold > 1)) {
      throw new ServingError('INVALID_INPUT', `confidence_threshold must be a number between 0 and 1 (got ${JSON.stringify(threshold)})`);
    }
    let checked: Record<string, unknown>;
    try {
      checked = policy.validateParams(own, this.registry.linkedModels(app.name));
    } catch (e) {
      throw new ServingError('INVALID_INPUT', `params for ${policyName}: ${(e as Error).message}`);
    }
    if (threshold !== undefined) checked = { ...checked, confidence_threshold: threshold };
    this.states.forgetApp(app.name);
    return this.registry.setAppPolicy(app.name, policyName, checked);
  }

  private policyOf(app: Application): SelectionPolicy<unknown> {
    return getPolicy(app.policy);
  }

  private async stateFor(app: Application, models: string[], uid: string | undefined): Promise<{ ref: StateRef; state: unknown }> {
    const policy = this.policyOf(app);
    const init = () => policy.init(models, app.policyParams);
    const shared: StateRef = { app: app.name, policy: app.policy };
    if (uid !== undefined && LEARNING.has(app.policy)) {
      const ref: StateRef = { ...shared, uid };
      const global = await this.states.get(shared, init);
      // A new user starts from what the application has learned so far.
      return { ref, state: await this.states.get(ref, () => structuredClone(global)) };
    }
    return { ref: shared, state: await this.states.get(shared, init) };
  }

  async select(app: Application, models: string[], uid: string | undefined): Promise<Selection> {
    const { state } = await this.stateFor(app, models, uid);
    return this.policyOf(app).select(state, models, app.policyParams, { uid, rand: Math.random });
  }

  async combine(app: Application, models: string[], uid: string | undefined, outputs: Array<{ model: string; output: unknown }>): Promise<Combined> {
    if (outputs.length === 1) return { output: outputs[0]!.output, confidence: 1, contributors: [outputs[0]!.model] };
    const { state } = await this.stateFor(app, models, uid);
    return this.policyOf(app).combine(state, outputs, app.policyParams);
  }

  /** Feedback: every linked model's output for the input, and the true label. */
  async update(app: Application, models: string[], uid: string | undefined, feedback: Array<{ model: string; output: unknown }>, label: unknown): Promise<void> {
    if (app.policy === 'single') return;
    const policy = this.policyOf(app);
    const targets = [await this.stateFor(app, models, undefined)];
    if (uid !== undefined && LEARNING.has(app.policy)) targets.push(await this.stateFor(app, models, uid));
    for (const t of targets) await this.states.put(t.ref, policy.update(t.state, feedback, label, app.policyParams));
  }

  async state(app: Application, uid: string | undefined): Promise<Record<string, unknown>> {
    const models = this.registry.linkedModels(app.name);
    const { state } = await this.stateFor(app, models, uid);
    return {
      app_name: app.name,
      policy: app.policy,
      params: app.policyParams,
      models,
      weights: models.length ? this.policyOf(app).weights(state, models, app.policyParams) : {},
      ...(uid !== undefined ? { uid } : {}),
      state,
      shadow_records: this.shadowLog.get(app.name) ?? [],
    };
  }

  recordShadow(app: string, record: ShadowRecord): void {
    let log = this.shadowLog.get(app);
    if (!log) this.shadowLog.set(app, (log = []));
    log.push(record);
    if (log.length > SHADOW_RECORDS) log.splice(0, log.length - SHADOW_RECORDS);
  }
}

/**
 * Every HTTP endpoint of both APIs, each with a well-formed body to start from, and the wrong
 * values the generators put in its fields.
 *
 * Bodies that change state aim at names made for the purpose ("fz-…" applications, a model that
 * does not exist, an artifact path that does not exist), so a mutation the server rightly accepts
 * (a number sent as a string of digits, say) never deletes, rescales or replaces what the suite
 * serves from. A body is built as JSON text from per-field fragments, so fields can hold what
 * JSON.stringify cannot write: 1e400, duplicate keys, a `__proto__` own key.
 */
import { INPUT_TYPES, type InputType } from '../../../src/registry/input-types.ts';
import type { Rng } from './rng.ts';

export interface RealApp {
  name: string;
  type: InputType;
}

export interface Targets {
  /** One application per input type, each linked to a small js model. */
  apps: RealApp[];
  /** The models linked to them. */
  models: string[];
  /** Applications the suite may create, change and delete. */
  scratchApps: string[];
  /** A model name that is never deployed. */
  missingModel: string;
  /** A model_data_path that does not exist (under the artifact root). */
  missingPath: string;
}

/** Field name → JSON text of its value. */
export type Fragments = Array<[string, string]>;

export interface Endpoint {
  api: 'query' | 'admin';
  method: 'GET' | 'POST';
  name: string;
  /** The route as registered (for the odd-methods sweep). */
  route: string;
  /** A well-formed request: where to send it (query endpoints pick an application) and its body (none for GET). */
  make(rng: Rng): { path: string; body?: Fragments };
}

const j = (v: unknown) => JSON.stringify(v);

export function validInput(type: InputType, rng: Rng): unknown {
  switch (type) {
    case 'bytes': return rng.bytes(rng.int(1, 24)).toString('base64');
    case 'ints': return Array.from({ length: rng.int(1, 8) }, () => rng.int(-1000, 1000));
    case 'floats':
    case 'doubles': return Array.from({ length: rng.int(1, 8) }, () => Math.round(rng.float() * 1e4) / 100);
    case 'strings': return rng.ascii(rng.int(1, 40));
  }
}

export function endpoints(t: Targets): Endpoint[] {
  const realApp = (rng: Rng) => rng.pick(t.apps);
  const scratch = (rng: Rng) => rng.pick(t.scratchApps);
  const appForQuery = (rng: Rng) => (rng.chance(0.85) ? realApp(rng) : { name: rng.pick([...t.scratchApps, 'no-such-app']), type: rng.pick(INPUT_TYPES) });
  const admin = (name: string, base: (rng: Rng) => Fragments): Endpoint => ({
    api: 'admin', method: 'POST', name, route: `/admin/${name}`, make: (rng) => ({ path: `/admin/${name}`, body: base(rng) }),
  });
  const get = (api: 'query' | 'admin', name: string, path: string): Endpoint => ({ api, method: 'GET', name, route: path, make: () => ({ path }) });
  return [
    {
      api: 'query', method: 'POST', name: 'predict', route: '/:app/predict',
      make: (rng) => {
        const a = appForQuery(rng);
        const f: Fragments = rng.chance(0.25)
          ? [['input_batch', j(Array.from({ length: rng.int(1, 6) }, () => validInput(a.type, rng)))]]
          : [['input', j(validInput(a.type, rng))]];
        if (rng.chance(0.2)) f.push(['uid', j(`user-${rng.int(0, 50)}`)]);
        if (rng.chance(0.1)) f.push(['version', j('1')]);
        return { path: `/${a.name}/predict`, body: f };
      },
    },
    {
      api: 'query', method: 'POST', name: 'update', route: '/:app/update',
      make: (rng) => {
        const a = appForQuery(rng);
        return { path: `/${a.name}/update`, body: [['input', j(validInput(a.type, rng))], ['label', j(rng.chance(0.5) ? rng.int(0, 3) : 'yes')], ['uid', j(`user-${rng.int(0, 50)}`)]] };
      },
    },
    get('query', 'metrics', '/metrics'),
    get('admin', 'ping', '/admin/ping'),
    get('admin', 'status', '/admin/status'),
    admin('add_app', (rng) => [
      ['name', j(scratch(rng))], ['input_type', j(rng.pick(INPUT_TYPES))], ['default_output', j('none')],
      ['latency_slo_micros', j(rng.int(1000, 1_000_000))], ['overload_default', j(rng.chance(0.5))],
    ]),
    admin('delete_app', (rng) => [['name', j(scratch(rng))]]),
    admin('get_all_applications', (rng) => [['verbose', j(rng.chance(0.5))]]),
    admin('get_application', (rng) => [['name', j(rng.chance(0.5) ? realApp(rng).name : scratch(rng))]]),
    admin('get_linked_models', (rng) => [['app_name', j(realApp(rng).name)]]),
    admin('add_model', (rng) => [
      ['model_name', j(t.missingModel)], ['model_version', j(String(rng.int(1, 9)))], ['input_type', j(rng.pick(INPUT_TYPES))],
      ['runtime', j('js')], ['model_data_path', j(t.missingPath)], ['labels', j(['a', 'b'])], ['batch_size', j(rng.int(0, 64))],
      ['replicas', j(0)], ['cpus', j(0.5)], ['memory_mb', j(128)], ['container_name', j('')],
    ]),
    admin('add_model_links', (rng) => [['app_name', j(scratch(rng))], ['model_names', j([t.missingModel])]]),
    admin('delete_model_links', (rng) => [['app_name', j(scratch(rng))], ['model_names', j([t.missingModel])]]),
    admin('set_model_version', (rng) => [['model_name', j(t.missingModel)], ['model_version', j(String(rng.int(1, 9)))]]),
    admin('delete_versioned_model', (rng) => [['model_name', j(t.missingModel)], ['model_version', j(String(rng.int(1, 9)))]]),
    admin('get_all_models', (rng) => [['verbose', j(rng.chance(0.5))]]),
    admin('get_model', (rng) => [['model_name', j(rng.pick(t.models))], ['model_version', j('1')]]),
    admin('get_all_containers', (rng) => [['verbose', j(rng.chance(0.5))]]),
    admin('get_container', (rng) => [['model_name', j(rng.pick(t.models))], ['model_version', j('1')]]),
    admin('set_num_replicas', (rng) => [['model_name', j(t.missingModel)], ['model_version', j('1')], ['num_replicas', j(rng.int(0, 2))]]),
    admin('set_resources', (rng) => [['model_name', j(t.missingModel)], ['cpus', j(1)], ['memory_mb', j(rng.int(64, 512))]]),
    admin('set_autoscaling', (rng) => [
      ['model_name', j(t.missingModel)], ['enabled', j(true)], ['min_replicas', j(1)], ['max_replicas', j(2)],
      ['upscale_delay_s', j(2)], ['downscale_delay_s', j(30)], ['target_utilization', j(0.7)],
    ]),
    admin('set_selection_policy', (rng) => [['app_name', j(scratch(rng))], ['policy', j(rng.pick(['single', 'exp3', 'epsilon-greedy', 'weighted']))], ['params', j({})]]),
    admin('get_selection_state', (rng) => [['app_name', j(realApp(rng).name)], ['uid', j(`user-${rng.int(0, 9)}`)]]),
    admin('get_replica_logs', (rng) => [['model_name', j(rng.pick(t.models))], ['model_version', j('1')], ['tail', j(rng.int(1, 50))]]),
    admin('set_app_keys', (rng) => [['app_name', j(scratch(rng))], ['keys', j([])]]),
  ];
}

/** JSON text of values of every type but the right one, and of hostile strings. */
export function wrongFragment(rng: Rng): string {
  const r = rng.float();
  if (r < 0.03) return j('x'.repeat(rng.int(64, 400)));
  if (r < 0.04) return j('y'.repeat(100_000));
  if (r < 0.05) return `${'['.repeat(200)}${']'.repeat(200)}`;
  if (r < 0.06) return j(Array.from({ length: 5000 }, (_, i) => i));
  if (r < 0.08) return j(rng.units(rng.int(1, 30)));
  return rng.pick(WRONG);
}

const WRONG = [
  'null', 'true', 'false', '0', '-1', '1.5', '-0', '1e308', '1e400', '-1e400', '9007199254740993', '123456789012345678901234567890',
  '0.000001', '2147483648', '-2147483649', '4294967296', '""', '" "', '"NaN"', '"Infinity"', '"-1"', '"1e309"', '"0x10"', '"1"', '"01"',
  '"99999999999999999999"', '"null"', '"true"', '"doubles"', '"command"', '"\\u0000"', '"a\\u0000b"', '"\\ud800"', '"\\udfff\\ud800"', '"💩"',
  '"../../etc/passwd"', '"%2e%2e%2f"', '"..%2f..%2f"', '"constructor"', '"__proto__"', '"prototype"', '"A B"', '"<script>alert(1)</script>"',
  '"a\\nb"', '"\\r\\n\\r\\nGET / HTTP/1.1"', '"${7*7}"', '"\'; DROP TABLE apps; --"', '[]', '[1]', '["a"]', '[[[]]]', '[null]', '[{}]', '{}', '{"a":1}',
  '{"__proto__":{"polluted":"yes"}}', '{"constructor":{"prototype":{"polluted":"yes"}}}', '{"toString":1,"valueOf":2,"hasOwnProperty":3}',
];

/** Keys nobody expects. */
export const UNKNOWN_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'x', '', ' ', '\u0000', '💩', 'input ', 'INPUT', 'a'.repeat(1000)];

export function textOf(f: Fragments): string {
  return `{${f.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',')}}`;
}

/**
 * One wrong-typed version of a well-formed body: a field replaced, removed, duplicated with a wrong value after the
 * right one, an unknown key added, or the whole body not an object. Returns the text and a label.
 */
export function wrongTypedBody(f: Fragments, rng: Rng): { text: string; label: string } {
  const r = rng.float();
  if (r < 0.06) {
    const whole = rng.pick(['[]', 'null', '"text"', '1', 'true', '[{}]', '', ' ', '{}']);
    return { text: whole, label: `body ${whole || '(empty)'}` };
  }
  if (r < 0.16 && f.length > 0) {
    const i = rng.int(0, f.length - 1);
    const [k] = f.splice(i, 1)[0]!;
    return { text: textOf(f), label: `without ${k}` };
  }
  if (r < 0.24 && f.length > 0) {
    const [k] = rng.pick(f);
    const w = wrongFragment(rng);
    f.push([k, w]);
    return { text: textOf(f), label: `duplicate ${k} (then ${w.slice(0, 30)})` };
  }
  if (r < 0.32) {
    const k = rng.pick(UNKNOWN_KEYS);
    f.push([k, wrongFragment(rng)]);
    return { text: textOf(f), label: `unknown key ${JSON.stringify(k.slice(0, 20))}` };
  }
  // One field (sometimes two) with a wrong value.
  const labels: string[] = [];
  for (let n = rng.chance(0.2) ? 2 : 1; n > 0 && f.length > 0; n--) {
    const i = rng.int(0, f.length - 1);
    const w = wrongFragment(rng);
    f[i] = [f[i]![0], w];
    labels.push(`${f[i]![0]}=${w.length > 30 ? `${w.slice(0, 30)}…(${w.length})` : w}`);
  }
  return { text: textOf(f), label: labels.join(' ') };
}

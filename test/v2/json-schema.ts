/**
 * A minimal JSON Schema checker for the subset rest_predict_v2.yaml uses: $ref (local), type,
 * properties, required, items, anyOf. Keywords it does not know make it throw, so a schema that
 * grows past this subset is noticed rather than passed.
 */
type Schema = Record<string, unknown>;

const ANNOTATIONS = new Set(['title', 'description', 'x-examples']);
const KNOWN = new Set(['$ref', 'type', 'properties', 'required', 'items', 'anyOf']);

export class SchemaChecker {
  constructor(private readonly root: Record<string, unknown>) {}

  /** Schema at a local reference like '#/components/schemas/inference_response'. */
  resolve(ref: string): Schema {
    if (!ref.startsWith('#/')) throw new Error(`only local $ref supported: ${ref}`);
    let node: unknown = this.root;
    for (const part of ref.slice(2).split('/')) node = (node as Record<string, unknown>)[part];
    if (node === undefined) throw new Error(`unresolved $ref ${ref}`);
    return node as Schema;
  }

  /** Error messages (empty when `value` conforms). */
  validate(value: unknown, schemaOrRef: Schema | string, path = '$'): string[] {
    const schema = typeof schemaOrRef === 'string' ? this.resolve(schemaOrRef) : schemaOrRef;
    for (const k of Object.keys(schema)) {
      if (!KNOWN.has(k) && !ANNOTATIONS.has(k)) throw new Error(`schema keyword '${k}' at ${path} is outside this checker's subset`);
    }
    if (typeof schema.$ref === 'string') return this.validate(value, schema.$ref, path);
    const errors: string[] = [];
    if (typeof schema.type === 'string' && !hasType(value, schema.type)) {
      return [`${path}: expected ${schema.type}, got ${Array.isArray(value) ? 'array' : value === null ? 'null' : typeof value}`];
    }
    if (Array.isArray(schema.anyOf)) {
      const ok = (schema.anyOf as Schema[]).some((s) => this.validate(value, s, path).length === 0);
      if (!ok) errors.push(`${path}: matches none of anyOf`);
    }
    if (isObject(value)) {
      for (const r of (schema.required as string[] | undefined) ?? []) {
        if (!(r in value)) errors.push(`${path}: missing required '${r}'`);
      }
      const props = (schema.properties as Record<string, Schema> | undefined) ?? {};
      for (const [k, s] of Object.entries(props)) {
        if (k in value) errors.push(...this.validate(value[k], s, `${path}.${k}`));
      }
    }
    if (Array.isArray(value) && schema.items !== undefined) {
      value.forEach((v, i) => errors.push(...this.validate(v, schema.items as Schema, `${path}[${i}]`)));
    }
    return errors;
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function hasType(v: unknown, type: string): boolean {
  switch (type) {
    case 'object': return isObject(v);
    case 'array': return Array.isArray(v);
    case 'string': return typeof v === 'string';
    case 'boolean': return typeof v === 'boolean';
    case 'number': return typeof v === 'number';
    case 'integer': return typeof v === 'number' && Number.isInteger(v);
    default: throw new Error(`unknown schema type ${type}`);
  }
}

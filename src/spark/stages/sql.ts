/** SQLTransformer: `SELECT *, <expr> AS name ... FROM __THIS__ [WHERE ...]`, compiled to closures over row slots. */
import { RowError, UnsupportedStageError } from '../errors.ts';
import { columnsOf, parseSelect, type Expr, type SqlValue } from '../sql-expression.ts';
import { describe, type LoadCtx, type Stage, type Value } from '../runtime.ts';

type Fn = (s: Value[]) => SqlValue;

function toNum(v: SqlValue): number | null {
  if (v === null) return null;
  if (typeof v === 'number') return v;
  if (typeof v === 'boolean') return v ? 1 : 0;
  const t = v.trim();
  if (t === '') return null;
  const n = Number(t);
  return Number.isNaN(n) && t !== 'NaN' ? null : n;
}

function toStr(v: SqlValue): string | null {
  return v === null ? null : String(v);
}

function toBool(v: SqlValue): boolean | null {
  if (v === null) return null;
  if (typeof v === 'boolean') return v;
  if (typeof v === 'number') return v !== 0;
  const t = v.trim().toLowerCase();
  return t === 'true' ? true : t === 'false' ? false : null;
}

/** -1/0/1 with Spark's implicit casts (string vs number compares numerically); null if either is null. */
function compare(a: SqlValue, b: SqlValue): number | null {
  if (a === null || b === null) return null;
  if (typeof a === 'string' && typeof b === 'string') return a < b ? -1 : a > b ? 1 : 0;
  const x = toNum(a);
  const y = toNum(b);
  if (x === null || y === null) return null;
  if (Number.isNaN(x) || Number.isNaN(y)) return Number.isNaN(x) ? (Number.isNaN(y) ? 0 : 1) : -1; // NaN is largest
  return x < y ? -1 : x > y ? 1 : 0;
}

function numeric1(f: (x: number) => number): (args: SqlValue[]) => SqlValue {
  return (a) => {
    const x = toNum(a[0]);
    return x === null ? null : f(x);
  };
}

const FUNCTIONS: Record<string, (args: SqlValue[]) => SqlValue> = {
  abs: numeric1(Math.abs),
  sqrt: numeric1((x) => (x < 0 ? NaN : Math.sqrt(x))),
  exp: numeric1(Math.exp),
  ln: numeric1((x) => (x <= 0 ? NaN : Math.log(x))),
  log10: numeric1((x) => (x <= 0 ? NaN : Math.log10(x))),
  log2: numeric1((x) => (x <= 0 ? NaN : Math.log2(x))),
  log1p: numeric1(Math.log1p),
  expm1: numeric1(Math.expm1),
  floor: numeric1(Math.floor),
  ceil: numeric1(Math.ceil),
  ceiling: numeric1(Math.ceil),
  sign: numeric1(Math.sign),
  signum: numeric1(Math.sign),
  sin: numeric1(Math.sin),
  cos: numeric1(Math.cos),
  tan: numeric1(Math.tan),
  atan: numeric1(Math.atan),
  log: (a) => {
    if (a.length === 1) return FUNCTIONS.ln(a);
    const b = toNum(a[0]);
    const x = toNum(a[1]);
    return b === null || x === null ? null : b <= 0 || x <= 0 ? NaN : Math.log(x) / Math.log(b);
  },
  pow: (a) => {
    const x = toNum(a[0]);
    const y = toNum(a[1]);
    return x === null || y === null ? null : Math.pow(x, y);
  },
  round: (a) => {
    const x = toNum(a[0]);
    const d = a.length > 1 ? toNum(a[1]) : 0;
    if (x === null || d === null) return null;
    const f = Math.pow(10, d);
    return (Math.sign(x) * Math.round(Math.abs(x) * f)) / f; // HALF_UP
  },
  greatest: (a) => extreme(a, 1),
  least: (a) => extreme(a, -1),
  coalesce: (a) => a.find((x) => x !== null) ?? null,
  nvl: (a) => (a[0] !== null ? a[0] : a[1]),
  nullif: (a) => (compare(a[0], a[1]) === 0 ? null : a[0]),
  isnull: (a) => a[0] === null,
  isnotnull: (a) => a[0] !== null,
  isnan: (a) => typeof a[0] === 'number' && Number.isNaN(a[0]),
  nanvl: (a) => (typeof a[0] === 'number' && Number.isNaN(a[0]) ? a[1] : a[0]),
  if: (a) => (toBool(a[0]) === true ? a[1] : a[2]),
  concat: (a) => (a.some((x) => x === null) ? null : a.map((x) => String(x)).join('')),
  concat_ws: (a) => (a[0] === null ? null : a.slice(1).filter((x) => x !== null).map(String).join(String(a[0]))),
  lower: (a) => toStr(a[0])?.toLowerCase() ?? null,
  upper: (a) => toStr(a[0])?.toUpperCase() ?? null,
  length: (a) => (a[0] === null ? null : [...String(a[0])].length),
  trim: (a) => toStr(a[0])?.trim() ?? null,
  ltrim: (a) => toStr(a[0])?.trimStart() ?? null,
  rtrim: (a) => toStr(a[0])?.trimEnd() ?? null,
  substring: (a) => {
    const str = toStr(a[0]);
    const pos = toNum(a[1]);
    const len = a.length > 2 ? toNum(a[2]) : Infinity;
    if (str === null || pos === null || len === null) return null;
    const chars = [...str];
    const start = pos > 0 ? pos - 1 : pos < 0 ? Math.max(0, chars.length + pos) : 0;
    return chars.slice(start, len === Infinity ? undefined : start + Math.max(0, len)).join('');
  },
};
FUNCTIONS.power = FUNCTIONS.pow;
FUNCTIONS.ifnull = FUNCTIONS.nvl;
FUNCTIONS.iff = FUNCTIONS.if;
FUNCTIONS.lcase = FUNCTIONS.lower;
FUNCTIONS.ucase = FUNCTIONS.upper;
FUNCTIONS.substr = FUNCTIONS.substring;
FUNCTIONS.char_length = FUNCTIONS.length;

function extreme(a: SqlValue[], dir: number): SqlValue {
  let best: SqlValue = null;
  for (const x of a) if (x !== null && (best === null || (compare(x, best) ?? 0) * dir > 0)) best = x;
  return best;
}

function cast(v: SqlValue, type: string): SqlValue {
  switch (type) {
    case 'double':
    case 'float':
    case 'real':
      return toNum(v);
    case 'int':
    case 'integer':
    case 'bigint':
    case 'long':
    case 'smallint':
    case 'tinyint': {
      const n = toNum(v);
      return n === null || !Number.isFinite(n) ? null : Math.trunc(n);
    }
    case 'string':
    case 'varchar':
    case 'char':
      return toStr(v);
    case 'boolean':
      return toBool(v);
    default:
      throw new Error(`CAST to ${type} is not supported`);
  }
}

function arith(op: string, x: number, y: number): number | null {
  switch (op) {
    case '+':
      return x + y;
    case '-':
      return x - y;
    case '*':
      return x * y;
    case '/':
      return y === 0 ? null : x / y;
    case '%':
      return y === 0 ? null : x % y;
    case 'div':
      return y === 0 ? null : Math.trunc(x / y);
  }
  return null;
}

export function compileExpr(e: Expr, slotOf: (name: string) => number): Fn {
  const c = (x: Expr): Fn => compileExpr(x, slotOf);
  switch (e.t) {
    case 'lit': {
      const v = e.v;
      return () => v;
    }
    case 'col': {
      const slot = slotOf(e.name);
      const name = e.name;
      return (s) => {
        const v = s[slot];
        if (v === undefined || v === null) return null;
        if (typeof v === 'object') throw new RowError(`column "${name}" is not a scalar`, name);
        return v;
      };
    }
    case 'un': {
      const f = c(e.e);
      if (e.op === 'neg') return (s) => {
        const x = toNum(f(s));
        return x === null ? null : -x;
      };
      return (s) => {
        const b = toBool(f(s));
        return b === null ? null : !b;
      };
    }
    case 'isnull': {
      const f = c(e.e);
      const not = e.not;
      return (s) => (f(s) === null) !== not;
    }
    case 'bin': {
      const l = c(e.l);
      const r = c(e.r);
      const op = e.op;
      if (op === 'and') return (s) => {
        const a = toBool(l(s));
        if (a === false) return false;
        const b = toBool(r(s));
        if (b === false) return false;
        return a === null || b === null ? null : true;
      };
      if (op === 'or') return (s) => {
        const a = toBool(l(s));
        if (a === true) return true;
        const b = toBool(r(s));
        if (b === true) return true;
        return a === null || b === null ? null : false;
      };
      if (op === '||') return (s) => {
        const a = l(s);
        const b = r(s);
        return a === null || b === null ? null : String(a) + String(b);
      };
      if (op === '<=>') return (s) => {
        const a = l(s);
        const b = r(s);
        return a === null || b === null ? a === b : compare(a, b) === 0;
      };
      if (['=', '!=', '<', '<=', '>', '>='].includes(op)) {
        return (s) => {
          const k = compare(l(s), r(s));
          if (k === null) return null;
          return op === '=' ? k === 0 : op === '!=' ? k !== 0 : op === '<' ? k < 0 : op === '<=' ? k <= 0 : op === '>' ? k > 0 : k >= 0;
        };
      }
      return (s) => {
        const x = toNum(l(s));
        const y = toNum(r(s));
        return x === null || y === null ? null : arith(op, x, y);
      };
    }
    case 'in': {
      const f = c(e.e);
      const list = e.list.map(c);
      const not = e.not;
      return (s) => {
        const v = f(s);
        if (v === null) return null;
        let sawNull = false;
        for (const g of list) {
          const k = compare(v, g(s));
          if (k === 0) return !not;
          if (k === null) sawNull = true;
        }
        return sawNull ? null : not;
      };
    }
    case 'between': {
      const f = c(e.e);
      const lo = c(e.lo);
      const hi = c(e.hi);
      const not = e.not;
      return (s) => {
        const v = f(s);
        const a = compare(v, lo(s));
        const b = compare(v, hi(s));
        if (a === null || b === null) return null;
        return (a >= 0 && b <= 0) !== not;
      };
    }
    case 'case': {
      const subject = e.subject ? c(e.subject) : null;
      const whens = e.whens.map(([w, t]) => [c(w), c(t)] as const);
      const otherwise = e.else ? c(e.else) : () => null;
      return (s) => {
        const sv = subject ? subject(s) : null;
        for (const [w, t] of whens) {
          const hit = subject ? compare(sv, w(s)) === 0 : toBool(w(s)) === true;
          if (hit) return t(s);
        }
        return otherwise(s);
      };
    }
    case 'cast': {
      const f = c(e.e);
      const type = e.type;
      cast(null, type); // validate the type at compile time
      return (s) => cast(f(s), type);
    }
    case 'call': {
      const fn = FUNCTIONS[e.name];
      if (!fn) throw new Error(`SQL function ${e.name} is not supported`);
      const args = e.args.map(c);
      if (e.name === 'if' || e.name === 'iff') {
        const [cond, a, b] = args;
        return (s) => (toBool(cond(s)) === true ? a(s) : b ? b(s) : null);
      }
      const vals: SqlValue[] = new Array(args.length);
      return (s) => {
        for (let i = 0; i < args.length; i++) vals[i] = args[i](s);
        return fn(vals);
      };
    }
  }
}

export async function sqlTransformer(ctx: LoadCtx): Promise<Stage> {
  const m = ctx.meta;
  const who = describe(ctx);
  const statement = m.str('statement');
  let parsed;
  try {
    parsed = parseSelect(statement);
  } catch (e) {
    throw new UnsupportedStageError(m.className, `statement ${JSON.stringify(statement)}: ${(e as Error).message}`);
  }
  const outputs: string[] = [];
  const inputs = new Set<string>();
  const assigns: Array<{ slot: number; fn: Fn }> = [];
  const slotOf = (name: string): number => ctx.cols.slot(name);
  try {
    for (const item of parsed.items) {
      if (!item.expr) continue;
      for (const col of columnsOf(item.expr)) if (!outputs.includes(col)) inputs.add(col);
      const name = item.alias ?? (item.expr.t === 'col' ? item.expr.name : undefined);
      if (!name) throw new Error('every computed column needs an alias (AS name)');
      if (item.expr.t === 'col' && item.expr.name === name) continue; // plain pass-through
      assigns.push({ slot: ctx.cols.slot(name), fn: compileExpr(item.expr, slotOf) });
      outputs.push(name);
      ctx.cols.setInfo(name, { kind: 'unknown' });
    }
  } catch (e) {
    throw new UnsupportedStageError(m.className, `statement ${JSON.stringify(statement)}: ${(e as Error).message}`);
  }
  let where: Fn | null = null;
  if (parsed.where) {
    for (const col of columnsOf(parsed.where)) if (!outputs.includes(col)) inputs.add(col);
    where = compileExpr(parsed.where, slotOf);
  }
  return {
    uid: m.uid,
    className: m.className,
    inputs: [...inputs],
    outputs,
    run(s) {
      if (where && toBool(where(s)) !== true) throw new RowError(`row filtered out by the WHERE clause of ${who}`);
      for (let i = 0; i < assigns.length; i++) {
        const v = assigns[i].fn(s);
        s[assigns[i].slot] = v;
      }
    },
  };
}

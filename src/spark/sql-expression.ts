/**
 * A small Spark SQL subset for SQLTransformer statements of the form
 * `SELECT *, <expr> AS name, ... FROM __THIS__ [WHERE <expr>]`:
 * arithmetic, comparisons, AND/OR/NOT, IS [NOT] NULL, IN, BETWEEN, IF, CASE, CAST, CONCAT and common functions.
 */

export type SqlValue = number | string | boolean | null;

export type Expr =
  | { t: 'lit'; v: SqlValue }
  | { t: 'col'; name: string }
  | { t: 'un'; op: string; e: Expr }
  | { t: 'bin'; op: string; l: Expr; r: Expr }
  | { t: 'isnull'; e: Expr; not: boolean }
  | { t: 'in'; e: Expr; list: Expr[]; not: boolean }
  | { t: 'between'; e: Expr; lo: Expr; hi: Expr; not: boolean }
  | { t: 'case'; subject: Expr | null; whens: Array<[Expr, Expr]>; else: Expr | null }
  | { t: 'cast'; e: Expr; type: string }
  | { t: 'call'; name: string; args: Expr[] };

export interface SelectItem {
  expr: Expr | null; // null for *
  alias?: string;
}

export interface SelectStatement {
  items: SelectItem[];
  where: Expr | null;
}

type Tok = { k: 'id' | 'qid' | 'num' | 'str' | 'op' | 'eof'; v: string };

function tokenize(src: string): Tok[] {
  const toks: Tok[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i];
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === '-' && src[i + 1] === '-') {
      while (i < src.length && src[i] !== '\n') i++;
      continue;
    }
    if (/[A-Za-z_]/.test(c)) {
      let j = i + 1;
      while (j < src.length && /[A-Za-z0-9_]/.test(src[j])) j++;
      toks.push({ k: 'id', v: src.slice(i, j) });
      i = j;
      continue;
    }
    if (/[0-9]/.test(c) || (c === '.' && /[0-9]/.test(src[i + 1] ?? ''))) {
      const m = /^(\d*\.?\d*(?:[eE][+-]?\d+)?)([LlDdFfSsYy]|BD)?/.exec(src.slice(i))!;
      toks.push({ k: 'num', v: m[1] });
      i += m[0].length;
      continue;
    }
    if (c === "'" || c === '"') {
      let j = i + 1;
      let s = '';
      for (;;) {
        if (j >= src.length) throw new Error('unterminated string literal');
        const ch = src[j];
        if (ch === c) {
          if (src[j + 1] === c) {
            s += c;
            j += 2;
            continue;
          }
          break;
        }
        if (ch === '\\' && j + 1 < src.length) {
          const n = src[j + 1];
          s += n === 'n' ? '\n' : n === 't' ? '\t' : n;
          j += 2;
          continue;
        }
        s += ch;
        j++;
      }
      toks.push({ k: 'str', v: s });
      i = j + 1;
      continue;
    }
    if (c === '`') {
      const j = src.indexOf('`', i + 1);
      if (j < 0) throw new Error('unterminated quoted identifier');
      toks.push({ k: 'qid', v: src.slice(i + 1, j) });
      i = j + 1;
      continue;
    }
    const two = src.slice(i, i + 3) === '<=>' ? '<=>' : src.slice(i, i + 2);
    if (['<=>', '<=', '>=', '<>', '!=', '==', '||'].includes(two)) {
      toks.push({ k: 'op', v: two });
      i += two.length;
      continue;
    }
    if ('+-*/%=<>(),!'.includes(c)) {
      toks.push({ k: 'op', v: c });
      i++;
      continue;
    }
    throw new Error(`unexpected character ${JSON.stringify(c)}`);
  }
  toks.push({ k: 'eof', v: '' });
  return toks;
}

const KEYWORDS = new Set(['select', 'from', 'where', 'as', 'and', 'or', 'not', 'is', 'null', 'in', 'between', 'case', 'when', 'then', 'else', 'end', 'like']);

class Parser {
  private p = 0;
  constructor(private readonly toks: Tok[]) {}

  private peek(o = 0): Tok {
    return this.toks[Math.min(this.p + o, this.toks.length - 1)];
  }
  private isKw(w: string, o = 0): boolean {
    const t = this.peek(o);
    return t.k === 'id' && t.v.toLowerCase() === w;
  }
  private isOp(v: string): boolean {
    const t = this.peek();
    return t.k === 'op' && t.v === v;
  }
  private next(): Tok {
    return this.toks[this.p++];
  }
  private expectKw(w: string): void {
    if (!this.isKw(w)) throw new Error(`expected ${w.toUpperCase()} near "${this.peek().v}"`);
    this.p++;
  }
  private expectOp(v: string): void {
    if (!this.isOp(v)) throw new Error(`expected "${v}" near "${this.peek().v}"`);
    this.p++;
  }

  statement(): SelectStatement {
    this.expectKw('select');
    const items: SelectItem[] = [];
    do {
      if (this.isOp('*')) {
        this.p++;
        items.push({ expr: null });
        continue;
      }
      const expr = this.expr();
      let alias: string | undefined;
      if (this.isKw('as')) {
        this.p++;
        alias = this.ident();
      } else if ((this.peek().k === 'id' && !KEYWORDS.has(this.peek().v.toLowerCase())) || this.peek().k === 'qid') {
        alias = this.ident();
      }
      items.push({ expr, alias });
    } while (this.isOp(',') && this.next());
    this.expectKw('from');
    const table = this.ident();
    if (table !== '__THIS__') throw new Error(`only FROM __THIS__ is supported, got ${table}`);
    let where: Expr | null = null;
    if (this.isKw('where')) {
      this.p++;
      where = this.expr();
    }
    if (this.peek().k !== 'eof') throw new Error(`unsupported SQL near "${this.peek().v}"`);
    return { items, where };
  }

  private ident(): string {
    const t = this.next();
    if (t.k !== 'id' && t.k !== 'qid') throw new Error(`expected a name near "${t.v}"`);
    return t.v;
  }

  expr(): Expr {
    return this.or();
  }
  private or(): Expr {
    let l = this.and();
    while (this.isKw('or')) {
      this.p++;
      l = { t: 'bin', op: 'or', l, r: this.and() };
    }
    return l;
  }
  private and(): Expr {
    let l = this.not();
    while (this.isKw('and')) {
      this.p++;
      l = { t: 'bin', op: 'and', l, r: this.not() };
    }
    return l;
  }
  private not(): Expr {
    if (this.isKw('not') || this.isOp('!')) {
      this.p++;
      return { t: 'un', op: 'not', e: this.not() };
    }
    return this.comparison();
  }
  private comparison(): Expr {
    const l = this.additive();
    const t = this.peek();
    if (t.k === 'op' && ['=', '==', '!=', '<>', '<', '<=', '>', '>=', '<=>'].includes(t.v)) {
      this.p++;
      const op = t.v === '==' ? '=' : t.v === '<>' ? '!=' : t.v;
      return { t: 'bin', op, l, r: this.additive() };
    }
    if (this.isKw('is')) {
      this.p++;
      const not = this.isKw('not');
      if (not) this.p++;
      this.expectKw('null');
      return { t: 'isnull', e: l, not };
    }
    const not = this.isKw('not') && (this.isKw('in', 1) || this.isKw('between', 1));
    if (not) this.p++;
    if (this.isKw('in')) {
      this.p++;
      this.expectOp('(');
      const list = [this.expr()];
      while (this.isOp(',')) {
        this.p++;
        list.push(this.expr());
      }
      this.expectOp(')');
      return { t: 'in', e: l, list, not };
    }
    if (this.isKw('between')) {
      this.p++;
      const lo = this.additive();
      this.expectKw('and');
      return { t: 'between', e: l, lo, hi: this.additive(), not };
    }
    return l;
  }
  private additive(): Expr {
    let l = this.multiplicative();
    for (;;) {
      const t = this.peek();
      if (t.k === 'op' && (t.v === '+' || t.v === '-' || t.v === '||')) {
        this.p++;
        l = { t: 'bin', op: t.v, l, r: this.multiplicative() };
      } else return l;
    }
  }
  private multiplicative(): Expr {
    let l = this.unary();
    for (;;) {
      const t = this.peek();
      if (t.k === 'op' && (t.v === '*' || t.v === '/' || t.v === '%')) {
        this.p++;
        l = { t: 'bin', op: t.v, l, r: this.unary() };
      } else if (this.isKw('div')) {
        this.p++;
        l = { t: 'bin', op: 'div', l, r: this.unary() };
      } else return l;
    }
  }
  private unary(): Expr {
    if (this.isOp('-') || this.isOp('+')) {
      const op = this.next().v;
      const e = this.unary();
      return op === '-' ? { t: 'un', op: 'neg', e } : e;
    }
    return this.primary();
  }
  private primary(): Expr {
    const t = this.next();
    if (t.k === 'num') return { t: 'lit', v: Number(t.v) };
    if (t.k === 'str') return { t: 'lit', v: t.v };
    if (t.k === 'qid') return { t: 'col', name: t.v };
    if (t.k === 'op' && t.v === '(') {
      const e = this.expr();
      this.expectOp(')');
      return e;
    }
    if (t.k !== 'id') throw new Error(`unexpected "${t.v}"`);
    const w = t.v.toLowerCase();
    if (w === 'null') return { t: 'lit', v: null };
    if (w === 'true' || w === 'false') return { t: 'lit', v: w === 'true' };
    if (w === 'case') return this.caseExpr();
    if (w === 'cast' && this.isOp('(')) {
      this.p++;
      const e = this.expr();
      this.expectKw('as');
      let type = this.ident().toLowerCase();
      if (this.isOp('(')) {
        while (!this.isOp(')')) this.p++;
        this.p++;
      }
      if (type === 'decimal' || type === 'numeric') type = 'double';
      this.expectOp(')');
      return { t: 'cast', e, type };
    }
    if (this.isOp('(')) {
      this.p++;
      const args: Expr[] = [];
      if (!this.isOp(')')) {
        args.push(this.expr());
        while (this.isOp(',')) {
          this.p++;
          args.push(this.expr());
        }
      }
      this.expectOp(')');
      return { t: 'call', name: w, args };
    }
    return { t: 'col', name: t.v };
  }
  private caseExpr(): Expr {
    const subject = this.isKw('when') ? null : this.expr();
    const whens: Array<[Expr, Expr]> = [];
    while (this.isKw('when')) {
      this.p++;
      const c = this.expr();
      this.expectKw('then');
      whens.push([c, this.expr()]);
    }
    let otherwise: Expr | null = null;
    if (this.isKw('else')) {
      this.p++;
      otherwise = this.expr();
    }
    this.expectKw('end');
    return { t: 'case', subject, whens, else: otherwise };
  }
}

export function parseSelect(sql: string): SelectStatement {
  return new Parser(tokenize(sql)).statement();
}

/** Column names an expression reads. */
export function columnsOf(e: Expr, out: Set<string> = new Set()): Set<string> {
  switch (e.t) {
    case 'col':
      out.add(e.name);
      break;
    case 'un':
    case 'isnull':
    case 'cast':
      columnsOf(e.e, out);
      break;
    case 'bin':
      columnsOf(e.l, out);
      columnsOf(e.r, out);
      break;
    case 'in':
      columnsOf(e.e, out);
      e.list.forEach((x) => columnsOf(x, out));
      break;
    case 'between':
      [e.e, e.lo, e.hi].forEach((x) => columnsOf(x, out));
      break;
    case 'case':
      if (e.subject) columnsOf(e.subject, out);
      e.whens.forEach(([a, b]) => (columnsOf(a, out), columnsOf(b, out)));
      if (e.else) columnsOf(e.else, out);
      break;
    case 'call':
      e.args.forEach((x) => columnsOf(x, out));
      break;
    case 'lit':
      break;
  }
  return out;
}

/**
 * A tiny .proto (proto3) reader for comparing service definitions: messages (nested names joined
 * with '.'), their fields (name, number, type, label, oneof) and services' rpcs. Enums, options and
 * reserved statements are skipped. Enough for the V2 inference protos, not a general parser.
 */
export interface ProtoField {
  name: string;
  number: number;
  /** As written; maps as 'map<K,V>'. */
  type: string;
  label: '' | 'repeated' | 'optional';
  oneof?: string;
}

export interface ProtoRpc {
  name: string;
  request: string;
  response: string;
  clientStreaming: boolean;
  serverStreaming: boolean;
}

export interface ProtoFile {
  package: string;
  messages: Map<string, ProtoField[]>;
  services: Map<string, ProtoRpc[]>;
}

function tokenize(src: string): string[] {
  const text = src.replace(/\/\*[\s\S]*?\*\//g, ' ').replace(/\/\/[^\n]*/g, ' ');
  return text.match(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[A-Za-z_][\w.]*|-?\d+(?:\.\d+)?|[{}()<>;=,[\]]/g) ?? [];
}

export function parseProto(src: string): ProtoFile {
  const toks = tokenize(src);
  let i = 0;
  const out: ProtoFile = { package: '', messages: new Map(), services: new Map() };
  const peek = (): string | undefined => toks[i];
  const next = (): string => {
    if (i >= toks.length) throw new Error('unexpected end of proto');
    return toks[i++]!;
  };
  const expect = (t: string): void => {
    const got = next();
    if (got !== t) throw new Error(`expected '${t}' but found '${got}' (token ${i - 1})`);
  };
  const skipStatement = (): void => { while (next() !== ';'); };
  const skipBlock = (): void => {
    while (next() !== '{');
    let depth = 1;
    while (depth > 0) {
      const t = next();
      if (t === '{') depth++;
      else if (t === '}') depth--;
    }
  };

  const field = (first: string, oneof?: string): ProtoField => {
    let label: ProtoField['label'] = '';
    let type = first;
    if (first === 'repeated' || first === 'optional') {
      label = first;
      type = next();
    }
    if (type === 'map') {
      expect('<');
      const k = next();
      expect(',');
      const v = next();
      expect('>');
      type = `map<${k},${v}>`;
    }
    const name = next();
    expect('=');
    const number = Number(next());
    if (peek() === '[') while (next() !== ']');
    expect(';');
    const f: ProtoField = { name, number, type, label };
    if (oneof !== undefined) f.oneof = oneof;
    return f;
  };

  const message = (prefix: string): void => {
    const name = prefix + next();
    expect('{');
    const fields: ProtoField[] = [];
    out.messages.set(name, fields);
    for (;;) {
      const t = next();
      if (t === '}') break;
      if (t === ';') continue;
      if (t === 'message') message(`${name}.`);
      else if (t === 'enum') skipBlock();
      else if (t === 'option' || t === 'reserved' || t === 'extensions') skipStatement();
      else if (t === 'oneof') {
        const oneof = next();
        expect('{');
        for (let u = next(); u !== '}'; u = next()) {
          if (u === 'option') skipStatement();
          else fields.push(field(u, oneof));
        }
      } else fields.push(field(t));
    }
  };

  const service = (): void => {
    const name = next();
    expect('{');
    const rpcs: ProtoRpc[] = [];
    out.services.set(name, rpcs);
    for (;;) {
      const t = next();
      if (t === '}') break;
      if (t === 'option') { skipStatement(); continue; }
      if (t !== 'rpc') throw new Error(`unexpected '${t}' in service ${name}`);
      const rpcName = next();
      expect('(');
      let clientStreaming = false;
      let request = next();
      if (request === 'stream') { clientStreaming = true; request = next(); }
      expect(')');
      expect('returns');
      expect('(');
      let serverStreaming = false;
      let response = next();
      if (response === 'stream') { serverStreaming = true; response = next(); }
      expect(')');
      if (peek() === '{') skipBlock();
      else expect(';');
      rpcs.push({ name: rpcName, request, response, clientStreaming, serverStreaming });
    }
  };

  while (i < toks.length) {
    const t = next();
    if (t === 'syntax' || t === 'import' || t === 'option' || t === 'edition') skipStatement();
    else if (t === 'package') { out.package = next(); expect(';'); }
    else if (t === 'message') message('');
    else if (t === 'service') service();
    else if (t === 'enum') skipBlock();
    else if (t === ';') continue;
    else throw new Error(`unexpected top-level token '${t}'`);
  }
  return out;
}

/**
 * The load generator, run in its own process (`load.ts` spawns it): autocannon against one URL.
 * Config arrives as JSON in argv[2]; bodies may be a fixed list cycled per request, or built by
 * a generator module exporting `makeBody(i: number): string`. Prints one JSON result line.
 */
import autocannon from 'autocannon';
import { pathToFileURL } from 'node:url';

interface Config {
  url: string;
  connections: number;
  durationSec: number;
  bodies?: string[];
  generator?: string;
  generatorArg?: unknown;
}

const cfg = JSON.parse(process.argv[2]!) as Config;
let makeBody: (i: number) => string;
if (cfg.generator) {
  const mod = (await import(pathToFileURL(cfg.generator).href)) as { makeBodyFactory: (arg: unknown) => (i: number) => string };
  makeBody = mod.makeBodyFactory(cfg.generatorArg);
} else {
  const bodies = cfg.bodies ?? ['{}'];
  makeBody = (i) => bodies[i % bodies.length]!;
}
let n = 0;
const result = await autocannon({
  url: cfg.url,
  connections: cfg.connections,
  duration: cfg.durationSec,
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  requests: [{ setupRequest: (req) => ({ ...req, body: makeBody(n++) }) }],
});
console.log(JSON.stringify({
  rps: result.requests.average,
  total: result.requests.total,
  p50: result.latency.p50,
  p99: result.latency.p99,
  errors: result.errors + result.timeouts + result.non2xx,
  non2xx: result.non2xx,
}));

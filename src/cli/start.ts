/**
 * `clipper start`: runs the server in this process until SIGINT/SIGTERM; `--demo` deploys the example model.
 *
 * A start that fails (port in use, data directory locked by another server, read-only or full)
 * prints one line and exits 1; nothing is left behind (see startApp). The first SIGTERM or SIGINT
 * drains — in-flight queries finish or are answered within drainTimeoutMs, new connections are
 * refused — then stops replicas, closes the store and exits 0; a second one exits at once with 1
 * (replicas then exit by themselves, as they do when the server is killed).
 *
 * The server log goes to stderr as JSON lines (or text with --log-format text; docs/observability.md);
 * stdout gets the one line saying where the APIs are, and a failed start one plain line on stderr.
 */
import { join } from 'node:path';
import { startApp, type ClipperApp } from '../app.ts';
import { resolveConfig, type UserConfig } from '../config.ts';
import { isServingError } from '../errors.ts';
import { REPO_ROOT } from '../manager/launch.ts';
import { createLogger, errorFields } from '../observability/log.ts';

export async function runStart(cfg: UserConfig, demo: boolean): Promise<void> {
  const { logLevel, logFormat } = resolveConfig(cfg);
  const logger = createLogger({ level: logLevel, format: logFormat });
  let app: ClipperApp;
  try {
    app = await startApp(cfg, logger);
  } catch (e) {
    console.error(`clipper: cannot start: ${oneLine(e)}`);
    process.exit(1);
  }
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) {
      logger.warn({ signal }, `${signal} again: exiting without waiting`);
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal, drainTimeoutMs: app.config.drainTimeoutMs }, `${signal}: draining (up to ${app.config.drainTimeoutMs} ms), then stopping replicas and closing the store`);
    try {
      await app.close();
    } catch (e) {
      logger.error(errorFields(e), `stopping failed: ${oneLine(e)}`);
      process.exit(1);
    }
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));

  console.log(`clipper: query API ${app.queryUrl}, admin API ${app.adminUrl}, rpc tcp://${app.config.host}:${app.rpcPort}, data ${app.config.dataDir}`);
  if (demo) await deployDemo(app).catch((e) => logger.error(errorFields(e), `the demo model could not be deployed: ${oneLine(e)}`));
}

/** An error as one line: the message an operator can act on; the stack only with CLIPPER_DEBUG=1. */
function oneLine(e: unknown): string {
  if (process.env.CLIPPER_DEBUG === '1' && e instanceof Error && e.stack) console.error(e.stack);
  const message = e instanceof Error ? e.message : String(e);
  const code = isServingError(e) ? '' : (e as { code?: unknown } | null)?.code;
  return `${message.split('\n')[0]}${typeof code === 'string' && !message.includes(code) ? ` (${code})` : ''}`;
}

async function deployDemo(app: ClipperApp): Promise<void> {
  const { registry, manager } = app;
  if (!registry.getApp('demo')) {
    await registry.addApp({ name: 'demo', inputType: 'strings', defaultOutput: '{"label":"unknown"}', latencySloMicros: 100_000 });
  }
  if (!registry.hasModel('sentiment')) {
    await registry.addVersion({
      name: 'sentiment', version: '1', inputType: 'strings', labels: ['demo'], runtime: 'js', containerName: '',
      modelDataPath: join(REPO_ROOT, 'examples/demo-model'), batchSize: 0, replicas: 1,
    });
  }
  if (!registry.linkedModels('demo').includes('sentiment')) await registry.linkModels('demo', ['sentiment']);
  const ready = await manager.waitReady('sentiment', registry.currentVersion('sentiment')!, 1, 30_000);
  console.log(`demo model ${ready ? 'ready' : 'still starting'}. Try:\n\n  curl -s -X POST ${app.queryUrl}/demo/predict -H 'content-type: application/json' -d '{"input": "I love how fast this is"}'\n`);
}

/** `clipper start`: runs the server in this process until SIGINT/SIGTERM; `--demo` deploys the example model. */
import { join } from 'node:path';
import { startApp, type ClipperApp } from '../app.ts';
import type { UserConfig } from '../config.ts';
import { REPO_ROOT } from '../manager/launch.ts';

export async function runStart(cfg: UserConfig, demo: boolean): Promise<void> {
  const app = await startApp(cfg, (msg) => console.error(`[clipper] ${msg}`));
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.error(`[clipper] ${signal}: stopping replicas and closing the store`);
    await app.close();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));

  console.log(`clipper: query API ${app.queryUrl}, admin API ${app.adminUrl}, rpc tcp://${app.config.host}:${app.rpcPort}, data ${app.config.dataDir}`);
  if (demo) await deployDemo(app);
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

/**
 * Child-process side of checkArtifact: loads the artifact the way its runtime would (each
 * runtime's libraries only when needed). Exits 0, or writes one line `clipper-check: <reason>` to
 * stderr and exits 2; that line is all the server shows.
 *
 * The reason never quotes the artifact: our own checks say what is wrong in their words, but an
 * error raised while parsing or running the user's file is reduced to its class and line, because
 * its message can quote the file (a text file deployed as js once answered with its text).
 */
import { spawnSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { loadJsModel, resolveJsEntry } from './js/load.ts';

export const CHECK_MARK = 'clipper-check: ';

/** A reason in our own words, safe to show as it is. */
class Refusal extends Error {}

async function checkJs(path: string): Promise<void> {
  const entry = resolveJsEntry(path);
  try {
    await import(pathToFileURL(entry).href);
  } catch (e) {
    throw new Refusal(`not a valid js model: ${describe(e, entry)}`);
  }
  // The module is now loaded (and cached): only the check for predict() is left to fail.
  await loadJsModel(path);
}

/** An error from the user's file as its class and, when the stack or message says it, its line in `file`. */
function describe(e: unknown, file?: string): string {
  const name = e instanceof Error && /^[A-Za-z_$][\w$]{0,39}$/.test(e.name) ? e.name : e instanceof Error ? 'Error' : `a thrown ${typeof e}`;
  const text = e instanceof Error ? `${e.message}\n${e.stack ?? ''}` : '';
  const line = file && (lineIn(text, file) ?? (name === 'SyntaxError' ? lineIn(syntaxCheck(file), file) : undefined));
  return line ? `${name} at line ${line}` : name;
}

function lineIn(text: string, file: string): string | undefined {
  return [pathToFileURL(file).href, file].map((f) => text.match(new RegExp(`${escape(f)}:(\\d+)`))?.[1]).find(Boolean);
}

/** Node does not say where an ES module's syntax error is unless it is uncaught; `node --check` does. */
function syntaxCheck(file: string): string {
  const r = spawnSync(process.execPath, ['--check', file], { encoding: 'utf8', timeout: 10_000 });
  return r.stderr ?? '';
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Errors our own loaders throw (plain Error and the Spark library's) keep their message; any other class is named only. */
function reason(e: unknown, runtime: string): string {
  if (e instanceof Refusal) return e.message;
  const ours = e instanceof Error && (e.constructor === Error || e.name === 'NotASparkModelError' || e.name === 'UnsupportedStageError');
  const text = ours ? (e as Error).message : `not a valid ${runtime} model: ${describe(e)}`;
  return text.split('\n')[0]!.slice(0, 500);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const [runtime = '', path = ''] = process.argv.slice(2);
  try {
    switch (runtime) {
      case 'js':
        await checkJs(path);
        break;
      case 'onnx':
        await (await import('./onnx/model.ts')).checkOnnxModel(path);
        break;
      case 'spark':
        await (await import('./spark/model.ts')).loadSparkModel(path);
        break;
      default:
        throw new Refusal(`no artifact check for runtime ${runtime}`);
    }
    process.exit(0);
  } catch (e) {
    process.stderr.write(`\n${CHECK_MARK}${reason(e, runtime)}\n`);
    process.exit(2);
  }
}

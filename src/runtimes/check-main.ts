/** Child-process side of checkArtifact: loads the artifact the way its runtime would (each runtime's libraries only when needed). */
import { errorMessage } from '../errors.ts';
import { loadJsModel } from './js/load.ts';

const [runtime, path = ''] = process.argv.slice(2);
try {
  switch (runtime) {
    case 'js':
      await loadJsModel(path);
      break;
    case 'onnx':
      await (await import('./onnx/model.ts')).checkOnnxModel(path);
      break;
    case 'spark':
      await (await import('./spark/model.ts')).loadSparkModel(path);
      break;
    default:
      throw new Error(`no artifact check for runtime ${runtime}`);
  }
  process.exit(0);
} catch (e) {
  console.error(errorMessage(e));
  process.exit(2);
}

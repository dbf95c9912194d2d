/**
 * The `js` runtime: loads a module exporting `predict(inputs) => outputs` (sync or async)
 * from CLIPPER_MODEL_PATH (a .js/.mjs/.ts file, or a directory with index.*) and serves it.
 */
import { serve } from '../sdk.ts';
import { loadJsModel } from './load.ts';

const predict = await loadJsModel(process.env.CLIPPER_MODEL_PATH ?? '');
await serve(predict);

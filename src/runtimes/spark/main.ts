/** The `spark` runtime: serves a Spark ML PipelineModel (directory or zip) at CLIPPER_MODEL_PATH. */
import { serve } from '../sdk.ts';
import { loadSparkModel } from './model.ts';

const predict = await loadSparkModel(process.env.CLIPPER_MODEL_PATH ?? '');
await serve(predict);

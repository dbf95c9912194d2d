/** Spark ML PipelineModel evaluation in TypeScript: metadata JSON + Parquet, no JVM. */
export { loadPipeline } from './pipeline.ts';
export type { SparkPipeline, SparkResult } from './pipeline.ts';
export { NotASparkModelError, UnsupportedStageError } from './errors.ts';

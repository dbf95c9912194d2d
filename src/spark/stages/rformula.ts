/** RFormulaModel (runs its saved inner pipeline) and its internal helpers. */
import type { LoadCtx, Stage } from '../runtime.ts';

export async function rFormula(ctx: LoadCtx): Promise<Stage[]> {
  // Spark saves the fitted feature pipeline under pipelineModel/; the label column is only cast or indexed
  // for training, which inner label indexers (if any) already describe.
  return ctx.loadNested('pipelineModel');
}

/** ColumnPruner and VectorAttributeRewriter only drop columns / rename attributes: nothing to compute. */
export async function metadataOnly(_ctx: LoadCtx): Promise<Stage[]> {
  return [];
}

/** DecisionTree, RandomForest and GBT models, classification and regression. */
import { toDouble } from '../meta.ts';
import type { LoadCtx, Stage } from '../runtime.ts';
import { ensembleTrees, FlatTree, treeWeights, type NodeRow } from '../trees.ts';
import { classifierStage, scalarPredictorStage } from './predictor.ts';

function numClassesOf(ctx: LoadCtx, trees: FlatTree[]): number {
  const n = ctx.meta.raw.numClasses;
  if (n !== undefined) return toDouble(n);
  for (const t of trees) for (const s of t.stats) if (s) return s.length;
  return 2;
}

export async function decisionTreeClassifier(ctx: LoadCtx): Promise<Stage> {
  const tree = new FlatTree((await ctx.readData()) as NodeRow[]);
  const numClasses = numClassesOf(ctx, [tree]);
  return classifierStage(ctx, {
    numClasses,
    hasProbability: true,
    compute(x, raw, prob) {
      const leaf = tree.leaf(x);
      const st = tree.stats[leaf]!;
      const norm = tree.normStats[leaf]!;
      for (let i = 0; i < numClasses; i++) {
        raw[i] = st[i];
        prob[i] = norm[i];
      }
    },
  });
}

export async function decisionTreeRegressor(ctx: LoadCtx): Promise<Stage> {
  const tree = new FlatTree((await ctx.readData()) as NodeRow[]);
  return scalarPredictorStage(ctx, 'regression', (x) => tree.prediction[tree.leaf(x)]);
}

async function loadEnsemble(ctx: LoadCtx): Promise<{ trees: FlatTree[]; weights: Float64Array }> {
  const trees = ensembleTrees(await ctx.readData());
  const weights = ctx.files.has(`${ctx.dir}/treesMetadata`)
    ? treeWeights(await ctx.readData('treesMetadata'), trees.length)
    : new Float64Array(trees.length).fill(1);
  return { trees, weights };
}

export async function randomForestClassifier(ctx: LoadCtx): Promise<Stage> {
  const { trees } = await loadEnsemble(ctx);
  const numClasses = numClassesOf(ctx, trees);
  return classifierStage(ctx, {
    numClasses,
    hasProbability: true,
    compute(x, raw, prob) {
      raw.fill(0);
      for (const t of trees) {
        const norm = t.normStats[t.leaf(x)];
        if (!norm) continue;
        for (let i = 0; i < numClasses; i++) raw[i] += norm[i];
      }
      let sum = 0;
      for (let i = 0; i < numClasses; i++) sum += raw[i];
      for (let i = 0; i < numClasses; i++) prob[i] = raw[i] / sum;
    },
  });
}

export async function randomForestRegressor(ctx: LoadCtx): Promise<Stage> {
  const { trees } = await loadEnsemble(ctx);
  return scalarPredictorStage(ctx, 'regression', (x) => {
    let sum = 0;
    for (const t of trees) sum += t.prediction[t.leaf(x)];
    return sum / trees.length;
  });
}

function gbtMargin(trees: FlatTree[], weights: Float64Array) {
  return (x: Parameters<FlatTree['leaf']>[0]): number => {
    let m = 0;
    for (let i = 0; i < trees.length; i++) m += trees[i].prediction[trees[i].leaf(x)] * weights[i];
    return m;
  };
}

export async function gbtClassifier(ctx: LoadCtx): Promise<Stage> {
  const { trees, weights } = await loadEnsemble(ctx);
  const margin = gbtMargin(trees, weights);
  return classifierStage(ctx, {
    numClasses: 2,
    hasProbability: true,
    compute(x, raw, prob) {
      const m = margin(x);
      raw[0] = -m;
      raw[1] = m;
      // LogLoss.computeProbability(-m) = 1 / (1 + exp(2m))
      prob[0] = 1 / (1 + Math.exp(-2 * -m));
      prob[1] = 1 - prob[0];
    },
  });
}

export async function gbtRegressor(ctx: LoadCtx): Promise<Stage> {
  const { trees, weights } = await loadEnsemble(ctx);
  return scalarPredictorStage(ctx, 'regression', gbtMargin(trees, weights));
}

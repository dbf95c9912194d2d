/** Decision trees as saved by Spark (NodeData rows), flattened into arrays for fast evaluation. */
import { DenseVector, vget, type Vector } from './vector.ts';

export interface NodeRow {
  id: number;
  prediction: number;
  impurityStats?: number[] | null;
  leftChild: number;
  rightChild: number;
  split?: { featureIndex: number; leftCategoriesOrThreshold?: number[] | null; numCategories: number } | null;
}

export class FlatTree {
  readonly feature: Int32Array; // -1 for leaves
  readonly threshold: Float64Array;
  readonly categories: Array<Set<number> | null>;
  readonly left: Int32Array;
  readonly right: Int32Array;
  readonly prediction: Float64Array;
  readonly stats: Array<Float64Array | null>;
  /** leaf stats divided by their sum (class probabilities of the leaf) */
  readonly normStats: Array<Float64Array | null>;

  constructor(rows: NodeRow[]) {
    const byId = new Map<number, NodeRow>();
    for (const r of rows) byId.set(Number(r.id), r);
    if (!byId.has(0)) throw new Error('tree data has no root node (id 0)');
    // positions in pre-order from the root so ids need not be contiguous
    const order: NodeRow[] = [];
    const pos = new Map<number, number>();
    const stack = [0];
    while (stack.length) {
      const id = stack.pop()!;
      const r = byId.get(id);
      if (!r) throw new Error(`tree data lacks node ${id}`);
      pos.set(id, order.length);
      order.push(r);
      if (Number(r.leftChild) >= 0) stack.push(Number(r.rightChild), Number(r.leftChild));
    }
    const n = order.length;
    this.feature = new Int32Array(n);
    this.threshold = new Float64Array(n);
    this.categories = new Array(n).fill(null);
    this.left = new Int32Array(n);
    this.right = new Int32Array(n);
    this.prediction = new Float64Array(n);
    this.stats = new Array(n).fill(null);
    this.normStats = new Array(n).fill(null);
    order.forEach((r, i) => {
      this.prediction[i] = Number(r.prediction);
      const leaf = Number(r.leftChild) < 0;
      if (leaf) {
        this.feature[i] = -1;
        if (r.impurityStats) {
          const st = Float64Array.from(r.impurityStats, Number);
          this.stats[i] = st;
          let sum = 0;
          for (const x of st) sum += x;
          this.normStats[i] = st.map((x) => x / sum);
        }
        return;
      }
      const sp = r.split!;
      this.feature[i] = Number(sp.featureIndex);
      this.left[i] = pos.get(Number(r.leftChild))!;
      this.right[i] = pos.get(Number(r.rightChild))!;
      const lc = (sp.leftCategoriesOrThreshold ?? []).map(Number);
      if (Number(sp.numCategories) >= 0) this.categories[i] = new Set(lc);
      else this.threshold[i] = lc[0];
    });
  }

  /** Position of the leaf reached by x. */
  leaf(x: Vector): number {
    const feature = this.feature;
    let n = 0;
    if (x instanceof DenseVector) {
      const v = x.values;
      while (feature[n] >= 0) {
        const val = v[feature[n]];
        const cats = this.categories[n];
        n = (cats ? cats.has(val) : val <= this.threshold[n]) ? this.left[n] : this.right[n];
      }
    } else {
      while (feature[n] >= 0) {
        const val = vget(x, feature[n]);
        const cats = this.categories[n];
        n = (cats ? cats.has(val) : val <= this.threshold[n]) ? this.left[n] : this.right[n];
      }
    }
    return n;
  }
}

/** Groups ensemble rows (treeID, nodeData) into trees ordered by treeID. */
export function ensembleTrees(rows: Array<Record<string, any>>): FlatTree[] {
  const groups = new Map<number, NodeRow[]>();
  for (const r of rows) {
    const id = Number(r.treeID);
    let g = groups.get(id);
    if (!g) groups.set(id, (g = []));
    g.push(r.nodeData as NodeRow);
  }
  return [...groups.keys()].sort((a, b) => a - b).map((id) => new FlatTree(groups.get(id)!));
}

/** Tree weights from treesMetadata rows: columns (treeID, metadata, weights) or positional (_1, _2, _3). */
export function treeWeights(rows: Array<Record<string, any>>, numTrees: number): Float64Array {
  const w = new Float64Array(numTrees).fill(1);
  for (const r of rows) {
    const vals = Object.values(r);
    const id = Number(r.treeID ?? r._1 ?? vals[0]);
    const weight = Number(r.weights ?? r._3 ?? vals[2]);
    if (id >= 0 && id < numTrees && !Number.isNaN(weight)) w[id] = weight;
  }
  return w;
}

/** Writes small models in Spark's saved layout (metadata JSON + snappy parquet) for the unit tests. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parquetWriteBuffer } from 'hyparquet-writer';

type SchemaElement = Record<string, unknown>;

export interface StageSpec {
  cls: string;
  uid: string;
  params?: Record<string, unknown>;
  defaults?: Record<string, unknown>;
  extra?: Record<string, unknown>;
  /** parquet folders to write: folder name -> { schema children (without root), rows by column } */
  data?: Record<string, { schema: SchemaElement[]; columns: Record<string, unknown[]> }>;
}

export function writeMetadata(dir: string, spec: StageSpec, sparkVersion: string): void {
  mkdirSync(join(dir, 'metadata'), { recursive: true });
  const json = {
    class: spec.cls,
    timestamp: 1700000000000,
    sparkVersion,
    uid: spec.uid,
    paramMap: spec.params ?? {},
    defaultParamMap: spec.defaults ?? {},
    ...spec.extra,
  };
  writeFileSync(join(dir, 'metadata', 'part-00000'), `${JSON.stringify(json)}\n`);
  writeFileSync(join(dir, 'metadata', '_SUCCESS'), '');
}

/** Top-level fields in schema order, each followed by its children (Spark writes no other nesting). */
function topLevelNames(schema: SchemaElement[]): string[] {
  const names: string[] = [];
  let i = 0;
  const skip = (): void => {
    const n = Number(schema[i].num_children ?? 0);
    i++;
    for (let c = 0; c < n; c++) skip();
  };
  while (i < schema.length) {
    names.push(String(schema[i].name));
    skip();
  }
  return names;
}

export function writeParquet(dir: string, schema: SchemaElement[], columns: Record<string, unknown[]>): void {
  mkdirSync(dir, { recursive: true });
  const names = topLevelNames(schema);
  const buf = parquetWriteBuffer({
    columnData: names.map((name) => ({ name, data: columns[name] as any[] })),
    schema: [{ name: 'spark_schema', num_children: names.length }, ...schema] as any,
  });
  writeFileSync(join(dir, 'part-00000-0b1c2d3e-c000.snappy.parquet'), new Uint8Array(buf));
  writeFileSync(join(dir, '_SUCCESS'), '');
}

export function writeStage(dir: string, spec: StageSpec, sparkVersion: string): void {
  writeMetadata(dir, spec, sparkVersion);
  for (const [folder, d] of Object.entries(spec.data ?? {})) writeParquet(join(dir, folder), d.schema, d.columns);
}

export function writePipeline(dir: string, stages: StageSpec[], sparkVersion = '3.5.1'): void {
  writeMetadata(
    dir,
    { cls: 'org.apache.spark.ml.PipelineModel', uid: 'PipelineModel_test', params: { stageUids: stages.map((s) => s.uid) } },
    sparkVersion,
  );
  const width = String(stages.length).length;
  stages.forEach((s, i) => writeStage(join(dir, 'stages', `${String(i).padStart(width, '0')}_${s.uid}`), s, sparkVersion));
}

// ---- Spark's parquet schemas ----

export const double = (name: string): SchemaElement => ({ name, type: 'DOUBLE', repetition_type: 'REQUIRED' });
export const int32 = (name: string): SchemaElement => ({ name, type: 'INT32', repetition_type: 'REQUIRED' });
export const int64 = (name: string): SchemaElement => ({ name, type: 'INT64', repetition_type: 'REQUIRED' });
export const str = (name: string): SchemaElement => ({ name, type: 'BYTE_ARRAY', repetition_type: 'OPTIONAL', converted_type: 'UTF8' });

export function listOf(name: string, element: SchemaElement): SchemaElement[] {
  return [
    { name, repetition_type: 'OPTIONAL', converted_type: 'LIST', num_children: 1 },
    { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
    { ...element, name: 'element' },
  ];
}

export function listOfStrings(name: string): SchemaElement[] {
  return listOf(name, str('element'));
}

/** array<array<string>> as in StringIndexerModel.labelsArray */
export function listOfStringLists(name: string): SchemaElement[] {
  return [
    { name, repetition_type: 'OPTIONAL', converted_type: 'LIST', num_children: 1 },
    { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
    { name: 'element', repetition_type: 'OPTIONAL', converted_type: 'LIST', num_children: 1 },
    { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
    str('element'),
  ];
}

/** VectorUDT: struct<type: tinyint, size: int, indices: array<int>, values: array<double>> */
export function vectorSchema(name: string): SchemaElement[] {
  return [
    { name, repetition_type: 'OPTIONAL', num_children: 4 },
    { name: 'type', type: 'INT32', repetition_type: 'REQUIRED', converted_type: 'INT_8' },
    { name: 'size', type: 'INT32', repetition_type: 'OPTIONAL' },
    ...listOf('indices', int32('element')),
    ...listOf('values', double('element')),
  ];
}

export const dense = (values: number[]) => ({ type: 1, size: null, indices: null, values });

/** DecisionTree NodeData; Spark < 3 has no rawCount. */
export function nodeSchema(name: string | null, withRawCount: boolean): SchemaElement[] {
  const fields = [
    int32('id'),
    double('prediction'),
    double('impurity'),
    ...listOf('impurityStats', double('element')),
    ...(withRawCount ? [int64('rawCount')] : []),
    double('gain'),
    int32('leftChild'),
    int32('rightChild'),
    { name: 'split', repetition_type: 'OPTIONAL', num_children: 3 },
    int32('featureIndex'),
    ...listOf('leftCategoriesOrThreshold', double('element')),
    int32('numCategories'),
  ];
  const children = withRawCount ? 9 : 8;
  return name === null ? fields : [{ name, repetition_type: 'OPTIONAL', num_children: children }, ...fields];
}

export interface TestNode {
  id: number;
  prediction: number;
  stats: number[];
  left?: number;
  right?: number;
  feature?: number;
  threshold?: number;
  categories?: number[];
  numCategories?: number;
}

export function nodeRow(n: TestNode, withRawCount: boolean): Record<string, unknown> {
  const leaf = n.left === undefined;
  return {
    id: n.id,
    prediction: n.prediction,
    impurity: 0,
    impurityStats: n.stats,
    ...(withRawCount ? { rawCount: BigInt(Math.round(n.stats.reduce((a, b) => a + b, 0))) } : {}),
    gain: leaf ? -1 : 0.1,
    leftChild: leaf ? -1 : n.left,
    rightChild: leaf ? -1 : n.right,
    split: {
      featureIndex: leaf ? -1 : n.feature,
      leftCategoriesOrThreshold: leaf ? [] : n.categories ?? [n.threshold],
      numCategories: n.categories ? n.numCategories ?? n.categories.length + 1 : -1,
    },
  };
}

/** Column data for a single-tree model's data/ folder. */
export function treeColumns(nodes: TestNode[], withRawCount: boolean): Record<string, unknown[]> {
  const rows = nodes.map((n) => nodeRow(n, withRawCount));
  const keys = Object.keys(rows[0]);
  return Object.fromEntries(keys.map((k) => [k, rows.map((r) => r[k])]));
}

/** The `spark` runtime's predict: one JSON row (column → value) per input, evaluated by src/spark. */
import { loadPipeline } from '../../spark/index.ts';
import { InputError, type PredictFn } from '../sdk.ts';

export async function loadSparkModel(path: string): Promise<PredictFn> {
  const pipeline = await loadPipeline(path);
  return (inputs) => {
    const rows: Array<Record<string, unknown>> = [];
    const slots: number[] = [];
    const outputs: unknown[] = new Array(inputs.length);
    inputs.forEach((input, i) => {
      let row: unknown;
      try {
        row = JSON.parse(String(input));
      } catch {
        outputs[i] = new InputError('input is not JSON: a Spark pipeline takes one row as a JSON object of column → value');
        return;
      }
      if (row === null || typeof row !== 'object' || Array.isArray(row)) {
        outputs[i] = new InputError('input must be a JSON object of column → value');
        return;
      }
      rows.push(row as Record<string, unknown>);
      slots.push(i);
    });
    const results = rows.length > 0 ? pipeline.transform(rows) : [];
    results.forEach((r, k) => {
      outputs[slots[k]!] = 'error' in r ? new InputError(r.error) : r;
    });
    return outputs;
  };
}

/** Reading the shared Spark fixture tables (see ../shared/fixtures/spark/README.md). */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** <repo>/../shared/fixtures/spark, resolved from this file. */
export const FIXTURE_DIR = fileURLToPath(new URL('../../../shared/fixtures/spark/', import.meta.url));

export const FIXTURES_PRESENT = existsSync(`${FIXTURE_DIR}README.md`) && existsSync(`${FIXTURE_DIR}pipelines`);

export const PIPELINE_INPUTS: Record<string, string> = {
  DecisionTreeIris: 'Iris',
  RandomForestIris: 'Iris',
  NaiveBayesIris: 'Iris',
  NeuralNetworkIris: 'Iris',
  KMeansIris: 'Iris',
  LinearRegressionHousing: 'Housing',
  GBTAuto: 'Auto',
  DecisionTreeSentiment: 'Sentiment',
  LogisticRegressionAudit: 'Audit',
};

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

function cell(raw: string, quoted: boolean): unknown {
  if (!quoted && raw === '') return null;
  if (!quoted && NUMBER.test(raw)) return Number(raw);
  return raw;
}

/**
 * CSV with a header row. A quote opens a quoted field only at the very start of a field ("" inside is a quote);
 * anywhere else it is an ordinary character. Empty cells are null; numbers are numbers; the rest are strings.
 */
export function parseCsv(text: string): Array<Record<string, unknown>> {
  const records: Array<Array<{ raw: string; quoted: boolean }>> = [];
  let fields: Array<{ raw: string; quoted: boolean }> = [];
  let i = 0;
  const n = text.length;
  while (i < n) {
    let raw = '';
    let quoted = false;
    if (text[i] === '"') {
      quoted = true;
      i++;
      while (i < n) {
        if (text[i] === '"') {
          if (text[i + 1] === '"') {
            raw += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        raw += text[i++];
      }
      // anything between the closing quote and the delimiter belongs to the field
      while (i < n && text[i] !== ',' && text[i] !== '\n' && text[i] !== '\r') raw += text[i++];
    } else {
      while (i < n && text[i] !== ',' && text[i] !== '\n' && text[i] !== '\r') raw += text[i++];
    }
    fields.push({ raw, quoted });
    if (text[i] === ',') {
      i++;
      if (i === n) fields.push({ raw: '', quoted: false });
      continue;
    }
    if (text[i] === '\r') i++;
    if (text[i] === '\n') i++;
    records.push(fields);
    fields = [];
  }
  if (fields.length) records.push(fields);
  const header = records[0].map((f) => f.raw);
  return records
    .slice(1)
    .filter((r) => !(r.length === 1 && r[0].raw === ''))
    .map((r) => Object.fromEntries(header.map((h, k) => [h, r[k] ? cell(r[k].raw, r[k].quoted) : null])));
}

export function readTable(kind: 'input' | 'expected', name: string): Array<Record<string, unknown>> {
  return parseCsv(readFileSync(`${FIXTURE_DIR}${kind}/${name}.csv`, 'utf8'));
}

export function pipelinePath(name: string): string {
  return `${FIXTURE_DIR}pipelines/${name}.zip`;
}

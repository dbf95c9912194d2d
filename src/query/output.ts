/** A model's output text becomes JSON in the answer when it parses as JSON, else stays a string. */
const JSON_START = /^[\s]*[{["\-0-9tfn]/;

export function decodeOutput(buf: Buffer): unknown {
  return decodeOutputText(buf.toString('utf8'));
}

export function decodeOutputText(text: string): unknown {
  if (!JSON_START.test(text)) return text;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

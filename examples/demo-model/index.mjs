// The demo model: a tiny "sentiment" scorer over strings. One output per input.
const POSITIVE = new Set(['good', 'great', 'love', 'excellent', 'fast', 'happy', 'nice', 'best']);
const NEGATIVE = new Set(['bad', 'terrible', 'hate', 'slow', 'awful', 'sad', 'worst', 'broken']);

export function predict(inputs) {
  return inputs.map((text) => {
    let score = 0;
    for (const word of String(text).toLowerCase().match(/[a-z']+/g) ?? []) {
      if (POSITIVE.has(word)) score++;
      if (NEGATIVE.has(word)) score--;
    }
    return { label: score > 0 ? 'positive' : score < 0 ? 'negative' : 'neutral', score };
  });
}

// Gradients by central differences in float64, the reference the analytic backward passes are checked against.

/**
 * d loss / d a[i] for every i, as (loss(a[i] + h) − loss(a[i] − h)) / 2h: each a[i] is moved in place
 * while loss() runs, then put back.
 */
export function centralDifferences(a: Float64Array, loss: () => number, h: number): Float64Array {
  const g = new Float64Array(a.length);
  for (let i = 0; i < a.length; i++) {
    const keep = a[i]!;
    a[i] = keep + h;
    const lp = loss();
    a[i] = keep - h;
    const lm = loss();
    a[i] = keep;
    g[i] = (lp - lm) / (2 * h);
  }
  return g;
}

// Barlow Twins' cross-correlation matrix C of two views' standardised embeddings, and its loss
// Σ(1 − C_ii)² + λ Σ_{i≠j} C_ij². Bring the views together (less noise) and the diagonal goes to
// 1; the off-diagonal entries, the redundancy between dimensions, are what λ weighs. All from
// the core's `cross_correlation` and `barlow_twins`.
import { heatmap, labelledBars } from '../../../js/charts.js';
import { canvas, el, figure, readout, slider } from '../ui.js';

export async function mount(root, params, { jem }) {
  const out = readout([
    ['loss', 'Loss'],
    ['mean_diagonal', 'Mean of the diagonal C_ii'],
  ]);
  const matrix = canvas('cross-correlation matrix', 'square');
  const diagonal = canvas('diagonal of C');
  const noise = slider({ label: 'Noise between the views', name: 'noise', min: 0, max: 2, step: 0.05, value: params.noise, format: (v) => v.toFixed(2), onInput: draw });
  const lambda = slider({ label: 'λ (off-diagonal weight)', name: 'lambda', min: 0, max: 0.1, step: 0.001, value: params.lambda, format: (v) => v.toFixed(3), onInput: draw });
  root.append(
    el('div', { class: 'controls-row' }, noise.element, lambda.element),
    el('div', { class: 'figures' }, figure('C = z̃1ᵀz̃2 / N (target: the identity)', matrix), figure('C_ii for each dimension (target 1)', diagonal)),
    out.element,
  );
  function draw() {
    const views = JSON.parse(jem.lesson_views(params.batch, params.dims, params.seed, noise.value));
    const r = JSON.parse(jem.lesson_barlow_twins(Float32Array.from(views.z1), Float32Array.from(views.z2), params.batch, lambda.value));
    heatmap(matrix, r.cross_correlation, r.dims, r.dims, { min: -1, max: 1, rowLabel: 'view 1 dimension', colLabel: 'view 2 dimension' });
    const diag = Array.from({ length: r.dims }, (_, i) => r.cross_correlation[i * r.dims + i]);
    labelledBars(diagonal, diag.map((v, i) => ({ label: String(i + 1), value: Math.max(0, v) })), { yLabel: 'C_ii', max: 1.1, lines: [{ y: 1, label: 'target' }] });
    out.set('loss', r.loss);
    out.set('mean_diagonal', diag.reduce((a, b) => a + b, 0) / r.dims);
  }
  draw();
}

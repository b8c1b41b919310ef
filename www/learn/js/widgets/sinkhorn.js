// SwAV's Sinkhorn–Knopp, one round at a time: the scores of B samples against K prototypes
// become codes whose rows (samples) sum to 1 and whose columns (prototypes) approach equal
// mass B/K as the rounds go on: the equipartition that keeps every sample from landing on one
// prototype. Then the codes are swapped: each view predicts the other's. All from the core's
// `sinkhorn` and `swapped_prediction`.
import { heatmap, labelledBars } from '../../../js/charts.js';
import { canvas, el, figure, readout, slider } from '../ui.js';

export async function mount(root, params, { jem }) {
  const { batch: b, prototypes: k } = params;
  // Two views' scores: view 2 is view 1 plus noise, as two crops of one image would score.
  const views = JSON.parse(jem.lesson_views(b, k, params.seed, 0.5));
  const out = readout([
    ['max_imbalance', 'Largest |prototype mass − B/K|'],
    ['swav_loss', 'Swapped-prediction loss'],
  ]);
  const scores = canvas('scores of view 1: samples × prototypes', 'tall');
  const codes = canvas('codes of view 1 after Sinkhorn', 'tall');
  const codes2 = canvas('codes of view 2 after Sinkhorn', 'tall');
  const mass = canvas('mass of each prototype');
  const epsilon = slider({ label: 'ε', name: 'epsilon', min: 0.01, max: 1, step: 0.01, value: params.epsilon, format: (v) => v.toFixed(2), onInput: draw });
  const iterations = slider({ label: 'Sinkhorn rounds', name: 'iterations', min: 0, max: 10, step: 1, value: params.iterations, onInput: draw });
  root.append(
    el('div', { class: 'controls-row' }, epsilon.element, iterations.element),
    el(
      'div',
      { class: 'figures' },
      figure('Scores s = z·c (view 1)', scores),
      figure('Codes q of view 1 (targets for view 2)', codes),
      figure('Codes q of view 2 (targets for view 1)', codes2),
      figure(`Mass of each prototype (dashed: B/K = ${(b / k).toFixed(2)})`, mass),
    ),
    out.element,
  );
  heatmap(scores, views.z1, b, k, { rowLabel: 'sample', colLabel: 'prototype' });

  function draw() {
    const r = JSON.parse(jem.lesson_sinkhorn(Float32Array.from(views.z1), b, epsilon.value, iterations.value));
    heatmap(codes, r.codes, b, k, { min: 0, max: 1, rowLabel: 'sample', colLabel: 'prototype' });
    labelledBars(mass, r.prototype_mass.map((m, i) => ({ label: `c${i + 1}`, value: m })), { yLabel: 'Σ over samples', lines: [{ y: b / k, label: 'B/K' }] });
    mass.dataset.mass = JSON.stringify(r.prototype_mass);
    const swav = JSON.parse(jem.lesson_swav(Float32Array.from(views.z1), Float32Array.from(views.z2), b, epsilon.value, iterations.value, params.temperature));
    heatmap(codes2, swav.codes2, b, k, { min: 0, max: 1, rowLabel: 'sample', colLabel: 'prototype' });
    out.set('max_imbalance', Math.max(...r.prototype_mass.map((m) => Math.abs(m - b / k))));
    out.set('swav_loss', swav.loss);
  }
  draw();
}

// VICReg's three terms on a batch of embeddings, with a slider per weight, and the covariance
// matrix whose off-diagonal entries the covariance term penalises. Every number comes from the
// core's `vicreg`.
import { heatmap, labelledBars } from '../../../js/charts.js';
import { RemoteSession } from '../../../js/remote.js';
import { canvas, chooseBackend, el, figure, readout, slider } from '../ui.js';

export async function mount(root, params, { jem }) {
  let views = null;
  const out = readout([
    ['invariance', 'Invariance s (MSE between the views)'],
    ['variance', 'Variance v (hinge on each dimension\'s std)'],
    ['covariance', 'Covariance c (off-diagonal Cov², / D)'],
    ['total', 'Total λs + μv + νc'],
  ]);
  const terms = canvas('the three weighted terms');
  const matrix = canvas('covariance matrix of view 1', 'square');
  const weight = (label, name) => slider({ label, name, min: 0, max: 50, step: 1, value: params[name], onInput: draw });
  const sim = weight('Invariance weight λ', 'sim');
  const std = weight('Variance weight μ', 'std');
  const cov = weight('Covariance weight ν', 'cov');
  const note = el('p', { class: 'note' });
  root.append(
    el('div', { class: 'controls-row' }, sim.element, std.element, cov.element),
    note,
    el('div', { class: 'figures' }, figure('Weighted terms (each on the same axis as the total they add to)', terms), figure('Cov(z1): diagonal = variances, off-diagonal = redundancy (red +, blue −)', matrix)),
    out.element,
  );

  function draw() {
    if (!views) return;
    const r = JSON.parse(jem.lesson_vicreg(Float32Array.from(views.z1), Float32Array.from(views.z2), views.n, sim.value, std.value, cov.value));
    labelledBars(terms, [
      { label: 'λ·invariance', value: sim.value * r.invariance },
      { label: 'μ·variance', value: std.value * r.variance },
      { label: 'ν·covariance', value: cov.value * r.covariance },
      { label: 'total', value: r.total, color: '#4b5563' },
    ], { yLabel: 'weighted term' });
    heatmap(matrix, r.covariance_matrix, r.dims, r.dims, { rowLabel: 'dimension', colLabel: 'dimension' });
    for (const key of ['invariance', 'variance', 'covariance', 'total']) out.set(key, r[key]);
  }

  if (params.source === 'encoder') {
    const session = await RemoteSession.create(jem.builtin_recipe('vicreg'), await chooseBackend(params.backend));
    views = await session.viewFeatures(params.batch, params.seed);
    note.textContent = `A random-init ConvNet's features (${views.d} dimensions) of two augmented views of ${views.n} held-out shapes.`;
  } else {
    views = { n: params.batch, ...JSON.parse(jem.lesson_views(params.batch, params.dims, params.seed, params.noise)) };
    note.textContent = `Random embeddings (${params.batch} × ${params.dims}, seed ${params.seed}); view 2 is view 1 plus noise of ${params.noise}.`;
  }
  draw();
}

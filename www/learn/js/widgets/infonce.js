// InfoNCE (SimCLR's NT-Xent) on a batch of real embeddings: the similarity matrix, one anchor's
// softmax over its candidates, and the loss, recomputed by the core's `nt_xent` as the
// temperature moves. The embeddings are a ConvNet's features of two augmented views of
// held-out shapes (train it a little and watch the diagonals light up), the shipped pretrained
// encoder's, or seeded random vectors.
import { heatmap, labelledBars } from '../../../js/charts.js';
import { RemoteSession } from '../../../js/remote.js';
import { canvas, chooseBackend, el, figure, readout, select, slider } from '../ui.js';

export async function mount(root, params, { jem }) {
  let views = null; // { n, d, z1, z2 }
  let session = null;
  const out = readout([
    ['loss', 'Loss L (mean over the 2N anchors)'],
    ['p_positive', 'Anchor\'s probability of its positive'],
    ['positive', 'Its positive (the other view)'],
  ]);
  const similarity = canvas('cosine similarity matrix of all 2N embeddings', 'square');
  const row = canvas('softmax of the anchor over its 2N − 1 candidates');
  const temperature = slider({
    label: 'Temperature τ = 1/β',
    name: 'temperature',
    min: 0.02,
    max: 1,
    step: 0.01,
    value: params.temperature,
    format: (v) => `${v.toFixed(2)} (β = ${(1 / v).toFixed(1)})`,
    onInput: draw,
  });
  const anchor = select({ label: 'Anchor', name: 'anchor', options: [], value: params.anchor, onChange: draw });
  const train = el('button', { type: 'button', hidden: params.source !== 'encoder' }, 'Train the encoder 40 more steps');
  const note = el('p', { class: 'note' });
  root.append(
    el('div', { class: 'controls-row' }, temperature.element, anchor.element, train),
    note,
    el('div', { class: 'figures' }, figure('Cosine similarity u_i·u_j, darker = more similar (rows: anchors; first N: view 1, last N: view 2)', similarity), figure('softmax of the anchor\'s row at τ (green: its positive)', row)),
    out.element,
  );

  function setViews(v) {
    views = v;
    const n = 2 * v.n;
    const keep = Math.min(Number(anchor.input.value || params.anchor), n - 1);
    anchor.input.replaceChildren(...Array.from({ length: n }, (_, i) => el('option', { value: i, selected: i === keep }, `${i < v.n ? 'view 1' : 'view 2'}, image ${(i % v.n) + 1}`)));
    draw();
  }

  function draw() {
    if (!views) return;
    const n2 = 2 * views.n;
    const a = Number(anchor.input.value);
    const r = JSON.parse(jem.lesson_infonce(Float32Array.from(views.z1), Float32Array.from(views.z2), views.n, temperature.value, a));
    // Auto-ranged: a random encoder's features (after ReLU) are all similar, but not equally.
    heatmap(similarity, r.similarity, n2, n2, { highlight: [[a, r.positive]], rowLabel: 'anchor', colLabel: 'candidate' });
    labelledBars(row, r.softmax.map((p, k) => ({ label: String(k), value: k === a ? null : p, color: k === r.positive ? '#16a34a' : '#93c5fd' })), { yLabel: 'probability', max: 1 });
    row.dataset.softmax = JSON.stringify(r.softmax);
    out.set('loss', r.loss);
    out.set('p_positive', r.softmax[r.positive]);
    out.set('positive', r.positive, 0);
  }

  if (params.source === 'random') {
    setViews({ n: params.batch, d: 16, ...JSON.parse(jem.lesson_views(params.batch, 16, params.seed, params.noise)) });
    note.textContent = `Random embeddings (seed ${params.seed}): view 2 is view 1 plus noise of ${params.noise}.`;
    return;
  }
  if (params.source === 'shipped') {
    session = await RemoteSession.loadShipped(await chooseBackend(params.backend));
    setViews(await session.viewFeatures(params.batch, params.seed));
    note.textContent = `The shipped encoder's features (VICReg, pretrained natively for 2,560 steps) of two augmented views of ${params.batch} held-out shapes: each anchor's positive stands out.`;
    return;
  }
  const recipe = jem.recipe_with(jem.builtin_recipe('simclr'), JSON.stringify({ train: { epochs: 100 } }));
  session = await RemoteSession.create(recipe, await chooseBackend(params.backend));
  let trained = 0;
  const refresh = async () => {
    setViews(await session.viewFeatures(params.batch, params.seed));
    note.textContent = `A ConvNet's features of two augmented views of ${params.batch} held-out shapes, after ${trained} SimCLR steps.`;
  };
  train.addEventListener('click', async () => {
    train.disabled = true;
    await session.run({ untilStep: trained + 40, evalEvery: 0 });
    trained += 40;
    await refresh();
    train.disabled = false;
  });
  await refresh();
}

// Experiments: several recipes, the same budget, their kNN accuracy side by side. Each
// experiment is a list of runs, each a change to a browser recipe (jem's own recipe format, so
// `jem pretrain` runs the same comparison at full size).
import { runComparison } from '../runs.js';
import { budgetRecipe, el } from '../ui.js';

// Full SimCLR pipeline of the browser recipe, with one transform taken out.
const SIMCLR_AUGMENT = { preset: 'simclr', variant: 'cifar', crop_scale: [0.5, 1.0], jitter: [0.8, 0.8, 0.8, 0.5], grayscale_p: 0.8 };

// MoCo v2 at batch 16 with the browser SimCLR recipe's projector; `method` adds to its settings.
const mocoAtBatch16 = (method, data) => ({
  method: { name: 'moco_v2', projector: { dims: [256, 64] }, ...method },
  train: { batch_size: 16 },
  ...(data && { data }),
});

export const EXPERIMENTS = {
  families: {
    title: 'A pretext task, and two joint-embedding methods',
    note: 'RotNet predicts which of four rotations an image got; SimCLR and VICReg make two views agree.',
    runs: [
      { label: 'RotNet', base: 'simclr', overrides: { method: { name: 'rotnet' }, data: { augment: { ...SIMCLR_AUGMENT, global_views: 1, jitter_p: 0, grayscale_p: 0 } } } },
      { label: 'SimCLR', base: 'simclr', overrides: {} },
      { label: 'VICReg', base: 'vicreg', overrides: {} },
    ],
    steps: 150,
  },
  ablation: {
    title: 'Take one augmentation out',
    note: 'SimCLR with its full pipeline, then without random crops (the whole image), then without colour distortion (no jitter, no grayscale).',
    runs: [
      { label: 'full', base: 'simclr', overrides: { data: { augment: SIMCLR_AUGMENT } } },
      { label: 'no crop', base: 'simclr', overrides: { data: { augment: { ...SIMCLR_AUGMENT, crop_scale: [1.0, 1.0] } } } },
      { label: 'no colour', base: 'simclr', overrides: { data: { augment: { ...SIMCLR_AUGMENT, jitter_p: 0, grayscale_p: 0 } } } },
    ],
    steps: 224,
  },
  batch: {
    title: 'Negatives from a larger batch',
    note: 'SimCLR at batch 16, 64 and 256 after the same 10,240 images: a larger batch gives each anchor more negatives (2N − 2) but takes fewer steps.',
    runs: [16, 64, 256].map((b) => ({ label: `batch ${b}`, base: 'simclr', overrides: { train: { batch_size: b } }, steps: 10240 / b })),
  },
  queue: {
    title: 'Negatives from a queue (MoCo)',
    note: 'MoCo v2 at batch 16, its keys from a momentum encoder, with 256 or 4,096 queued keys as negatives, after the same 14,336 images.',
    runs: [256, 4096].map((q) => ({
      label: `queue ${q}`,
      base: 'simclr',
      overrides: mocoAtBatch16({ queue_size: q }),
    })),
    steps: 896,
  },
  momentum: {
    title: 'A momentum encoder, with weak augmentation',
    note: 'MoCo v2 (batch 16, 4,096 queued keys) with only crops and flips, its key encoder a momentum copy (m = 0.99) or the query encoder itself (m = 0).',
    runs: [0.99, 0].map((m) => ({
      label: `m = ${m}`,
      base: 'simclr',
      overrides: mocoAtBatch16({ queue_size: 4096, momentum: { base: m } }, { augment: { ...SIMCLR_AUGMENT, jitter_p: 0, grayscale_p: 0 } }),
    })),
    steps: 640,
  },
  projector: {
    title: 'Projector: an MLP, or one linear layer',
    note: 'SimCLR with its two-layer projector (256 hidden, 64 out), then with one linear layer to 64; kNN on the backbone\'s features in both.',
    runs: [
      { label: 'MLP projector', base: 'simclr', overrides: { method: { projector: { dims: [256, 64] } } } },
      { label: 'linear projector', base: 'simclr', overrides: { method: { projector: { dims: [64] } } } },
    ],
    steps: 250,
  },
};

export async function mount(root, params, { jem }) {
  const experiment = EXPERIMENTS[params.experiment];
  if (!experiment) throw new Error(`no experiment '${params.experiment}': choose ${Object.keys(EXPERIMENTS).join(', ')}`);
  const compare = runComparison({ stdChart: true });
  const start = el('button', { type: 'button', class: 'primary' }, `Run all ${experiment.runs.length}`);
  start.addEventListener('click', async () => {
    start.disabled = true;
    compare.clear();
    try {
      for (const run of experiment.runs) {
        const steps = run.steps ?? experiment.steps;
        const r = await compare.add(run.label, budgetRecipe(jem, run.base, steps, run.overrides), { backend: params.backend, steps });
        if (r.knn == null) break; // stopped
      }
      compare.run.status(`Done: ${compare.runs.map((r) => `${r.label} ${r.knn?.toFixed(1)} %`).join(', ')}.`);
    } catch (e) {
      compare.run.status(`Stopped: ${e.message}`);
    } finally {
      start.disabled = false;
    }
  });
  root.append(el('h3', {}, experiment.title), el('p', { class: 'note' }, experiment.note), el('div', { class: 'controls-row' }, start), compare.run.element, compare.figures);
}

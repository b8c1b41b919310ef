// Every widget of the tutorial, by name: where it lives, which section explains it, and its
// parameters (with defaults). `mount` puts one into any element; `learn/embed.html` lists them
// from this table, and `learn/widget.html?name=…&param=…` shows one alone (for an <iframe>).
//
//   import { mount } from 'https://…/learn/js/widgets.js';
//   mount(document.getElementById('here'), 'infonce', { temperature: 0.2 });
import { loadJem } from '../../js/remote.js';
import { el, errorText } from './ui.js';

const BACKEND = { default: 'auto', doc: 'auto (WebGPU on a hardware GPU, else the CPU), cpu or webgpu' };

export const WIDGETS = {
  'pretrain-evaluate': {
    section: 'pretrain.html',
    title: 'Pretrain, then evaluate with few labels',
    params: {
      steps: { default: 512, doc: 'pretraining steps (batch 64; 512 = 8 epochs of the 4,096 shapes)' },
      method: { default: 'vicreg', doc: 'simclr, vicreg, barlow_twins or simsiam' },
      backend: BACKEND,
    },
  },
  collapse: {
    section: 'collapse.html',
    title: 'Invariance alone collapses',
    params: { steps: { default: 150, doc: 'steps per run' }, backend: BACKEND },
  },
  infonce: {
    section: 'infonce.html',
    title: 'InfoNCE: similarities, softmax and loss',
    params: {
      temperature: { default: 0.2, doc: 'τ = 1/β, the softmax temperature' },
      anchor: { default: 0, doc: 'the row whose softmax is drawn' },
      batch: { default: 8, doc: 'images per view (2 × batch embeddings)' },
      source: { default: 'encoder', doc: 'encoder (a ConvNet\'s features of two augmented views, trained on demand), shipped (the pretrained encoder jem ships) or random (seeded vectors)' },
      seed: { default: 7, doc: 'seed of the random embeddings' },
      noise: { default: 0.3, doc: 'how far the random second view is from the first' },
      backend: BACKEND,
    },
  },
  vicreg: {
    section: 'vicreg.html',
    title: 'VICReg\'s three terms and the covariance matrix',
    params: {
      sim: { default: 25, doc: 'invariance weight λ' },
      std: { default: 25, doc: 'variance weight μ' },
      cov: { default: 1, doc: 'covariance weight ν' },
      batch: { default: 16, doc: 'embeddings per view' },
      dims: { default: 8, doc: 'embedding dimension (random source)' },
      source: { default: 'random', doc: 'random (seeded vectors) or encoder' },
      seed: { default: 5, doc: 'seed of the random embeddings' },
      noise: { default: 0.5, doc: 'how far the random second view is from the first' },
      backend: BACKEND,
    },
  },
  'barlow-twins': {
    section: 'vicreg.html',
    title: 'Barlow Twins\' cross-correlation matrix',
    params: {
      lambda: { default: 0.005, doc: 'weight of the off-diagonal (redundancy) term' },
      noise: { default: 0.5, doc: 'how far view 2 is from view 1' },
      batch: { default: 32, doc: 'embeddings per view' },
      dims: { default: 8, doc: 'embedding dimension' },
      seed: { default: 5, doc: 'seed of the embeddings' },
    },
  },
  sinkhorn: {
    section: 'swav.html',
    title: 'Sinkhorn–Knopp: equal mass for every prototype',
    params: {
      epsilon: { default: 0.05, doc: 'ε, the entropy weight (smaller: harder codes)' },
      iterations: { default: 3, doc: 'Sinkhorn rounds' },
      batch: { default: 12, doc: 'samples' },
      prototypes: { default: 4, doc: 'prototypes K' },
      seed: { default: 11, doc: 'seed of the scores' },
      temperature: { default: 0.1, doc: 'softmax temperature of the swapped prediction' },
    },
  },
  simsiam: {
    section: 'distillation.html',
    title: 'SimSiam: stop-gradient and predictor',
    params: { steps: { default: 150, doc: 'steps per run' }, backend: BACKEND },
  },
  ema: {
    section: 'distillation.html',
    title: 'A momentum (EMA) teacher',
    params: {
      momentum: { default: 0.9, doc: 'm in ξ ← m·ξ + (1 − m)·θ' },
      noise: { default: 0.05, doc: 'noise of each student step' },
      steps: { default: 100, doc: 'student steps' },
      seed: { default: 3, doc: 'seed of the student\'s path' },
    },
  },
  dino: {
    section: 'distillation.html',
    title: 'DINO: centring and sharpening the teacher',
    params: {
      temperature: { default: 0.04, doc: 'teacher temperature τ_t' },
      center_momentum: { default: 0.9, doc: 'centring momentum (1: no centring)' },
      batch: { default: 32, doc: 'teacher outputs in the batch' },
      prototypes: { default: 8, doc: 'output dimensions K' },
      bias: { default: 1, doc: 'head start of prototype 1' },
      steps: { default: 30, doc: 'steps' },
      seed: { default: 2, doc: 'seed of the teacher outputs' },
    },
  },
  augmentations: {
    section: 'augmentations.html',
    title: 'Augmentation lab',
    params: { preset: { default: 'simclr', doc: 'simclr, byol, vicreg, swav or dino' }, views: { default: 8, doc: 'views drawn' }, seed: { default: 0, doc: 'seed of the views' } },
  },
  compare: {
    section: 'families.html',
    title: 'Experiments: the same budget, kNN side by side',
    params: {
      experiment: { default: 'families', doc: 'families, batch, queue, ablation, projector or momentum' },
      backend: BACKEND,
    },
  },
};

// Parameters as the widget takes them: defaults, overridden by `given` (strings from a URL or
// data- attributes are turned into numbers where the default is one).
export function resolveParams(name, given = {}) {
  const spec = WIDGETS[name];
  const params = {};
  for (const [key, { default: fallback }] of Object.entries(spec.params)) {
    const value = given[key];
    params[key] = value == null || value === '' ? fallback : typeof fallback === 'number' ? Number(value) : String(value);
    if (typeof fallback === 'number' && !Number.isFinite(params[key])) throw new Error(`${name}: ${key} must be a number, not '${value}'`);
  }
  return params;
}

// Mounts widget `name` into `element` with `params`; resolves when it is interactive. Errors
// are shown in the element (and rethrown).
export async function mount(element, name, params = {}) {
  element.classList.add('widget');
  element.dataset.widget = name;
  try {
    if (!WIDGETS[name]) throw new Error(`no widget called '${name}': see embed.html for the list`);
    const [module, jem] = await Promise.all([import(`./widgets/${name}.js`), loadJem()]);
    await module.mount(element, resolveParams(name, params), { jem });
    element.dataset.ready = 'true';
  } catch (e) {
    element.append(el('p', { class: 'widget-error', role: 'alert' }, `This widget did not start: ${errorText(e)}`));
    element.dataset.ready = 'error';
    throw e;
  }
}

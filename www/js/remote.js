// The page's side of `worker.js`: jem's wasm module loaded once on the page (for quick, pure
// functions such as the augmentation lab) and once in a Web Worker that holds every training
// session. The module is compiled once and handed to the worker.
//
//   import { loadJem, RemoteSession } from './remote.js';
//   const jem = await loadJem();                       // the module's functions, on the page
//   const s = await RemoteSession.create(recipeToml, 'cpu');
//   await s.run({ evalEvery: 20, onStep: (stats) => …, onEval: (e) => … });  // until s.pause()
import init, * as jem from '../pkg/jem_wasm.js';

const WASM_URL = new URL('../pkg/jem_wasm_bg.wasm', import.meta.url);

let loading = null;
let worker = null;
let nextRequest = 1;
const pending = new Map();
const listeners = new Map();

// Loads the module on the page and starts the worker with the same compiled module. Resolves to
// the module's functions (see `www/README.md` and `pkg/jem_wasm.d.ts`).
export function loadJem() {
  loading ??= (async () => {
    const module = await WebAssembly.compileStreaming(fetch(WASM_URL));
    await init({ module_or_path: module });
    worker = startWorker();
    worker.onmessage = ({ data }) => {
      if (data.event) {
        listeners.get(data.session)?.[data.event]?.(data.value);
        return;
      }
      const request = pending.get(data.id);
      pending.delete(data.id);
      if (data.ok) request.resolve(data.value);
      else request.reject(new Error(data.error));
    };
    worker.onerror = (e) => {
      for (const request of pending.values()) request.reject(new Error(`the training worker failed: ${e.message}`));
      pending.clear();
    };
    await request('init', { module });
    return jem;
  })();
  return loading;
}

// The message of a thrown value (wasm errors are `Error`s; anything else is printed).
export function errorText(e) {
  return e && e.message ? e.message : String(e);
}

// A worker must come from the page's origin: a page on another site that imports this module
// starts it from a same-origin blob that imports ours (the server must allow CORS).
function startWorker() {
  const url = new URL('./worker.js', import.meta.url);
  if (url.origin === location.origin) return new Worker(url, { type: 'module' });
  const trampoline = new Blob([`import ${JSON.stringify(url.href)};`], { type: 'text/javascript' });
  return new Worker(URL.createObjectURL(trampoline), { type: 'module' });
}

function request(type, args = {}, transfer = []) {
  return new Promise((resolve, reject) => {
    const id = nextRequest++;
    pending.set(id, { resolve, reject });
    worker.postMessage({ id, type, ...args }, transfer);
  });
}

// A training session (jem-wasm's `Session`) that lives in the worker.
// The shipped encoder, beside the pages.
export const SHIPPED_ENCODER = new URL('../zoo/shapes-vicreg.jem', import.meta.url);

export class RemoteSession {
  constructor(info) {
    this.id = info.session;
    this.backend = info.backend;
    this.totalSteps = info.totalSteps;
    this.classes = info.classes;
  }

  // Starts pretraining from `recipe` (TOML) on `backend` ('cpu' or 'webgpu'); `cifar` is an
  // optional CIFAR-10 .bin file's bytes.
  static async create(recipe, backend, cifar) {
    await loadJem();
    return new RemoteSession(await request('create', { recipe, backend, cifar }));
  }

  // Loads an encoder file written by `jem export web`.
  static async load(encoder, backend, cifar) {
    await loadJem();
    return new RemoteSession(await request('load', { encoder, backend, cifar }));
  }

  // Loads the encoder that ships with jem (www/zoo/shapes-vicreg.jem, made by `cargo xtask zoo`
  // from recipes/zoo/shapes-vicreg.toml): pretrained on shapes, nothing to train first.
  static async loadShipped(backend) {
    const response = await fetch(SHIPPED_ENCODER);
    if (!response.ok) throw new Error(`${SHIPPED_ENCODER.pathname}: HTTP ${response.status}`);
    return RemoteSession.load(new Uint8Array(await response.arrayBuffer()), backend);
  }

  step() {
    return request('step', { session: this.id });
  }

  evaluate() {
    return request('evaluate', { session: this.id });
  }

  // kNN and a linear probe on `labelsPerClass` labels per class (0: all), e.g. [10, 100, 0]:
  // `[{ labels_per_class, images, knn_top1, linear_top1 }]`.
  probe(labelsPerClass) {
    return request('probe', { session: this.id, labelsPerClass });
  }

  // Two augmented views of `count` held-out images through the encoder: `{ n, d, z1, z2 }`.
  viewFeatures(count, seed = 0) {
    return request('view_features', { session: this.id, count, seed });
  }

  // The `k` nearest training images of `image` (PNG/JPEG bytes): `[{ index, similarity, class, png }]`.
  neighbours(image, k) {
    return request('neighbours', { session: this.id, image, k });
  }

  // Trains until `pause()`, the end of the schedule or `untilStep`, calling `onStep(stats)`
  // after each step and `onEval(evaluation)` every `evalEvery` steps and at the end (never
  // with 0). Resolves to
  // `{ reason: 'paused' | 'finished' | 'reached' }`; rejects when a step fails.
  async run({ evalEvery = 20, untilStep, onStep, onEval } = {}) {
    listeners.set(this.id, { step: onStep, eval: onEval });
    try {
      return await request('run', { session: this.id, evalEvery, untilStep });
    } finally {
      listeners.delete(this.id);
    }
  }

  pause() {
    return request('pause', { session: this.id });
  }

  free() {
    return request('free', { session: this.id });
  }
}

// What 'auto' picks, and why. A software WebGPU adapter (SwiftShader, llvmpipe, lavapipe, or
// one the browser marks as a fallback) emulates a GPU on the CPU: the demo's SimSiam step took
// 3.3 s there against 0.14 s on the CPU backend (headless Chromium, 2 cores), so 'auto' keeps to
// the CPU unless the adapter is a real GPU.
let autoChoice = null;
export function autoBackend() {
  autoChoice ??= (async () => {
    if (!('gpu' in navigator)) return { backend: 'cpu', reason: 'this browser has no WebGPU' };
    let adapter = null;
    try {
      adapter = await navigator.gpu.requestAdapter();
    } catch {
      adapter = null;
    }
    if (!adapter) return { backend: 'cpu', reason: 'the browser offers no WebGPU adapter' };
    const info = adapter.info ?? {};
    const name = [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' ');
    const software = adapter.isFallbackAdapter || info.isFallbackAdapter || /swiftshader|llvmpipe|lavapipe|software|basic render/i.test(name);
    if (software) {
      return { backend: 'cpu', reason: `the WebGPU adapter is a software emulation (${name || 'fallback adapter'}), slower than the CPU backend` };
    }
    return { backend: 'webgpu', reason: `a hardware WebGPU adapter (${name || 'unnamed'})` };
  })();
  return autoChoice;
}

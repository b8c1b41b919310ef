// jem's training sessions in a Web Worker, so the page never waits on a training step. The page
// talks to it through `remote.js`; this file only routes messages to the wasm module's
// `Session` and loops training steps until told to stop.
//
// Messages in: `{ id, type, ...arguments }`, answered by `{ id, ok, value }` or `{ id, ok: false,
// error }`. While a `run` is going, `{ session, event: 'step' | 'eval', value }` messages report
// it; `pause` ends it after the step in flight.
import init, * as jem from '../pkg/jem_wasm.js';

const sessions = new Map();
let nextSession = 1;
let ready = null;

function session(id) {
  const s = sessions.get(id);
  if (!s) throw new Error(`no session ${id} (freed?)`);
  return s;
}

function describe(id, s) {
  return { session: id, backend: s.session.backend(), totalSteps: s.session.total_steps(), classes: s.session.classes() };
}

function add(created) {
  const id = nextSession++;
  sessions.set(id, { session: created, running: false });
  return describe(id, sessions.get(id));
}

// The loop of one run: steps until paused, finished or failed; an evaluation every `evalEvery`
// steps and at the end (none with 0). Yields to the worker's event loop after each step so that `pause`
// messages are read.
async function run(id, { evalEvery = 20, untilStep = Infinity }) {
  const s = session(id);
  s.running = true;
  const total = s.session.total_steps();
  const end = Math.min(total, untilStep);
  let reason = 'paused';
  try {
    while (s.running) {
      const t0 = performance.now();
      const stats = JSON.parse(await s.session.step());
      stats.ms = performance.now() - t0;
      postMessage({ session: id, event: 'step', value: stats });
      const done = stats.step + 1 >= end;
      if (evalEvery > 0 && ((stats.step + 1) % evalEvery === 0 || done)) {
        const e = JSON.parse(await s.session.evaluate());
        e.step = stats.step + 1;
        postMessage({ session: id, event: 'eval', value: e });
      }
      if (done) {
        reason = stats.step + 1 >= total ? 'finished' : 'reached';
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
  } finally {
    s.running = false;
  }
  return { reason };
}

const handlers = {
  async init({ module }) {
    ready ??= init({ module_or_path: module });
    await ready;
    return jem.version();
  },
  async create({ recipe, backend, cifar }) {
    return add(await jem.Session.create(recipe, backend, cifar ?? undefined));
  },
  async load({ encoder, backend, cifar }) {
    return add(await jem.Session.load(encoder, backend, cifar ?? undefined));
  },
  async step({ session: id }) {
    return JSON.parse(await session(id).session.step());
  },
  async evaluate({ session: id }) {
    return JSON.parse(await session(id).session.evaluate());
  },
  async probe({ session: id, labelsPerClass }) {
    return JSON.parse(await session(id).session.probe(Uint32Array.from(labelsPerClass)));
  },
  async view_features({ session: id, count, seed }) {
    return JSON.parse(await session(id).session.view_features(count, seed));
  },
  // The `k` nearest training images of `image`, each with its PNG bytes.
  async neighbours({ session: id, image, k }) {
    const s = session(id).session;
    const found = JSON.parse(await s.neighbours(image, k));
    return found.map((n) => ({ ...n, png: s.train_image(n.index) }));
  },
  run({ session: id, ...options }) {
    return run(id, options);
  },
  pause({ session: id }) {
    const s = sessions.get(id);
    if (s) s.running = false;
  },
  free({ session: id }) {
    const s = sessions.get(id);
    if (!s) return;
    s.running = false;
    sessions.delete(id);
    // A step in flight keeps its own reference to the session's state: freeing is safe.
    s.session.free();
  },
};

self.onmessage = async ({ data }) => {
  const { id, type, ...args } = data;
  try {
    if (type !== 'init') await ready;
    const handler = handlers[type];
    if (!handler) throw new Error(`unknown request ${type}`);
    postMessage({ id, ok: true, value: await handler(args) });
  } catch (e) {
    postMessage({ id, ok: false, error: e && e.message ? e.message : String(e) });
  }
};

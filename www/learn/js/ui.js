// Building blocks of the tutorial's widgets: DOM helpers, labelled sliders, a read-out of
// numbers that tests can read exactly, and a training run with progress and a Stop button.
import { RemoteSession, autoBackend } from '../../js/remote.js';

export { errorText } from '../../js/remote.js';

// `el('p', { class: 'note' }, 'text', child)`: an element with attributes and children.
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value == null || value === false) continue;
    if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? '' : value);
  }
  node.append(...children.filter((c) => c != null));
  return node;
}

let nextId = 1;

// A labelled range input with its value shown; `onInput(value)` on every move.
export function slider({ label, min, max, step, value, format = (v) => String(v), onInput, name }) {
  const id = `w${nextId++}`;
  const input = el('input', { id, type: 'range', min, max, step, value, 'data-param': name });
  const output = el('output', { for: id }, format(Number(value)));
  input.addEventListener('input', () => {
    output.textContent = format(Number(input.value));
    onInput?.(Number(input.value));
  });
  const wrap = el('label', { for: id, class: 'slider' }, el('span', {}, label, ' ', output), input);
  return { element: wrap, input, get value() { return Number(input.value); } };
}

// A labelled select; `options`: [[value, text]].
export function select({ label, options, value, onChange, name }) {
  const id = `w${nextId++}`;
  const input = el('select', { id, 'data-param': name }, ...options.map(([v, text]) => el('option', { value: v, selected: String(v) === String(value) }, text)));
  input.addEventListener('change', () => onChange?.(input.value));
  return { element: el('label', { for: id }, label, ' ', input), input, get value() { return input.value; } };
}

export function checkbox({ label, checked, onChange, name }) {
  const id = `w${nextId++}`;
  const input = el('input', { id, type: 'checkbox', checked, 'data-param': name });
  input.addEventListener('change', () => onChange?.(input.checked));
  return { element: el('label', { for: id, class: 'check' }, input, ' ', label), input, get checked() { return input.checked; } };
}

// Numbers a widget shows: `set(name, value)` writes the value rounded for people and exact in
// `data-value` (for tests, and for anyone who copies it).
export function readout(entries) {
  const list = el('dl', { class: 'readout' });
  const cells = {};
  for (const [name, label] of entries) {
    cells[name] = el('dd', { 'data-name': name }, '–');
    list.append(el('dt', {}, label), cells[name]);
  }
  return {
    element: list,
    set(name, value, digits = 4) {
      const cell = cells[name];
      cell.dataset.value = String(value);
      cell.textContent = typeof value === 'number' ? value.toFixed(digits) : String(value);
    },
  };
}

export function canvas(label, className = '') {
  return el('canvas', { class: className, role: 'img', 'aria-label': label });
}

export function figure(caption, canvasElement) {
  return el('figure', { class: 'panel' }, el('figcaption', {}, caption), canvasElement);
}

// The backend a widget computes on: its `backend` parameter, or Auto's pick (WebGPU on a
// hardware adapter, else the CPU).
export async function chooseBackend(param) {
  if (param === 'cpu' || param === 'webgpu') return param;
  return (await autoBackend()).backend;
}

// A training run with a progress bar, a status line and a Stop button. `start(recipe, options)`
// trains in the worker until `steps` steps (or Stop) and resolves to `{ session, evals,
// steps, stopped }`; the session stays alive until the caller frees it.
export function trainingRun() {
  const bar = el('progress', { max: 1, value: 0 });
  const status = el('span', { class: 'status', role: 'status' }, 'Ready.');
  const stop = el('button', { type: 'button', disabled: true }, 'Stop');
  let current = null;
  stop.addEventListener('click', () => {
    current?.pause();
    stop.disabled = true;
  });
  const element = el('div', { class: 'run' }, bar, stop, status);
  return {
    element,
    status(text) {
      status.textContent = text;
    },
    get running() {
      return current !== null;
    },
    // Starts a session of `recipe` (TOML) and trains it, as `train` does.
    async start(recipe, options) {
      const session = await RemoteSession.create(recipe, await chooseBackend(options.backend));
      try {
        return await this.train(session, options);
      } catch (e) {
        session.free();
        throw e;
      }
    },
    // Trains `session` up to step `steps`, with kNN every `evalEvery` steps and at the end
    // (0: at the end only; negative: never). Resolves to `{ session, steps, evals, stopped, seconds, backend }`.
    async train(session, { steps, evalEvery = 0, label = 'Training', onStep, onEval }) {
      current = session;
      stop.disabled = false;
      const record = { session, steps: [], evals: [], stopped: false, backend: session.backend };
      const t0 = performance.now();
      bar.max = steps;
      bar.value = 0;
      try {
        const { reason } = await session.run({
          untilStep: steps,
          evalEvery: evalEvery || steps,
          onStep: (s) => {
            record.steps.push(s);
            bar.value = s.step + 1;
            status.textContent = `${label}: step ${s.step + 1} / ${steps} on ${session.backend === 'webgpu' ? 'WebGPU' : 'the CPU'}, ${((performance.now() - t0) / 1000).toFixed(0)} s`;
            onStep?.(s, record);
          },
          onEval: (e) => {
            record.evals.push(e);
            onEval?.(e, record);
          },
        });
        record.stopped = reason === 'paused';
        record.seconds = (performance.now() - t0) / 1000;
        status.textContent = `${label}: ${record.stopped ? 'stopped' : 'done'} after ${record.steps.length} steps, ${record.seconds.toFixed(1)} s.`;
        return record;
      } finally {
        current = null;
        stop.disabled = true;
      }
    },
  };
}

// The browser recipe of `method` with `overrides` (JSON-merged, as `recipe_with`), its epochs set
// so that its schedule (warm-up, cosine decay) spans `steps` steps: a short run is a whole run,
// not the start of a long one.
export function budgetRecipe(jem, method, steps, overrides = {}) {
  const recipe = jem.recipe_with(jem.builtin_recipe(method), JSON.stringify(overrides));
  const { steps_per_epoch: perEpoch } = JSON.parse(jem.recipe_info(recipe));
  return jem.recipe_with(recipe, JSON.stringify({ train: { epochs: Math.max(1, Math.ceil(steps / perEpoch)) } }));
}

// The demo's entry point: loads jem's WebAssembly module, switches tabs, picks the backend and
// shows messages. Each tab lives in its own module.
import init, * as jem from '../pkg/jem_wasm.js';
import { setupLab } from './lab.js';
import { setupTrain } from './train.js';
import { setupInfer } from './infer.js';

const messageBox = document.getElementById('message');

export const app = {
  jem,
  trainSession: null,
  showError(text) {
    messageBox.textContent = text;
    messageBox.className = 'message';
    messageBox.hidden = false;
  },
  showInfo(text) {
    messageBox.textContent = text;
    messageBox.className = 'message info';
    messageBox.hidden = false;
  },
  clearMessage() {
    messageBox.hidden = true;
  },
  // The backend the user asked for: 'webgpu' or 'cpu'. 'auto' takes WebGPU on a hardware
  // adapter and the CPU otherwise (see `autoBackend`).
  async chosenBackend() {
    const choice = document.getElementById('backend').value;
    if (choice !== 'auto') return choice;
    return (await autoBackend()).backend;
  },
  // Runs `create(backend)`; when WebGPU fails, says so and falls back to the CPU.
  async withBackend(create) {
    const backend = await this.chosenBackend();
    try {
      const result = await create(backend);
      showBackend(backend);
      return result;
    } catch (e) {
      if (backend !== 'webgpu') throw e;
      this.showInfo(`WebGPU did not start (${errorText(e)}); running on the CPU instead.`);
      const result = await create('cpu');
      showBackend('cpu');
      return result;
    }
  },
};

export function errorText(e) {
  return e && e.message ? e.message : String(e);
}

export function pngUrl(bytes) {
  return URL.createObjectURL(new Blob([bytes], { type: 'image/png' }));
}

// FNV-1a of bytes: lets tests (and people) tell images apart.
export function hashBytes(bytes) {
  let h = 0x811c9dc5;
  for (const b of bytes) {
    h = Math.imul(h ^ b, 0x01000193) >>> 0;
  }
  return h.toString(16);
}

export async function readFile(file) {
  return new Uint8Array(await file.arrayBuffer());
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

function showBackend(backend) {
  const pill = document.getElementById('backend-status');
  pill.textContent = backend === 'webgpu' ? 'running on WebGPU' : 'running on CPU (wasm)';
  pill.className = `pill ${backend}`;
  pill.dataset.backend = backend;
}

function showTab() {
  const name = (location.hash || '#lab').slice(1);
  const tab = ['lab', 'train', 'infer'].includes(name) ? name : 'lab';
  for (const section of document.querySelectorAll('.tab')) {
    section.hidden = section.id !== `tab-${tab}`;
  }
  for (const link of document.querySelectorAll('nav a')) {
    link.classList.toggle('active', link.dataset.tab === tab);
  }
  window.dispatchEvent(new CustomEvent('jem-tab', { detail: tab }));
}

async function main() {
  window.addEventListener('hashchange', showTab);
  try {
    await init({ module_or_path: new URL('../pkg/jem_wasm_bg.wasm', import.meta.url) });
  } catch (e) {
    app.showError(`jem's WebAssembly module did not load: ${errorText(e)}`);
    return;
  }
  const pill = document.getElementById('backend-status');
  const auto = await autoBackend();
  pill.textContent = auto.backend === 'webgpu' ? 'auto: WebGPU' : 'auto: CPU';
  pill.title = `Auto picks ${auto.backend === 'webgpu' ? 'WebGPU' : 'the CPU'}: ${auto.reason}.`;
  pill.dataset.auto = auto.backend;
  pill.dataset.autoReason = auto.reason;
  setupLab(app);
  setupTrain(app);
  setupInfer(app);
  showTab();
  document.body.dataset.ready = 'true';
}

main();

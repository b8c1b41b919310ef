// The demo's entry point: loads jem's WebAssembly module (on the page and in the training
// worker), switches tabs, picks the backend and shows messages. Each tab lives in its own module.
import { autoBackend, errorText, loadJem } from './remote.js';
import { setupLab } from './lab.js';
import { setupTrain } from './train.js';
import { setupInfer } from './infer.js';

const messageBox = document.getElementById('message');

export const app = {
  jem: null,
  trainSession: null,
  showError(text) {
    showMessage(text, 'message');
  },
  showInfo(text) {
    showMessage(text, 'message info');
  },
  clearMessage() {
    messageBox.hidden = true;
    delete messageBox.dataset.tab;
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

// A message belongs to the tab that showed it: it hides while another tab is open.
function showMessage(text, className) {
  messageBox.textContent = text;
  messageBox.className = className;
  messageBox.dataset.tab = currentTab();
  messageBox.hidden = false;
}

function currentTab() {
  const name = (location.hash || '#lab').slice(1);
  return ['lab', 'train', 'infer'].includes(name) ? name : 'lab';
}

export { errorText } from './remote.js';

export { hashBytes, pngUrl, readFile } from './images.js';

function showBackend(backend) {
  const pill = document.getElementById('backend-status');
  pill.textContent = backend === 'webgpu' ? 'running on WebGPU' : 'running on CPU (wasm)';
  pill.className = `pill ${backend}`;
  pill.dataset.backend = backend;
}

function showTab() {
  const tab = currentTab();
  if (messageBox.dataset.tab) messageBox.hidden = messageBox.dataset.tab !== tab;
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
    app.jem = await loadJem();
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

// Inference tab: embed query images with an encoder and show their nearest training images.
import { errorText, pngUrl, readFile } from './app.js';
import { RemoteSession } from './remote.js';

export function setupInfer(app) {
  const { jem } = app;
  const $ = (id) => document.getElementById(id);
  let loaded = null; // a Session from an encoder file
  let zoo = null; // a Session of the shipped encoder (www/zoo/), loaded when first chosen
  let example = 0;

  function encoder() {
    return { trained: app.trainSession, file: loaded, zoo }[$('infer-source').value];
  }

  // The encoder jem ships, pretrained natively (`cargo xtask zoo`): nothing to train first.
  async function loadZoo() {
    if (zoo) return;
    $('infer-encoder').textContent = 'Loading the shipped encoder…';
    try {
      zoo = await app.withBackend((backend) => RemoteSession.loadShipped(backend));
      app.clearMessage();
    } catch (e) {
      app.showError(`The shipped encoder: ${errorText(e)}`);
    }
  }

  function describe() {
    const note = $('infer-encoder');
    if ($('infer-source').value === 'trained') {
      note.textContent = app.trainSession
        ? `The encoder of the Train tab (as trained so far), on ${app.trainSession.backend === 'webgpu' ? 'WebGPU' : 'the CPU'}.`
        : 'No encoder trained yet: start training in the Train tab, or load an encoder file.';
    } else if ($('infer-source').value === 'zoo') {
      note.textContent = zoo
        ? `jem's shapes encoder: VICReg, a ConvNet trained natively for 2,560 steps (recipes/zoo/shapes-vicreg.toml), on ${zoo.backend === 'webgpu' ? 'WebGPU' : 'the CPU'}.`
        : 'The shipped encoder is not loaded.';
    } else {
      note.textContent = loaded ? `Loaded encoder, on ${loaded.backend === 'webgpu' ? 'WebGPU' : 'the CPU'}.` : 'Choose a .jem file written by jem export web.';
    }
  }

  function tile(png, caption) {
    const fig = document.createElement('figure');
    fig.className = 'tile';
    const img = document.createElement('img');
    img.src = pngUrl(png);
    img.alt = caption;
    const cap = document.createElement('figcaption');
    cap.textContent = caption;
    fig.append(img, cap);
    return fig;
  }

  // `name` labels the query; `label`, where known, is its class.
  async function query(name, bytes, label) {
    const session = encoder();
    if (!session) {
      app.showError('No encoder: train one in the Train tab or load an encoder file first.');
      return;
    }
    try {
      const found = await session.neighbours(bytes, 5);
      const row = document.createElement('div');
      row.className = 'result';
      const q = tile(bytes, label ? `${name} · ${label}` : name);
      q.classList.add('query');
      row.append(q, ...found.map((n) => tile(n.png, `${n.class ?? '#' + n.index} · ${n.similarity.toFixed(3)}`)));
      const results = $('infer-results');
      if (results.querySelector('.caption')) results.replaceChildren();
      results.prepend(row);
      app.clearMessage();
    } catch (e) {
      app.showError(`${name}: ${errorText(e)}`);
    }
  }

  function clearResults() {
    const caption = document.createElement('p');
    caption.className = 'caption';
    caption.textContent = 'Results appear here: each query with its five nearest training images.';
    $('infer-results').replaceChildren(caption);
  }

  $('infer-source').addEventListener('change', async () => {
    $('infer-file-label').hidden = $('infer-source').value !== 'file';
    clearResults();
    if ($('infer-source').value === 'zoo') await loadZoo();
    describe();
  });
  $('infer-file').addEventListener('change', async () => {
    const file = $('infer-file').files[0];
    if (!file) return;
    try {
      const bytes = await readFile(file);
      loaded?.free();
      loaded = null;
      loaded = await app.withBackend((backend) => RemoteSession.load(bytes, backend));
      app.clearMessage();
    } catch (e) {
      app.showError(`${file.name}: ${errorText(e)}`);
    }
    describe();
  });
  $('infer-upload').addEventListener('change', async () => {
    for (const file of $('infer-upload').files) {
      await query(file.name, await readFile(file));
    }
  });
  $('infer-example').addEventListener('click', () => {
    // Shapes images far beyond the training range: never seen in training.
    example += 1;
    const index = 1000000 + example;
    query(`shapes #${index}`, jem.shapes_image(32, index), jem.shapes_class(index));
  });
  // A new training run replaces the encoder: the old results no longer describe it.
  window.addEventListener('jem-trained', () => {
    if ($('infer-source').value === 'trained') clearResults();
    describe();
  });
  window.addEventListener('jem-reset', () => {
    if ($('infer-source').value === 'trained') clearResults();
    describe();
  });
  window.addEventListener('jem-tab', (e) => e.detail === 'infer' && describe());
  describe();
}

// Inference tab: embed query images with an encoder and show their nearest training images.
import { errorText, pngUrl, readFile } from './app.js';

export function setupInfer(app) {
  const { jem } = app;
  const $ = (id) => document.getElementById(id);
  let loaded = null; // a Session from an encoder file
  let example = 0;

  function encoder() {
    return $('infer-source').value === 'trained' ? app.trainSession : loaded;
  }

  function describe() {
    const note = $('infer-encoder');
    if ($('infer-source').value === 'trained') {
      note.textContent = app.trainSession
        ? `The encoder of the Train tab (as trained so far), on ${app.trainSession.backend() === 'webgpu' ? 'WebGPU' : 'the CPU'}.`
        : 'No encoder trained yet: start training in the Train tab, or load an encoder file.';
    } else {
      note.textContent = loaded ? `Loaded encoder, on ${loaded.backend() === 'webgpu' ? 'WebGPU' : 'the CPU'}.` : 'Choose a .jem file written by jem export web.';
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

  async function query(name, bytes) {
    const session = encoder();
    if (!session) {
      app.showError('No encoder: train one in the Train tab or load an encoder file first.');
      return;
    }
    try {
      const found = JSON.parse(await session.neighbours(bytes, 5));
      const row = document.createElement('div');
      row.className = 'result';
      const q = tile(bytes, name);
      q.classList.add('query');
      row.append(q, ...found.map((n) => tile(session.train_image(n.index), `${n.class ?? '#' + n.index} · ${n.similarity.toFixed(3)}`)));
      const results = $('infer-results');
      if (results.querySelector('.caption')) results.replaceChildren();
      results.prepend(row);
      app.clearMessage();
    } catch (e) {
      app.showError(`${name}: ${errorText(e)}`);
    }
  }

  $('infer-source').addEventListener('change', () => {
    $('infer-file-label').hidden = $('infer-source').value !== 'file';
    describe();
  });
  $('infer-file').addEventListener('change', async () => {
    const file = $('infer-file').files[0];
    if (!file) return;
    try {
      const bytes = await readFile(file);
      loaded?.free?.();
      loaded = null;
      loaded = await app.withBackend((backend) => jem.Session.load(bytes, backend, undefined));
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
    query(`shapes #${1000000 + example}`, jem.shapes_image(32, 1000000 + example));
  });
  window.addEventListener('jem-trained', describe);
  window.addEventListener('jem-tab', (e) => e.detail === 'infer' && describe());
  describe();
}

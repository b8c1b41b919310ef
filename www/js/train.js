// Train tab: a pretraining session stepped from the page, with live charts and collapse switches.
import { barChart, lineChart, scatter } from './charts.js';
import { errorText, readFile } from './app.js';

const NOTES = {
  simsiam: 'SimSiam: two views, a predictor on one branch and stop-gradient on the other. Nothing in the loss forbids collapse; the asymmetry does.',
  vicreg: 'VICReg: invariance (MSE between the views) + variance (keep each dimension\'s std above 1) + covariance (decorrelate dimensions).',
  simclr: 'SimCLR: InfoNCE — each view must pick its partner out of the batch; the other images are negatives.',
  barlow_twins: 'Barlow Twins: the cross-correlation matrix of the two views\' embeddings is pushed to the identity.',
};

export function setupTrain(app) {
  const { jem } = app;
  const $ = (id) => document.getElementById(id);
  // Everything the charts show; `window.jemDemo` exposes it to tests.
  const demo = { steps: [], evals: [], running: false, backend: null, error: null };
  window.jemDemo = demo;
  let session = null;
  let cifar = null;
  let lastEval = null;

  function showValues() {
    for (const input of document.querySelectorAll('#train-controls input[type=range]')) {
      const out = input.parentElement.querySelector('output');
      if (out) out.textContent = input.id === 'train-lr' ? `× ${input.value}` : input.value;
    }
  }

  function methodChanged() {
    const method = $('train-method').value;
    $('train-method-note').textContent = NOTES[method];
    for (const el of document.querySelectorAll('#collapse-switches [data-method]')) {
      el.hidden = !el.dataset.method.split(' ').includes(method);
    }
  }

  function recipe() {
    const method = $('train-method').value;
    const base = jem.builtin_recipe(method);
    const baseLr = Number(/base_lr = ([0-9.eE+-]+)/.exec(base)[1]);
    const overrides = { train: { base_lr: baseLr * Number($('train-lr').value) } };
    if (method === 'simsiam') {
      overrides.method = { stop_gradient: $('switch-stop-gradient').checked, use_predictor: $('switch-predictor').checked };
    }
    if (method === 'vicreg') {
      overrides.method = { coeffs: { std: Number($('switch-variance').value) } };
    }
    return jem.recipe_with(base, JSON.stringify(overrides));
  }

  function setRunning(running) {
    demo.running = running;
    $('train-start').disabled = running;
    $('train-pause').disabled = !running;
    for (const el of document.querySelectorAll('#train-controls select, #train-controls input')) {
      el.disabled = running;
    }
    $('train-start').textContent = session ? 'Resume' : 'Start';
  }

  async function start() {
    app.clearMessage();
    if (!session) {
      if ($('train-data').value === 'cifar' && !cifar) {
        app.showError('Choose a CIFAR-10 .bin file first (e.g. data_batch_1.bin), or train on the built-in shapes.');
        return;
      }
      const text = recipe();
      setRunning(true);
      $('stat-step').textContent = 'starting…';
      try {
        const data = $('train-data').value === 'cifar' ? cifar : undefined;
        session = await app.withBackend(async (backend) => {
          const s = await jem.Session.create(text, backend, data);
          demo.backend = backend;
          return s;
        });
        app.trainSession = session;
        window.dispatchEvent(new CustomEvent('jem-trained'));
      } catch (e) {
        setRunning(false);
        $('stat-step').textContent = '–';
        app.showError(`Cannot start training: ${errorText(e)}`);
        return;
      }
      await evaluate();
    }
    setRunning(true);
    loop();
  }

  async function loop() {
    const evalEvery = Number($('train-eval-every').value);
    const total = session.total_steps();
    while (demo.running) {
      try {
        const t0 = performance.now();
        const stats = JSON.parse(await session.step());
        stats.ms = performance.now() - t0;
        demo.steps.push(stats);
        showStep(stats, total);
        if ((stats.step + 1) % evalEvery === 0) await evaluate();
        if (stats.step + 1 >= total) {
          await evaluate();
          app.showInfo(`Finished the recipe's ${total} steps. Reset to train again.`);
          break;
        }
      } catch (e) {
        demo.error = errorText(e);
        app.showError(`Training stopped: ${demo.error}. Press Reset to start again${demo.backend === 'webgpu' ? ' (or switch to the CPU)' : ''}.`);
        break;
      }
      // Yield to the browser between steps, so the page stays responsive.
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
    setRunning(false);
  }

  async function evaluate() {
    const step = demo.steps.length;
    const e = JSON.parse(await session.evaluate());
    e.step = step;
    demo.evals.push(e);
    lastEval = e;
    $('stat-knn').textContent = e.knn_top1 == null ? 'no labels' : `${e.knn_top1.toFixed(1)} %`;
    drawEval();
  }

  function showStep(s, total) {
    $('stat-step').textContent = `${s.step + 1} / ${total}`;
    $('stat-epoch').textContent = s.epoch + 1;
    $('stat-time').textContent = `${s.ms.toFixed(0)} ms`;
    $('stat-loss').textContent = s.loss.toFixed(4);
    $('stat-std').textContent = s.embedding_std.toFixed(4);
    drawSteps();
  }

  function drawSteps() {
    const steps = demo.steps;
    const terms = steps.length ? Object.keys(steps[0].terms) : [];
    const method = $('train-method').value;
    // VICReg's terms have their own scales: show the weighted total and the three raw terms.
    const series = [{ name: 'loss', points: steps.map((s) => [s.step, s.loss]) }];
    if (method === 'vicreg') {
      for (const t of terms) series.push({ name: t, points: steps.map((s) => [s.step, s.terms[t]]) });
    }
    $('loss-caption').textContent = method === 'vicreg' ? ' — total = 25·invariance + variance weight·variance + covariance' : '';
    lineChart($('chart-loss'), series, { yLabel: 'loss' });
    lineChart($('chart-std'), [{ name: 'embedding std', points: steps.map((s) => [s.step, s.embedding_std]) }], { yLabel: 'std', yMin: 0 });
  }

  function drawEval() {
    lineChart($('chart-knn'), [{ name: 'kNN top-1 (%)', points: demo.evals.filter((e) => e.knn_top1 != null).map((e) => [e.step, e.knn_top1]) }], { yLabel: 'top-1 %', yMin: 0 });
    const sorted = [...(lastEval?.std ?? [])].sort((a, b) => b - a);
    barChart($('chart-dims'), sorted, { xLabel: 'feature dimension (sorted by std)', yLabel: 'std' });
    scatter($('chart-pca'), lastEval?.pca ?? [], lastEval?.labels, lastEval?.classes);
  }

  function reset() {
    demo.running = false;
    session?.free?.();
    if (app.trainSession === session) app.trainSession = null;
    session = null;
    lastEval = null;
    demo.steps.length = 0;
    demo.evals.length = 0;
    demo.error = null;
    for (const id of ['stat-step', 'stat-epoch', 'stat-time', 'stat-loss', 'stat-std', 'stat-knn']) $(id).textContent = '–';
    setRunning(false);
    drawSteps();
    drawEval();
  }

  $('train-start').addEventListener('click', start);
  $('train-pause').addEventListener('click', () => (demo.running = false));
  $('train-reset').addEventListener('click', () => {
    app.clearMessage();
    reset();
  });
  $('train-method').addEventListener('change', methodChanged);
  // A session keeps the recipe it was started with.
  document.getElementById('train-controls').addEventListener('change', (e) => {
    if (session && e.target.id !== 'train-eval-every') app.showInfo('The new settings apply after Reset; Resume continues the current run.');
  });
  for (const input of document.querySelectorAll('#train-controls input[type=range]')) input.addEventListener('input', showValues);
  $('train-data').addEventListener('change', () => ($('train-upload-label').hidden = $('train-data').value !== 'cifar'));
  $('train-upload').addEventListener('change', async () => {
    const file = $('train-upload').files[0];
    cifar = null;
    if (!file) return;
    const bytes = await readFile(file);
    try {
      const images = jem.cifar_image_count(bytes, file.name);
      cifar = bytes;
      app.showInfo(`${file.name}: ${images.toLocaleString()} images; the last 500 are held out for kNN.`);
    } catch (e) {
      app.showError(`${errorText(e)}. Choose a CIFAR-10 batch such as data_batch_1.bin.`);
    }
  });
  window.addEventListener('jem-tab', (e) => {
    if (e.detail === 'train') {
      drawSteps();
      drawEval();
    }
  });
  methodChanged();
  showValues();
}

// Train tab: a pretraining session stepped from the page, with live charts and collapse switches.
import { barChart, lineChart, scatter } from './charts.js';
import { errorText, readFile } from './app.js';
import { RemoteSession } from './remote.js';

const NOTES = {
  simsiam: 'SimSiam: two views, a predictor on one branch and stop-gradient on the other. Nothing in the loss forbids collapse; the asymmetry does. It learns slowly (a few kNN points in this budget): use it to see collapse.',
  vicreg: 'VICReg: invariance (MSE between the views) + variance (keep each dimension\'s std above 1) + covariance (decorrelate dimensions).',
  simclr: 'SimCLR: InfoNCE — each view must pick its partner out of the batch; the other images are negatives.',
  barlow_twins: 'Barlow Twins: the cross-correlation matrix of the two views\' embeddings is pushed to the identity.',
};

export function setupTrain(app) {
  const { jem } = app;
  const $ = (id) => document.getElementById(id);
  // Everything the charts show; `window.jemDemo` exposes it to tests.
  const demo = { steps: [], evals: [], runs: [], label: null, running: false, backend: null, error: null };
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
    const info = JSON.parse(jem.recipe_info(jem.builtin_recipe(method)));
    $('train-method-note').textContent = `${NOTES[method]} Recipe: ${info.total_steps} steps of ${info.batch_size} on ${info.images.toLocaleString('en')} shapes.`;
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

  // How the legend names a run: the method and any collapse switch turned.
  function runLabel() {
    const method = $('train-method');
    const parts = [method.options[method.selectedIndex].text];
    if (method.value === 'simsiam' && !$('switch-stop-gradient').checked) parts.push('no stop-gradient');
    if (method.value === 'simsiam' && !$('switch-predictor').checked) parts.push('no predictor');
    if (method.value === 'vicreg') parts.push(`variance weight ${$('switch-variance').value}`);
    return parts.join(', ');
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
      demo.label = runLabel();
      setRunning(true);
      $('stat-step').textContent = 'starting…';
      try {
        const data = $('train-data').value === 'cifar' ? cifar : undefined;
        session = await app.withBackend(async (backend) => {
          const s = await RemoteSession.create(text, backend, data);
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

  // Training runs in the worker; the page only draws what it reports.
  async function loop() {
    const total = session.totalSteps;
    try {
      const { reason } = await session.run({
        evalEvery: Number($('train-eval-every').value),
        onStep: (stats) => {
          demo.steps.push(stats);
          showStep(stats, total);
        },
        onEval: showEval,
      });
      if (reason === 'finished') app.showInfo(`Finished the recipe's ${total} steps. Reset to train again.`);
    } catch (e) {
      demo.error = errorText(e);
      app.showError(`Training stopped: ${demo.error}. Press Reset to start again${demo.backend === 'webgpu' ? ' (or switch to the CPU)' : ''}.`);
    }
    setRunning(false);
  }

  async function evaluate() {
    const e = await session.evaluate();
    e.step = demo.steps.length;
    showEval(e);
  }

  function showEval(e) {
    demo.evals.push(e);
    lastEval = e;
    $('stat-knn').textContent = e.knn_top1 == null ? 'no labels' : `${e.knn_top1.toFixed(1)} %`;
    $('stat-rank').textContent = e.effective_rank.toFixed(1);
    drawEval();
  }

  function showStep(s, total) {
    $('stat-step').textContent = `${s.step + 1} / ${total}`;
    $('stat-epoch').textContent = s.epoch + 1;
    $('stat-time').textContent = `${s.ms.toFixed(0)} ms`;
    $('stat-loss').textContent = s.loss.toFixed(4);
    $('stat-std').textContent = s.embedding_std.toFixed(4);
    // Charts redraw four times a second at most, however fast the steps come: on a small
    // machine drawing competes with the worker for the CPU.
    if (!drawPending) {
      drawPending = true;
      setTimeout(() => {
        drawPending = false;
        drawSteps();
      }, 250);
    }
  }
  let drawPending = false;

  // A run's curves: the current one, and earlier ones (kept by Reset) drawn pale beside it.
  function curves(pick) {
    return [
      ...demo.runs.map((run) => ({ name: run.label, points: pick(run), faded: true })),
      { name: demo.label ?? 'this run', points: pick(demo) },
    ];
  }

  function drawSteps() {
    const steps = demo.steps;
    const last = steps.at(-1);
    const spread = last ? 1 / Math.sqrt(last.embedding_dimension_std.length) : null;
    const lines = spread ? [{ y: spread, label: `1/√D = ${spread.toFixed(3)} (spread)` }] : [];
    lineChart($('chart-loss'), curves((run) => run.steps.map((s) => [s.step, s.loss])), { yLabel: 'loss' });
    // A method's terms (VICReg's three) on their own axes: the weighted total dwarfs them.
    const terms = last ? Object.keys(last.terms) : [];
    $('terms-figure').hidden = terms.length === 0;
    if (terms.length) {
      lineChart($('chart-terms'), terms.map((t) => ({ name: t, points: steps.map((s) => [s.step, s.terms[t]]) })), { yLabel: 'unweighted term', yMin: 0 });
    }
    lineChart($('chart-std'), curves((run) => run.steps.map((s) => [s.step, s.embedding_std])), { yLabel: 'std', yMin: 0, lines });
    const sorted = [...(last?.embedding_dimension_std ?? [])].sort((a, b) => b - a);
    barChart($('chart-dims'), sorted, { xLabel: 'embedding dimension (sorted by std)', yLabel: 'std', lines });
  }

  function drawEval() {
    const classes = lastEval?.classes?.length;
    const lines = classes ? [{ y: 100 / classes, label: `chance (${(100 / classes).toFixed(0)} %)` }] : [];
    lineChart($('chart-knn'), curves((run) => run.evals.filter((e) => e.knn_top1 != null).map((e) => [e.step, e.knn_top1])), { yLabel: 'top-1 %', yMin: 0, lines });
    scatter($('chart-pca'), lastEval?.pca ?? [], lastEval?.labels, lastEval?.classes);
  }

  function reset() {
    demo.running = false;
    session?.free();
    if (app.trainSession === session) app.trainSession = null;
    window.dispatchEvent(new CustomEvent('jem-reset'));
    session = null;
    lastEval = null;
    // The run just reset stays on the charts, pale, to compare with the next one.
    if (demo.steps.length) demo.runs.push({ label: demo.label, steps: demo.steps, evals: demo.evals });
    demo.steps = [];
    demo.evals = [];
    demo.error = null;
    for (const id of ['stat-step', 'stat-epoch', 'stat-time', 'stat-loss', 'stat-std', 'stat-knn', 'stat-rank']) $(id).textContent = '–';
    setRunning(false);
    drawSteps();
    drawEval();
  }

  $('train-start').addEventListener('click', start);
  $('train-pause').addEventListener('click', () => session?.pause());
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

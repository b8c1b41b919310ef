// The two steps of self-supervised learning. Step 1: pretrain an encoder on unlabeled shapes.
// Step 2: freeze it and fit a head on a few labels: kNN (no training at all) and a linear probe,
// with 10, 100 and all labels per class. Both are measured on the random-init encoder first and
// again after pretraining, on the same held-out images.
import { labelledBars } from '../../../js/charts.js';
import { RemoteSession } from '../../../js/remote.js';
import { budgetRecipe, canvas, chooseBackend, el, figure, readout, select, slider, trainingRun } from '../ui.js';

const LABELS = [10, 100, 0];
const labelText = (count) => (count === 0 ? 'all' : String(count));

export async function mount(root, params, { jem }) {
  const run = trainingRun();
  const knn = canvas('kNN top-1, random init and pretrained');
  const linear = canvas('linear probe top-1, random init and pretrained');
  const method = select({
    label: 'Method',
    name: 'method',
    value: params.method,
    options: [['vicreg', 'VICReg'], ['simclr', 'SimCLR'], ['barlow_twins', 'Barlow Twins'], ['simsiam', 'SimSiam']],
  });
  const steps = slider({ label: 'Pretraining steps', name: 'steps', min: 64, max: 1536, step: 64, value: params.steps });
  const start = el('button', { type: 'button', class: 'primary' }, 'Pretrain, then evaluate');
  const out = readout([
    ['knn_init', 'kNN, all labels, random init (%)'],
    ['knn_after', 'kNN, all labels, pretrained (%)'],
    ['knn_gain', 'Gain (points)'],
  ]);
  root.append(
    el('div', { class: 'controls-row' }, method.element, steps.element, start),
    run.element,
    el('div', { class: 'figures' }, figure('kNN (k = 20) on held-out shapes, by labels per class', knn), figure('Linear probe on held-out shapes, by labels per class', linear)),
    out.element,
  );
  let classes = 0;
  function draw(before, after) {
    const items = (key) =>
      LABELS.flatMap((count, i) => [
        { label: `${labelText(count)}: init`, value: before?.[i]?.[key] ?? null, color: '#9ca3af' },
        { label: `${labelText(count)}: SSL`, value: after?.[i]?.[key] ?? null, color: '#2563eb' },
      ]);
    const lines = classes ? [{ y: 100 / classes, label: 'chance' }] : [];
    labelledBars(knn, items('knn_top1'), { yLabel: 'top-1 %', max: 100, lines });
    labelledBars(linear, items('linear_top1'), { yLabel: 'top-1 %', max: 100, lines });
  }
  draw();
  start.addEventListener('click', async () => {
    start.disabled = true;
    let session = null;
    try {
      const recipe = budgetRecipe(jem, method.value, steps.value);
      session = await RemoteSession.create(recipe, await chooseBackend(params.backend));
      classes = session.classes.length;
      run.status('Fitting kNN and linear probes on the random-init encoder…');
      const t0 = performance.now();
      const before = await session.probe(LABELS);
      root.dataset.probeSeconds = ((performance.now() - t0) / 1000).toFixed(1);
      draw(before);
      const record = await run.train(session, { steps: steps.value, evalEvery: -1, label: 'Pretraining' });
      run.status(`Pretrained ${record.steps.length} steps in ${record.seconds.toFixed(0)} s; fitting the probes again…`);
      const after = await session.probe(LABELS);
      draw(before, after);
      const [init, trained] = [before.at(-1).knn_top1, after.at(-1).knn_top1];
      out.set('knn_init', init, 1);
      out.set('knn_after', trained, 1);
      out.set('knn_gain', trained - init, 1);
      run.status(`Done: ${record.steps.length} pretraining steps (${record.seconds.toFixed(0)} s); kNN with all labels ${init.toFixed(1)} % → ${trained.toFixed(1)} %.`);
    } catch (e) {
      run.status(`Stopped: ${e.message}`);
    } finally {
      session?.free();
      start.disabled = false;
    }
  });
}

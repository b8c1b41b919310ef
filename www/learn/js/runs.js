// Runs side by side: a widget trains several variants of a recipe, one after the other, and this
// draws each one's embedding std per step (earlier runs pale) and its kNN accuracy at the end.
// Used by the collapse and SimSiam widgets (which compare switches) and the experiments.
import { barChart, labelledBars, lineChart } from '../../js/charts.js';
import { canvas, el, figure, trainingRun } from './ui.js';

export function runComparison({ stdChart = true, knnChart = true, dimsChart = false } = {}) {
  const run = trainingRun();
  const std = canvas('embedding std per step');
  const knn = canvas('kNN top-1 of each run');
  const dims = canvas('std of each embedding dimension at the last step');
  const runs = []; // { label, steps, evals, knn }
  const figures = el('div', { class: 'figures' });
  if (stdChart) figures.append(figure('Embedding std per step (1/√D: spread; 0: collapsed)', std));
  if (dimsChart) figures.append(figure('Std of each embedding dimension, last step (sorted)', dims));
  if (knnChart) figures.append(figure('kNN top-1 on held-out shapes after training', knn));
  let classes = 0;

  function draw(current) {
    const shown = current ? [...runs, current] : runs;
    const last = shown.at(-1)?.steps.at(-1);
    const spread = last ? 1 / Math.sqrt(last.embedding_dimension_std.length) : null;
    const lines = spread ? [{ y: spread, label: `1/√D = ${spread.toFixed(3)}` }] : [];
    lineChart(
      std,
      shown.map((r, i) => ({ name: r.label, points: r.steps.map((s) => [s.step, s.embedding_std]), faded: i < shown.length - 1, color: r.color })),
      { yLabel: 'std', yMin: 0, lines, empty: 'Press a Run button' },
    );
    if (dimsChart) barChart(dims, [...(last?.embedding_dimension_std ?? [])].sort((a, b) => b - a), { xLabel: 'dimension', yLabel: 'std', lines, empty: 'Press a Run button' });
    labelledBars(knn, runs.map((r) => ({ label: r.label, value: r.knn, color: r.color })), { yLabel: 'top-1 %', max: 100, lines: classes ? [{ y: 100 / classes, label: 'chance' }] : [] });
    knn.dataset.results = JSON.stringify(runs.map((r) => ({ label: r.label, knn: r.knn, std_start: r.steps[0]?.embedding_std, std_end: r.steps.at(-1)?.embedding_std, effective_rank: r.evals.at(-1)?.effective_rank, steps: r.steps.length, seconds: r.seconds, backend: r.backend })));
  }
  // Once the widget is on the page (canvases take their size from the layout).
  requestAnimationFrame(() => draw());

  return {
    run,
    figures,
    runs,
    // Trains `recipe` for `steps` steps as run `label`, drawing as it goes; resolves to the
    // run's record (the session is freed).
    async add(label, recipe, { backend, steps, color }) {
      const current = { label, color, steps: [], evals: [] };
      const record = await run.start(recipe, {
        backend,
        steps,
        label,
        onStep: (s, r) => {
          current.steps = r.steps;
          if (s.step % 5 === 0) draw(current);
        },
        onEval: (e) => {
          classes = e.classes.length;
        },
      });
      record.session.free();
      Object.assign(current, { steps: record.steps, evals: record.evals, knn: record.evals.at(-1)?.knn_top1 ?? null, seconds: record.seconds, backend: record.backend });
      runs.push(current);
      draw();
      return current;
    },
    clear() {
      runs.length = 0;
      draw();
    },
  };
}

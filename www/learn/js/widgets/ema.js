// A momentum (EMA) teacher: after every student step, ξ ← m·ξ + (1 − m)·θ (the core's
// `ema_update`, as BYOL, MoCo and DINO apply it to every weight). The student's weights move as
// SGD would, a steady drift plus noise; the teacher follows, later and smoother the larger m.
import { lineChart } from '../../../js/charts.js';
import { canvas, el, figure, readout, slider } from '../ui.js';

export async function mount(root, params, { jem }) {
  const out = readout([
    ['distance', '‖teacher − student‖ after the last step'],
    ['lag', 'Steps the teacher lags behind (≈ m / (1 − m))'],
  ]);
  const distance = canvas('distance between teacher and student weights per step');
  const path = canvas('the first two weights of student and teacher');
  const momentum = slider({ label: 'Momentum m', name: 'momentum', min: 0, max: 0.999, step: 0.001, value: params.momentum, format: (v) => v.toFixed(3), onInput: draw });
  const noise = slider({ label: 'Noise of the student\'s steps', name: 'noise', min: 0, max: 0.2, step: 0.01, value: params.noise, format: (v) => v.toFixed(2), onInput: draw });
  root.append(
    el('div', { class: 'controls-row' }, momentum.element, noise.element),
    el('div', { class: 'figures' }, figure('‖ξ − θ‖ after each step', distance), figure('Weights 1 and 2 over the steps: student (jagged), teacher (smooth)', path)),
    out.element,
  );
  function draw() {
    const r = JSON.parse(jem.lesson_ema(params.steps, momentum.value, 16, params.seed, noise.value));
    lineChart(distance, [{ name: 'teacher − student', points: r.distance.map((d, k) => [k + 1, d]) }], { yLabel: 'distance', yMin: 0 });
    lineChart(path, [{ name: 'student', points: r.student }, { name: 'teacher', points: r.teacher }], { xLabel: 'weight 1', yLabel: 'weight 2' });
    out.set('distance', r.distance.at(-1));
    out.set('lag', momentum.value / (1 - momentum.value), 1);
  }
  draw();
}

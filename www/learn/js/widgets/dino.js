// DINO's teacher on a fixed batch, step by step: targets softmax((t − c)/τ_t), the centre c an
// EMA of the teacher's batch means (the core's `dino_center`). Without centring, the favoured
// prototype takes the batch (one prototype wins); a high temperature makes every target
// uniform; centring with sharpening keeps targets sharp and prototypes used alike.
import { labelledBars, lineChart } from '../../../js/charts.js';
import { canvas, el, figure, readout, slider } from '../ui.js';

export async function mount(root, params, { jem }) {
  const { batch: b, prototypes: k } = params;
  const out = readout([
    ['entropy', 'Mean entropy of a target (0: one-hot, ln K: uniform)'],
    ['marginal_entropy', 'Entropy of the batch-mean target (ln K: all prototypes used)'],
    ['top_share', 'Share of the favoured prototype'],
  ]);
  const entropy = canvas('entropies per step');
  const marginal = canvas('batch-mean target per prototype');
  const temperature = slider({ label: 'Teacher temperature τ_t (sharpening)', name: 'temperature', min: 0.01, max: 1, step: 0.01, value: params.temperature, format: (v) => v.toFixed(2), onInput: draw });
  const centring = slider({ label: 'Centring momentum (1 = no centring)', name: 'center_momentum', min: 0, max: 1, step: 0.01, value: params.center_momentum, format: (v) => v.toFixed(2), onInput: draw });
  root.append(
    el('div', { class: 'controls-row' }, temperature.element, centring.element),
    el('div', { class: 'figures' }, figure(`Entropies per step (dashed: ln K = ${Math.log(k).toFixed(2)})`, entropy), figure('The batch-mean target at the last step', marginal)),
    out.element,
  );
  function draw() {
    const r = JSON.parse(jem.lesson_dino_centering(b, k, params.seed, params.bias, temperature.value, centring.value, params.steps));
    lineChart(
      entropy,
      [
        { name: 'target entropy', points: r.entropy.map((v, i) => [i + 1, v]) },
        { name: 'batch-mean entropy', points: r.marginal_entropy.map((v, i) => [i + 1, v]) },
      ],
      { yLabel: 'nats', yMin: 0, lines: [{ y: Math.log(k), label: 'ln K' }] },
    );
    labelledBars(marginal, r.marginal.map((p, i) => ({ label: i === 0 ? 'c1 (favoured)' : `c${i + 1}`, value: p })), { yLabel: 'probability', max: 1, lines: [{ y: 1 / k, label: '1/K' }] });
    out.set('entropy', r.entropy.at(-1));
    out.set('marginal_entropy', r.marginal_entropy.at(-1));
    out.set('top_share', r.marginal[0]);
  }
  draw();
}

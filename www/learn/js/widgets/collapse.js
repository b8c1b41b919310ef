// The trivial solution: two views through one encoder, trained with only the pull term (the
// negative cosine between the views, gradients through both branches). Nothing stops the
// encoder from giving every image the same embedding, and it does: the embedding std falls to
// 0. Then a second run with a term that prevents it (SimSiam's stop-gradient and predictor, or
// VICReg's variance term) on the same data.
import { runComparison } from '../runs.js';
import { budgetRecipe, el, readout, select } from '../ui.js';

export async function mount(root, params, { jem }) {
  const compare = runComparison({ dimsChart: true });
  const out = readout([
    ['std_start', 'Pull only: embedding std at the first step'],
    ['std_end', 'Pull only: embedding std at the last step'],
    ['std_ratio', 'Pull only: last / first'],
    ['rank_pull', 'Pull only: effective rank of the features at the end'],
    ['rank_fixed', 'With the fix: effective rank of the features at the end'],
  ]);
  const fix = select({
    label: 'Prevent it with',
    name: 'fix',
    value: 'stop-gradient',
    options: [
      ['stop-gradient', 'stop-gradient + predictor (SimSiam)'],
      ['variance', 'a variance term (VICReg)'],
    ],
  });
  const pull = el('button', { type: 'button', class: 'primary' }, 'Run: pull term only');
  const fixed = el('button', { type: 'button' }, 'Run: with the fix');
  const buttons = [pull, fixed];
  async function go(which) {
    buttons.forEach((b) => (b.disabled = true));
    try {
      if (which === 'pull') {
        const recipe = budgetRecipe(jem, 'simsiam', params.steps, { method: { stop_gradient: false, use_predictor: false } });
        const r = await compare.add('pull only', recipe, { backend: params.backend, steps: params.steps, color: '#dc2626' });
        const [first, last] = [r.steps[0].embedding_std, r.steps.at(-1).embedding_std];
        out.set('std_start', first);
        out.set('std_end', last);
        out.set('std_ratio', last / first, 3);
        out.set('rank_pull', r.evals.at(-1)?.effective_rank ?? NaN, 1);
      } else if (fix.value === 'variance') {
        const recipe = budgetRecipe(jem, 'vicreg', params.steps);
        const r = await compare.add('+ variance (VICReg)', recipe, { backend: params.backend, steps: params.steps, color: '#16a34a' });
        out.set('rank_fixed', r.evals.at(-1)?.effective_rank ?? NaN, 1);
      } else {
        const recipe = budgetRecipe(jem, 'simsiam', params.steps);
        const r = await compare.add('+ stop-grad, predictor', recipe, { backend: params.backend, steps: params.steps, color: '#16a34a' });
        out.set('rank_fixed', r.evals.at(-1)?.effective_rank ?? NaN, 1);
      }
    } catch (e) {
      compare.run.status(`Stopped: ${e.message}`);
    } finally {
      buttons.forEach((b) => (b.disabled = false));
    }
  }
  pull.addEventListener('click', () => go('pull'));
  fixed.addEventListener('click', () => go('fixed'));
  root.append(el('div', { class: 'controls-row' }, pull, fix.element, fixed), compare.run.element, compare.figures, out.element);
}

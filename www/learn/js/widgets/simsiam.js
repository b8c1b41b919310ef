// SimSiam's two ingredients, switched on and off: stop-gradient on the target branch and the
// predictor MLP on the other. Each run trains the same recipe from the same seed; the std chart
// keeps earlier runs, pale, and the bars compare their kNN accuracy.
import { runComparison } from '../runs.js';
import { budgetRecipe, checkbox, el } from '../ui.js';

export async function mount(root, params, { jem }) {
  const compare = runComparison();
  const stopGradient = checkbox({ label: 'Stop-gradient on the target branch', name: 'stop_gradient', checked: true });
  const predictor = checkbox({ label: 'Predictor MLP', name: 'use_predictor', checked: true });
  const start = el('button', { type: 'button', class: 'primary' }, 'Run');
  start.addEventListener('click', async () => {
    start.disabled = true;
    const method = { stop_gradient: stopGradient.checked, use_predictor: predictor.checked };
    const label = [method.stop_gradient ? 'stop-grad' : 'no stop-grad', method.use_predictor ? 'predictor' : 'no predictor'].join(', ');
    try {
      const recipe = budgetRecipe(jem, 'simsiam', params.steps, { method });
      await compare.add(label, recipe, { backend: params.backend, steps: params.steps, color: method.stop_gradient ? '#16a34a' : '#dc2626' });
    } catch (e) {
      compare.run.status(`Stopped: ${e.message}`);
    } finally {
      start.disabled = false;
    }
  });
  root.append(el('div', { class: 'controls-row' }, stopGradient.element, predictor.element, start), compare.run.element, compare.figures);
}

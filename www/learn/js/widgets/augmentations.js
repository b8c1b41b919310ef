// The augmentation lab in small: a preset's random views of the built-in shapes image, drawn by
// the core's augmentation pipeline (the same code that makes training batches). The full lab,
// with a slider per transform and your own images, is the demo's first tab.
import { hashBytes, pngUrl } from '../../../js/images.js';
import { el, select, slider } from '../ui.js';

export async function mount(root, params, { jem }) {
  let seed = params.seed;
  const tiles = el('div', { class: 'tiles', 'aria-live': 'polite' });
  const preset = select({
    label: 'Preset',
    name: 'preset',
    value: params.preset,
    options: [['simclr', 'SimCLR'], ['byol', 'BYOL'], ['vicreg', 'VICReg'], ['swav', 'SwAV (multi-crop)'], ['dino', 'DINO (multi-crop)']],
    onChange: draw,
  });
  const views = slider({ label: 'Views', name: 'views', min: 2, max: 16, step: 1, value: params.views, onInput: draw });
  const reroll = el('button', { type: 'button' }, 'Re-roll');
  reroll.addEventListener('click', () => {
    seed += 1;
    draw();
  });
  root.append(el('div', { class: 'controls-row' }, preset.element, views.element, reroll), tiles, el('p', { class: 'note' }, el('a', { href: '../index.html#lab' }, 'Open the full lab'), ': a slider per transform, your own images, the recipe line.'));

  function draw() {
    const pngs = jem.augment_lab(undefined, JSON.stringify({ preset: preset.value, variant: 'cifar' }), views.value, seed);
    tiles.replaceChildren(
      ...Array.from(pngs, (png, i) => {
        const bytes = new Uint8Array(png);
        return el('figure', { class: i === 0 ? 'tile original' : 'tile', 'data-hash': hashBytes(bytes) }, el('img', { src: pngUrl(bytes), alt: i === 0 ? 'the image' : `view ${i}` }), el('figcaption', {}, i === 0 ? 'image' : `view ${i}`));
      }),
    );
  }
  draw();
}

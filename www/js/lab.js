// Augmentation lab: sliders over a recipe's augmentation settings, views drawn by the core.
import { errorText, hashBytes, pngUrl, readFile } from './app.js';

export function setupLab(app) {
  const { jem } = app;
  const $ = (id) => document.getElementById(id);
  const sliders = [...document.querySelectorAll('#lab-controls input[data-key]')];
  const touched = new Set();
  let seed = 1;
  let upload = null;

  // Resets every slider to the preset's first view (untouched settings keep per-view values,
  // e.g. BYOL's blur 1.0 / 0.1).
  function presetDefaults() {
    const d = JSON.parse(jem.augment_defaults($('lab-preset').value, $('lab-variant').value));
    const values = {
      crop_min: d.crop_scale[0], crop_max: d.crop_scale[1],
      brightness: d.jitter[0], contrast: d.jitter[1], saturation: d.jitter[2], hue: d.jitter[3],
      jitter_p: d.jitter_p, grayscale_p: d.grayscale_p, blur_p: d.blur_p, solarize_p: d.solarize_p,
      local_crops: d.local_crops, local_percent: Math.round((100 * d.local_size) / d.global_size), mask_ratio: 0,
    };
    for (const s of sliders) {
      s.value = values[s.dataset.key];
    }
    touched.clear();
    showValues();
  }

  function showValues() {
    for (const input of document.querySelectorAll('#lab-controls input[type=range]')) {
      const out = input.parentElement.querySelector('output');
      if (out) out.textContent = input.value;
    }
  }

  function config() {
    const v = Object.fromEntries(sliders.map((s) => [s.dataset.key, Number(s.value)]));
    const c = { preset: $('lab-preset').value, variant: $('lab-variant').value };
    const set = (keys, apply) => keys.some((k) => touched.has(k)) && apply();
    set(['crop_min', 'crop_max'], () => (c.crop_scale = [Math.min(v.crop_min, v.crop_max), Math.max(v.crop_min, v.crop_max)]));
    set(['brightness', 'contrast', 'saturation', 'hue'], () => (c.jitter = [v.brightness, v.contrast, v.saturation, v.hue]));
    for (const k of ['jitter_p', 'grayscale_p', 'blur_p', 'solarize_p', 'local_crops', 'mask_ratio']) {
      set([k], () => (c[k] = v[k]));
    }
    const global = $('lab-variant').value === 'cifar' ? 32 : 224;
    set(['local_percent'], () => (c.local_size = Math.max(1, Math.round((global * v.local_percent) / 100))));
    return c;
  }

  async function imageBytes() {
    const source = $('lab-source').value;
    if (source === 'upload') return upload;
    if (source === 'shapes-preview') return null;
    return jem.shapes_image(256, Number(source.split('-')[1]));
  }

  async function render() {
    const c = config();
    try {
      const image = await imageBytes();
      const json = JSON.stringify(c);
      const tiles = jem.augment_lab(image, json, Number($('lab-views').value), seed);
      const sizes = jem.augment_view_sizes(json, 256, 256);
      const globals = sizes.filter((s) => s === sizes[0]).length;
      const box = $('lab-tiles');
      box.replaceChildren(
        ...tiles.map((png, k) => {
          const tile = document.createElement('figure');
          tile.className = k === 0 ? 'tile original' : 'tile';
          tile.dataset.hash = hashBytes(png);
          const img = document.createElement('img');
          img.src = pngUrl(png);
          img.alt = k === 0 ? 'the whole image' : `view ${k}`;
          const view = (k - 1) % sizes.length;
          const caption = document.createElement('figcaption');
          caption.textContent = k === 0 ? 'whole image' : `view ${k} · ${view < globals ? 'global' : 'local'} ${sizes[view]} px`;
          tile.append(img, caption);
          return tile;
        }),
      );
      $('lab-toml').textContent = `[data]\ndataset = "shapes"\n${jem.augment_toml(json)}`;
      app.clearMessage();
    } catch (e) {
      app.showError(errorText(e));
    }
  }

  for (const s of sliders) {
    s.addEventListener('input', () => {
      touched.add(s.dataset.key);
      showValues();
      render();
    });
  }
  $('lab-views').addEventListener('input', () => {
    showValues();
    render();
  });
  for (const id of ['lab-preset', 'lab-variant']) {
    $(id).addEventListener('change', () => {
      presetDefaults();
      render();
    });
  }
  $('lab-source').addEventListener('change', () => {
    $('lab-upload-label').hidden = $('lab-source').value !== 'upload';
    if ($('lab-source').value !== 'upload' || upload) render();
  });
  $('lab-upload').addEventListener('change', async () => {
    const file = $('lab-upload').files[0];
    if (!file) return;
    const bytes = await readFile(file);
    try {
      jem.augment_lab(bytes, JSON.stringify(config()), 1, seed);
      upload = bytes;
      render();
    } catch (e) {
      app.showError(`${file.name}: ${errorText(e)}`);
    }
  });
  $('lab-reroll').addEventListener('click', () => {
    seed += 1;
    render();
  });
  $('lab-reset').addEventListener('click', () => {
    presetDefaults();
    render();
  });
  presetDefaults();
  render();
}

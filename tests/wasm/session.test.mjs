// The browser's training API (jem-wasm's Session, recipes, lab) exercised in Node on the CPU
// backend: the same wasm module the demo loads, without a browser.
// Run by `cargo xtask test`, which sets JEM_WASM_NODE.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const jem = require(process.env.JEM_WASM_NODE);

// The browser SimSiam recipe, shrunk: 128 shapes, batch 32, ConvNet width 4.
function tinyRecipe(overrides = {}) {
  const base = jem.recipe_with(jem.builtin_recipe('simsiam'), JSON.stringify({ train: { batch_size: 32 }, data: { shapes_count: 128 }, backbone: { width: 4 } }));
  return jem.recipe_with(base, JSON.stringify(overrides));
}

test('recipes: built-in browser recipes parse, overrides merge and are validated', () => {
  for (const m of ['simsiam', 'vicreg', 'simclr', 'barlow_twins']) {
    assert.match(jem.builtin_recipe(m), new RegExp(`name = "${m}"`));
  }
  const off = jem.recipe_with(jem.builtin_recipe('simsiam'), JSON.stringify({ method: { stop_gradient: false } }));
  assert.match(off, /stop_gradient = false/);
  assert.match(off, /use_predictor = true/, 'other fields of the table are kept');
  const vicreg = jem.recipe_with(jem.builtin_recipe('vicreg'), JSON.stringify({ method: { coeffs: { std: 0 } } }));
  assert.match(vicreg, /std = 0\.0/);
  assert.match(vicreg, /sim = 25\.0/);
  assert.throws(() => jem.recipe_with(jem.builtin_recipe('simsiam'), JSON.stringify({ train: { batch_size: 1 } })), /at least 2 samples/);
  assert.throws(() => jem.builtin_recipe('mae'), /no browser recipe/);
  // Another method's name replaces the method table rather than merging into it.
  const rotnet = jem.recipe_with(jem.builtin_recipe('simclr'), JSON.stringify({ method: { name: 'rotnet' } }));
  assert.match(rotnet, /name = "rotnet"/);
  assert.doesNotMatch(rotnet, /^temperature =/m, "SimCLR's temperature went with its table");
  const info = JSON.parse(jem.recipe_info(jem.builtin_recipe('vicreg')));
  assert.deepEqual(info, { method: 'vicreg', batch_size: 64, epochs: 8, images: 4096, steps_per_epoch: 64, total_steps: 512 });
});

test('lesson functions refuse inputs that make no matrix, with a message', () => {
  const z = Float32Array.from([1, 2, 3, 4, 5, 6]);
  assert.throws(() => jem.lesson_infonce(z, z, 4, 0.2, 0), /6 values do not make 4 rows/);
  assert.throws(() => jem.lesson_infonce(z, Float32Array.from([1, 2, 3, 4]), 2, 0.2, 0), /shapes differ/);
  assert.throws(() => jem.lesson_infonce(z, z, 2, 0, 0), /temperature must be positive/);
  assert.throws(() => jem.lesson_infonce(z, z, 2, 0.2, 4), /anchor 4 is not one of the 4/);
  assert.throws(() => jem.lesson_vicreg(Float32Array.from([1, 2]), Float32Array.from([1, 2]), 1, 25, 25, 1), /at least 2 embeddings/);
  assert.throws(() => jem.lesson_sinkhorn(z, 2, 0, 3), /ε must be positive/);
  assert.throws(() => jem.lesson_sinkhorn(Float32Array.from([1, NaN]), 1, 0.05, 3), /finite/);
  assert.throws(() => jem.lesson_ema(10, 1.5, 4, 0, 0.1), /momentum must be between 0 and 1/);
  assert.throws(() => jem.lesson_dino_centering(4, 3, 0, 1, 0, 0.9, 5), /temperature must be positive/);
});

test('a session trains on the CPU, reports each step and evaluates', async () => {
  const session = await jem.Session.create(tinyRecipe(), 'cpu', undefined);
  assert.equal(session.backend(), 'cpu');
  assert.equal(session.total_steps(), 20 * (128 / 32));
  const steps = [];
  for (let i = 0; i < 5; i++) {
    steps.push(JSON.parse(await session.step()));
  }
  assert.deepEqual(steps.map((s) => s.step), [0, 1, 2, 3, 4]);
  assert.deepEqual(steps.map((s) => s.epoch), [0, 0, 0, 0, 1], 'four batches of 32 per epoch');
  for (const s of steps) {
    assert.ok(Number.isFinite(s.loss) && s.loss >= -1 && s.loss <= 1, `SimSiam's loss is a negative cosine: ${s.loss}`);
    assert.ok(s.embedding_std > 0 && s.embedding_std <= 1);
    assert.ok(s.lr > 0);
  }
  const e = JSON.parse(await session.evaluate());
  assert.ok(e.knn_top1 >= 0 && e.knn_top1 <= 100);
  assert.equal(e.std.length, 32, 'ConvNet width 4 has 8 × 4 features');
  assert.equal(e.pca.length, 500);
  assert.equal(e.labels.length, 500);
  assert.equal(e.classes.length, 10);
  assert.ok(e.effective_rank >= 1 && e.effective_rank <= 32, `effective rank ${e.effective_rank}`);
  assert.equal(steps[0].embedding_dimension_std.length, 128, 'the projector\'s 128 outputs');
  // The second step of SSL: heads on 2 labels per class and on all of them.
  const probes = JSON.parse(await session.probe(Uint32Array.from([2, 0])));
  assert.deepEqual(probes.map((p) => p.labels_per_class), [2, 0]);
  assert.equal(probes[0].images, 2 * 10);
  assert.equal(probes[1].images, 128);
  for (const p of probes) assert.ok(p.knn_top1 >= 0 && p.linear_top1 >= 0 && p.linear_top1 <= 100);
  const views = JSON.parse(await session.view_features(6, 0));
  assert.deepEqual([views.n, views.d, views.z1.length, views.z2.length], [6, 32, 6 * 32, 6 * 32]);
  assert.notDeepEqual(views.z1, views.z2, 'two different views');
  const found = JSON.parse(await session.neighbours(jem.shapes_image(32, 123456), 3));
  assert.equal(found.length, 3);
  assert.ok(found[0].similarity >= found[1].similarity && found[1].similarity >= found[2].similarity);
  assert.ok(session.train_image(found[0].index).length > 0);
  session.free();
});

test('bad inputs are errors with messages', async () => {
  await assert.rejects(jem.Session.create(tinyRecipe(), 'webgpu', undefined), /WebGPU/);
  await assert.rejects(jem.Session.create(tinyRecipe(), 'tpu', undefined), /unknown backend 'tpu'/);
  await assert.rejects(jem.Session.create('not a recipe', 'cpu', undefined), /recipe/);
  await assert.rejects(jem.Session.create(tinyRecipe(), 'cpu', new Uint8Array(3073 * 10)), /at least 1000/);
  await assert.rejects(jem.Session.load(new Uint8Array([1, 2, 3]), 'cpu', undefined), /not a jem encoder file/);
  assert.equal(jem.cifar_image_count(new Uint8Array(3073 * 2), 'two.bin'), 2);
  assert.throws(() => jem.cifar_image_count(new Uint8Array(5000), 'broken.bin'), /broken\.bin: .*not a multiple/);
});

test('augmentation lab: one tile per view plus the image, masks and multi-crop', () => {
  const simclr = JSON.stringify({ preset: 'simclr', variant: 'cifar' });
  const tiles = jem.augment_lab(undefined, simclr, 6, 1);
  assert.equal(tiles.length, 7);
  assert.equal(new Set(tiles.map((t) => Buffer.from(t).toString('base64'))).size, 7, 'the views differ');
  assert.deepEqual([...jem.augment_view_sizes(JSON.stringify({ preset: 'dino', variant: 'cifar', local_crops: 2 }), 32, 32)], [32, 32, 16, 16]);
  assert.deepEqual([...jem.augment_view_sizes(JSON.stringify({ preset: 'simclr', local_crops: 2 }), 32, 32)], [32, 32, 13, 13]);
  assert.match(jem.augment_toml(JSON.stringify({ preset: 'simclr', mask_ratio: 0.5 })), /^augment = \{.*mask_ratio = 0\.5/);
  const defaults = JSON.parse(jem.augment_defaults('swav', 'cifar'));
  assert.equal(defaults.local_crops, 4);
  assert.equal(defaults.local_size, 16);
  assert.throws(() => jem.augment_lab(undefined, JSON.stringify({ preset: 'simclr', grayscale_p: 2 }), 2, 1), /probability 2/);
  assert.throws(() => jem.augment_lab(new Uint8Array([1, 2, 3]), simclr, 2, 1), /cannot read the image/);
});

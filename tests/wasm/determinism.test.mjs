// The same seed gives the same views natively and in wasm: the PNG that `jem augment` writes must
// equal, byte for byte, the one jem-wasm returns for the same arguments.
// Run by `cargo xtask test`, which sets JEM_WASM_NODE (Node bindings) and JEM_BIN (native CLI).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const require = createRequire(import.meta.url);
const jem = require(process.env.JEM_WASM_NODE);
const bin = process.env.JEM_BIN;
const out = mkdtempSync(join(tmpdir(), 'jem-wasm-'));

function nativePreview(args) {
  const file = join(out, `native-${Math.random().toString(36).slice(2)}.png`);
  execFileSync(bin, ['augment', '--out', file, ...args], { stdio: 'pipe' });
  return new Uint8Array(readFileSync(file));
}

test('wasm reports the crate version', () => {
  const native = execFileSync(bin, ['--version']).toString().trim();
  assert.equal(native, `jem ${jem.version()}`);
});

test('simclr views of the built-in image are identical in wasm and native', () => {
  const wasm = jem.augment_preview(undefined, 'simclr', 'auto', 8, 42, 0, 5);
  const native = nativePreview(['--preset', 'simclr', '--views', '8', '--seed', '42']);
  assert.ok(wasm.length > 1000);
  assert.deepEqual(wasm, native);
});

test('multi-crop and blur (dino, imagenet) are identical in wasm and native', () => {
  const wasm = jem.augment_preview(undefined, 'dino', 'imagenet', 10, 7, 0, 5);
  const native = nativePreview(['--preset', 'dino', '--variant', 'imagenet', '--views', '10', '--seed', '7']);
  assert.deepEqual(wasm, native);
});

test('a CIFAR-size image with the cifar variant is identical in wasm and native', () => {
  const png = jem.shapes_image(32, 3);
  const file = join(out, 'small.png');
  require('node:fs').writeFileSync(file, png);
  const wasm = jem.augment_preview(png, 'byol', 'auto', 6, 1, 0, 7);
  const native = nativePreview(['--image', file, '--preset', 'byol', '--views', '6', '--seed', '1', '--columns', '7']);
  assert.deepEqual(wasm, native);
});

test('a different seed gives different views', () => {
  const a = jem.augment_preview(undefined, 'simclr', 'auto', 4, 1, 64, 5);
  const b = jem.augment_preview(undefined, 'simclr', 'auto', 4, 2, 64, 5);
  assert.notDeepEqual(a, b);
});

test('bad input is a JS error, not a crash', () => {
  assert.throws(() => jem.augment_preview(new TextEncoder().encode('not an image'), 'simclr', 'auto', 2, 0, 0, 3), /cannot read the image/);
  assert.throws(() => jem.augment_preview(undefined, 'nope', 'auto', 2, 0, 0, 3), /unknown augmentation preset/);
});

const photo = process.env.JEM_DATA && join(process.env.JEM_DATA, 'photos', 'astronaut.png');
test('a real photo decodes and augments identically in wasm and native', { skip: !(photo && existsSync(photo)) && 'JEM_DATA not set (skipped: needs photos/astronaut.png)' }, () => {
  const wasm = jem.augment_preview(new Uint8Array(readFileSync(photo)), 'simclr', 'auto', 8, 3, 0, 5);
  const native = nativePreview(['--image', photo, '--preset', 'simclr', '--views', '8', '--seed', '3']);
  assert.deepEqual(wasm, native);
});

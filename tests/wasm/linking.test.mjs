// How the module is linked. wasm-ld links a module that never calls `__wasm_call_ctors` itself
// "command-style": every export becomes a wrapper, `<export>.command_export`, that runs all static
// constructors again before the export. With cubecl's `inventory` registrations that cost 96 % of a
// WebGPU step's main-thread time in Chromium; jem-wasm's start function calls the constructors once
// instead. Run by `cargo xtask test`, which sets JEM_WASM_NODE (Node bindings).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

test('no export re-runs the static constructors (the module is not linked command-style)', () => {
  const bytes = readFileSync(join(dirname(process.env.JEM_WASM_NODE), 'jem_wasm_bg.wasm'));
  const module = new WebAssembly.Module(bytes);
  const names = WebAssembly.Module.customSections(module, 'name');
  assert.equal(names.length, 1, 'the module has a name section (the release profile keeps debug info), so the wrappers would show');
  const text = Buffer.from(names[0]).toString('latin1');
  assert.ok(text.includes('jem_wasm::start'), 'the name section names the functions');
  assert.ok(!text.includes('.command_export'), 'wasm-ld wrapped exports to re-run the constructors');
});

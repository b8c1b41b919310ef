// Image bytes on a page: object URLs for PNGs, a short hash that tells images apart, files read.

export function pngUrl(bytes) {
  return URL.createObjectURL(new Blob([bytes], { type: 'image/png' }));
}

// FNV-1a of bytes: lets tests (and people) tell images apart.
export function hashBytes(bytes) {
  let h = 0x811c9dc5;
  for (const b of bytes) {
    h = Math.imul(h ^ b, 0x01000193) >>> 0;
  }
  return h.toString(16);
}

export async function readFile(file) {
  return new Uint8Array(await file.arrayBuffer());
}

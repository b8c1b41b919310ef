// Small canvas charts for the demo: line charts with axes and a legend, a bar chart and a
// scatter plot. No dependencies; every chart redraws from its data on each update.

const COLORS = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#ca8a04', '#db2777', '#4b5563', '#65a30d', '#7c3aed', '#0d9488'];

export function classColor(i) {
  return COLORS[i % COLORS.length];
}

function setup(canvas) {
  const ratio = window.devicePixelRatio || 1;
  const { width, height } = canvas.getBoundingClientRect();
  canvas.width = Math.max(1, Math.round(width * ratio));
  canvas.height = Math.max(1, Math.round(height * ratio));
  const ctx = canvas.getContext('2d');
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, height);
  ctx.font = '12px system-ui, sans-serif';
  return { ctx, width, height };
}

function niceTicks(min, max, count = 5) {
  if (!(max > min)) {
    max = min + 1;
  }
  const raw = (max - min) / count;
  const step = Math.pow(10, Math.floor(Math.log10(raw)));
  const nice = [1, 2, 5, 10].map((m) => m * step).find((s) => s >= raw) || raw;
  // Integer multiples of the step, so that 0 is exactly 0 (not −6e-17 from repeated addition).
  const ticks = [];
  for (let k = Math.ceil(min / nice); k * nice <= max + 1e-9 * nice; k++) {
    ticks.push(k * nice);
  }
  return ticks;
}

function formatTick(v) {
  const a = Math.abs(v);
  if (a === 0) return '0';
  if (a >= 1000) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1).replace(/\.0$/, '');
  if (a >= 0.01) return v.toFixed(3).replace(/0+$/, '').replace(/\.$/, '');
  return v.toExponential(0);
}

// Axes with ticks and labels; returns the plot-area mapping. Without `xLabel` there are no x
// ticks either (bars label themselves), and the plot takes the room.
function axes(ctx, width, height, xRange, yRange, xLabel, yLabel) {
  const left = 52, right = 12, top = 10, bottom = xLabel ? 38 : 24;
  const w = width - left - right, h = height - top - bottom;
  const x = (v) => left + ((v - xRange[0]) / (xRange[1] - xRange[0] || 1)) * w;
  const y = (v) => top + h - ((v - yRange[0]) / (yRange[1] - yRange[0] || 1)) * h;
  ctx.strokeStyle = '#e5e7eb';
  ctx.fillStyle = '#4b5563';
  ctx.lineWidth = 1;
  ctx.textAlign = 'right';
  ctx.textBaseline = 'middle';
  for (const t of niceTicks(yRange[0], yRange[1], 4)) {
    ctx.beginPath();
    ctx.moveTo(left, y(t));
    ctx.lineTo(left + w, y(t));
    ctx.stroke();
    ctx.fillText(formatTick(t), left - 6, y(t));
  }
  ctx.textAlign = 'center';
  ctx.textBaseline = 'top';
  for (const t of xLabel ? niceTicks(xRange[0], xRange[1], 5) : []) {
    ctx.fillText(formatTick(t), x(t), top + h + 5);
  }
  ctx.strokeStyle = '#9ca3af';
  ctx.strokeRect(left, top, w, h);
  ctx.fillStyle = '#111827';
  ctx.fillText(xLabel, left + w / 2, top + h + 21);
  ctx.save();
  ctx.translate(12, top + h / 2);
  ctx.rotate(-Math.PI / 2);
  ctx.textBaseline = 'middle';
  ctx.fillText(yLabel, 0, 0);
  ctx.restore();
  return { x, y, left, top, w, h };
}

function legend(ctx, area, names, colors = COLORS) {
  ctx.textAlign = 'left';
  ctx.textBaseline = 'middle';
  let x = area.left + area.w;
  const widths = names.map((n) => ctx.measureText(n).width + 26);
  x -= widths.reduce((a, b) => a + b, 0);
  names.forEach((name, i) => {
    ctx.fillStyle = 'rgba(255,255,255,0.85)';
    ctx.fillRect(x, area.top + 4, widths[i], 16);
    ctx.fillStyle = colors[i % colors.length];
    ctx.fillRect(x + 4, area.top + 10, 14, 3);
    ctx.fillStyle = '#111827';
    ctx.fillText(name, x + 22, area.top + 12);
    x += widths[i];
  });
}

// What an empty chart says.
function placeholder(ctx, width, height, text) {
  text ??= 'No data yet: press Start';
  ctx.fillStyle = '#6b7280';
  ctx.textAlign = 'center';
  ctx.textBaseline = 'middle';
  ctx.fillText(text, width / 2, height / 2);
}

// Horizontal reference lines (`[{ y, label }]`), dashed, labelled at the right end.
function referenceLines(ctx, area, lines) {
  ctx.save();
  ctx.setLineDash([5, 4]);
  ctx.strokeStyle = '#6b7280';
  ctx.fillStyle = '#374151';
  ctx.lineWidth = 1.2;
  ctx.textAlign = 'right';
  ctx.textBaseline = 'bottom';
  for (const line of lines) {
    const y = area.y(line.y);
    ctx.beginPath();
    ctx.moveTo(area.left, y);
    ctx.lineTo(area.left + area.w, y);
    ctx.stroke();
    ctx.fillText(line.label, area.left + area.w - 4, y - 2);
  }
  ctx.restore();
}

// series: [{ name, points: [[x, y], ...], faded?, color? }]; faded series (earlier runs) are
// drawn pale and left out of the legend. lines: reference lines, [{ y, label }].
export function lineChart(canvas, series, { xLabel = 'step', yLabel = '', yMin, lines = [], empty } = {}) {
  const { ctx, width, height } = setup(canvas);
  const all = series.flatMap((s) => s.points).filter(([, v]) => Number.isFinite(v));
  if (all.length === 0) {
    placeholder(ctx, width, height, empty);
    return;
  }
  const xs = all.map((p) => p[0]), ys = [...all.map((p) => p[1]), ...lines.map((l) => l.y)];
  let lo = yMin ?? Math.min(...ys), hi = Math.max(...ys);
  if (hi - lo < 1e-9) { hi = lo + Math.max(1e-3, Math.abs(lo) * 0.1); }
  const pad = (hi - lo) * 0.05;
  const area = axes(ctx, width, height, [Math.min(...xs), Math.max(...xs, Math.min(...xs) + 1)], [yMin ?? lo - pad, hi + pad], xLabel, yLabel);
  referenceLines(ctx, area, lines);
  const current = series.filter((s) => !s.faded);
  const color = (s) => s.color ?? COLORS[Math.max(0, current.indexOf(s)) % COLORS.length];
  // Earlier runs first, so that the current run is drawn on top.
  for (const s of [...series.filter((s) => s.faded), ...current]) {
    ctx.strokeStyle = color(s);
    ctx.globalAlpha = s.faded ? 0.3 : 1;
    ctx.lineWidth = 1.8;
    ctx.beginPath();
    s.points.filter(([, v]) => Number.isFinite(v)).forEach(([px, py], k) => (k ? ctx.lineTo(area.x(px), area.y(py)) : ctx.moveTo(area.x(px), area.y(py))));
    ctx.stroke();
    if (s.points.length === 1) {
      ctx.fillStyle = ctx.strokeStyle;
      ctx.beginPath();
      ctx.arc(area.x(s.points[0][0]), area.y(s.points[0][1]), 3, 0, 2 * Math.PI);
      ctx.fill();
    }
  }
  ctx.globalAlpha = 1;
  const named = current.length > 1 || series.length > current.length ? current : [];
  if (series.length > current.length) named.push({ name: 'earlier runs (pale)', color: '#9ca3af' });
  if (named.length) legend(ctx, area, named.map((s) => s.name), named.map(color));
}

// values: bar heights; lines: reference lines as for `lineChart`.
export function barChart(canvas, values, { xLabel = '', yLabel = '', lines = [], empty } = {}) {
  const { ctx, width, height } = setup(canvas);
  if (values.length === 0) {
    placeholder(ctx, width, height, empty);
    return;
  }
  const hi = Math.max(1e-6, ...values, ...lines.map((l) => l.y));
  const area = axes(ctx, width, height, [0, Math.max(1, values.length)], [0, hi * 1.05], xLabel, yLabel);
  ctx.fillStyle = COLORS[0];
  const bw = area.w / Math.max(1, values.length);
  values.forEach((v, i) => {
    const top = area.y(v);
    ctx.fillRect(area.left + i * bw, top, Math.max(1, bw - 1), area.top + area.h - top);
  });
  referenceLines(ctx, area, lines);
}

// points: [[x, y]], labels: class index per point, classes: names
export function scatter(canvas, points, labels, classes) {
  const { ctx, width, height } = setup(canvas);
  if (points.length === 0) {
    placeholder(ctx, width, height);
    return;
  }
  const legendWidth = 110;
  const plotWidth = width - legendWidth;
  const xs = points.map((p) => p[0]), ys = points.map((p) => p[1]);
  const span = (v) => {
    const lo = Math.min(...v), hi = Math.max(...v);
    const pad = (hi - lo || 1) * 0.06;
    return [lo - pad, hi + pad];
  };
  const area = axes(ctx, plotWidth, height, points.length ? span(xs) : [0, 1], points.length ? span(ys) : [0, 1], 'principal component 1', 'principal component 2');
  points.forEach(([px, py], i) => {
    ctx.fillStyle = classColor(labels ? labels[i] : 0);
    ctx.globalAlpha = 0.75;
    ctx.beginPath();
    ctx.arc(area.x(px), area.y(py), 2.6, 0, 2 * Math.PI);
    ctx.fill();
  });
  ctx.globalAlpha = 1;
  ctx.textAlign = 'left';
  ctx.textBaseline = 'middle';
  (classes || []).forEach((name, i) => {
    const y = 16 + i * 17;
    ctx.fillStyle = classColor(i);
    ctx.beginPath();
    ctx.arc(plotWidth + 12, y, 4.5, 0, 2 * Math.PI);
    ctx.fill();
    ctx.fillStyle = '#111827';
    ctx.fillText(name, plotWidth + 22, y);
  });
}

// A matrix as coloured cells: blue for negative, red for positive values (diverging around 0),
// or white to blue from `min` to `max` when `min` ≥ 0. `highlight`: [row, col] cells outlined.
export function heatmap(canvas, values, rows, cols, { min, max, highlight = [], rowLabel = '', colLabel = '' } = {}) {
  const { ctx, width, height } = setup(canvas);
  if (!values || values.length !== rows * cols) {
    placeholder(ctx, width, height, 'No matrix yet');
    return;
  }
  const lo = min ?? Math.min(...values), hi = max ?? Math.max(...values);
  const margin = { left: rowLabel ? 22 : 4, top: 4, right: 4, bottom: colLabel ? 20 : 4 };
  const size = Math.min((width - margin.left - margin.right) / cols, (height - margin.top - margin.bottom) / rows);
  const x0 = margin.left + (width - margin.left - margin.right - size * cols) / 2;
  const colour = (v) => {
    if (lo >= 0) {
      const t = Math.max(0, Math.min(1, (v - lo) / (hi - lo || 1)));
      return `rgb(${Math.round(255 - 218 * t)}, ${Math.round(255 - 156 * t)}, ${Math.round(255 - 20 * t)})`;
    }
    const m = Math.max(Math.abs(lo), Math.abs(hi)) || 1;
    const t = Math.max(-1, Math.min(1, v / m));
    return t >= 0
      ? `rgb(255, ${Math.round(255 - 200 * t)}, ${Math.round(255 - 200 * t)})`
      : `rgb(${Math.round(255 + 200 * t)}, ${Math.round(255 + 120 * t)}, 255)`;
  };
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      ctx.fillStyle = colour(values[r * cols + c]);
      ctx.fillRect(x0 + c * size, margin.top + r * size, Math.ceil(size), Math.ceil(size));
    }
  }
  ctx.strokeStyle = '#111827';
  ctx.lineWidth = 2;
  for (const [r, c] of highlight) ctx.strokeRect(x0 + c * size + 1, margin.top + r * size + 1, size - 2, size - 2);
  ctx.strokeStyle = '#9ca3af';
  ctx.lineWidth = 1;
  ctx.strokeRect(x0, margin.top, size * cols, size * rows);
  ctx.fillStyle = '#374151';
  ctx.textAlign = 'center';
  ctx.textBaseline = 'top';
  if (colLabel) ctx.fillText(colLabel, x0 + (size * cols) / 2, margin.top + size * rows + 4);
  if (rowLabel) {
    ctx.save();
    ctx.translate(10, margin.top + (size * rows) / 2);
    ctx.rotate(-Math.PI / 2);
    ctx.textBaseline = 'middle';
    ctx.fillText(rowLabel, 0, 0);
    ctx.restore();
  }
}

// Named bars: items [{ label, value, color? }], a value label above each; reference lines as
// for `lineChart`.
export function labelledBars(canvas, items, { yLabel = '', lines = [], max, empty } = {}) {
  const { ctx, width, height } = setup(canvas);
  if (items.length === 0) {
    placeholder(ctx, width, height, empty ?? 'No results yet');
    return;
  }
  const hi = max ?? Math.max(1e-6, ...items.map((i) => i.value ?? 0), ...lines.map((l) => l.y)) * 1.15;
  const area = axes(ctx, width, height, [0, 1], [0, hi], '', yLabel);
  const bw = area.w / items.length;
  ctx.textAlign = 'center';
  items.forEach((item, i) => {
    const cx = area.left + (i + 0.5) * bw;
    if (item.value != null) {
      const top = area.y(item.value);
      ctx.fillStyle = item.color ?? COLORS[i % COLORS.length];
      ctx.fillRect(cx - bw * 0.3, top, bw * 0.6, area.top + area.h - top);
      // Values above the bars where they fit.
      if (bw >= 36) {
        ctx.fillStyle = '#111827';
        ctx.textBaseline = 'bottom';
        ctx.fillText(formatTick(item.value), cx, top - 2);
      }
    }
    ctx.fillStyle = '#374151';
    ctx.textBaseline = 'top';
    ctx.fillText(item.label, cx, area.top + area.h + 5, bw - 4);
  });
  referenceLines(ctx, area, lines);
}

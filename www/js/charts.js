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

// Axes with ticks and labels; returns the plot-area mapping.
function axes(ctx, width, height, xRange, yRange, xLabel, yLabel) {
  const left = 52, right = 12, top = 10, bottom = 38;
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
  for (const t of niceTicks(xRange[0], xRange[1], 5)) {
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

function legend(ctx, area, names) {
  ctx.textAlign = 'left';
  ctx.textBaseline = 'middle';
  let x = area.left + area.w;
  const widths = names.map((n) => ctx.measureText(n).width + 26);
  x -= widths.reduce((a, b) => a + b, 0);
  names.forEach((name, i) => {
    ctx.fillStyle = 'rgba(255,255,255,0.85)';
    ctx.fillRect(x, area.top + 4, widths[i], 16);
    ctx.fillStyle = COLORS[i % COLORS.length];
    ctx.fillRect(x + 4, area.top + 10, 14, 3);
    ctx.fillStyle = '#111827';
    ctx.fillText(name, x + 22, area.top + 12);
    x += widths[i];
  });
}

// What an empty chart says.
function placeholder(ctx, width, height, text = 'No data yet: press Start') {
  ctx.fillStyle = '#6b7280';
  ctx.textAlign = 'center';
  ctx.textBaseline = 'middle';
  ctx.fillText(text, width / 2, height / 2);
}

// series: [{name, points: [[x, y], ...]}]
export function lineChart(canvas, series, { xLabel = 'step', yLabel = '', yMin } = {}) {
  const { ctx, width, height } = setup(canvas);
  const all = series.flatMap((s) => s.points).filter(([, v]) => Number.isFinite(v));
  if (all.length === 0) {
    placeholder(ctx, width, height);
    return;
  }
  const xs = all.map((p) => p[0]), ys = all.map((p) => p[1]);
  let lo = yMin ?? Math.min(...ys), hi = Math.max(...ys);
  if (hi - lo < 1e-9) { hi = lo + Math.max(1e-3, Math.abs(lo) * 0.1); }
  const pad = (hi - lo) * 0.05;
  const area = axes(ctx, width, height, [Math.min(...xs), Math.max(...xs, Math.min(...xs) + 1)], [yMin ?? lo - pad, hi + pad], xLabel, yLabel);
  series.forEach((s, i) => {
    ctx.strokeStyle = COLORS[i % COLORS.length];
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
  });
  if (series.length > 1) legend(ctx, area, series.map((s) => s.name));
}

export function barChart(canvas, values, { xLabel = '', yLabel = '' } = {}) {
  const { ctx, width, height } = setup(canvas);
  if (values.length === 0) {
    placeholder(ctx, width, height);
    return;
  }
  const hi = Math.max(1e-6, ...values);
  const area = axes(ctx, width, height, [0, Math.max(1, values.length)], [0, hi * 1.05], xLabel, yLabel);
  ctx.fillStyle = COLORS[0];
  const bw = area.w / Math.max(1, values.length);
  values.forEach((v, i) => {
    const top = area.y(v);
    ctx.fillRect(area.left + i * bw, top, Math.max(1, bw - 1), area.top + area.h - top);
  });
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

//! A dependency-free line chart, enough to see a loss curve and a collapse monitor at a glance.

use jem_core::Image;

const W: usize = 640;
const H: usize = 240;
const MARGIN: usize = 16;

/// One panel: `values` against their index, scaled to fit, on a light grid. The curve is drawn
/// in `colour`; a horizontal line marks zero when it is in range.
pub fn panel(values: &[f32], colour: [u8; 3]) -> Image {
    let mut img = Image::filled(W, H, [255, 255, 255]);
    let finite: Vec<f32> = values.iter().copied().filter(|v| v.is_finite()).collect();
    let (lo, hi) = finite.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
    let (lo, hi) = if lo.is_finite() && hi > lo { (lo, hi) } else { (lo.min(0.0) - 1.0, hi.max(0.0) + 1.0) };
    let (pw, ph) = ((W - 2 * MARGIN) as f32, (H - 2 * MARGIN) as f32);
    let to_y = |v: f32| MARGIN as f32 + ph * (1.0 - (v - lo) / (hi - lo));
    let mut put = |x: usize, y: usize, c: [u8; 3]| {
        if x < W && y < H {
            img.pixels[(y * W + x) * 3..][..3].copy_from_slice(&c);
        }
    };
    for k in 0..=4 {
        let y = MARGIN + k * (H - 2 * MARGIN) / 4;
        (MARGIN..W - MARGIN).for_each(|x| put(x, y, [225, 225, 225]));
    }
    for y in MARGIN..=H - MARGIN {
        put(MARGIN, y, [120, 120, 120]);
    }
    if lo < 0.0 && hi > 0.0 {
        let y = to_y(0.0) as usize;
        (MARGIN..W - MARGIN).for_each(|x| put(x, y, [150, 150, 150]));
    }
    let n = values.len().max(2);
    let mut last: Option<(f32, f32)> = None;
    for (i, &v) in values.iter().enumerate() {
        if !v.is_finite() {
            last = None;
            continue;
        }
        let p = (MARGIN as f32 + pw * i as f32 / (n - 1) as f32, to_y(v));
        if let Some(q) = last {
            let steps = ((p.0 - q.0).abs().max((p.1 - q.1).abs()) as usize).max(1);
            for s in 0..=steps {
                let t = s as f32 / steps as f32;
                let (x, y) = (q.0 + t * (p.0 - q.0), q.1 + t * (p.1 - q.1));
                put(x as usize, y as usize, colour);
                put(x as usize, y as usize + 1, colour);
            }
        }
        last = Some(p);
    }
    img
}

/// Panels stacked vertically.
pub fn stack(panels: &[Image]) -> Image {
    Image::grid(panels, 1, 8)
}

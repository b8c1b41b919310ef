//! The run's `plot.png`: one panel per logged quantity against the training step, with axes,
//! ticks, units and a title per panel, and the run's kNN figures in the caption. Drawn with
//! plotters into an RGB buffer; text in DejaVu Sans, embedded, so the picture is the same on a
//! machine without fonts.

use std::sync::Once;

use anyhow::{Result, anyhow};
use jem_core::Image;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

const WIDTH: u32 = 900;
const PANEL_HEIGHT: u32 = 300;
const CAPTION_HEIGHT: u32 = 40;
const FONT: &str = "sans-serif";

/// One panel: `values[i]` is the value after step `first_step + i`.
pub struct Panel<'a> {
    pub title: &'a str,
    /// The y axis's label, with its unit.
    pub y_label: &'a str,
    pub values: &'a [f32],
    pub first_step: usize,
    pub colour: RGBColor,
}

/// The panels stacked, under `caption`.
pub fn draw(caption: &str, panels: &[Panel]) -> Result<Image> {
    static FONTS: Once = Once::new();
    FONTS.call_once(|| {
        // DejaVu Sans is a valid TrueType font: registering it cannot fail.
        let _ = register_font(FONT, FontStyle::Normal, dejavu::sans::regular());
    });
    let height = CAPTION_HEIGHT + PANEL_HEIGHT * panels.len().max(1) as u32;
    let mut pixels = vec![255u8; (WIDTH * height * 3) as usize];
    let plotting = |e: &dyn std::fmt::Display| anyhow!("plot.png: {e}");
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| plotting(&e))?;
        let (top, body) = root.split_vertically(CAPTION_HEIGHT);
        top.titled(caption, (FONT, 18)).map_err(|e| plotting(&e))?;
        for (area, panel) in body.split_evenly((panels.len().max(1), 1)).iter().zip(panels) {
            draw_panel(area, panel).map_err(|e| plotting(&e))?;
        }
        root.present().map_err(|e| plotting(&e))?;
    }
    Ok(Image { width: WIDTH as usize, height: height as usize, pixels })
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    panel: &Panel,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let (lo, hi) = value_range(panel.values);
    let first = panel.first_step as f64;
    let last = first + panel.values.len().max(2) as f64 - 1.0;
    let mut chart = ChartBuilder::on(area)
        .caption(panel.title, (FONT, 16))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(first..last, lo..hi)?;
    chart
        .configure_mesh()
        .x_desc("training step")
        .x_label_formatter(&|step| format!("{step:.0}"))
        .y_desc(panel.y_label)
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()?;
    // A non-finite value breaks the line, as a diverged step should.
    let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
    for (i, &v) in panel.values.iter().enumerate() {
        match (v.is_finite(), runs.last_mut()) {
            (true, Some(run)) => run.push((first + i as f64, v as f64)),
            (false, Some(run)) if !run.is_empty() => runs.push(Vec::new()),
            _ => {}
        }
    }
    for run in runs.into_iter().filter(|run| !run.is_empty()) {
        chart.draw_series(LineSeries::new(run, panel.colour.stroke_width(2)))?;
    }
    Ok(())
}

/// The finite values' range with a margin of 5 % on each side (a constant or empty series gets a
/// range around it).
fn value_range(values: &[f32]) -> (f64, f64) {
    let (lo, hi) = values
        .iter()
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| (lo.min(v as f64), hi.max(v as f64)));
    match (lo.is_finite(), hi > lo) {
        (true, true) => (lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo)),
        (true, false) => (lo - lo.abs().max(1.0) * 0.1, lo + lo.abs().max(1.0) * 0.1),
        (false, _) => (0.0, 1.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn panel(values: &[f32]) -> Panel<'_> {
        Panel { title: "loss", y_label: "loss (nats)", values, first_step: 1, colour: RED }
    }

    /// The picture has one panel per series, and draws: its curve's colour, and dark text and
    /// axes, appear on the white ground.
    #[test]
    fn draws_every_panel_with_axes_and_curve() {
        let values: Vec<f32> = (0..50).map(|i| 5.0 - 0.05 * i as f32).collect();
        let image = draw("SimCLR on shapes: kNN 23.0 % → 47.6 %", &[panel(&values), panel(&values)]).unwrap();
        assert_eq!((image.width, image.height), (900, 640));
        let count = |pred: &dyn Fn(&[u8]) -> bool| image.pixels.chunks_exact(3).filter(|p| pred(p)).count();
        assert!(count(&|p| p[0] > 200 && p[1] < 60 && p[2] < 60) > 500, "the red curves");
        assert!(count(&|p| p.iter().all(|&c| c < 80)) > 2000, "text and axes");
    }

    #[test]
    fn ranges_cover_the_finite_values_and_survive_degenerate_series() {
        assert_eq!(value_range(&[0.0, 10.0, f32::NAN]), (-0.5, 10.5));
        assert_eq!(value_range(&[2.0, 2.0]), (1.8, 2.2));
        assert_eq!(value_range(&[]), (0.0, 1.0));
        assert!(draw("diverged", &[panel(&[1.0, f32::NAN, f32::INFINITY, 0.5])]).is_ok());
    }
}

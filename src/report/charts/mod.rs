//! The charts of a run, each drawn once through plotters' backend trait and written as PNG
//! and SVG. The font ships in the repository and is registered at start-up, so charts render
//! on machines with no fonts installed.

use crate::event::FailureClass;
use crate::observe::timeline::TimelineRow;
use crate::plan::observed::Attempt;
use crate::plan::Recommendation;
use crate::summary::PHASES;
use hdrhistogram::Histogram;
use plotters::coord::combinators::LogCoord;
use plotters::coord::types::RangedCoordf64;
use plotters::coord::{CoordTranslate, Shift};
use plotters::prelude::*;
use std::path::Path;
use std::sync::Once;

mod blocking;
mod concurrency;
mod failures;
mod latency;
mod occupancy;
mod ports_vs_data;
mod sweep;

pub use blocking::Blocking;
pub use concurrency::Concurrency;
pub use failures::Failures;
pub use latency::read_latency_log;
pub use latency::Latency;
pub use occupancy::Occupancy;
pub use ports_vs_data::PortsVsData;
pub use sweep::SweepChart;

pub const WIDTH: u32 = 1200;
pub const HEIGHT: u32 = 700;
const FONT: &str = "sans-serif";
/// Most grants the occupancy map draws; beyond it an even sample (said on the chart).
pub const MAX_SEGMENTS: usize = 20_000;

static FONT_ONCE: Once = Once::new();

fn register_font() {
    FONT_ONCE.call_once(|| {
        let bytes: &'static [u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");
        if plotters::style::register_font(FONT, FontStyle::Normal, bytes).is_err() {
            tracing::warn!("the bundled font could not be registered; charts will have no text");
        }
    });
}

/// Tableau 20: the ten strong colours first, then their light variants, so that no two
/// series of a chart share a colour (the failures chart can show every class).
const PALETTE: [RGBColor; 20] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
    RGBColor(174, 199, 232),
    RGBColor(255, 187, 120),
    RGBColor(152, 223, 138),
    RGBColor(255, 152, 150),
    RGBColor(197, 176, 213),
    RGBColor(196, 156, 148),
    RGBColor(247, 182, 210),
    RGBColor(199, 199, 199),
    RGBColor(219, 219, 141),
    RGBColor(158, 218, 229),
];
const _: () = assert!(
    PALETTE.len() >= crate::summary::PHASES.len(),
    "a latency phase would reuse a colour"
);
const _: () = assert!(
    PALETTE.len() >= crate::event::FailureClass::ALL.len(),
    "a failure class would reuse a colour"
);

/// The `i`-th series' colour; past the palette (a chart with more than 20 series) colours
/// repeat, which the chart tests would catch.
fn series_colour(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

type DrawResult = Result<(), String>;

/// One chart: it knows its file name and title and draws itself on any backend.
pub trait Chart {
    fn name(&self) -> &'static str;
    fn title(&self) -> String;
    fn caption(&self) -> String;
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult;
}

fn e<E: std::fmt::Display>(err: E) -> String {
    err.to_string()
}

/// Writes `charts/<name>.png` and `.svg`.
pub fn render(chart: &impl Chart, dir: &Path) -> Result<(), String> {
    register_font();
    std::fs::create_dir_all(dir).map_err(e)?;
    let png = dir.join(format!("{}.png", chart.name()));
    let svg = dir.join(format!("{}.svg", chart.name()));
    {
        let root = BitMapBackend::new(&png, (WIDTH, HEIGHT)).into_drawing_area();
        chart.draw(&root)?;
        root.present().map_err(e)?;
    }
    {
        let root = SVGBackend::new(&svg, (WIDTH, HEIGHT)).into_drawing_area();
        chart.draw(&root)?;
        root.present().map_err(e)?;
    }
    Ok(())
}

fn no_data<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, title: &str, why: &str) -> DrawResult {
    root.fill(&WHITE).map_err(e)?;
    let style = TextStyle::from((FONT, 30).into_font()).pos(plotters::style::text_anchor::Pos::new(
        plotters::style::text_anchor::HPos::Center,
        plotters::style::text_anchor::VPos::Center,
    ));
    root.draw(&Text::new(
        title.to_string(),
        ((WIDTH / 2) as i32, (HEIGHT / 3) as i32),
        style.clone(),
    ))
    .map_err(e)?;
    root.draw(&Text::new(
        format!("no data: {why}"),
        ((WIDTH / 2) as i32, (HEIGHT / 2) as i32),
        style.color(&RGBColor(120, 120, 120)),
    ))
    .map_err(e)?;
    Ok(())
}

/// Tick labels for counts: whole numbers only, nothing below zero.
fn count_label(v: &f64) -> String {
    if *v >= 0.0 && (v - v.round()).abs() < 1e-9 {
        format!("{v:.0}")
    } else {
        String::new()
    }
}

/// The legend every chart uses: a framed, mostly opaque box at `position`.
fn legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
    font_size: u32,
) -> DrawResult {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font((FONT, font_size))
        .draw()
        .map_err(e)
}

type WidthBlockingChart<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, LogCoord<f64>>>;

/// Range width against the probability a PASV fails (log scale down to `floor`): the axes the
/// blocking and sweep charts share.
fn width_blocking_axes<'a, DB: DrawingBackend>(
    root: &'a DrawingArea<DB, Shift>,
    title: &str,
    xmax: f64,
    floor: f64,
) -> Result<WidthBlockingChart<'a, DB>, String> {
    let mut chart = ChartBuilder::on(root)
        .caption(title, (FONT, 28))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(90)
        .build_cartesian_2d(0f64..xmax, (floor..1.5f64).log_scale())
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("passive range width (ports)")
        .y_desc("share failing")
        .x_label_formatter(&count_label)
        .y_label_formatter(&|y| format!("{y:.0e}"))
        .label_style((FONT, 16))
        .axis_desc_style((FONT, 20))
        .draw()
        .map_err(e)?;
    Ok(chart)
}

fn secs(us: u64) -> f64 {
    us as f64 / 1e6
}

#[cfg(test)]
mod tests;

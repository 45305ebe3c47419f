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

pub const WIDTH: u32 = 1200;
pub const HEIGHT: u32 = 700;
const FONT: &str = "sans-serif";
/// Most grants the occupancy map draws; beyond it an even sample (said on the chart).
pub const MAX_SEGMENTS: usize = 20_000;

static FONT_ONCE: Once = Once::new();

fn register_font() {
    FONT_ONCE.call_once(|| {
        let bytes: &'static [u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
        if plotters::style::register_font(FONT, FontStyle::Normal, bytes).is_err() {
            tracing::warn!("the bundled font could not be registered; charts will have no text");
        }
    });
}

/// Tableau's ten: one colour per latency phase (there are nine), so no two lines share one.
const PALETTE: [RGBColor; 10] = [
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
];
const _: () = assert!(
    PALETTE.len() >= crate::summary::PHASES.len(),
    "a latency phase would reuse a colour"
);

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

// ------------------------------------------------------------------------------------------

type TimelineField = fn(&TimelineRow) -> i64;

/// Concurrency and ports held over time, with the server's sockets when sampled.
pub struct Concurrency<'a> {
    pub timeline: &'a [TimelineRow],
}

impl Chart for Concurrency<'_> {
    fn name(&self) -> &'static str {
        "concurrency"
    }
    fn title(&self) -> String {
        "Concurrency and passive ports held over time".into()
    }
    fn caption(&self) -> String {
        "Sessions, open data connections, pending PASVs and distinct ports held (client view: from the grant \
         until our data connection closes). Server-side sockets on the range, when the kernel's tables were \
         read, are dots; TIME_WAIT uses the right-hand axis."
            .into()
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let t = self.timeline;
        if t.len() < 2 {
            return no_data(root, &self.title(), "fewer than two timeline samples");
        }
        root.fill(&WHITE).map_err(e)?;
        let xmax = secs(t.last().map_or(1, |r| r.t_us)).max(0.001);
        let ymax = t
            .iter()
            .map(|r| {
                let srv = r.server_sockets.map_or(0, |s| s.listen + s.established) as i64;
                r.sessions_active
                    .max(r.control_open)
                    .max(r.ports_held)
                    .max(r.data_open)
                    .max(srv)
            })
            .max()
            .unwrap_or(1)
            .max(1) as f64
            * 1.25;
        let tw_max = t
            .iter()
            .filter_map(|r| r.server_sockets.and_then(|s| s.time_wait))
            .max()
            .unwrap_or(0)
            .max(1) as f64
            * 1.1;
        let mut chart = ChartBuilder::on(root)
            .caption(self.title(), (FONT, 28))
            .margin(20)
            .x_label_area_size(50)
            .y_label_area_size(70)
            .right_y_label_area_size(80)
            .build_cartesian_2d(0f64..xmax, 0f64..ymax)
            .map_err(e)?
            .set_secondary_coord(0f64..xmax, 0f64..tw_max);
        chart
            .configure_mesh()
            .x_desc("time since start (s)")
            .y_desc("count")
            .y_label_formatter(&count_label)
            .label_style((FONT, 16))
            .axis_desc_style((FONT, 20))
            .draw()
            .map_err(e)?;
        chart
            .configure_secondary_axes()
            .y_desc("server sockets in TIME_WAIT")
            .y_label_formatter(&count_label)
            .label_style((FONT, 16))
            .axis_desc_style((FONT, 20))
            .draw()
            .map_err(e)?;
        let series: [(&str, TimelineField); 5] = [
            ("sessions", |r| r.sessions_active),
            ("control connections", |r| r.control_open),
            ("data connections", |r| r.data_open),
            ("pending PASV", |r| r.pasv_pending),
            ("ports held", |r| r.ports_held),
        ];
        for (i, (label, f)) in series.iter().enumerate() {
            let color = PALETTE[i];
            chart
                .draw_series(LineSeries::new(
                    t.iter().map(|r| (secs(r.t_us), f(r) as f64)),
                    color.stroke_width(2),
                ))
                .map_err(e)?
                .label(*label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3)));
        }
        let sampled: Vec<_> = t
            .iter()
            .filter_map(|r| r.server_sockets.map(|s| (secs(r.t_us), s)))
            .collect();
        if !sampled.is_empty() {
            let c = PALETTE[5];
            chart
                .draw_series(
                    sampled
                        .iter()
                        .map(|(x, s)| Circle::new((*x, f64::from(s.listen + s.established)), 5, c.filled())),
                )
                .map_err(e)?
                .label("server: listening + established")
                .legend(move |(x, y)| Circle::new((x + 10, y), 5, c.filled()));
            let c2 = PALETTE[6];
            chart
                .draw_secondary_series(
                    sampled
                        .iter()
                        .filter_map(|(x, s)| s.time_wait.map(|tw| (*x, tw)))
                        .map(|(x, tw)| TriangleMarker::new((x, f64::from(tw)), 6, c2.filled())),
                )
                .map_err(e)?
                .label("server: TIME_WAIT (right axis)")
                .legend(move |(x, y)| TriangleMarker::new((x + 10, y), 6, c2.filled()));
        }
        legend(&mut chart, SeriesLabelPosition::UpperLeft, 16)?;
        Ok(())
    }
}

// ------------------------------------------------------------------------------------------

/// Ports held against concurrent data connections, one dot per sample, with the fitted line.
pub struct PortsVsData<'a> {
    pub timeline: &'a [TimelineRow],
    /// (slope, intercept, r²) from the plan's fit.
    pub fit: Option<(f64, f64, f64)>,
}

impl Chart for PortsVsData<'_> {
    fn name(&self) -> &'static str {
        "ports_vs_data"
    }
    fn title(&self) -> String {
        "Ports held vs concurrent data connections".into()
    }
    fn caption(&self) -> String {
        match self.fit {
            Some((m, b, r2)) => format!(
                "One dot per timeline sample; the line is the least-squares fit ports = {m:.2} × data connections + {b:.2} \
                 (r² {r2:.2}). A slope above 1 means ports stay held beyond the data connection (pending grants)."
            ),
            None => "One dot per timeline sample.".into(),
        }
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let pts: Vec<(f64, f64)> = self
            .timeline
            .iter()
            .map(|r| (r.data_open.max(0) as f64, r.ports_held.max(0) as f64))
            .collect();
        if pts.len() < 2 {
            return no_data(root, &self.title(), "fewer than two timeline samples");
        }
        root.fill(&WHITE).map_err(e)?;
        let xmax = pts.iter().map(|p| p.0).fold(1.0, f64::max) * 1.15;
        let ymax = pts.iter().map(|p| p.1).fold(1.0, f64::max) * 1.25;
        let mut chart = ChartBuilder::on(root)
            .caption(self.title(), (FONT, 28))
            .margin(20)
            .x_label_area_size(50)
            .y_label_area_size(70)
            .build_cartesian_2d(-0.3f64..xmax.max(2.0), -0.3f64..ymax.max(2.0))
            .map_err(e)?;
        chart
            .configure_mesh()
            .x_desc("open data connections")
            .y_desc("distinct ports held")
            .x_label_formatter(&count_label)
            .y_label_formatter(&count_label)
            .label_style((FONT, 16))
            .axis_desc_style((FONT, 20))
            .draw()
            .map_err(e)?;
        let c = PALETTE[0];
        chart
            .draw_series(pts.iter().map(|p| Circle::new(*p, 4, c.mix(0.5).filled())))
            .map_err(e)?
            .label("samples")
            .legend(move |(x, y)| Circle::new((x + 10, y), 4, c.filled()));
        if let Some((m, b, r2)) = self.fit {
            let c = PALETTE[3];
            chart
                .draw_series(LineSeries::new([(0.0, b), (xmax, b + m * xmax)], c.stroke_width(3)))
                .map_err(e)?
                .label(format!("fit: {m:.2}x + {b:.2}, r² {r2:.2}"))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(3)));
        }
        legend(&mut chart, SeriesLabelPosition::UpperLeft, 16)?;
        Ok(())
    }
}

// ------------------------------------------------------------------------------------------

/// Latency percentile curves per phase, HdrHistogram style: the x axis stretches the tail.
pub struct Latency {
    pub histograms: Vec<(&'static str, Histogram<u64>)>,
}

/// Percentiles drawn: from the minimum to 99.995%.
const PERCENTILES: [f64; 17] = [
    0.0, 25.0, 50.0, 75.0, 90.0, 95.0, 97.5, 99.0, 99.5, 99.75, 99.9, 99.95, 99.975, 99.99, 99.9925, 99.995, 99.995,
];

fn tail_x(p: f64) -> f64 {
    (1.0 / (1.0 - p / 100.0)).log10()
}

impl Chart for Latency {
    fn name(&self) -> &'static str {
        "latency"
    }
    fn title(&self) -> String {
        "Latency by percentile, per phase".into()
    }
    fn caption(&self) -> String {
        "Each phase's latency distribution from latency.hlog, from the fastest to 99.995%. The x axis stretches \
         the tail as HdrHistogram plots do (each step is ten times rarer); the y axis is logarithmic."
            .into()
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let hs: Vec<_> = self.histograms.iter().filter(|(_, h)| !h.is_empty()).collect();
        if hs.is_empty() {
            return no_data(root, &self.title(), "no latency was recorded");
        }
        root.fill(&WHITE).map_err(e)?;
        let to_ms = |us: u64| (us.max(1) as f64) / 1000.0;
        // Two decades of room below the fastest value hold the legend clear of the curves.
        let ymin = hs
            .iter()
            .map(|(_, h)| to_ms(h.min()))
            .fold(f64::MAX, f64::min)
            .max(0.001)
            / 100.0;
        let ymax = hs
            .iter()
            .map(|(_, h)| to_ms(h.max()))
            .fold(0.0, f64::max)
            .max(ymin * 10.0)
            * 1.5;
        let xmax = tail_x(99.995);
        let mut chart = ChartBuilder::on(root)
            .caption(self.title(), (FONT, 28))
            .margin(20)
            .x_label_area_size(50)
            .y_label_area_size(80)
            .build_cartesian_2d(0f64..xmax, (ymin..ymax).log_scale())
            .map_err(e)?;
        chart
            .configure_mesh()
            .x_desc("percentile")
            .y_desc("latency (ms)")
            .x_labels(6)
            .x_label_formatter(&|x| {
                // Ticks at whole decades: 0%, 90%, 99%, 99.9%, 99.99%.
                if (x - x.round()).abs() > 1e-9 {
                    return String::new();
                }
                let p = 100.0 * (1.0 - 10f64.powf(-x.round()));
                format!("{}%", (p * 1000.0).round() / 1000.0)
            })
            .y_label_formatter(&|y| {
                if *y >= 1.0 {
                    format!("{y:.0}")
                } else {
                    // As many decimals as the value needs: 0.1, 0.01, 0.001, 0.0001 …
                    let decimals = (-y.log10()).ceil().clamp(1.0, 9.0) as usize;
                    format!("{y:.decimals$}")
                }
            })
            .label_style((FONT, 16))
            .axis_desc_style((FONT, 20))
            .draw()
            .map_err(e)?;
        for (i, (phase, h)) in hs.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            let pts: Vec<(f64, f64)> = PERCENTILES
                .iter()
                .map(|&p| (tail_x(p), to_ms(h.value_at_quantile(p / 100.0))))
                .collect();
            chart
                .draw_series(LineSeries::new(pts, color.stroke_width(2)))
                .map_err(e)?
                .label(format!("{phase} (n={})", h.len()))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3)));
        }
        legend(&mut chart, SeriesLabelPosition::LowerRight, 15)?;
        Ok(())
    }
}

/// Merges the interval log into one histogram per phase.
pub fn read_latency_log(dir: &Path) -> Result<Vec<(&'static str, Histogram<u64>)>, String> {
    use base64::Engine;
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
    use hdrhistogram::serialization::Deserializer;
    let bytes = std::fs::read(dir.join(crate::observe::hlog::LATENCY_LOG)).map_err(e)?;
    let mut merged: Vec<(&'static str, Histogram<u64>)> = PHASES
        .iter()
        .map(|p| Histogram::new_with_bounds(1, 3_600_000_000, 3).map(|h| (*p, h)))
        .collect::<Result<_, _>>()
        .map_err(e)?;
    let mut de = Deserializer::new();
    for entry in IntervalLogIterator::new(&bytes) {
        let Ok(LogEntry::Interval(ih)) = entry else { continue };
        let Some(slot) = ih.tag().and_then(|t| merged.iter_mut().find(|(p, _)| *p == t.as_str())) else {
            continue;
        };
        let raw = base64::engine::general_purpose::STANDARD
            .decode(ih.encoded_histogram())
            .map_err(e)?;
        let h: Histogram<u64> = de.deserialize(&mut raw.as_slice()).map_err(|err| format!("{err:?}"))?;
        slot.1.add(&h).map_err(e)?;
    }
    Ok(merged)
}

// ------------------------------------------------------------------------------------------

/// Failures per class over time (per second, from the timeline's cumulative counters).
pub struct Failures<'a> {
    pub timeline: &'a [TimelineRow],
}

impl Chart for Failures<'_> {
    fn name(&self) -> &'static str {
        "failures"
    }
    fn title(&self) -> String {
        "Failures by class over time".into()
    }
    fn caption(&self) -> String {
        "Failures per second by class, from the timeline's cumulative counters. pasv_rejected is the server \
         answering 425 (range exhausted for its pick policy); pasv_out_of_range is a grant a firewall would drop."
            .into()
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let t = self.timeline;
        if t.len() < 2 {
            return no_data(root, &self.title(), "fewer than two timeline samples");
        }
        let Some(last) = t.last() else {
            return no_data(root, &self.title(), "no timeline");
        };
        let classes: Vec<usize> = (0..FailureClass::ALL.len())
            .filter(|&i| last.failures_total[i] > 0)
            .collect();
        if classes.is_empty() {
            return no_data(root, &self.title(), "no failures in this run");
        }
        root.fill(&WHITE).map_err(e)?;
        let rate = |i: usize| -> Vec<(f64, f64)> {
            t.windows(2)
                .map(|w| {
                    let dt = secs(w[1].t_us.saturating_sub(w[0].t_us)).max(1e-6);
                    (
                        secs(w[1].t_us),
                        w[1].failures_total[i].saturating_sub(w[0].failures_total[i]) as f64 / dt,
                    )
                })
                .collect()
        };
        let all: Vec<(usize, Vec<(f64, f64)>)> = classes.iter().map(|&i| (i, rate(i))).collect();
        let ymax = all.iter().flat_map(|(_, v)| v.iter().map(|p| p.1)).fold(1.0, f64::max) * 1.25;
        let xmax = secs(last.t_us).max(0.001);
        let mut chart = ChartBuilder::on(root)
            .caption(self.title(), (FONT, 28))
            .margin(20)
            .x_label_area_size(50)
            .y_label_area_size(80)
            .build_cartesian_2d(0f64..xmax, 0f64..ymax)
            .map_err(e)?;
        chart
            .configure_mesh()
            .x_desc("time since start (s)")
            .y_desc("failures per second")
            .label_style((FONT, 16))
            .axis_desc_style((FONT, 20))
            .draw()
            .map_err(e)?;
        for (n, (i, pts)) in all.into_iter().enumerate() {
            let color = PALETTE[n % PALETTE.len()];
            chart
                .draw_series(LineSeries::new(pts, color.stroke_width(2)))
                .map_err(e)?
                .label(format!("{} ({} in all)", FailureClass::ALL[i], last.failures_total[i]))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3)));
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight, 16)?;
        Ok(())
    }
}

// ------------------------------------------------------------------------------------------

/// Predicted session and PASV failure against range width, the recommendation and the rules
/// of thumb.
pub struct Blocking<'a> {
    pub recommendation: Option<&'a Recommendation>,
}

impl Chart for Blocking<'_> {
    fn name(&self) -> &'static str {
        "blocking"
    }
    fn title(&self) -> String {
        "Predicted failure vs passive range width".into()
    }
    fn caption(&self) -> String {
        match self.recommendation {
            Some(r) => format!(
                "The simulator's prediction for {} at the planned load ({:.1} control connections): the thick \
                 line is the share of sessions failing at the range in the run's busy stretches (what the target \
                 is checked against), dashed beside it the average, the thin line the share of PASVs. The black \
                 dashed line is the session target; the green line the recommended width ({}); crosses mark the \
                 rules of thumb.",
                r.server.kind.name(),
                r.inputs.control_connections,
                r.width
            ),
            None => "No recommendation was made for this run.".into(),
        }
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let Some(r) = self.recommendation else {
            return no_data(root, &self.title(), "no recommendation");
        };
        // Six decades below the target is as far as a reader cares; the curves stop there
        // rather than running along the floor.
        let floor = (r.inputs.gos_per_pasv * 1e-6).max(1e-15);
        let series = |f: fn(&crate::sim::Prediction) -> f64| -> Vec<(f64, f64)> {
            r.predictions
                .iter()
                .map(|p| (f64::from(p.width + r.held_by_others), f(p)))
                .filter(|&(_, b)| b >= floor)
                .collect()
        };
        let sessions = series(|p| p.session_failure_busy);
        let average = series(|p| p.session_failure_at_range);
        let pasvs = series(|p| p.pasv_failure);
        if sessions.len() < 2 && pasvs.len() < 2 {
            return no_data(root, &self.title(), "every predicted width meets the target by far");
        }
        root.fill(&WHITE).map_err(e)?;
        let xmax = r
            .predictions
            .iter()
            .map(|p| f64::from(p.width + r.held_by_others))
            .fold(f64::from(r.width) * 1.2, f64::max);
        let mut chart = width_blocking_axes(root, &self.title(), xmax, floor)?;
        let c = PALETTE[0];
        chart
            .draw_series(LineSeries::new(sessions, c.stroke_width(4)))
            .map_err(e)?
            .label("sessions failing in busy stretches (predicted)")
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(4)));
        chart
            .draw_series(DashedLineSeries::new(average, 6, 4, c.stroke_width(2)))
            .map_err(e)?
            .label("sessions failing on average (predicted)")
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
        let c2 = PALETTE[1];
        chart
            .draw_series(LineSeries::new(pasvs, c2.stroke_width(2)))
            .map_err(e)?
            .label("PASVs failing (predicted)")
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c2.stroke_width(2)));
        let target = r.inputs.gos_per_session.max(floor);
        chart
            .draw_series(DashedLineSeries::new(
                [(0.0, target), (xmax, target)],
                10,
                6,
                BLACK.stroke_width(2),
            ))
            .map_err(e)?
            .label(format!("target {:.3}% of sessions", r.inputs.gos_per_session * 100.0))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.stroke_width(2)));
        let g = PALETTE[2];
        let w = f64::from(r.width);
        chart
            .draw_series(LineSeries::new([(w, floor), (w, 1.5)], g.stroke_width(3)))
            .map_err(e)?
            .label(format!("recommended: {} ports", r.width))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], g.stroke_width(3)));
        for (i, rule) in r.rules_of_thumb.iter().enumerate() {
            let x = f64::from(rule.width);
            let color = PALETTE[(i + 3) % PALETTE.len()];
            // A rule far beyond the curve is still named, so the reader sees how far off it is.
            let (points, label) = if x > xmax {
                (Vec::new(), format!("{}: {} (off the chart)", rule.name, rule.width))
            } else if rule.session_failure < floor {
                (
                    vec![(x, floor)],
                    format!("{}: {} (failure below the chart)", rule.name, rule.width),
                )
            } else {
                (
                    vec![(x, rule.session_failure.max(floor))],
                    format!("{}: {}", rule.name, rule.width),
                )
            };
            chart
                .draw_series(points.into_iter().map(|p| Cross::new(p, 9, color.stroke_width(3))))
                .map_err(e)?
                .label(label)
                .legend(move |(x, y)| Cross::new((x + 10, y), 7, color.stroke_width(3)));
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight, 15)?;
        Ok(())
    }
}

// ------------------------------------------------------------------------------------------

/// Port × time: every grant is a bar from grant to release on its port's row.
pub struct Occupancy<'a> {
    pub grants: &'a crate::plan::observed::GrantSample,
    pub range: Option<crate::profile::PortRange>,
}

impl Chart for Occupancy<'_> {
    fn name(&self) -> &'static str {
        "occupancy"
    }
    fn title(&self) -> String {
        "Passive port occupancy (port × time)".into()
    }
    fn caption(&self) -> String {
        "Each grant is a bar on its port's row from the grant until our data connection closed. The pattern \
         shows the server's pick policy: a diagonal staircase is sequential, scattered bars are random; red bars \
         in the top lane are grants outside the expected range."
            .into()
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let sample = self.grants;
        if sample.total == 0 {
            return no_data(root, &self.title(), "no port was granted");
        }
        let grants = &sample.grants;
        root.fill(&WHITE).map_err(e)?;
        let (lo, hi) = match (self.range, sample.ports_inside) {
            (Some(r), _) => (r.min, r.max),
            (None, Some((lo, hi))) => (lo, hi),
            (None, None) => (0, 0),
        };
        // Out-of-range grants get a lane of their own above the range, so the range keeps
        // its resolution however far away the kernel's fallback ports are.
        let any_outside = sample.any_outside;
        let outside_lane = if any_outside {
            f64::from(hi) + 2.0 + (f64::from(hi - lo) * 0.03).ceil()
        } else {
            f64::from(hi)
        };
        let xmax = secs(sample.t_end_us).max(0.001);
        let step = sample.step;
        let sampled = step > 1;
        let mut chart = ChartBuilder::on(root)
            .caption(
                if sampled {
                    format!("{} (every {step}th grant)", self.title())
                } else {
                    self.title()
                },
                (FONT, 28),
            )
            .margin(20)
            .x_label_area_size(50)
            .y_label_area_size(90)
            // Headroom above the lanes keeps the legend off the bars.
            .build_cartesian_2d(
                0f64..xmax,
                (f64::from(lo) - 1.0)..(outside_lane + 1.5 + (f64::from(hi - lo) * 0.18).max(1.0)),
            )
            .map_err(e)?;
        chart
            .configure_mesh()
            .x_desc("time since start (s)")
            .y_desc("port")
            .y_label_formatter(&|y| {
                if any_outside && (*y - outside_lane).abs() < 0.5 {
                    "outside".into()
                } else if *y > f64::from(hi) + 0.5 || *y < f64::from(lo) - 0.5 {
                    String::new()
                } else {
                    format!("{y:.0}")
                }
            })
            .label_style((FONT, 16))
            .axis_desc_style((FONT, 20))
            .draw()
            .map_err(e)?;
        let blue = PALETTE[0];
        let red = PALETTE[3];
        let bar = |a: &Attempt, y: f64| {
            let g = secs(a.t_granted_us.unwrap_or(0));
            let r = secs(a.t_released_us.unwrap_or(0)).max(g + xmax / WIDTH as f64);
            [(g, y), (r, y)]
        };
        chart
            .draw_series(
                grants
                    .iter()
                    .filter(|a| a.in_range != Some(false))
                    .map(|a| PathElement::new(bar(a, f64::from(a.port.unwrap_or(0))).to_vec(), blue.stroke_width(2))),
            )
            .map_err(e)?
            .label("in range")
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], blue.stroke_width(3)));
        chart
            .draw_series(
                grants
                    .iter()
                    .filter(|a| a.in_range == Some(false))
                    .map(|a| PathElement::new(bar(a, outside_lane).to_vec(), red.stroke_width(3))),
            )
            .map_err(e)?
            .label("outside the range")
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], red.stroke_width(3)));
        legend(&mut chart, SeriesLabelPosition::UpperRight, 16)?;
        Ok(())
    }
}

// ------------------------------------------------------------------------------------------

/// Measured session failure per width with 95% intervals, over the simulator's prediction.
pub struct SweepChart<'a> {
    pub result: &'a crate::sweep::SweepResult,
}

impl Chart for SweepChart<'_> {
    fn name(&self) -> &'static str {
        "sweep"
    }
    fn title(&self) -> String {
        "Measured session failure vs width, against the prediction".into()
    }
    fn caption(&self) -> String {
        "Dots: the share of sessions that failed per width, with Clopper–Pearson 95% intervals (a width with no \
         failure is drawn at its upper bound, hollow). Line: the simulator's prediction from the plan made on the \
         widest width. Dashed: the session target; green: the plan's recommended width."
            .into()
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let r = self.result;
        let measured: Vec<_> = r.widths.iter().filter(|w| w.sessions > 0).collect();
        if measured.is_empty() {
            return no_data(root, &self.title(), "no width was measured");
        }
        root.fill(&WHITE).map_err(e)?;
        let floor = (r.gos_per_session * 1e-3).max(1e-9);
        let xmax = measured.iter().map(|w| f64::from(w.width)).fold(1.0, f64::max) * 1.1 + 1.0;
        let mut chart = width_blocking_axes(root, &self.title(), xmax, floor)?;
        if let Some(m) = &r.model {
            let c = PALETTE[0];
            // The plan's curve, and the predictions at the measured widths beyond it.
            let mut pts: Vec<(f64, f64)> = m
                .predictions
                .iter()
                .map(|p| (f64::from(p.width), p.session_failure_at_range))
                .chain(
                    r.widths
                        .iter()
                        .filter_map(|w| w.predicted_session_failure.map(|b| (f64::from(w.width), b))),
                )
                .filter(|&(w, b)| b >= floor && w <= xmax)
                .collect();
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            pts.dedup_by(|a, b| a.0 == b.0);
            chart
                .draw_series(LineSeries::new(pts, c.stroke_width(3)))
                .map_err(e)?
                .label("predicted")
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(3)));
            let g = PALETTE[2];
            let w = f64::from(m.model_width);
            if w <= xmax {
                chart
                    .draw_series(LineSeries::new([(w, floor), (w, 1.5)], g.stroke_width(3)))
                    .map_err(e)?
                    .label(format!("plan's width: {}", m.model_width))
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], g.stroke_width(3)));
            }
        }
        let target = r.gos_per_session.max(floor);
        chart
            .draw_series(DashedLineSeries::new(
                [(0.0, target), (xmax, target)],
                10,
                6,
                BLACK.stroke_width(2),
            ))
            .map_err(e)?
            .label(format!("target {:.3}% of sessions", r.gos_per_session * 100.0))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.stroke_width(2)));
        let red = PALETTE[3];
        chart
            .draw_series(measured.iter().map(|w| {
                let x = f64::from(w.width);
                PathElement::new(
                    vec![(x, w.session_ci_low.max(floor)), (x, w.session_ci_high.max(floor))],
                    red.stroke_width(2),
                )
            }))
            .map_err(e)?;
        chart
            .draw_series(measured.iter().map(|w| {
                let x = f64::from(w.width);
                if w.sessions_failed == 0 {
                    Circle::new((x, w.session_ci_high.max(floor)), 6, red.stroke_width(2))
                } else {
                    Circle::new((x, w.session_failure.max(floor)), 6, red.filled())
                }
            }))
            .map_err(e)?
            .label("measured, 95% interval")
            .legend(move |(x, y)| Circle::new((x + 10, y), 6, red.filled()));
        legend(&mut chart, SeriesLabelPosition::UpperRight, 16)?;
        Ok(())
    }
}

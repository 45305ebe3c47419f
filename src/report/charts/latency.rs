use super::*;

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
            let color = series_colour(i);
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
    let mut merged: Vec<(&'static str, Histogram<u64>)> = PHASES
        .iter()
        .map(|p| Histogram::new_with_bounds(1, 3_600_000_000, 3).map(|h| (*p, h)))
        .collect::<Result<_, _>>()
        .map_err(e)?;
    for interval in crate::observe::hlog::read_intervals(dir).map_err(e)? {
        if let Some(slot) = merged.iter_mut().find(|(p, _)| *p == interval.phase) {
            slot.1.add(&interval.histogram).map_err(e)?;
        }
    }
    Ok(merged)
}

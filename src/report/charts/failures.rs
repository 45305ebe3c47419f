use super::*;

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
            let color = series_colour(n);
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

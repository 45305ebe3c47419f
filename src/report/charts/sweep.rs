use super::*;

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

use super::*;

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
        let c_average = PALETTE[3];
        chart
            .draw_series(DashedLineSeries::new(average, 6, 4, c_average.stroke_width(2)))
            .map_err(e)?
            .label("sessions failing on average (predicted)")
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c_average.stroke_width(2)));
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
            let color = series_colour(i + 4);
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

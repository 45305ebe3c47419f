use super::*;

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

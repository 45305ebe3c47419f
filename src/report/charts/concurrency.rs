use super::*;

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

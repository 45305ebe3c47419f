use super::*;

/// Port × time: every grant is a bar from grant to release on its port's row.
pub struct Occupancy<'a> {
    pub grants: &'a crate::plan::observed::GrantSample,
    pub range: Option<crate::port_range::PortRange>,
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

//! The bind-race window a run's races call for (ProFTPD, Pure-FTPd and any server whose
//! processes race bind() and listen()): the typical window as a prior, the run's count of
//! races as the evidence, and the run's own replay as what links the two.

/// How many collisions' worth of evidence the typical race window counts for.
pub const PRIOR_COLLISIONS: f64 = 3.0;

/// The base race window a run's bind races call for, and its 20–80% range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RaceWindowFit {
    pub window_us: f64,
    pub low_us: f64,
    pub high_us: f64,
    /// The races the replay at the run's width makes with `window_us`: the count sized on.
    pub races: f64,
}

/// Fits the base race window on `seen` bind races: the typical window `prior_us` is a
/// Gamma prior on the window (shape [`PRIOR_COLLISIONS`], mean `prior_us`), the run's count
/// a Poisson draw of the races the replay at the run's width makes with a window
/// (`races_at`), and the window is the posterior's `quantile`, computed on a grid.
///
/// Where races grow in proportion to the window this is the conjugate Gamma posterior the
/// fit used before. They do not: two PASVs race only when they come within the window of
/// each other, and bursts put many within microseconds. Replaying a 90 s ProFTPD run at 136
/// ports: 0.5 races at 1 µs, 87 at 5 µs, 263 at 20 µs. Scaling the window in proportion to
/// the count sized that run on 1 µs, where it raced 0.7 times instead of its 20, and so
/// predicted its own width 25× too well; here the count pins the window down where the
/// replay says it does. A run whose replay hardly races at any likely window (a short run
/// on a wide range) says little, and the prior stands.
pub fn fit_race_window(seen: usize, prior_us: f64, quantile: f64, races_at: impl Fn(f64) -> f64) -> RaceWindowFit {
    let shape = PRIOR_COLLISIONS;
    let rate = PRIOR_COLLISIONS / prior_us;
    // Log-spaced from a thousandth to a thousand times the typical window. The replay runs
    // on a coarse grid (each point is a few replays of the run); the races in between are
    // interpolated as a power of the window.
    let (lo, hi) = ((prior_us / 1e3).ln(), (prior_us * 1e3).ln());
    let at = |steps: usize| -> Vec<f64> { (0..=steps).map(|i| lo + (hi - lo) * i as f64 / steps as f64).collect() };
    let coarse = at(WINDOW_REPLAY_STEPS);
    let replayed: Vec<f64> = coarse.iter().map(|&x| races_at(x.exp()).max(0.0)).collect();
    let races_between = |x: f64| -> f64 {
        let step = (hi - lo) / WINDOW_REPLAY_STEPS as f64;
        let k = (((x - lo) / step).floor().max(0.0) as usize).min(WINDOW_REPLAY_STEPS - 1);
        let f = ((x - coarse[k]) / step).clamp(0.0, 1.0);
        let (a, b) = (replayed[k], replayed[k + 1]);
        if a > 0.0 && b > 0.0 {
            (a.ln() + f * (b.ln() - a.ln())).exp()
        } else {
            a + f * (b - a)
        }
    };
    let grid = at(WINDOW_GRID_STEPS);
    let seen = seen as f64;
    // Log posterior density of ln(window): Gamma prior (times w, for the change of variable)
    // and Poisson likelihood of the count.
    let log_post: Vec<f64> = grid
        .iter()
        .map(|&x| {
            let w = x.exp();
            let prior = shape * x - rate * w;
            let races = races_between(x);
            let likelihood = if races > 0.0 {
                seen * races.ln() - races
            } else if seen > 0.0 {
                f64::NEG_INFINITY
            } else {
                0.0
            };
            prior + likelihood
        })
        .collect();
    let top = log_post.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let window_at = |q: f64| -> f64 {
        if !top.is_finite() {
            // No window makes the replay race as the run did: the prior alone.
            return gamma_quantile(shape, rate, q);
        }
        let density: Vec<f64> = log_post.iter().map(|l| (l - top).exp()).collect();
        let mut cdf = vec![0.0; density.len()];
        for i in 1..density.len() {
            cdf[i] = cdf[i - 1] + (density[i] + density[i - 1]) / 2.0;
        }
        let total = cdf[cdf.len() - 1];
        let goal = q * total;
        let i = cdf.partition_point(|&c| c < goal).clamp(1, cdf.len() - 1);
        let within = if cdf[i] > cdf[i - 1] {
            (goal - cdf[i - 1]) / (cdf[i] - cdf[i - 1])
        } else {
            0.0
        };
        (grid[i - 1] + within * (grid[i] - grid[i - 1])).exp()
    };
    let window_us = window_at(quantile);
    RaceWindowFit {
        window_us,
        low_us: window_at(0.2),
        high_us: window_at(0.8),
        races: races_at(window_us),
    }
}

/// Points of the race window's posterior grid: a thousandth to a thousand times the typical
/// window in steps of 3.5%.
const WINDOW_GRID_STEPS: usize = 400;
/// Windows the replay is run at over the same stretch, in steps of 41%.
const WINDOW_REPLAY_STEPS: usize = 40;

fn gamma_quantile(shape: f64, rate: f64, p: f64) -> f64 {
    statrs::distribution::Gamma::new(shape, rate)
        .map(|g| statrs::distribution::ContinuousCDF::inverse_cdf(&g, p))
        .unwrap_or(shape / rate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_race_window_growing_in_proportion_is_the_conjugate_posterior() {
        // Races in proportion to the window, 4 per µs (the typical 5 µs gives 20). With 8 seen
        // the window's posterior is Gamma(3 + 8, 3/5 + 4), as the conjugate fit had it.
        let fit = fit_race_window(8, 5.0, 0.5, |w| 4.0 * w);
        for (got, p) in [(fit.window_us, 0.5), (fit.low_us, 0.2), (fit.high_us, 0.8)] {
            let want = gamma_quantile(11.0, 3.0 / 5.0 + 4.0, p);
            assert!((got / want - 1.0).abs() < 0.03, "{p}: {fit:?} vs {want}");
        }
        // No races seen pulls it below the typical one; many above.
        assert!(fit_race_window(0, 5.0, 0.5, |w| 4.0 * w).window_us < 2.0);
        assert!(fit_race_window(60, 5.0, 0.5, |w| 4.0 * w).window_us > 5.0);
    }

    #[test]
    fn a_race_window_is_sized_where_the_replay_races_as_often_as_the_run() {
        // Races growing with the cube of the window, as bursts make them (0.54 at 1 µs, 87 at
        // 5 µs and 263 at 20 µs replaying a ProFTPD run): 20 seen. The count pins the window
        // down near where the replay races 20 times (2.9 µs); in proportion to the count it
        // would have been about 1.3 µs, where the replay races 1.5 times.
        let races = |w: f64| 0.7 * w.powi(3);
        let fit = fit_race_window(20, 5.0, 0.5, races);
        assert!(fit.races > 14.0 && fit.races < 26.0, "{fit:?}");
        assert!(fit.low_us < fit.window_us && fit.window_us < fit.high_us, "{fit:?}");
        assert!(fit.high_us / fit.low_us < 1.3, "{fit:?}");
    }

    #[test]
    fn a_run_whose_replay_cannot_race_leaves_the_typical_window() {
        // A short run on a wide range: the replay races only from 8 µs on, and hardly. Its
        // count (none, or two the replay cannot make) says nothing: the prior stands, and
        // never a window far below it (sized on a thousandth of a race, that run was once
        // given 0.4 µs and a range a fifth of what it needed).
        let races = |w: f64| if w < 8.0 { 0.0 } else { 1e-3 * (w - 8.0) };
        let prior = |p: f64| gamma_quantile(3.0, 3.0 / 5.0, p);
        let none = fit_race_window(0, 5.0, 0.5, races);
        assert!((none.window_us / prior(0.5) - 1.0).abs() < 0.05, "{none:?}");
        assert!((none.low_us / prior(0.2) - 1.0).abs() < 0.05, "{none:?}");
        let impossible = fit_race_window(2, 5.0, 0.5, |_| 0.0);
        assert!((impossible.window_us - prior(0.5)).abs() < 1e-9, "{impossible:?}");
        // Two races the replay makes only at wide windows move it up, not down.
        assert!(fit_race_window(2, 5.0, 0.5, races).window_us > prior(0.5));
    }
}

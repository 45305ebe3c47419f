//! Offered load from measurable rates: Little's law.
//!
//! The loss formulas take the *offered load* `A` in erlangs: the mean number
//! of ports that would be held at once if no `PASV` were ever refused.
//! Little's law (`L = λ·W`, valid for any stationary system whatever the
//! distributions) gives it from two things a load test measures directly:
//! the `PASV` arrival rate and the mean time a port stays held, from the
//! `227` reply to the close of the data socket (not just the transfer).

/// Offered load in erlangs, `A = λ · E[H]`, from the `PASV` rate per second
/// and the mean port holding time in seconds.
///
/// Domain: a negative result (from a negative input) is clamped to 0, since
/// neither a rate nor a holding time can be negative; NaN propagates so that
/// a broken measurement is not mistaken for an idle server.
///
/// ```
/// use ftpswarm::model::offered_erlangs;
/// assert_eq!(offered_erlangs(50.0, 0.2), 10.0);
/// ```
#[must_use]
pub fn offered_erlangs(pasv_per_second: f64, mean_hold_seconds: f64) -> f64 {
    super::clamp_load(pasv_per_second * mean_hold_seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn littles_law() {
        assert_eq!(offered_erlangs(50.0, 0.2), 10.0);
        assert_eq!(offered_erlangs(1000.0, 0.1), 100.0);
        assert_eq!(offered_erlangs(0.0, 30.0), 0.0);
        assert_eq!(offered_erlangs(-5.0, 2.0), 0.0);
        assert!(offered_erlangs(f64::NAN, 2.0).is_nan());
    }
}

//! Engset: the blocking of a scanned passive range when the control
//! connections are few.
//!
//! Each control connection can hold at most one passive port. When there are
//! only `S` of them, every held port removes one potential requester, so the
//! `PASV` stream slows down exactly when the range is busiest and Erlang B
//! (which assumes the stream never slows) overstates blocking. The Engset
//! model captures this: an *idle* source (a connection without a port)
//! requests at rate `γ`, a held port is released at rate `μ`, and
//! `β = γ/μ` is the traffic offered per idle source.
//!
//! What a requester experiences is the *call congestion*: the state of the
//! range seen by an arriving source, which (by the arrival theorem for
//! finite sources) is the time-average state of a system with the *other*
//! `S − 1` sources. Hence the recursion runs over `S − 1` sources:
//! `E_0 = 1`, `E_k = (S−k)β·E_{k−1} / (k + (S−k)β·E_{k−1})`, evaluated through
//! `1/E` so that it only adds positive numbers.
//!
//! With at least as many ports as sources a free port always exists, so the
//! blocking is exactly zero: this is the finite-source face of the
//! one-pending-port-per-connection ceiling (see [`super::cap_width`]).

/// Traffic per idle source, `β`, from the total offered load and the number
/// of control connections.
///
/// Planning inputs are usually the total offered load `A` (Little's law,
/// mean ports busy if nothing were refused). Spread over `S` sources each
/// source is busy a fraction `a = A/S` of the time, and a source busy a
/// fraction `a` of the time while idle sources request at `β` has
/// `a = β/(1+β)`, so `β = a/(1−a)` (the "intended traffic" parameterisation).
///
/// Domain: NaN gives NaN; negative load is treated as zero; `A >= S` (or
/// `S = 0` with positive load) means every source always wants a port, which
/// gives `β = +inf`.
#[must_use]
pub fn engset_beta(offered_erlangs: f64, sources: u32) -> f64 {
    let offered = super::clamp_load(offered_erlangs);
    if offered.is_nan() {
        return f64::NAN;
    }
    if offered == 0.0 {
        return 0.0;
    }
    let per_source = offered / f64::from(sources);
    if per_source >= 1.0 {
        return f64::INFINITY;
    }
    per_source / (1.0 - per_source)
}

/// One step of the `1/E` recursion over `others = S − 1` sources.
///
/// `k <= others`, so at least one other source is still idle and the divisor
/// is positive. `β = 0` yields `+inf` (never blocked), `β = +inf` yields 1.
fn next_inverse(inverse: f64, k: u32, others: u32, beta: f64) -> f64 {
    let idle_others = f64::from(others - k + 1);
    1.0 + f64::from(k) / (idle_others * beta) * inverse
}

/// Probability that a `PASV` from one of `sources` control connections finds
/// all `width` ports of a scanned range held (Engset call congestion), when
/// each idle connection offers `beta` erlangs.
///
/// Domain: NaN `beta` gives NaN, negative `beta` is treated as zero,
/// `beta = +inf` means sources re-request instantly. `width >= sources`
/// gives exactly 0 (a free port always remains); `width = 0` with at least
/// one source gives 1.
///
/// ```
/// use ftpswarm::model::engset_blocking;
/// assert!((engset_blocking(50, 18, 0.25) - 0.003005).abs() < 1e-6);
/// ```
#[must_use]
pub fn engset_blocking(sources: u32, width: u32, beta: f64) -> f64 {
    if beta.is_nan() {
        return f64::NAN;
    }
    if width >= sources {
        return 0.0;
    }
    let beta = beta.max(0.0);
    let others = sources - 1;
    let mut inverse = 1.0;
    for k in 1..=width {
        inverse = next_inverse(inverse, k, others, beta);
        if inverse == f64::INFINITY {
            return 0.0;
        }
    }
    1.0 / inverse
}

/// Smallest width whose Engset blocking is at most `target`.
///
/// Blocking falls as the range widens and is exactly zero at
/// `width = sources`, so the answer always exists and never exceeds the
/// number of sources; a single pass of the recursion finds it.
///
/// Returns `Some(0)` when `target >= 1` or `beta == 0` (nothing is offered,
/// so no ports are needed beyond what the caller reserves), and `None` when
/// `beta` or `target` is NaN or `target` is negative. A zero target is
/// reachable here, unlike with Erlang B.
#[must_use]
pub fn engset_min_width(sources: u32, beta: f64, target: f64) -> Option<u32> {
    if beta.is_nan() || target.is_nan() || target < 0.0 {
        return None;
    }
    let beta = beta.max(0.0);
    if target >= 1.0 || beta == 0.0 || sources == 0 {
        return Some(0);
    }
    let others = sources - 1;
    let mut inverse = 1.0;
    for k in 1..=others {
        inverse = next_inverse(inverse, k, others, beta);
        if 1.0 / inverse <= target {
            return Some(k);
        }
    }
    Some(sources)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::erlang_b;

    fn assert_sig4(actual: f64, expected: f64) {
        assert!(
            ((actual - expected) / expected).abs() < 5e-4,
            "{actual} is not {expected} to 4 significant figures"
        );
    }

    #[test]
    fn check_values() {
        assert_sig4(engset_blocking(50, 18, 0.25), 0.003005);
        // Independently computed (Python, same recursion over S-1 sources).
        assert_sig4(engset_blocking(10, 5, 0.5), 0.1070);
        assert_sig4(engset_blocking(100, 20, 0.1), 3.423e-4);
        // One port, two sources: blocked iff the other holds it, which it
        // does a fraction β/(1+β) of the time.
        assert_sig4(engset_blocking(2, 1, 0.25), 0.2);
    }

    #[test]
    fn zero_when_ports_cover_sources() {
        assert_eq!(engset_blocking(50, 50, 0.25), 0.0);
        assert_eq!(engset_blocking(50, 80, 1e9), 0.0);
        assert_eq!(engset_blocking(0, 0, 1.0), 0.0);
        assert!(engset_blocking(50, 49, 0.25) > 0.0);
    }

    #[test]
    fn limits() {
        assert_eq!(engset_blocking(5, 0, 0.3), 1.0);
        assert_eq!(engset_blocking(5, 3, 0.0), 0.0);
        assert_eq!(engset_blocking(5, 3, -1.0), 0.0);
        assert_eq!(engset_blocking(5, 4, f64::INFINITY), 1.0);
        assert!(engset_blocking(5, 4, f64::NAN).is_nan());
        assert_sig4(engset_blocking(5, 4, 1e9), 1.0);
    }

    #[test]
    fn monotone_and_bounded() {
        for &s in &[2u32, 10, 50, 400] {
            for &beta in &[0.01, 0.25, 1.0, 5.0] {
                let mut previous = 1.0;
                for n in 0..=s {
                    let e = engset_blocking(s, n, beta);
                    assert!((0.0..=1.0).contains(&e));
                    assert!(e <= previous, "S={s} β={beta}: rises at width {n}");
                    previous = e;
                }
            }
            for n in 1..s {
                let mut previous = 0.0;
                for i in 1..=50 {
                    let e = engset_blocking(s, n, f64::from(i) * 0.05);
                    // Strictly rising until it underflows to zero.
                    assert!(e >= previous, "S={s} N={n}: falls with load");
                    assert!(previous == 0.0 || e > previous, "S={s} N={n}: flat");
                    previous = e;
                }
            }
        }
    }

    #[test]
    fn approaches_erlang_b_with_many_sources() {
        // S sources of β each, S → ∞ with S·β = A fixed, is a Poisson stream.
        let e = engset_blocking(1_000_000, 18, 10.0 / 1_000_000.0);
        assert!((e - erlang_b(10.0, 18)).abs() < 1e-5);
        // And finite sources block less than the Poisson stream of equal load.
        let a = 10.0;
        let s = 30;
        assert!(engset_blocking(s, 18, engset_beta(a, s)) < erlang_b(a, 18));
    }

    #[test]
    fn beta_from_load() {
        assert_eq!(engset_beta(10.0, 50), 0.25);
        assert_eq!(engset_beta(0.0, 50), 0.0);
        assert_eq!(engset_beta(-2.0, 50), 0.0);
        assert_eq!(engset_beta(50.0, 50), f64::INFINITY);
        assert_eq!(engset_beta(1.0, 0), f64::INFINITY);
        assert!(engset_beta(f64::NAN, 5).is_nan());
    }

    #[test]
    fn inverse_is_tight() {
        for &s in &[3u32, 20, 50, 500] {
            for &beta in &[0.05, 0.25, 2.0] {
                for &t in &[0.2, 0.01, 0.001, 1e-9] {
                    let n = engset_min_width(s, beta, t).unwrap_or(u32::MAX);
                    assert!(n >= 1 && n <= s);
                    assert!(engset_blocking(s, n, beta) <= t);
                    assert!(engset_blocking(s, n - 1, beta) > t);
                }
            }
        }
        assert_eq!(engset_min_width(50, 0.25, 0.003006), Some(18));
        assert_eq!(engset_min_width(50, 0.25, 0.003005), Some(19));
        assert_eq!(engset_min_width(50, 0.25, 0.0), Some(50));
        assert_eq!(engset_min_width(50, f64::INFINITY, 0.5), Some(50));
    }

    #[test]
    fn inverse_domain() {
        assert_eq!(engset_min_width(50, 0.25, 1.0), Some(0));
        assert_eq!(engset_min_width(50, 0.0, 0.01), Some(0));
        assert_eq!(engset_min_width(0, 0.3, 0.01), Some(0));
        assert_eq!(engset_min_width(50, 0.25, -0.5), None);
        assert_eq!(engset_min_width(50, f64::NAN, 0.01), None);
        assert_eq!(engset_min_width(50, 0.25, f64::NAN), None);
    }
}

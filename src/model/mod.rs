//! Passive-port capacity model: how wide a passive port range must be so that
//! a `PASV`/`EPSV` fails (`425`) no more often than a chosen target.
//!
//! # The reasoning in one page
//!
//! Every passive data connection holds one port of the server's passive range
//! from the moment the server answers `PASV` until the transfer's socket is
//! closed. Port holding is therefore a loss system: a `PASV` that finds no
//! usable port is refused, it does not wait. Three facts turn that into
//! numbers:
//!
//! * **Little's law** gives the load: the mean number of ports busy at once,
//!   the *offered load* in erlangs, is `A = λ · E[H]`, the `PASV` arrival rate
//!   times the mean time a port is held (see [`offered_erlangs`]). Only the
//!   mean of the holding time matters for the blocking of the models below
//!   (they are insensitive to its distribution), which is why measured means
//!   are enough to plan with.
//! * **How the server picks a port** decides which loss formula applies
//!   ([`PortPickPolicy`]):
//!   * ProFTPD and pyftpdlib *scan* the whole range and only fail when every
//!     port is held. They then do not answer `425` but fall back to a
//!     kernel-assigned port outside the range, which a firewall or NAT that
//!     forwards only the range will drop: the "blocking" of these servers is
//!     the share of such out-of-range answers. Scanning is full
//!     availability: **Erlang B** ([`erlang_b`]) for many
//!     clients, **Engset** ([`engset_blocking`]) when there are so few control
//!     connections that each held port visibly reduces the arrival rate.
//!   * vsftpd and libunftp try a fixed number of *random* ports (9: both
//!     count a retry budget of 10 down to 1) and answer `425` when all of
//!     them are held, even though free ports remain.
//!     Their blocking ([`random_try_blocking`]) is a birth–death chain whose
//!     arrivals are thinned by the chance `(n/N)^k` that k random picks all
//!     hit the n held ports of N, and it needs a much wider range than Erlang
//!     B for the same target.
//!   * Pure-FTPd caps the number of clients it admits at half the passive
//!     range, so for it the binding limit is admission, not port picking:
//!     plan its width as at least twice the clients it must accept at once.
//! * **One pending port per control connection** bounds everything: a
//!   session cannot hold two passive ports at once, so a scanning server
//!   never needs more ports than control connections ([`cap_width`]), and a
//!   random-try server never needs more than the width whose worst case
//!   already meets the target ([`random_try_width_ceiling`]).
//!
//! Targets are usually stated per session ("at most 1 % of sessions see a
//! `425`"); a session opening n data connections fails if any of them does,
//! so [`per_pasv_target`] turns a session target into the stricter per-`PASV`
//! target the formulas take.
//!
//! [`poisson_quantile`] is a cross-check: with unlimited ports the number in
//! use is Poisson(A), and Erlang B blocking at width `N` never exceeds
//! `P(X >= N)`, so the Erlang B width is at most the Poisson quantile plus one.
//!
//! Everything here is pure `f64` arithmetic on `std`: no I/O, no allocation
//! except the curve helper, and no panics. Domains are documented on each
//! function; out-of-domain inputs are clamped or answered with `None`.

pub mod ceiling;
pub mod engset;
pub mod erlang;
pub mod hold;
pub mod load;
pub mod poisson;
pub mod policy;
pub mod random_try;
pub mod target;

pub use ceiling::{cap_width, random_try_width_ceiling};
pub use engset::{engset_beta, engset_blocking, engset_min_width};
pub use erlang::{erlang_b, erlang_b_curve, erlang_b_min_width};
pub use hold::HoldPolicy;
pub use load::offered_erlangs;
pub use poisson::poisson_quantile;
pub use policy::{blocking, capped_min_width, min_width, PortPickPolicy};
pub use random_try::{random_try_blocking, random_try_fail_probability, random_try_min_width};
pub use target::{per_pasv_target, session_failure};

/// Negative offered load cannot occur physically; treating it as "no traffic"
/// keeps every formula inside its domain. NaN is passed through so that a
/// broken measurement stays visible instead of silently becoming zero load.
fn clamp_load(offered_erlangs: f64) -> f64 {
    if offered_erlangs.is_nan() {
        offered_erlangs
    } else {
        offered_erlangs.max(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::clamp_load;

    #[test]
    fn clamp_load_keeps_nan_and_zeroes_negatives() {
        assert!(clamp_load(f64::NAN).is_nan());
        assert_eq!(clamp_load(-3.0), 0.0);
        assert_eq!(clamp_load(2.5), 2.5);
        assert_eq!(clamp_load(f64::INFINITY), f64::INFINITY);
    }
}

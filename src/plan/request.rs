//! What a plan is asked for: the target load and grade of service, the server overrides, and
//! their validation with the flag and the allowed values in every error.

use super::observed;
use super::placement;
use crate::model::HoldPolicy;
use crate::model::PortPickPolicy;
use crate::profile::Profile;
use crate::sim::server::{HoldEnd, PickOrder, ServerModel, Source, Sourced};
use crate::sim::ServerKind;
use std::time::Duration;

// Defaults of a plan, which the command line shows as its own.
/// Share of sessions allowed to fail.
pub const DEFAULT_GOS: f64 = 0.01;
/// Load growth planned for (1 = the load as asked).
pub const DEFAULT_GROWTH: f64 = 1.0;
/// Length of the busiest window the PASV rate is taken from.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(10);
/// Seed of the simulator's random choices.
pub const DEFAULT_SEED: u64 = 1;

/// The grade of service: how often a PASV may fail.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum GradeOfService {
    /// Share of sessions allowed to see at least one failed PASV.
    PerSession(f64),
    PerPasv(f64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct PlanRequest {
    /// Concurrent sessions at the target; default: what the run had.
    pub users: Option<u32>,
    pub parallel: Option<u32>,
    pub files: Option<u32>,
    pub gos: GradeOfService,
    pub growth: f64,
    /// Which server the run drove, when its greeting does not say (or says wrong).
    pub server: Option<ServerKind>,
    pub pick: Option<PortPickPolicy>,
    /// The hold the analytic fit uses (the ledger's verdict unless given).
    pub hold_policy: Option<HoldPolicy>,
    /// When the server's hold on a port ends, for the simulator.
    pub hold_end: Option<HoldEnd>,
    /// Extra time the server keeps a port after the hold end (e.g. TIME_WAIT).
    pub release_lag: Option<Duration>,
    /// The server's base bind-race window, when given rather than fitted.
    pub race_window: Option<Duration>,
    pub window: Duration,
    pub range_start: Option<u16>,
    /// Replays averaged per width; default: by scale (4 for one copy of the run).
    pub replications: Option<u32>,
    pub seed: u64,
    /// What `ftpswarm probe` measured of the server; the command line still wins.
    pub probed: Option<Probed>,
    /// Widths to predict besides the curve around the recommendation (`--at`).
    pub also_predict: Vec<u32>,
    /// The server's OS, whose ephemeral range the recommended range avoids.
    pub server_os: placement::ServerOs,
}

/// Server behaviour a probe measured.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Probed {
    /// The fingerprint file, named in every input it sets.
    pub file: String,
    pub pick: Option<PortPickPolicy>,
    pub hold_end: Option<HoldEnd>,
    pub on_exhausted: Option<crate::sim::server::OnExhausted>,
    pub on_refusal: Option<crate::sim::server::OnRefusal>,
}

impl Default for PlanRequest {
    fn default() -> Self {
        PlanRequest {
            users: None,
            parallel: None,
            files: None,
            gos: GradeOfService::PerSession(DEFAULT_GOS),
            growth: DEFAULT_GROWTH,
            server: None,
            pick: None,
            hold_policy: None,
            hold_end: None,
            release_lag: None,
            race_window: None,
            window: DEFAULT_WINDOW,
            range_start: None,
            replications: None,
            seed: DEFAULT_SEED,
            probed: None,
            also_predict: Vec::new(),
            server_os: placement::ServerOs::default(),
        }
    }
}

/// What a what-if plan needs instead of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct WhatIf {
    pub profile: Profile,
    /// Mean time a port is held per PASV.
    pub hold: Duration,
    /// Mean time one file takes on a connection (transfer plus protocol); default: the hold.
    pub transfer_time: Option<Duration>,
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("{flag}: {message}")]
    Input { flag: &'static str, message: String },
    #[error(transparent)]
    Observed(#[from] observed::ObservedError),
    #[error("{0}")]
    Model(String),
}

pub(super) fn input(flag: &'static str, message: impl Into<String>) -> PlanError {
    PlanError::Input {
        flag,
        message: message.into(),
    }
}

/// The most ports a range can have.
pub(super) const MAX_WIDTH: u32 = 64_512;

impl PlanRequest {
    pub fn validate(&self) -> Result<(), PlanError> {
        let (flag, g) = match self.gos {
            GradeOfService::PerSession(g) => ("--gos", g),
            GradeOfService::PerPasv(g) => ("--gos-per-pasv", g),
        };
        if !(g > 0.0 && g < 1.0) {
            return Err(input(
                flag,
                format!("is {g}; allowed: more than 0 and less than 1 (0.01 = 1%)"),
            ));
        }
        if !(self.growth.is_finite() && self.growth > 0.0 && self.growth <= 1000.0) {
            return Err(input(
                "--growth",
                format!("is {}; allowed: more than 0, at most 1000 (1.5 = +50%)", self.growth),
            ));
        }
        if self.users == Some(0) {
            return Err(input("--users", "is 0; allowed: 1 or more concurrent sessions"));
        }
        if self
            .parallel
            .is_some_and(|p| p == 0 || p > crate::profile::MAX_PARALLEL)
        {
            return Err(input(
                "--parallel",
                format!("allowed: 1 to {} connections per session", crate::profile::MAX_PARALLEL),
            ));
        }
        if self.files == Some(0) {
            return Err(input("--files", "is 0; allowed: 1 or more files per session"));
        }
        if self.window.is_zero() {
            return Err(input("--window", "is 0; allowed: a positive duration such as \"10s\""));
        }
        if self.replications.is_some_and(|r| r == 0 || r > 100) {
            return Err(input("--replications", "allowed: 1 to 100"));
        }
        Ok(())
    }
}

/// The pick order of an analytic policy, for `--pick` and probe results.
fn pick_order(p: PortPickPolicy) -> PickOrder {
    match p {
        PortPickPolicy::RandomTries { tries } => PickOrder::RandomTries { tries },
        PortPickPolicy::Scan | PortPickPolicy::ScanFewSources { .. } => PickOrder::AnyFree,
    }
}

/// The server model for a plan: the identified server's known behaviour, then what the
/// command line says.
pub fn server_model(kind: ServerKind, req: &PlanRequest) -> ServerModel {
    let mut m = ServerModel::known(kind);
    if let Some(p) = &req.probed {
        let by = || Source::Measured(format!("by probe ({})", p.file));
        if let Some(pick) = p.pick {
            m.pick = Sourced::new(pick_order(pick), by());
        }
        if let Some(h) = p.hold_end {
            // The probe tells accept from transfer end; a longer known hold (Pure-FTPd's idle
            // listener) is kept, since the probe's test cannot see it.
            if h.rank() > m.hold_end.value.rank() || m.hold_end.source.is_assumed() {
                m.hold_end = Sourced::new(h, by());
            }
        }
        if let Some(x) = p.on_exhausted {
            m.on_exhausted = Sourced::new(x, by());
        }
        if let Some(x) = p.on_refusal {
            m.on_refusal = Sourced::new(x, by());
        }
    }
    if let Some(p) = req.pick {
        m.pick = Sourced::new(pick_order(p), Source::Given);
    }
    if let Some(h) = req.hold_end {
        m.hold_end = Sourced::new(h, Source::Given);
    }
    if let Some(lag) = req.release_lag {
        m.release_lag_us = Sourced::new(lag.as_secs_f64() * 1e6, Source::Given);
    }
    if let Some(w) = req.race_window {
        m.collision_window_us = Sourced::new(w.as_secs_f64() * 1e6, Source::Given);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::server::{OnExhausted, OnRefusal};

    fn flag_refused(req: PlanRequest) -> Option<&'static str> {
        match req.validate() {
            Ok(()) => None,
            Err(PlanError::Input { flag, message }) => {
                assert!(message.contains("allowed"), "{flag}: {message}");
                Some(flag)
            }
            Err(other) => panic!("not an input error: {other}"),
        }
    }

    #[test]
    fn each_input_is_checked_at_both_edges_of_what_it_allows() {
        let req = PlanRequest::default;
        assert_eq!(flag_refused(req()), None);
        for (g, ok) in [
            (0.0, false),
            (1e-9, true),
            (0.999, true),
            (1.0, false),
            (f64::NAN, false),
        ] {
            let refused = if ok { None } else { Some("--gos") };
            let gos = GradeOfService::PerSession(g);
            assert_eq!(flag_refused(PlanRequest { gos, ..req() }), refused, "gos {g}");
            let gos = GradeOfService::PerPasv(g);
            let refused = refused.map(|_| "--gos-per-pasv");
            assert_eq!(flag_refused(PlanRequest { gos, ..req() }), refused, "per pasv {g}");
        }
        for (growth, ok) in [
            (0.0, false),
            (1e-6, true),
            (1000.0, true),
            (1000.001, false),
            (f64::INFINITY, false),
            (f64::NAN, false),
        ] {
            let refused = (!ok).then_some("--growth");
            assert_eq!(
                flag_refused(PlanRequest { growth, ..req() }),
                refused,
                "growth {growth}"
            );
        }
        assert_eq!(
            flag_refused(PlanRequest {
                users: Some(0),
                ..req()
            }),
            Some("--users")
        );
        assert_eq!(
            flag_refused(PlanRequest {
                users: Some(1),
                ..req()
            }),
            None
        );
        for (p, ok) in [(0, false), (1, true), (crate::profile::MAX_PARALLEL, true), (65, false)] {
            let refused = (!ok).then_some("--parallel");
            assert_eq!(
                flag_refused(PlanRequest {
                    parallel: Some(p),
                    ..req()
                }),
                refused,
                "parallel {p}"
            );
        }
        assert_eq!(
            flag_refused(PlanRequest {
                files: Some(0),
                ..req()
            }),
            Some("--files")
        );
        assert_eq!(
            flag_refused(PlanRequest {
                files: Some(1),
                ..req()
            }),
            None
        );
        let window = Duration::ZERO;
        assert_eq!(flag_refused(PlanRequest { window, ..req() }), Some("--window"));
        let window = Duration::from_micros(1);
        assert_eq!(flag_refused(PlanRequest { window, ..req() }), None);
        for (r, ok) in [(0, false), (1, true), (100, true), (101, false)] {
            let refused = (!ok).then_some("--replications");
            let replications = Some(r);
            assert_eq!(
                flag_refused(PlanRequest { replications, ..req() }),
                refused,
                "replications {r}"
            );
        }
    }

    #[test]
    fn a_probe_sets_what_it_measured_and_the_command_line_wins_over_it() {
        let probed = Probed {
            file: "probe.json".into(),
            pick: Some(PortPickPolicy::RandomTries { tries: 3 }),
            hold_end: Some(HoldEnd::DataConnected),
            on_exhausted: Some(OnExhausted::GrantOutside),
            on_refusal: Some(OnRefusal::DropConnection),
        };
        let measured = Source::Measured("by probe (probe.json)".into());
        let req = PlanRequest {
            probed: Some(probed.clone()),
            ..PlanRequest::default()
        };
        // Nothing was known of this server: every measurement is taken.
        let m = server_model(ServerKind::Unknown, &req);
        assert_eq!(m.pick.value, PickOrder::RandomTries { tries: 3 });
        assert_eq!(m.pick.source, measured);
        assert_eq!(
            (m.hold_end.value, &m.hold_end.source),
            (HoldEnd::DataConnected, &measured)
        );
        assert_eq!(
            (m.on_exhausted.value, &m.on_exhausted.source),
            (OnExhausted::GrantOutside, &measured)
        );
        assert_eq!(
            (m.on_refusal.value, &m.on_refusal.source),
            (OnRefusal::DropConnection, &measured)
        );
        // A scan, probed, is a scan over any free port.
        let scan = Probed {
            pick: Some(PortPickPolicy::Scan),
            ..probed.clone()
        };
        let m = server_model(
            ServerKind::Unknown,
            &PlanRequest {
                probed: Some(scan),
                ..req.clone()
            },
        );
        assert_eq!(m.pick.value, PickOrder::AnyFree);
        // Pure-FTPd's known idle hold is longer than the probe can see, and stays.
        let known = ServerModel::known(ServerKind::PureFtpd);
        let m = server_model(ServerKind::PureFtpd, &req);
        assert_eq!(m.hold_end, known.hold_end);
        // vsftpd's known hold to its 226 gives way to a longer measured one, not a shorter one.
        let known = ServerModel::known(ServerKind::Vsftpd);
        assert_eq!(server_model(ServerKind::Vsftpd, &req).hold_end, known.hold_end);
        let longer = Probed {
            hold_end: Some(HoldEnd::NextCommand),
            ..probed.clone()
        };
        let m = server_model(
            ServerKind::Vsftpd,
            &PlanRequest {
                probed: Some(longer),
                ..req.clone()
            },
        );
        assert_eq!(
            (m.hold_end.value, m.hold_end.source),
            (HoldEnd::NextCommand, measured.clone())
        );
        let same = Probed {
            hold_end: Some(HoldEnd::FinalReply),
            ..probed
        };
        let m = server_model(
            ServerKind::Vsftpd,
            &PlanRequest {
                probed: Some(same),
                ..req.clone()
            },
        );
        assert_eq!(m.hold_end, known.hold_end, "an equal hold keeps its known source");

        // The command line over the probe.
        let given = PlanRequest {
            pick: Some(PortPickPolicy::ScanFewSources { sources: 4 }),
            hold_end: Some(HoldEnd::DataClosed),
            release_lag: Some(Duration::from_micros(1500)),
            race_window: Some(Duration::from_micros(7)),
            ..req
        };
        let m = server_model(ServerKind::Unknown, &given);
        assert_eq!((m.pick.value, &m.pick.source), (PickOrder::AnyFree, &Source::Given));
        assert_eq!(
            (m.hold_end.value, &m.hold_end.source),
            (HoldEnd::DataClosed, &Source::Given)
        );
        assert_eq!(
            (m.release_lag_us.value, &m.release_lag_us.source),
            (1500.0, &Source::Given)
        );
        assert_eq!(
            (m.collision_window_us.value, &m.collision_window_us.source),
            (7.0, &Source::Given)
        );
        // Without a probe or flags, the known model as it is.
        assert_eq!(
            server_model(ServerKind::Proftpd, &PlanRequest::default()),
            ServerModel::known(ServerKind::Proftpd)
        );
    }
}

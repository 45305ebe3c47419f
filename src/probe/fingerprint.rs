//! The fingerprint: everything the probe found, as JSON and as text, and what it means for
//! the sizing model.

use super::epsv::Epsv;
use super::exhaustion::{AtExhaustion, Exhaustion};
use super::lifetime::{Lifetime, LifetimeVerdict};
use super::pick::PickOrder;
use super::reuse::{Reuse, ReuseVerdict};
use super::source::{ForeignSource, ForeignVerdict};
use super::tries::TryModel;
use crate::event::PassiveCommand;
use crate::model::HoldPolicy;
use crate::model::PortPickPolicy;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RangeSource {
    /// `--range`.
    Given,
    /// The smallest range holding the ports seen: may be narrower than the real one.
    Inferred,
    /// No port was seen.
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Fingerprint {
    pub schema_version: u32,
    pub tool_version: String,
    /// The target without its password.
    pub target: String,
    pub passive_command: PassiveCommand,
    /// The passive range the results refer to, e.g. `"30000-30099"`.
    pub range: Option<String>,
    pub range_source: RangeSource,
    pub width: Option<u32>,
    /// Most PASVs the probe left pending at once.
    pub max_pending: u32,
    pub pick_order: PickOrder,
    pub epsv: Epsv,
    pub exhaustion: Exhaustion,
    pub reuse: Reuse,
    pub abandoned_lifetime: Lifetime,
    pub foreign_source: ForeignSource,
    /// FTPS targets only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<super::TlsFacts>,
    pub elapsed_s: f64,
    pub notes: Vec<String>,
}

impl Fingerprint {
    /// The port-pick policy for `plan`: a scan, or k random tries with the k of
    /// [`super::TryEstimate::tries_to_plan_with`] (9 unless the estimate rules it out).
    /// `None` when exhaustion could not tell.
    pub fn pick_policy(&self) -> Option<PortPickPolicy> {
        let est = self.exhaustion.estimate.as_ref()?;
        match est.model {
            TryModel::Scan => Some(PortPickPolicy::Scan),
            TryModel::RandomTries => est
                .tries_to_plan_with()
                .map(|tries| PortPickPolicy::RandomTries { tries }),
            TryModel::Undetermined => None,
        }
    }

    /// Everything `plan` takes from a fingerprint, named after its file.
    pub fn probed(&self, file: &str) -> crate::plan::Probed {
        use crate::sim::server::{HoldEnd, OnExhausted, OnRefusal};
        let (on_exhausted, on_refusal) = match &self.exhaustion.at_exhaustion {
            AtExhaustion::Refuses { session_dropped, .. } => (
                Some(OnExhausted::Refuse),
                Some(if *session_dropped {
                    OnRefusal::DropConnection
                } else {
                    OnRefusal::Continue
                }),
            ),
            AtExhaustion::FallsBackOutsideRange { .. } => (Some(OnExhausted::GrantOutside), None),
            AtExhaustion::DropsSession => (Some(OnExhausted::Refuse), Some(OnRefusal::DropConnection)),
            _ => (None, None),
        };
        crate::plan::Probed {
            file: file.to_string(),
            pick: self.pick_policy(),
            hold_end: self.hold_policy().map(|h| match h {
                HoldPolicy::UntilTransferStarts => HoldEnd::DataConnected,
                HoldPolicy::UntilTransferEnds | HoldPolicy::ThroughTimeWait { .. } => HoldEnd::FinalReply,
            }),
            on_exhausted,
            on_refusal,
        }
    }

    /// The hold policy for `plan`, from the reuse test.
    pub fn hold_policy(&self) -> Option<HoldPolicy> {
        match self.reuse.verdict {
            ReuseVerdict::ReleasedAtAccept => Some(HoldPolicy::UntilTransferStarts),
            ReuseVerdict::HeldUntilTransferEnds => Some(HoldPolicy::UntilTransferEnds),
            ReuseVerdict::Undetermined | ReuseVerdict::Skipped => None,
        }
    }
}

/// `--pick` spelling of a policy, as `plan` takes it.
fn pick_arg(p: PortPickPolicy) -> String {
    match p {
        PortPickPolicy::Scan => "scan".into(),
        PortPickPolicy::RandomTries { tries } => format!("random:{tries}"),
        PortPickPolicy::ScanFewSources { .. } => "scan".into(),
    }
}

const INDENT: &str = "                 ";

/// The fingerprint as text for a person.
pub fn render(f: &Fingerprint) -> String {
    let mut s = String::new();
    let range = match (&f.range, f.range_source) {
        (Some(r), RangeSource::Given) => format!("range {r}, {} ports", f.width.unwrap_or(0)),
        (Some(r), _) => format!("range {r} inferred from the ports seen (give --range)"),
        (None, _) => "range unknown".into(),
    };
    let _ = writeln!(
        s,
        "ftpswarm probe {} ({range}; {}; {:.1} s)",
        f.target,
        f.passive_command.as_str(),
        f.elapsed_s
    );
    render_pick(&mut s, f);
    let epsv = match (f.epsv.supported, f.epsv.code) {
        (Some(true), _) => "supported (229)".to_string(),
        (Some(false), Some(c)) => format!("not supported ({c} {})", f.epsv.text),
        _ => format!("unknown: {}", f.epsv.text),
    };
    let _ = writeln!(s, "EPSV             {epsv}");
    render_exhaustion(&mut s, f);
    let reuse = match f.reuse.verdict {
        ReuseVerdict::ReleasedAtAccept => "released at accept (before the transfer ends)",
        ReuseVerdict::HeldUntilTransferEnds => "held until the transfer ends",
        ReuseVerdict::Undetermined => "undetermined",
        ReuseVerdict::Skipped => "skipped",
    };
    let _ = writeln!(s, "port in use      {reuse}: {}", f.reuse.detail);
    let l = &f.abandoned_lifetime;
    let life = match (l.verdict, l.lower_s, l.upper_s) {
        (LifetimeVerdict::Between, Some(a), Some(b)) => format!("between {a} and {b} s"),
        (LifetimeVerdict::LongerThan, _, _) => format!("longer than {} s (--max-wait)", l.max_wait_s),
        (LifetimeVerdict::ShorterThan, _, Some(b)) => format!("shorter than {b} s"),
        (LifetimeVerdict::Skipped, _, _) => "skipped".into(),
        _ => "undetermined".into(),
    };
    let _ = writeln!(s, "abandoned PASV   listener kept {life}: {}", l.detail);
    let foreign = match f.foreign_source.verdict {
        ForeignVerdict::Refused => "refused",
        ForeignVerdict::Accepted => "accepted",
        ForeignVerdict::Undetermined => "undetermined",
        ForeignVerdict::Skipped => "skipped",
    };
    let _ = writeln!(s, "foreign source   {foreign}: {}", f.foreign_source.detail);
    if let Some(t) = &f.tls {
        let prot_c = match t.prot_c_accepted {
            Some(true) => "accepted",
            Some(false) => "refused",
            None => "undetermined",
        };
        let _ = writeln!(s, "PROT C           {prot_c}: {}", t.prot_c_reply);
        let reuse = match t.session_reuse_required {
            Some(true) => "required",
            Some(false) => "not required",
            None => "undetermined",
        };
        let _ = writeln!(s, "TLS reuse        {reuse}: {}", t.reuse_detail);
    }
    let plan: Vec<String> = f
        .pick_policy()
        .map(|p| format!("--pick {}", pick_arg(p)))
        .into_iter()
        .chain(f.hold_policy().map(|h| {
            let arg = match h {
                HoldPolicy::UntilTransferStarts => "start",
                _ => "end",
            };
            format!("--hold-policy {arg}")
        }))
        .collect();
    if !plan.is_empty() {
        let _ = writeln!(s, "for plan         {}", plan.join(" "));
    }
    for (i, note) in f.notes.iter().enumerate() {
        let label = if i == 0 { "notes            " } else { INDENT };
        let _ = writeln!(s, "{label}{note}");
    }
    s
}

fn render_pick(s: &mut String, f: &Fingerprint) {
    let p = &f.pick_order;
    let shown: Vec<String> = p.ports.iter().take(16).map(u16::to_string).collect();
    let more = if p.ports.len() > 16 { " …" } else { "" };
    let _ = writeln!(s, "pick order       {}: {}", p.verdict.as_str(), p.detail);
    let _ = writeln!(
        s,
        "{INDENT}{} picks, {} distinct, {} +1 steps, {} repeats of the previous port: {}{more}",
        p.ports.len(),
        p.distinct,
        p.successor_steps,
        p.same_as_previous,
        shown.join(" ")
    );
}

fn render_exhaustion(s: &mut String, f: &Fingerprint) {
    let e = &f.exhaustion;
    let what = match &e.at_exhaustion {
        AtExhaustion::Refuses {
            code,
            text,
            session_dropped,
        } => format!(
            "refuses: {code} {text:?}{}",
            if *session_dropped {
                ", then drops the session"
            } else {
                ", session kept"
            }
        ),
        AtExhaustion::FallsBackOutsideRange { port } => {
            format!("falls back to a port outside the range (e.g. {port}): a firewall would drop it")
        }
        AtExhaustion::DropsSession => "drops the session without a reply".into(),
        AtExhaustion::Waits { after_s } => format!("does not answer (waited {after_s:.0} s)"),
        AtExhaustion::Mixed { answers } => format!("answers differ: {}", answers.join("; ")),
        AtExhaustion::NotReached { reason } => format!("not reached: {reason}"),
    };
    let _ = writeln!(s, "exhaustion       {what}");
    if !e.first_failure_held.is_empty() {
        let firsts: Vec<String> = e
            .first_failure_held
            .iter()
            .map(|n| n.map_or("-".into(), |n| n.to_string()))
            .collect();
        let rounds = match e.rounds_done {
            1 => "round 1".to_string(),
            n => format!("rounds 1-{n}"),
        };
        let _ = writeln!(
            s,
            "{INDENT}first failure with n = {} of {} ports held ({rounds})",
            firsts.join(", "),
            e.width.unwrap_or(0),
        );
    }
    if let Some(est) = &e.estimate {
        let line = match est.model {
            TryModel::Scan => format!(
                "scans the range: no failure before it was full in {} requests (a 9-try server would show that with p = {:.1e})",
                est.requests, est.p_no_failure_if_9_tries
            ),
            TryModel::RandomTries => {
                let hi = match est.k_high {
                    Some(h) if h >= super::tries::MAX_K => "≥".to_string() + &est.k_low.unwrap_or(1).to_string(),
                    Some(h) => format!("{}–{h}", est.k_low.unwrap_or(1)),
                    None => "?".into(),
                };
                format!(
                    "random tries: k̂ = {} (95% interval {hi}) from {} requests, {} failed with ports free",
                    est.k_hat.map_or("?".into(), |k| k.to_string()),
                    est.requests,
                    est.failures_before_full
                )
            }
            TryModel::Undetermined => format!("scan or random tries: undetermined from {} requests", est.requests),
        };
        let _ = writeln!(s, "{INDENT}{line}");
        let _ = writeln!(s, "{INDENT}({})", est.caveat);
    }
    for n in &e.notes {
        let _ = writeln!(s, "{INDENT}{n}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::pick::classify;
    use std::time::Duration;

    /// A probe where nothing could be measured still renders, round-trips and claims nothing.
    #[test]
    fn an_empty_fingerprint_claims_nothing() {
        let f = Fingerprint {
            schema_version: crate::rundir::SCHEMA_VERSION,
            tool_version: "0".into(),
            target: "ftp://u@127.0.0.1:21".into(),
            passive_command: PassiveCommand::Pasv,
            range: None,
            range_source: RangeSource::Unknown,
            width: None,
            max_pending: 5,
            pick_order: classify(&[], None),
            epsv: Epsv {
                supported: None,
                code: None,
                text: "timeout".into(),
            },
            exhaustion: Exhaustion::skipped("no range known", 5),
            reuse: Reuse::skipped("no range known"),
            abandoned_lifetime: Lifetime::skipped(Duration::ZERO, "--max-wait is 0"),
            foreign_source: ForeignSource::result(ForeignVerdict::Skipped, "not loopback"),
            tls: None,
            elapsed_s: 0.5,
            notes: vec!["a note".into()],
        };
        assert_eq!(f.pick_policy(), None);
        assert_eq!(f.hold_policy(), None);
        let text = render(&f);
        assert!(text.contains("range unknown") && text.contains("not reached") && text.contains("a note"));
        assert!(!text.contains("for plan"), "{text}");
        let back: Fingerprint = serde_json::from_str(&serde_json::to_string(&f).unwrap()).unwrap();
        assert_eq!(back, f);
    }
}

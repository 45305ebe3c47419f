//! How long a server keeps a passive port after granting it: with the pick policy
//! ([`super::PortPickPolicy`]), what decides how many ports a load holds.

use serde::{Deserialize, Serialize};

/// How long the server keeps a port after granting it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", tag = "policy")]
pub enum HoldPolicy {
    /// Until the transfer starts (the listener is closed once the data connection is taken;
    /// libunftp, pyftpdlib, ProFTPD).
    UntilTransferStarts,
    /// Until the transfer ends (vsftpd keeps its listener).
    UntilTransferEnds,
    /// Until the transfer ends plus TIME_WAIT on the server's side of connections the server
    /// closes first (RETR, LIST), for servers that bind without SO_REUSEADDR.
    ThroughTimeWait { time_wait_s: f64 },
}

impl HoldPolicy {
    /// The name recommendation.json uses, with TIME_WAIT's length when it applies.
    pub fn describe(&self) -> String {
        match self {
            HoldPolicy::UntilTransferStarts => "until_transfer_starts".into(),
            HoldPolicy::UntilTransferEnds => "until_transfer_ends".into(),
            HoldPolicy::ThroughTimeWait { time_wait_s } => format!("through_time_wait (TIME_WAIT {time_wait_s} s)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_policy_is_described_by_the_name_its_json_carries() {
        for (policy, extra) in [
            (HoldPolicy::UntilTransferStarts, ""),
            (HoldPolicy::UntilTransferEnds, ""),
            (HoldPolicy::ThroughTimeWait { time_wait_s: 60.0 }, " (TIME_WAIT 60 s)"),
        ] {
            let json = serde_json::to_value(policy).unwrap_or_default();
            let Some(name) = json.get("policy").and_then(|v| v.as_str()) else {
                panic!("{policy:?} serialises as {json}")
            };
            assert_eq!(policy.describe(), format!("{name}{extra}"));
        }
    }
}

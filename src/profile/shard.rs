//! Sharded runs: one load spread over several load machines (`--shard I/N`), each running its
//! share, so that `ftpswarm merge` can put the shards back together as one run.
//!
//! The shares are interleaved, not cut into blocks: shard `I` takes the sessions, closed-model
//! workers, source addresses, session ids and connection ids whose global number is `I`
//! modulo `N`. Merged, the shards are the whole load with no id used twice, and any subset
//! of shards is an even sample of it.

use super::{LoadModel, Profile};
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// Most shards one load can be cut into.
pub const MAX_SHARDS: u32 = 10_000;

/// Shard `index` of `count` (0-based, as Kubernetes' `JOB_COMPLETION_INDEX`), written `"I/N"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// The unsharded run: shard 0 of 1.
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// The `local`-th (1-based) id this shard hands out, as a number unique across all shards.
    pub fn global_id(self, local: u64) -> u64 {
        local
            .saturating_sub(1)
            .saturating_mul(u64::from(self.count))
            .saturating_add(u64::from(self.index) + 1)
    }

    /// This shard's part of `total` things dealt round-robin (the first `total % count`
    /// shards get one more).
    pub fn share_of(self, total: u64) -> u64 {
        let (n, i) = (u64::from(self.count), u64::from(self.index));
        total / n + u64::from(i < total % n)
    }

    /// Where this shard's `local`-th of `local_count` evenly spaced starts falls, as a
    /// fraction of the whole spacing: the shards' starts interleave instead of coinciding.
    pub fn stagger(self, local: u64, local_count: u64) -> f64 {
        (local as f64 + f64::from(self.index) / f64::from(self.count)) / local_count.max(1) as f64
    }

    /// Whether this is a real shard of a larger load.
    pub fn is_split(self) -> bool {
        self.count > 1
    }
}

impl Default for Shard {
    fn default() -> Self {
        Shard::WHOLE
    }
}

impl FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let help = "write it as I/N, shard I (0-based, e.g. $JOB_COMPLETION_INDEX) of N, like \"0/4\"";
        let (i, n) = s
            .trim()
            .split_once('/')
            .ok_or_else(|| format!("{s:?} is not I/N; {help}"))?;
        let index: u32 = i
            .trim()
            .parse()
            .map_err(|_| format!("{i:?} in {s:?} is not a whole number; {help}"))?;
        let count: u32 = n
            .trim()
            .parse()
            .map_err(|_| format!("{n:?} in {s:?} is not a whole number; {help}"))?;
        if count == 0 || count > MAX_SHARDS {
            return Err(format!("{s:?}: N is {count}; allowed: 1 to {MAX_SHARDS} shards"));
        }
        if index >= count {
            return Err(format!(
                "{s:?}: shard {index} does not exist in {count} shards; shards are numbered 0 to {}",
                count - 1
            ));
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Serialize for Shard {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Shard {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(de::Error::custom)
    }
}

impl schemars::JsonSchema for Shard {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Shard".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^[0-9]+/[0-9]+$",
            "description": "Shard I of N (0-based), e.g. \"0/4\"."
        })
    }
}

impl Profile {
    /// The shard a profile runs as (the whole load when it names none).
    pub fn shard(&self) -> Shard {
        self.load.shard.unwrap_or_default()
    }

    /// This shard's part of the profile's load: its sessions (closed model), its rate and
    /// in-flight cap (open model), its total sessions, its source addresses. Everything else
    /// (ramp, duration, seed, files) is the whole load's, so the shards' loads overlap as one.
    /// A share with nothing to do is refused: a shard that ran no session would look like a
    /// server that refused them all.
    pub fn shard_share(mut self) -> Result<Profile, String> {
        let shard = self.shard();
        if !shard.is_split() {
            return Ok(self);
        }
        let l = &mut self.load;
        let none_left = |what: &str, total: u64| {
            format!(
                "shard {shard} would run no session: {what} is {total}, fewer than the {} shards; use at most {total} shards",
                shard.count
            )
        };
        match l.model {
            LoadModel::Closed => {
                let share = shard.share_of(u64::from(l.sessions));
                if share == 0 {
                    return Err(none_left("load.sessions", u64::from(l.sessions)));
                }
                l.sessions = u32::try_from(share).unwrap_or(u32::MAX);
            }
            LoadModel::Open => {
                l.rate /= f64::from(shard.count);
                l.max_in_flight = u32::try_from(shard.share_of(u64::from(l.max_in_flight)).max(1)).unwrap_or(u32::MAX);
            }
        }
        if let Some(total) = l.total_sessions {
            let share = shard.share_of(total);
            if share == 0 {
                return Err(none_left("load.total_sessions", total));
            }
            l.total_sessions = Some(share);
        }
        let addresses = super::expand_source_addresses(&self.session.source_addresses)?;
        if !addresses.is_empty() {
            if (addresses.len() as u64) < u64::from(shard.count) {
                return Err(format!(
                    "session.source_addresses has {} addresses for {} shards: shards on one machine must not share one; \
                     give at least one address per shard, or none (each machine then uses its own)",
                    addresses.len(),
                    shard.count
                ));
            }
            self.session.source_addresses = addresses
                .iter()
                .skip(shard.index as usize)
                .step_by(shard.count as usize)
                .map(|a| a.to_string())
                .collect();
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::HumanDuration;
    use std::collections::BTreeSet;

    #[test]
    fn parses_and_refuses_with_the_reason() {
        assert_eq!("2/4".parse::<Shard>(), Ok(Shard { index: 2, count: 4 }));
        assert_eq!(" 0 / 1 ".parse::<Shard>(), Ok(Shard::WHOLE));
        for (bad, says) in [
            ("4/4", "numbered 0 to 3"),
            ("1/0", "allowed: 1 to"),
            ("a/2", "not a whole number"),
            ("3", "not I/N"),
            ("-1/2", "not a whole number"),
        ] {
            let e = bad.parse::<Shard>().unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
        let json = serde_json::to_string(&Shard { index: 3, count: 8 }).unwrap();
        assert_eq!(json, "\"3/8\"");
        assert_eq!(
            serde_json::from_str::<Shard>(&json).unwrap(),
            Shard { index: 3, count: 8 }
        );
    }

    #[test]
    fn ids_of_all_shards_are_distinct_and_cover_the_whole_run() {
        let count = 3;
        let mut all = BTreeSet::new();
        for index in 0..count {
            let shard = Shard { index, count };
            for local in 1..=5 {
                assert!(all.insert(shard.global_id(local)), "id reused");
            }
        }
        assert_eq!(all, (1..=15).collect::<BTreeSet<u64>>());
        assert_eq!(Shard::WHOLE.global_id(7), 7);
    }

    #[test]
    fn shares_add_up_to_the_whole_load() {
        for total in [1u64, 2, 7, 10, 101] {
            for count in 1..=7u32 {
                let sum: u64 = (0..count).map(|index| Shard { index, count }.share_of(total)).sum();
                assert_eq!(sum, total, "{total} over {count}");
            }
        }
    }

    #[test]
    fn staggered_starts_interleave_into_the_whole_loads_spacing() {
        // 2 shards of 4 workers: together the 8 evenly spaced starts of one 8-worker run.
        let mut starts: Vec<f64> = (0..2u32)
            .flat_map(|index| (0..4).map(move |w| Shard { index, count: 2 }.stagger(w, 4)))
            .collect();
        starts.sort_by(f64::total_cmp);
        let whole: Vec<f64> = (0..8).map(|w| Shard::WHOLE.stagger(w, 8)).collect();
        for (a, b) in starts.iter().zip(&whole) {
            assert!((a - b).abs() < 1e-12, "{starts:?} vs {whole:?}");
        }
    }

    fn profile(shard: &str) -> Profile {
        let mut p = Profile::default();
        p.load.sessions = 10;
        p.load.total_sessions = Some(25);
        p.load.ramp_up = Some(HumanDuration::from_secs(2));
        p.session.source_addresses = vec!["127.0.0.2-127.0.0.7".into()];
        p.load.shard = Some(shard.parse().unwrap());
        p
    }

    #[test]
    fn a_closed_share_splits_sessions_totals_and_addresses_and_keeps_the_rest() {
        let shares: Vec<Profile> = (0..4)
            .map(|i| profile(&format!("{i}/4")).shard_share().unwrap())
            .collect();
        let sessions: Vec<u32> = shares.iter().map(|p| p.load.sessions).collect();
        assert_eq!(sessions, [3, 3, 2, 2]);
        let totals: Vec<u64> = shares.iter().filter_map(|p| p.load.total_sessions).collect();
        assert_eq!(totals, [7, 6, 6, 6]);
        assert_eq!(shares[0].session.source_addresses, ["127.0.0.2", "127.0.0.6"]);
        assert_eq!(shares[3].session.source_addresses, ["127.0.0.5"]);
        let addresses: BTreeSet<_> = shares.iter().flat_map(|p| p.session.source_addresses.clone()).collect();
        assert_eq!(addresses.len(), 6, "every address used by exactly one shard");
        for p in &shares {
            assert_eq!(
                p.load.ramp_up,
                Some(HumanDuration::from_secs(2)),
                "the whole load's ramp"
            );
            assert_eq!(p.seed, Profile::default().seed);
        }
    }

    #[test]
    fn an_open_share_splits_the_rate() {
        let mut p = profile("1/4");
        p.load.model = LoadModel::Open;
        p.load.rate = 100.0;
        p.load.max_in_flight = 10;
        let share = p.shard_share().unwrap();
        assert_eq!(share.load.rate, 25.0);
        assert_eq!(share.load.max_in_flight, 3);
    }

    #[test]
    fn a_share_with_nothing_to_do_is_refused() {
        let mut p = profile("3/4");
        p.load.sessions = 3;
        let e = p.shard_share().unwrap_err();
        assert!(
            e.contains("shard 3/4 would run no session") && e.contains("at most 3 shards"),
            "{e}"
        );
        let e = profile("6/7").shard_share().unwrap_err();
        assert!(e.contains("6 addresses for 7 shards"), "{e}");
        let whole = Profile::default();
        assert_eq!(whole.clone().shard_share().unwrap(), whole);
    }
}

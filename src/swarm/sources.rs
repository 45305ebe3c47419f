//! Local ports per source address. Every control connection goes to the same server address
//! and port, so each needs a local port of its own on its source address: one address gives
//! at most as many control connections at once as the kernel's ephemeral range has ports
//! (`net.ipv4.ip_local_port_range`, 28,232 by default). Past that, connect() fails with
//! EADDRNOTAVAIL, which looks like the server failing. The need is checked before any
//! traffic, and each address's use is counted live, with a warning as it nears the range.
//! (Data connections go to the server's passive ports, each another destination, so they
//! share local ports with the control connections and do not add to the count.)

use crate::profile::Profile;
use anyhow::bail;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

/// Use of an address's ephemeral ports from which the run warns (live and before traffic).
pub const WARN_SHARE: f64 = 0.9;

/// The kernel's ephemeral port range, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EphemeralRange {
    pub low: u16,
    pub high: u16,
}

impl EphemeralRange {
    /// Linux's default, for hosts whose setting cannot be read.
    pub const LINUX_DEFAULT: EphemeralRange = EphemeralRange {
        low: 32768,
        high: 60999,
    };

    pub fn ports(self) -> u32 {
        u32::from(self.high.saturating_sub(self.low)) + 1
    }

    /// This host's range, from `/proc/sys/net/ipv4/ip_local_port_range` (IPv6 uses it too).
    pub fn of_this_host() -> Option<EphemeralRange> {
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
            .ok()
            .and_then(|t| EphemeralRange::parse(&t))
    }

    fn parse(text: &str) -> Option<EphemeralRange> {
        let mut it = text.split_whitespace().map(str::parse::<u16>);
        match (it.next(), it.next()) {
            (Some(Ok(low)), Some(Ok(high))) if low <= high => Some(EphemeralRange { low, high }),
            _ => None,
        }
    }
}

/// What the load needs of each source address, before it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceNeed {
    Fits,
    /// More than [`WARN_SHARE`] of an address's ports: TIME_WAITs or other programs may
    /// take the rest.
    Tight {
        per_address: u64,
        ports: u32,
    },
    /// More connections per address than it has ports.
    Exceeds {
        per_address: u64,
        ports: u32,
    },
}

/// `connections` control connections at most at once, spread evenly over `addresses` (the
/// kernel's choice counts as one).
pub fn need(connections: u64, addresses: usize, range: EphemeralRange) -> SourceNeed {
    let addresses = addresses.max(1) as u64;
    let per_address = connections.div_ceil(addresses);
    let ports = range.ports();
    if per_address > u64::from(ports) {
        SourceNeed::Exceeds { per_address, ports }
    } else if per_address as f64 > f64::from(ports) * WARN_SHARE {
        SourceNeed::Tight { per_address, ports }
    } else {
        SourceNeed::Fits
    }
}

/// How a run used its source addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceUse {
    /// Addresses the sessions were spread over (0: the kernel chose).
    pub addresses: usize,
    /// Most control connections open at once on any one address.
    pub peak_per_address: u32,
    /// Ports in the ephemeral range each address had, when known.
    pub ephemeral_ports: Option<u32>,
}

/// The sessions' source addresses and the connections open on each.
#[derive(Debug, Default)]
pub struct SourcePorts {
    addresses: Vec<IpAddr>,
    /// One slot per address; one slot for the kernel's choice when there are none.
    open: Vec<AtomicU32>,
    peak: Vec<AtomicU32>,
    range: Option<EphemeralRange>,
    warned: AtomicBool,
}

impl SourcePorts {
    /// The sessions' source addresses, checked before any traffic against the ephemeral ports
    /// each has for the control connections the load opens at once.
    pub fn for_profile(profile: &Profile) -> anyhow::Result<SourcePorts> {
        let mut addresses =
            crate::profile::expand_source_addresses(&profile.session.source_addresses).map_err(anyhow::Error::msg)?;
        // Overlapping entries name an address twice; it has its ports once.
        let mut seen = std::collections::HashSet::new();
        addresses.retain(|a| seen.insert(*a));
        let host_range = EphemeralRange::of_this_host();
        let range = host_range.unwrap_or(EphemeralRange::LINUX_DEFAULT);
        let budget = crate::fd_limit::FdBudget::of(profile, false);
        let from = match addresses.len() {
            0 | 1 => "one source address".to_string(),
            n => format!("each of {n} source addresses"),
        };
        let advice = format!(
            "give (more) source addresses (--source-addresses 127.0.0.2-127.0.0.250 on loopback, where the server \
             accepts them), widen the ephemeral range (net.ipv4.ip_local_port_range, now {}-{}), or lower --sessions \
             or --parallel",
            range.low, range.high
        );
        match need(budget.connections, addresses.len(), range) {
            // An open model's bound (max_in_flight) is reached only by a server falling behind:
            // the live count warns then.
            _ if !budget.certain => {}
            SourceNeed::Fits => {}
            SourceNeed::Exceeds { per_address, ports } => bail!(
                "this run opens {per_address} control connections at once from {from}, which has only {ports} \
                 ephemeral ports for them (each goes to the same server port, so each needs its own local port): {advice}"
            ),
            SourceNeed::Tight { per_address, ports } => tracing::warn!(
                "this run opens {per_address} control connections at once from {from}, which has {ports} \
                 ephemeral ports: connects past them fail with local_error; {advice}"
            ),
        }
        Ok(SourcePorts::new(addresses, host_range))
    }

    pub fn new(addresses: Vec<IpAddr>, range: Option<EphemeralRange>) -> SourcePorts {
        let slots = addresses.len().max(1);
        SourcePorts {
            addresses,
            open: (0..slots).map(|_| AtomicU32::new(0)).collect(),
            peak: (0..slots).map(|_| AtomicU32::new(0)).collect(),
            range,
            warned: AtomicBool::new(false),
        }
    }

    /// The address session `session_id` connects from (round robin): None for the kernel's.
    pub fn for_session(&self, session_id: u64) -> Source {
        match self.addresses.len() {
            0 => Source { slot: 0, ip: None },
            n => {
                let slot = (session_id % n as u64) as usize;
                Source {
                    slot,
                    ip: self.addresses.get(slot).copied(),
                }
            }
        }
    }

    /// Counts one control connection on `source` until the returned guard drops.
    pub fn occupy(&self, source: Source) -> Occupied<'_> {
        let slot = source.slot.min(self.open.len() - 1);
        let now = self.open[slot].fetch_add(1, Ordering::Relaxed) + 1;
        self.peak[slot].fetch_max(now, Ordering::Relaxed);
        if let Some(range) = self.range {
            if f64::from(now) > f64::from(range.ports()) * WARN_SHARE && !self.warned.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    "{now} control connections open from {} of its {} ephemeral ports: past {}, connects fail \
                     with local_error (EADDRNOTAVAIL); spread the load with --source-addresses \
                     127.0.0.2-127.0.0.250 (loopback) or widen net.ipv4.ip_local_port_range",
                    source.ip.map_or_else(|| "one address".to_string(), |ip| ip.to_string()),
                    range.ports(),
                    range.ports()
                );
            }
        }
        Occupied { ports: self, slot }
    }

    pub fn usage(&self) -> SourceUse {
        SourceUse {
            addresses: self.addresses.len(),
            peak_per_address: self.peak.iter().map(|p| p.load(Ordering::Relaxed)).max().unwrap_or(0),
            ephemeral_ports: self.range.map(EphemeralRange::ports),
        }
    }
}

/// A session's source address, and its slot in the counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Source {
    slot: usize,
    pub ip: Option<IpAddr>,
}

/// One control connection counted on its source address.
pub struct Occupied<'a> {
    ports: &'a SourcePorts,
    slot: usize,
}

impl Drop for Occupied<'_> {
    fn drop(&mut self) {
        self.ports.open[self.slot].fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hosts_range_reads_and_garbage_does_not() {
        assert_eq!(
            EphemeralRange::parse("32768\t60999\n"),
            Some(EphemeralRange::LINUX_DEFAULT)
        );
        assert_eq!(EphemeralRange::LINUX_DEFAULT.ports(), 28_232);
        assert_eq!(EphemeralRange::parse("60999 32768"), None);
        assert_eq!(EphemeralRange::parse("lots"), None);
        assert_eq!(EphemeralRange::parse("1024"), None);
        if cfg!(target_os = "linux") {
            assert!(EphemeralRange::of_this_host().is_some_and(|r| r.ports() > 0));
        }
    }

    #[test]
    fn the_need_is_per_address() {
        let r = EphemeralRange::LINUX_DEFAULT;
        assert_eq!(need(20_000, 0, r), SourceNeed::Fits);
        assert_eq!(
            need(26_000, 1, r),
            SourceNeed::Tight {
                per_address: 26_000,
                ports: 28_232
            }
        );
        assert_eq!(
            need(100_000, 1, r),
            SourceNeed::Exceeds {
                per_address: 100_000,
                ports: 28_232
            }
        );
        // Spread over 249 loopback addresses: 402 each.
        assert_eq!(need(100_000, 249, r), SourceNeed::Fits);
        // Uneven spreads count the busiest address.
        let small = EphemeralRange { low: 1000, high: 1009 };
        assert_eq!(
            need(21, 2, small),
            SourceNeed::Exceeds {
                per_address: 11,
                ports: 10
            }
        );
    }

    #[test]
    fn connections_are_counted_per_address_with_their_peak() {
        let a: IpAddr = [127, 0, 0, 2].into();
        let b: IpAddr = [127, 0, 0, 3].into();
        let ports = SourcePorts::new(vec![a, b], Some(EphemeralRange { low: 1000, high: 1009 }));
        let (on_a, on_b) = (ports.for_session(2), ports.for_session(1));
        assert_eq!((on_a.ip, on_b.ip), (Some(a), Some(b)));
        {
            let _x = ports.occupy(on_a);
            let _y = ports.occupy(on_a);
            let _z = ports.occupy(on_b);
            assert_eq!(ports.usage().peak_per_address, 2);
        }
        let _again = ports.occupy(on_a);
        assert_eq!(
            ports.usage(),
            SourceUse {
                addresses: 2,
                peak_per_address: 2,
                ephemeral_ports: Some(10)
            }
        );
        // The kernel's choice is one address.
        let kernel = SourcePorts::new(Vec::new(), None);
        assert_eq!(kernel.for_session(7).ip, None);
        let _k = kernel.occupy(kernel.for_session(7));
        assert_eq!(kernel.usage().peak_per_address, 1);
        assert_eq!(kernel.usage().addresses, 0);
    }
}

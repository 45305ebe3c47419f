//! Where to put a passive port range of a given width.
//!
//! The planner decides how many passive ports a server needs; this module decides which ones. The one
//! rule that matters is: stay out of the operating systems' ephemeral port ranges.
//!
//! Why: every outgoing TCP connection the server host makes (to a database, an auth backend, DNS over
//! TCP, a backup target, monitoring) gets its local port from the ephemeral range. While a connection
//! holds a port, the FTP server generally cannot bind it (EADDRINUSE), so a passive range inside the
//! ephemeral range works in a quiet test and then fails under load: `PASV`/`EPSV` finds its chosen port
//! taken, retries or gives up, and clients see `425 Can't open data connection`. NAT gateways and
//! conntrack tables in front of the server also allocate ports for outbound flows, and a data connection
//! that lands on a port an outbound flow already uses can be matched to that flow's entry instead of the
//! port-forward rule, so it goes nowhere. A range that ends below 32768 sits under both defaults, so on
//! hosts with default settings neither problem can arise.

use crate::port_range::PortRange;

/// Linux's default `net.ipv4.ip_local_port_range`: where Linux servers take ports for outgoing connections.
pub const LINUX_EPHEMERAL: PortRange = PortRange { min: 32768, max: 60999 };
/// Windows' default dynamic port range (Vista and later, IANA's suggestion): the same role on Windows
/// servers, and also where IIS puts passive data connections when no range is configured.
pub const WINDOWS_EPHEMERAL: PortRange = PortRange { min: 49152, max: 65535 };

/// The ranges checked, with the label used in messages.
const KNOWN_EPHEMERAL: [(&str, PortRange); 2] = [("Linux", LINUX_EPHEMERAL), ("Windows", WINDOWS_EPHEMERAL)];

/// The operating system the FTP server runs on: whose ephemeral range the passive range must
/// avoid. A Linux server is free to use 61000-65535, which only Windows hands out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ServerOs {
    #[default]
    Linux,
    Windows,
    /// Avoid both (the server's OS is not known).
    Either,
}

impl ServerOs {
    fn avoids(self, label: &str) -> bool {
        match self {
            ServerOs::Linux => label == "Linux",
            ServerOs::Windows => label == "Windows",
            ServerOs::Either => true,
        }
    }
}

fn avoided(os: ServerOs) -> impl Iterator<Item = &'static (&'static str, PortRange)> {
    KNOWN_EPHEMERAL.iter().filter(move |(label, _)| os.avoids(label))
}

/// Ports below this are privileged on Unix (binding needs root or CAP_NET_BIND_SERVICE) and hold the
/// well-known services, so a passive range never goes there.
const LOWEST_PORT: u16 = 1024;

/// The most ports a range can hold without dipping below port 1024: all of 1024..=65535.
pub const MAX_WIDTH: u32 = 65535 - LOWEST_PORT as u32 + 1;

/// Starts tried when the preferred one is unusable, most preferred first. Each is a round number an
/// operator will recognise, and higher is better because the low thousands are crowded with other
/// services' listeners (3306, 5432, 8080, ...); the point of all three is that they can end below 32768.
const FALLBACK_STARTS: [u16; 3] = [30000, 20000, 10000];

/// Below this, a range shares ports with many commonly configured services, which is worth a warning.
const CROWDED_BELOW: u16 = 10000;

/// A concrete passive range and anything the operator should know about it.
///
/// Serializes as `{"range": "30000-30099", "warnings": [...]}`: `range` uses [`PortRange`]'s own
/// string form, the same one profiles are written in, so a report can be pasted back into a profile.
#[derive(Debug, Clone, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct Placement {
    pub range: PortRange,
    /// Human-readable, one sentence each; empty when the placement is clean.
    pub warnings: Vec<String>,
}

/// Which well-known ephemeral ranges `range` overlaps, as human labels ("Linux 32768-60999").
pub fn ephemeral_overlaps(range: PortRange) -> Vec<String> {
    ephemeral_overlaps_on(range, ServerOs::Either)
}

/// The same, for a server on `os`.
pub fn ephemeral_overlaps_on(range: PortRange, os: ServerOs) -> Vec<String> {
    avoided(os)
        .filter(|(_, eph)| overlap(range, *eph) > 0)
        .map(|(label, eph)| format!("{label} {eph}"))
        .collect()
}

/// [`place_range_with`] using this machine's ephemeral range, when it can be read.
///
/// The reading only adds a warning: the machine running the planner is often the load generator, not
/// the FTP server, so its settings must not move the recommendation.
pub fn place_range(width: u32, preferred_start: Option<u16>, os: ServerOs) -> Result<Placement, String> {
    place_range_on(width, preferred_start, local_ephemeral_range(), os)
}

/// Places `width` ports.
///
/// In order:
/// 1. `preferred_start` (typically the start of the range the run used), if `start..start+width` fits
///    in 1024..=65535 and overlaps no known ephemeral range: a working setup shouldn't be renumbered.
/// 2. The first of 30000, 20000, 10000 where the range fits that way, i.e. ends at or below 32767.
/// 3. Otherwise (more than 22768 ports) the start in 1024..=65535 that overlaps the ephemeral ranges
///    least, preferring the highest such start; up to 31744 ports that still means no overlap, by
///    ending at 32767. Any overlap left is reported as a warning naming the ranges.
///
/// `local_ephemeral` is the ephemeral range read from the machine; when it differs from Linux's
/// default and overlaps the placed range, a warning says so (it doesn't change the placement).
///
/// Errors for width 0 and for more than [`MAX_WIDTH`] ports.
pub fn place_range_with(
    width: u32,
    preferred_start: Option<u16>,
    local_ephemeral: Option<PortRange>,
) -> Result<Placement, String> {
    place_range_on(width, preferred_start, local_ephemeral, ServerOs::Either)
}

/// [`place_range_with`] avoiding only the ephemeral range of the server's `os`.
pub fn place_range_on(
    width: u32,
    preferred_start: Option<u16>,
    local_ephemeral: Option<PortRange>,
    os: ServerOs,
) -> Result<Placement, String> {
    if width == 0 {
        return Err("a passive port range needs at least 1 port; the requested width is 0".to_string());
    }
    if width > MAX_WIDTH {
        return Err(format!(
            "{width} passive ports do not fit between {LOWEST_PORT} and 65535 (at most {MAX_WIDTH}); \
             spread the load over more server addresses or fewer concurrent transfers"
        ));
    }

    let preferred = preferred_start.map(|start| (start, fit(start, width)));
    let (range, fallback) = match preferred {
        Some((_, Some(candidate))) if ephemeral_overlaps_on(candidate, os).is_empty() => (candidate, false),
        _ => match FALLBACK_STARTS
            .iter()
            .filter_map(|&start| fit(start, width))
            .find(|r| ephemeral_overlaps_on(*r, os).is_empty())
        {
            Some(r) => (r, false),
            // Unreachable for widths in 1..=MAX_WIDTH, but an error beats a made-up range.
            None => (
                least_overlap(width, os).ok_or_else(|| format!("no start holds {width} ports"))?,
                true,
            ),
        },
    };

    let mut warnings = Vec::new();
    // Say why the recommendation differs from what the run used, or the change looks arbitrary.
    if let Some((start, candidate)) = preferred {
        match candidate {
            Some(c) if c != range => warnings.push(format!(
                "the preferred range {c} overlaps {}; moved to {range}",
                ephemeral_overlaps_on(c, os).join(" and ")
            )),
            Some(_) => {}
            None => warnings.push(format!(
                "the preferred start {start} cannot hold {width} ports within {LOWEST_PORT}-65535; moved to {range}"
            )),
        }
    }
    let overlapped: Vec<String> = avoided(os)
        .filter_map(|(label, eph)| match overlap(range, *eph) {
            0 => None,
            n => Some(format!("{label} {eph} ({})", ports(n))),
        })
        .collect();
    if !overlapped.is_empty() {
        warnings.push(format!(
            "no placement of {width} ports avoids the ephemeral ranges; {range} overlaps {}, so the server's own \
             outgoing connections can take passive ports; on Linux reserve them with \
             sysctl -w net.ipv4.ip_local_reserved_ports={range}, or use fewer ports",
            overlapped.join(" and ")
        ));
    }
    if fallback && range.min < CROWDED_BELOW {
        warnings.push(format!(
            "{range} starts below {CROWDED_BELOW}, where other services often listen (3306, 5432, 8080, ...); \
             check that nothing else on the server binds ports in it"
        ));
    }
    if let Some(local) = local_ephemeral {
        let shared = overlap(range, local);
        // Equal to Linux's default means the overlap (if any) was already reported above.
        if local != LINUX_EPHEMERAL && shared > 0 {
            warnings.push(format!(
                "this machine's ephemeral range (net.ipv4.ip_local_port_range) is {local}, not Linux's default \
                 {LINUX_EPHEMERAL}, and shares {} with {range}; if this machine runs the FTP server, \
                 reserve them with sysctl -w net.ipv4.ip_local_reserved_ports={range} or narrow \
                 ip_local_port_range",
                ports(shared)
            ));
        }
    }
    Ok(Placement { range, warnings })
}

/// This machine's ephemeral range from /proc, or `None` where there is no /proc (not Linux, some
/// sandboxes) or it says something unexpected: a missing reading only means one warning fewer.
fn local_ephemeral_range() -> Option<PortRange> {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    parse_ip_local_port_range(&text)
}

/// Parses the file's "32768\t60999\n" form: two ports separated by whitespace.
fn parse_ip_local_port_range(text: &str) -> Option<PortRange> {
    let mut fields = text.split_whitespace();
    let min: u16 = fields.next()?.parse().ok()?;
    let max: u16 = fields.next()?.parse().ok()?;
    if fields.next().is_some() || min == 0 || min > max {
        return None;
    }
    Some(PortRange { min, max })
}

/// `width` ports from `start`, if they stay within `LOWEST_PORT..=65535`.
fn fit(start: u16, width: u32) -> Option<PortRange> {
    if start < LOWEST_PORT || width == 0 {
        return None;
    }
    let max = u16::try_from(u32::from(start) + width - 1).ok()?;
    Some(PortRange { min: start, max })
}

/// How many ports `a` and `b` share.
fn overlap(a: PortRange, b: PortRange) -> u32 {
    let lo = a.min.max(b.min);
    let hi = a.max.min(b.max);
    if lo > hi {
        0
    } else {
        u32::from(hi) - u32::from(lo) + 1
    }
}

/// Ports of `range` inside any known ephemeral range, counted once per range: a port both Linux and
/// Windows use counts twice, since it is at risk on either kind of server.
fn ephemeral_ports(range: PortRange, os: ServerOs) -> u32 {
    avoided(os).map(|(_, eph)| overlap(range, *eph)).sum()
}

/// The placement of `width` ports with the fewest ephemeral ports, highest start on ties (further from
/// the crowded low ports); `None` only if no start fits at all. Scanning every start (at most 64512) is
/// cheap and stays right if the constants change.
fn least_overlap(width: u32, os: ServerOs) -> Option<PortRange> {
    (LOWEST_PORT..=u16::MAX)
        .map_while(|start| fit(start, width))
        .min_by_key(|r| (ephemeral_ports(*r, os), std::cmp::Reverse(r.min)))
}

/// "1 port", "100 ports".
fn ports(n: u32) -> String {
    if n == 1 {
        "1 port".to_string()
    } else {
        format!("{n} ports")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(min: u16, max: u16) -> PortRange {
        PortRange { min, max }
    }

    fn place(width: u32, preferred: Option<u16>) -> Placement {
        place_range_with(width, preferred, None).unwrap()
    }

    #[test]
    fn only_the_server_os_ephemeral_range_is_avoided() {
        // 62000-62099 is free on Linux (which hands out 32768-60999) but Windows' own.
        let linux = place_range_on(100, Some(62000), None, ServerOs::Linux).unwrap();
        assert_eq!(linux.range, r(62000, 62099));
        assert!(linux.warnings.is_empty(), "{:?}", linux.warnings);
        let windows = place_range_on(100, Some(62000), None, ServerOs::Windows).unwrap();
        assert_eq!(windows.range, r(30000, 30099));
        assert!(
            windows.warnings[0].contains("Windows 49152-65535"),
            "{:?}",
            windows.warnings
        );
        // 40000 is Linux's, not Windows'.
        assert_eq!(
            place_range_on(100, Some(40000), None, ServerOs::Windows).unwrap().range,
            r(40000, 40099)
        );
        assert_eq!(
            place_range_on(100, Some(40000), None, ServerOs::Linux).unwrap().range,
            r(30000, 30099)
        );
        assert!(ephemeral_overlaps_on(r(62000, 62099), ServerOs::Linux).is_empty());
        assert_eq!(
            ephemeral_overlaps_on(r(62000, 62099), ServerOs::Either),
            vec!["Windows 49152-65535"]
        );
    }

    #[test]
    fn constants() {
        assert_eq!(MAX_WIDTH, 64512);
        assert_eq!(LINUX_EPHEMERAL.to_string(), "32768-60999");
        assert_eq!(WINDOWS_EPHEMERAL.to_string(), "49152-65535");
    }

    #[test]
    fn overlap_labels() {
        assert!(ephemeral_overlaps(r(30000, 30099)).is_empty());
        assert!(ephemeral_overlaps(r(1024, 32767)).is_empty());
        assert_eq!(ephemeral_overlaps(r(32767, 32768)), vec!["Linux 32768-60999"]);
        assert_eq!(ephemeral_overlaps(r(61000, 65535)), vec!["Windows 49152-65535"]);
        assert_eq!(
            ephemeral_overlaps(r(50000, 50099)),
            vec!["Linux 32768-60999", "Windows 49152-65535"]
        );
    }

    #[test]
    fn preferred_start_kept_when_clean() {
        assert_eq!(
            place(100, Some(25000)),
            Placement {
                range: r(25000, 25099),
                warnings: vec![]
            }
        );
        // Ending exactly at 32767 is still clean.
        assert_eq!(place(100, Some(32668)).range, r(32668, 32767));
        assert_eq!(place(1, Some(1024)).range, r(1024, 1024));
        // A start the operator chose below 10000 is theirs: no warning about crowded ports,
        // which is for a range we had to put there.
        assert_eq!(
            place(100, Some(5000)),
            Placement {
                range: r(5000, 5099),
                warnings: vec![]
            }
        );
    }

    #[test]
    fn preferred_start_rejected_when_overlapping_linux() {
        let p = place(100, Some(40000));
        assert_eq!(p.range, r(30000, 30099));
        assert_eq!(
            p.warnings,
            vec!["the preferred range 40000-40099 overlaps Linux 32768-60999; moved to 30000-30099"]
        );
        // One port over the edge is enough to move.
        assert_eq!(place(100, Some(32669)).range, r(30000, 30099));
        let p = place(100, Some(50000));
        assert_eq!(
            p.warnings,
            vec![
                "the preferred range 50000-50099 overlaps Linux 32768-60999 and Windows 49152-65535; \
                 moved to 30000-30099"
            ]
        );
    }

    #[test]
    fn preferred_start_that_cannot_fit() {
        let p = place(100, Some(65500));
        assert_eq!(p.range, r(30000, 30099));
        assert_eq!(
            p.warnings,
            vec!["the preferred start 65500 cannot hold 100 ports within 1024-65535; moved to 30000-30099"]
        );
        assert_eq!(place(10, Some(80)).range, r(30000, 30009));
    }

    #[test]
    fn fallback_starts() {
        // 30000 holds up to 32767 - 30000 + 1 = 2768 ports.
        for (width, want) in [
            (1, r(30000, 30000)),
            (100, r(30000, 30099)),
            (2768, r(30000, 32767)),
            // 20000 holds up to 12768.
            (2769, r(20000, 22768)),
            (12768, r(20000, 32767)),
            // 10000 holds up to 22768.
            (12769, r(10000, 22768)),
            (22768, r(10000, 32767)),
        ] {
            let p = place(width, None);
            assert_eq!(p.range, want, "width {width}");
            assert_eq!(p.range.width(), width);
            assert!(p.warnings.is_empty(), "width {width}: {:?}", p.warnings);
        }
    }

    #[test]
    fn wider_than_the_fixed_starts_still_avoids_overlap_up_to_31744() {
        let p = place(22769, None);
        assert_eq!(p.range, r(9999, 32767));
        assert_eq!(
            p.warnings,
            vec![
                "9999-32767 starts below 10000, where other services often listen (3306, 5432, 8080, ...); \
                 check that nothing else on the server binds ports in it"
            ]
        );
        let p = place(31744, None);
        assert_eq!(p.range, r(1024, 32767));
        assert!(ephemeral_overlaps(p.range).is_empty());
    }

    #[test]
    fn unavoidable_overlap_warns() {
        let p = place(31745, None);
        assert_eq!(p.range, r(1024, 32768));
        assert_eq!(p.warnings.len(), 2);
        assert_eq!(
            p.warnings[0],
            "no placement of 31745 ports avoids the ephemeral ranges; 1024-32768 overlaps Linux 32768-60999 \
             (1 port), so the server's own outgoing connections can take passive ports; on Linux reserve them \
             with sysctl -w net.ipv4.ip_local_reserved_ports=1024-32768, or use fewer ports"
        );
        let p = place(MAX_WIDTH, Some(30000));
        assert_eq!(p.range, r(1024, 65535));
        assert!(p.warnings[0].contains("cannot hold 64512 ports"), "{:?}", p.warnings);
        assert!(
            p.warnings[1].contains("overlaps Linux 32768-60999 (28232 ports) and Windows 49152-65535 (16384 ports)"),
            "{:?}",
            p.warnings
        );
    }

    #[test]
    fn preferred_equal_to_forced_overlap_is_not_called_a_move() {
        let p = place(40000, Some(1024));
        assert_eq!(p.range, r(1024, 41023));
        assert!(p.warnings.iter().all(|w| !w.contains("moved")), "{:?}", p.warnings);
        assert!(p
            .warnings
            .iter()
            .any(|w| w.contains("overlaps Linux 32768-60999 (8256 ports)")));
    }

    #[test]
    fn errors() {
        assert_eq!(
            place_range_with(0, None, None),
            Err("a passive port range needs at least 1 port; the requested width is 0".to_string())
        );
        let err = place_range_with(64513, Some(30000), None).unwrap_err();
        assert!(
            err.starts_with("64513 passive ports do not fit between 1024 and 65535 (at most 64512)"),
            "{err}"
        );
        assert!(place_range_with(u32::MAX, None, None).is_err());
    }

    #[test]
    fn local_ephemeral_override_warns() {
        let local = r(20000, 40000);
        let p = place_range_with(100, None, Some(local)).unwrap();
        assert_eq!(p.range, r(30000, 30099));
        assert_eq!(
            p.warnings,
            vec![
                "this machine's ephemeral range (net.ipv4.ip_local_port_range) is 20000-40000, not Linux's default \
                 32768-60999, and shares 100 ports with 30000-30099; if this machine runs the FTP server, reserve \
                 them with sysctl -w net.ipv4.ip_local_reserved_ports=30000-30099 or narrow ip_local_port_range"
            ]
        );
        // The default range adds nothing, and neither does a custom one that doesn't touch the placement.
        assert!(place_range_with(100, None, Some(LINUX_EPHEMERAL))
            .unwrap()
            .warnings
            .is_empty());
        assert!(place_range_with(100, None, Some(r(40000, 50000)))
            .unwrap()
            .warnings
            .is_empty());
    }

    #[test]
    fn parses_proc_file() {
        assert_eq!(parse_ip_local_port_range("32768\t60999\n"), Some(LINUX_EPHEMERAL));
        assert_eq!(parse_ip_local_port_range("  1024 65535 "), Some(r(1024, 65535)));
        assert_eq!(
            parse_ip_local_port_range("40000 40000"),
            Some(r(40000, 40000)),
            "one port"
        );
        for bad in ["", "32768", "a b", "60999 32768", "0 100", "1 2 3", "1 70000"] {
            assert_eq!(parse_ip_local_port_range(bad), None, "{bad:?}");
        }
    }

    /// Where Linux's /proc is (CI, every Linux host), the machine's range is read from it.
    #[test]
    fn this_machines_ephemeral_range_is_read_where_proc_has_it() {
        let path = "/proc/sys/net/ipv4/ip_local_port_range";
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let read = local_ephemeral_range();
                assert!(
                    read.is_some_and(|r| r.min >= 1 && r.min <= r.max),
                    "{text:?} read as {read:?}"
                );
            }
            Err(_) => assert_eq!(local_ephemeral_range(), None),
        }
    }

    #[test]
    fn place_range_reads_without_failing() {
        // Whatever this machine says, the placement itself doesn't depend on it.
        assert_eq!(place_range(100, None, ServerOs::Linux).unwrap().range, r(30000, 30099));
    }

    #[test]
    fn serializes_range_as_string() {
        let p = Placement {
            range: r(30000, 30099),
            warnings: vec!["w".into()],
        };
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            r#"{"range":"30000-30099","warnings":["w"]}"#
        );
    }
}

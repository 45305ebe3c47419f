//! Paste-ready configuration for a passive port range: the server side (so the server hands out only
//! those ports) and the firewall side (so clients can reach them and the control port).
//!
//! Both halves are needed together: a range the server uses but the firewall blocks hangs every
//! transfer after login, and a range the firewall opens but the server ignores opens ports for nothing.
//! Every snippet carries the exact numbers, so an operator never has to translate between notations
//! (`30000:30099`, `30000-30099`, `30000 30099`, `range(30000, 30100)` all mean the same range).
//!
//! The syntax follows each project's documentation and source; notes inside the snippets flag the
//! limits an operator would otherwise find the hard way (Pure-FTPd's client cap, ProFTPD refusing a
//! single port, Python's exclusive `range` end).

use crate::port_range::PortRange;

/// What a snippet configures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SnippetKind {
    /// The FTP server's own passive-port setting.
    Server,
    /// A host firewall rule set admitting the control port and the passive range.
    Firewall,
}

/// One product's configuration for a range.
#[derive(Debug, Clone, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct Snippet {
    /// Product name as its users know it: "vsftpd", "ProFTPD", "nftables", ...
    pub name: &'static str,
    pub kind: SnippetKind,
    /// Where the text goes: a file, a shell, or a path through a GUI.
    pub location: &'static str,
    /// Paste-ready text; may be several lines, always ends with '\n'.
    pub text: String,
}

/// Reads a snippet back from a saved report (`Recommendation` derives `Deserialize`).
///
/// `name` and `location` are `&'static str`, which serde can only fill by borrowing from input that
/// lives forever; a derived impl would make every containing struct unreadable from a file. So the
/// stored `name` is looked up in the products this module knows, and `kind` and `location` come from
/// there: they are properties of the product, and a report saved before a location's wording changed
/// still loads. An unknown name is an error rather than a guess.
impl<'de> serde::Deserialize<'de> for Snippet {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;

        #[derive(serde::Deserialize)]
        struct Stored {
            name: String,
            text: String,
        }
        let stored = Stored::deserialize(deserializer)?;
        let product = PRODUCTS.iter().find(|p| p.name == stored.name).ok_or_else(|| {
            let known: Vec<&str> = PRODUCTS.iter().map(|p| p.name).collect();
            D::Error::custom(format!(
                "unknown snippet {:?}; known: {}",
                stored.name,
                known.join(", ")
            ))
        })?;
        Ok(product.snippet(stored.text))
    }
}

/// The fixed facts about a product a snippet is for.
struct Product {
    name: &'static str,
    kind: SnippetKind,
    location: &'static str,
}

impl Product {
    fn snippet(&self, text: String) -> Snippet {
        Snippet {
            name: self.name,
            kind: self.kind,
            location: self.location,
            text,
        }
    }
}

const VSFTPD: Product = Product {
    name: "vsftpd",
    kind: SnippetKind::Server,
    location: "/etc/vsftpd.conf (RHEL: /etc/vsftpd/vsftpd.conf)",
};
const PROFTPD: Product = Product {
    name: "ProFTPD",
    kind: SnippetKind::Server,
    location: "/etc/proftpd/proftpd.conf (or /etc/proftpd.conf)",
};
const PURE_FTPD: Product = Product {
    name: "Pure-FTPd",
    kind: SnippetKind::Server,
    location: "pure-ftpd command line, /etc/pure-ftpd/conf/PassivePortRange (Debian) or pure-ftpd.conf",
};
const FILEZILLA: Product = Product {
    name: "FileZilla Server",
    kind: SnippetKind::Server,
    location: "FileZilla Server 1.x administration interface: Server > Configure > Protocol settings > \
               FTP and FTP over TLS (FTPS) > Passive mode",
};
const IIS: Product = Product {
    name: "IIS",
    kind: SnippetKind::Server,
    location: "elevated command prompt in %windir%\\system32\\inetsrv",
};
const PYFTPDLIB: Product = Product {
    name: "pyftpdlib",
    kind: SnippetKind::Server,
    location: "your pyftpdlib server script, on the FTPHandler (sub)class",
};
const UNFTP: Product = Product {
    name: "unFTP/libunftp",
    kind: SnippetKind::Server,
    location: "unftp command line, or libunftp's ServerBuilder",
};
const NFTABLES: Product = Product {
    name: "nftables",
    kind: SnippetKind::Firewall,
    location: "root shell, or /etc/nftables.conf",
};
const IPTABLES: Product = Product {
    name: "iptables",
    kind: SnippetKind::Firewall,
    location: "root shell; persist with iptables-save (or netfilter-persistent save)",
};
const UFW: Product = Product {
    name: "ufw",
    kind: SnippetKind::Firewall,
    location: "root shell",
};
const FIREWALLD: Product = Product {
    name: "firewalld",
    kind: SnippetKind::Firewall,
    location: "root shell",
};

/// Every product, in output order (servers, then firewalls).
const PRODUCTS: [Product; 11] = [
    VSFTPD, PROFTPD, PURE_FTPD, FILEZILLA, IIS, PYFTPDLIB, UNFTP, NFTABLES, IPTABLES, UFW, FIREWALLD,
];

/// Passive-range settings for common FTP servers, in this order: vsftpd, ProFTPD, Pure-FTPd,
/// FileZilla Server, IIS, pyftpdlib, unFTP/libunftp.
///
/// Expects `range.min <= range.max`, as `PortRange`'s parser guarantees.
pub fn server_snippets(range: PortRange) -> Vec<Snippet> {
    vec![
        vsftpd(range),
        proftpd(range),
        pure_ftpd(range),
        filezilla(range),
        iis(range),
        pyftpdlib(range),
        unftp(range),
    ]
}

/// Inbound TCP rules for the control port and the passive range, in this order: nftables, iptables,
/// ufw, firewalld.
///
/// A single-port range is written as a plain port, because some tools reject a range whose ends are
/// equal (ufw treats `N:N` as an invalid range).
pub fn firewall_snippets(range: PortRange, control_port: u16) -> Vec<Snippet> {
    vec![
        nftables(range, control_port),
        iptables(range, control_port),
        ufw(range, control_port),
        firewalld(range, control_port),
    ]
}

/// Markdown for a report: one `### name (location)` heading and fenced block per snippet, with a
/// blank line between blocks.
///
/// The fence is three backticks unless the text itself contains a run of three or more, in which case
/// it is one longer than the longest run, so the block can't end early.
pub fn render_markdown(snippets: &[Snippet]) -> String {
    snippets
        .iter()
        .map(|s| {
            let fence = "`".repeat(longest_backtick_run(&s.text).max(2) + 1);
            let newline = if s.text.ends_with('\n') { "" } else { "\n" };
            format!("### {} ({})\n{fence}\n{}{newline}{fence}\n", s.name, s.location, s.text)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn longest_backtick_run(text: &str) -> usize {
    text.split(|c| c != '`').map(str::len).max().unwrap_or(0)
}

/// Ports in the range; saturating so a malformed range (min > max) can't panic a report.
fn ports(range: PortRange) -> u32 {
    (u32::from(range.max) + 1).saturating_sub(u32::from(range.min))
}

/// `lines` as snippet text: one per line, ending with '\n'.
fn text(lines: Vec<String>) -> String {
    let mut t = lines.join("\n");
    t.push('\n');
    t
}

/// The range in `sep` notation, or the lone port when the range is one port wide.
fn span(range: PortRange, sep: char) -> String {
    if range.min == range.max {
        range.min.to_string()
    } else {
        format!("{}{sep}{}", range.min, range.max)
    }
}

fn vsftpd(r: PortRange) -> Snippet {
    VSFTPD.snippet(text(vec![
        // vsftpd rejects a line with spaces around '=', a common copy-paste breakage.
        "# Passive-mode data ports, inclusive. No spaces around '='.".into(),
        "pasv_enable=YES".into(),
        format!("pasv_min_port={}", r.min),
        format!("pasv_max_port={}", r.max),
        "# Behind NAT, also advertise the public address in PASV replies:".into(),
        "# pasv_address=203.0.113.10".into(),
    ]))
}

fn proftpd(r: PortRange) -> Snippet {
    // ProFTPD 1.3.8 never hands out the top port of PassivePorts (its shuffle only reaches it
    // when every other port failed to bind; measured: 99 distinct ports served of 100), so the
    // directive ends one port above the range it is to serve. That also keeps min < max, which
    // set_passiveports() insists on.
    let mut lines = vec![
        "# Passive-mode data ports (server config, <Global> or <VirtualHost>). ProFTPD never".into(),
        "# hands out the last port of PassivePorts, so it ends one above the ports it serves:".into(),
    ];
    match r.max.checked_add(1) {
        Some(top) => lines.push(format!("PassivePorts {} {top}", r.min)),
        None => {
            lines.push(format!("PassivePorts {} {}", r.min, r.max));
            lines.push(format!(
                "# Note: the range ends at 65535, so ProFTPD serves only {}-{}: move it one port down.",
                r.min,
                r.max - 1
            ));
        }
    }
    lines.extend([
        "# Behind NAT, advertise the public address in PASV replies:".into(),
        "# MasqueradeAddress 203.0.113.10".into(),
    ]);
    if r.min < 1024 {
        lines.push("# Note: ProFTPD refuses passive ports below 1024 (\"port numbers must be above 1023\").".into());
    }
    PROFTPD.snippet(text(lines))
}

fn pure_ftpd(r: PortRange) -> Snippet {
    let n = ports(r);
    // Pure-FTPd lowers its client limit (-c / MaxClientsNumber) to ports / 2 when a range is set, so a
    // range sized for N transfers silently admits fewer clients; the planner's width must account for it.
    let cap = if n / 2 == 0 {
        format!(
            "# Pure-FTPd caps simultaneous clients at ports / 2, which is 0 for {n} port: give it at least 2 ports."
        )
    } else {
        format!(
            "# Pure-FTPd admits at most {} simultaneous clients with these {n} ports (ports / 2, rounded down).",
            n / 2
        )
    };
    PURE_FTPD.snippet(text(vec![
        cap,
        "# Command line (alongside your other options):".into(),
        format!("pure-ftpd -p {}:{}", r.min, r.max),
        "# Debian/Ubuntu (pure-ftpd-wrapper reads one file per option):".into(),
        format!("echo \"{} {}\" > /etc/pure-ftpd/conf/PassivePortRange", r.min, r.max),
        "# pure-ftpd.conf:".into(),
        format!("PassivePortRange {} {}", r.min, r.max),
        "# Behind NAT, advertise the public address: -P 203.0.113.10 (ForcePassiveIP in pure-ftpd.conf).".into(),
    ]))
}

fn filezilla(r: PortRange) -> Snippet {
    FILEZILLA.snippet(text(vec![
        "Use custom port range: checked".into(),
        format!("From: {}", r.min),
        format!("To: {}", r.max),
        "Behind NAT: set \"Use the following host\" to the public IP address or host name.".into(),
    ]))
}

fn iis(r: PortRange) -> Snippet {
    let mut lines = vec![
        "REM In an elevated command prompt:".into(),
        "cd /d %windir%\\system32\\inetsrv".into(),
        format!(
            "appcmd set config /section:system.ftpServer/firewallSupport /lowDataChannelPort:{} \
             /highDataChannelPort:{} /commit:apphost",
            r.min, r.max
        ),
        "REM The FTP service reads the range when it starts, so restart it:".into(),
        "net stop ftpsvc".into(),
        "net start ftpsvc".into(),
        // The default is the reason this snippet exists: unset, IIS competes with Windows' own
        // outgoing connections for the same ports.
        "REM Left at 0-0, IIS uses Windows' dynamic ports (49152-65535 by default), the same ports Windows".into(),
        "REM takes for outgoing connections.".into(),
        "REM Behind NAT, also set the external IPv4 address under FTP Firewall Support in IIS Manager.".into(),
    ];
    if r.min < 1025 {
        lines.push(format!(
            "REM Note: IIS documents 1025-65535 as valid data channel ports; {} is below that.",
            r.min
        ));
    }
    IIS.snippet(text(lines))
}

fn pyftpdlib(r: PortRange) -> Snippet {
    let end = u32::from(r.max) + 1;
    PYFTPDLIB.snippet(text(vec![
        format!(
            "# Passive-mode data ports; Python's range() stops before its end, hence {} + 1.",
            r.max
        ),
        format!("handler.passive_ports = range({}, {end})", r.min),
        "# Behind NAT, advertise the public address in PASV replies:".into(),
        "# handler.masquerade_address = \"203.0.113.10\"".into(),
    ]))
}

fn unftp(r: PortRange) -> Snippet {
    UNFTP.snippet(text(vec![
        format!(
            "# unFTP (or set UNFTP_PASSIVE_PORTS={}-{} in its environment):",
            r.min, r.max
        ),
        format!("unftp --passive-ports={}-{}", r.min, r.max),
        "# libunftp (Rust), on the ServerBuilder; the range is inclusive:".into(),
        format!("#     ServerBuilder::new(backend).passive_ports({}..={})", r.min, r.max),
        "# Both default to 49152-65535, which overlaps Linux's and Windows' ephemeral ranges.".into(),
        "# Behind NAT: unftp --passive-host=203.0.113.10 (libunftp: .passive_host(...)).".into(),
    ]))
}

fn nftables(r: PortRange, control: u16) -> Snippet {
    // nft rejects overlapping elements in one set, so a control port inside the range is left to the range.
    let (set, note) = if r.contains(control) {
        (
            format!("{{ {} }}", span(r, '-')),
            Some(format!(
                "# The control port {control} lies inside the passive range, so the range covers it."
            )),
        )
    } else {
        (format!("{{ {control}, {} }}", span(r, '-')), None)
    };
    let mut lines = vec![
        "# Assumes an inet \"filter\" table with an \"input\" chain, as in Debian's default /etc/nftables.conf.".into(),
        // Quoted so the shell passes the braces through untouched.
        format!("nft add rule inet filter input tcp dport '{set}' accept"),
        "# `add` appends: use `insert` instead if the chain ends with an explicit drop or reject rule.".into(),
        "# Or persistently, in /etc/nftables.conf inside table inet filter { chain input { ... } }:".into(),
        format!("#     tcp dport {set} accept"),
    ];
    lines.extend(note);
    NFTABLES.snippet(text(lines))
}

fn iptables(r: PortRange, control: u16) -> Snippet {
    let range = span(r, ':');
    IPTABLES.snippet(text(vec![
        format!("iptables -A INPUT -p tcp --dport {control} -j ACCEPT"),
        format!("iptables -A INPUT -p tcp --dport {range} -j ACCEPT"),
        "# IPv6 needs the same rules:".into(),
        format!("ip6tables -A INPUT -p tcp --dport {control} -j ACCEPT"),
        format!("ip6tables -A INPUT -p tcp --dport {range} -j ACCEPT"),
        "# -A appends: use -I INPUT instead if the chain ends in a DROP or REJECT rule.".into(),
        // The helper is the classic answer and worth knowing, but it needs cleartext PASV replies,
        // which is why the range rule above stays the default.
        "# Alternative for unencrypted FTP only: the nf_conntrack_ftp helper reads PASV replies on the".into(),
        "# control connection and admits each data connection as RELATED, with no range opened. It cannot".into(),
        "# read TLS-encrypted (FTPS) control traffic, so keep the range rule for FTPS.".into(),
        "#     modprobe nf_conntrack_ftp".into(),
        format!("#     iptables -t raw -A PREROUTING -p tcp --dport {control} -j CT --helper ftp"),
        "#     iptables -A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT".into(),
    ]))
}

fn ufw(r: PortRange, control: u16) -> Snippet {
    UFW.snippet(text(vec![
        format!("ufw allow {control}/tcp"),
        format!("ufw allow {}/tcp", span(r, ':')),
        "# ufw needs the /tcp suffix on port ranges; with IPV6=yes (the default) it opens IPv6 too.".into(),
    ]))
}

fn firewalld(r: PortRange, control: u16) -> Snippet {
    FIREWALLD.snippet(text(vec![
        format!("firewall-cmd --permanent --add-port={control}/tcp"),
        format!("firewall-cmd --permanent --add-port={}/tcp", span(r, '-')),
        "firewall-cmd --reload".into(),
        "# --permanent only saves the rule; --reload applies it. Add --zone=<zone> for a non-default zone.".into(),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RANGE: PortRange = PortRange { min: 30000, max: 30099 };
    const ONE: PortRange = PortRange { min: 30000, max: 30000 };

    fn by_name(snippets: &[Snippet], name: &str) -> String {
        match snippets.iter().find(|s| s.name == name) {
            Some(s) => s.text.clone(),
            None => panic!("no snippet named {name}"),
        }
    }

    #[test]
    fn server_order_count_and_kind() {
        let s = server_snippets(RANGE);
        let names: Vec<_> = s.iter().map(|s| s.name).collect();
        assert_eq!(
            names,
            [
                "vsftpd",
                "ProFTPD",
                "Pure-FTPd",
                "FileZilla Server",
                "IIS",
                "pyftpdlib",
                "unFTP/libunftp"
            ]
        );
        assert!(s.iter().all(|s| s.kind == SnippetKind::Server));
        assert!(s.iter().all(|s| s.text.ends_with('\n') && !s.text.ends_with("\n\n")));
    }

    #[test]
    fn firewall_order_count_and_kind() {
        let f = firewall_snippets(RANGE, 21);
        let names: Vec<_> = f.iter().map(|s| s.name).collect();
        assert_eq!(names, ["nftables", "iptables", "ufw", "firewalld"]);
        assert!(f.iter().all(|s| s.kind == SnippetKind::Firewall));
        assert!(f.iter().all(|s| s.text.ends_with('\n') && !s.text.ends_with("\n\n")));
    }

    #[test]
    fn every_server_snippet_has_the_exact_range() {
        let s = server_snippets(RANGE);
        for (name, needles) in [
            (
                "vsftpd",
                &[
                    "pasv_enable=YES\n",
                    "\npasv_min_port=30000\n",
                    "\npasv_max_port=30099\n",
                ][..],
            ),
            ("ProFTPD", &["\nPassivePorts 30000 30100\n", "# MasqueradeAddress "][..]),
            (
                "Pure-FTPd",
                &[
                    "\npure-ftpd -p 30000:30099\n",
                    "\necho \"30000 30099\" > /etc/pure-ftpd/conf/PassivePortRange\n",
                    "\nPassivePortRange 30000 30099\n",
                    "at most 50 simultaneous clients with these 100 ports",
                ][..],
            ),
            (
                "FileZilla Server",
                &["Use custom port range: checked\nFrom: 30000\nTo: 30099\n"][..],
            ),
            (
                "IIS",
                &[
                    "\nappcmd set config /section:system.ftpServer/firewallSupport /lowDataChannelPort:30000 \
                     /highDataChannelPort:30099 /commit:apphost\n",
                    "\nnet stop ftpsvc\nnet start ftpsvc\n",
                    "49152-65535",
                ][..],
            ),
            (
                "pyftpdlib",
                &["\nhandler.passive_ports = range(30000, 30100)\n", "masquerade_address"][..],
            ),
            (
                "unFTP/libunftp",
                &["\nunftp --passive-ports=30000-30099\n", ".passive_ports(30000..=30099)"][..],
            ),
        ] {
            let t = by_name(&s, name);
            for needle in needles {
                assert!(t.contains(needle), "{name} lacks {needle:?}:\n{t}");
            }
        }
        // The vsftpd text in full, so a layout change is a deliberate one.
        assert_eq!(
            by_name(&s, "vsftpd"),
            "# Passive-mode data ports, inclusive. No spaces around '='.\npasv_enable=YES\npasv_min_port=30000\n\
             pasv_max_port=30099\n# Behind NAT, also advertise the public address in PASV replies:\n\
             # pasv_address=203.0.113.10\n"
        );
        // Nothing range-specific is left for the range limit notes to flag.
        assert!(!by_name(&s, "ProFTPD").contains("Note:"));
        assert!(!by_name(&s, "IIS").contains("Note:"));
    }

    #[test]
    fn pyftpdlib_end_is_exclusive_even_at_the_top() {
        let t = by_name(&server_snippets(PortRange { min: 65000, max: 65535 }), "pyftpdlib");
        assert!(t.contains("range(65000, 65536)"), "{t}");
    }

    #[test]
    fn single_port_range() {
        let s = server_snippets(ONE);
        assert!(by_name(&s, "vsftpd").contains("pasv_min_port=30000\npasv_max_port=30000\n"));
        // Never `PassivePorts N N`, which ProFTPD refuses: one above the served port.
        let proftpd = by_name(&s, "ProFTPD");
        assert!(proftpd.contains("\nPassivePorts 30000 30001\n"), "{proftpd}");
        let top = by_name(&server_snippets(PortRange { min: 65000, max: 65535 }), "ProFTPD");
        assert!(
            top.contains("\nPassivePorts 65000 65535\n") && top.contains("move it one port down"),
            "{top}"
        );
        let pure = by_name(&s, "Pure-FTPd");
        assert!(pure.contains("pure-ftpd -p 30000:30000"));
        assert!(pure.contains("which is 0 for 1 port"), "{pure}");
        assert!(by_name(&s, "pyftpdlib").contains("range(30000, 30001)"));
        assert!(by_name(&s, "unFTP/libunftp").contains("--passive-ports=30000-30000"));

        let f = firewall_snippets(ONE, 2121);
        assert!(by_name(&f, "nftables").contains("tcp dport '{ 2121, 30000 }' accept"));
        assert!(by_name(&f, "iptables").contains("\niptables -A INPUT -p tcp --dport 30000 -j ACCEPT\n"));
        assert!(by_name(&f, "ufw").contains("\nufw allow 30000/tcp\n"));
        assert!(by_name(&f, "firewalld").contains("\nfirewall-cmd --permanent --add-port=30000/tcp\n"));
    }

    #[test]
    fn low_ports_are_flagged_where_servers_refuse_them() {
        let s = server_snippets(PortRange { min: 1024, max: 1100 });
        assert!(!by_name(&s, "ProFTPD").contains("Note:"));
        assert!(by_name(&s, "IIS").contains("REM Note: IIS documents 1025-65535 as valid data channel ports; 1024"));
        let s = server_snippets(PortRange { min: 1025, max: 1100 });
        assert!(!by_name(&s, "IIS").contains("Note:"), "1025 is IIS's lowest valid port");
        let s = server_snippets(PortRange { min: 900, max: 1100 });
        assert!(by_name(&s, "ProFTPD").contains("refuses passive ports below 1024"));
    }

    #[test]
    fn every_firewall_snippet_opens_control_port_and_range() {
        let f = firewall_snippets(RANGE, 2121);
        for (name, needles) in [
            (
                "nftables",
                &["\nnft add rule inet filter input tcp dport '{ 2121, 30000-30099 }' accept\n"][..],
            ),
            (
                "iptables",
                &[
                    "iptables -A INPUT -p tcp --dport 2121 -j ACCEPT\n",
                    "\niptables -A INPUT -p tcp --dport 30000:30099 -j ACCEPT\n",
                    "\nip6tables -A INPUT -p tcp --dport 2121 -j ACCEPT\n",
                    "\nip6tables -A INPUT -p tcp --dport 30000:30099 -j ACCEPT\n",
                    "nf_conntrack_ftp",
                    "--dport 2121 -j CT --helper ftp",
                ][..],
            ),
            ("ufw", &["ufw allow 2121/tcp\n", "\nufw allow 30000:30099/tcp\n"][..]),
            (
                "firewalld",
                &[
                    "firewall-cmd --permanent --add-port=2121/tcp\n",
                    "\nfirewall-cmd --permanent --add-port=30000-30099/tcp\n",
                    "\nfirewall-cmd --reload\n",
                ][..],
            ),
        ] {
            let t = by_name(&f, name);
            for needle in needles {
                assert!(t.contains(needle), "{name} lacks {needle:?}:\n{t}");
            }
        }
        assert_eq!(
            by_name(&f, "ufw"),
            "ufw allow 2121/tcp\nufw allow 30000:30099/tcp\n# ufw needs the /tcp suffix on port ranges; with IPV6=yes \
             (the default) it opens IPv6 too.\n"
        );
    }

    #[test]
    fn control_port_inside_range_keeps_nft_set_valid() {
        let f = firewall_snippets(RANGE, 30050);
        let nft = by_name(&f, "nftables");
        assert!(nft.contains("tcp dport '{ 30000-30099 }' accept"), "{nft}");
        assert!(nft.contains("control port 30050 lies inside"), "{nft}");
        for s in &f {
            assert!(s.text.contains("30050"), "{} lacks the control port", s.name);
        }
    }

    #[test]
    fn markdown_blocks() {
        let snippets = [
            Snippet {
                name: "ufw",
                kind: SnippetKind::Firewall,
                location: "root shell",
                text: "ufw allow 21/tcp\n".into(),
            },
            Snippet {
                name: "x",
                kind: SnippetKind::Server,
                location: "y",
                text: "no newline".into(),
            },
        ];
        assert_eq!(
            render_markdown(&snippets),
            "### ufw (root shell)\n```\nufw allow 21/tcp\n```\n\n### x (y)\n```\nno newline\n```\n"
        );
        assert_eq!(render_markdown(&[]), "");
        let fenced = Snippet {
            name: "md",
            kind: SnippetKind::Server,
            location: "z",
            text: "a ```` b\n".into(),
        };
        assert_eq!(render_markdown(&[fenced]), "### md (z)\n`````\na ```` b\n`````\n");
    }

    #[test]
    fn markdown_of_real_snippets_has_one_heading_each() {
        let mut all = server_snippets(RANGE);
        all.extend(firewall_snippets(RANGE, 21));
        let md = render_markdown(&all);
        assert_eq!(md.matches("### ").count(), 11);
        assert!(md.starts_with("### vsftpd (/etc/vsftpd.conf (RHEL: /etc/vsftpd/vsftpd.conf))\n```\n"));
        assert!(md.ends_with("--zone=<zone> for a non-default zone.\n```\n"));
    }

    #[test]
    fn products_match_output_order() {
        let mut all = server_snippets(RANGE);
        all.extend(firewall_snippets(RANGE, 21));
        let got: Vec<_> = all.iter().map(|s| (s.name, s.kind, s.location)).collect();
        let want: Vec<_> = PRODUCTS.iter().map(|p| (p.name, p.kind, p.location)).collect();
        assert_eq!(got, want);
    }

    /// Mirrors a report struct that derives `Deserialize` and holds snippets.
    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
    struct Report {
        snippets: Vec<Snippet>,
    }

    #[test]
    fn round_trips_through_json_from_an_owned_string() {
        let mut snippets = server_snippets(RANGE);
        snippets.extend(firewall_snippets(RANGE, 2121));
        let report = Report { snippets };
        let json: String = serde_json::to_string(&report).unwrap();
        let back: Report = serde_json::from_str(&json).unwrap();
        assert_eq!(back, report);
        // kind and location follow the name, so older wording still loads.
        let old = r#"{"name":"ufw","kind":"firewall","location":"somewhere else","text":"ufw allow 21/tcp\n"}"#;
        let s: Snippet = serde_json::from_str(old).unwrap();
        assert_eq!(
            (s.name, s.kind, s.location, s.text.as_str()),
            ("ufw", SnippetKind::Firewall, "root shell", "ufw allow 21/tcp\n")
        );
        let err = serde_json::from_str::<Snippet>(r#"{"name":"wu-ftpd","text":"x"}"#)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("unknown snippet \"wu-ftpd\"; known: vsftpd, ProFTPD, Pure-FTPd,"),
            "{err}"
        );
    }

    #[test]
    fn serializes_kind_snake_case() {
        let s = &firewall_snippets(RANGE, 21)[2];
        let v = serde_json::to_value(s).unwrap();
        assert_eq!(v["name"], "ufw");
        assert_eq!(v["kind"], "firewall");
        assert_eq!(v["location"], "root shell");
        assert_eq!(serde_json::to_value(SnippetKind::Server).unwrap(), "server");
    }
}

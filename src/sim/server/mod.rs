//! What a server does with its passive range, as the simulator needs it: how it picks a port,
//! when it takes and frees one, how its binds race, whom it admits, and how it reacts when
//! no port can be had. Every field says where its value came from, so `plan` can tell the
//! reader which inputs were measured and which were assumed.

use serde::{Deserialize, Serialize};

mod measured;
pub use measured::*;

/// How a server chooses the port a `PASV`/`EPSV` gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", tag = "order")]
pub enum PickOrder {
    /// Up to `tries` random ports, then a refusal even when free ports remain (vsftpd,
    /// libunftp: 9).
    RandomTries { tries: u32 },
    /// Any free port, each equally likely: a scan in shuffled order (ProFTPD) or a list
    /// reshuffled per PASV (pyftpdlib). Fails only when every port is held.
    AnyFree,
    /// A random first port, then upwards to the first free one (Pure-FTPd).
    RandomStartThenScan,
}

impl PickOrder {
    pub fn describe(self) -> String {
        match self {
            PickOrder::RandomTries { tries } => format!("{tries} random tries"),
            PickOrder::AnyFree => "any free port (shuffled scan)".into(),
            PickOrder::RandomStartThenScan => "random start, then scan".into(),
        }
    }
}

/// When the server's hold on a port begins, seen in our timestamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum HoldStart {
    /// When we sent the PASV: the earliest a server can bind, the safe side for a server
    /// whose behaviour is not known.
    PasvSent,
    /// When its 227/229 reached us: right for a server in its own process, which binds last
    /// thing before replying.
    PasvReply,
}

/// When the server's hold on a port ends, seen in our timestamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum HoldEnd {
    /// It closes the listener as soon as our data connection arrives (a server that accepts
    /// before the transfer command; ProFTPD and pyftpdlib accept only when they process it).
    DataConnected,
    /// Once it has processed the transfer command after the accept (libunftp). We see neither
    /// event, only our data connection and our first byte around them; the release is placed
    /// [`ServerModel::command_taken_share`] of the way from one to the other.
    TransferCommand,
    /// When the transfer's data connection closes.
    DataClosed,
    /// After it has written the final reply (226): vsftpd.
    FinalReply,
    /// Until the same control connection's next PASV or QUIT: an idle session keeps its
    /// listener (Pure-FTPd).
    NextCommand,
}

impl HoldEnd {
    pub fn describe(self) -> &'static str {
        match self {
            HoldEnd::DataConnected => "until it accepts the data connection",
            HoldEnd::TransferCommand => "until it has processed the transfer command",
            HoldEnd::DataClosed => "until the data connection closes",
            HoldEnd::FinalReply => "until it has sent the final reply",
            HoldEnd::NextCommand => "until the session's next PASV or QUIT",
        }
    }

    /// Longer holds sort later: the safe side of two candidates is the later one.
    pub fn rank(self) -> u8 {
        match self {
            HoldEnd::DataConnected => 0,
            HoldEnd::TransferCommand => 1,
            HoldEnd::DataClosed => 2,
            HoldEnd::FinalReply => 3,
            HoldEnd::NextCommand => 4,
        }
    }
}

/// What the server answers when no port can be had.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnExhausted {
    /// A negative reply (`425`, vsftpd's `500 OOPS`).
    Refuse,
    /// A port outside the range from the kernel, which a firewall opened for the range drops
    /// (ProFTPD, pyftpdlib).
    GrantOutside,
}

/// What a refused PASV does to its control connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnRefusal {
    /// The session carries on with its next file.
    Continue,
    /// The server ends the control connection (vsftpd's `500 OOPS`): its remaining files
    /// never run there.
    DropConnection,
}

/// How many control connections the server admits at once, as a function of the width.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", tag = "rule", content = "value")]
pub enum Admission {
    Unlimited,
    /// Pure-FTPd: at most width / 2 clients (at least 1), whatever `-c` says; a one-port
    /// range means no cap.
    HalfTheWidth,
    /// A fixed cap whatever the width.
    Fixed(u32),
}

impl Admission {
    pub fn cap(self, width: u32) -> Option<u32> {
        match self {
            Admission::Unlimited => None,
            Admission::HalfTheWidth if width <= 1 => None,
            Admission::HalfTheWidth => Some((width / 2).max(1)),
            Admission::Fixed(n) => Some(n),
        }
    }

    pub fn describe(self) -> String {
        match self {
            Admission::Unlimited => "no cap".into(),
            Admission::HalfTheWidth => "at most width / 2 clients".into(),
            Admission::Fixed(n) => format!("at most {n} clients"),
        }
    }
}

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", tag = "how", content = "why")]
pub enum Source {
    /// Measured in this run or by `probe`.
    Measured(String),
    /// Known behaviour of the server the run identified.
    Known(String),
    /// Nothing told us: the safe side was taken.
    Assumed(String),
    /// Given on the command line.
    Given,
}

impl Source {
    pub fn describe(&self) -> String {
        match self {
            Source::Measured(w) => format!("measured: {w}"),
            Source::Known(w) => format!("known: {w}"),
            Source::Assumed(w) => format!("assumed: {w}"),
            Source::Given => "given on the command line".into(),
        }
    }
    pub fn is_assumed(&self) -> bool {
        matches!(self, Source::Assumed(_))
    }
}

/// A value and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Sourced<T> {
    pub value: T,
    pub source: Source,
}

impl<T> Sourced<T> {
    pub fn new(value: T, source: Source) -> Self {
        Sourced { value, source }
    }
}

/// The server the run identified, from its greeting or from being the embedded one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ServerKind {
    Embedded,
    Vsftpd,
    Proftpd,
    PureFtpd,
    Pyftpdlib,
    Libunftp,
    Unknown,
}

impl ServerKind {
    /// Identifies a server from its `220` greeting (all lines).
    pub fn from_greeting(greeting: &str) -> ServerKind {
        let g = greeting.to_ascii_lowercase();
        // Ours, driven by URL (a sweep's server, `ftpswarm serve`): its binder cannot race, and
        // its greeting would otherwise make it the unknown server with every safe-side guess.
        if g.contains(crate::server::GREETING_NAME) {
            ServerKind::Embedded
        } else if g.contains("vsftpd") {
            ServerKind::Vsftpd
        } else if g.contains("proftpd") {
            ServerKind::Proftpd
        } else if g.contains("pure-ftpd") || (g.contains("you are user number") && g.contains("allowed")) {
            ServerKind::PureFtpd
        } else if g.contains("pyftpdlib") {
            ServerKind::Pyftpdlib
        } else if g.contains("unftp") || g.contains("libunftp") {
            ServerKind::Libunftp
        } else {
            ServerKind::Unknown
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ServerKind::Embedded => "the embedded server (libunftp)",
            ServerKind::Vsftpd => "vsftpd",
            ServerKind::Proftpd => "ProFTPD",
            ServerKind::PureFtpd => "Pure-FTPd",
            ServerKind::Pyftpdlib => "pyftpdlib",
            ServerKind::Libunftp => "libunftp/unFTP",
            ServerKind::Unknown => "an unidentified server",
        }
    }
}

/// Everything the simulator needs to know about a server's passive range handling.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ServerModel {
    pub kind: ServerKind,
    pub pick: Sourced<PickOrder>,
    pub hold_start: Sourced<HoldStart>,
    pub hold_end: Sourced<HoldEnd>,
    /// How long after the hold end (in our timestamps) the port becomes free again; negative
    /// when the run's own refusals show holds shorter than our timestamps suggest.
    pub release_lag_us: Sourced<f64>,
    /// Bind/listen race: a port one session has bound but not yet listened on looks free to
    /// another, whose listen() then fails (`425 … Address already in use`). This is the
    /// window's base; the TIME_WAIT sockets on the port lengthen it (see
    /// [`ServerModel::window_at`]). Zero for servers that cannot race.
    pub collision_window_us: Sourced<f64>,
    /// Which quantile of the calibrated window to size on: above the median for a server
    /// whose collisions vary widely between runs (ProFTPD), the median otherwise.
    pub collision_window_quantile: f64,
    /// For [`HoldEnd::TransferCommand`]: see [`COMMAND_TAKEN_SHARE`].
    pub command_taken_share: f64,
    /// Ports of a configured range the server never hands out (ProFTPD 1.3.8 leaves out the
    /// top one of `PassivePorts`).
    pub unused_ports: Sourced<u32>,
    pub on_exhausted: Sourced<OnExhausted>,
    pub on_refusal: Sourced<OnRefusal>,
    pub admission: Sourced<Admission>,
    /// Whether every session waits while one PASV's bind() walks the TIME_WAIT sockets on
    /// its port: a server with one event loop for all sessions (pyftpdlib). See
    /// [`ServerModel::bind_stall_us`].
    #[serde(default = "no_event_loop")]
    pub one_event_loop: Sourced<bool>,
}

fn no_event_loop() -> Sourced<bool> {
    Sourced::new(
        false,
        Source::Assumed("not recorded by the build that wrote this plan".into()),
    )
}

fn known(kind: ServerKind, why: &str) -> Source {
    Source::Known(format!("{} {why}", kind.name()))
}

impl ServerModel {
    /// The behaviour measured on loopback for each known server (README, "Passive port
    /// holding"); the unknown server gets the safe side of every choice.
    pub fn known(kind: ServerKind) -> ServerModel {
        use ServerKind as K;
        let k = |why: &str| known(kind, why);
        match kind {
            K::Embedded => ServerModel {
                kind,
                pick: Sourced::new(PickOrder::RandomTries { tries: 9 }, k("tries 9 random ports")),
                hold_start: Sourced::new(HoldStart::PasvReply, k("binds just before replying")),
                hold_end: Sourced::new(
                    HoldEnd::TransferCommand,
                    k("frees a port once it has processed RETR/STOR/LIST"),
                ),
                release_lag_us: Sourced::new(0.0, k("releases in the same process")),
                collision_window_us: Sourced::new(0.0, k("listens as it binds, so its binds cannot race")),
                collision_window_quantile: 0.5,
                command_taken_share: EMBEDDED_COMMAND_TAKEN_SHARE,
                unused_ports: Sourced::new(0, k("uses every port of its range")),
                on_exhausted: Sourced::new(OnExhausted::Refuse, k("answers 425")),
                on_refusal: Sourced::new(OnRefusal::Continue, k("keeps the session after a 425")),
                admission: Sourced::new(Admission::Unlimited, k("admits every client")),
                one_event_loop: Sourced::new(
                    false,
                    k("binds on a thread of its own, so a bind() walking its port's TIME_WAITs holds up no other session"),
                ),
            },
            K::Libunftp => ServerModel {
                kind,
                pick: Sourced::new(PickOrder::RandomTries { tries: 9 }, k("tries 9 random ports")),
                hold_start: Sourced::new(HoldStart::PasvReply, k("binds just before replying")),
                hold_end: Sourced::new(
                    HoldEnd::TransferCommand,
                    k("frees a port once it has processed RETR/STOR/LIST"),
                ),
                release_lag_us: Sourced::new(0.0, k("releases in the session's task")),
                collision_window_us: Sourced::new(
                    TYPICAL_RACE_WINDOW_US,
                    Source::Assumed("stock libunftp races bind and listen, like ProFTPD".into()),
                ),
                collision_window_quantile: RACE_WINDOW_QUANTILE,
                command_taken_share: COMMAND_TAKEN_SHARE,
                unused_ports: Sourced::new(0, k("uses every port of its range")),
                on_exhausted: Sourced::new(OnExhausted::Refuse, k("answers 425")),
                on_refusal: Sourced::new(OnRefusal::Continue, k("keeps the session after a 425")),
                admission: Sourced::new(Admission::Unlimited, k("admits every client")),
                one_event_loop: Sourced::new(false, k("serves sessions on a pool of threads")),
            },
            K::Vsftpd => ServerModel {
                kind,
                pick: Sourced::new(PickOrder::RandomTries { tries: 9 }, k("tries 9 random ports")),
                hold_start: Sourced::new(HoldStart::PasvReply, k("binds just before replying")),
                hold_end: Sourced::new(HoldEnd::FinalReply, k("closes its listener only after writing the 226")),
                release_lag_us: Sourced::new(
                    VSFTPD_RELEASE_LAG_US,
                    k("holds a port 0.4-1.3 ms longer than from our 227 to our 226 (calibrated on sixteen sweep runs at 4 to 86 ports); sized on their 80% quantile"),
                ),
                collision_window_us: Sourced::new(0.0, k("retries a failed bind")),
                collision_window_quantile: 0.5,
                command_taken_share: COMMAND_TAKEN_SHARE,
                unused_ports: Sourced::new(0, k("uses every port of its range")),
                on_exhausted: Sourced::new(OnExhausted::Refuse, k("answers 500 OOPS: vsf_sysutil_bind")),
                on_refusal: Sourced::new(OnRefusal::DropConnection, k("ends the session with its 500 OOPS")),
                admission: Sourced::new(
                    Admission::Unlimited,
                    k("admits up to max_clients, not tied to the range"),
                ),
                one_event_loop: Sourced::new(false, k("runs a process per session")),
            },
            K::Proftpd => ServerModel {
                kind,
                pick: Sourced::new(PickOrder::AnyFree, k("scans the range in shuffled order")),
                hold_start: Sourced::new(HoldStart::PasvReply, k("binds just before replying")),
                hold_end: Sourced::new(
                    HoldEnd::TransferCommand,
                    k("accepts (and closes its listener) when it processes RETR/STOR/LIST"),
                ),
                release_lag_us: Sourced::new(0.0, k("releases at accept")),
                collision_window_us: Sourced::new(
                    PROFTPD_RACE_WINDOW_US,
                    k("races bind and listen between session processes"),
                ),
                collision_window_quantile: PROFTPD_RACE_WINDOW_QUANTILE,
                command_taken_share: COMMAND_TAKEN_SHARE,
                unused_ports: Sourced::new(1, k("1.3.8 never hands out the top port of PassivePorts")),
                on_exhausted: Sourced::new(OnExhausted::GrantOutside, k("falls back to a port outside the range")),
                on_refusal: Sourced::new(OnRefusal::Continue, k("keeps the session after a 425")),
                admission: Sourced::new(
                    Admission::Unlimited,
                    k("admits up to MaxInstances, not tied to the range"),
                ),
                one_event_loop: Sourced::new(false, k("runs a process per session")),
            },
            K::PureFtpd => ServerModel {
                kind,
                pick: Sourced::new(PickOrder::RandomStartThenScan, k("starts at a random port, then scans")),
                hold_start: Sourced::new(HoldStart::PasvReply, k("binds just before replying")),
                hold_end: Sourced::new(
                    HoldEnd::NextCommand,
                    k("keeps an idle session's listener until its next PASV or QUIT"),
                ),
                release_lag_us: Sourced::new(0.0, k("releases as the next command arrives")),
                collision_window_us: Sourced::new(
                    TYPICAL_RACE_WINDOW_US,
                    k("races bind and listen between session processes"),
                ),
                collision_window_quantile: RACE_WINDOW_QUANTILE,
                command_taken_share: COMMAND_TAKEN_SHARE,
                unused_ports: Sourced::new(0, k("uses every port of its range")),
                on_exhausted: Sourced::new(OnExhausted::Refuse, k("answers 425 All reserved TCP ports are busy")),
                on_refusal: Sourced::new(OnRefusal::Continue, k("keeps the session after a 425")),
                admission: Sourced::new(Admission::HalfTheWidth, k("admits at most width / 2 clients")),
                one_event_loop: Sourced::new(false, k("runs a process per session")),
            },
            K::Pyftpdlib => ServerModel {
                kind,
                pick: Sourced::new(PickOrder::AnyFree, k("reshuffles its port list for every PASV")),
                hold_start: Sourced::new(HoldStart::PasvReply, k("binds just before replying")),
                hold_end: Sourced::new(
                    HoldEnd::TransferCommand,
                    k("closes its listener when its one event loop gets to the accept, under load well after our connect"),
                ),
                release_lag_us: Sourced::new(0.0, k("releases at accept")),
                collision_window_us: Sourced::new(0.0, k("is one process: its binds cannot race")),
                collision_window_quantile: 0.5,
                command_taken_share: COMMAND_TAKEN_SHARE,
                unused_ports: Sourced::new(0, k("uses every port of its range")),
                on_exhausted: Sourced::new(OnExhausted::GrantOutside, k("falls back to a port outside the range")),
                on_refusal: Sourced::new(OnRefusal::Continue, k("keeps the session")),
                admission: Sourced::new(Admission::Unlimited, k("admits up to max_cons, not tied to the range")),
                one_event_loop: Sourced::new(
                    true,
                    k("serves every session from one event loop, which waits while a bind() walks its port's TIME_WAITs"),
                ),
            },
            K::Unknown => {
                let a = |why: &str| Source::Assumed(format!("{why}; run `ftpswarm probe` to measure it"));
                ServerModel {
                    kind,
                    pick: Sourced::new(
                        PickOrder::RandomTries { tries: 9 },
                        a("9 random tries, the pick that fails soonest"),
                    ),
                    hold_start: Sourced::new(HoldStart::PasvSent, a("held from the PASV, the earliest it can be")),
                    hold_end: Sourced::new(
                        HoldEnd::NextCommand,
                        a("held until the session's next command, the longest any server holds"),
                    ),
                    release_lag_us: Sourced::new(0.0, a("no lag beyond that")),
                    collision_window_us: Sourced::new(TYPICAL_RACE_WINDOW_US, a("binds may race, as ProFTPD's do")),
                    collision_window_quantile: RACE_WINDOW_QUANTILE,
                command_taken_share: COMMAND_TAKEN_SHARE,
                    unused_ports: Sourced::new(0, a("uses every port of its range")),
                    on_exhausted: Sourced::new(OnExhausted::Refuse, a("refuses")),
                    on_refusal: Sourced::new(OnRefusal::DropConnection, a("drops the session on a refusal")),
                    admission: Sourced::new(Admission::Unlimited, a("no admission cap tied to the range")),
                    one_event_loop: Sourced::new(
                        false,
                        a("no stall of other sessions while one binds: its holds already last until the next command"),
                    ),
                }
            }
        }
    }

    /// Whether our timestamps of the server's holds run late, so that its own listener
    /// counts may shorten the known hold, not only lengthen it: the embedded server, which
    /// shares our process's async runtime, on a host the run kept busy (`host_cpu_busy` from
    /// [`HOLDS_SEEN_LATE_CPU_BUSY`] on). Its 227 and its accept then wait for the same worker
    /// threads as our client's reads: in a 10 s burst run (host 96% busy) its listeners on the
    /// range averaged 8.65 where our view of its holds gave 12.72 (0.44 ms shorter each).
    /// Planned on our view, 0.7 × the plan was predicted to lose 16.2% of sessions where a
    /// sweep measured 1.06%; on the listeners, 2.5%. On an idle host the fit is noise with the
    /// wrong sign for a narrow range: a realistic run (host 8% busy) fitted −0.08 ms, which
    /// planned 4 ports where a sweep then measured 2.86% of sessions failing (0.48% predicted).
    pub fn holds_seen_late(&self, host_cpu_busy: Option<f64>) -> bool {
        self.kind == ServerKind::Embedded && host_cpu_busy.is_some_and(|b| b >= HOLDS_SEEN_LATE_CPU_BUSY)
    }

    /// Whether the server's binds can race, so the run's collisions calibrate a window.
    pub fn may_collide(&self) -> bool {
        self.races()
    }

    /// The race window at `width` ports when the server closes `closes_per_s` data
    /// connections per second first and their TIME_WAITs have piled up for `horizon_s`
    /// seconds (at most [`TIME_WAIT_S`]): the base once more for every
    /// [`RACE_WINDOW_DOUBLING_TIME_WAITS`] TIME_WAITs on a port.
    pub fn window_at(&self, width: u32, closes_per_s: f64, horizon_s: f64) -> f64 {
        let time_waits = closes_per_s.max(0.0) * horizon_s.clamp(0.0, TIME_WAIT_S) / f64::from(width.max(1));
        self.collision_window_us.value.max(0.0) * (1.0 + time_waits / RACE_WINDOW_DOUBLING_TIME_WAITS)
    }

    /// How long one PASV's bind() holds up a one-loop server at `width` ports, when it closes
    /// `closes_per_s` data connections per second first and their TIME_WAITs have piled up
    /// for `horizon_s` seconds (at most [`TIME_WAIT_S`]): zero for a server with a process
    /// or thread per session, whose binds hold up only their own session.
    pub fn bind_stall_us(&self, width: u32, closes_per_s: f64, horizon_s: f64) -> f64 {
        if !self.one_event_loop.value {
            return 0.0;
        }
        let time_waits = closes_per_s.max(0.0) * horizon_s.clamp(0.0, TIME_WAIT_S) / f64::from(width.max(1));
        TIME_WAIT_BIND_US * time_waits
    }

    /// Whether the server's processes race bind() and listen() at all.
    pub fn races(&self) -> bool {
        !matches!(
            self.kind,
            ServerKind::Embedded | ServerKind::Pyftpdlib | ServerKind::Vsftpd
        )
    }

    /// Ports of a `width`-port range the server really hands out.
    pub fn usable(&self, width: u32) -> u32 {
        width.saturating_sub(self.unused_ports.value).max(1)
    }

    /// Every input with its source, for the plan's "measured / assumed" lines.
    pub fn inputs(&self) -> Vec<(&'static str, String, &Source)> {
        let mut v = vec![
            ("port pick", self.pick.value.describe(), &self.pick.source),
            (
                "hold",
                format!(
                    "from the {} {}",
                    match self.hold_start.value {
                        HoldStart::PasvSent => "PASV",
                        HoldStart::PasvReply => "227",
                    },
                    self.hold_end.value.describe()
                ),
                &self.hold_end.source,
            ),
            (
                "release lag",
                format!("{:.2} ms", self.release_lag_us.value / 1e3),
                &self.release_lag_us.source,
            ),
            (
                "bind race",
                if self.races() {
                    format!(
                        "{:.1} µs window on a clean port, once more for every {RACE_WINDOW_DOUBLING_TIME_WAITS:.0} \
                         TIME_WAITs on it",
                        self.collision_window_us.value
                    )
                } else {
                    "none".into()
                },
                &self.collision_window_us.source,
            ),
            (
                "when exhausted",
                match self.on_exhausted.value {
                    OnExhausted::Refuse => "refuses".into(),
                    OnExhausted::GrantOutside => "grants a port outside the range".to_string(),
                },
                &self.on_exhausted.source,
            ),
            (
                "after a refusal",
                match self.on_refusal.value {
                    OnRefusal::Continue => "the session goes on".into(),
                    OnRefusal::DropConnection => "the connection is dropped".to_string(),
                },
                &self.on_refusal.source,
            ),
            ("admission", self.admission.value.describe(), &self.admission.source),
        ];
        if self.one_event_loop.value {
            v.push((
                "bind stall",
                format!(
                    "{TIME_WAIT_BIND_CPU_US} µs of its loop's CPU per TIME_WAIT on the port for every PASV, more \
                     demand on the one core every session queues for, when the run measured that core's share; \
                     otherwise {TIME_WAIT_BIND_US} µs per TIME_WAIT on every PASV's reply, which every session \
                     waits for (holds gain {:.0}% of it)",
                    STALL_HOLD_SHARE * 100.0
                ),
                &self.one_event_loop.source,
            ));
        }
        if self.unused_ports.value > 0 {
            v.push((
                "unused ports",
                format!("the top {} of the configured range", self.unused_ports.value),
                &self.unused_ports.source,
            ));
        }
        v
    }
}

#[cfg(test)]
mod tests;

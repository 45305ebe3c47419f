//! The per-server constants of the model, each with the measurements it was fitted on: where
//! a server frees its port, its race window and the quantile plans are sized on, its release
//! lag, the bind stall, and when our view of the embedded server's holds runs late.

/// Where between our data connection and our first byte a server that frees its port on
/// taking the transfer command does so, in our timestamps, for a server in its own process.
pub const COMMAND_TAKEN_SHARE: f64 = 0.75;
/// The same for the embedded server, which shares our runtime, so how far our timestamps lag
/// behind it depends on the load. Measured: 0.5 reproduces `sweep-burst` (16 to 32 ports:
/// 25/5.8/1.7/0.5% of sessions predicted, 35/6.2/1.9/0.5% measured), 1.0 the quick profile
/// (6 and 8 ports: 6.7/1.1% predicted, 7.1/2.1% measured), and at 0.75 the quick profile's plan
/// (9 ports) measured 3.3%. The safe end is taken.
pub const EMBEDDED_COMMAND_TAKEN_SHARE: f64 = 1.0;

/// A server that closes a data connection first (a download, a listing) leaves a TIME_WAIT
/// socket on the passive port for 60 s, and every bind() and listen() on that port walks
/// them (`inet_bhash2_conflict`); they crowd a narrow range: at 400 downloads/s a 100-port
/// range carries 240 per port, a 32-port range 750. The window in which two sessions' binds
/// race grows with them, far faster than the time one bind takes (0.13 µs per TIME_WAIT on
/// a 20 µs bind + listen, measured alone): the race window gains its clean-port base again
/// for every this many TIME_WAITs on the port (twice the base at 20, three times at 40). Fitted on five 90 s runs of ProFTPD 1.3.8 and Pure-FTPd 1.0.50 on
/// loopback (burst profile at 60 and 141 ports, realistic at 34, 60 and 80), by the base
/// window the replay of each run calibrates and by what the fitted model then predicts for
/// the run's own last 30 s (measured share of PASVs lost to races / predicted):
///
/// | TIME_WAITs per base | ProFTPD base windows | the five runs above, measured / predicted |
/// |---:|---|---|
/// | 154 (the cost of one bind) | burst 43–56 µs, realistic 27–38 | 0.105/0.297, 0.64/1.01, 0.10/0.137, 0.25/0.31, 0.27/0.26 |
/// | 40 | 8–13, 9–14 | 0.105/0.170, 0.64/0.60, 0.10/0.139, 0.25/0.31, 0.27/0.26 |
/// | 20 | 4–5, 5–7 | 0.105/0.111, 0.64/0.62, 0.10/0.134, 0.25/0.31, 0.27/0.30 |
/// | 10 | 2–3, 3–5 | 0.105/0.129, 0.64/0.83, 0.10/0.160, 0.25/0.45, 0.27/0.34 |
///
/// At 20 one base window fits both profiles and every width, and the runs' own collisions
/// grew over their first minute as it says (ProFTPD burst at 60 ports: 0.10% of PASVs in the
/// first 15 s, 0.73% at 60–75 s). With the cost of one bind as the stretch, a plan fitted
/// on a 10–20 s run saw too little of that growth and sized the realistic profile too narrow.
pub const RACE_WINDOW_DOUBLING_TIME_WAITS: f64 = 20.0;
/// How busy the host must have been for our view of the embedded server's holds to count as
/// late (see [`super::ServerModel::holds_seen_late`]): halfway between the realistic profile's runs
/// (8% busy) and the burst profile's (96%).
pub const HOLDS_SEEN_LATE_CPU_BUSY: f64 = 0.5;
/// Linux keeps a TIME_WAIT socket for 60 s.
pub const TIME_WAIT_S: f64 = 60.0;

/// The base of the race window (on a port without TIME_WAITs) a server that races shows: the
/// prior a run with few collisions is weighed against. The window is seen through our own
/// timestamps of the 227s, which spread PASVs the server handled within microseconds of each
/// other, so it is an effective window. For ProFTPD 1.3.8 (with
/// [`RACE_WINDOW_DOUBLING_TIME_WAITS`]), the window at which the plan of a 10–20 s plain run
/// at 100 ports predicts what a sweep then measured once the load had run a minute
/// (`plan --race-window`, 2026-12-07, five plain runs): 2.2, 2.9 and 3.3 µs on the burst
/// profile, 4.4 and 4.6 µs on the realistic one. A plain run sees 0 to 2 races, so the prior
/// mostly decides. 3 µs (their geometric mean, sized on its median) planned 81 and 35 ports
/// for the last two, and sweeps measured 1.63% and 1.77% of sessions failing there; 5 µs
/// stays (and, with the binds spread, makes as many races as the plain runs show).
pub const PROFTPD_RACE_WINDOW_US: f64 = 5.0;
/// The same for Pure-FTPd 1.0.50 (realistic profile at 80 ports: 14–17 µs), whose
/// random-start scan funnels racing sessions onto the same free port; also the window assumed
/// for a server that may race and was not measured (stock libunftp, the unknown server).
pub const TYPICAL_RACE_WINDOW_US: f64 = 15.0;

/// Pure-FTPd's race windows differ with the load more than the TIME_WAIT stretch explains
/// (plain runs at 100 ports: 2–4 µs on the burst profile, 17–28 µs on the realistic one), and
/// sized on the median an earlier build's widths lost 1.3% (burst) and 1.65% (realistic) of
/// sessions where 0.74% and 0.55% were predicted: its plans are sized on the window's 80%
/// quantile. So were ProFTPD's until the replay spread the binds (see
/// [`PROFTPD_RACE_WINDOW_QUANTILE`]): on its median, one realistic plain run in three (no race seen)
/// planned 40 ports, where a sweep measured 1.71% of sessions failing (interval to 2.68%; 57
/// ports measured 0.64%); on the 80% quantile those three plan 54–80 ports and the burst
/// profile's four 145–253 (measured 0.52–0.61% at 136–153 ports, 1.63% at 81), 2026-12-07. An
/// earlier build found ProFTPD's plans 1.5× too wide on it (0.7 × the width met the target on
/// both profiles): too wide is the side to err on.
pub const RACE_WINDOW_QUANTILE: f64 = 0.8;

/// ProFTPD's plans are sized on the window's median: once the replay places each bind between
/// our PASV and its 227 (see `sim::replay`), its typical 5 µs makes the races ProFTPD's plain
/// runs show (10 s at 100 ports, four runs per profile: burst 5 seen, 5.8 replayed; realistic
/// 2 and 2.0), so the prior is not in doubt the way Pure-FTPd's is (16 seen, 141 replayed at
/// its 15 µs on the burst profile). On the 80% quantile the eight runs planned 140–186 ports
/// (burst) and 55–70 (realistic), where sweeps measured 0.5–1.0% of sessions failing at 136–176
/// and 1.6% at 81: 0.7 × those plans met the target too. On the median: 112–157 and 44–57.
pub const PROFTPD_RACE_WINDOW_QUANTILE: f64 = 0.5;

/// The lag that makes a replay at a run's own width refuse as often as the run did (at the
/// 80% quantile of its count), on sixteen vsftpd sweep runs at 4 to 86 ports over four days,
/// with each dropped session's refusal counted once (`calibrate::refusals_the_range_made`):
/// 0.42, 0.48, 0.52, 0.62, 0.73, 0.79, 0.79, 0.81, 0.81, 0.84, 0.91, 0.98, 1.10, 1.10, 1.21
/// and 1.33 ms. A plan whose run could
/// not calibrate it (no refusals on a wide range) takes their 80% quantile. (Counting every
/// refusal vsftpd's dying session leaves, 2.3–2.8 per dropped connection, earlier builds fitted
/// 1.8–4.4 ms and planned on 3 ms: vsftpd's burst plans were 1.6× wider than needed.)
///
/// It is an effective lag, not the listener's: the kernel's own record of its sockets
/// (`perf record -e sock:inet_sock_set_state`, 74,000 PASVs at 6 ports) shows vsftpd closing
/// the listener within 0.03 ms of our 226 (90% of PASVs; 0.6 ms at the 99th percentile) and
/// opening it 0.13–0.42 ms before our 227 reaches us, earlier as TIME_WAITs pile up on the
/// port (`benches/kernel_holds.py`). While the PASVs it refused were pending, 4 to 6 of the 6
/// ports were listening (373 of 382; all 6 for 220). The replayed holds need the rest to reach
/// the run's refusals: the run's bursts are tighter than a replay of its timestamps keeps.
pub const VSFTPD_RELEASE_LAG_US: f64 = 1_100.0;

/// Time a one-loop server's bind() (with listen()) spends per TIME_WAIT socket on its port,
/// in which every session waits: Linux checks a new bind against every socket bound to the
/// same address and port (`inet_bhash2_conflict`), TIME_WAITs included, and those are
/// scattered in memory. `perf` on pyftpdlib (realistic profile, 4 ports, 12–22 s into the
/// run): 16% of its CPU in `inet_bhash2_conflict` from bind and listen, none visible at 100
/// ports. Its PASV replies slowed by 0.16–0.18 µs per TIME_WAIT on the port (runs of 60 s at
/// 4 ports and 100 s at 8, and a 20 s run at 4 ports on 3,000 TIME_WAITs made beforehand).
/// A tight loop of binds on freshly made TIME_WAITs costs far less (0.02 µs each): the cache
/// misses are the cost.
pub const TIME_WAIT_BIND_US: f64 = 0.2;

/// The CPU a one-loop server's PASV spends per TIME_WAIT on its port (its bind() tries and
/// listen() walking them), as more demand on its own core: the cost itself, where
/// [`TIME_WAIT_BIND_US`] is what the PASV replies slowed by, queueing behind other binds
/// included. pyftpdlib, realistic profile, 90 s runs (`server_cpu_cores` in the timeline):
/// 20 sessions on 6 ports, its loop from 0.27 to 0.36 of a core at 2,900 TIME_WAITs a port and
/// 420 PASVs/s (0.074 µs each); 40 sessions on 9 ports, from about 0.45 to 0.78 at 3,400 and
/// 790/s (0.12 µs); 40 sessions on 8 ports, from 0.39 to 0.83 at 3,860 and 790/s (0.14 µs).
/// More PASVs find their first port taken when the ports are busier, and each taken port
/// tried is one more walk. Taken at the busiest, where a plan for more sessions needs it:
/// with it the replay of a 20 s run at 20 sessions predicted 3.1% of sessions failing on 4
/// ports where a sweep measured 2.3% (0.08 µs: 1.1%), and 8.4% for 40 sessions on 8 ports
/// where 4.4% failed (0.08 µs: 0.23%).
pub const TIME_WAIT_BIND_CPU_US: f64 = 0.14;

/// How much of a one-loop server's bind stall the holds of other sessions' ports gain: their
/// transfer commands wait in the loop behind the binds. Measured on pyftpdlib (realistic
/// profile, 4 ports, 40–60 s into a 60 s run): holds 0.31 ms longer where the PASV reply
/// was 0.64 ms slower than at 100 ports; 0.5 ms longer in 20 s runs.
pub const STALL_HOLD_SHARE: f64 = 0.5;

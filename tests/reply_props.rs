//! Property tests of the FTP reply parser and the 227/229 parsers: whatever a server sends,
//! they never panic, never allocate without bound, and read well-formed replies exactly.
//!
//! 256 cases per property by default; `PROPTEST_CASES=100000 cargo test --release --test
//! reply_props` runs more. The long run (10 M inputs) is `benches/fuzz_replies.sh`.

use ftpswarm::ftp::reply::{
    parse_epsv_reply, parse_pasv_reply, LineAssembler, PassiveAddress, Reply, ReplyError, ReplyParser, MAX_LINE_BYTES,
    MAX_REPLY_LINES,
};
use proptest::prelude::*;
use std::net::Ipv4Addr;

/// What the control connection does with bytes from the network: cut them into bounded lines
/// (delivered in the given segments), decode them leniently, and feed the parser. Stops at the
/// first error, as the client does.
fn replies_from_segments(segments: &[Vec<u8>]) -> Result<Vec<Reply>, ReplyError> {
    let mut lines = LineAssembler::new();
    let mut parser = ReplyParser::new();
    let mut out = Vec::new();
    for seg in segments {
        let mut rest = seg.as_slice();
        while !rest.is_empty() {
            let (used, done) = lines.push(rest)?;
            assert!(used > 0 && used <= rest.len(), "push used {used} of {}", rest.len());
            assert!(lines.line().len() <= MAX_LINE_BYTES + 2, "line buffer unbounded");
            rest = &rest[used..];
            if done {
                if let Some(r) = parser.feed(&String::from_utf8_lossy(lines.line()))? {
                    out.push(r);
                }
            }
        }
    }
    Ok(out)
}

/// Cuts `bytes` at the given points (taken modulo the length), as TCP may.
fn segment(bytes: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    if bytes.is_empty() {
        return vec![];
    }
    let mut points: Vec<usize> = cuts.iter().map(|c| c % bytes.len()).collect();
    points.push(0);
    points.push(bytes.len());
    points.sort_unstable();
    points.dedup();
    points.windows(2).map(|w| bytes[w[0]..w[1]].to_vec()).collect()
}

fn code() -> impl Strategy<Value = u16> {
    100u16..600
}

/// Reply text as servers send it: printable ASCII, not starting with a space (the parser
/// trims the space after the code).
fn text() -> impl Strategy<Value = String> {
    prop_oneof!["", "[!-~][ -~]{0,120}"]
}

/// Whether `line` would end a multi-line reply with `code` (RFC 959: the code, then a space
/// or nothing).
fn ends_reply(line: &str, code: u16) -> bool {
    let c = code.to_string();
    line == c || line.starts_with(&format!("{c} "))
}

fn digit_free_prefix() -> impl Strategy<Value = String> {
    "[A-Za-z .:=]{0,30}"
}

fn spaces() -> impl Strategy<Value = &'static str> {
    prop_oneof![Just(""), Just(" "), Just("  ")]
}

proptest! {
    #[test]
    fn parser_never_panics_on_any_line(line in any::<String>()) {
        let mut p = ReplyParser::new();
        let _ = p.feed(&line);
        let _ = p.feed(&line);
    }

    #[test]
    fn bytes_in_any_segments_never_panic_and_stay_bounded(
        segments in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..200), 0..40)
    ) {
        if let Ok(replies) = replies_from_segments(&segments) {
            for r in replies {
                prop_assert!((100..600).contains(&r.code));
                let short = r.short_text();
                prop_assert!(short.chars().count() <= 160);
                prop_assert!(!short.chars().any(char::is_control));
            }
        }
    }

    #[test]
    fn reply_like_lines_never_panic(
        lines in prop::collection::vec("[0-9]{0,4}[ -]?[ -~\\t\\x00\\x{80}-\\x{10FFFF}]{0,40}", 1..20)
    ) {
        let mut p = ReplyParser::new();
        for l in &lines {
            if p.feed(l).is_err() {
                p = ReplyParser::new();
            }
        }
    }

    #[test]
    fn single_line_reply_round_trips(code in code(), text in text(), cuts in prop::collection::vec(any::<usize>(), 0..8)) {
        let wire = if text.is_empty() { format!("{code}\r\n") } else { format!("{code} {text}\r\n") };
        let replies = replies_from_segments(&segment(wire.as_bytes(), &cuts)).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(replies, vec![Reply { code, text }]);
    }

    #[test]
    fn multi_line_reply_round_trips_in_any_segments(
        code in code(),
        first in "[ -~]{0,60}",
        middle in prop::collection::vec("[ -~]{0,60}", 0..12),
        last in "[ -~]{0,60}",
        cuts in prop::collection::vec(any::<usize>(), 0..30),
        lf_only in any::<bool>(),
    ) {
        prop_assume!(middle.iter().all(|m| !ends_reply(m, code)));
        let eol = if lf_only { "\n" } else { "\r\n" };
        let mut wire = format!("{code}-{first}{eol}");
        for m in &middle {
            wire.push_str(m);
            wire.push_str(eol);
        }
        wire.push_str(&format!("{code} {last}{eol}"));
        // And a second reply right behind it, as a pipelined server would send.
        wire.push_str(&format!("200 next{eol}"));
        let replies = replies_from_segments(&segment(wire.as_bytes(), &cuts)).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut want = first.clone();
        for m in &middle {
            want.push('\n');
            want.push_str(m);
        }
        want.push('\n');
        want.push_str(&last);
        prop_assert_eq!(replies, vec![Reply { code, text: want }, Reply { code: 200, text: "next".into() }]);
    }

    #[test]
    fn a_line_without_a_code_is_an_error(line in "[^0-9][ -~]{0,50}|[0-9]{0,2}|[0-9]{0,2}[^0-9][ -~]{0,20}") {
        prop_assert!(matches!(ReplyParser::new().feed(&line), Err(ReplyError::BadCode(_))));
    }

    #[test]
    fn codes_outside_100_to_599_are_errors(code in prop_oneof![0u16..100, 600u16..1000], text in text()) {
        let line = format!("{code:03} {text}");
        prop_assert!(matches!(ReplyParser::new().feed(&line), Err(ReplyError::BadCode(_))));
    }

    #[test]
    fn over_long_lines_are_rejected_before_they_are_stored(
        extra in 1usize..20_000,
        chunk in 1usize..5_000,
        byte in any::<u8>().prop_filter("no newline", |b| *b != b'\n'),
    ) {
        let total = MAX_LINE_BYTES + 2 + extra;
        let data = vec![byte; total];
        let mut lines = LineAssembler::new();
        let mut fed = 0;
        let mut err = None;
        for c in data.chunks(chunk) {
            match lines.push(c) {
                Ok((used, done)) => {
                    prop_assert!(!done);
                    fed += used;
                }
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
            prop_assert!(lines.line().len() <= MAX_LINE_BYTES + 2);
        }
        prop_assert_eq!(err, Some(ReplyError::LineTooLong));
        prop_assert!(fed <= MAX_LINE_BYTES + 2);
        // The parser bounds lines on its own too.
        let line = format!("220 {}", "x".repeat(MAX_LINE_BYTES - 3 + extra));
        prop_assert_eq!(ReplyParser::new().feed(&line), Err(ReplyError::LineTooLong));
    }

    #[test]
    fn endless_multi_line_replies_are_cut(code in code(), line in "[ -~]{0,20}") {
        prop_assume!(!ends_reply(&line, code));
        let mut p = ReplyParser::new();
        prop_assert_eq!(p.feed(&format!("{code}-start")), Ok(None));
        let mut outcome = Ok(None);
        for _ in 0..=MAX_REPLY_LINES {
            outcome = p.feed(&line);
            if outcome.is_err() {
                break;
            }
        }
        prop_assert_eq!(outcome, Err(ReplyError::TooManyLines));
    }

    #[test]
    fn pasv_in_range_numbers_parse_to_their_address(
        ip in any::<[u8; 4]>(),
        port in any::<u16>(),
        prefix in digit_free_prefix(),
        suffix in "[^0-9]{0,10}",
        sp in prop::collection::vec(spaces(), 12),
        parens in any::<bool>(),
    ) {
        let n = [ip[0], ip[1], ip[2], ip[3], (port >> 8) as u8, (port & 0xff) as u8];
        let mut body = String::new();
        for (i, v) in n.iter().enumerate() {
            body.push_str(sp[2 * i]);
            body.push_str(&v.to_string());
            body.push_str(sp[2 * i + 1]);
            if i < 5 {
                body.push(',');
            }
        }
        let text = if parens { format!("{prefix}({body}){suffix}") } else { format!("{prefix}{body}{suffix}") };
        prop_assert_eq!(
            parse_pasv_reply(&text),
            Some(PassiveAddress { ip: Ipv4Addr::from(ip), port }),
            "{:?}", text
        );
    }

    #[test]
    fn pasv_with_a_number_over_255_is_refused(
        mut n in prop::array::uniform6(0u16..=255),
        which in 0usize..6,
        big in 256u16..1000,
        prefix in digit_free_prefix(),
    ) {
        n[which] = big;
        let text = format!("{prefix}({},{},{},{},{},{})", n[0], n[1], n[2], n[3], n[4], n[5]);
        prop_assert_eq!(parse_pasv_reply(&text), None, "{:?}", text);
    }

    #[test]
    fn pasv_never_panics_and_finds_nothing_without_digits(text in any::<String>(), digit_free in "[^0-9]{0,80}") {
        let _ = parse_pasv_reply(&text);
        prop_assert_eq!(parse_pasv_reply(&digit_free), None);
    }

    #[test]
    fn epsv_port_parses_with_any_printable_delimiter(
        port in 1u16..=65535,
        delim in prop::char::range('!', '~').prop_filter("not a digit", |c| !c.is_ascii_digit()),
        prefix in "[^(]{0,30}",
    ) {
        let text = format!("{prefix}({delim}{delim}{delim}{port}{delim})");
        prop_assert_eq!(parse_epsv_reply(&text), Some(port), "{:?}", text);
    }

    #[test]
    fn epsv_never_panics_and_never_yields_port_0(text in any::<String>(), wrapped in "\\([ -~\\x{80}-\\x{10FFFF}]{0,12}\\)") {
        for t in [&text, &wrapped] {
            if let Some(p) = parse_epsv_reply(t) {
                prop_assert!(p != 0);
            }
        }
    }

    #[test]
    fn epsv_out_of_range_ports_are_refused(port in prop_oneof![Just(0u64), 65536u64..10_000_000]) {
        prop_assert_eq!(parse_epsv_reply(&format!("229 Entering Extended Passive Mode (|||{port}|)")), None);
    }
}

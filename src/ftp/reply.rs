//! FTP reply parsing (RFC 959 §4.2), written to survive hostile or broken servers.
//!
//! The parser is fed one line at a time (without CR/LF) so that it can be tested without
//! sockets and so that the I/O layer can bound every line's length before it gets here.

use std::fmt;

/// Longest reply line we accept. RFC 959 sets no limit; real servers stay far below this,
/// and a server that streams an endless line must not make us allocate without bound.
pub const MAX_LINE_BYTES: usize = 8 * 1024;
/// Most lines in one multi-line reply (a FEAT or HELP reply has a few dozen).
pub const MAX_REPLY_LINES: usize = 1024;

/// One complete reply: its three-digit code and its text (continuation lines joined by `\n`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub text: String,
}

impl Reply {
    pub fn is_preliminary(&self) -> bool {
        (100..200).contains(&self.code)
    }
    pub fn is_completion(&self) -> bool {
        (200..300).contains(&self.code)
    }
    pub fn is_intermediate(&self) -> bool {
        (300..400).contains(&self.code)
    }
    pub fn is_negative(&self) -> bool {
        self.code >= 400
    }
    /// First line of the text, cut to a length fit for a CSV cell or a log line.
    pub fn short_text(&self) -> String {
        let first = self.text.lines().next().unwrap_or("");
        let mut s: String = first.chars().take(160).collect();
        s.retain(|c| !c.is_control());
        s
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code, self.short_text())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    #[error("reply line is not a 3-digit code: {0:?}")]
    BadCode(String),
    #[error("reply line longer than {MAX_LINE_BYTES} bytes")]
    LineTooLong,
    #[error("multi-line reply longer than {MAX_REPLY_LINES} lines")]
    TooManyLines,
}

/// Incremental parser: feed lines until it yields a complete reply.
#[derive(Debug, Default)]
pub struct ReplyParser {
    pending: Option<(u16, String, usize)>,
}

fn leading_code(line: &str) -> Option<(u16, Option<u8>)> {
    let bytes = line.as_bytes();
    if bytes.len() < 3 || !bytes[..3].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let code = u16::from(bytes[0] - b'0') * 100 + u16::from(bytes[1] - b'0') * 10 + u16::from(bytes[2] - b'0');
    if !(100..600).contains(&code) {
        return None;
    }
    Some((code, bytes.get(3).copied()))
}

fn text_after_code(line: &str) -> &str {
    line.get(4..).unwrap_or("")
}

impl ReplyParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one line (CR/LF already stripped). Returns `Ok(Some(reply))` when the reply is
    /// complete, `Ok(None)` while inside a multi-line reply.
    pub fn feed(&mut self, line: &str) -> Result<Option<Reply>, ReplyError> {
        if line.len() > MAX_LINE_BYTES {
            return Err(ReplyError::LineTooLong);
        }
        match self.pending.take() {
            None => match leading_code(line) {
                Some((code, Some(b'-'))) => {
                    self.pending = Some((code, text_after_code(line).to_string(), 1));
                    Ok(None)
                }
                // "220" alone or "220 text"; anything else after the code (e.g. "220x") is
                // tolerated as text because some embedded servers omit the space.
                Some((code, _)) => Ok(Some(Reply {
                    code,
                    text: line.get(3..).unwrap_or("").trim_start().to_string(),
                })),
                None => Err(ReplyError::BadCode(line.chars().take(40).collect())),
            },
            Some((code, mut text, lines)) => {
                if lines >= MAX_REPLY_LINES {
                    return Err(ReplyError::TooManyLines);
                }
                // RFC 959: the reply ends at a line that starts with the same code followed by
                // a space. Lines in between may start with anything, even other codes.
                if let Some((c, sep)) = leading_code(line) {
                    if c == code && (sep == Some(b' ') || sep.is_none()) {
                        text.push('\n');
                        text.push_str(text_after_code(line));
                        return Ok(Some(Reply { code, text }));
                    }
                }
                text.push('\n');
                text.push_str(line);
                self.pending = Some((code, text, lines + 1));
                Ok(None)
            }
        }
    }
}

/// Cuts a byte stream into reply lines, bounding each line's length before it is stored, so
/// that a server streaming an endless line costs at most [`MAX_LINE_BYTES`] of memory.
#[derive(Debug, Default)]
pub struct LineAssembler {
    line: Vec<u8>,
    complete: bool,
}

impl LineAssembler {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes bytes from `input` up to and including the first `\n`. Returns how many bytes it
    /// used and whether a line is complete; [`LineAssembler::line`] then holds it without its
    /// CR/LF, until the next call starts a new line. A line longer than [`MAX_LINE_BYTES`]
    /// (plus CR LF) is an error, raised before its excess is stored.
    pub fn push(&mut self, input: &[u8]) -> Result<(usize, bool), ReplyError> {
        if self.complete {
            self.line.clear();
            self.complete = false;
        }
        let (take, done) = match input.iter().position(|&b| b == b'\n') {
            Some(pos) => (pos + 1, true),
            None => (input.len(), false),
        };
        if self.line.len() + take > MAX_LINE_BYTES + 2 {
            return Err(ReplyError::LineTooLong);
        }
        self.line.extend_from_slice(&input[..take]);
        if done {
            while matches!(self.line.last(), Some(b'\n' | b'\r')) {
                self.line.pop();
            }
            self.complete = true;
        }
        Ok((take, done))
    }

    /// The line so far (complete once `push` said so).
    pub fn line(&self) -> &[u8] {
        &self.line
    }

    /// Forgets any partial line.
    pub fn clear(&mut self) {
        self.line.clear();
        self.complete = false;
    }
}

/// Host and port announced by a 227 reply to PASV.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PassiveAddress {
    pub ip: std::net::Ipv4Addr,
    pub port: u16,
}

/// Parses the `h1,h2,h3,h4,p1,p2` of a 227 reply. RFC 1123 §4.1.2.6 tells clients to scan for
/// the numbers rather than rely on the parentheses, which many servers omit or garble.
pub fn parse_pasv_reply(text: &str) -> Option<PassiveAddress> {
    let bytes = text.as_bytes();
    let mut start = 0;
    while start < bytes.len() {
        if bytes[start].is_ascii_digit() {
            if let Some(addr) = parse_six_numbers(&text[start..]) {
                return Some(addr);
            }
            // Skip this run of digits and try the next one.
            while start < bytes.len() && bytes[start].is_ascii_digit() {
                start += 1;
            }
        } else {
            start += 1;
        }
    }
    None
}

fn parse_six_numbers(s: &str) -> Option<PassiveAddress> {
    let mut nums = [0u8; 6];
    let mut rest = s;
    for (i, slot) in nums.iter_mut().enumerate() {
        rest = rest.trim_start();
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 3 {
            return None;
        }
        *slot = rest[..digits].parse::<u8>().ok()?;
        rest = rest[digits..].trim_start();
        if i < 5 {
            rest = rest.strip_prefix(',')?;
        }
    }
    Some(PassiveAddress {
        ip: std::net::Ipv4Addr::new(nums[0], nums[1], nums[2], nums[3]),
        port: u16::from_be_bytes([nums[4], nums[5]]),
    })
}

/// Parses the port of a 229 reply to EPSV: `(<d><d><d>port<d>)` where `<d>` is any printable
/// delimiter (RFC 2428 §3), usually `|`.
pub fn parse_epsv_reply(text: &str) -> Option<u16> {
    let open = text.find('(')?;
    let inner = &text[open + 1..];
    let mut chars = inner.chars();
    let d = chars.next()?;
    if d.is_ascii_digit() || !(33..=126).contains(&(d as u32)) {
        return None;
    }
    let body = inner.get(d.len_utf8()..)?;
    let body = body.strip_prefix(d)?.strip_prefix(d)?;
    let end = body.find(d)?;
    let port: u32 = body[..end].trim().parse().ok()?;
    match port {
        1..=65535 => u16::try_from(port).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(lines: &[&str]) -> Result<Vec<Reply>, ReplyError> {
        let mut p = ReplyParser::new();
        let mut out = Vec::new();
        for l in lines {
            if let Some(r) = p.feed(l)? {
                out.push(r);
            }
        }
        Ok(out)
    }

    #[test]
    fn single_line() {
        let r = parse_all(&["220 ProFTPD Server ready."]).unwrap();
        assert_eq!(
            r,
            vec![Reply {
                code: 220,
                text: "ProFTPD Server ready.".into()
            }]
        );
    }

    #[test]
    fn code_without_text() {
        let r = parse_all(&["200"]).unwrap();
        assert_eq!(r[0].code, 200);
        assert_eq!(r[0].text, "");
    }

    #[test]
    fn multi_line_with_embedded_codes() {
        let r = parse_all(&[
            "230-Welcome",
            "  indented line",
            "123 another code inside",
            "230-still going",
            "230 Logged in.",
            "200 next",
        ])
        .unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].code, 230);
        assert_eq!(
            r[0].text,
            "Welcome\n  indented line\n123 another code inside\n230-still going\nLogged in."
        );
        assert_eq!(
            r[1],
            Reply {
                code: 200,
                text: "next".into()
            }
        );
    }

    #[test]
    fn multi_line_other_code_does_not_end() {
        let r = parse_all(&["211-Features:", " EPSV", "200 x", " PASV", "211 End"]).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].code, 211);
        assert!(r[0].text.contains("EPSV") && r[0].text.contains("200 x"));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for g in [
            "",
            "hello",
            "22",
            "abc def",
            "99 x",
            "600 x",
            "2x0 x",
            "\u{fffd}\u{fffd}\u{fffd}",
        ] {
            assert!(ReplyParser::new().feed(g).is_err(), "{g:?} should be rejected");
        }
    }

    /// RFC 959's first digit, at every class boundary.
    #[test]
    fn reply_classes_follow_the_first_digit() {
        let class = |code: u16| {
            let r = Reply {
                code,
                text: String::new(),
            };
            (
                r.is_preliminary(),
                r.is_completion(),
                r.is_intermediate(),
                r.is_negative(),
            )
        };
        for code in [100, 150, 199] {
            assert_eq!(class(code), (true, false, false, false), "{code}");
        }
        for code in [200, 226, 227, 299] {
            assert_eq!(class(code), (false, true, false, false), "{code}");
        }
        for code in [300, 331, 350, 399] {
            assert_eq!(class(code), (false, false, true, false), "{code}");
        }
        for code in [400, 421, 425, 426, 500, 530, 599] {
            assert_eq!(class(code), (false, false, false, true), "{code}");
        }
    }

    /// A long but ordinary line (a banner, a server's 4 KiB HELP text) is a reply, not an
    /// attack: the limit sits well above what servers send.
    #[test]
    fn long_ordinary_lines_are_accepted() {
        let line = format!("214 {}", "y".repeat(4000));
        let r = parse_all(&[&line]).unwrap();
        assert_eq!((r.len(), r[0].code, r[0].text.len()), (1, 214, 4000));
        let mut a = LineAssembler::new();
        let bytes = format!("{line}\r\n");
        assert_eq!(a.push(bytes.as_bytes()), Ok((bytes.len(), true)));
        assert_eq!(a.line(), line.as_bytes());
    }

    /// A line of exactly the limit is a line, in pieces or whole; one byte more is refused
    /// before it is stored; the next line starts afresh.
    #[test]
    fn the_line_assembler_bounds_every_line_at_the_limit() {
        let body = "z".repeat(MAX_LINE_BYTES);
        let mut a = LineAssembler::new();
        assert_eq!(a.push(&body.as_bytes()[..100]), Ok((100, false)));
        let rest = format!("{}\r\n226 next", &body[100..]);
        assert_eq!(a.push(rest.as_bytes()), Ok((MAX_LINE_BYTES - 100 + 2, true)));
        assert_eq!(a.line(), body.as_bytes());
        assert_eq!(a.push(b"226 ok\n"), Ok((7, true)));
        assert_eq!(a.line(), b"226 ok");

        let mut a = LineAssembler::new();
        let over = "z".repeat(MAX_LINE_BYTES + 3);
        assert_eq!(a.push(over.as_bytes()), Err(ReplyError::LineTooLong));
        assert!(a.line().is_empty());
        a.clear();
        assert_eq!(a.push(b"200 fresh\r\n"), Ok((11, true)));
        assert_eq!(a.line(), b"200 fresh");
        // `clear` forgets a partial line (a reconnect, say).
        assert_eq!(a.push(b"220 cut sho"), Ok((11, false)));
        a.clear();
        assert_eq!(a.push(b"221 bye\n"), Ok((8, true)));
        assert_eq!(a.line(), b"221 bye");

        let exact = format!("211 {}", "w".repeat(MAX_LINE_BYTES - 4));
        assert_eq!(
            ReplyParser::new().feed(&exact).map(|r| r.map(|r| r.code)),
            Ok(Some(211))
        );
    }

    #[test]
    fn over_long_line_rejected() {
        let long = format!("220 {}", "x".repeat(MAX_LINE_BYTES));
        assert_eq!(ReplyParser::new().feed(&long), Err(ReplyError::LineTooLong));
    }

    #[test]
    fn endless_multiline_rejected() {
        let mut p = ReplyParser::new();
        assert_eq!(p.feed("211-start"), Ok(None));
        let mut err = None;
        for _ in 0..MAX_REPLY_LINES + 1 {
            if let Err(e) = p.feed(" more") {
                err = Some(e);
                break;
            }
        }
        assert_eq!(err, Some(ReplyError::TooManyLines));
    }

    #[test]
    fn pasv_variants() {
        let want = PassiveAddress {
            ip: [127, 0, 0, 1].into(),
            port: 156 * 256 + 64,
        };
        for t in [
            "Entering Passive Mode (127,0,0,1,156,64).",
            "Entering Passive Mode (127,0,0,1,156,64)",
            "Entering Passive Mode 127,0,0,1,156,64",
            "=127,0,0,1,156,64",
            "Entering Passive Mode ( 127, 0,0 ,1 , 156,64 )",
            "Mode 3 (127,0,0,1,156,64)",
        ] {
            assert_eq!(parse_pasv_reply(t), Some(want), "{t}");
        }
    }

    #[test]
    fn pasv_garbage() {
        for t in [
            "",
            "Entering Passive Mode",
            "(127,0,0,1,156)",
            "(256,0,0,1,1,1)",
            "(1,2,3,4,5,1000)",
            "(a,b,c,d,e,f)",
            "(1,,2,3,4,5)",
            // Five numbers at the very end: the scan must stop at the last byte.
            "Entering Passive Mode 10,0,0,1,4",
            "9999",
            // Zero-padded past three digits: not a byte as RFC 959 writes one, although it
            // would fit one; the scan moves on and finds only five numbers.
            "(0127,0,0,1,4,1)",
        ] {
            assert_eq!(parse_pasv_reply(t), None, "{t}");
        }
    }

    #[test]
    fn epsv_variants() {
        assert_eq!(
            parse_epsv_reply("Entering Extended Passive Mode (|||6446|)"),
            Some(6446)
        );
        assert_eq!(parse_epsv_reply("EPSV ok (!!!40001!)"), Some(40001));
        assert_eq!(parse_epsv_reply("(||| 40001 |)"), Some(40001));
        for t in [
            "",
            "(|||0|)",
            "(|||70000|)",
            "(||6446|)",
            "(|||abc|)",
            "(|||6446",
            "no parens",
            // RFC 2428 §2: the delimiter is a printable character other than a digit; a digit
            // or a control character would otherwise read as a port of the right shape.
            "(7776446 7)",
            "(\u{1}\u{1}\u{1}6446\u{1})",
        ] {
            assert_eq!(parse_epsv_reply(t), None, "{t}");
        }
    }

    #[test]
    fn short_text_strips_controls_and_truncates() {
        let r = Reply {
            code: 500,
            text: format!("bad\u{7}{}\nsecond", "y".repeat(500)),
        };
        // The first line's first 160 characters, the bell then dropped.
        let want = format!("bad{}", "y".repeat(156));
        assert_eq!(r.short_text(), want);
        assert_eq!(r.to_string(), format!("500 {want}"));
        let ok = Reply {
            code: 226,
            text: "Transfer complete.\nsecond".into(),
        };
        assert_eq!(ok.short_text(), "Transfer complete.");
    }
}

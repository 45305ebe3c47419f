//! Bytes from a server, as the control connection reads them: cut into bounded lines, parsed
//! into replies, and the 227/229 parsers run on the text. Any panic or failed check is a crash.
//!
//! The parser is the crate's own source file, compiled in here, so this fuzzes the very code
//! the client runs without building the whole crate with instrumentation.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../src/ftp/reply.rs"]
mod reply;

use reply::{
    parse_epsv_reply, parse_pasv_reply, LineAssembler, Reply, ReplyParser, MAX_LINE_BYTES, MAX_REPLY_LINES,
};

/// Serialises a reply as a server would and parses it again: it must come back unchanged.
fn reparse(r: &Reply) -> Option<Reply> {
    let mut p = ReplyParser::new();
    let lines: Vec<&str> = r.text.split('\n').collect();
    let result = match lines.as_slice() {
        [only] => p.feed(&format!("{} {only}", r.code)),
        [first, middle @ .., last] => {
            assert!(matches!(p.feed(&format!("{}-{first}", r.code)), Ok(None)));
            for m in middle {
                assert!(matches!(p.feed(m), Ok(None)), "middle line {m:?} ended the reply");
            }
            p.feed(&format!("{} {last}", r.code))
        }
        [] => unreachable!("split yields at least one piece"),
    };
    result.ok().flatten()
}

fn check_reply(r: &Reply) {
    assert!((100..600).contains(&r.code));
    assert!(r.text.split('\n').count() <= MAX_REPLY_LINES + 1);
    let short = r.short_text();
    assert!(short.chars().count() <= 160);
    assert!(!short.chars().any(char::is_control));
    assert_eq!(reparse(r).as_ref(), Some(r), "reply does not round-trip");
}

fn check_passive(text: &str) {
    if let Some(a) = parse_pasv_reply(text) {
        let o = a.ip.octets();
        let canonical = format!(
            "Entering Passive Mode ({},{},{},{},{},{})",
            o[0],
            o[1],
            o[2],
            o[3],
            a.port >> 8,
            a.port & 0xff
        );
        assert_eq!(parse_pasv_reply(&canonical), Some(a));
    }
    if let Some(port) = parse_epsv_reply(text) {
        assert_ne!(port, 0);
        assert_eq!(parse_epsv_reply(&format!("(|||{port}|)")), Some(port));
    }
}

fuzz_target!(|data: &[u8]| {
    // The first byte sets the segment size, so that lines arrive split as TCP may split them.
    let Some((&seg, stream)) = data.split_first() else {
        return;
    };
    let seg = usize::from(seg % 64) + 1;
    let mut lines = LineAssembler::new();
    let mut parser = ReplyParser::new();
    'segments: for chunk in stream.chunks(seg) {
        let mut rest = chunk;
        while !rest.is_empty() {
            let Ok((used, done)) = lines.push(rest) else {
                // The client drops the connection at an over-long line.
                assert!(lines.line().len() <= MAX_LINE_BYTES + 2);
                break 'segments;
            };
            assert!(used > 0 && used <= rest.len());
            assert!(lines.line().len() <= MAX_LINE_BYTES + 2);
            rest = &rest[used..];
            if done {
                let text = String::from_utf8_lossy(lines.line());
                match parser.feed(&text) {
                    Ok(Some(r)) => {
                        check_reply(&r);
                        check_passive(&r.text);
                    }
                    Ok(None) => {}
                    Err(_) => parser = ReplyParser::new(),
                }
            }
        }
    }
    check_passive(&String::from_utf8_lossy(stream));
});

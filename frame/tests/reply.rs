//! Reply line tests: exact formats, escaping, truncation, parsing and its errors.

use proptest::prelude::*;
use sis_frame::reply::*;

fn line(f: impl FnOnce(&mut [u8]) -> Result<usize, FormatError>) -> String {
    let mut buf = [0u8; 512];
    let n = f(&mut buf).unwrap();
    String::from_utf8(buf[..n].to_vec()).unwrap()
}

fn unescape(e: Escaped<'_>) -> Vec<u8> {
    e.unescape().collect::<Result<_, _>>().unwrap()
}

#[test]
fn ok_and_err_lines_are_exact() {
    assert_eq!(line(|b| write_ok(b, &[])), "OK\n");
    assert_eq!(line(|b| write_ok(b, &[Field::num("id", 3)])), "OK id=3\n");
    assert_eq!(
        line(|b| write_ok(b, &[Field::text("model", b"smol lm|2")])),
        "OK model=smol\\x20lm\\|2\n"
    );
    assert_eq!(
        line(|b| write_err(b, ErrorCode::AuthFailed, &[])),
        "ERR 0x05\n"
    );
    assert_eq!(
        line(|b| write_err(b, ErrorCode::RateLimited, &[Field::num("retry_ms", 1500)])),
        "ERR 0x07 retry_ms=1500\n"
    );
    for (code, n) in ErrorCode::ALL.iter().zip(1u8..) {
        assert_eq!(*code as u8, n);
        assert_eq!(ErrorCode::from_u8(n), Some(*code));
        assert_eq!(
            line(|b| write_err(b, *code, &[])),
            format!("ERR 0x{n:02x}\n")
        );
    }
    assert_eq!(ErrorCode::from_u8(0), None);
    assert_eq!(ErrorCode::from_u8(0x0d), None);
}

#[test]
fn bad_keys_and_overflow_are_errors() {
    let mut buf = [0u8; 64];
    assert_eq!(
        write_ok(&mut buf, &[Field::num("Id", 1)]),
        Err(FormatError::BadKey)
    );
    assert_eq!(
        write_ok(&mut buf, &[Field::num("", 1)]),
        Err(FormatError::BadKey)
    );
    assert_eq!(
        write_ok(&mut buf, &[Field::num("a b", 1)]),
        Err(FormatError::BadKey)
    );
    let mut tiny = [0u8; 2];
    assert_eq!(write_ok(&mut tiny, &[]), Err(FormatError::Overflow));
    let mut three = [0u8; 3];
    assert_eq!(write_ok(&mut three, &[]), Ok(3));
}

#[test]
fn poll_line_is_exact_and_escapes_items() {
    let info = PollInfo {
        id: 3,
        done: true,
        end: None,
        plen: 14,
        model: b"SmolLM2-135M",
    };
    let items: [&[u8]; 4] = [b" why", b"a|b", b"x\ny\\", &[0xe6, 0x97]];
    let mut buf = [0u8; 256];
    let w = write_poll(&mut buf, &info, items).unwrap();
    let s = std::str::from_utf8(&buf[..w.len]).unwrap();
    assert_eq!(
        s,
        "OK TOK id=3 n=4 done=1 plen=14 model=SmolLM2-135M items= why|a\\|b|x\\ny\\\\|\\xe6\\x97\n"
    );
    assert_eq!(w.items, 4);
    match parse_reply(&buf[..w.len]).unwrap() {
        Reply::Poll(p) => {
            assert_eq!((p.id, p.n, p.done, p.plen), (3, 4, true, 14));
            assert_eq!(unescape(p.model), b"SmolLM2-135M");
            let got: Vec<Vec<u8>> = p.items.map(unescape).collect();
            let want: Vec<Vec<u8>> = items.iter().map(|i| i.to_vec()).collect();
            assert_eq!(got, want);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn poll_of_an_ended_inference_says_how_it_ended() {
    let info = PollInfo {
        id: 2,
        done: true,
        end: Some((EndReason::Fail, Some(ErrorCode::Internal))),
        plen: 5,
        model: b"llm",
    };
    let mut buf = [0u8; 128];
    let w = write_poll(&mut buf, &info, [&b"ab"[..]]).unwrap();
    let line = &buf[..w.len];
    assert_eq!(
        line,
        b"OK TOK id=2 n=1 done=1 end=fail code=0x0a plen=5 model=llm items=ab\n"
    );
    match parse_reply(line).unwrap() {
        Reply::Poll(p) => assert_eq!(
            (p.done, p.end, p.code),
            (true, Some(EndReason::Fail), Some(0x0a))
        ),
        other => panic!("{other:?}"),
    }
    // Not written while tokens are held back (done=0).
    let mut small = [0u8; 60];
    let items: Vec<&[u8]> = vec![b"aaaa"; 20];
    let w = write_poll(&mut small, &info, items.iter().copied()).unwrap();
    let s = std::str::from_utf8(&small[..w.len]).unwrap();
    assert!(s.contains("done=0 plen=") && !s.contains("end="), "{s}");
    // The seed's form (no end) still parses, and end= needs done=1.
    assert!(matches!(
        parse_reply(b"OK TOK id=1 n=0 done=1 plen=1 model=m items="),
        Ok(Reply::Poll(p)) if p.end.is_none()
    ));
    assert!(parse_reply(b"OK TOK id=1 n=0 done=0 end=max plen=1 model=m items=").is_err());
}

#[test]
fn poll_fits_what_it_can_and_never_claims_done_early() {
    let info = PollInfo {
        id: 1,
        done: true,
        end: None,
        plen: 2,
        model: b"m",
    };
    let items: Vec<&[u8]> = vec![b"aaaa"; 20];
    // "OK TOK id=1 n=N done=D plen=2 model=m items=" is 44 bytes with one digit of n.
    let mut buf = [0u8; 60];
    let w = write_poll(&mut buf, &info, items.iter().copied()).unwrap();
    assert!(w.len <= buf.len());
    // One more item would not have fitted.
    assert!(w.len + "|aaaa".len() > buf.len());
    assert!(w.items > 0 && w.items < 20);
    let s = std::str::from_utf8(&buf[..w.len]).unwrap();
    assert!(s.contains(" done=0 "), "{s}");
    assert!(s.contains(&format!(" n={} ", w.items)), "{s}");
    assert!(parse_reply(&buf[..w.len]).is_ok());
    // Zero items, done.
    let w = write_poll(&mut buf, &info, std::iter::empty()).unwrap();
    assert_eq!(
        &buf[..w.len],
        b"OK TOK id=1 n=0 done=1 plen=2 model=m items=\n"
    );
    // Not even the header fits.
    let mut small = [0u8; 20];
    assert_eq!(
        write_poll(&mut small, &info, items.iter().copied()),
        Err(FormatError::Overflow)
    );
}

#[test]
fn stream_and_end_lines() {
    assert_eq!(
        line(|b| write_stream_token(b, 9, 0, b" Hello|\n")),
        "STREAM id=9 i=0 tok= Hello\\|\\n\n"
    );
    assert_eq!(
        line(|b| write_end(b, 9, 8, EndReason::Max, None, None)),
        "END id=9 n=8 reason=max\n"
    );
    assert_eq!(
        line(|b| write_end(b, 9, 2, EndReason::Fail, Some(ErrorCode::Unavailable), None)),
        "END id=9 n=2 reason=fail code=0x06\n"
    );
    match parse_reply(b"STREAM id=9 i=0 tok= Hello\\|\\n\n").unwrap() {
        Reply::Stream { id, i, tok } => {
            assert_eq!((id, i), (9, 0));
            assert_eq!(unescape(tok), b" Hello|\n");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        parse_reply(b"END id=9 n=2 reason=fail code=0x06").unwrap(),
        Reply::End {
            id: 9,
            n: 2,
            reason: EndReason::Fail,
            code: Some(6),
            prefill: None
        }
    );
    // A conversation turn says how much of its prompt came from the KV cache.
    assert_eq!(
        line(|b| write_end(b, 9, 3, EndReason::Eos, None, Some((40, 31)))),
        "END id=9 n=3 reason=eos prompt=40 reused=31\n"
    );
    assert_eq!(
        parse_reply(b"END id=9 n=3 reason=eos prompt=40 reused=31").unwrap(),
        Reply::End {
            id: 9,
            n: 3,
            reason: EndReason::Eos,
            code: None,
            prefill: Some((40, 31))
        }
    );
    assert!(parse_reply(b"END id=9 n=3 reason=eos prompt=40").is_err());
}

#[test]
fn parse_ok_err_fields() {
    match parse_reply(b"OK id=3 model=a\\x20b\n").unwrap() {
        Reply::Ok(f) => {
            assert_eq!(f.get_u64("id"), Some(3));
            assert_eq!(unescape(f.get("model").unwrap()), b"a b");
            assert_eq!(f.get("nope"), None);
        }
        other => panic!("{other:?}"),
    }
    match parse_reply(b"OK").unwrap() {
        Reply::Ok(f) => assert!(f.is_empty()),
        other => panic!("{other:?}"),
    }
    match parse_reply(b"ERR 0x7f retry_ms=10\n").unwrap() {
        Reply::Err { code, fields } => {
            assert_eq!(code, 0x7f);
            assert_eq!(fields.get_u64("retry_ms"), Some(10));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn malformed_lines_are_rejected() {
    let bad: [&[u8]; 22] = [
        b"",
        b"\n",
        b"HELLO",
        b"OKAY",
        b"OK id",
        b"OK Id=3",
        b"OK id=a\\q",
        b"OK  id=3",
        b"ERR 5",
        b"ERR 0x5",
        b"ERR 0xzz",
        b"ERR 0x05x",
        b"OK TOK id=1 n=2 done=1 plen=0 model=m items=a",
        b"OK TOK id=1 n=0 done=1 plen=0 model=m items=a",
        b"OK TOK id=1 n=1 done=2 plen=0 model=m items=a",
        b"OK TOK id=01 n=1 done=1 plen=0 model=m items=a",
        b"OK TOK id=1 n=1 done=1 plen=0 model=m items=a\\",
        b"OK TOK id=99999999999 n=1 done=1 plen=0 model=m items=a",
        b"STREAM id=1 tok=x",
        b"END id=1 n=1 reason=later",
        b"END id=1 n=1 reason=max code=0x06 more=1",
        b"OK id=1\r",
    ];
    for l in bad {
        assert!(
            parse_reply(l).is_err(),
            "accepted {:?}",
            String::from_utf8_lossy(l)
        );
    }
    assert_eq!(parse_reply(b"OK\nOK"), Err(ParseError::EmbeddedNewline));
    assert_eq!(parse_reply(b"NOPE"), Err(ParseError::UnknownKind));
}

#[test]
fn unescape_errors() {
    let check = |s: &[u8], e| assert_eq!(Escaped::new(s).validate(), Err(e), "{s:?}");
    check(b"a\\", UnescapeError::Truncated);
    check(b"\\x4", UnescapeError::Truncated);
    check(b"\\xg0", UnescapeError::BadEscape);
    check(b"\\q", UnescapeError::BadEscape);
    check(b"a|b", UnescapeError::RawByte(b'|'));
    check(&[0x80], UnescapeError::RawByte(0x80));
    let mut out = [0u8; 2];
    assert_eq!(
        Escaped::new(b"abc").unescape_into(&mut out),
        Err(UnescapeError::BufferTooSmall)
    );
    assert_eq!(
        Escaped::new(b"\\X41b").validate(),
        Err(UnescapeError::BadEscape)
    );
    assert_eq!(Escaped::new(b"\\x4Fb").unescape_into(&mut out), Ok(2));
    assert_eq!(&out, b"Ob");
}

proptest! {
    #[test]
    fn items_round_trip(items in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..12), 0..12),
                        model in prop::collection::vec(any::<u8>(), 0..12),
                        id in any::<u32>(), plen in any::<u32>(), done in any::<bool>()) {
        let end = [None, Some((EndReason::Max, None)), Some((EndReason::Fail, Some(ErrorCode::Internal)))][(id % 3) as usize];
        let info = PollInfo { id, done, end, plen, model: &model };
        let mut buf = vec![0u8; 4096];
        let w = write_poll(&mut buf, &info, items.iter().map(|v| v.as_slice())).unwrap();
        prop_assert_eq!(w.items, items.len());
        prop_assert!(buf[..w.len].iter().all(|b| b.is_ascii() && (*b >= 0x20 || *b == b'\n')));
        prop_assert_eq!(buf[..w.len].iter().filter(|&&b| b == b'\n').count(), 1);
        match parse_reply(&buf[..w.len]).unwrap() {
            Reply::Poll(p) => {
                prop_assert_eq!((p.id, p.plen, p.done, p.n as usize), (id, plen, done, items.len()));
                prop_assert_eq!(p.end, end.filter(|_| done).map(|e| e.0));
                prop_assert_eq!(p.code, end.filter(|_| done).and_then(|e| e.1).map(|c| c as u8));
                prop_assert_eq!(unescape(p.model), model);
                let got: Vec<Vec<u8>> = p.items.map(unescape).collect();
                prop_assert_eq!(got, items);
            }
            other => prop_assert!(false, "{:?}", other),
        }
    }

    #[test]
    fn truncated_polls_stay_parseable(items in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..8), 1..30),
                                      cap in 40usize..200) {
        let info = PollInfo { id: 1, done: true, end: Some((EndReason::Eos, None)), plen: 1, model: b"m" };
        let mut buf = vec![0u8; cap];
        if let Ok(w) = write_poll(&mut buf, &info, items.iter().map(|v| v.as_slice())) {
            match parse_reply(&buf[..w.len]).unwrap() {
                Reply::Poll(p) => {
                    prop_assert_eq!(p.n as usize, w.items);
                    prop_assert_eq!(p.done, w.items == items.len());
                    let got: Vec<Vec<u8>> = p.items.map(unescape).collect();
                    prop_assert_eq!(&got[..], &items[..w.items]);
                }
                other => prop_assert!(false, "{:?}", other),
            }
        }
    }

    #[test]
    fn stream_tokens_round_trip(tok in prop::collection::vec(any::<u8>(), 0..40), id in any::<u32>(), i in any::<u32>()) {
        let mut buf = [0u8; 256];
        let n = write_stream_token(&mut buf, id, i, &tok).unwrap();
        match parse_reply(&buf[..n]).unwrap() {
            Reply::Stream { id: a, i: b, tok: t } => {
                prop_assert_eq!((a, b), (id, i));
                prop_assert_eq!(unescape(t), tok);
            }
            other => prop_assert!(false, "{:?}", other),
        }
    }

    #[test]
    fn parser_never_panics(line in prop::collection::vec(any::<u8>(), 0..80)) {
        let _ = parse_reply(&line);
    }
}

#[test]
fn rejected_and_refusal_lines() {
    use sis_frame::auth::{Decision, Rights};
    use sis_frame::codec::{BadFrameReason, FrameError, Rejected, Version};
    let mut buf = [0u8; 64];
    let r = Rejected {
        version: Version::V0,
        cmd: 0x11,
        error: FrameError::BadFrame(BadFrameReason::BadUtf8),
    };
    let n = write_rejected(&mut buf, &r).unwrap();
    assert_eq!(&buf[..n], b"ERR 0x01\n");
    assert_eq!(
        write_refusal(&mut buf, &Decision::Allowed(Rights::ADMIN)),
        Ok(None)
    );
    let n = write_refusal(&mut buf, &Decision::InsufficientRights)
        .unwrap()
        .unwrap();
    assert_eq!(&buf[..n], b"ERR 0x05\n");
    let n = write_refusal(
        &mut buf,
        &Decision::RateLimited {
            retry_after_ms: 250,
        },
    )
    .unwrap()
    .unwrap();
    assert_eq!(&buf[..n], b"ERR 0x07 retry_ms=250\n");
}

#[test]
fn replay_cache_answers_retries_only() {
    let mut c: ReplayCache<2, 16> = ReplayCache::new();
    assert!(!c.store(1, 0, b"OK id=1\n"), "seq 0 is never cached");
    assert_eq!(c.lookup(1, 0), None);
    assert!(c.store(1, 7, b"OK id=1\n"));
    assert_eq!(c.lookup(1, 7), Some(&b"OK id=1\n"[..]));
    assert_eq!(
        c.lookup(2, 7),
        None,
        "another token with the same seq misses"
    );
    assert_eq!(c.lookup(1, 8), None);
    assert!(!c.store(1, 9, &[b'x'; 17]));
    assert!(c.store(1, 7, b"OK id=9\n"), "same key is replaced in place");
    assert_eq!(c.lookup(1, 7), Some(&b"OK id=9\n"[..]));
    assert!(c.store(3, 1, b"OK\n"));
    assert!(c.store(4, 1, b"OK\n")); // evicts the oldest slot (1, 7)
    assert_eq!(c.lookup(1, 7), None);
    assert_eq!(c.lookup(3, 1), Some(&b"OK\n"[..]));
    let s = c.stats();
    assert_eq!((s.hits, s.too_long, s.evicted, s.stored), (3, 1, 1, 4));
}

//! Authorization tests: rights, tokens, constant-time compare, rotation, rate limiting.

use proptest::prelude::*;
use sis_frame::auth::*;
use sis_frame::codec::Requirement::{Admin, SubmitOrAdmin};
use sis_frame::reply::ErrorCode;

const ADMIN: u64 = 0xa5a5_0000_1111_2222;
const SUBMIT: u64 = 0x5a5a_3333_4444_5555;
const KEY: u64 = 0xff12_3456_789a_bcde;

fn secrets() -> Secrets {
    Secrets {
        admin: ADMIN,
        submit: SUBMIT,
        ctl_key: KEY,
    }
}

fn no_limit() -> RateLimitConfig {
    RateLimitConfig {
        max_failures: 16,
        window_ms: 1,
        base_backoff_ms: 1,
        max_backoff_ms: 1,
    }
}

fn auth() -> Authenticator {
    Authenticator::new(secrets(), no_limit()).unwrap()
}

#[test]
fn legacy_tokens_grant_their_rights() {
    let mut a = auth();
    assert_eq!(a.check(ADMIN, Admin, 0), Decision::Allowed(Rights::ADMIN));
    assert_eq!(
        a.check(ADMIN, SubmitOrAdmin, 0),
        Decision::Allowed(Rights::ADMIN)
    );
    assert_eq!(
        a.check(SUBMIT, SubmitOrAdmin, 0),
        Decision::Allowed(Rights::SUBMIT)
    );
    assert_eq!(a.check(SUBMIT, Admin, 0), Decision::InsufficientRights);
    assert_eq!(a.check(ADMIN ^ 1, SubmitOrAdmin, 0), Decision::BadToken);
    assert_eq!(a.check(0, SubmitOrAdmin, 0), Decision::BadToken);
    let s = a.stats();
    assert_eq!((s.allowed, s.denied_rights, s.denied_bad_token), (3, 1, 2));
}

#[test]
fn embedded_tokens_follow_the_seed_formula() {
    let secret = KEY & ((1 << 56) - 1);
    let mut a = auth();
    let admin_tok = (1u64 << 56) | secret;
    let submit_tok = (2u64 << 56) | secret;
    let both_tok = (3u64 << 56) | secret;
    assert_eq!(a.embedded_token(Rights::ADMIN), Ok(admin_tok));
    assert_eq!(a.embedded_token(Rights::SUBMIT), Ok(submit_tok));
    assert_eq!(a.embedded_token(Rights::ALL), Ok(both_tok));
    assert_eq!(a.embedded_token(Rights::NONE), Err(KeyError::BadRights));
    assert_eq!(
        a.check(admin_tok, Admin, 0),
        Decision::Allowed(Rights::ADMIN)
    );
    assert_eq!(a.check(submit_tok, Admin, 0), Decision::InsufficientRights);
    assert_eq!(
        a.check(submit_tok, SubmitOrAdmin, 0),
        Decision::Allowed(Rights::SUBMIT)
    );
    assert_eq!(a.check(both_tok, Admin, 0), Decision::Allowed(Rights::ALL));
    // Rights byte 0 or with unknown bits, or a wrong secret: nothing.
    for bad in [
        secret,
        (4u64 << 56) | secret,
        (0x81u64 << 56) | secret,
        (1u64 << 56) | (secret ^ 1),
        (1u64 << 56) | (secret ^ (1 << 55)),
    ] {
        assert_eq!(token_rights(&secrets(), bad), Rights::NONE, "{bad:#x}");
    }
}

#[test]
fn bad_secrets_are_refused() {
    let ok = secrets();
    for (s, e) in [
        (Secrets { admin: 0, ..ok }, KeyError::ZeroSecret),
        (Secrets { submit: 0, ..ok }, KeyError::ZeroSecret),
        (Secrets { ctl_key: 0, ..ok }, KeyError::ZeroKey),
        (
            Secrets {
                ctl_key: 0xff00_0000_0000_0000,
                ..ok
            },
            KeyError::ZeroKey,
        ),
        (
            Secrets {
                submit: ADMIN,
                ..ok
            },
            KeyError::SameLegacySecrets,
        ),
        (
            Secrets {
                admin: (KEY & ((1 << 56) - 1)) | (1 << 56),
                ..ok
            },
            KeyError::LegacyMatchesKey,
        ),
    ] {
        assert_eq!(
            Authenticator::new(s, no_limit()).map(|_| ()),
            Err(AuthSetupError::Key(e))
        );
    }
    assert_eq!(
        Authenticator::new(
            ok,
            RateLimitConfig {
                max_failures: 0,
                ..no_limit()
            }
        )
        .map(|_| ()),
        Err(AuthSetupError::Limits("max_failures must be in 1..=16"))
    );
    assert_eq!(embed_token(0, Rights::ADMIN), Err(KeyError::ZeroKey));
}

#[test]
fn rotation_replaces_secrets_and_bad_rotation_changes_nothing() {
    let mut a = auth();
    let old_embedded = a.embedded_token(Rights::SUBMIT).unwrap();
    a.rotate_admin(0x1234).unwrap();
    assert_eq!(a.check(ADMIN, Admin, 0), Decision::BadToken);
    assert_eq!(a.check(0x1234, Admin, 0), Decision::Allowed(Rights::ADMIN));
    a.rotate_submit(0x5678).unwrap();
    assert_eq!(a.check(SUBMIT, SubmitOrAdmin, 0), Decision::BadToken);
    assert_eq!(
        a.check(0x5678, SubmitOrAdmin, 0),
        Decision::Allowed(Rights::SUBMIT)
    );
    a.rotate_ctl_key(0x00ab_cdef_0123_4567).unwrap();
    assert_eq!(a.check(old_embedded, SubmitOrAdmin, 0), Decision::BadToken);
    let new_embedded = a.embedded_token(Rights::SUBMIT).unwrap();
    assert_eq!(new_embedded, (2 << 56) | 0x00ab_cdef_0123_4567);
    assert_eq!(
        a.check(new_embedded, SubmitOrAdmin, 0),
        Decision::Allowed(Rights::SUBMIT)
    );
    // Refused rotations leave everything as it was.
    assert_eq!(a.rotate_admin(0), Err(KeyError::ZeroSecret));
    assert_eq!(a.rotate_admin(0x5678), Err(KeyError::SameLegacySecrets));
    assert_eq!(a.rotate_ctl_key(0xff << 56), Err(KeyError::ZeroKey));
    assert_eq!(a.rotate_ctl_key(0x1234), Err(KeyError::LegacyMatchesKey));
    assert_eq!(
        (a.admin_token(), a.submit_token(), a.ctl_key()),
        (0x1234, 0x5678, 0x00ab_cdef_0123_4567)
    );
    assert_eq!(a.stats().rotations, 3);
}

#[test]
fn decisions_map_to_reply_codes() {
    assert_eq!(Decision::Allowed(Rights::ADMIN).error_code(), None);
    assert_eq!(Decision::BadToken.error_code(), Some(ErrorCode::AuthFailed));
    assert_eq!(
        Decision::InsufficientRights.error_code(),
        Some(ErrorCode::AuthFailed)
    );
    assert_eq!(
        Decision::RateLimited { retry_after_ms: 5 }.error_code(),
        Some(ErrorCode::RateLimited)
    );
}

fn limited() -> Authenticator {
    Authenticator::new(
        secrets(),
        RateLimitConfig {
            max_failures: 3,
            window_ms: 1000,
            base_backoff_ms: 100,
            max_backoff_ms: 350,
        },
    )
    .unwrap()
}

#[test]
fn failures_within_the_window_lock_everyone_out() {
    let mut a = limited();
    assert_eq!(a.check(1, Admin, 0), Decision::BadToken);
    assert_eq!(a.check(SUBMIT, Admin, 10), Decision::InsufficientRights);
    assert_eq!(a.check(2, Admin, 20), Decision::BadToken); // third failure: lock for 100 ms
    assert_eq!(
        a.check(ADMIN, Admin, 50),
        Decision::RateLimited { retry_after_ms: 70 }
    );
    assert_eq!(a.locked_for(119), Some(1));
    assert_eq!(a.check(ADMIN, Admin, 120), Decision::Allowed(Rights::ADMIN));
    let s = a.stats();
    assert_eq!((s.rate_limited, s.lockouts, s.allowed), (1, 1, 1));
}

#[test]
fn failures_spread_over_more_than_the_window_do_not_lock() {
    let mut a = limited();
    for t in [0, 600, 1200, 1800, 2400] {
        assert_eq!(a.check(9, Admin, t), Decision::BadToken);
    }
    assert_eq!(a.stats().lockouts, 0);
    assert_eq!(
        a.check(ADMIN, Admin, 2500),
        Decision::Allowed(Rights::ADMIN)
    );
}

#[test]
fn backoff_doubles_up_to_the_cap_and_success_resets_it() {
    let mut a = limited();
    let mut now = 0;
    let lock = |a: &mut Authenticator, now: &mut u64| {
        for _ in 0..3 {
            assert_eq!(a.check(7, Admin, *now), Decision::BadToken);
        }
        let left = match a.check(ADMIN, Admin, *now) {
            Decision::RateLimited { retry_after_ms } => retry_after_ms,
            d => panic!("not locked: {d:?}"),
        };
        *now += left;
        left
    };
    assert_eq!(lock(&mut a, &mut now), 100);
    assert_eq!(lock(&mut a, &mut now), 200);
    assert_eq!(lock(&mut a, &mut now), 350);
    assert_eq!(lock(&mut a, &mut now), 350);
    assert_eq!(a.check(ADMIN, Admin, now), Decision::Allowed(Rights::ADMIN));
    assert_eq!(lock(&mut a, &mut now), 100);
    assert_eq!(a.stats().lockouts, 5);
}

#[test]
fn a_clock_going_backwards_does_not_unlock() {
    let mut a = limited();
    for _ in 0..3 {
        a.check(7, Admin, 1000);
    }
    assert_eq!(
        a.check(ADMIN, Admin, 5),
        Decision::RateLimited {
            retry_after_ms: 100
        }
    );
    assert_eq!(
        a.check(ADMIN, Admin, 1100),
        Decision::Allowed(Rights::ADMIN)
    );
}

#[test]
fn huge_backoff_settings_saturate() {
    let mut r = RateLimiter::new(RateLimitConfig {
        max_failures: 1,
        window_ms: u64::MAX,
        base_backoff_ms: u64::MAX / 2,
        max_backoff_ms: u64::MAX,
    })
    .unwrap();
    let mut now = 0u64;
    for _ in 0..70 {
        let b = r.record_failure(now).unwrap();
        assert!(b >= u64::MAX / 2);
        now = now.saturating_add(b);
    }
    assert_eq!(r.lockouts(), 70);
}

proptest! {
    #[test]
    fn ct_eq_matches_plain_equality(a in any::<u64>(), b in any::<u64>(), flip in 0u32..64) {
        prop_assert_eq!(ct_eq_u64(a, b), a == b);
        prop_assert!(ct_eq_u64(a, a));
        prop_assert!(!ct_eq_u64(a, a ^ (1 << flip)));
    }

    #[test]
    fn ct_eq_bytes_matches_plain_equality(a in prop::collection::vec(any::<u8>(), 0..40),
                                          b in prop::collection::vec(any::<u8>(), 0..40)) {
        prop_assert_eq!(ct_eq_bytes(&a, &b), a == b);
        prop_assert!(ct_eq_bytes(&a, &a));
    }

    #[test]
    fn random_tokens_grant_nothing(tok in any::<u64>()) {
        let s = secrets();
        prop_assume!(tok != ADMIN && tok != SUBMIT && tok & ((1 << 56) - 1) != KEY & ((1 << 56) - 1));
        prop_assert_eq!(token_rights(&s, tok), Rights::NONE);
    }

    #[test]
    fn token_rights_matches_a_plain_model(tok in prop_oneof![
        any::<u64>(),
        (0u64..=255).prop_map(|r| (r << 56) | (KEY & ((1 << 56) - 1))),
        Just(ADMIN), Just(SUBMIT)]) {
        let s = secrets();
        let mut want = 0u8;
        if tok == ADMIN { want |= 1; }
        if tok == SUBMIT { want |= 2; }
        let r = (tok >> 56) as u8;
        if tok & ((1 << 56) - 1) == KEY & ((1 << 56) - 1) && r != 0 && r & !3 == 0 { want |= r; }
        prop_assert_eq!(token_rights(&s, tok).bits(), want);
    }
}

#[test]
fn documented_embedding_example_holds() {
    // docs/frames.md §6.
    let key = 0x9f12_3456_789a_bcde;
    assert_eq!(embed_token(key, Rights::ADMIN), Ok(0x0112_3456_789a_bcde));
    assert_eq!(embed_token(key, Rights::SUBMIT), Ok(0x0212_3456_789a_bcde));
    assert_eq!(embed_token(key, Rights::ALL), Ok(0x0312_3456_789a_bcde));
}

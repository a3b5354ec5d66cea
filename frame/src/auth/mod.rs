//! Control-plane authorization: tokens, rights, constant-time checks, rate limiting,
//! rotation.
//!
//! A token (the first 8 payload bytes) grants rights in any of three ways, all evaluated in
//! constant time with no early exit:
//! - it equals the legacy ADMIN secret → ADMIN;
//! - it equals the legacy SUBMIT secret → SUBMIT;
//! - it is an embedded-rights token `(rights << 56) | secret` whose low 56 bits equal the low
//!   56 bits of the control key and whose top byte is a non-empty subset of
//!   `ADMIN (bit0) | SUBMIT (bit1)` → those rights.
//!
//! `0x10 LlmLoad` needs ADMIN; `0x11`..`0x13` need SUBMIT or ADMIN. All secrets are supplied
//! by the caller (the guest draws them from virtio-rng); there is no default.

mod ct;
mod ratelimit;

pub use ct::{ct_eq_bytes, ct_eq_u64};
pub use ratelimit::{RateLimitConfig, RateLimiter, MAX_TRACKED_FAILURES};

use crate::codec::Requirement;
use crate::reply::ErrorCode;
use subtle::{ConditionallySelectable, ConstantTimeEq};

/// Mask of the secret part of an embedded-rights token.
pub const SECRET_MASK: u64 = (1 << 56) - 1;

/// A set of rights.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Rights(u8);

impl Rights {
    /// No rights.
    pub const NONE: Rights = Rights(0);
    /// May load the model (and do everything SUBMIT may).
    pub const ADMIN: Rights = Rights(0b01);
    /// May start, poll and cancel inferences.
    pub const SUBMIT: Rights = Rights(0b10);
    /// Both.
    pub const ALL: Rights = Rights(0b11);

    /// Rights from bits; `None` if unknown bits are set.
    pub const fn from_bits(bits: u8) -> Option<Rights> {
        if bits & !Self::ALL.0 == 0 {
            Some(Rights(bits))
        } else {
            None
        }
    }
    /// The bits.
    pub const fn bits(self) -> u8 {
        self.0
    }
    /// True if every right in `other` is in `self`.
    pub const fn contains(self, other: Rights) -> bool {
        self.0 & other.0 == other.0
    }
    /// True for the empty set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// True if these rights satisfy `req`.
    pub const fn satisfies(self, req: Requirement) -> bool {
        match req {
            Requirement::Admin => self.contains(Rights::ADMIN),
            Requirement::SubmitOrAdmin => self.0 & Rights::ALL.0 != 0,
        }
    }
}

/// The three secrets.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Secrets {
    /// Legacy ADMIN token.
    pub admin: u64,
    /// Legacy SUBMIT token.
    pub submit: u64,
    /// Control key; its low 56 bits are the embedded-token secret.
    pub ctl_key: u64,
}

impl core::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Secrets { .. }")
    }
}

/// Why a secret was refused. Nothing is changed when this is returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyError {
    /// A legacy secret is zero.
    ZeroSecret,
    /// The control key's low 56 bits are zero (every embedded token would be guessable).
    ZeroKey,
    /// ADMIN and SUBMIT secrets are equal (rights could not be told apart).
    SameLegacySecrets,
    /// A legacy secret's low 56 bits equal the control key's: it would double as an
    /// embedded-rights token.
    LegacyMatchesKey,
    /// An embedded token was asked for with no rights or unknown rights.
    BadRights,
}

impl core::fmt::Display for KeyError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            KeyError::ZeroSecret => "a token secret must not be zero",
            KeyError::ZeroKey => "the low 56 bits of the control key must not be zero",
            KeyError::SameLegacySecrets => "ADMIN and SUBMIT secrets must differ",
            KeyError::LegacyMatchesKey => {
                "a legacy secret must not share its low 56 bits with the control key"
            }
            KeyError::BadRights => "rights must be a non-empty subset of admin|submit",
        })
    }
}

impl Secrets {
    /// Check the secrets are usable together.
    pub fn validate(&self) -> Result<(), KeyError> {
        if self.admin == 0 || self.submit == 0 {
            return Err(KeyError::ZeroSecret);
        }
        if self.ctl_key & SECRET_MASK == 0 {
            return Err(KeyError::ZeroKey);
        }
        if self.admin == self.submit {
            return Err(KeyError::SameLegacySecrets);
        }
        let key = self.ctl_key & SECRET_MASK;
        if self.admin & SECRET_MASK == key || self.submit & SECRET_MASK == key {
            return Err(KeyError::LegacyMatchesKey);
        }
        Ok(())
    }
}

/// Outcome of an authorization check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Allowed; the token's rights.
    Allowed(Rights),
    /// The token grants nothing.
    BadToken,
    /// The token is valid but lacks the needed right.
    InsufficientRights,
    /// Refused without checking: locked out after too many failures.
    RateLimited {
        /// Milliseconds until requests are checked again.
        retry_after_ms: u64,
    },
}

impl Decision {
    /// True when allowed.
    pub const fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allowed(_))
    }
    /// The reply code for a refusal (`None` when allowed). Bad token and insufficient rights
    /// share `AuthFailed` so a prober learns nothing about which it hit.
    pub const fn error_code(&self) -> Option<ErrorCode> {
        match self {
            Decision::Allowed(_) => None,
            Decision::BadToken | Decision::InsufficientRights => Some(ErrorCode::AuthFailed),
            Decision::RateLimited { .. } => Some(ErrorCode::RateLimited),
        }
    }
}

/// Authorization counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AuthStats {
    /// Requests allowed.
    pub allowed: u64,
    /// Requests denied because the token granted nothing.
    pub denied_bad_token: u64,
    /// Requests denied because the token lacked the needed right.
    pub denied_rights: u64,
    /// Requests refused during a lock-out.
    pub rate_limited: u64,
    /// Lock-outs started.
    pub lockouts: u64,
    /// Successful secret rotations.
    pub rotations: u64,
}

/// Token checker with rate limiting and counters.
pub struct Authenticator {
    secrets: Secrets,
    limiter: RateLimiter,
    stats: AuthStats,
}

impl core::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Authenticator")
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// Rights granted by `token` under `secrets`, computed in constant time.
pub fn token_rights(secrets: &Secrets, token: u64) -> Rights {
    let is_admin = token.ct_eq(&secrets.admin);
    let is_submit = token.ct_eq(&secrets.submit);
    let embedded = (token >> 56) as u8;
    let secret_ok = (token & SECRET_MASK).ct_eq(&(secrets.ctl_key & SECRET_MASK));
    let rights_ok = (embedded & !Rights::ALL.0).ct_eq(&0) & !embedded.ct_eq(&0);
    let embedded_ok = secret_ok & rights_ok;
    let mut r = u8::conditional_select(&0, &Rights::ADMIN.0, is_admin);
    r |= u8::conditional_select(&0, &Rights::SUBMIT.0, is_submit);
    r |= u8::conditional_select(&0, &embedded, embedded_ok);
    Rights(r)
}

/// The embedded-rights token `(rights << 56) | (ctl_key & SECRET_MASK)`.
pub fn embed_token(ctl_key: u64, rights: Rights) -> Result<u64, KeyError> {
    if rights.is_empty() || Rights::from_bits(rights.0).is_none() {
        return Err(KeyError::BadRights);
    }
    if ctl_key & SECRET_MASK == 0 {
        return Err(KeyError::ZeroKey);
    }
    Ok((u64::from(rights.0) << 56) | (ctl_key & SECRET_MASK))
}

impl Authenticator {
    /// An authenticator with validated secrets and rate-limit settings.
    pub fn new(secrets: Secrets, limits: RateLimitConfig) -> Result<Self, AuthSetupError> {
        secrets.validate().map_err(AuthSetupError::Key)?;
        let limiter = RateLimiter::new(limits).map_err(AuthSetupError::Limits)?;
        Ok(Authenticator {
            secrets,
            limiter,
            stats: AuthStats::default(),
        })
    }

    /// Check `token` for a command needing `req` at time `now_ms` (monotonic milliseconds)
    /// and update counters and the rate limiter.
    pub fn check(&mut self, token: u64, req: Requirement, now_ms: u64) -> Decision {
        if let Some(left) = self.limiter.locked(now_ms) {
            self.stats.rate_limited += 1;
            return Decision::RateLimited {
                retry_after_ms: left,
            };
        }
        let rights = token_rights(&self.secrets, token);
        let decision = if rights.is_empty() {
            self.stats.denied_bad_token += 1;
            Decision::BadToken
        } else if !rights.satisfies(req) {
            self.stats.denied_rights += 1;
            Decision::InsufficientRights
        } else {
            self.stats.allowed += 1;
            Decision::Allowed(rights)
        };
        if decision.is_allowed() {
            self.limiter.record_success();
        } else if self.limiter.record_failure(now_ms).is_some() {
            self.stats.lockouts += 1;
        }
        decision
    }

    /// Milliseconds left in the current lock-out, if any.
    pub fn locked_for(&mut self, now_ms: u64) -> Option<u64> {
        self.limiter.locked(now_ms)
    }

    /// Counters so far.
    pub fn stats(&self) -> AuthStats {
        self.stats
    }

    /// Current legacy ADMIN token (for the `ctladmin` shell command).
    pub fn admin_token(&self) -> u64 {
        self.secrets.admin
    }

    /// Current legacy SUBMIT token (for `ctlsubmit`).
    pub fn submit_token(&self) -> u64 {
        self.secrets.submit
    }

    /// Current control key (for `ctlkey`).
    pub fn ctl_key(&self) -> u64 {
        self.secrets.ctl_key
    }

    /// The embedded-rights token for `rights` under the current key (for `ctlembed`).
    pub fn embedded_token(&self, rights: Rights) -> Result<u64, KeyError> {
        embed_token(self.secrets.ctl_key, rights)
    }

    fn rotate(&mut self, next: Secrets) -> Result<(), KeyError> {
        next.validate()?;
        self.secrets = next;
        self.stats.rotations += 1;
        Ok(())
    }

    /// Replace the legacy ADMIN secret; old ADMIN tokens stop working at once.
    pub fn rotate_admin(&mut self, secret: u64) -> Result<(), KeyError> {
        self.rotate(Secrets {
            admin: secret,
            ..self.secrets
        })
    }

    /// Replace the legacy SUBMIT secret.
    pub fn rotate_submit(&mut self, secret: u64) -> Result<(), KeyError> {
        self.rotate(Secrets {
            submit: secret,
            ..self.secrets
        })
    }

    /// Replace the control key; every embedded-rights token issued before stops working.
    pub fn rotate_ctl_key(&mut self, key: u64) -> Result<(), KeyError> {
        self.rotate(Secrets {
            ctl_key: key,
            ..self.secrets
        })
    }
}

/// Why an [`Authenticator`] could not be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthSetupError {
    /// Bad secrets.
    Key(KeyError),
    /// Bad rate-limit settings (the text names the field).
    Limits(&'static str),
}

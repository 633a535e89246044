//! The abuse limits, as rules over plain state: the storage engines only
//! read and write the numbers these functions decide, so SQLite and
//! PostgreSQL cannot disagree about a rule.
//!
//! Invariants:
//! - Every gate counts the attempt *before* the argon2 check: the caller
//!   stores the state a gate returns in the same transaction that read the
//!   old one (under the engine's write lock), so parallel guesses cannot
//!   slip in under a limit.
//! - A login lock never blocks recovery, and recovery's suspension never
//!   blocks login.
//! - A confirmation for an account with no live code counts toward nothing:
//!   it cannot succeed, so there is nothing to guess, and knowing a NIT must
//!   never be enough to switch someone's recovery off.
//! - The request log keeps only the timestamps that still count (the last
//!   24 h, at most `requests_per_day` of them): it lives on the account,
//!   so purging codes never resets a limit.

/// The numbers of SPEC.md's "Abuse limits" table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wrong submissions a code survives.
    pub code_attempts: i64,
    /// Consecutive failed confirmations (against live codes) before the
    /// recovery channel is suspended.
    pub confirm_failures: i64,
    /// How long a suspension of the recovery channel lasts.
    pub suspension_secs: i64,
    /// Failed logins before the first lock.
    pub login_failures: i64,
    pub login_lock_base_secs: i64,
    pub login_lock_max_secs: i64,
    /// Requests: at most one per this many seconds...
    pub request_min_interval_secs: i64,
    /// ...and at most this many per window.
    pub requests_per_window: i64,
    pub request_window_secs: i64,
}

pub const DAY: i64 = 24 * 3600;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            code_attempts: 5,
            confirm_failures: 20,
            suspension_secs: DAY,
            login_failures: 5,
            login_lock_base_secs: 15 * 60,
            login_lock_max_secs: DAY,
            request_min_interval_secs: 60,
            requests_per_window: 5,
            request_window_secs: DAY,
        }
    }
}

// ------------------------------------------------------------------ login

/// An account's login counters, as stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoginState {
    pub failures: i64,
    pub locked_until: Option<i64>,
}

/// What the login limiter says before a password is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginGate {
    /// Verify the password. `counted` is the state to store now: the
    /// attempt already counts as a failure, and a right password clears it.
    Verify { counted: LoginState },
    /// Locked: no password is checked and nothing is counted, so hammering
    /// a locked account cannot stretch its lock.
    Locked { until: i64 },
}

impl Limits {
    /// Lock length after the `failures`-th consecutive failure: 15 min at
    /// the 5th, doubling per further failure, at most 24 h.
    pub fn login_lock_secs(&self, failures: i64) -> Option<i64> {
        if failures < self.login_failures {
            return None;
        }
        let doublings = (failures - self.login_failures).clamp(0, 20) as u32;
        Some(
            self.login_lock_base_secs
                .saturating_mul(1i64 << doublings)
                .min(self.login_lock_max_secs),
        )
    }

    pub fn login_gate(&self, s: LoginState, now: i64) -> LoginGate {
        if let Some(until) = s.locked_until
            && until > now
        {
            return LoginGate::Locked { until };
        }
        let failures = s.failures.saturating_add(1);
        let locked_until = match self.login_lock_secs(failures) {
            Some(secs) => Some(now + secs),
            None => s.locked_until,
        };
        LoginGate::Verify {
            counted: LoginState {
                failures,
                locked_until,
            },
        }
    }
}

// ------------------------------------------------------- recovery channel

/// An account's recovery-channel counters, as stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChannelState {
    /// Consecutive failed confirmations against live codes.
    pub failures: i64,
    pub suspended_until: Option<i64>,
}

impl ChannelState {
    pub fn suspended(&self, now: i64) -> bool {
        self.suspended_until.is_some_and(|u| u > now)
    }
}

/// What the confirm limiter says before a code is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfirmGate {
    /// Verify the code: the attempt is counted on the code and the account
    /// (`counted` is the account's state to store now).
    Verify { counted: ChannelState },
    /// The code has had its tries: it is dead.
    CodeDead,
    /// The channel is suspended (or about to be: the limit is reached).
    Suspended,
}

impl Limits {
    /// The gate for a confirmation against a live code whose attempt
    /// counter is `code_attempts`.
    pub fn confirm_gate(&self, s: ChannelState, code_attempts: i64, now: i64) -> ConfirmGate {
        if s.suspended(now) || s.failures >= self.confirm_failures {
            return ConfirmGate::Suspended;
        }
        if code_attempts >= self.code_attempts {
            return ConfirmGate::CodeDead;
        }
        ConfirmGate::Verify {
            counted: ChannelState {
                failures: s.failures + 1,
                suspended_until: s.suspended_until.filter(|u| *u > now),
            },
        }
    }

    /// After a wrong code: the state to store, and whether the channel has
    /// just been suspended (the owner is then mailed a notice). The count
    /// restarts after a suspension.
    pub fn confirm_failed(&self, counted: ChannelState, now: i64) -> (ChannelState, bool) {
        if counted.failures >= self.confirm_failures {
            (
                ChannelState {
                    failures: 0,
                    suspended_until: Some(now + self.suspension_secs),
                },
                true,
            )
        } else {
            (counted, false)
        }
    }

    /// True when a code that has had `attempts` (counted) tries is dead.
    pub fn code_exhausted(&self, attempts: i64) -> bool {
        attempts >= self.code_attempts
    }
}

// ------------------------------------------------------------ request log

/// Timestamps of an account's granted reset requests that still count,
/// oldest first. Stored as text (`"t1 t2 …"`) on the account row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestLog(Vec<i64>);

/// How much of the request quota an account has used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Requests granted within the window.
    pub used: i64,
    pub limit: i64,
    /// When the next request will be allowed, if it is not now.
    pub next_at: Option<i64>,
}

impl RequestLog {
    /// Reads the stored form; anything unreadable is dropped (a damaged log
    /// can only make limits looser by the bad entries, never fail a command).
    pub fn parse(s: &str) -> RequestLog {
        let mut v: Vec<i64> = s
            .split_ascii_whitespace()
            .filter_map(|t| t.parse().ok())
            .collect();
        v.sort_unstable();
        RequestLog(v)
    }

    pub fn to_stored(&self) -> String {
        let parts: Vec<String> = self.0.iter().map(i64::to_string).collect();
        parts.join(" ")
    }

    pub fn times(&self) -> &[i64] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Limits {
    fn counting<'a>(&self, log: &'a RequestLog, now: i64) -> impl Iterator<Item = i64> + 'a {
        let since = now - self.request_window_secs;
        log.0.iter().copied().filter(move |t| *t > since)
    }

    /// The account's quota as of `now`.
    pub fn quota(&self, log: &RequestLog, now: i64) -> Quota {
        let live: Vec<i64> = self.counting(log, now).collect();
        let used = live.len() as i64;
        // One a minute: free again a minute after the last one (a past
        // time is dropped by the filter below).
        let mut next: Option<i64> = live
            .last()
            .map(|last| last + self.request_min_interval_secs);
        if used >= self.requests_per_window {
            // The oldest of the last `limit` requests must leave the window.
            let idx = (used - self.requests_per_window) as usize;
            let frees = live[idx] + self.request_window_secs;
            next = Some(next.map_or(frees, |n| n.max(frees)));
        }
        Quota {
            used,
            limit: self.requests_per_window,
            next_at: next.filter(|t| *t > now),
        }
    }

    pub fn request_allowed(&self, log: &RequestLog, now: i64) -> bool {
        self.quota(log, now).next_at.is_none()
    }

    /// The log after a granted request at `now`: old entries dropped.
    pub fn record_request(&self, log: &RequestLog, now: i64) -> RequestLog {
        let mut v: Vec<i64> = self.counting(log, now).collect();
        v.push(now);
        let keep = self.requests_per_window.max(1) as usize;
        v.drain(..v.len().saturating_sub(keep));
        RequestLog(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_lock_doubles_and_caps() {
        let l = Limits::default();
        assert_eq!(l.login_lock_secs(4), None);
        assert_eq!(l.login_lock_secs(5), Some(900));
        assert_eq!(l.login_lock_secs(6), Some(1800));
        assert_eq!(l.login_lock_secs(7), Some(3600));
        assert_eq!(l.login_lock_secs(11), Some(57_600));
        assert_eq!(l.login_lock_secs(12), Some(86_400));
        assert_eq!(l.login_lock_secs(1000), Some(86_400));
    }

    #[test]
    fn login_gate_counts_then_locks_at_the_fifth_failure() {
        let l = Limits::default();
        let mut s = LoginState::default();
        for i in 1..=5 {
            match l.login_gate(s, 100) {
                LoginGate::Verify { counted } => {
                    assert_eq!(counted.failures, i);
                    s = counted;
                }
                other => panic!("attempt {i}: {other:?}"),
            }
        }
        assert_eq!(s.locked_until, Some(100 + 900));
        assert_eq!(l.login_gate(s, 999), LoginGate::Locked { until: 1000 });
        // At the end of the lock, one more try; a failure locks for 30 min.
        match l.login_gate(s, 1000) {
            LoginGate::Verify { counted } => {
                assert_eq!(counted.failures, 6);
                assert_eq!(counted.locked_until, Some(1000 + 1800));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn confirm_gate_and_suspension() {
        let l = Limits::default();
        let fresh = ChannelState::default();
        assert_eq!(
            l.confirm_gate(fresh, 0, 10),
            ConfirmGate::Verify {
                counted: ChannelState {
                    failures: 1,
                    suspended_until: None
                }
            }
        );
        assert_eq!(
            l.confirm_gate(fresh, 4, 10),
            ConfirmGate::Verify {
                counted: ChannelState {
                    failures: 1,
                    suspended_until: None
                }
            }
        );
        assert_eq!(l.confirm_gate(fresh, 5, 10), ConfirmGate::CodeDead);
        let at_19 = ChannelState {
            failures: 19,
            suspended_until: None,
        };
        let ConfirmGate::Verify { counted } = l.confirm_gate(at_19, 0, 10) else {
            panic!("the 20th attempt is still checked");
        };
        assert_eq!(counted.failures, 20);
        let (after, suspended) = l.confirm_failed(counted, 10);
        assert!(suspended);
        assert_eq!(after.suspended_until, Some(10 + DAY));
        assert_eq!(after.failures, 0);
        assert_eq!(l.confirm_gate(after, 0, 11), ConfirmGate::Suspended);
        assert_eq!(
            l.confirm_gate(after, 0, 10 + DAY - 1),
            ConfirmGate::Suspended
        );
        assert!(matches!(
            l.confirm_gate(after, 0, 10 + DAY),
            ConfirmGate::Verify { .. }
        ));
        // A wrong code below the limit changes nothing more.
        let (same, suspended) = l.confirm_failed(
            ChannelState {
                failures: 19,
                suspended_until: None,
            },
            10,
        );
        assert!(!suspended);
        assert_eq!(same.failures, 19);
        // A reached limit refuses even before the suspension is written.
        assert_eq!(
            l.confirm_gate(
                ChannelState {
                    failures: 20,
                    suspended_until: None
                },
                0,
                10
            ),
            ConfirmGate::Suspended
        );
        assert!(l.code_exhausted(5));
        assert!(!l.code_exhausted(4));
    }

    #[test]
    fn request_quota_one_a_minute_five_a_day() {
        let l = Limits::default();
        let mut log = RequestLog::default();
        let t0 = 1_000_000;
        assert!(l.request_allowed(&log, t0));
        log = l.record_request(&log, t0);
        assert!(!l.request_allowed(&log, t0 + 59));
        assert_eq!(l.quota(&log, t0 + 59).next_at, Some(t0 + 60));
        assert!(l.request_allowed(&log, t0 + 60));
        for i in 1..5 {
            log = l.record_request(&log, t0 + 60 * i);
        }
        let q = l.quota(&log, t0 + 3600);
        assert_eq!((q.used, q.limit), (5, 5));
        assert_eq!(q.next_at, Some(t0 + DAY));
        assert!(!l.request_allowed(&log, t0 + DAY - 1));
        assert!(l.request_allowed(&log, t0 + DAY));
        // The log never grows past the limit and drops what left the window.
        log = l.record_request(&log, t0 + DAY);
        assert_eq!(log.times().len(), 5);
        assert_eq!(log.times()[0], t0 + 60);
        let later = l.record_request(&log, t0 + 3 * DAY);
        assert_eq!(later.times(), &[t0 + 3 * DAY]);
    }

    #[test]
    fn request_log_round_trips_and_tolerates_damage() {
        let log = RequestLog::parse("30 10 x 20");
        assert_eq!(log.times(), &[10, 20, 30]);
        assert_eq!(RequestLog::parse(&log.to_stored()), log);
        assert!(RequestLog::parse("").is_empty());
        assert!(!RequestLog::parse("7").is_empty());
        // A damaged log with more entries than the limit keeps the newest.
        let l = Limits::default();
        let long = RequestLog::parse("1 2 3 4 5 6 7 8");
        assert_eq!(l.record_request(&long, 9).times(), &[5, 6, 7, 8, 9]);
    }

    #[test]
    fn a_request_leaves_the_window_exactly_a_day_later() {
        let l = Limits::default();
        let t0 = 1_000_000;
        let log = l.record_request(&RequestLog::default(), t0);
        assert_eq!(l.quota(&log, t0 + DAY - 1).used, 1);
        let q = l.quota(&log, t0 + DAY);
        assert_eq!((q.used, q.next_at), (0, None));
        assert_eq!(l.record_request(&log, t0 + DAY).times(), &[t0 + DAY]);
    }

    #[test]
    fn a_finished_suspension_is_cleared_when_the_channel_is_used() {
        let l = Limits::default();
        for ended in [9, 10] {
            let s = ChannelState {
                failures: 3,
                suspended_until: Some(ended),
            };
            assert_eq!(
                l.confirm_gate(s, 0, 10),
                ConfirmGate::Verify {
                    counted: ChannelState {
                        failures: 4,
                        suspended_until: None
                    }
                },
                "suspension that ended at {ended}"
            );
        }
    }
}

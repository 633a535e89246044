//! Time, injected.
//!
//! Every expiry, throttle and lock compares against [`Clock::now`], never
//! against the system clock directly, so tests set the time instead of
//! sleeping. Times are stored as UTC Unix seconds and shown to people in
//! Colombia time (`America/Bogota`).

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::America::Bogota;
use std::sync::Mutex;

pub trait Clock: Send + Sync {
    /// Unix seconds, UTC.
    fn now(&self) -> i64;
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        Utc::now().timestamp()
    }
}

/// A clock the caller moves by hand (tests, demo, benchmarks).
#[derive(Debug)]
pub struct ManualClock(Mutex<i64>);

impl ManualClock {
    pub fn new(now: i64) -> Self {
        ManualClock(Mutex::new(now))
    }

    pub fn set(&self, now: i64) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = now;
    }

    pub fn advance(&self, secs: i64) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) += secs;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> i64 {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<C: Clock + ?Sized> Clock for std::sync::Arc<C> {
    fn now(&self) -> i64 {
        (**self).now()
    }
}

/// The manual's date format, Colombia time: `24-02-2023 13:46:38`.
pub fn colombia(ts: i64) -> String {
    match Utc.timestamp_opt(ts, 0).single() {
        Some(t) => t
            .with_timezone(&Bogota)
            .format("%d-%m-%Y %H:%M:%S")
            .to_string(),
        None => ts.to_string(),
    }
}

/// RFC 3339 UTC, for `--json` and the audit log.
pub fn rfc3339(ts: i64) -> String {
    DateTime::<Utc>::from_timestamp(ts, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| ts.to_string())
}

/// `--since`/`--until`: a day `YYYY-MM-DD` in Colombia time, or an RFC
/// 3339 instant. A day as `until` means the end of that day (the whole day
/// is included); as `since`, its start.
pub fn parse_instant(s: &str, end_of_day: bool) -> Option<i64> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp());
    }
    let day = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    let day = if end_of_day { day.succ_opt()? } else { day };
    let midnight = day.and_hms_opt(0, 0, 0)?;
    Bogota
        .from_local_datetime(&midnight)
        .earliest()
        .map(|t| t.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_clock_reads_the_system_time_in_seconds() {
        let secs = || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs() as i64
        };
        let (before, ours, after) = (secs(), SystemClock.now(), secs());
        assert!((before..=after).contains(&ours), "{before} {ours} {after}");
    }

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let c = ManualClock::new(1_000);
        assert_eq!(c.now(), 1_000);
        c.advance(61);
        assert_eq!(c.now(), 1_061);
        c.set(5);
        let shared = std::sync::Arc::new(c);
        assert_eq!(Clock::now(&shared), 5);
    }

    #[test]
    fn colombia_is_utc_minus_5_all_year() {
        // 2023-02-24 18:46:38 UTC is the manual's 13:46:38 in Bogotá.
        let ts = Utc
            .with_ymd_and_hms(2023, 2, 24, 18, 46, 38)
            .unwrap()
            .timestamp();
        assert_eq!(colombia(ts), "24-02-2023 13:46:38");
        let july = Utc
            .with_ymd_and_hms(2023, 7, 1, 3, 0, 0)
            .unwrap()
            .timestamp();
        assert_eq!(colombia(july), "30-06-2023 22:00:00");
        assert_eq!(rfc3339(ts), "2023-02-24T18:46:38Z");
    }

    #[test]
    fn audit_dates() {
        // 2026-12-01 00:00 in Bogotá is 05:00 UTC.
        let start = parse_instant("2026-12-01", false).unwrap();
        assert_eq!(rfc3339(start), "2026-12-01T05:00:00Z");
        let end = parse_instant("2026-12-01", true).unwrap();
        assert_eq!(end - start, 86_400);
        assert_eq!(
            parse_instant("2026-12-01T10:00:00-05:00", false),
            parse_instant("2026-12-01T15:00:00Z", true)
        );
        assert_eq!(parse_instant("01/12/2026", false), None);
        assert_eq!(parse_instant("2026-02-30", false), None);
    }

    #[test]
    fn manual_clock_moves() {
        let c = ManualClock::new(100);
        c.advance(60);
        assert_eq!(c.now(), 160);
        c.set(5);
        assert_eq!(c.now(), 5);
    }
}

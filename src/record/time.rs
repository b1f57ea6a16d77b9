//! Timestamps as Azure writes them: RFC 3339 with 7 fractional digits, offset-less civil times
//! from Log Analytics exports, US-style portal times, .NET ticks and Unix seconds.

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::Timestamp;

/// .NET ticks (100 ns since 0001-01-01T00:00:00Z) at the Unix epoch.
const TICKS_AT_UNIX_EPOCH: i64 = 621_355_968_000_000_000;

/// Parses a timestamp string, assuming UTC when it carries no offset.
pub fn parse(s: &str) -> Option<Timestamp> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if let Ok(t) = s.parse::<Timestamp>() {
        return Some(t);
    }
    // jiff rejects more than 9 fractional digits; some writers pad further.
    if let Some(t) = trim_fraction(s).and_then(|t| t.parse::<Timestamp>().ok()) {
        return Some(t);
    }
    if let Ok(dt) = s.trim_end_matches(" [UTC]").parse::<DateTime>() {
        return TimeZone::UTC.to_timestamp(dt).ok();
    }
    for fmt in ["%m/%d/%Y %I:%M:%S%.f %p", "%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %H:%M:%S%.f", "%m/%d/%Y %H:%M:%S"] {
        if let Ok(dt) = DateTime::strptime(fmt, s.trim_end_matches(" [UTC]")) {
            return TimeZone::UTC.to_timestamp(dt).ok();
        }
    }
    None
}

fn trim_fraction(s: &str) -> Option<String> {
    let dot = s.find('.')?;
    let digits = s[dot + 1..].bytes().take_while(u8::is_ascii_digit).count();
    (digits > 9).then(|| format!("{}{}", &s[..dot + 10], &s[dot + 1 + digits..]))
}

/// Converts .NET ticks to a timestamp; `None` when out of any plausible range.
pub fn from_ticks(ticks: i64) -> Option<Timestamp> {
    let since_epoch = ticks.checked_sub(TICKS_AT_UNIX_EPOCH)?;
    let secs = since_epoch.div_euclid(10_000_000);
    let nanos = (since_epoch.rem_euclid(10_000_000) * 100) as i32;
    Timestamp::new(secs, nanos).ok()
}

/// Converts Unix seconds (as in chat completions' `created`) to a timestamp.
pub fn from_unix_seconds(secs: i64) -> Option<Timestamp> {
    Timestamp::from_second(secs).ok()
}

/// Converts Unix nanoseconds (OTLP `startTimeUnixNano`) to a timestamp.
pub fn from_unix_nanos(nanos: i128) -> Option<Timestamp> {
    Timestamp::from_nanosecond(nanos).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn azure_forms() {
        let t = parse("2024-04-08T12:23:02.4350000Z").unwrap();
        assert_eq!(t.to_string(), "2024-04-08T12:23:02.435Z");
        assert_eq!(parse("2024-04-08T12:23:02.4350000").unwrap(), t);
        assert_eq!(parse("2024-04-08 12:23:02.435").unwrap(), t);
        assert_eq!(parse("4/8/2024 12:23:02.435 PM").unwrap(), t);
        assert_eq!(parse("2024-04-08T12:23:02.435000000000Z").unwrap(), t);
        assert!(parse("yesterday").is_none());
    }

    #[test]
    fn ticks_decode_to_the_request_time() {
        // requestTime 638481757794854611 is 2024-04-08T12:22:59.4854611Z.
        let t = from_ticks(638_481_757_794_854_611).unwrap();
        assert_eq!(t.to_string(), "2024-04-08T12:22:59.4854611Z");
        assert!(from_ticks(i64::MIN).is_none());
    }
}

//! Timestamps as people read them, as virsh prints them: the local time zone (`TZ` honoured,
//! else the system's) with its offset, `YYYY-MM-DD HH:MM:SS +HHMM`.

use jiff::tz::TimeZone;

/// Seconds since the Unix epoch, now.
pub fn now_secs() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// `secs` since the epoch in the local time zone.
pub fn format_local(secs: i64) -> String {
    format_in(secs, &TimeZone::system())
}

/// `secs` since the epoch in UTC (`+0000`), the same on every machine.
pub fn format_utc(secs: i64) -> String {
    format_in(secs, &TimeZone::UTC)
}

/// `secs` since the epoch in `zone`; an instant out of the calendar's range stays a number.
pub fn format_in(secs: i64, zone: &TimeZone) -> String {
    match jiff::Timestamp::from_second(secs) {
        Ok(t) => t.to_zoned(zone.clone()).strftime("%Y-%m-%d %H:%M:%S %z").to_string(),
        Err(_) => format!("{secs} s after 1970-01-01 00:00:00 UTC"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants_with_their_offset() {
        assert_eq!(format_utc(0), "1970-01-01 00:00:00 +0000");
        assert_eq!(format_in(951_782_400, &TimeZone::UTC), "2000-02-29 00:00:00 +0000");
        let paris = TimeZone::posix("CET-1CEST,M3.5.0,M10.5.0/3").unwrap();
        assert_eq!(format_in(1_795_313_574, &paris), "2026-11-22 03:12:54 +0100");
        assert_eq!(format_in(1_782_000_000, &paris), "2026-06-21 02:00:00 +0200");
        assert_eq!(format_in(i64::MAX, &TimeZone::UTC), format!("{} s after 1970-01-01 00:00:00 UTC", i64::MAX));
    }
}

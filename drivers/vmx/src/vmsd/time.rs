//! Snapshot creation times as a `.vmsd` keeps them: microseconds since the Unix epoch split
//! into `createTimeHigh` (the upper 32 bits) and `createTimeLow` (the lower 32 bits, printed
//! as a signed 32-bit number).

/// The instant `createTimeHigh`/`createTimeLow` name, in microseconds since the epoch. `low`
/// is read as VMware prints it (signed) or as some tools print it (unsigned).
pub fn from_high_low(high: i64, low: i64) -> i64 {
    (high << 32) | i64::from(low as u32)
}

/// `(createTimeHigh, createTimeLow)` for `micros` since the epoch.
pub fn to_high_low(micros: i64) -> (i64, i32) {
    (micros >> 32, micros as u32 as i32)
}

/// Microseconds since the epoch, now.
pub fn now_micros() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use luavirt_plugin_api::time::format_utc as utc;

    #[test]
    fn known_vmsd_times_read_and_write_back() {
        let t = from_high_low(416404, 1361996416);
        assert_eq!(utc(t / 1_000_000), "2026-09-03 13:42:03 +0000");
        assert_eq!(to_high_low(t), (416404, 1361996416));
        // A negative low half is the same 32 bits as its unsigned reading.
        let t = from_high_low(388801, -814770620);
        assert_eq!(utc(t / 1_000_000), "2022-12-01 10:37:39 +0000");
        assert_eq!(from_high_low(388801, 3480196676), t);
        assert_eq!(to_high_low(t), (388801, -814770620));
    }
}

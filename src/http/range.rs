//! Direct play: which bytes of a file a request gets (RFC 9110 §14).
//!
//! Parsing is http-range-header's; this module only decides, with
//! `If-Range`, between the whole file, one range, and 416.

use std::ops::RangeInclusive;
use std::time::SystemTime;

/// What to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeOutcome {
    /// 200 with the whole file.
    Full,
    /// 206 with these bytes (inclusive).
    Partial(RangeInclusive<u64>),
    /// 416.
    Unsatisfiable,
}

/// A strong validator from size and modification time.
pub fn etag(size_bytes: u64, modified: SystemTime) -> String {
    let nanos = modified
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("\"{size_bytes:x}-{nanos:x}\"")
}

/// Decides for a file of `size_bytes` with validators `etag` and
/// `last_modified` (as sent in `Last-Modified`).
///
/// - no `Range`, a malformed one, or several ranges → the whole file (a
///   server may ignore Range, RFC 9110 §14.2);
/// - `If-Range` that matches neither the ETag nor `Last-Modified` → the whole file (§13.1.5);
/// - one range inside the file → those bytes; one outside it → 416.
pub fn evaluate(
    range: Option<&str>,
    if_range: Option<&str>,
    etag: &str,
    last_modified: &str,
    size_bytes: u64,
) -> RangeOutcome {
    let Some(range) = range else {
        return RangeOutcome::Full;
    };
    if let Some(validator) = if_range.map(str::trim) {
        if validator != etag && validator != last_modified {
            return RangeOutcome::Full;
        }
    }
    let parsed = match http_range_header::parse_range_header(range) {
        Ok(p) => p,
        Err(_) => return RangeOutcome::Full,
    };
    if parsed.len() != 1 {
        return RangeOutcome::Full;
    }
    match parsed.validate(size_bytes) {
        Ok(ranges) => match ranges.into_iter().next() {
            Some(r) => RangeOutcome::Partial(r),
            None => RangeOutcome::Full,
        },
        Err(_) => RangeOutcome::Unsatisfiable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const E: &str = "\"10-1\"";
    const LM: &str = "Mon, 23 Nov 2026 03:00:00 GMT";

    #[test]
    fn no_range_is_full() {
        assert_eq!(evaluate(None, None, E, LM, 100), RangeOutcome::Full);
    }

    #[test]
    fn single_ranges() {
        assert_eq!(
            evaluate(Some("bytes=0-9"), None, E, LM, 100),
            RangeOutcome::Partial(0..=9)
        );
        assert_eq!(
            evaluate(Some("bytes=90-"), None, E, LM, 100),
            RangeOutcome::Partial(90..=99)
        );
        assert_eq!(
            evaluate(Some("bytes=-10"), None, E, LM, 100),
            RangeOutcome::Partial(90..=99)
        );
        // an end past the file is clamped (RFC 9110 §14.1.1)
        assert_eq!(
            evaluate(Some("bytes=50-1000"), None, E, LM, 100),
            RangeOutcome::Partial(50..=99)
        );
    }

    #[test]
    fn out_of_file_is_unsatisfiable() {
        assert_eq!(
            evaluate(Some("bytes=100-"), None, E, LM, 100),
            RangeOutcome::Unsatisfiable
        );
        assert_eq!(
            evaluate(Some("bytes=500-600"), None, E, LM, 100),
            RangeOutcome::Unsatisfiable
        );
    }

    #[test]
    fn malformed_and_multiple_ranges_get_the_whole_file() {
        assert_eq!(
            evaluate(Some("lines=1-2"), None, E, LM, 100),
            RangeOutcome::Full
        );
        assert_eq!(
            evaluate(Some("bytes=0-1,5-6"), None, E, LM, 100),
            RangeOutcome::Full
        );
    }

    #[test]
    fn if_range_must_match_a_validator() {
        assert_eq!(
            evaluate(Some("bytes=0-9"), Some(E), E, LM, 100),
            RangeOutcome::Partial(0..=9)
        );
        assert_eq!(
            evaluate(Some("bytes=0-9"), Some(LM), E, LM, 100),
            RangeOutcome::Partial(0..=9)
        );
        assert_eq!(
            evaluate(Some("bytes=0-9"), Some("\"other\""), E, LM, 100),
            RangeOutcome::Full
        );
    }

    #[test]
    fn etag_changes_with_size_and_time() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(5);
        assert_ne!(etag(1, t), etag(2, t));
        assert_ne!(etag(1, t), etag(1, SystemTime::UNIX_EPOCH));
        assert!(etag(1, t).starts_with('"'));
    }
}

//! Dates as the REST interface writes them: `yyyy/MM/dd` for filters and
//! `yyyy/MM/dd HH:mm:ss` (Vietnam time) for times.

use lienthong_edxml::{EdxmlDate, Timestamp};

use crate::error::{ApiError, ErrorCode};

/// Vietnam is UTC+7 all year.
const VN_OFFSET_MS: i64 = 7 * 3_600_000;

pub fn format_ms(ms: i64) -> String {
    Timestamp::from_unix_ms(ms).to_string()
}

/// The first millisecond (UTC epoch) of a Vietnam calendar day given as `yyyy/MM/dd`.
fn day_start_ms(field: &str, value: &str) -> Result<i64, ApiError> {
    let d = EdxmlDate::parse(value)
        .map_err(|e| ApiError::new(ErrorCode::InvalidFile, format!("{field}: {}", e.0)))?;
    let midnight = d.0.midnight().assume_utc().unix_timestamp() * 1000;
    Ok(midnight - VN_OFFSET_MS)
}

const DAY_MS: i64 = 86_400_000;

/// The `[fromDate, toDate]` filter (both days included) as epoch-millisecond bounds.
pub fn date_range(
    from_date: Option<&str>,
    to_date: Option<&str>,
) -> Result<(Option<i64>, Option<i64>), ApiError> {
    let from = from_date.map(|d| day_start_ms("fromDate", d)).transpose()?;
    let to = to_date
        .map(|d| day_start_ms("toDate", d).map(|start| start + DAY_MS))
        .transpose()?;
    Ok((from, to))
}

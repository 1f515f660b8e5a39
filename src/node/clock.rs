//! The wall clock as the node sees it (unix milliseconds). Its own file so that data types,
//! commands and tasks can all read the time without depending on one another.

use std::time::{SystemTime, UNIX_EPOCH};

/// The current unix time in milliseconds.
pub fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

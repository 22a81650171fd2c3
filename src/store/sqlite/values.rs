//! Between rusqlite and our types: errors classified as corrupt or failed,
//! integers saturated into SQLite's i64 and checked on the way out.

use crate::store::StoreError;
use rusqlite::Row;
use std::path::Path;

/// Turns a rusqlite error into ours: damage to the file, or to a value in it,
/// is `Corrupt`; anything else is a failed operation.
pub(super) fn classify(path: &Path, op: &'static str, e: rusqlite::Error) -> StoreError {
    use rusqlite::ffi::ErrorCode;
    let corrupt = match &e {
        rusqlite::Error::SqliteFailure(err, _) => matches!(
            err.code,
            ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase
        ),
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::IntegralValueOutOfRange(..)
        | rusqlite::Error::InvalidColumnType(..) => true,
        _ => false,
    };
    if corrupt {
        StoreError::Corrupt {
            path: path.to_path_buf(),
            problem: format!("{op}: {e}"),
        }
    } else {
        StoreError::Failed {
            path: path.to_path_buf(),
            op,
            problem: e.to_string(),
        }
    }
}

/// SQLite integers are i64: larger values are stored as `i64::MAX` (no limit,
/// count or instant of this program comes near it).
pub(super) fn sat(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(super) fn sat_usize(v: usize) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A non-negative integer column; a negative one is bad data, not a panic.
pub(super) fn get_u64(row: &Row<'_>, idx: usize) -> rusqlite::Result<u64> {
    let v: i64 = row.get(idx)?;
    u64::try_from(v).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(idx, v))
}

pub(super) fn bad_value(idx: usize, problem: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Blob, problem.into())
}

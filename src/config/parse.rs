//! The parsing and validation every setting goes through, so each error names
//! the setting, what it must be, and what it got, in the same words.

use super::ConfigError;

/// Parses an environment value (trimmed), or names the variable and what it
/// must be.
pub(super) fn parse_env<T: std::str::FromStr>(
    name: &str,
    raw: &str,
    expected: &'static str,
) -> Result<T, ConfigError> {
    raw.trim().parse().map_err(|_| ConfigError::Invalid {
        name: name.to_string(),
        expected,
        value: raw.to_string(),
    })
}

/// `value` if it is within `min..=max`, else an error naming the setting.
pub(super) fn check_range(
    name: &str,
    value: u64,
    min: u64,
    max: u64,
    expected: &'static str,
) -> Result<u64, ConfigError> {
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(ConfigError::Invalid {
            name: name.to_string(),
            expected,
            value: value.to_string(),
        })
    }
}

/// A boolean variable: unset or empty is `false`.
pub(super) fn flag(name: &str, env: &impl Fn(&str) -> Option<String>) -> Result<bool, ConfigError> {
    match env(name).as_deref().map(str::trim) {
        None | Some("") => Ok(false),
        Some("true" | "1" | "yes") => Ok(true),
        Some("false" | "0" | "no") => Ok(false),
        Some(other) => Err(ConfigError::Invalid {
            name: name.to_string(),
            expected: "true or false",
            value: other.to_string(),
        }),
    }
}

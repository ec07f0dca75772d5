//! The format the process logs in: text lines, or one JSON object per line
//! (`--log-format`, `log.format`). The binary's logger reads it for every
//! line; the agent sets it from its configuration at start and on reload.

use std::sync::atomic::{AtomicU8, Ordering::Relaxed};

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// `[TIME LEVEL TARGET] message`, for people.
    #[default]
    Text,
    /// `{"time", "level", "target", "message"}` on one line, for journald
    /// and log shippers.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("{other:?} is not text or json")),
        }
    }
}

impl std::fmt::Display for LogFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        })
    }
}

static CURRENT: AtomicU8 = AtomicU8::new(0);

/// Makes `format` the one every following line is written in.
pub fn set(format: LogFormat) {
    CURRENT.store(format as u8, Relaxed);
}

/// The format in force.
pub fn current() -> LogFormat {
    match CURRENT.load(Relaxed) {
        1 => LogFormat::Json,
        _ => LogFormat::Text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_print_and_others_are_refused() {
        for f in [LogFormat::Text, LogFormat::Json] {
            assert_eq!(f.to_string().parse::<LogFormat>(), Ok(f));
        }
        assert_eq!("JSON".parse::<LogFormat>().unwrap_err(), "\"JSON\" is not text or json");
    }

    #[test]
    fn the_format_in_force_is_the_last_one_set() {
        set(LogFormat::Json);
        assert_eq!(current(), LogFormat::Json);
        set(LogFormat::Text);
        assert_eq!(current(), LogFormat::Text);
    }
}

//! The process's logger: env_logger's filter (`RUST_LOG`, default `warn`)
//! on stderr, writing each line in the format in force
//! ([`flowctl_agent::log_format`]): env_logger's own text line, or one JSON
//! object per line with `time`, `level`, `target` and `message`, for
//! journald and log shippers.

use std::io::Write;

use flowctl_agent::log_format::{self, LogFormat};
use serde::Serialize;
use time::{macros::format_description, OffsetDateTime};

/// One log line as JSON.
#[derive(Serialize)]
struct JsonLine<'a> {
    /// RFC 3339, UTC, microseconds.
    time: &'a str,
    /// `ERROR`, `WARN`, `INFO`, `DEBUG` or `TRACE`.
    level: &'a str,
    /// The module that logged (`flowctl_agent::agent`).
    target: &'a str,
    /// The message, control characters escaped by JSON.
    message: &'a str,
}

/// The JSON object (no line break) for a record logged at `time`.
pub fn json_line(time: OffsetDateTime, level: log::Level, target: &str, message: &str) -> String {
    let stamp = time
        .to_offset(time::UtcOffset::UTC)
        .format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
        ))
        .unwrap_or_default();
    let line = JsonLine {
        time: &stamp,
        level: level.as_str(),
        target,
        message,
    };
    serde_json::to_string(&line).unwrap_or_default()
}

/// env_logger's text logger and a JSON one behind the same filter; each
/// line goes to the one of the format in force.
struct Switch {
    text: env_logger::Logger,
    json: env_logger::Logger,
}

impl log::Log for Switch {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        self.text.enabled(metadata)
    }

    fn log(&self, record: &log::Record<'_>) {
        match log_format::current() {
            LogFormat::Text => self.text.log(record),
            LogFormat::Json => self.json.log(record),
        }
    }

    fn flush(&self) {
        self.text.flush();
        self.json.flush();
    }
}

/// Installs the logger (text until [`log_format::set`] says otherwise).
pub fn init() {
    let env = || env_logger::Env::default().default_filter_or("warn");
    let text = env_logger::Builder::from_env(env()).build();
    let json = env_logger::Builder::from_env(env())
        .format(|buf, record| {
            let message = record.args().to_string();
            let line = json_line(OffsetDateTime::now_utc(), record.level(), record.target(), &message);
            writeln!(buf, "{line}")
        })
        .build();
    let max_level = text.filter();
    if log::set_boxed_logger(Box::new(Switch { text, json })).is_ok() {
        log::set_max_level(max_level);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_json_line_is_one_object_with_time_level_target_and_message() {
        let at = datetime!(2026-12-06 04:49:21.123_456_789 +01:00);
        let line = json_line(
            at,
            log::Level::Info,
            "flowctl_agent::agent",
            "agent running: \"eth0\"\nnext",
        );
        assert_eq!(
            line,
            r#"{"time":"2026-12-06T03:49:21.123456Z","level":"INFO","target":"flowctl_agent::agent","message":"agent running: \"eth0\"\nnext"}"#
        );
        assert!(!line.contains('\n'), "one line, whatever the message holds");
        let parsed: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(parsed["message"], "agent running: \"eth0\"\nnext");
    }

    #[test]
    fn levels_are_written_by_name() {
        let at = datetime!(2026-01-01 00:00:00 UTC);
        for (level, name) in [
            (log::Level::Error, "ERROR"),
            (log::Level::Warn, "WARN"),
            (log::Level::Debug, "DEBUG"),
        ] {
            let parsed: serde_json::Value = serde_json::from_str(&json_line(at, level, "t", "m")).unwrap();
            assert_eq!(parsed["level"], name);
            assert_eq!(parsed["time"], "2026-01-01T00:00:00.000000Z");
        }
    }
}

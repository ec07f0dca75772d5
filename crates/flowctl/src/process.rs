//! Process-wide behaviour of the binary: a panic (a bug) is one line on
//! stderr, and a closed stdout ends a printing command quietly.

use crate::cli::Command;

/// Reports panics as one line without a backtrace, unless `RUST_BACKTRACE`
/// asks for the standard report.
pub fn one_line_panics() {
    if std::env::var_os("RUST_BACKTRACE").is_some() {
        return;
    }
    std::panic::set_hook(Box::new(|info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("unknown cause");
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!(
            "flowctl: internal error{at}: {}; please report it",
            message.replace('\n', " ")
        );
    }));
}

/// For commands whose job is printing (`flowctl dump | head`), restores the
/// default SIGPIPE action: a closed stdout ends the process silently, as
/// with any Unix filter, instead of a "broken pipe" panic. Commands that
/// write to sockets (agent, ipfix send) keep SIGPIPE ignored.
pub fn quiet_broken_pipe(command: &Command) {
    if matches!(command, Command::Agent(_) | Command::Ipfix(_)) {
        return;
    }
    // SAFETY: setting a signal disposition to SIG_DFL installs no handler.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

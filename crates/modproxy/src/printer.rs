//! All user-facing output of the binary goes through here: results on
//! stdout, errors on stderr. Logs are not output; they go through `tracing`.

#![allow(clippy::print_stdout)]

use std::io::Write;

/// Prints one line of output for the user (stdout), flushed at once so a
/// script or a test reading our stdout sees it immediately.
pub fn line(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

/// Prints an error with its chain of causes (stderr).
pub fn error(err: &anyhow::Error) {
    let mut out = std::io::stderr().lock();
    let _ = writeln!(out, "modproxy: error: {}", message(err));
}

/// An error and its causes, `what: why: root cause`. Every error shows its
/// cause once (in its message or as its source), so nothing repeats.
pub fn message(err: &anyhow::Error) -> String {
    let parts: Vec<String> = err.chain().map(ToString::to_string).collect();
    parts.join(": ")
}

/// `1.5 MiB`, `320 B`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::message;

    #[test]
    fn an_error_is_shown_with_each_cause_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory");
        let err = anyhow::Error::new(io)
            .context("cannot read /etc/key.pem")
            .context("cannot start the server (check --tls-key)");
        assert_eq!(
            message(&err),
            "cannot start the server (check --tls-key): cannot read /etc/key.pem: No such file or directory"
        );
    }
}

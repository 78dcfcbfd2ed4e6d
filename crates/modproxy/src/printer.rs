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
    let _ = writeln!(out, "modproxy: error: {err}");
    let mut previous = err.to_string();
    for cause in err.chain().skip(1) {
        // Many messages already end with their cause; do not repeat it.
        let text = cause.to_string();
        if !previous.contains(&text) {
            let _ = writeln!(out, "  caused by: {text}");
        }
        previous = text;
    }
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

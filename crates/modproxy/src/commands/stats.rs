//! `modproxy stats`: the store's size, objects and module versions, its
//! least recently used version, and the hit ratio of the proxy running on
//! the configured listen address (if one answers there).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use modproxy_service::store::evict::Policy;

use crate::printer;
use crate::printer::human_bytes;
use modproxy_service::Settings;

pub fn run(settings: &Settings) -> anyhow::Result<ExitCode> {
    let now = SystemTime::now();
    // A scan with nothing to evict.
    let (report, store) = super::evict(settings, Policy::default())?;
    printer::line(&format!("store: {store}"));
    let budget = settings.max_size.map_or(String::new(), |m| {
        format!(" of {} (--max-size)", human_bytes(m))
    });
    printer::line(&format!(
        "size: {}{budget}",
        human_bytes(report.bytes_before)
    ));
    printer::line(&format!(
        "objects: {} ({} module versions)",
        report.objects_before,
        report.versions.len() - report.mirrors
    ));
    printer::line(&format!(
        "git mirrors: {} ({}, counted in the size)",
        report.mirrors,
        human_bytes(report.mirror_bytes)
    ));
    match report.versions.first() {
        Some(v) => printer::line(&format!(
            "oldest: {} (last used {}, {})",
            v.label,
            ago(now, v.last_used),
            human_bytes(v.bytes)
        )),
        None => printer::line("oldest: none (no module versions stored)"),
    }
    let url = format!("http://{}{}/metrics", settings.listen, settings.path_prefix);
    match hit_ratio(&settings.listen.to_string(), &settings.path_prefix) {
        Some((hits, total)) if total > 0.0 => printer::line(&format!(
            "hit ratio: {:.1}% ({hits} of {total} module file answers since the proxy at {url} started)",
            100.0 * hits / total
        )),
        Some(_) => printer::line(&format!("hit ratio: no answers yet ({url})")),
        None => printer::line(&format!("hit ratio: unknown (no proxy answered at {url})")),
    }
    Ok(ExitCode::SUCCESS)
}

/// (hits, all) module file answers from a running proxy's `/metrics`.
fn hit_ratio(addr: &str, prefix: &str) -> Option<(f64, f64)> {
    let timeout = Duration::from_secs(2);
    let mut stream = TcpStream::connect_timeout(&addr.parse().ok()?, timeout).ok()?;
    stream.set_read_timeout(Some(timeout)).ok()?;
    stream.set_write_timeout(Some(timeout)).ok()?;
    write!(
        stream,
        "GET {prefix}/metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    stream.take(4 << 20).read_to_string(&mut text).ok()?;
    if !text.starts_with("HTTP/1.1 200") && !text.starts_with("HTTP/1.0 200") {
        return None;
    }
    let (mut hits, mut total) = (0.0, 0.0);
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("modproxy_cache_results_total{status=\"") else {
            continue;
        };
        let Some((status, value)) = rest.split_once("\"} ") else {
            continue;
        };
        let Ok(n) = value.trim().parse::<f64>() else {
            continue;
        };
        if status != "BYPASS" {
            total += n;
        }
        if status == "HIT" {
            hits += n;
        }
    }
    Some((hits, total))
}

/// "3 days ago", "5 minutes ago".
pub fn ago(now: SystemTime, then: SystemTime) -> String {
    let secs = now.duration_since(then).unwrap_or_default().as_secs();
    let (n, unit) = match secs {
        0..=119 => (secs, "seconds"),
        120..=7199 => (secs / 60, "minutes"),
        7200..=172_799 => (secs / 3600, "hours"),
        _ => (secs / 86400, "days"),
    };
    format!("{n} {unit} ago")
}

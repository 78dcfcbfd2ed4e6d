//! `modproxy gc [--max-size SIZE] [--older-than DURATION] [--dry-run]`:
//! evict whole module versions, least recently used first. Safe while
//! `serve` runs on the same store: a file being sent stays readable to
//! its reader until the end.

use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::bail;
use modproxy_service::store::evict::Policy;

use crate::cli::GcArgs;
use crate::commands::stats::ago;
use crate::printer;
use crate::printer::human_bytes;
use modproxy_service::Settings;

pub fn run(args: &GcArgs, settings: &Settings) -> anyhow::Result<ExitCode> {
    if settings.max_size.is_none() && args.older_than.is_none() {
        bail!("nothing to do: give --max-size (or set max_size) and/or --older-than");
    }
    let policy = Policy {
        max_size: settings.max_size,
        older_than: args.older_than,
        dry_run: args.dry_run,
        ..Policy::default()
    };
    // A running server re-measures its own count on its next scan.
    let (report, _) = super::evict(settings, policy)?;
    let verb = if args.dry_run {
        "would evict"
    } else {
        "evicted"
    };
    let now = SystemTime::now();
    for v in &report.evicted {
        printer::line(&format!(
            "{verb} {} ({}, last used {})",
            v.label,
            human_bytes(v.bytes),
            ago(now, v.last_used)
        ));
    }
    let mirrors = report.evicted.iter().filter(|v| v.mirror.is_some()).count();
    printer::line(&format!(
        "{verb} {} module versions and {mirrors} git mirrors ({}); the store (and git mirrors) held {} in {} objects, now {}",
        report.evicted.len() - mirrors,
        human_bytes(report.bytes_evicted),
        human_bytes(report.bytes_before),
        report.objects_before,
        human_bytes(report.bytes_before - report.bytes_evicted),
    ));
    if !report.failed.is_empty() {
        for failure in &report.failed {
            printer::line(&format!("error: {failure}"));
        }
        bail!(
            "{} files could not be removed (see above); their versions are still stored",
            report.failed.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}

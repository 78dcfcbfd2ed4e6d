//! `modproxy gc [--max-size SIZE] [--older-than DURATION] [--dry-run]`:
//! evict whole module versions, least recently used first. Safe while
//! `serve` runs on the same store: a file being sent stays readable to
//! its reader until the end.

use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::{bail, Context};
use modproxy_service::store::evict::Policy;
use modproxy_service::store::DiskStore;

use crate::cli::{GcArgs, Sources};
use crate::commands::stats::ago;
use crate::printer::human_bytes;
use crate::{printer, settings};

pub fn run(args: &GcArgs, sources: &Sources) -> anyhow::Result<ExitCode> {
    let settings = settings::resolve(&args.store, sources)?.service;
    if settings.max_size.is_none() && args.older_than.is_none() {
        bail!("nothing to do: give --max-size (or set max_size) and/or --older-than");
    }
    let store = DiskStore::open(&settings.data_dir)
        .with_context(|| format!("cannot open the store in {}", settings.data_dir.display()))?;
    let policy = Policy {
        max_size: settings.max_size,
        older_than: args.older_than,
        dry_run: args.dry_run,
    };
    let report = store
        .evict(policy)
        .with_context(|| format!("cannot evict from {}", settings.data_dir.display()))?;
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
    printer::line(&format!(
        "{verb} {} module versions ({}); the store held {} in {} objects, now {}",
        report.evicted.len(),
        human_bytes(report.bytes_evicted),
        human_bytes(report.bytes_before),
        report.objects_before,
        human_bytes(report.bytes_before - report.bytes_evicted),
    ));
    Ok(ExitCode::SUCCESS)
}

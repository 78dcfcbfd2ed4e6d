//! `modproxy serve`: run the proxy until SIGINT or SIGTERM.

use std::process::ExitCode;

use anyhow::Context;
use modproxy_service::server::{Server, StartError};

use crate::settings::defs;
use crate::settings::Resolved;
use crate::{logging, printer};

/// Threads for blocking file I/O (store reads and writes, spool reads),
/// per core. Tokio's default (512 in all) let hundreds of clients of one
/// download each keep a thread busy with its own reads, scattering them
/// over the file and memory over the threads (bench/memory.sh: 75 MiB and
/// 30 s at 500 clients, against 42 MiB and 12 s with 16 threads: queued
/// readers stay together and share recent pieces).
const BLOCKING_THREADS_PER_CORE: usize = 8;

pub fn run(resolved: Resolved) -> anyhow::Result<ExitCode> {
    // Declared first, dropped last: the lines of the shutdown get out.
    let _flush = logging::init(resolved.log_format)?;
    let Resolved {
        service: settings,
        layers,
        ..
    } = resolved;
    let data_key = match layers.raw(&defs::DATA) {
        Some(raw) => raw.origin.to_string(),
        None => "the default data directory".to_string(),
    };
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads(BLOCKING_THREADS_PER_CORE * cores)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let server = Server::bind(&settings).await.map_err(|e| {
            // Where to look, by what failed; the error itself follows.
            let hint = match &e {
                StartError::Store(_) => format!(
                    "check the data directory, {data_key}, and {}",
                    layers.label(&defs::STORE_AT)
                ),
                StartError::Listen { .. } => {
                    format!("check the listen address, {}", layers.label(&defs::LISTEN))
                }
                StartError::Client(_) => "check the system's TLS certificates".to_string(),
                StartError::Tls(_) => format!(
                    "check {} and {}",
                    layers.label(&defs::TLS_CERT),
                    layers.label(&defs::TLS_KEY)
                ),
                StartError::Auth(_) => format!("check {}", layers.label(&defs::AUTH_FILE)),
                StartError::Lock(_) => format!("check {}", layers.label(&defs::LOCK)),
            };
            anyhow::Error::new(e).context(format!("cannot start the server ({hint})"))
        })?;
        let addr = server
            .local_addr()
            .context("cannot read the listening address")?;
        tracing::info!(
            %addr,
            data = %settings.data_dir.display(),
            upstream = %settings.upstream,
            "modproxy listening"
        );
        printer::line(&format!("export GOPROXY={}", settings.goproxy_url(addr)));
        server.run(shutdown_signal()).await?;
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Resolves on the first SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGTERM");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutdown signal received");
}

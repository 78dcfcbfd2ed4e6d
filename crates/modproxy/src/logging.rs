//! Log setup: `tracing` to stderr, as text or JSON lines.

use tracing_subscriber::EnvFilter;

use crate::settings::defs::LOG_FILTER_VAR;

/// The log line format (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("{other:?} is not a log format (use text or json)")),
        }
    }
}

/// Installs the global subscriber. The level filter comes from
/// `MODPROXY_LOG` (EnvFilter syntax), `info` by default.
pub fn init(format: LogFormat) -> anyhow::Result<()> {
    let filter = match std::env::var(LOG_FILTER_VAR) {
        // The filter's own error repeats its cause as its source: its
        // message is taken whole, not chained.
        Ok(spec) => EnvFilter::try_new(&spec)
            .map_err(|e| anyhow::anyhow!("{}: invalid log filter {spec:?}: {e}", LOG_FILTER_VAR))?,
        Err(_) => EnvFilter::new("info"),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(false).init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
    Ok(())
}

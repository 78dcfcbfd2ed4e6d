//! The TOML configuration file: the same keys as the flags, plus tables for
//! the finer cache and upstream bounds. Unknown keys are errors, so a typo
//! does not silently leave a default in place.
//!
//! ```toml
//! listen = "0.0.0.0:3000"
//! data = "/var/cache/modproxy"
//! sumdb = "sum.golang.org"
//! private = "*.corp.example.com"
//! upstream = "https://proxy.golang.org,direct"   # or the [upstream] table:
//!
//! [upstream]
//! list = "https://proxy.golang.org,direct"
//! connect_timeout = "3s"
//! headers_timeout = "10s"
//! stall_timeout = "30s"
//! fetch_deadline = "5m"
//! retries = 2
//! retry_base = "100ms"
//! breaker_threshold = 3
//! breaker_cooldown = "30s"
//! hedge_after = "2s"          # off unless set
//!
//! [cache]
//! fresh_for = "5m"
//! max_stale = "30d"
//! negative_ttl = "1m"
//! ```

use std::path::Path;

use modproxy_service::settings::read_settings_file;
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub data: Option<String>,
    /// The list (a string) or the `[upstream]` table: see [`FileConfig::upstream`].
    upstream: Option<toml::Value>,
    #[serde(skip)]
    upstream_parsed: Option<UpstreamValue>,
    pub private_upstream: Option<String>,
    pub sumdb: Option<String>,
    pub private: Option<String>,
    pub nosumdb: Option<String>,
    pub store: Option<String>,
    pub lock: Option<String>,
    pub insecure: Option<String>,
    pub allow_internal: Option<String>,
    pub git_timeout: Option<String>,
    pub cached_only: Option<bool>,
    pub max_size: Option<Scalar>,
    pub path_prefix: Option<String>,
    pub tls_cert: Option<String>,
    pub tls_key: Option<String>,
    pub auth_file: Option<String>,
    pub log_format: Option<String>,
    pub shutdown_grace: Option<String>,
    pub header_timeout: Option<String>,
    pub max_connections: Option<Scalar>,
    pub prefetch: Option<String>,
    #[serde(default)]
    pub cache: CacheTable,
}

/// `upstream` is either the list itself or a table with the list and bounds.
#[derive(Debug)]
pub enum UpstreamValue {
    List(String),
    Table(Box<UpstreamTable>),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamTable {
    pub list: Option<String>,
    pub connect_timeout: Option<String>,
    pub headers_timeout: Option<String>,
    pub stall_timeout: Option<String>,
    pub fetch_deadline: Option<String>,
    pub retries: Option<Scalar>,
    pub retry_base: Option<String>,
    pub breaker_threshold: Option<Scalar>,
    pub breaker_cooldown: Option<String>,
    pub hedge_after: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheTable {
    pub fresh_for: Option<String>,
    pub max_stale: Option<String>,
    pub negative_ttl: Option<String>,
}

/// A number, or a string (a size or duration with its unit).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    Bytes(u64),
    Text(String),
}

impl Scalar {
    pub fn as_text(&self) -> String {
        match self {
            Scalar::Bytes(n) => n.to_string(),
            Scalar::Text(s) => s.clone(),
        }
    }
}

impl FileConfig {
    pub fn load(path: &Path) -> anyhow::Result<FileConfig> {
        let text = read_settings_file(path).map_err(|e| {
            anyhow::anyhow!("cannot read configuration file {}: {e}", path.display())
        })?;
        let file_error = |e: &dyn std::fmt::Display| {
            anyhow::anyhow!(
                "configuration file {}: {}",
                path.display(),
                e.to_string().trim_end()
            )
        };
        let mut config: FileConfig = toml::from_str(&text).map_err(|e| file_error(&e))?;
        // Parsed here rather than by an untagged enum, so that an error
        // inside the table names its key.
        config.upstream_parsed = match config.upstream.take() {
            None => None,
            Some(toml::Value::String(list)) => Some(UpstreamValue::List(list)),
            Some(toml::Value::Table(table)) => {
                let table: UpstreamTable = toml::Value::Table(table)
                    .try_into()
                    .map_err(|e| file_error(&format!("in the [upstream] table: {e}")))?;
                Some(UpstreamValue::Table(Box::new(table)))
            }
            Some(other) => {
                let e = format!(
                    "`upstream` must be a string (the list) or a table, not a {}",
                    other.type_str()
                );
                return Err(file_error(&e));
            }
        };
        Ok(config)
    }

    pub fn upstream_table(&self) -> Option<&UpstreamTable> {
        match &self.upstream_parsed {
            Some(UpstreamValue::Table(t)) => Some(t),
            _ => None,
        }
    }

    pub fn upstream_list(&self) -> Option<String> {
        match &self.upstream_parsed {
            Some(UpstreamValue::List(s)) => Some(s.clone()),
            Some(UpstreamValue::Table(t)) => t.list.clone(),
            None => None,
        }
    }
}

//! The raw values of one invocation's settings, each with where it came
//! from: a flag or `MODPROXY_*` variable (clap reads both) over a key of
//! the TOML file over the declared default. Nothing is parsed here beyond
//! the file's syntax; [`super::resolve`] parses each value and names its
//! [`Origin`] when it is wrong.
//!
//! The file holds the keys of [`defs::ALL`] by name, the upstream bounds
//! and the upstream list in an `[upstream]` table, the cache timings in a
//! `[cache]` table. An unknown key is an error (a typo must not leave a
//! default in place); a known key a subcommand does not use is ignored.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use anyhow::{anyhow, bail};
use clap::parser::ValueSource;
use clap::ArgMatches;
use modproxy_service::settings::read_settings_file;

use super::defs::{self, Def, Sub};

/// Where a value came from, as a message names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Flag(String),
    Var(String),
    File { key: String, path: String },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Flag(flag) => write!(f, "--{flag}"),
            Origin::Var(var) => f.write_str(var),
            Origin::File { key, path } => write!(f, "`{key}` in {path}"),
        }
    }
}

/// A value as the user wrote it.
#[derive(Debug, Clone)]
pub struct Raw {
    pub value: String,
    pub origin: Origin,
}

/// The settings one subcommand reads, as given.
#[derive(Debug)]
pub struct Layers {
    pub sub: Sub,
    values: HashMap<&'static str, Raw>,
}

impl Layers {
    /// Flags and variables from `matches` (the subcommand's), then the
    /// keys of the file named by `--config` for what they left unset.
    pub fn read(sub: Sub, matches: &ArgMatches) -> anyhow::Result<Layers> {
        let mut layers = Layers {
            sub,
            values: HashMap::new(),
        };
        for def in defs::ALL
            .iter()
            .filter(|d| d.used_by(sub) && d.on_command_line())
        {
            let Some(value) = matches.get_one::<String>(def.name) else {
                continue;
            };
            let origin = match matches.value_source(def.name) {
                Some(ValueSource::EnvVariable) => Origin::Var(def.var()),
                _ => Origin::Flag(def.flag()),
            };
            layers.values.insert(
                def.name,
                Raw {
                    value: value.clone(),
                    origin,
                },
            );
        }
        if let Some(config) = layers.values.get(defs::CONFIG.name).cloned() {
            let path = Path::new(&config.value);
            let text = read_settings_file(path).map_err(|e| {
                anyhow!(
                    "while reading {}: cannot read configuration file {}: {e}",
                    config.origin,
                    path.display()
                )
            })?;
            let values = file_values(&text, &config.value)
                .map_err(|e| anyhow!("while reading {}: {e}", config.origin))?;
            for (def, raw) in values {
                if def.used_by(sub) {
                    layers.values.entry(def.name).or_insert(raw);
                }
            }
        }
        Ok(layers)
    }

    /// The value given for `def`, if any.
    pub fn raw(&self, def: &Def) -> Option<&Raw> {
        self.values.get(def.name)
    }

    /// Where `def` came from, or its flag when it was not given (for
    /// messages like "check --tls-cert").
    pub fn label(&self, def: &Def) -> String {
        self.raw(def)
            .map_or_else(|| format!("--{}", def.flag()), |r| r.origin.to_string())
    }

    /// The value of `def` parsed by `parse`, or `None` when it was not
    /// given and has no [`defs::Default::Value`].
    pub fn get<T>(
        &self,
        def: &Def,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> anyhow::Result<Option<T>> {
        match (self.raw(def), def.default) {
            (Some(raw), _) => parse(&raw.value)
                .map(Some)
                .map_err(|e| anyhow!("invalid {}: {e}", raw.origin)),
            (None, defs::Default::Value(text)) => match parse(text) {
                Ok(v) => Ok(Some(v)),
                Err(e) => panic!("the default of {} does not parse: {e}", def.name),
            },
            (None, _) => Ok(None),
        }
    }

    /// [`Layers::get`] for a setting with a default value.
    pub fn value<T>(
        &self,
        def: &Def,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> anyhow::Result<T> {
        assert!(
            matches!(def.default, defs::Default::Value(_)),
            "{} has no default value",
            def.name
        );
        Ok(self.get(def, parse)?.expect("a default value"))
    }
}

/// The settings in a configuration file, by definition. `path` names the
/// file in messages.
fn file_values(text: &str, path: &str) -> anyhow::Result<Vec<(&'static Def, Raw)>> {
    let table: toml::Table = toml::from_str(text)
        .map_err(|e| anyhow!("configuration file {path}: {}", e.to_string().trim_end()))?;
    let mut out = Vec::new();
    for (key, value) in &table {
        let inner = match (key.as_str(), value) {
            ("upstream" | "cache", toml::Value::Table(inner)) => Some(inner),
            ("upstream", toml::Value::String(_)) => None,
            ("upstream" | "cache", other) => bail!(
                "configuration file {path}: `{key}` must be {}, not {}",
                if key == "upstream" {
                    "a string (the list) or a table"
                } else {
                    "a table"
                },
                other.type_str()
            ),
            _ => None,
        };
        match inner {
            Some(inner) => {
                for (name, value) in inner {
                    // `[upstream] list` is the list itself.
                    let (def, shown) = if key == "upstream" && name == "list" {
                        (Some(&defs::UPSTREAM), "upstream.list".to_string())
                    } else {
                        let full = format!("{key}.{name}");
                        (find(&full), full)
                    };
                    let Some(def) = def else {
                        bail!(
                            "configuration file {path}: unknown key `{name}` in the [{key}] table (known: {})",
                            known(Some(key))
                        );
                    };
                    out.push((def, raw(value, shown, path)?));
                }
            }
            None => {
                let Some(def) = find(key) else {
                    bail!(
                        "configuration file {path}: unknown key `{key}` (known: {})",
                        known(None)
                    );
                };
                out.push((def, raw(value, key.clone(), path)?));
            }
        }
    }
    Ok(out)
}

/// The definition whose file key is `key`.
fn find(key: &str) -> Option<&'static Def> {
    defs::ALL
        .iter()
        .copied()
        .find(|d| d.file_key().as_deref() == Some(key))
}

/// The keys a table (or the top level) may hold, for a typo's message.
fn known(table: Option<&str>) -> String {
    let mut keys: Vec<String> = defs::ALL
        .iter()
        .filter(|d| d.file_key().is_some() && d.table == table)
        .map(|d| d.name.to_string())
        .collect();
    match table {
        None => keys.extend(["[upstream]".to_string(), "[cache]".to_string()]),
        Some("upstream") => keys.insert(0, "list".to_string()),
        Some(_) => {}
    }
    keys.join(", ")
}

/// A file value as text: strings as they are, numbers and booleans spelled
/// out (the setting's parser judges them like a flag's value).
fn raw(value: &toml::Value, key: String, path: &str) -> anyhow::Result<Raw> {
    let text = match value {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(n) => n.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        other => bail!(
            "configuration file {path}: `{key}` must be a string, a whole number or a boolean, not {}",
            other.type_str()
        ),
    };
    Ok(Raw {
        value: text,
        origin: Origin::File {
            key,
            path: path.to_string(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_keys_map_to_settings() {
        let values = file_values(
            "listen = \"0.0.0.0:1\"\nmax_size = 1024\ncached_only = true\n[upstream]\nlist = \"off\"\nretries = 5\n[cache]\nfresh_for = \"1m\"\n",
            "m.toml",
        )
        .unwrap();
        let get = |name: &str| {
            values
                .iter()
                .find(|(d, _)| d.name == name)
                .map(|(_, r)| (r.value.clone(), r.origin.to_string()))
                .unwrap()
        };
        assert_eq!(get("listen").0, "0.0.0.0:1");
        assert_eq!(get("max_size").0, "1024");
        assert_eq!(get("cached_only").0, "true");
        assert_eq!(
            get("upstream"),
            ("off".into(), "`upstream.list` in m.toml".into())
        );
        assert_eq!(get("retries").1, "`upstream.retries` in m.toml");
        assert_eq!(get("fresh_for").1, "`cache.fresh_for` in m.toml");
    }

    #[test]
    fn unknown_and_misplaced_keys_are_errors() {
        for (text, want) in [
            ("upstrem = \"x\"", "unknown key `upstrem`"),
            (
                "[upstream]\nconect_timeout = \"1s\"",
                "`conect_timeout` in the [upstream] table",
            ),
            ("connect_timeout = \"1s\"", "unknown key `connect_timeout`"),
            ("config = \"x.toml\"", "unknown key `config`"),
            (
                "[cache]\nretries = 1",
                "unknown key `retries` in the [cache] table",
            ),
            ("listen = [1]", "`listen` must be a string"),
            ("upstream = [1]", "a string (the list) or a table"),
            ("cache = \"5m\"", "`cache` must be a table"),
        ] {
            let err = file_values(text, "m.toml").unwrap_err().to_string();
            assert!(
                err.contains(want) && err.contains("m.toml"),
                "{text}: {err}"
            );
        }
    }
}

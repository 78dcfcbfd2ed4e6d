//! Go module formats for a Go module proxy: module paths and their escaped
//! forms, semantic versions and pseudo-versions, `go.mod` module lines, and
//! the `GOPROXY` / `GOPRIVATE` / `GONOSUMDB` / `GOSUMDB` setting syntaxes,
//! and module zips (validation and `h1:` hashes).
//!
//! Everything here is a pure port of the rules in Go's `golang.org/x/mod`
//! and `cmd/go/internal/modfetch`: no I/O of its own (module zips are read
//! from a caller's `Read + Seek`), no async, no global state.

mod goquote;
mod unicode_tables;

pub mod authority;
pub mod gomod;
pub mod goproxy;
pub mod graph;
pub mod modfile;
pub mod modzip;
pub mod path;
pub mod pattern;
pub mod pseudo;
pub mod semver;
pub mod sumdb_setting;
pub mod vcs;

pub use gomod::module_path;
pub use goproxy::{ProxyEntry, ProxyList, ProxyListError, ProxySpec};
pub use modzip::{check_zip, hash1, hash_gomod, ZipError, ZipReport};
pub use path::{escape_version, unescape_version, ModulePath, PathError};
pub use pattern::{PathPatterns, PatternError};
pub use pseudo::{is_pseudo_version, parse_pseudo_version, PseudoError, PseudoVersion};
pub use sumdb_setting::{SumDbConfig, SumDbSetting, SumDbSettingError};

//! The modproxy service: everything between a socket and the Go module world.
//!
//! A request flows `server` → `cache` → (`store` | `upstream`):
//!
//! - [`server`] speaks HTTP: it parses the GOPROXY protocol path into a
//!   [`request::ModuleRequest`], asks the cache, and turns the answer (or the
//!   error) into a response with `X-Cache-Status` and `X-Request-Id`.
//! - [`cache`] decides HIT / MISS / STALE / UPDATING, coalesces concurrent
//!   misses into one upstream fetch and streams it to every waiter.
//! - [`store`] keeps published objects (a GOPROXY tree on disk).
//! - [`upstream`] fetches from the GOPROXY-style upstream chain.
//! - [`replica_lock`] lets replicas sharing a store fetch a missing file
//!   once between them (locks in Redis).

pub mod audit;
pub mod cache;
pub mod error;
pub mod metrics;
pub mod replica_lock;
pub mod request;
pub mod server;
pub mod settings;
pub mod store;
pub mod sumdb;
pub mod sync;
pub mod upstream;
pub mod warm;

pub use error::ServeError;
pub use settings::Settings;

//! The modproxy service: everything between a socket and the Go module world.
//!
//! # Architecture map
//!
//! Three crates: `modproxy-module` (Go's formats and rules, pure: paths,
//! versions, go.mod, zips, GOPROXY/GOSUMDB settings, import-path
//! resolution), this service, and `modproxy` (the command line: settings
//! declared once, subcommands that call in here).
//!
//! A request flows `server` → `cache` → (`store` | `upstream`, checked
//! by `sumdb`):
//!
//! ```text
//!  client ─► server ─► handler: request id, auth, route (request.rs)
//!                         │
//!                         ├─► server::sumdb: /sumdb/… (checksum database proxy)
//!                         ▼
//!                       cache: HIT / MISS / STALE / UPDATING
//!                         │ memory tier (store::memory), then the store
//!                         │ miss: one flight per key (cache::flight),
//!                         │       other replicas waited for (replica_lock)
//!                         ▼
//!                       upstream (the Upstream trait) ─► proxies over HTTP
//!                         │                              (upstream::proxy)
//!                         │                           ─► git (upstream::direct)
//!                         ▼
//!                       cache::ingest: checked against sumdb and the zip
//!                         │ rules, then published to the store (disk or S3)
//!                         ▼
//!                       answer streamed to every waiter as it arrives
//! ```
//!
//! Who owns what:
//!
//! - [`server`]: HTTP/1.1 and HTTP/2 connections and their limits
//!   (`conns`; plain ones each kept by one connection thread, `threads`),
//!   TLS, client tokens (`auth`), the request pipeline
//!   (`handler`), response bodies (`body`; stored files through
//!   `sendfile` on plain HTTP/1 (`sendfile`), else in pieces within one
//!   memory budget (`pieces`)), the dashboard, `/metrics`, health.
//! - [`request`]: protocol paths parsed and validated into a
//!   [`request::ModuleRequest`]; nothing unvalidated reaches the cache.
//! - [`cache`]: what to answer from where; coalesced fetches
//!   (`cache::flight`: the states of a fetch, the spool file waiters read,
//!   the relay when the spool fails), the zip download as a sink state
//!   machine (`cache::zip`), ingest checks (`cache::ingest`), negative
//!   cache, prefetch. It sees upstreams only through
//!   [`upstream::Upstream`], so its unit tests run on an in-process fake.
//! - [`store`]: published files: the disk GOPROXY tree or an S3 bucket,
//!   the memory tier and the budget of objects read whole (`whole`),
//!   usage counts, eviction (`evict`, and the running
//!   budget in `budget`), the disk store's writer threads (`writer`:
//!   writes deferred while a burst of them lasts).
//! - [`upstream`]: the GOPROXY-style chain (fall-through, breakers,
//!   hedging, retries), the address policy for what public module paths
//!   may reach, and `direct` (import-path resolution, shallow git
//!   mirrors, zips from `git archive`).
//! - [`sumdb`]: the checksum database client: signed tree heads, tiles,
//!   record lookups, all verified before use.
//! - [`replica_lock`]: cross-replica fetch locks in Redis.
//! - [`audit`] (`modproxy verify`) and [`warm`] (`modproxy warm`): the
//!   offline jobs.
//! - [`error`]: what each failure is ([`error::ErrorKind`]: retries, HTTP
//!   statuses and fall-through decide on it) and how it is shown.
//! - [`metrics`], [`settings`] (the validated settings; declared and
//!   parsed in the binary), [`sync`] (lock and task helpers), [`nowait`]
//!   (file opens and reads done on a runtime thread when the kernel has
//!   them in memory).

pub mod audit;
pub mod cache;
pub mod error;
pub mod metrics;
pub mod nowait;
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

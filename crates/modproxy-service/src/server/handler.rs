//! The request pipeline, in a fixed order: request id → method → path
//! prefix → route → cache (or checksum DB) → headers → log.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use hyper::header::{
    HeaderName, HeaderValue, AUTHORIZATION, CONTENT_LENGTH, CONTENT_SECURITY_POLICY, CONTENT_TYPE,
    LOCATION, WARNING, WWW_AUTHENTICATE, X_CONTENT_TYPE_OPTIONS,
};
use hyper::{Method, Request, Response, StatusCode};

use super::auth::{self, sumdb_module, Auth, Denied};
use super::body::ResponseBody;
use super::dashboard::{self, Activity, PAGE};
use super::pieces::Pieces;
use super::sumdb::SumDbProxy;
use super::StartError;
use crate::cache::{Cache, CacheStatus};
use crate::error::{chain, ServeError};
use crate::metrics::{endpoint_of, Metrics};
use crate::request::{percent_decode, Endpoint, ModuleRequest, Route};
use crate::settings::Settings;
use crate::store::Store;
use crate::sumdb::SumDb;
use crate::upstream::Upstreams;
use modproxy_module::sumdb_setting::SumDbSetting;

const X_CACHE_STATUS: HeaderName = HeaderName::from_static("x-cache-status");
const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Everything a request needs, shared by all connections.
pub struct Handler {
    pub(super) cache: Arc<Cache>,
    pub(super) sumdb: SumDbProxy,
    pub(super) metrics: Arc<Metrics>,
    pub(super) path_prefix: String,
    pub(super) request_ids: RequestIds,
    /// Clients allowed in; `None`: everyone.
    pub(super) auth: Option<Auth>,
    /// For `/metrics`.
    pub(super) upstreams: Arc<Upstreams>,
    pub(super) store: Arc<dyn Store>,
    /// `--max-size`, shown against the store's size.
    pub(super) max_size: Option<u64>,
    /// What the dashboard lists.
    pub(super) activity: Activity,
    /// One store search at a time.
    pub(super) searches: tokio::sync::Semaphore,
    /// The memory budget of stored files' pieces being sent.
    pub(super) pieces: Pieces,
    /// When the last readiness probe succeeded.
    pub(super) ready: tokio::sync::Mutex<Option<Instant>>,
}

/// What the pipeline produced before headers are added.
pub(super) struct Outcome {
    pub status: StatusCode,
    pub cache: CacheStatus,
    pub content_type: &'static str,
    pub length: Option<u64>,
    pub body: ResponseBody,
    /// Send `WWW-Authenticate` (a 401).
    pub challenge: bool,
    /// Send `Location` (a redirect).
    pub location: Option<String>,
}

impl Outcome {
    /// A plain-text answer that is not a module file.
    pub(super) fn text(status: StatusCode, text: String) -> Outcome {
        Outcome {
            status,
            cache: CacheStatus::Bypass,
            content_type: "text/plain; charset=utf-8",
            length: Some(text.len() as u64),
            body: ResponseBody::text(text),
            challenge: false,
            location: None,
        }
    }

    /// A permanent redirect to `to`.
    pub(super) fn redirect(to: String) -> Outcome {
        let mut o = Outcome::text(StatusCode::PERMANENT_REDIRECT, format!("see {to}\n"));
        o.location = Some(to);
        o
    }

    /// 401 (with a basic-auth challenge, which makes the go command use
    /// its `.netrc`/GOAUTH credentials) or 403.
    pub(super) fn denied(denied: Denied) -> Outcome {
        match denied {
            Denied::Unauthenticated => {
                let mut o = Outcome::text(
                    StatusCode::UNAUTHORIZED,
                    "this proxy needs credentials: a bearer token, or NAME:SECRET from its tokens file (e.g. GOPROXY=https://NAME:SECRET@host)\n".into(),
                );
                o.challenge = true;
                o
            }
            Denied::Forbidden { client, module } => Outcome::text(
                StatusCode::FORBIDDEN,
                format!(
                    "{client} may not fetch {module}: outside the module patterns of its token\n"
                ),
            ),
            Denied::NotOperator { client } => Outcome::text(
                StatusCode::FORBIDDEN,
                format!(
                    "{client} may not see the dashboard or metrics: its token is limited to module patterns (use one without patterns)\n"
                ),
            ),
        }
    }

    /// The answer for `e`: its kind's status, and its message with all
    /// its causes.
    pub(super) fn error(cache: CacheStatus, e: &ServeError) -> Outcome {
        let text = format!("{}\n", chain(e));
        let status = e.kind().status();
        Outcome {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            cache,
            content_type: "text/plain; charset=utf-8",
            length: Some(text.len() as u64),
            body: ResponseBody::text(text),
            challenge: false,
            location: None,
        }
    }
}

impl Handler {
    /// Builds the whole service from settings: store, upstreams, cache.
    pub fn new(settings: &Settings) -> Result<Handler, StartError> {
        let store = crate::store::open(settings)?;
        let upstreams = Arc::new(Upstreams::new(settings)?);
        let sumdb = match &settings.sumdb {
            SumDbSetting::Off => None,
            SumDbSetting::Db(config) => Some(Arc::new(SumDb::new(
                config,
                Arc::clone(&store),
                Arc::clone(&upstreams),
                settings.private.clone(),
                settings.nosumdb.clone(),
            ))),
        };
        let metrics = Arc::new(Metrics::default());
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        metrics
            .started
            .store(now.map_or(0, |d| d.as_secs()), Ordering::Relaxed);
        let cache = Cache::new(
            Arc::clone(&store),
            Arc::<Upstreams>::clone(&upstreams),
            sumdb.clone(),
            Arc::clone(&metrics),
            crate::cache::CacheConfig {
                policy: settings.cache,
                cached_only: settings.cached_only,
                prefetch: settings.prefetch,
                locks: settings
                    .lock
                    .as_deref()
                    .map(crate::replica_lock::FetchLocks::new)
                    .transpose()
                    .map(|l| l.map(Arc::new))
                    .map_err(StartError::Lock)?,
            },
        );
        if let Some(every) = store.remeasure_every() {
            tokio::spawn(crate::store::budget::remeasure(Arc::clone(&store), every));
        }
        if let Some(max) = settings.max_size {
            tokio::spawn(crate::store::budget::keep_under_budget(
                Arc::clone(&store),
                settings.data_dir.join(".vcs"),
                max,
                Arc::clone(&metrics),
            ));
        }
        Ok(Handler {
            cache,
            sumdb: SumDbProxy::new(sumdb),
            metrics,
            path_prefix: settings.path_prefix.clone(),
            request_ids: RequestIds::new(),
            upstreams,
            store,
            max_size: settings.max_size,
            activity: dashboard::Activity::default(),
            searches: tokio::sync::Semaphore::new(1),
            pieces: Pieces::new(settings.body_buffers),
            ready: tokio::sync::Mutex::new(None),
            auth: settings
                .auth_file
                .as_deref()
                .map(auth::Auth::load)
                .transpose()
                .map_err(StartError::Auth)?,
        })
    }
}

impl Handler {
    pub async fn handle<B>(&self, req: Request<B>) -> Response<ResponseBody> {
        let started = Instant::now();
        let id = self.request_ids.next();
        let method = req.method().clone();
        let path = req.uri().path();
        let query = req.uri().query().unwrap_or("");
        let outcome = self
            .route(&method, path, query, req.headers().get(AUTHORIZATION))
            .await;

        let status = outcome.status;
        let outcome_challenge = outcome.challenge;
        let location = outcome.location.clone();
        let endpoint = endpoint_of(path.strip_prefix(self.path_prefix.as_str()).unwrap_or(path));
        let cache_label = (outcome.cache != CacheStatus::Bypass).then(|| outcome.cache.as_str());
        // Bytes served: bodies sent, not HEAD answers' announced lengths.
        let sent = outcome.length.filter(|_| method != Method::HEAD);
        self.metrics
            .request(endpoint, status.as_u16(), cache_label, sent);
        if outcome.cache == CacheStatus::Hit {
            self.metrics.hit(started.elapsed());
        }
        let cache = outcome.cache.as_str();
        tracing::info!(
            id = %id,
            method = %method,
            path = %path,
            status = status.as_u16(),
            cache,
            bytes = outcome.length,
            ms = started.elapsed().as_millis() as u64,
            "request"
        );
        let body = if method == Method::HEAD {
            ResponseBody::empty()
        } else {
            outcome.body
        };
        let mut response = Response::new(body);
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(outcome.content_type));
        if let Some(n) = outcome.length {
            headers.insert(CONTENT_LENGTH, HeaderValue::from(n));
        }
        headers.insert(X_CACHE_STATUS, HeaderValue::from_static(cache));
        if outcome.cache == CacheStatus::Stale {
            headers.insert(
                WARNING,
                HeaderValue::from_static("110 modproxy \"Response is Stale\""),
            );
        }
        if outcome_challenge {
            headers.insert(
                WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"modproxy\""),
            );
        }
        if let Ok(v) = HeaderValue::from_str(&id) {
            headers.insert(X_REQUEST_ID, v);
        }
        headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        if outcome.content_type.starts_with("text/html") {
            // The dashboard is one self-contained page: nothing from elsewhere.
            headers.insert(
                CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(
                    "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'",
                ),
            );
        }
        if let Some(v) = location.and_then(|l| HeaderValue::from_str(&l).ok()) {
            headers.insert(LOCATION, v);
        }
        response
    }

    async fn route(
        &self,
        method: &Method,
        path: &str,
        query: &str,
        authorization: Option<&HeaderValue>,
    ) -> Outcome {
        if method != Method::GET && method != Method::HEAD {
            return Outcome::error(CacheStatus::Bypass, &ServeError::MethodNotAllowed);
        }
        // Health checks answer with and without the path prefix.
        if let Some(outcome) = self.health(path).await {
            return outcome;
        }
        let under_prefix = path
            .strip_prefix(self.path_prefix.as_str())
            .filter(|rest| rest.is_empty() || rest.starts_with('/'));
        let Some(rest) = under_prefix else {
            let e = ServeError::NotFound(format!(
                "not found: this proxy serves under {}/",
                self.path_prefix
            ));
            return Outcome::error(CacheStatus::Bypass, &e);
        };
        if let Some(outcome) = self.health(rest).await {
            return outcome;
        }
        // Everything past the health checks needs a client, when clients
        // are configured; module files also need one allowed that module.
        let client = match &self.auth {
            None => None,
            Some(auth) => match auth.identify(authorization) {
                Ok(client) => Some(client),
                Err(denied) => return Outcome::denied(denied),
            },
        };
        let allowed = |module: &str| match client {
            Some(c) if !c.allows(module) => Err(Denied::Forbidden {
                client: c.name.clone(),
                module: module.to_string(),
            }),
            _ => Ok(()),
        };
        if matches!(rest, "" | "/" | "/metrics") || rest.starts_with("/-/") {
            // What the proxy holds and does is for clients that may fetch
            // everything: a token limited to some modules sees only those.
            if let Some(c) = client.filter(|c| !c.is_unrestricted()) {
                return Outcome::denied(Denied::NotOperator {
                    client: c.name.clone(),
                });
            }
            return self.operator_page(rest, query).await;
        }
        let rest = rest.strip_prefix('/').unwrap_or(rest);
        if let Some(outcome) = self.hot_hit(rest, &allowed) {
            return outcome;
        }
        match Route::parse(rest) {
            Err(e) => Outcome::error(CacheStatus::Bypass, &e.into()),
            Ok(Route::SumDb(rest)) => {
                if let Err(denied) = sumdb_module(&rest).map_or(Ok(()), |m| allowed(&m)) {
                    return Outcome::denied(denied);
                }
                self.sumdb.handle(&rest).await
            }
            Ok(Route::Module {
                request,
                cached_only,
                key,
            }) => {
                if let Err(denied) = allowed(request.module.as_str()) {
                    return Outcome::denied(denied);
                }
                self.module(&request, key, cached_only).await
            }
        }
    }

    /// A file the in-memory tier holds, answered without parsing its path
    /// (parsing costs more than the rest of such a hit: BENCHMARKS.md):
    /// the path is the key it was kept under, from a request that parsed.
    /// Everything else is as [`Handler::module`] does it. `None`: the
    /// full way.
    fn hot_hit(&self, path: &str, allowed: &dyn Fn(&str) -> Result<(), Denied>) -> Option<Outcome> {
        let content_type = Endpoint::immutable_content_type(path)?;
        // The module path as client rules and the dashboard name it: the
        // escaped one, unless that escapes capitals.
        let (module, _) = path.split_once("/@v/")?;
        if module.contains('!') {
            return None;
        }
        let bytes = self.cache.hot_peek(path)?;
        if let Err(denied) = allowed(module) {
            return Some(Outcome::denied(denied));
        }
        self.activity.requested(module);
        Some(self.answered(self.cache.hot_answer(path, bytes), content_type))
    }

    async fn module(&self, request: &ModuleRequest, key: String, cached_only: bool) -> Outcome {
        self.activity.requested(request.module.as_str());
        match self.cache.get(request, key, cached_only).await {
            Ok(answer) => self.answered(answer, request.endpoint.content_type()),
            Err((cache, e)) => {
                if !e.kind().is_not_found() && !matches!(request.endpoint, Endpoint::Query(_)) {
                    let message = chain(&e).to_string();
                    tracing::warn!(%request, error = %message, "answering with an error");
                    let first = message.lines().next().unwrap_or("").to_string();
                    let time = humantime_now();
                    self.activity.failed(format!("{time} {request}: {first}"));
                }
                Outcome::error(cache, &e)
            }
        }
    }
}

impl Handler {
    /// A module file's answer.
    fn answered(&self, answer: crate::cache::Answer, content_type: &'static str) -> Outcome {
        Outcome {
            status: StatusCode::OK,
            cache: answer.status,
            content_type,
            length: answer.length,
            body: ResponseBody::from_answer(answer.body, answer.length, &self.pieces),
            challenge: false,
            location: None,
        }
    }

    /// The dashboard, its JSON endpoints and `/metrics`.
    async fn operator_page(&self, rest: &str, query: &str) -> Outcome {
        match rest {
            // The page's links are relative: it lives at `PREFIX/`.
            "" => Outcome::redirect(format!("{}/", self.path_prefix)),
            "/" => {
                let mut page = Outcome::text(StatusCode::OK, PAGE.to_string());
                page.content_type = "text/html; charset=utf-8";
                page
            }
            "/metrics" => {
                let writable = self.readiness().await.is_ok();
                let text = self.metrics.render(
                    &self.upstreams.stats(),
                    self.store.usage(),
                    self.max_size,
                    Some(writable),
                );
                let mut o = Outcome::text(StatusCode::OK, text);
                o.content_type = "text/plain; version=0.0.4; charset=utf-8";
                o
            }
            "/-/api/activity" => json(self.activity.json()),
            "/-/api/search" => {
                let q = query
                    .split('&')
                    .find_map(|kv| kv.strip_prefix("q="))
                    .and_then(|q| percent_decode(&q.replace('+', " ")))
                    .unwrap_or_default();
                // A search walks the store: one at a time, the others are
                // told to retry rather than queue up walks.
                let Ok(_walking) = self.searches.try_acquire() else {
                    return Outcome::text(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "a store search is running; retry shortly\n".into(),
                    );
                };
                let found = self.store.search(&q, 50).await;
                json(serde_json::Value::from(found).to_string())
            }
            _ => Outcome::error(
                CacheStatus::Bypass,
                &ServeError::NotFound(format!("not found: {rest}")),
            ),
        }
    }

    /// `/healthz`: the process answers. `/readyz`: the configuration was
    /// valid (the server would not have started otherwise) and the store
    /// takes writes now. `None` for any other path.
    async fn health(&self, path: &str) -> Option<Outcome> {
        match path {
            "/healthz" => Some(Outcome::text(StatusCode::OK, "ok\n".into())),
            "/readyz" => Some(match self.readiness().await {
                Ok(()) => Outcome::text(StatusCode::OK, "ready\n".into()),
                Err(e) => {
                    Outcome::text(StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {e}\n"))
                }
            }),
            _ => None,
        }
    }

    /// Whether the store takes writes. A success is reused for
    /// [`READY_FOR`] (`/readyz` is open to anyone, and a probe is an
    /// fsync); a failure is probed again at once, so recovery shows.
    async fn readiness(&self) -> Result<(), String> {
        let mut last_ok = self.ready.lock().await;
        if last_ok.is_some_and(|at| at.elapsed() < READY_FOR) {
            return Ok(());
        }
        let probe = tokio::time::timeout(READY_WITHIN, self.cache.check_store()).await;
        let result = match probe {
            Ok(result) => result.map_err(|e| chain(&e).to_string()),
            Err(_) => Err(format!(
                "the store took more than {}s to take a write",
                READY_WITHIN.as_secs()
            )),
        };
        *last_ok = result.is_ok().then(Instant::now);
        result
    }
}

/// How long a readiness probe's result is reused.
const READY_FOR: std::time::Duration = std::time::Duration::from_secs(1);
/// A store that takes longer than this for a probe is not ready.
const READY_WITHIN: std::time::Duration = std::time::Duration::from_secs(5);

/// Request ids: a per-process random prefix and a counter.
pub(super) struct RequestIds {
    prefix: u32,
    counter: AtomicU64,
}

impl RequestIds {
    pub(super) fn new() -> RequestIds {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos() ^ (d.as_secs() as u32))
            .unwrap_or(0);
        RequestIds {
            prefix: nanos ^ std::process::id().rotate_left(16),
            counter: AtomicU64::new(1),
        }
    }

    /// `PREFIX-N`: the prefix in 8 hex digits, the counter in at least 6
    /// decimal ones (built by hand: this runs for every request).
    fn next(&self) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let mut digits = [b'0'; 20];
        let (mut rest, mut start) = (n, digits.len());
        while rest > 0 || digits.len() - start < 6 {
            start -= 1;
            digits[start] = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
        let mut id = String::with_capacity(9 + digits.len() - start);
        for shift in (0..8).rev() {
            let nibble = (self.prefix >> (shift * 4)) & 0xf;
            id.push(char::from_digit(nibble, 16).unwrap_or('0'));
        }
        id.push('-');
        id.extend(digits[start..].iter().map(|&d| char::from(d)));
        id
    }
}

/// A JSON answer.
fn json(body: String) -> Outcome {
    let mut o = Outcome::text(StatusCode::OK, body);
    o.content_type = "application/json";
    o
}

/// The UTC time of day, `HH:MM:SS`.
fn humantime_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let day = secs % 86_400;
    format!("{:02}:{:02}:{:02}Z", day / 3600, day % 3600 / 60, day % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_the_prefix_in_hex_and_a_counter() {
        let ids = RequestIds {
            prefix: 0x0a1b_2c3d,
            counter: AtomicU64::new(1),
        };
        assert_eq!(ids.next(), "0a1b2c3d-000001");
        assert_eq!(ids.next(), "0a1b2c3d-000002");
        for n in [999_999, 1_000_000, u64::MAX] {
            ids.counter.store(n, Ordering::Relaxed);
            assert_eq!(ids.next(), format!("0a1b2c3d-{n:06}"));
        }
    }
}

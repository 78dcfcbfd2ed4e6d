//! Helpers that start the real parts: the go command, the Go team's
//! reference proxy and checksum DB, and the modproxy binary.
//!
//! `scripts/test` installs the toolchain and builds the reference proxy, and
//! passes them in `MODPROXY_TEST_GOROOT` and `MODPROXY_TEST_GOREF`. Without
//! them a test fails (never skips) and says how to run it.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

/// The reference checksum DB's name and key (GOSUMDB syntax).
pub const REF_SUMDB: &str =
    "localhost.localdev/sumdb+00000c67+AcTrnkbUA+TU4heY3hkjiSES/DSQniBqIeQ/YppAUtK6";

pub fn required_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the suite with ./scripts/test, which installs the Go toolchain and builds the reference proxy")
    })
}

pub fn goroot() -> PathBuf {
    PathBuf::from(required_env("MODPROXY_TEST_GOROOT"))
}

/// A directory removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("modproxy-it-{}-{n}-{label}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Reads lines from `out` (in a thread, which keeps draining it) until one
/// starts with `prefix`; `None` if it closes or 30 s pass first.
fn wait_for_line(out: impl Read + Send + 'static, prefix: &str) -> Option<String> {
    let (tx, rx) = mpsc::channel();
    let prefix = prefix.to_string();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(out);
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap_or(0) > 0 {
            if let Some(rest) = line.trim().strip_prefix(&prefix) {
                let _ = tx.send(rest.to_string());
            }
            line.clear();
        }
    });
    rx.recv_timeout(Duration::from_secs(30)).ok()
}

/// The Go team's reference proxy (`cmd/go`'s test proxy) with its checksum DB.
pub struct RefProxy {
    child: Child,
    /// Proxy protocol base, `http://127.0.0.1:PORT/mod`.
    pub url: String,
}

impl RefProxy {
    pub fn start() -> RefProxy {
        RefProxy::start_in(&goroot().join("src/cmd/go"))
    }

    /// Starts it serving (and signing) the modules in `dir/testdata/mod`
    /// (txtar files named like `example.com_m_v1.0.0.txt`).
    pub fn start_in(dir: &Path) -> RefProxy {
        let mut child = Command::new(required_env("MODPROXY_TEST_GOREF"))
            .arg("-proxy=127.0.0.1:0")
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the reference proxy");
        let stderr = child.stderr.take().unwrap();
        let Some(url) = wait_for_line(stderr, "go test proxy running at GOPROXY=") else {
            let _ = child.kill();
            panic!("the reference proxy did not start");
        };
        RefProxy { child, url }
    }

    /// Stops it (the upstream goes away).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RefProxy {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A running `modproxy serve`.
pub struct Modproxy {
    child: Child,
    /// What it printed: the GOPROXY value to use.
    pub url: String,
    pub addr: SocketAddr,
    logs: Arc<Mutex<String>>,
}

impl Modproxy {
    /// Starts `modproxy serve --listen 127.0.0.1:0 --data DATA ARGS…`.
    pub fn start(data: &Path, args: &[&str]) -> Modproxy {
        Self::try_start(data, args).unwrap_or_else(|e| panic!("modproxy did not start: {e}"))
    }

    /// Starts it with `upstream` as its only upstream and checksum
    /// verification off (for tests serving synthetic modules), plus `extra`.
    pub fn behind(upstream: &str, data: &Path, extra: &[&str]) -> Modproxy {
        let mut args = vec!["--upstream", upstream, "--sumdb", "off"];
        args.extend_from_slice(extra);
        Self::start(data, &args)
    }

    /// Starts it with `upstream` and the reference checksum database, plus
    /// `extra` (for tests of the real modules of the reference proxy).
    pub fn verifying(upstream: &str, data: &Path, extra: &[&str]) -> Modproxy {
        let mut args = vec!["--upstream", upstream, "--sumdb", REF_SUMDB];
        args.extend_from_slice(extra);
        Self::start(data, &args)
    }

    /// Like [`Modproxy::start`], but returns stderr when it exits instead.
    pub fn try_start(data: &Path, args: &[&str]) -> Result<Modproxy, String> {
        Self::spawn(modproxy_command(data, args))
    }

    /// Starts a prepared `modproxy serve` command and waits for its banner.
    pub fn spawn(mut command: Command) -> Result<Modproxy, String> {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn modproxy");
        let stdout = child.stdout.take().unwrap();
        let url = match wait_for_line(stdout, "export GOPROXY=") {
            Some(url) => url,
            None => {
                let _ = child.kill();
                let mut err = String::new();
                child
                    .stderr
                    .take()
                    .unwrap()
                    .read_to_string(&mut err)
                    .unwrap();
                let _ = child.wait();
                return Err(err);
            }
        };
        // Keep the logs (which also keeps the pipe drained), to show them
        // when a test fails.
        let logs = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&logs);
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stderr);
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 {
                sink.lock().unwrap().push_str(&line);
                line.clear();
            }
        });
        let authority = url
            .trim_start_matches("http://")
            .trim_start_matches("https://");
        let authority = authority.split('/').next().unwrap();
        let addr = authority.parse().expect("modproxy printed an address");
        Ok(Modproxy {
            child,
            url,
            addr,
            logs,
        })
    }

    /// Its log lines so far.
    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for it to exit by itself, at most `limit`.
    pub fn wait(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let started = std::time::Instant::now();
        while started.elapsed() < limit {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Asks it to stop (SIGTERM), as a service manager would: it finishes
    /// what it answers and writes what it fetched, then exits.
    pub fn terminate(&self) {
        let term = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(term.success());
    }

    /// Stops it as a service manager would (SIGTERM) and waits for a clean
    /// exit: what it fetched is in the store then (its store writes wait
    /// for the end of a burst, and a SIGKILL would lose them).
    pub fn stop(mut self) {
        self.terminate();
        let stopped = self.wait(Duration::from_secs(30)).expect("it stops");
        assert_eq!(stopped.code(), Some(0), "{}", self.logs());
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Modproxy {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            let logs = self.logs.lock().unwrap();
            let tail: Vec<&str> = logs.lines().rev().take(40).collect();
            eprintln!("--- modproxy log (last lines) ---");
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

/// The binary under test, with its store at `data`.
pub fn modproxy_command(data: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_modproxy"));
    cmd.arg("serve")
        .arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--data")
        .arg(data)
        .args(args)
        .env_remove("MODPROXY_CONFIG")
        .env("MODPROXY_LOG", "info")
        // Background prefetch would add upstream requests that tests count;
        // the tests of prefetch (and of the go command) turn it on by flag.
        .env("MODPROXY_PREFETCH", "off");
    cmd
}

/// Runs `modproxy SUBCOMMAND --data DATA ARGS…` with `env` added;
/// (success, stdout and stderr).
pub fn run_modproxy(
    subcommand: &str,
    data: &Path,
    args: &[&str],
    env: &[(&'static str, String)],
) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_modproxy"))
        .arg(subcommand)
        .arg("--data")
        .arg(data)
        .args(args)
        .env_remove("MODPROXY_CONFIG")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// A go command with its own GOPATH, module cache, build cache and HOME.
pub struct GoEnv {
    home: TempDir,
    extra: Vec<(String, String)>,
}

impl GoEnv {
    pub fn new() -> GoEnv {
        GoEnv {
            home: TempDir::new("go"),
            extra: Vec::new(),
        }
    }

    /// Sets one more environment variable for every run (e.g. GONOSUMDB).
    pub fn with_env(mut self, key: &str, value: &str) -> GoEnv {
        self.extra.push((key.to_string(), value.to_string()));
        self
    }

    pub fn modcache(&self) -> PathBuf {
        self.home.path().join("modcache")
    }

    /// Its GOPATH (where the go command keeps the checksum tree head).
    pub fn gopath(&self) -> PathBuf {
        self.home.path().join("gopath")
    }

    /// Runs `go ARGS` in `dir` with GOPROXY=`goproxy` and the reference
    /// checksum DB.
    pub fn run(&self, dir: &Path, goproxy: &str, args: &[&str]) -> Output {
        let goroot = goroot();
        let home = self.home.path();
        let path = format!(
            "{}:{}",
            goroot.join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        Command::new(goroot.join("bin/go"))
            .args(args)
            .current_dir(dir)
            .env_clear()
            .env("PATH", path)
            .env("GOROOT", &goroot)
            .env("GOTOOLCHAIN", "local")
            .env("HOME", home)
            .env("GOPATH", home.join("gopath"))
            .env("GOMODCACHE", self.modcache())
            .env("GOCACHE", home.join("gocache"))
            .env("GOFLAGS", "-modcacherw")
            .env("GOPROXY", goproxy)
            .env("GOSUMDB", REF_SUMDB)
            .env("GONOSUMDB", "")
            .env("GOPRIVATE", "")
            .env("GONOPROXY", "")
            .env("CGO_ENABLED", "0")
            .envs(self.extra.iter().map(|(k, v)| (k, v)))
            .output()
            .expect("run go")
    }

    /// Like [`GoEnv::run`], failing the test with go's output on error.
    pub fn ok(&self, dir: &Path, goproxy: &str, args: &[&str]) -> String {
        let out = self.run(dir, goproxy, args);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "go {args:?} failed:\n{text}");
        text
    }
}

/// A new project directory holding [`hello_module`].
pub fn hello_project() -> TempDir {
    let dir = TempDir::new("hello");
    hello_module(dir.path());
    dir
}

/// A module `example.com/hello` whose main package prints `quote.Hello()`.
pub fn hello_module(dir: &Path) {
    std::fs::write(dir.join("go.mod"), "module example.com/hello\n\ngo 1.21\n").unwrap();
    std::fs::write(
        dir.join("main.go"),
        "package main\n\nimport (\n\t\"fmt\"\n\n\t\"rsc.io/quote\"\n)\n\nfunc main() { fmt.Println(quote.Hello()) }\n",
    )
    .unwrap();
}

/// Every file below `dir`, relative, sorted; the lock files that running
/// modproxy processes hold in a store's `.tmp/` are left out.
pub fn files_under(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.push(p.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.retain(|f| !(f.starts_with(".tmp/") && f.ends_with(".lock")));
    out.sort();
    out
}

/// Waits (up to `limit`) for `path` to exist: objects are stored just
/// after their answer goes out. Whether it appeared.
pub fn appears_blocking(path: &Path, limit: Duration) -> bool {
    until(limit, || path.exists())
}

/// Waits (up to `limit`) for `url` to answer 200: objects are stored
/// just after their answer goes out. Whether it did.
pub fn served(url: &str, limit: Duration) -> bool {
    until(limit, || get_status(url).0 == 200)
}

/// A port free a moment ago on 127.0.0.1 (for a server that takes its
/// port as a flag).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits (at most `limit`) until something accepts on `port`.
pub fn wait_listening(port: u16, limit: Duration) -> bool {
    until(limit, || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    })
}

/// Polls `done` every 20 ms for up to `limit`; whether it came true.
/// Longer than the disk store defers a write nobody waits for (one
/// second at most, `store/writer.rs`): a check that something was *not*
/// stored waits this long first, or it would pass before the write came.
pub const WRITES_LAND: Duration = Duration::from_millis(1500);

pub fn until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let started = std::time::Instant::now();
    while !done() {
        if started.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// [`appears_blocking`], off the async threads.
pub async fn appears(path: &Path, limit: Duration) -> bool {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || appears_blocking(&path, limit))
        .await
        .unwrap()
}

/// Peak resident memory of a process, in bytes (Linux `VmHWM`).
pub fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

/// A GET from synchronous test code: the body as text.
pub fn get_text(url: &str) -> String {
    get_status(url).1
}

/// A GET from synchronous test code: the status and the body as text.
pub fn get_status(url: &str) -> (u16, String) {
    let (status, _, body) = get_cached(url);
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// A GET from synchronous test code: status, `X-Cache-Status`, body.
pub fn get_cached(url: &str) -> (u16, String, Vec<u8>) {
    let url = url.to_string();
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                let r = reqwest::get(&url).await.unwrap();
                let status = r.status().as_u16();
                let cache = r
                    .headers()
                    .get("x-cache-status")
                    .map(|v| v.to_str().unwrap().to_string())
                    .unwrap_or_default();
                (status, cache, r.bytes().await.unwrap().to_vec())
            })
    })
    .join()
    .unwrap()
}

/// Writes a tree of modules `example.com/gN` v1.0.0 as the reference
/// proxy's txtar files under `dir/testdata/mod` (serve them with
/// [`RefProxy::start_in`]): `g1` requires `width` others, each of those
/// `width` more, down to `depth` levels; every go.mod says `go 1.16`, so
/// the go command loads the whole graph. Returns how many modules.
pub fn write_module_tree(dir: &Path, depth: u32, width: u32) -> u32 {
    let mods = dir.join("testdata/mod");
    std::fs::create_dir_all(&mods).unwrap();
    let count: u32 = (0..depth).map(|d| width.pow(d)).sum();
    for n in 1..=count {
        let path = format!("example.com/g{n}");
        let mut gomod = format!("module {path}\n\ngo 1.16\n");
        for c in (1..=width).map(|i| n * width - (width - 1) + i) {
            if c <= count {
                gomod.push_str(&format!("\nrequire example.com/g{c} v1.0.0\n"));
            }
        }
        let info = r#"{"Version":"v1.0.0","Time":"2024-01-01T00:00:00Z"}"#;
        let txtar = format!(
            "{path} v1.0.0\n-- .mod --\n{gomod}-- .info --\n{info}\n-- go.mod --\n{gomod}-- g.go --\npackage g{n}\n"
        );
        let file = format!("example.com_g{n}_v1.0.0.txt");
        std::fs::write(mods.join(file), txtar).unwrap();
    }
    count
}

/// A project (go 1.16) whose main package imports `example.com/g1`, the
/// root of [`write_module_tree`].
pub fn module_tree_project() -> TempDir {
    let project = TempDir::new("tree-project");
    std::fs::write(
        project.path().join("go.mod"),
        "module example.com/main\n\ngo 1.16\n",
    )
    .unwrap();
    std::fs::write(
        project.path().join("main.go"),
        "package main\n\nimport _ \"example.com/g1\"\n\nfunc main() {}\n",
    )
    .unwrap();
    project
}

/// The value of the sample `series` (name and labels, exactly as printed)
/// in a Prometheus text exposition; 0 when absent.
pub fn sample(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

//! Real storage servers for the scale-out tests, started on loopback by
//! the tests themselves: Garage (an S3-compatible object store; built by
//! `scripts/env.sh`, `MODPROXY_TEST_GARAGE`) with a bucket and key made by
//! its own CLI, and Redis (`MODPROXY_TEST_REDIS`, Debian's redis-server,
//! plain or TLS only; its `redis-cli` beside it).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{free_port, required_env, wait_listening, TempDir};

/// A one-node Garage cluster with one bucket and one key.
pub struct Garage {
    child: Child,
    dir: TempDir,
    /// `http://127.0.0.1:PORT`, the S3 endpoint.
    pub endpoint: String,
    pub bucket: String,
    pub key_id: String,
    pub secret: String,
}

impl Garage {
    pub fn start() -> Garage {
        let dir = TempDir::new("garage");
        let (rpc, s3, admin) = (free_port(), free_port(), free_port());
        let config = dir.path().join("garage.toml");
        std::fs::write(
            &config,
            format!(
                "metadata_dir = \"{meta}\"\n\
                 data_dir = \"{data}\"\n\
                 db_engine = \"lmdb\"\n\
                 replication_factor = 1\n\
                 rpc_bind_addr = \"127.0.0.1:{rpc}\"\n\
                 rpc_public_addr = \"127.0.0.1:{rpc}\"\n\
                 rpc_secret = \"{secret}\"\n\
                 [s3_api]\n\
                 s3_region = \"garage\"\n\
                 api_bind_addr = \"127.0.0.1:{s3}\"\n\
                 root_domain = \".s3.garage.localhost\"\n\
                 [admin]\n\
                 api_bind_addr = \"127.0.0.1:{admin}\"\n",
                meta = dir.path().join("meta").display(),
                data = dir.path().join("data").display(),
                secret = "3f".repeat(32),
            ),
        )
        .unwrap();
        let child = Command::new(required_env("MODPROXY_TEST_GARAGE"))
            .arg("-c")
            .arg(&config)
            .arg("server")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start garage");
        let mut garage = Garage {
            child,
            dir,
            endpoint: format!("http://127.0.0.1:{s3}"),
            bucket: "modproxy".into(),
            key_id: String::new(),
            secret: String::new(),
        };
        assert!(
            wait_listening(rpc, Duration::from_secs(30)),
            "garage did not start"
        );
        let node = garage.cli(&["node", "id", "-q"]);
        let node = node.trim().split('@').next().unwrap().to_string();
        garage.cli(&["layout", "assign", "-z", "dc1", "-c", "1G", &node]);
        garage.cli(&["layout", "apply", "--version", "1"]);
        assert!(wait_listening(s3, Duration::from_secs(30)), "no S3 API");
        garage.cli(&["bucket", "create", &garage.bucket.clone()]);
        let key = garage.cli(&["key", "create", "modproxy-key"]);
        let field = |name: &str| {
            key.lines()
                .find_map(|l| l.trim().strip_prefix(name))
                .map(|v| v.trim_start_matches(':').trim().to_string())
                .unwrap_or_else(|| panic!("no {name} in:\n{key}"))
        };
        garage.key_id = field("Key ID");
        garage.secret = field("Secret key");
        let bucket = garage.bucket.clone();
        garage.cli(&[
            "bucket",
            "allow",
            "--read",
            "--write",
            "--owner",
            &bucket,
            "--key",
            "modproxy-key",
        ]);
        garage
    }

    /// Runs the garage CLI against this node; its output.
    fn cli(&self, args: &[&str]) -> String {
        let started = Instant::now();
        loop {
            let out = Command::new(required_env("MODPROXY_TEST_GARAGE"))
                .arg("-c")
                .arg(self.dir.path().join("garage.toml"))
                .args(args)
                .env("RUST_LOG", "warn")
                .output()
                .expect("run garage");
            if out.status.success() {
                return String::from_utf8_lossy(&out.stdout).into_owned();
            }
            // The node needs a moment after start and after a layout change.
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "garage {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The environment a modproxy needs to use the bucket.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_REGION", "garage".into()),
            ("AWS_ACCESS_KEY_ID", self.key_id.clone()),
            ("AWS_SECRET_ACCESS_KEY", self.secret.clone()),
            ("AWS_ALLOW_HTTP", "true".into()),
        ]
    }

    /// `s3://BUCKET/PREFIX` for a store under `prefix`.
    pub fn store(&self, prefix: &str) -> String {
        format!("s3://{}/{prefix}", self.bucket)
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Redis server on loopback, nothing persisted.
pub struct Redis {
    child: Option<Child>,
    port: u16,
    /// With TLS only: the certificate (also its CA) and key files.
    tls: Option<(String, String)>,
    pub url: String,
}

impl Redis {
    pub fn start() -> Redis {
        Redis::start_with(None)
    }

    /// Speaking TLS only (no plain port), with the certificate and key
    /// files `cert` and `key`; clients need no certificate.
    pub fn start_tls(cert: &str, key: &str) -> Redis {
        Redis::start_with(Some((cert.to_string(), key.to_string())))
    }

    fn start_with(tls: Option<(String, String)>) -> Redis {
        let port = free_port();
        let scheme = if tls.is_some() { "rediss" } else { "redis" };
        let mut redis = Redis {
            child: None,
            port,
            tls,
            url: format!("{scheme}://127.0.0.1:{port}"),
        };
        redis.restart();
        redis
    }

    /// Starts it again on the same port.
    pub fn restart(&mut self) {
        let port = self.port.to_string();
        let mut command = Command::new(required_env("MODPROXY_TEST_REDIS"));
        command.args(["--bind", "127.0.0.1"]);
        match &self.tls {
            None => command.args(["--port", &port]),
            Some((cert, key)) => command
                .args(["--port", "0", "--tls-port", &port])
                .args(["--tls-cert-file", cert, "--tls-key-file", key])
                .args(["--tls-ca-cert-file", cert, "--tls-auth-clients", "no"]),
        };
        let child = command
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        assert!(
            wait_listening(self.port, Duration::from_secs(10)),
            "redis did not start"
        );
    }

    /// Runs `redis-cli` (beside `MODPROXY_TEST_REDIS`) with `args` against
    /// it, over TLS when it speaks TLS; its output.
    pub fn cli(&self, args: &[&str]) -> String {
        let server = std::path::PathBuf::from(required_env("MODPROXY_TEST_REDIS"));
        let mut command = Command::new(server.with_file_name("redis-cli"));
        command.args(["-h", "127.0.0.1", "-p", &self.port.to_string()]);
        if let Some((cert, _)) = &self.tls {
            command.args(["--tls", "--cacert", cert]);
        }
        let out = command.args(args).output().expect("run redis-cli");
        assert!(
            out.status.success(),
            "redis-cli {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Stops it (an outage).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

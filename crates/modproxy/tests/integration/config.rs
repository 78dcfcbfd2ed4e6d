//! Configuration: flags over `MODPROXY_*` variables over the TOML file,
//! errors that name the key, refused loops, path prefix and cached-only mode.

use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::fault::FaultServer;
use crate::util::{appears, modproxy_command, Modproxy, RefProxy, TempDir};

/// Runs `serve` expecting a start-up failure; returns its stderr. A server
/// that starts anyway is killed after 10 s and fails the test.
fn fails(data: &TempDir, args: &[&str], env: &[(&str, &str)]) -> String {
    let mut child = modproxy_command(data.path(), args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("serve {args:?} {env:?} started; it should have refused the configuration");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = child.wait().unwrap();
    assert!(!status.success(), "serve {args:?} should fail to start");
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    err
}

#[test]
fn bad_configuration_names_the_key() {
    let data = TempDir::new("data");
    let err = fails(&data, &["--upstream", "ftp://example.com"], &[]);
    assert!(err.contains("--upstream"), "{err}");

    let err = fails(
        &data,
        &[],
        &[("MODPROXY_UPSTREAM", "https://ok.example,ftp://bad.example")],
    );
    assert!(err.contains("MODPROXY_UPSTREAM"), "{err}");

    let err = fails(&data, &["--sumdb", "sum.example.com+zz+nonsense"], &[]);
    assert!(err.contains("--sumdb"), "{err}");

    let err = fails(&data, &["--private", "[bad"], &[]);
    assert!(err.contains("--private"), "{err}");

    let conf = TempDir::new("conf");
    let file = conf.path().join("modproxy.toml");
    std::fs::write(
        &file,
        "listen = \"127.0.0.1:0\"\nupstrem = \"https://typo.example\"\n",
    )
    .unwrap();
    let err = fails(&data, &["--config", file.to_str().unwrap()], &[]);
    assert!(
        err.contains("upstrem") && err.contains("modproxy.toml"),
        "{err}"
    );

    std::fs::write(&file, "[cache]\nfresh_for = \"five minutes\"\n").unwrap();
    let err = fails(&data, &["--config", file.to_str().unwrap()], &[]);
    assert!(err.contains("cache.fresh_for"), "{err}");

    std::fs::write(&file, "[upstream]\nconect_timeout = \"1s\"\n").unwrap();
    let err = fails(&data, &["--config", file.to_str().unwrap()], &[]);
    assert!(
        err.contains("[upstream]") && err.contains("conect_timeout"),
        "{err}"
    );

    std::fs::write(&file, "[upstream]\nretries = \"two\"\n").unwrap();
    let err = fails(&data, &["--config", file.to_str().unwrap()], &[]);
    assert!(err.contains("upstream.retries"), "{err}");

    let err = fails(&data, &["--headers-timeout", "0s"], &[]);
    assert!(err.contains("--headers-timeout"), "{err}");

    let err = fails(&data, &["--max-size", "lots"], &[]);
    assert!(err.contains("--max-size"), "{err}");
}

#[test]
fn an_endless_or_huge_settings_file_is_refused_without_reading_it_all() {
    let data = TempDir::new("data");
    // /dev/zero never ends: reading it whole grew the process to gigabytes.
    for flag in ["--config", "--auth-file"] {
        let err = fails(&data, &[flag, "/dev/zero"], &[]);
        assert!(
            err.contains("/dev/zero") && err.contains("larger than 1 MiB"),
            "{flag}: {err}"
        );
    }
    let conf = TempDir::new("conf");
    let file = conf.path().join("big.toml");
    std::fs::write(&file, "# padding\n".repeat(200_000)).unwrap();
    let err = fails(&data, &["--config", file.to_str().unwrap()], &[]);
    assert!(
        err.contains("big.toml") && err.contains("larger than 1 MiB"),
        "{err}"
    );
}

#[test]
fn an_upstream_pointing_at_the_proxy_itself_is_refused() {
    let data = TempDir::new("data");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_modproxy"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:38517",
            "--upstream",
            "http://localhost:38517/,direct",
        ])
        .arg("--data")
        .arg(data.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--upstream") && err.contains("loop"), "{err}");
}

#[test]
fn flags_beat_variables_beat_the_file() {
    let data = TempDir::new("data");
    let conf = TempDir::new("conf");
    let file = conf.path().join("modproxy.toml");
    std::fs::write(&file, "path_prefix = \"/file\"\nupstream = \"off\"\n").unwrap();
    let file = file.to_str().unwrap();

    let from_file = Modproxy::start(data.path(), &["--config", file]);
    assert!(from_file.url.ends_with("/file"), "{}", from_file.url);
    drop(from_file);

    let mut cmd = modproxy_command(data.path(), &["--config", file]);
    cmd.env("MODPROXY_PATH_PREFIX", "/env");
    let from_env = spawn_url(cmd);
    assert!(from_env.ends_with("/env"), "{from_env}");

    let mut cmd = modproxy_command(data.path(), &["--config", file, "--path-prefix", "/flag"]);
    cmd.env("MODPROXY_PATH_PREFIX", "/env");
    let from_flag = spawn_url(cmd);
    assert!(from_flag.ends_with("/flag"), "{from_flag}");
}

/// Starts a prepared command and returns the GOPROXY URL it printed.
fn spawn_url(mut cmd: std::process::Command) -> String {
    use std::io::BufRead;
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    line.trim()
        .trim_start_matches("export GOPROXY=")
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn path_prefix_and_cached_only() {
    let upstream = RefProxy::start();
    let recorder = FaultServer::start(&upstream.url);
    let data = TempDir::new("data");
    let proxy = Modproxy::behind(&recorder.url, data.path(), &["--path-prefix", "/go"]);
    assert!(proxy.url.ends_with("/go"));
    let under = reqwest::get(format!("{}/rsc.io/quote/@v/v1.5.2.mod", proxy.url))
        .await
        .unwrap();
    assert_eq!(under.status(), 200);
    let outside = reqwest::get(format!("http://{}/rsc.io/quote/@v/v1.5.2.mod", proxy.addr))
        .await
        .unwrap();
    assert_eq!(outside.status(), 404);
    // The dashboard lives at PREFIX/ (its links are relative).
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let bare = no_redirects.get(&proxy.url).send().await.unwrap();
    assert_eq!(bare.status(), 308);
    assert_eq!(bare.headers()["location"], "/go/");
    let page = reqwest::get(format!("{}/", proxy.url)).await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("default-src 'self'"));
    // The /cached-only/ prefix serves what is stored and nothing else
    // (stored just after the answer above).
    let mod_file = data.path().join("rsc.io/quote/@v/v1.5.2.mod");
    assert!(appears(&mod_file, Duration::from_secs(15)).await);
    let stored = reqwest::get(format!(
        "{}/cached-only/rsc.io/quote/@v/v1.5.2.mod",
        proxy.url
    ))
    .await
    .unwrap();
    assert_eq!(stored.status(), 200);
    let before = recorder.total();
    let not_stored = reqwest::get(format!(
        "{}/cached-only/rsc.io/quote/@v/v1.5.1.mod",
        proxy.url
    ))
    .await
    .unwrap();
    assert_eq!(not_stored.status(), 404);
    assert_eq!(
        recorder.total(),
        before,
        "cached-only contacted the upstream"
    );
    proxy.stop();

    // --cached-only: the same for every request.
    let offline = Modproxy::behind(&recorder.url, data.path(), &["--cached-only"]);
    let hit = reqwest::get(format!("{}/rsc.io/quote/@v/v1.5.2.mod", offline.url))
        .await
        .unwrap();
    assert_eq!(hit.status(), 200);
    let miss = reqwest::get(format!("{}/rsc.io/quote/@v/v1.5.0.mod", offline.url))
        .await
        .unwrap();
    assert_eq!(miss.status(), 404);
    assert!(miss.text().await.unwrap().contains("cached-only"));
    assert_eq!(recorder.total(), before);
}

#[test]
fn no_data_flag_stores_under_the_user_cache_directory_and_logs_json() {
    let home = TempDir::new("home");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_modproxy"));
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
        .env("HOME", home.path())
        // Only the data directory is left to its default: the default
        // upstream and checksum database are not on loopback.
        .env("MODPROXY_UPSTREAM", "http://127.0.0.1:9")
        .env("MODPROXY_SUMDB", "off")
        .env_remove("XDG_CACHE_HOME")
        .env_remove("MODPROXY_DATA")
        .env_remove("MODPROXY_CONFIG");
    let proxy = Modproxy::spawn(cmd).unwrap();
    assert!(home.path().join(".cache/modproxy/.tmp").is_dir());
    let mut logs = proxy.logs();
    for _ in 0..100 {
        if logs.contains("modproxy listening") {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        logs = proxy.logs();
    }
    assert!(!logs.is_empty(), "no start-up log line");
    // Every line is JSON; one of them says where it listens.
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {l}"))
        })
        .collect();
    assert!(
        lines.iter().any(|l| l["message"] == "modproxy listening"),
        "{logs}"
    );
}

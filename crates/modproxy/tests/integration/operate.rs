//! Running it for a team: TLS from certificate files.

use std::sync::OnceLock;

use crate::util::{goroot, hello_project, GoEnv, Modproxy, RefProxy, TempDir};

/// A self-signed certificate for 127.0.0.1 made by Go's own generator
/// (once per test run: it compiles), written to a fresh directory:
/// (directory, cert.pem, key.pem).
fn self_signed() -> (TempDir, String, String) {
    static PEMS: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    let (cert_pem, key_pem) = PEMS.get_or_init(|| {
        let dir = TempDir::new("tls-gen");
        let generator = goroot().join("src/crypto/tls/generate_cert.go");
        GoEnv::new().ok(
            dir.path(),
            "off",
            &["run", generator.to_str().unwrap(), "--host", "127.0.0.1"],
        );
        let read = |f: &str| std::fs::read(dir.path().join(f)).unwrap();
        (read("cert.pem"), read("key.pem"))
    });
    let dir = TempDir::new("tls");
    let write = |f: &str, pem: &[u8]| {
        let path = dir.path().join(f);
        std::fs::write(&path, pem).unwrap();
        path.to_str().unwrap().to_string()
    };
    let (cert, key) = (write("cert.pem", cert_pem), write("key.pem", key_pem));
    (dir, cert, key)
}

#[test]
fn the_go_command_downloads_over_tls_when_it_trusts_the_certificate() {
    let upstream = RefProxy::start();
    let (_certs, cert, key) = self_signed();
    let data = TempDir::new("data");
    let proxy = Modproxy::verifying(
        &upstream.url,
        data.path(),
        &["--tls-cert", &cert, "--tls-key", &key],
    );
    assert!(proxy.url.starts_with("https://127.0.0.1:"), "{}", proxy.url);

    // Without the certificate the go command refuses the proxy.
    let project = hello_project();
    let untrusting = GoEnv::new().run(project.path(), &proxy.url, &["mod", "tidy"]);
    let text = String::from_utf8_lossy(&untrusting.stderr);
    assert!(
        !untrusting.status.success() && text.contains("certificate"),
        "{text}"
    );

    let go = GoEnv::new().with_env("SSL_CERT_FILE", &cert);
    go.ok(project.path(), &proxy.url, &["mod", "tidy"]);
    go.ok(project.path(), &proxy.url, &["build", "-o", "hello", "."]);
}

#[test]
fn unusable_certificate_files_stop_start_up_with_the_file_named() {
    let (_certs, cert, _key) = self_signed();
    let data = TempDir::new("data");
    let err = Modproxy::try_start(
        data.path(),
        &["--tls-cert", &cert, "--tls-key", "/nonexistent/key.pem"],
    )
    .err()
    .expect("started without its key file");
    assert!(err.contains("cannot read /nonexistent/key.pem"), "{err}");

    let err = Modproxy::try_start(data.path(), &["--tls-cert", &cert])
        .err()
        .expect("started with a certificate and no key");
    assert!(
        err.contains("--tls-cert is set but no private key"),
        "{err}"
    );

    // The certificate given as the key: not a key.
    let err = Modproxy::try_start(data.path(), &["--tls-cert", &cert, "--tls-key", &cert])
        .err()
        .expect("started with a certificate as its key");
    assert!(err.contains("not a usable PEM file"), "{err}");
}

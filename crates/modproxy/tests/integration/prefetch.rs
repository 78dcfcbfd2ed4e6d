//! Predictive prefetch: a go.mod passing through starts the fetches of its
//! requirements, which the go command's next requests then use.

use std::time::Duration;

use crate::fault::{FaultServer, Mode};
use crate::util::{
    appears_blocking, files_under, get_cached, get_text, hello_module, module_tree_project, until,
    write_module_tree, GoEnv, Modproxy, RefProxy, TempDir,
};

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("modproxy_{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no metric {name}"))
}

#[test]
fn a_cold_tidy_makes_the_same_go_sum_and_uses_the_prefetched_files() {
    let upstream = RefProxy::start();
    let delayed = FaultServer::start(&upstream.url);
    delayed.set_mode(Mode::Delay(Duration::from_millis(100)));

    // Straight to the (delayed) upstream.
    let direct = TempDir::new("direct");
    hello_module(direct.path());
    GoEnv::new().ok(direct.path(), &delayed.url, &["mod", "tidy"]);

    // Through modproxy with prefetch.
    let data = TempDir::new("data");
    let proxy = Modproxy::verifying(&delayed.url, data.path(), &["--prefetch", "mod"]);
    let through = TempDir::new("through");
    hello_module(through.path());
    GoEnv::new().ok(through.path(), &proxy.url, &["mod", "tidy"]);

    let read = |d: &TempDir| std::fs::read_to_string(d.path().join("go.sum")).unwrap();
    assert_eq!(read(&through), read(&direct));

    let text = get_text(&format!("{}/metrics", proxy.url));
    assert!(metric(&text, "prefetch_started_total") > 0, "{text}");
    assert!(metric(&text, "prefetch_used_total") > 0, "{text}");
}

#[test]
fn a_deep_graph_is_fetched_ahead_of_the_go_command() {
    let modules = TempDir::new("modules");
    let count = write_module_tree(modules.path(), 4, 3);
    let upstream = RefProxy::start_in(modules.path());
    let delayed = FaultServer::start(&upstream.url);
    delayed.set_mode(Mode::Delay(Duration::from_millis(100)));

    let direct = module_tree_project();
    GoEnv::new().ok(direct.path(), &delayed.url, &["mod", "tidy"]);

    let data = TempDir::new("data");
    let proxy = Modproxy::verifying(&delayed.url, data.path(), &["--prefetch", "mod"]);
    let through = module_tree_project();
    GoEnv::new().ok(through.path(), &proxy.url, &["mod", "tidy"]);

    let read = |d: &TempDir| std::fs::read_to_string(d.path().join("go.sum")).unwrap();
    assert_eq!(read(&through), read(&direct));
    // Every go.mod, and the zip of the one imported module.
    assert_eq!(read(&through).lines().count() as u32, count + 1);
    // Tidy asks the `.info` only of the module it adds (and downloads
    // that one's zip itself): no other zip was fetched.
    let g1_zip = data.path().join("example.com/g1/@v/v1.0.0.zip");
    assert!(appears_blocking(&g1_zip, Duration::from_secs(20)));
    let zips: Vec<String> = files_under(data.path())
        .into_iter()
        .filter(|f| f.ends_with(".zip"))
        .collect();
    assert_eq!(zips, ["example.com/g1/@v/v1.0.0.zip"]);

    // Deeper levels are fetched (go.mod and checksum record together)
    // while the go command still reads the level above: a good part of
    // its requests find the prefetched files.
    let text = get_text(&format!("{}/metrics", proxy.url));
    let used = metric(&text, "prefetch_used_total");
    assert!(
        used > u64::from(count) / 3,
        "used {used} of {count}: {text}"
    );
}

#[test]
fn a_clients_info_request_in_a_walked_graph_starts_the_fetch_of_its_zip() {
    let modules = TempDir::new("modules");
    write_module_tree(modules.path(), 2, 2);
    let upstream = RefProxy::start_in(modules.path());
    let counted = FaultServer::start(&upstream.url);
    let data = TempDir::new("data");
    let proxy = Modproxy::verifying(&counted.url, data.path(), &["--prefetch", "mod"]);
    let get = |path: &str| {
        let (status, cache, body) = get_cached(&format!("{}/example.com/{path}", proxy.url));
        assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
        cache
    };

    // A `.info` outside any walked graph fetches no zip: `go list -m -u`
    // lists a module's versions and asks the `.info` of the newest, once
    // per client.
    get("g3/@v/list");
    get("g3/@v/v1.0.0.info");
    get("g3/@v/v1.0.0.info");
    // Let the prefetch it started (go.mod, `.info`) finish.
    assert!(appears_blocking(
        &data.path().join("example.com/g3/@v/v1.0.0.mod"),
        Duration::from_secs(20)
    ));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(counted.count("/example.com/g3/@v/v1.0.0.zip"), 0);
    // So does g2's, asked before its graph is walked, and again once
    // everything it started has landed (an answer the prefetch books have
    // seen: hits like it skip them).
    get("g2/@v/v1.0.0.info");
    assert!(appears_blocking(
        &data.path().join("example.com/g2/@v/v1.0.0.mod"),
        Duration::from_secs(20)
    ));
    std::thread::sleep(Duration::from_millis(300));
    get("g2/@v/v1.0.0.info");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(counted.count("/example.com/g2/@v/v1.0.0.zip"), 0);

    // `go mod download` walks the graph (every `.mod`), then asks every
    // module's `.info`, then fetches the zips: the `.info` answer starts
    // the zip's fetch, also when that `.info` was asked before the walk.
    get("g2/@v/v1.0.0.mod");
    get("g2/@v/v1.0.0.info");
    let zip = data.path().join("example.com/g2/@v/v1.0.0.zip");
    assert!(appears_blocking(&zip, Duration::from_secs(20)));
    assert_eq!(get("g2/@v/v1.0.0.zip"), "HIT");
    assert_eq!(counted.count("/example.com/g2/@v/v1.0.0.zip"), 1);
    let text = get_text(&format!("{}/metrics", proxy.url));
    assert!(metric(&text, "prefetch_used_total") >= 1, "{text}");

    // A walk reaching a module through another's go.mod (g1 requires g3;
    // prefetch walks it once g1's go.mod is in) counts too: g3's `.info`,
    // asked twice before, starts its zip once that walk is done.
    get("g1/@v/v1.0.0.mod");
    let zip = data.path().join("example.com/g3/@v/v1.0.0.zip");
    let zip_started = until(Duration::from_secs(20), || {
        get("g3/@v/v1.0.0.info");
        zip.exists()
    });
    assert!(zip_started);
}

/// A three-module graph (g1 requires g2 and g3) behind a fault server,
/// g1's go.mod already stored (asking for it is a hit), and modproxy with
/// prefetch on and a breaker that opens on the first failed fetch, after
/// one outage: the breaker is open for `cooldown`.
struct AfterOutage {
    proxy: Modproxy,
    faulty: FaultServer,
    data: TempDir,
    _upstream: RefProxy,
    _modules: TempDir,
}

impl AfterOutage {
    fn start(cooldown: &str) -> AfterOutage {
        let modules = TempDir::new("modules");
        write_module_tree(modules.path(), 2, 2);
        let upstream = RefProxy::start_in(modules.path());
        let faulty = FaultServer::start(&upstream.url);
        let data = TempDir::new("data");
        let gomod = get_text(&format!("{}/example.com/g1/@v/v1.0.0.mod", upstream.url));
        let dir = data.path().join("example.com/g1/@v");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("v1.0.0.mod"), gomod).unwrap();
        let args = [
            "--prefetch",
            "mod",
            "--breaker-threshold",
            "1",
            "--breaker-cooldown",
            cooldown,
        ];
        let proxy = Modproxy::behind(&faulty.url, data.path(), &args);
        let outage = AfterOutage {
            proxy,
            faulty,
            data,
            _upstream: upstream,
            _modules: modules,
        };
        // The upstream fails a miss: its breaker opens.
        outage.faulty.set_mode(Mode::Status(502));
        assert_eq!(outage.get("g9/@v/v1.0.0.info").0, 502);
        outage.faulty.set_mode(Mode::Forward);
        outage
    }

    /// Status and cache status of `example.com/{path}` through modproxy.
    fn get(&self, path: &str) -> (u16, String) {
        let (status, cache, _) = get_cached(&format!("{}/example.com/{path}", self.proxy.url));
        (status, cache)
    }

    /// Whether `example.com/{path}` is stored now.
    fn exists(&self, path: &str) -> bool {
        self.data
            .path()
            .join(format!("example.com/{path}"))
            .exists()
    }

    /// Waits (up to 20 s) for `example.com/{path}` to be stored.
    fn stored(&self, path: &str) -> bool {
        let file = self.data.path().join(format!("example.com/{path}"));
        appears_blocking(&file, Duration::from_secs(20))
    }
}

#[test]
fn hits_while_the_upstream_is_skipped_prefetch_nothing_until_it_is_back() {
    let outage = AfterOutage::start("2s");
    let failed = outage.faulty.total();

    // Hits go on while it is skipped, and start no prefetch.
    for _ in 0..3 {
        assert_eq!(outage.get("g1/@v/v1.0.0.mod").1, "HIT");
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        outage.faulty.total(),
        failed,
        "a skipped upstream was asked"
    );
    assert!(!outage
        .data
        .path()
        .join("example.com/g2/@v/v1.0.0.mod")
        .exists());

    // Once the cool-down is over and the upstream answers again (a client
    // miss probes it), the same hit prefetches g1's requirements after all.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(outage.get("g9/@v/v1.0.0.info").0, 404);
    assert_eq!(outage.get("g1/@v/v1.0.0.mod").1, "HIT");
    assert!(outage.stored("g2/@v/v1.0.0.mod"), "{}", outage.proxy.logs());
}

#[test]
fn prefetches_that_fail_during_the_breakers_probe_are_tried_again() {
    let outage = AfterOutage::start("1s");
    // After the cool-down, a hit of g1's go.mod prefetches g1's `.info`
    // and its requirements' `.info` and go.mod files, at once: whichever
    // is admitted first is the breaker's probe (slow here), the others
    // are skipped while it is out and fail.
    std::thread::sleep(Duration::from_millis(1200));
    outage
        .faulty
        .set_mode(Mode::Delay(Duration::from_millis(800)));
    assert_eq!(outage.get("g1/@v/v1.0.0.mod").1, "HIT");
    let walked = [
        "g1/@v/v1.0.0.info",
        "g2/@v/v1.0.0.info",
        "g2/@v/v1.0.0.mod",
        "g3/@v/v1.0.0.info",
        "g3/@v/v1.0.0.mod",
    ];
    let probed = until(Duration::from_secs(20), || {
        walked.iter().any(|f| outage.exists(f))
    });
    assert!(probed, "the probe never landed\n{}", outage.proxy.logs());
    outage.faulty.set_mode(Mode::Forward);
    let skipped: Vec<&str> = walked
        .iter()
        .copied()
        .filter(|f| !outage.exists(f))
        .collect();
    assert!(
        !skipped.is_empty(),
        "no prefetch was skipped during the probe: the test proves nothing"
    );

    // The go command then asks for g2's go.mod itself: the walk reaches
    // g2 again, so its `.info` is prefetched after all (whichever of the
    // prefetches above was the probe).
    assert_eq!(outage.get("g2/@v/v1.0.0.mod").0, 200);
    assert!(
        outage.stored("g2/@v/v1.0.0.info"),
        "{}",
        outage.proxy.logs()
    );
}

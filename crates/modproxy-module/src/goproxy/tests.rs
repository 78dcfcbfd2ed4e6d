//! Tests for `goproxy.rs`.

use super::*;

fn url(u: &str, fall: bool) -> ProxyEntry {
    ProxyEntry {
        spec: ProxySpec::Url(u.to_owned()),
        fall_through_on_error: fall,
    }
}

fn direct() -> ProxyEntry {
    ProxyEntry {
        spec: ProxySpec::Direct,
        fall_through_on_error: false,
    }
}

fn off() -> ProxyEntry {
    ProxyEntry {
        spec: ProxySpec::Off,
        fall_through_on_error: false,
    }
}

fn parse(s: &str) -> Vec<ProxyEntry> {
    ProxyList::parse(s)
        .unwrap_or_else(|e| panic!("parse({s:?}): {e}"))
        .entries
}

#[test]
fn separators() {
    assert_eq!(
        parse("https://proxy.golang.org,direct"),
        [url("https://proxy.golang.org", false), direct()]
    );
    assert_eq!(
        parse("https://a.example|https://b.example,direct"),
        [
            url("https://a.example", true),
            url("https://b.example", false),
            direct()
        ]
    );
    assert_eq!(
        parse("https://a.example|direct"),
        [url("https://a.example", true), direct()]
    );
    assert_eq!(
        parse("https://a.example"),
        [url("https://a.example", false)]
    );
    // A trailing `|` still marks fall-through, as in Go.
    assert_eq!(
        parse("https://a.example|"),
        [url("https://a.example", true)]
    );
}

#[test]
fn direct_and_off() {
    assert_eq!(parse("direct"), [direct()]);
    assert_eq!(parse("off"), [off()]);
    // Go stops at `off` and `direct`; later entries are not even checked.
    assert_eq!(parse("off,https://a.example"), [off()]);
    assert_eq!(parse("direct,https://a.example"), [direct()]);
    assert_eq!(
        parse("https://a.example,off,ftp://bad"),
        [url("https://a.example", false), off()]
    );
    assert_eq!(parse("direct|off"), [direct()]);
}

#[test]
fn empty_elements_and_space() {
    assert_eq!(
        parse(" ,, https://a.example ,|direct"),
        [url("https://a.example", false), direct()]
    );
    assert_eq!(ProxyList::parse("").unwrap_err(), ProxyListError::Empty);
    for s in [",", " ", ",,|", " , "] {
        assert_eq!(
            ProxyList::parse(s).unwrap_err(),
            ProxyListError::NoEntries,
            "{s:?}"
        );
    }
    assert_eq!(
        ProxyList::parse(",").unwrap_err().to_string(),
        "GOPROXY list is not the empty string, but contains no entries"
    );
    let err = ProxyList::parse("https://a example.com").unwrap_err();
    assert!(matches!(err, ProxyListError::WhiteSpace { .. }), "{err}");
}

#[test]
fn scheme_handling() {
    assert_eq!(
        parse("proxy.example.com"),
        [url("https://proxy.example.com", false)]
    );
    assert_eq!(
        parse("proxy.example.com/sub/"),
        [url("https://proxy.example.com/sub", false)]
    );
    assert_eq!(
        parse("localhost:8080"),
        [url("https://localhost:8080", false)]
    );
    assert_eq!(
        parse("http://127.0.0.1:3000/"),
        [url("http://127.0.0.1:3000", false)]
    );
    assert_eq!(
        parse("HTTPS://Proxy.Example.com//"),
        [url("https://Proxy.Example.com", false)]
    );
    assert_eq!(
        parse("https://user:pw@goproxy.corp/base"),
        [url("https://user:pw@goproxy.corp/base", false)]
    );

    let err = ProxyList::parse("noproxy").unwrap_err();
    assert_eq!(
        err,
        ProxyListError::MissingScheme {
            entry: "noproxy".into()
        }
    );
    assert_eq!(err.to_string(), "invalid proxy URL missing scheme: noproxy");
    assert!(matches!(
        ProxyList::parse("/var/goproxy").unwrap_err(),
        ProxyListError::MissingScheme { .. }
    ));

    let err = ProxyList::parse("file:///var/goproxy").unwrap_err();
    assert!(matches!(err, ProxyListError::FileScheme { .. }));
    assert!(err.to_string().contains("file:///var/goproxy"), "{err}");
    assert!(err.to_string().contains("HTTP only"), "{err}");

    let err = ProxyList::parse("ftp://a.example").unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid proxy URL scheme (must be https or http): ftp://a.example"
    );

    for bad in [
        "https://",
        "https:///path",
        "https:a.example",
        "https://a.example/?x=1",
        "https://a.example#f",
    ] {
        let err = ProxyList::parse(bad).unwrap_err();
        assert!(
            matches!(err, ProxyListError::InvalidUrl { .. }),
            "{bad:?}: {err}"
        );
    }
}

#[test]
fn display_round_trips() {
    for (input, shown) in [
        (
            "https://proxy.golang.org,direct",
            "https://proxy.golang.org,direct",
        ),
        (
            "a.example|b.example/,off",
            "https://a.example|https://b.example,off",
        ),
        (" direct ", "direct"),
        (
            "https://a.example|https://b.example|direct",
            "https://a.example|https://b.example|direct",
        ),
    ] {
        let list = ProxyList::parse(input).unwrap();
        assert_eq!(list.to_string(), shown);
        assert_eq!(ProxyList::parse(shown).unwrap(), list);
    }
}

#[test]
fn display_keeps_trailing_pipe_and_hosts() {
    let list = ProxyList::parse("https://a.example|").unwrap();
    assert_eq!(list.to_string(), "https://a.example|");
    assert_eq!(ProxyList::parse(&list.to_string()).unwrap(), list);
    assert_eq!(
        parse("http://[::1]:8080/x"),
        [url("http://[::1]:8080/x", false)]
    );
    for bad in [
        "https://a.example:",
        "https://a.example:x",
        "https://[::1",
        "https://[zz]",
        "https://a_b!.com",
    ] {
        let err = ProxyList::parse(bad).unwrap_err();
        assert!(
            matches!(err, ProxyListError::InvalidUrl { .. }),
            "{bad:?}: {err}"
        );
    }
}

//! Tests for `sumdb_setting.rs`.

use super::*;

/// A made-up Ed25519 verifier key (key bytes 0..32) with a correct hash.
const EXAMPLE_KEY: &str = "sum.example.com+7eb4bc0b+AQABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f";

fn db(s: &str) -> SumDbConfig {
    match SumDbSetting::parse(s) {
        Ok(SumDbSetting::Db(c)) => c,
        other => panic!("parse({s:?}) = {other:?}"),
    }
}

#[test]
fn off() {
    assert_eq!(SumDbSetting::parse("off").unwrap(), SumDbSetting::Off);
    assert_eq!(SumDbSetting::Off.to_string(), "off");
}

#[test]
fn known_names() {
    let c = db("sum.golang.org");
    assert_eq!(c.name, "sum.golang.org");
    assert_eq!(c.key, SUM_GOLANG_ORG_KEY);
    assert_eq!(c.url, None);
    assert_eq!(c.base_url(), "https://sum.golang.org");
    assert_eq!(c.key_hash(), 0x033de0ae);
    assert_eq!(SumDbSetting::default(), SumDbSetting::Db(c));

    let c = db("sum.golang.google.cn");
    assert_eq!(c.name, "sum.golang.org");
    assert_eq!(c.key, SUM_GOLANG_ORG_KEY);
    assert_eq!(c.url.as_deref(), Some("https://sum.golang.google.cn"));

    // The known name may be followed by a URL.
    let c = db("sum.golang.org https://goproxy.example/sumdb/sum.golang.org/");
    assert_eq!(c.key, SUM_GOLANG_ORG_KEY);
    assert_eq!(
        c.url.as_deref(),
        Some("https://goproxy.example/sumdb/sum.golang.org")
    );
}

#[test]
fn builtin_key_hash_checks_out() {
    // Recompute the hash of Go's built-in key with our SHA-256.
    let (name, hash16, key64) = split_key(SUM_GOLANG_ORG_KEY);
    let key = STD_ENCODING.decode(key64).unwrap();
    assert_eq!(key.len(), 33);
    assert_eq!(key[0], ALG_ED25519);
    assert_eq!(format!("{:08x}", key_hash(name, &key)), hash16);
    // And the key from Go's note package tests.
    assert!(check_verifier_key(
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
    )
    .is_ok());
}

#[test]
fn explicit_keys() {
    let c = db(EXAMPLE_KEY);
    assert_eq!(c.name, "sum.example.com");
    assert_eq!(c.key, EXAMPLE_KEY);
    assert_eq!(c.url, None);
    assert_eq!(c.key_hash(), 0x7eb4bc0b);
    let want: Vec<u8> = (0..32).collect();
    assert_eq!(c.public_key().to_vec(), want);

    let c = db(&format!("  {EXAMPLE_KEY}\thttp://127.0.0.1:8080/db  "));
    assert_eq!(c.url.as_deref(), Some("http://127.0.0.1:8080/db"));
    assert_eq!(c.base_url(), "http://127.0.0.1:8080/db");
    let setting = SumDbSetting::Db(c);
    assert_eq!(
        setting.to_string(),
        format!("{EXAMPLE_KEY} http://127.0.0.1:8080/db")
    );
    assert_eq!(SumDbSetting::parse(&setting.to_string()).unwrap(), setting);

    let c = db("sum.example.com/db+cc3c5074+AQABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f");
    assert_eq!(c.name, "sum.example.com/db");
    assert_eq!(c.base_url(), "https://sum.example.com/db");
}

#[test]
fn rejections() {
    use SumDbSettingError::*;
    let cases: &[(&str, SumDbSettingError)] = &[
        ("", Missing),
        ("   ", Missing),
        ("a b c", TooManyFields),
        ("sum.golang.org https://a https://b", TooManyFields),
        ("sum.example.com", MalformedVerifierId),
        (
            "sum.golang.google.cn https://x.example",
            MalformedVerifierId,
        ),
        ("sum.example.com+7eb4bc0b", MalformedVerifierId),
        (
            "sum.example.com+7eb4bc0+AQABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f",
            MalformedVerifierId,
        ),
        (
            "sum.example.com+7eb4bc0g+AQABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f",
            MalformedVerifierId,
        ),
        ("sum.example.com+7eb4bc0b+not*base64", MalformedVerifierId),
        ("sum.example.com+7eb4bc0b+", MalformedVerifierId),
        (
            "+7eb4bc0b+AQABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f",
            MalformedVerifierId,
        ),
        // Wrong hash.
        (
            "sum.example.com+7eb4bc0c+AQABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f",
            InvalidVerifierHash,
        ),
        (
            "sum.golang.org+033de0af+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8",
            InvalidVerifierHash,
        ),
        (
            "other.example+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8",
            InvalidVerifierHash,
        ),
        // Algorithm 2, correctly hashed.
        (
            "sum.example.com+a8e8ec2d+AgABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f",
            UnknownVerifierAlgorithm,
        ),
        // Ed25519 with a 31-byte key, correctly hashed.
        (
            "sum.example.com+928ac720+AQABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4=",
            MalformedVerifierId,
        ),
    ];
    for (s, want) in cases {
        assert_eq!(&SumDbSetting::parse(s).unwrap_err(), want, "parse({s:?})");
    }
    assert_eq!(
        SumDbSetting::parse("sum.example.com")
            .unwrap_err()
            .to_string(),
        "invalid GOSUMDB: malformed verifier id"
    );
    assert_eq!(
        SumDbSetting::parse("a b c").unwrap_err().to_string(),
        "invalid GOSUMDB: too many fields"
    );
}

#[test]
fn bad_names_and_urls() {
    let err =
        SumDbSetting::parse("example.com?x+a4d1b70d+AQABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f")
            .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid sumdb name (must be host[/path]): example.com?x"
    );
    for url in ["ftp://x.example", "x.example", "https://", "file:///tmp/db"] {
        let err = SumDbSetting::parse(&format!("{EXAMPLE_KEY} {url}")).unwrap_err();
        assert!(
            matches!(err, SumDbSettingError::InvalidUrl { .. }),
            "{url}: {err}"
        );
    }
}

//! Semantic versions as Go modules use them: a port of
//! `golang.org/x/mod/semver` (leading `v`, `vMAJOR` and `vMAJOR.MINOR`
//! shorthands) plus `module.CanonicalVersion`'s `+incompatible` rule.

use std::cmp::Ordering;

/// The parsed pieces of a version; all slices borrow from the input.
struct Parsed<'a> {
    major: &'a str,
    minor: &'a str,
    patch: &'a str,
    /// `".0.0"` or `".0"` when the version used a shorthand form.
    short: &'static str,
    prerelease: &'a str,
    build: &'a str,
}

fn parse(v: &str) -> Option<Parsed<'_>> {
    let rest = v.strip_prefix('v')?;
    let (major, rest) = parse_int(rest)?;
    let mut p = Parsed {
        major,
        minor: "0",
        patch: "0",
        short: "",
        prerelease: "",
        build: "",
    };
    if rest.is_empty() {
        p.short = ".0.0";
        return Some(p);
    }
    let (minor, rest) = parse_int(rest.strip_prefix('.')?)?;
    p.minor = minor;
    if rest.is_empty() {
        p.short = ".0";
        return Some(p);
    }
    let (patch, mut rest) = parse_int(rest.strip_prefix('.')?)?;
    p.patch = patch;
    if rest.starts_with('-') {
        let (pre, r) = parse_prerelease(rest)?;
        p.prerelease = pre;
        rest = r;
    }
    if rest.starts_with('+') {
        let (build, r) = parse_build(rest)?;
        p.build = build;
        rest = r;
    }
    rest.is_empty().then_some(p)
}

fn parse_int(v: &str) -> Option<(&str, &str)> {
    let n = v.bytes().take_while(u8::is_ascii_digit).count();
    if n == 0 || (v.starts_with('0') && n != 1) {
        return None;
    }
    Some(v.split_at(n))
}

fn is_ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-'
}

fn is_bad_num(v: &str) -> bool {
    is_num(v) && v.len() > 1 && v.starts_with('0')
}

fn is_num(v: &str) -> bool {
    v.bytes().all(|b| b.is_ascii_digit())
}

/// Parses `-ident(.ident)*` up to a `+` or the end; numeric identifiers
/// must not have leading zeros.
fn parse_prerelease(v: &str) -> Option<(&str, &str)> {
    let end = v.find('+').unwrap_or(v.len());
    let (pre, rest) = v.split_at(end);
    let body = pre.strip_prefix('-')?;
    let ok = body
        .split('.')
        .all(|id| !id.is_empty() && id.bytes().all(is_ident_char) && !is_bad_num(id));
    ok.then_some((pre, rest))
}

/// Parses `+ident(.ident)*` to the end of the string.
fn parse_build(v: &str) -> Option<(&str, &str)> {
    let body = v.strip_prefix('+')?;
    let ok = body
        .split('.')
        .all(|id| !id.is_empty() && id.bytes().all(is_ident_char));
    ok.then_some((v, ""))
}

/// `semver.IsValid`.
pub fn is_valid(v: &str) -> bool {
    parse(v).is_some()
}

/// `semver.Canonical`: fills in `.MINOR`/`.PATCH` and drops build metadata.
/// `None` for an invalid version (Go returns `""`).
pub fn canonical(v: &str) -> Option<String> {
    let p = parse(v)?;
    Some(if !p.build.is_empty() {
        v[..v.len() - p.build.len()].to_owned()
    } else {
        format!("{v}{}", p.short)
    })
}

/// `module.CanonicalVersion`: like [`canonical`] but keeps a
/// `+incompatible` build suffix.
pub fn canonical_module_version(v: &str) -> Option<String> {
    let mut cv = canonical(v)?;
    if build(v) == Some("+incompatible") {
        cv.push_str("+incompatible");
    }
    Some(cv)
}

/// Whether `v` is valid and already in `module.CanonicalVersion` form:
/// `v2.0.0+incompatible` is, `v1.0.0+build` and `v1.2` are not.
pub fn is_canonical_module_version(v: &str) -> bool {
    canonical_module_version(v).is_some_and(|cv| cv == v)
}

/// `semver.Major`: `"v2"` for `"v2.1.0"`.
pub fn major(v: &str) -> Option<&str> {
    let p = parse(v)?;
    Some(&v[..1 + p.major.len()])
}

/// `semver.MajorMinor`: `"v2.1"` for `"v2.1.0"`, `"v2.0"` for `"v2"`.
pub fn major_minor(v: &str) -> Option<String> {
    let p = parse(v)?;
    let i = 1 + p.major.len();
    let j = i + 1 + p.minor.len();
    if j <= v.len() && v.as_bytes()[i] == b'.' && &v[i + 1..j] == p.minor {
        return Some(v[..j].to_owned());
    }
    Some(format!("{}.{}", &v[..i], p.minor))
}

/// `semver.Prerelease`: `"-pre"` for `"v2.1.0-pre+meta"`; `None` when
/// there is none or `v` is invalid.
pub fn prerelease(v: &str) -> Option<&str> {
    parse(v).map(|p| p.prerelease).filter(|s| !s.is_empty())
}

/// `semver.Build`: `"+meta"` for `"v2.1.0+meta"`; `None` when there is
/// none or `v` is invalid.
pub fn build(v: &str) -> Option<&str> {
    parse(v).map(|p| p.build).filter(|s| !s.is_empty())
}

/// `semver.Compare`: invalid versions sort before valid ones and compare
/// equal to each other; build metadata is ignored.
pub fn compare(a: &str, b: &str) -> Ordering {
    match (parse(a), parse(b)) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(pa), Some(pb)) => compare_int(pa.major, pb.major)
            .then_with(|| compare_int(pa.minor, pb.minor))
            .then_with(|| compare_int(pa.patch, pb.patch))
            .then_with(|| compare_prerelease(pa.prerelease, pb.prerelease)),
    }
}

/// `semver.Sort`: by [`compare`], ties broken by plain string order.
pub fn sort_versions(v: &mut [String]) {
    v.sort_by(|a, b| compare(a, b).then_with(|| a.cmp(b)));
}

/// Compares decimal strings without leading zeros.
fn compare_int(x: &str, y: &str) -> Ordering {
    x.len().cmp(&y.len()).then_with(|| x.cmp(y))
}

fn compare_prerelease(x: &str, y: &str) -> Ordering {
    if x == y {
        return Ordering::Equal;
    }
    if x.is_empty() {
        return Ordering::Greater;
    }
    if y.is_empty() {
        return Ordering::Less;
    }
    let mut xs = x[1..].split('.');
    let mut ys = y[1..].split('.');
    loop {
        match (xs.next(), ys.next()) {
            (Some(dx), Some(dy)) => {
                if dx == dy {
                    continue;
                }
                return match (is_num(dx), is_num(dy)) {
                    (true, false) => Ordering::Less,
                    (false, true) => Ordering::Greater,
                    (true, true) => compare_int(dx, dy),
                    (false, false) => dx.cmp(dy),
                };
            }
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (None, None) => return Ordering::Equal,
        }
    }
}

#[cfg(test)]
mod tests;

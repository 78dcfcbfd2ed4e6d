//! Parsers for the human-written values of the configuration: durations
//! (`500ms`, `10s`, `5m`, `2h`, `30d`) and sizes (`512MB`, `20GiB`).

use std::time::Duration;

pub fn duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (examples: 500ms, 10s, 5m, 2h, 30d)"))?;
    let secs = match unit.trim() {
        "ms" => return Ok(Duration::from_millis(n)),
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => {
            return Err(format!(
                "{s:?} is not a duration: unit must be ms, s, m, h or d"
            ))
        }
    };
    Ok(Duration::from_secs(n.saturating_mul(secs)))
}

/// A duration that is more than zero (a zero timeout would fail everything).
pub fn positive_duration(s: &str) -> Result<Duration, String> {
    match duration(s)? {
        d if d.is_zero() => Err(format!("{s:?} must be more than zero")),
        d => Ok(d),
    }
}

pub fn count(s: &str) -> Result<u32, String> {
    s.trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a whole number"))
}

pub fn size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a size (examples: 500MB, 20GiB, 1048576)"))?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1000,
        "kib" | "k" => 1 << 10,
        "mb" => 1000 * 1000,
        "mib" | "m" => 1 << 20,
        "gb" => 1000 * 1000 * 1000,
        "gib" | "g" => 1 << 30,
        "tb" => 1000u64.pow(4),
        "tib" | "t" => 1 << 40,
        _ => {
            return Err(format!(
                "{s:?} is not a size: unit must be B, KB, KiB, MB, MiB, GB, GiB, TB or TiB"
            ))
        }
    };
    n.checked_mul(factor)
        .ok_or_else(|| format!("{s:?} is too large"))
}

pub fn boolean(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" | "" => Ok(false),
        other => Err(format!("{other:?} is not a boolean (use true or false)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(duration("30d"), Ok(Duration::from_secs(30 * 86400)));
        assert!(duration("5 minutes").is_err());
        assert!(duration("m").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(size("20GiB"), Ok(20 << 30));
        assert_eq!(size("500MB"), Ok(500_000_000));
        assert_eq!(size("1024"), Ok(1024));
        assert!(size("lots").is_err());
        assert!(size("99999999999TiB").is_err());
    }
}
